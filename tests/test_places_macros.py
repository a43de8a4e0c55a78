"""Two mechanisms of session 8 (issue 11): a reference stored in a place the function
releases itself (reviewbot/engine/places.py), and a file's member and container accessor
macros written out in call arguments and in the tree summaries (reviewbot/cmodel/macros.py).
"""

from __future__ import annotations

from pathlib import Path

from reviewbot.cmodel import parse_c
from reviewbot.cmodel.macros import CONTAINER, MEMBER, Macro, accessor_macros, expand
from reviewbot.knowledge.tree_summaries import summarize
from reviewbot.packs import load_packs
from reviewbot.review.analysis import analyze_cfile, analyze_source

FIXTURE = Path(__file__).parent / "fixtures" / "rules" / "error-path.direct-return.places.c"


def _found(src: str, path: str = "drivers/x/main.c", summaries=None):
    cf = parse_c(src, path)
    return {(f.function, f.rule, f.resource, f.confidence)
            for f in analyze_cfile(cf, path, summaries=summaries)}


# --------------------------------------------------------------------------- places


def test_a_stored_place_the_unwind_releases_leaks_at_default_confidence():
    got = {(f.function, f.rule, f.line, f.confidence)
           for f in analyze_source(FIXTURE.read_text(), FIXTURE.name)}
    # the sibling exit releases the same field: local evidence, the rule's confidence
    assert ("pl_probe_loop", "error-path.direct-return", 33, "high") in got
    assert ("pl_probe_alias", "error-path.direct-return", 147, "high") in got
    assert not any(f[0] == "pl_probe_handed" for f in got)


ONE = """
int x_probe(struct platform_device *pdev, struct device_node *np)
{
	struct x_dev *xd;
	int ret;

	xd = devm_kzalloc(&pdev->dev, sizeof(*xd), GFP_KERNEL);
	if (!xd)
		return -ENOMEM;
	xd->port[2].np = of_node_get(np);
	ret = x_enable(xd);
	if (ret)
		return ret;
	ret = x_add(xd);
	if (ret) {
		of_node_put(xd->port[RELEASED].np);
		return ret;
	}
	return 0;
}
"""


def test_which_element_was_stored_does_not_matter_but_the_field_does():
    for index in ("2", "i", "xd->n"):
        assert ("x_probe", "error-path.missing-release", "xd->port[*].np", "high") in \
            _found(ONE.replace("RELEASED", index))
    # another field of the element released: the stored one is handed over, not tracked
    other = ONE.replace("xd->port[RELEASED].np", "xd->port[2].other")
    assert _found(other) == set()


def test_a_learned_release_of_the_place_is_no_evidence():
    # a call of no hand-written pack: the place is not the function's own to release
    src = ONE.replace("of_node_put(xd->port[RELEASED].np)", "x_put_node(xd->port[0].np)")
    assert _found(src) == set()


# --------------------------------------------------------------------------- macros

MACROS = b"""
#define X_TRANS(t)\t(&(t)->transport)
#define X_TCP(t)\t((struct x_tcp *)container_of(t, \\
\t\t\t\tstruct x_tcp, transport))
#define X_I(inode) container_of(inode, struct x_inode, vfs_inode)
#define X_MAX(a, b) ((a) > (b) ? (a) : (b))
#define X_FIELD(t) ((t)->transport.len)
#define X_TWICE(t) (&(t)->a + &(t)->b)
"""


def test_only_member_address_and_container_macros_are_read():
    got = accessor_macros(MACROS)
    assert got == {
        "X_TRANS": Macro("t", MEMBER, "transport"),
        "X_TCP": Macro("t", CONTAINER, "transport", "struct x_tcp"),
        "X_I": Macro("inode", CONTAINER, "vfs_inode", "struct x_inode"),
    }


def test_a_whole_accessor_call_is_written_out():
    m = accessor_macros(MACROS)
    assert expand("X_TRANS(t)", m) == "&t->transport"
    assert expand("X_TRANS(conn->t)", m) == "&conn->t->transport"
    assert expand("X_TCP(t)", m) == "container_of(t, struct x_tcp, transport)"
    assert expand("X_TCP(f(t))", m) == "container_of((f(t)), struct x_tcp, transport)"
    # not a whole call of an accessor: left as it is
    assert expand("X_TRANS(t)->conn", m) == "X_TRANS(t)->conn"
    assert expand("X_MAX(a, b)", m) == "X_MAX(a, b)"
    assert expand("other(t)", m) == "other(t)"


# ksmbd transport_tcp.c's shape: the disconnect op gets the member's address and frees
# the container through another helper (corpus-real 057)
TRANSPORT = """
#define X_TRANS(t)\t(&(t)->transport)
#define X_TCP(t)\t((struct x_tcp *)container_of(t, \\
\t\t\t\tstruct x_tcp, transport))

static void x_free_transport(struct x_tcp *t)
{
	sock_release(t->sock);
	kfree(t);
}

static void x_disconnect(struct x_transport *t)
{
	x_free_transport(X_TCP(t));
	atomic_dec(&x_conns);
}

static int x_new_connection(struct socket *sk)
{
	struct x_tcp *t;
	int rc;

	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	rc = x_start(sk);
	if (rc) {
		FREE;
		return rc;
	}
	rc = x_run(X_TRANS(t));
	if (rc)
		goto out_free;
	return 0;
out_free:
	kfree(t);
	return rc;
}
"""


def test_a_release_of_the_container_through_accessor_macros():
    src = TRANSPORT.replace("FREE", "x_disconnect(X_TRANS(t))")
    path = "fs/x/transport.c"
    table = summarize([(path, parse_c(src, path))], load_packs())
    summ = table.for_file(path)
    assert summ["x_disconnect"].releases_container == frozenset({0})
    assert _found(src, path, table) == set()
    # the macros unknown (the helper named by hand): the container release is not seen
    plain = src.replace("x_free_transport(X_TCP(t))", "x_free_transport(x_tcp_of(t))")
    table = summarize([(path, parse_c(plain, path))], load_packs())
    assert "x_disconnect" not in table.for_file(path)
    assert ("x_new_connection", "error-path.direct-return", "t", "high") in \
        _found(plain, path, table)


def test_a_header_inline_reads_the_header_own_macros():
    from reviewbot.knowledge.tree_summaries import inline_directs

    header = """
#define X_OPTS(f) container_of(f, struct x_opts, func_inst)

static inline void x_free_inst(struct usb_function_instance *f)
{
	kfree(X_OPTS(f));
}
"""
    packs = load_packs()
    table = summarize([], packs, inline_directs("drivers/x/x.h", header, packs))
    assert table.for_file("drivers/x/main.c")["x_free_inst"].releases_container == frozenset({0})
    hidden = header.replace("#define X_OPTS(f) container_of(f, struct x_opts, func_inst)\n", "")
    table = summarize([], packs, inline_directs("drivers/x/x.h", hidden, packs))
    assert "x_free_inst" not in table.for_file("drivers/x/main.c")
