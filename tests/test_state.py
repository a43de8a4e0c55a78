"""SQLite state: transactions, duplicates, fingerprints."""

from __future__ import annotations

import pytest

from reviewbot.cron.store import StateStore, fingerprint, series_key
from reviewbot.model import Finding


def finding(line=10, resource="w->lock", function="widget_open", rule="error-path.direct-return"):
    return Finding(rule=rule, category="error-path", severity="warning", confidence="high",
                   file="drivers/misc/widget/widget-core.c", function=function, line=line,
                   message="m", status="introduced", resource=resource)


def test_fingerprint_ignores_lines_and_prefix_but_not_what_it_is_about():
    a = fingerprint("widget: firmware loading", finding(line=10))
    assert a == fingerprint("Widget:  firmware   loading", finding(line=99))
    assert a != fingerprint("widget: firmware loading", finding(resource="buf"))
    assert a != fingerprint("widget: firmware loading", finding(function="widget_close"))
    assert a != fingerprint("gadget: other series", finding())
    assert series_key("A  B", "X@Example.org") == series_key("a b", "x@example.org")


def test_transaction_rolls_back_everything(tmp_path):
    st = StateStore(tmp_path / "s.db")
    with pytest.raises(RuntimeError), st.transaction():
        st.add_message("l", "m1@x", "0:abc", "patch", "s", "a", "d", b"raw")
        st.set_epoch("l", 0, "u", "fp", "abc")
        raise RuntimeError("killed")
    assert st.counts()["messages"] == 0 and st.epoch("l", 0) is None
    with st.transaction():
        assert st.add_message("l", "m1@x", "0:abc", "patch", "s", "a", "d", b"raw")
        assert not st.add_message("l", "m1@x", "0:def", "patch", "s", "a", "d", b"raw")
        st.set_epoch("l", 0, "u", "fp", "abc")
    st.close()
    st = StateStore(tmp_path / "s.db")  # reopened: committed data is there
    assert st.counts()["messages"] == 1 and st.epoch("l", 0).last_commit == "abc"


def test_revisions_and_pending_messages(tmp_path):
    st = StateStore(tmp_path / "s.db")
    with st.transaction():
        for mid, kind in (("c@x", "cover"), ("p1@x", "patch"), ("r@x", "reply")):
            st.add_message("l", mid, "o", kind, "s", "a", "d", b"x" if kind != "reply" else None)
        sid = st.series_id("l", "k", "s", "a")
        assert st.series_id("l", "k", "s", "a") == sid
        rev = st.ensure_revision(sid, 1, "c@x", 2)
        st.assign_messages("l", ["c@x", "p1@x"], rev.id)
    assert rev.status == "waiting"
    assert [r.message_id for r in st.pending_messages("l")] == ["c@x", "p1@x"]
    with st.transaction():
        st.update_revision(rev.id, "reviewed", [1, 2], [])
    assert st.pending_messages("l") == []
    with st.transaction():
        st.add_finding(sid, "fp1", 1, "new", finding(), "p1@x", "<d@x>")
        st.add_finding(sid, "fp1", 1, "new", finding(), "p1@x", "<d@x>")  # re-run: ignored
    assert [(r.revision, r.kind) for r in st.drafted(sid, "fp1")] == [(1, "new")]
    snap = st.snapshot()
    assert snap["revisions"] == [("k", 1, "c@x", 2, "reviewed", "[1, 2]", "[]", None)]


def test_state_of_version_1_gets_the_grouping_columns(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
        "INSERT INTO meta VALUES('schema', '1');"
        "CREATE TABLE messages(list TEXT NOT NULL, message_id TEXT NOT NULL, origin TEXT,"
        " kind TEXT NOT NULL, subject TEXT, author TEXT, date TEXT, raw BLOB,"
        " seen_at REAL NOT NULL, revision_id INTEGER, PRIMARY KEY(list, message_id));"
        "INSERT INTO messages VALUES('l', 'p@x', 'o', 'patch', 's', 'a', 'd', X'78', 1, NULL);")
    con.commit()
    con.close()
    st = StateStore(path)
    (row,) = st.pending_messages("l")
    assert (row.message_id, row.author_email, row.references) == ("p@x", None, None)
    assert st.raw_messages("l", ["p@x", "nope@x"]) == {"p@x": b"x"}
    assert st.stored_patches("l", ["p@x"]) == {}
    with st.transaction():
        st.set_grouping("l", "p@x", "s", "a@x", "c@x", ["c@x"])
        st.add_message("l", "q@x", "o", "patch", "s2", "a", "d", b"y", "a@x", "", [], "{}")
    rows = {r.message_id: (r.subject, r.author_email, r.in_reply_to, r.references)
            for r in st.pending_messages("l")}
    assert rows == {"p@x": ("s", "a@x", "c@x", ["c@x"]), "q@x": ("s2", "a@x", "", [])}
    assert st.stored_patches("l", ["p@x", "q@x"]) == {"q@x": "{}"}
    st.close()
    StateStore(path).close()  # opening again adds nothing twice


def test_records_come_out_decoded(tmp_path):
    """Rows leave the store as records: JSON and space-separated columns decoded, what a
    poll asks about waiting series and half-done runs answered by the store."""
    st = StateStore(tmp_path / "s.db")
    with st.transaction():
        st.add_message("l", "p1@x", "o", "patch", None, "a", "d", b"x", "a@x", "", ["r1@x", "r2@x"])
        st.add_message("l", "p2@x", "o", "patch", "s", "a", "d", b"y")
        st.add_skipped("l", "0:abc", "bad@x", "ValueError: no Message-ID")
    got = {r.message_id: (r.subject, r.references) for r in st.pending_messages("l")}
    assert got == {"p1@x": ("", ["r1@x", "r2@x"]), "p2@x": ("s", None)}
    assert st.skipped_message("l", "bad@x") and not st.skipped_message("l", "p1@x")
    assert st.has_unassigned("l") and not st.has_unassigned("other")
    with st.transaction():
        sid = st.series_id("l", "k", "s", "a")
        rev = st.ensure_revision(sid, 1, "p1@x", 3)
        st.assign_messages("l", ["p1@x", "p2@x"], rev.id)
    assert not st.has_unassigned("l")
    w = st.waiting("l")
    assert w.count == 1 and w.since == st.first_seen("l", ["p1@x", "p2@x"])
    assert st.waiting("other").count == 0 and st.waiting("other").since is None
    with st.transaction():
        st.update_revision(rev.id, "partial", [2, 1, 2], [3])
    rev = st.revision(sid, 1)
    assert (rev.status, rev.reviewed, rev.missing, rev.expected) == ("partial", [1, 2], [3], 3)
    assert st.waiting("l").count == 0
    assert st.epoch("l", 0) is None
    with st.transaction():
        st.set_epoch("l", 0, "u", None, "c1")
    assert (st.epoch("l", 0).fingerprint, st.epoch("l", 0).last_commit) == (None, "c1")
    st.close()


def test_checkpoint_commits_what_came_before(tmp_path):
    st = StateStore(tmp_path / "s.db")
    with pytest.raises(RuntimeError), st.transaction():
        st.add_message("l", "m1@x", "0:a", "patch", "s", "a", "d", b"raw")
        st.set_epoch("l", 0, "u", None, "a")
        st.checkpoint()
        st.add_message("l", "m2@x", "0:b", "patch", "s", "a", "d", b"raw")
        st.set_epoch("l", 0, "u", None, "b")
        raise RuntimeError("killed")
    assert st.known("l", "m1@x") and not st.known("l", "m2@x")
    assert st.epoch("l", 0).last_commit == "a"
    st.close()
