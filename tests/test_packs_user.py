"""A user's own packs: `--pack FILE|DIR` and `[packs] paths` load after the shipped packs and
win over them; `rules --packs` lists what was loaded; a warm server never answers with
stale packs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import test_poll as tp
import test_server as srv

from reviewbot import cli
from reviewbot.cron.localinbox import LocalInbox, missing_tools
from reviewbot.knowledge.learned import load_learned, shipped_path
from reviewbot.packs import load_packs, user_pack_paths

runtime = srv.runtime  # the server tests' fixture: a short private runtime directory

FROB_C = """\
#include <linux/errno.h>

struct frob *frob_get(int id);
void frob_put(struct frob *f);
int frob_use(struct frob *f);

int frob_probe(int id)
{
\tstruct frob *f;
\tint err;

\tf = frob_get(id);
\tif (!f)
\t\treturn -ENOMEM;
\terr = frob_use(f);
\tif (err)
\t\treturn err;
\tfrob_put(f);
\treturn 0;
}

int buf_probe(int n)
{
\tchar *buf;
\tint err;

\tbuf = kmalloc(n, GFP_KERNEL);
\tif (!buf)
\t\treturn -ENOMEM;
\terr = frob_use((struct frob *)buf);
\tif (err)
\t\treturn err;
\tkfree(buf);
\treturn 0;
}
"""

FROB_PACK = """\
[pack]
name = "frob"

[resources.frob-ref]
kind = "ref"
doc = "a frob reference (frob_get .. frob_put)"

[calls.frob_get]
acquires = "frob-ref"
target = "return"
success = "nonnull"

[calls.frob_put]
releases = "frob-ref"
target = "arg:0"
"""

# this tree's kmalloc hands out pool memory freed with the pool: nothing to release
POOL_PACK = """\
[pack]
name = "pool"

