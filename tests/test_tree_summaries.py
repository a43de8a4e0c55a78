"""Function summaries from the tree (reviewbot/knowledge/tree_summaries.py): what a
function of the reviewed directory may do to its arguments, used for calls no pack
describes; in `audit` (a directory's files) and in `review` with a tree."""

from __future__ import annotations

import difflib

import pytest

from reviewbot import cli
from reviewbot.cmodel import parse_c
from reviewbot.knowledge import summary_cache
from reviewbot.knowledge.tree_summaries import Summary, summarize
from reviewbot.packs import load_packs
from reviewbot.review.analysis import analyze_cfile

# helpers of drivers/x: one frees a field on every path, one drops the reference only on
# failure (reiserfs_new_inode() iputs the inode so), one stores it in a list, one passes
# it on to another (a helper of a helper), one only reads a scalar field.
HELPERS = """
void x_free_set(struct x_set *es)
{
	kfree(es->bh);
}

int x_new_inode(struct x_dev *xd, struct inode *inode)
{
	int err = x_init(xd, inode);

	if (err) {
		iput(inode);
		return err;
	}
	return 0;
}

void x_queue(struct x_dev *xd, struct x_item *it)
{
	list_add(&it->node, &xd->items);
}

static void x_finish(struct x_dev *xd, struct inode *inode)
{
	x_new_inode(xd, inode);
}

void x_log(struct x_dev *xd, struct buffer_head *bh)
{
	xd->last = bh->b_blocknr;
	mutex_unlock(&xd->lock);
}
"""

# a caller whose failure exit leaves what it handed to a helper
CALLER = """
int x_make(struct x_dev *xd)
{
	struct inode *inode;
	int err;

	inode = new_inode(xd->sb);
	if (!inode)
		return -ENOMEM;
	err = x_step(xd);
	if (err)
		goto out_put;
	err = x_new_inode(xd, inode);
	if (err)
		goto out;
	d_instantiate(xd->root, inode);
	return 0;
out_put:
	iput(inode);
out:
	return err;
}
"""


def _table(files: dict[str, str]):
    return summarize([(p, parse_c(t, p)) for p, t in files.items()], load_packs())


def test_what_each_helper_may_do_to_its_arguments():
    t = _table({"drivers/x/helpers.c": HELPERS}).for_file("drivers/x/helpers.c")
    assert t["x_free_set"] == Summary(releases_fields=frozenset({0}))  # a field of it, freed
    assert t["x_new_inode"] == Summary(releases=frozenset({1}))  # on failure only
    assert t["x_queue"] == Summary(stores=frozenset({1}))
    assert t["x_finish"] == Summary(releases=frozenset({1}))  # through x_new_inode
    # a scalar field read and an unlock neither release nor hand the buffer over
    assert "x_log" not in t


def test_static_helpers_count_in_their_own_file_only():
    static = HELPERS.replace("void x_finish", "void x_finish_unused").replace(
        "void x_free_set(", "static void x_free_set(")
    table = _table({"drivers/x/helpers.c": static})
    assert "x_free_set" in table.for_file("drivers/x/helpers.c")
    assert "x_free_set" not in table.for_file("drivers/x/other.c")


def _findings(src: str, summaries):
    cf = parse_c(src, "drivers/x/main.c")
    return {(f.rule, f.resource) for f in analyze_cfile(cf, "drivers/x/main.c",
                                                         summaries=summaries)}


def test_a_helper_that_releases_on_failure_is_not_a_leak_in_the_caller():
    assert ("error-path.missing-release", "inode") in _findings(CALLER, None)
    table = _table({"drivers/x/helpers.c": HELPERS, "drivers/x/main.c": CALLER})
    assert _findings(CALLER, table) == set()


def test_the_skipped_release_before_the_hand_over_is_still_found():
    # the first failure exit comes before x_new_inode(): the inode is still ours there
    early = CALLER.replace("\terr = x_new_inode",
                           "\terr = x_more(xd);\n\tif (err)\n\t\tgoto out;\n\terr = x_new_inode")
    table = _table({"drivers/x/helpers.c": HELPERS, "drivers/x/main.c": early})
    assert ("error-path.missing-release", "inode") in _findings(early, table)


