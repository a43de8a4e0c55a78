"""Acquire/release pairs inferred from the code, for subsystems no pack describes.

After Hector (Saha et al., DSN 2013): error-handling code tells what a function considers a
resource. A call whose result is stored in a local, tested for failure, and passed to
another call in the function's own unwind code (after its first goto label) is an
acquire/release pair for that function — `handle = ocfs2_start_trans(...)` with
`ocfs2_commit_trans(osb, handle)` under `out_commit:`, `master = spi_alloc_master(...)`
with `spi_master_put(master)` under `err_put:`. Pairs are inferred from the pre-image, so a
patch that deletes the only release cannot hide its own pair. Findings that rest on them
carry a lower confidence than pack entries.
"""

from __future__ import annotations

import re

from reviewbot.cmodel import Function, args, callee, line_of, norm, strip_parens, text
from reviewbot.engine import local_kinds
from reviewbot.engine.facts import plain_locals
from reviewbot.packs import CallSpec, Idioms, Packs, Target


def _failure_test(fn: Function, var: str, idioms: Idioms) -> str | None:
    """How the function tests `var` for failure: 'nonnull' or 'not_err' (None: not tested)."""
    for n in fn.nodes:
        if n.kind != "cond" or n.ast is None:
            continue
        a = strip_parens(n.ast)
        t = norm(text(a))
        if t in (var, f"{var}==NULL", f"{var}!=NULL", f"!{var}"):
            return "nonnull"
        if t in {f"{n}({var})" for n in idioms.is_err}:
            return "not_err"
        if t in {f"{n}({var})" for n in idioms.is_err_or_null}:
            return "nonnull_not_err"
    return None


def infer_pairs(fn: Function, packs: Packs) -> dict[str, CallSpec]:
    # calls that look like releases by name ([idioms] unwind_release_name of the packs):
    # the position in unwind code is the main evidence
    looks_release = packs.idioms.unwind_release_re
    if looks_release is None:
        return {}
    if not fn.of_type("labeled_statement"):
        return {}
    fn.cfg()
    if not fn.labels:
        return {}
    pointers = {n for n, k in local_kinds(fn).items() if k == "pointer"}
    first_label = min(lab.line for lab in fn.labels.values())
    unwind_calls = [c for c in fn.of_type("call_expression") if line_of(c) >= first_label]
    out: dict[str, CallSpec] = {}
    for a in fn.of_type("assignment_expression"):
        rhs = strip_parens(a.child_by_field_name("right"))
        if rhs is None or rhs.type != "call_expression":
            continue
        name = callee(rhs)
        if packs.knows(name) or name in packs.idioms.not_acquire_set or not name.isidentifier():
            continue
        var = norm(text(a.child_by_field_name("left")))
        if var not in pointers or line_of(a) >= first_label:
            continue
        success = _failure_test(fn, var, packs.idioms)
        if success is None:
            continue
        for c in unwind_calls:
            rel = callee(c)
            if (rel == name or packs.knows(rel) or not looks_release.search(rel)
                    or rel.startswith(("trace_", "pr_", "dev_", "WARN", "BUG"))):
                continue
            idx = [i for i, x in enumerate(args(c)) if norm(text(x)) == var]
            if not idx:
                continue
            rid = f"inferred:{name}"
            out[name] = CallSpec(name=name, acquires=(rid,), targets=(Target("return"),),
                                 success=success, inferred=True, pack="inferred")
            prev = out.get(rel)
            if prev is None:
                out[rel] = CallSpec(name=rel, releases=(rid,), targets=(Target("arg", idx[0]),),
                                    inferred=True, pack="inferred")
            break
    _status_pairs(fn, packs, first_label, unwind_calls, out, looks_release)
    return out


# Name parts too common to pair calls by (`clk_prepare_enable` and `clk_disable_unprepare`
# pair through "clk"; nothing pairs through "dev" or "get").
_GENERIC = {"dev", "get", "put", "set", "the", "and", "for", "devm", "enable", "disable",
            "init", "exit", "free", "alloc", "add", "del", "create", "destroy", "start",
            "stop", "register", "unregister", "request", "release", "prepare", "unprepare",
            "lock", "unlock", "sync", "async", "new", "end", "commit", "begin"}