[calls.kmalloc]
acquires_nothing = true
"""


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("REVIEWBOT_SERVER", "off")
    monkeypatch.delenv("REVIEWBOT_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    load_packs.cache_clear()
    yield
    load_packs.cache_clear()


def _audit(capsys, *argv: str) -> tuple[int, list[str]]:
    rc = cli.main(["audit", "--format", "json", *argv])
    found = json.loads(capsys.readouterr().out)["findings"]
    return rc, [f"{f['rule']} {f['function']}:{f['line']} {f['resource']}" for f in found]


def test_a_user_pack_changes_what_is_found_and_overrides_a_shipped_entry(tmp_path, capsys):
    c = tmp_path / "frob.c"
    c.write_text(FROB_C)
    frob = tmp_path / "frob.toml"
    frob.write_text(FROB_PACK)
    pool = tmp_path / "pool.toml"
    pool.write_text(POOL_PACK)
    # shipped packs only: kmalloc's buffer leaks; frob_get is unknown
    assert _audit(capsys, str(c)) == (1, ["error-path.missing-release buf_probe:32 buf"])
    # + frob: its leak is found as well
    assert _audit(capsys, str(c), "--pack", str(frob)) == (
        1, ["error-path.missing-release frob_probe:17 f",
            "error-path.missing-release buf_probe:32 buf"])
    # + pool: the user's kmalloc entry replaces kernel-core's, and that finding goes
    assert _audit(capsys, str(c), "--pack", str(frob), "--pack", str(pool)) == (
        1, ["error-path.missing-release frob_probe:17 f"])
    # a directory of packs: both, by name
    assert _audit(capsys, str(c), "--pack", str(tmp_path)) == (
        1, ["error-path.missing-release frob_probe:17 f"])
    packs = load_packs(user_pack_paths([str(tmp_path)]))
    assert packs.calls["kmalloc"].acquires_nothing and packs.calls["kmalloc"].pack == "pool"
    assert not packs.calls["kmalloc"].acquires
    assert packs.calls["kzalloc"].acquires == ("memory",)  # the rest of kernel-core stays


def test_review_takes_pack_too(tmp_path, capsys):
    (tmp_path / "frob.toml").write_text(FROB_PACK)
    lines = FROB_C.splitlines()[:20]
    patch = tmp_path / "frob.patch"
    patch.write_text(
        "From: A Dev <a@example.org>\nSubject: [PATCH] frob: add frob_probe\n\n---\n"
        "diff --git a/drivers/frob.c b/drivers/frob.c\nnew file mode 100644\n"
        "index 0000000..1111111\n--- /dev/null\n+++ b/drivers/frob.c\n"
        f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{ln}\n" for ln in lines))
    assert cli.main(["review", str(patch)]) == 0
    assert "no new findings" in capsys.readouterr().out
    assert cli.main(["review", str(patch), "--pack", str(tmp_path / "frob.toml")]) == 1
    out = capsys.readouterr().out
    assert "error-path.missing-release [introduced] in frob_probe()" in out
    assert "acquired by frob_get() at line 12" in out


def test_precedence_shipped_then_configuration_then_command_line(tmp_path, monkeypatch):
    conf_dir = tmp_path / "conf"
    (conf_dir / "mine").mkdir(parents=True)
    (conf_dir / "mine" / "frob.toml").write_text(FROB_PACK)
    cfg = conf_dir / "config.toml"
    cfg.write_text('[packs]\npaths = ["mine"]\n')
    later = tmp_path / "later.toml"
    later.write_text(FROB_PACK.replace('name = "frob"', 'name = "later"')
                     .replace('success = "nonnull"', 'success = "not_err"'))
    paths = user_pack_paths([str(later)], str(cfg))
    assert paths == (str(conf_dir / "mine"), str(later))
    packs = load_packs(paths)
    assert packs.names == ["learned", "kernel-core", "gfs2", "ocfs2", "frob", "later"]
    assert packs.calls["frob_get"].success == "not_err" and packs.calls["frob_get"].pack == "later"
    [later_src] = [s for s in packs.sources if s.name == "later"]
    assert {(o.entry, o.replaced) for o in later_src.overrides} == {
        ("resources.frob-ref", "frob"), ("calls.frob_get", "frob"), ("calls.frob_put", "frob")}
    monkeypatch.setenv("REVIEWBOT_CONFIG", str(cfg))  # found by the environment as well
    assert user_pack_paths() == (str(conf_dir / "mine"),)


def test_cached_user_packs_equal_freshly_checked_ones(tmp_path, monkeypatch):
    (tmp_path / "frob.toml").write_text(FROB_PACK)
    (tmp_path / "pool.toml").write_text(POOL_PACK)
    paths = user_pack_paths([str(tmp_path)])
    first = load_packs(paths)  # stored
    load_packs.cache_clear()
    assert list((tmp_path / "cache" / "reviewbot").glob("packs-*.marshal"))
    assert load_packs(paths) == first  # from the cache, overrides and all
    assert load_packs(paths).sources[-1].overrides[0].entry == "calls.kmalloc"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "none"))
    assert load_packs.__wrapped__(paths) == first


def test_rules_packs_lists_the_packs_in_load_order(tmp_path, capsys):
    (tmp_path / "frob.toml").write_text(FROB_PACK)
    (tmp_path / "pool.toml").write_text(POOL_PACK)
    assert cli.main(["rules", "--packs", "--pack", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    shipped = Path(load_packs().sources[1].path).parent
    hand = load_packs(learned=False)
    learned = load_packs()
    k = load_learned(shipped_path())
    assert out[1:] == [
        f"  1. learned (learned) {shipped_path()}",
        "     " + ", ".join(f"{t} {len(getattr(k, t))}" for t in
                          ("acquirers", "releases", "managed", "must_check", "noreturn")),
        f"  2. kernel-core (shipped) {shipped / 'kernel-core.toml'}",
        "     resources 21, calls 180, context 150",
        f"  3. gfs2 (shipped) {shipped / 'gfs2.toml'}",
        "     resources 5, calls 28, assign 2, test 1, ops 1, context 20",
        f"  4. ocfs2 (shipped) {shipped / 'ocfs2.toml'}",
        "     context 10",
        f"  5. frob (user) {tmp_path / 'frob.toml'}",
        "     resources 1, calls 2",
        f"  6. pool (user) {tmp_path / 'pool.toml'}",
        "     calls 1",
        "     overrides calls.kmalloc of kernel-core",
        f"total: {len(learned.calls) + 2} calls, {len(learned.resources) + 1} resource kinds, "
        "2 assignment patterns, 1 tests, 1 ops families",
    ]
    # without the learned layer, the totals are the hand-written packs' alone
    assert (len(hand.calls), len(hand.resources)) == (208, 26)


def _served_audit_like(env, patch: Path, *extra: str):
    return srv._review(env, str(patch), "--format", "json", *extra)


def test_the_server_never_answers_with_stale_user_packs(runtime, tmp_path):
    """--pack files are read by each request; the configuration's packs, which the server
    loads warm, make it step aside when they change."""
    lines = FROB_C.splitlines()[:20]
    patch = tmp_path / "frob.patch"
    patch.write_text(
        "From: A Dev <a@example.org>\nSubject: [PATCH] frob: add frob_probe\n\n---\n"
        "diff --git a/drivers/frob.c b/drivers/frob.c\nnew file mode 100644\n"
        "index 0000000..1111111\n--- /dev/null\n+++ b/drivers/frob.c\n"
        f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{ln}\n" for ln in lines))
    pack = tmp_path / "frob.toml"
    pack.write_text(FROB_PACK)
    conf_pack = tmp_path / "conf" / "frob.toml"
    conf_pack.parent.mkdir()
    conf_pack.write_text(FROB_PACK)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[packs]\npaths = ["{conf_pack.parent}"]\n')
    env = dict(runtime, XDG_CACHE_HOME=str(tmp_path / "cache"), HOME=str(tmp_path / "home"))
    proc = srv._start(env)
    try:
        assert srv._review(env, str(patch)).returncode == 0  # frob_get unknown
        r = srv._review(env, str(patch), "--pack", str(pack))
        assert r.returncode == 1 and b"frob_get()" in r.stdout
        pack.write_text(FROB_PACK.replace('acquires = "frob-ref"', "acquires_nothing = true")
                        .replace('target = "return"\n', "", 1))
        assert srv._review(env, str(patch), "--pack", str(pack)).returncode == 0
    finally:
        log = srv._stop(proc, env)
    assert log.count("reviewbot: review for") == 3  # all three were served
    env["REVIEWBOT_CONFIG"] = str(cfg)
    proc = srv._start(env)  # warm with the configuration's pack
    try:
        r = srv._review(env, str(patch))
        assert r.returncode == 1 and b"frob_get()" in r.stdout
        st = conf_pack.stat()
        conf_pack.write_text(FROB_PACK.replace("frob_get", "frob_grab"))
        os.utime(conf_pack, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        r = srv._review(env, str(patch))
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert r.returncode == 0 and b"no new findings" in r.stdout  # reviewed here, fresh
    assert "changed on disk" in proc.stderr.read()


# the widget list's patch leaks a mutex and a kzalloc buffer; this tree's are neither
QUIET_PACK = """\
[calls.mutex_lock]
acquires_nothing = true

[calls.kzalloc]
acquires_nothing = true
"""


def test_poll_takes_pack(tmp_path):
    if missing_tools() is not None:
        pytest.skip(f"public-inbox cannot run here: {missing_tools()}")
    ibx = LocalInbox(tmp_path / "pi", tp.LIST)
    ibx.create()
    ibx.import_mbox(tp.EX / "list.mbox")
    ibx.start()
    try:
        pack = tmp_path / "quiet.toml"
        pack.write_text(QUIET_PACK)
        runs = {}
        for name, extra in (("shipped", []), ("quiet", ["--pack", str(pack)])):
            r = tp.Runner(tmp_path, ibx, name=name)
            runs[name] = subprocess.run(r.argv() + extra, env=r.env, capture_output=True,
                                        text=True, timeout=120)
            assert runs[name].returncode == 0, runs[name].stderr
    finally:
        ibx.stop()
    assert "2 series reviewed" in runs["shipped"].stdout and " 1 draft " in runs["shipped"].stdout
    assert "2 series reviewed" in runs["quiet"].stdout and " 0 drafts " in runs["quiet"].stdout