# f_ncm.c's shape: the instance's free function finds its options by container_of() and
# frees them; an error exit that calls it with the member's address leaks nothing
CONTAINER = """
static void x_free_inst(struct usb_function_instance *f)
{
	struct x_opts *opts;

	opts = container_of(f, struct x_opts, func_inst);
	kfree(opts->group);
	kfree(opts);
}

static struct usb_function_instance *x_alloc_inst(void)
{
	struct x_opts *opts;
	struct config_group *group;

	opts = kzalloc(sizeof(*opts), GFP_KERNEL);
	if (!opts)
		return ERR_PTR(-ENOMEM);
	opts->func_inst.free_func_inst = x_free_inst;
	opts->net = x_setup_default();
	if (IS_ERR(opts->net)) {
		kfree(opts);
		return ERR_PTR(-ENODEV);
	}
	group = x_prepare_dir(&opts->func_inst.group);
	if (IS_ERR(group)) {
		x_free_inst(&opts->func_inst);
		return ERR_CAST(group);
	}
	opts->group = group;
	return &opts->func_inst;
}
"""


def test_a_helper_that_frees_the_container_of_its_argument():
    table = _table({"drivers/x/main.c": CONTAINER})
    got = table.for_file("drivers/x/main.c")["x_free_inst"]
    assert got.releases_container == frozenset({0})
    assert ("error-path.missing-release", "opts") in _findings(CONTAINER, None)
    assert _findings(CONTAINER, table) == set()
    # a helper that frees something else of the container's is not its release
    other = CONTAINER.replace("\tkfree(opts);\n", "\tkfree(opts->name);\n")
    table = _table({"drivers/x/main.c": other})
    assert "x_free_inst" not in table.for_file("drivers/x/main.c")  # nothing of its argument


# fs/afs/rxrpc.c's shape: the put paired with the allocation in the unwind code (an
# inferred pair) frees the call's buffers too, as its summary says
FLAT = """
void x_put_call(struct x_call *call)
{
	if (refcount_dec_and_test(&call->ref)) {
		kfree(call->request);
		kfree(call);
	}
}

struct x_call *x_alloc_flat_call(struct x_net *net, size_t request_size)
{
	struct x_call *call;

	call = x_alloc_call(net);
	if (!call)
		goto nomem_call;
	call->request = kmalloc(request_size, GFP_NOFS);
	if (!call->request)
		goto nomem_free;
	call->buffer = kmalloc(request_size, GFP_NOFS);
	if (!call->buffer)
		goto nomem_free;
	return call;

nomem_free:
	x_put_call(call);
nomem_call:
	return NULL;
}
"""


def test_a_release_inferred_from_unwind_code_frees_what_its_summary_says():
    assert ("error-path.missing-release", "call->request") in _findings(FLAT, None)
    table = _table({"drivers/x/main.c": FLAT})
    assert table.for_file("drivers/x/main.c")["x_put_call"].releases_fields == frozenset({0})
    assert ("error-path.missing-release", "call->request") not in _findings(FLAT, table)


def _patch(before: str, after: str) -> str:
    diff = difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                "a/drivers/x/main.c", "b/drivers/x/main.c")
    return ("From: A <a@example.org>\nSubject: [PATCH] x: new inode helper\n\n---\n"
            "diff --git a/drivers/x/main.c b/drivers/x/main.c\n" + "".join(diff))