def _tokens(name: str) -> set[str]:
    return {t for t in name.lower().split("_") if len(t) >= 3 and t not in _GENERIC}


def _status_pairs(fn: Function, packs: Packs, first_label: int, unwind_calls: list,
                  out: dict[str, CallSpec], looks_release: re.Pattern[str]) -> None:
    """`ret = clk_prepare_enable(priv->clk); if (ret) goto ...;` paired with
    `clk_disable_unprepare(priv->clk)` in the unwind code: the resource is the argument the
    two calls share, and the names share a part ("clk")."""
    tested = _tested_status(fn)
    structs = plain_locals(fn, lambda ty: ty.type == "struct_specifier")
    for a in fn.of_type("assignment_expression"):
        rhs = strip_parens(a.child_by_field_name("right"))
        if rhs is None or rhs.type != "call_expression" or line_of(a) >= first_label:
            continue
        name = callee(rhs)
        if packs.knows(name) or name in out or name in packs.idioms.not_acquire_set or \
                not name.isidentifier() or _first_verb(name) != "acquire":
            continue
        var = norm(text(a.child_by_field_name("left")))
        success = tested.get(var)
        if success is None:
            continue
        acq_args = [norm(text(x)) for x in args(rhs)]
        for c in unwind_calls:
            rel = callee(c)
            if (rel == name or packs.knows(rel) or not looks_release.search(rel)
                    or not (_tokens(rel) & _tokens(name))):
                continue
            rel_args = [norm(text(x)) for x in args(c)]
            # the shared argument must name a part of something (priv->clk, &ctx->lock):
            # a whole object (ip) is passed to everything and pairs nothing
            # (a lock/unlock pair may name the whole object: ocfs2_inode_lock(inode, ...));
            # so may the address of a structure of the function's own, which the two calls
            # fill and empty, when their names share more than a subsystem prefix
            # (get_clock_desc(id, &cd) ... put_clock_desc(&cd); not ext4_try_add_inline_entry
            # ... ext4_fname_free_filename(&fname))
            lockish = "lock" in name.lower().split("_") and "unlock" in rel.lower().split("_")
            own = len(_tokens(rel) & _tokens(name)) >= 2
            shared = [(i, j) for i, x in enumerate(acq_args) for j, y in enumerate(rel_args)
                      if x == y and ("->" in x or "." in x or (lockish and x.isidentifier())
                                     or (own and x.startswith("&") and x[1:] in structs))]
            if not shared:
                continue
            i, j = shared[0]
            rid = f"inferred:{name}"
            out[name] = CallSpec(name=name, acquires=(rid,), targets=(Target("arg", i),),
                                 success=success, inferred=True, pack="inferred")
            out.setdefault(rel, CallSpec(name=rel, releases=(rid,),
                                         targets=(Target("arg", j),), inferred=True,
                                         pack="inferred"))
            break


_ACQ_VERBS = {"register", "enable", "prepare", "alloc", "get", "request", "create", "start",
              "begin", "init", "open", "lock", "map", "add", "attach", "hold", "grab", "new",
              "setup", "on", "acquire", "claim", "reserve", "pin", "bind", "connect"}
_REL_VERBS = {"unregister", "disable", "unprepare", "free", "kfree", "put", "release",
              "destroy", "stop", "end", "commit", "exit", "uninit", "close", "unlock",
              "unmap", "del", "remove", "detach", "drop", "off", "unpin", "unbind",
              "disconnect", "cleanup", "deinit", "unreserve"}


def _first_verb(name: str) -> str | None:
    """Whether a call's name says it takes (register_trace_kfree_skb) or gives back."""
    for t in name.lower().split("_"):
        if t in _ACQ_VERBS:
            return "acquire"
        if t in _REL_VERBS:
            return "release"
    return None


def _tested_status(fn: Function) -> dict[str, str]:
    """Status variables tested for failure: `if (ret)` (0 is success) or `if (ret < 0)`."""
    out: dict[str, str] = {}
    for n in fn.nodes:
        if n.kind != "cond" or n.ast is None:
            continue
        t = norm(text(strip_parens(n.ast)))
        m = re.fullmatch(r"(\w+)(<0)?", t)
        if m:
            out.setdefault(m.group(1), "nonneg" if m.group(2) else "zero")
    return out