def test_review_with_a_tree_uses_the_directory_summaries(make_repo, commit, tmp_path,
                                                         monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("REVIEWBOT_SERVER", "off")
    before = CALLER.replace("\terr = x_new_inode(xd, inode);\n\tif (err)\n\t\tgoto out;\n",
                            "")
    repo = make_repo({"drivers/x/helpers.c": HELPERS, "drivers/x/main.c": before})
    patch = tmp_path / "0001.patch"
    patch.write_text(_patch(before, CALLER))
    args = ["review", str(patch), "--tree", repo.workdir, "--format", "terse"]
    assert cli.main(args) == 0, capsys.readouterr()  # x_new_inode takes the inode over
    capsys.readouterr()
    # the same patch against a tree whose helper keeps the inode: the leak is reported
    commit(repo, {"drivers/x/helpers.c": HELPERS.replace("\t\tiput(inode);\n", "")},
           "helper keeps the inode")
    assert cli.main(args) == 1
    assert "inode" in capsys.readouterr().out


def test_the_per_file_facts_are_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    packs = load_packs()
    assert packs.signature  # from load_packs: its cache file
    summary_cache._memory.clear()
    first = summary_cache.directs("drivers/x/helpers.c", HELPERS, packs)
    stored = list((tmp_path / "reviewbot" / "summaries").rglob("*.marshal"))
    assert len(stored) == 1
    summary_cache._memory.clear()
    again = summary_cache.directs("drivers/x/helpers.c", HELPERS, packs)
    assert [(d.name, d.releases, d.stores, d.passes) for d in again] == \
        [(d.name, d.releases, d.stores, d.passes) for d in first]
    summary_cache.directs("drivers/x/helpers.c", HELPERS + "\n", packs)
    assert len(list((tmp_path / "reviewbot" / "summaries").rglob("*.marshal"))) == 2


def test_a_deeply_nested_function_is_summarised_like_any_other():
    # the scan walks syntax trees with cursors, not recursion: depth costs nothing
    deep = "void x_deep(struct x_dev *xd)\n{\n" + "if (xd->a) {\n" * 3000 + \
        "kfree(xd);\n" + "}\n" * 3000 + "}\n"
    got = _table({"drivers/x/deep.c": deep, "drivers/x/helpers.c": HELPERS}).for_file(
        "drivers/x/helpers.c")
    assert got["x_deep"] == Summary(releases=frozenset({0}))
    assert got["x_queue"] == Summary(stores=frozenset({1}))


# a probe that ends in `return helper(..)` with a card it releases on its other failures
TAIL = """
static int x_config(struct x_link *link)
{
	if (x_request(link))
		goto failed;
	return 0;
failed:
	x_release(link);
	return -ENODEV;
}

static int x_probe(struct x_link *link)
{
	struct snd_card *card;
	int err;

	err = snd_card_new(&link->dev, 0, NULL, THIS_MODULE, 0, &card);
	if (err < 0)
		return err;
	err = x_setup(card);
	if (err < 0) {
		snd_card_free(card);
		return err;
	}
	x_cards[0] = card;
	return x_config(link);
}
"""


def test_a_helper_that_returns_an_error_code_fails():
    t = _table({"drivers/x/main.c": TAIL}).for_file("drivers/x/main.c")
    assert t["x_config"] == Summary(fails=True)
    assert not t.get("x_probe", Summary()).fails  # `return err` of a call: not seen as one


def test_returning_a_failing_helper_is_an_error_exit_too():
    # without the summary `return x_config(link)` is a success exit, and the card stored
    # in x_cards[] is no leak there; on x_config()'s failure it is
    assert ("error-path.missing-release", "card") not in _findings(TAIL, None)
    table = _table({"drivers/x/main.c": TAIL})
    assert ("error-path.missing-release", "card") in _findings(TAIL, table)
    fixed = TAIL.replace("\treturn x_config(link);",
                         "\terr = x_config(link);\n\tif (err < 0) {\n\t\tx_cards[0] = NULL;\n"
                         "\t\tsnd_card_free(card);\n\t\treturn err;\n\t}\n\treturn 0;")
    assert ("error-path.missing-release", "card") not in _findings(fixed, _table({"drivers/x/main.c": fixed}))


# helpers whose hand-over the first summaries missed (docs/triage-6.1.md, issue 11): a
# release callback that names its parameter through a local copy, a submit helper that
# stores the pages in an object it allocates (a local pointer, not a local struct)
COPIES = """
static void x_release(void *calldata)
{
	struct x_data *data = calldata;

	x_put_cred(data->cred);
	kfree(data);
}

int x_commit(struct x_data *data, int sync)
{
	if (!sync) {
		x_release(data);
		return -EAGAIN;
	}
	return x_run(data);
}

int x_submit(struct x_dev *xd, struct page **pages, int nr)
{
	struct x_cb *cb = kmalloc(sizeof(*cb), GFP_NOFS);
	struct x_cb local;

	if (!cb)
		return -ENOMEM;
	cb->pages = pages;
	local.pages = pages;
	return x_queue_cb(xd, cb);
}

int x_peek(struct x_dev *xd, struct page **pages)
{
	struct x_cb local;

	local.pages = pages;
	return x_look(xd, &local);
}
"""

HEADER = """
static inline void x_set_private(struct file *file, struct x_info *info)
{
	file->private_data = info;
}

static inline int x_count(struct x_info *info)
{
	return info->n;
}
"""

def test_a_parameter_released_through_a_local_copy_of_it():
    t = _table({"fs/x/proc.c": COPIES}).for_file("fs/x/proc.c")
    assert t["x_release"].releases == frozenset({0})  # kfree(data), data = calldata
    assert t["x_commit"].releases == frozenset({0})  # through x_release
    assert 1 in t["x_submit"].stores  # cb->pages = pages: cb goes where it is queued
    assert "x_peek" not in t  # a local struct's member is no hand-over


def test_a_header_inline_that_stores_its_argument_is_seen_from_the_directory():
    from reviewbot.knowledge.tree_summaries import inline_directs

    packs = load_packs()
    extra = inline_directs("fs/x/x.h", HEADER, packs)
    table = summarize([("fs/x/file.c", parse_c("int x_f(void) { return 0; }", "fs/x/file.c"))],
                      packs, extra)
    assert table.for_file("fs/x/file.c")["x_set_private"].stores == frozenset({1})
    assert "x_count" not in table.for_file("fs/x/file.c")
    assert inline_directs("fs/x/decls.h", "int x_count(struct x_info *info);\n", packs) == []


def test_ecryptfs_open_hands_file_info_to_the_file_through_a_header_setter():
    """fs/ecryptfs/file.c ecryptfs_open() (read at test time): ecryptfs_set_file_private()
    of ecryptfs_kernel.h stores file_info in file->private_data, and the unwind code frees
    it from there; the audit of docs/triage-6.1.md reported it leaked."""
    from kernel_tree import linux_tree

    from reviewbot.input.limits import MAX_C_FILE
    from reviewbot.knowledge.tree_summaries import dir_header_directs

    tree = linux_tree("fs/ecryptfs")
    if tree is None:
        pytest.skip("linux-source-6.1 not available")
    d = tree / "fs/ecryptfs"
    packs = load_packs()
    files = [(str(f), parse_c(f.read_text(errors="replace"), str(f))) for f in sorted(d.glob("*.c"))]
    path = str(d / "file.c")

    def leaks(table) -> set[str]:
        cf = parse_c((d / "file.c").read_text(errors="replace"), path)
        return {f.resource for f in analyze_cfile(cf, path, packs=packs, summaries=table)
                if f.function == "ecryptfs_open" and f.confidence != "low"}

    assert "file_info" in leaks(summarize(files, packs))
    assert "file_info" not in leaks(summarize(files, packs,
                                              dir_header_directs(str(d), packs, MAX_C_FILE)))


def test_review_with_a_tree_reads_the_directory_headers_inlines(make_repo, commit, tmp_path,
                                                                monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("REVIEWBOT_SERVER", "off")
    keep = "static inline void x_keep(struct x_dev *xd, struct inode *inode)\n" \
           "{\n\txd->inode = inode;\n}\n"
    before = CALLER.replace("\terr = x_new_inode(xd, inode);\n\tif (err)\n\t\tgoto out;\n",
                            "")
    after = CALLER.replace("\terr = x_new_inode(xd, inode);\n",
                           "\tx_keep(xd, inode);\n\terr = x_more(xd);\n")
    repo = make_repo({"drivers/x/x.h": keep, "drivers/x/main.c": before})
    patch = tmp_path / "0001.patch"
    patch.write_text(_patch(before, after))
    args = ["review", str(patch), "--tree", repo.workdir, "--format", "terse"]
    assert cli.main(args) == 0, capsys.readouterr()  # x_keep() of x.h stores the inode
    capsys.readouterr()
    commit(repo, {"drivers/x/x.h": keep.replace("xd->inode = inode;", "xd->n++;")},
           "x_keep keeps nothing")
    assert cli.main(args) == 1
    assert "inode" in capsys.readouterr().out
