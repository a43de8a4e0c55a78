"""The pack file format, defined once: every section, key, value type and default.

A pack is read in two steps. `read_pack` checks the parsed TOML against the classes here
(unknown keys, wrong types, values outside their choices, bad targets) and returns a
`PackFile`; loading.py then merges the packs and checks what needs all of them (references
to resources). docs/packs.md is generated from these classes (`python -m
reviewbot.packs.docs --write`; tests/test_packs_docs.py fails when the two differ).

To add a section: write its entry class (a dataclass whose fields are `key(...)`s and whose
docstring says what it is for), add a `section(...)` field for it to `PackFile`, merge it in
loading.py and regenerate the docs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from reviewbot.model import InputError

RESOURCE_KINDS = ("memory", "ref", "lock", "holder", "state")
SUCCESS_KINDS = ("zero", "nonnull", "not_err", "nonnull_not_err", "true", "nonneg", "always")
ASSIGN_VALUES = ("nonnull", "null")
_TARGET = re.compile(r"return|(?:arg|out):\d+|fmt:.+", re.S)


class PackError(InputError):
    """A pack that does not follow the schema: one line naming the file and the key."""


@dataclass(frozen=True)
class Value:
    """A kind of TOML value a key takes: described for errors and docs, and converted
    (str lists to tuples, tables to entry classes); `convert` raises ValueError when the
    value is not of the kind."""

    describe: str
    convert: Callable[[Any, str, str], Any]  # (value, file, where) -> converted
    options: tuple[str, ...] = ()  # a choice's values (for "did you mean")
    entry: type | None = None  # the entry class of a table value (for the docs)


def _plain(describe: str, ok: Callable[[Any], bool], conv: Callable[[Any], Any] = lambda v: v
           ) -> Value:
    def convert(v: Any, _file: str, _where: str) -> Any:
        if not ok(v):
            raise ValueError
        return conv(v)
    return Value(describe, convert)


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


BOOL = _plain("true or false", lambda v: isinstance(v, bool))
INT = _plain("a non-negative integer",
             lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0)
TEXT = _plain("a string", lambda v: isinstance(v, str))
TEXTS = _plain("a list of strings", _is_str_list, tuple)
NAME_MAP = _plain("a table of strings (NAME = \"TEXT\")",
                  lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
                  lambda v: tuple(sorted(v.items())))
IDS = _plain("a resource id or a list of them", lambda v: isinstance(v, str) or _is_str_list(v),
             lambda v: (v,) if isinstance(v, str) else tuple(v))
_TARGET_TEXT = '"return", "arg:N", "out:N" or "fmt:TEXT"'


def _is_target(v: Any) -> bool:
    return isinstance(v, str) and _TARGET.fullmatch(v) is not None


TARGET = _plain(_TARGET_TEXT, _is_target)
TARGETS = _plain(f"a target ({_TARGET_TEXT}) or a list of them",
                 lambda v: _is_target(v) or (isinstance(v, list) and all(map(_is_target, v))),
                 lambda v: (v,) if isinstance(v, str) else tuple(v))


def choice(*options: str) -> Value:
    plain = _plain("one of " + ", ".join(options), lambda v: v in options)
    return Value(plain.describe, plain.convert, options)


def key(default: Any = MISSING, doc: str = "", value: Value = TEXT, *, what: str = "") -> Any:
    """A key of an entry; no default means required. `what` names the value in messages
    (`unknown success 'x'`); without it a wrong value is `expected ...`."""
    return field(default=default, metadata={"doc": doc, "value": value, "what": what})


def _entry(cls: type, v: Any, file: str, where: str) -> Any:
    if not isinstance(v, dict):
        raise error(file, where, f"expected a table, got {_show(v)}")
    return read_entry(cls, v, file, where)


def one_table(cls: type) -> Value:
    """A table read as entry class `cls`."""
    return Value("a table", lambda v, file, where: _entry(cls, v, file, where), entry=cls)


def array(cls: type) -> Value:
    """An array of tables (`[[NAME]]`, or `[{...}, ...]` inline), each read as `cls`."""
    def convert(v: Any, file: str, where: str) -> tuple:
        if not isinstance(v, list):
            raise ValueError
        return tuple(_entry(cls, x, file, f"{where}[{i}]") for i, x in enumerate(v))
    return Value("an array of tables", convert, entry=cls)


def by_name(cls: type) -> Value:
    """Tables by name (`[NAME.ID]`), each read as `cls`: a dict ID -> entry."""
    def convert(v: Any, file: str, where: str) -> dict:
        if not isinstance(v, dict):
            raise ValueError
        return {k: _entry(cls, x, file, f"{where}.{k}") for k, x in v.items()}
    return Value("tables by name", convert, entry=cls)


def section(value: Value, empty: Callable[[], Any], doc: str, form: str, example: str) -> Any:
    """A top-level section of a pack: `form` is how it is written (`[calls.NAME]`) and
    `example` a TOML snippet for the docs (tests/test_packs_docs.py checks it reads)."""
    return field(default_factory=empty, metadata={"doc": doc, "value": value, "what": "",
                                                  "form": form, "example": example})


# --------------------------------------------------------------------------- entries

@dataclass(frozen=True)
class PackInfo:
    """What the pack is (`[pack]`)."""

    name: str = key("", "the pack's name in listings and findings (default: the file name)")
    doc: str = key("", "one line: what the pack covers")


@dataclass(frozen=True)
class Resource:
    """A kind of resource the calls acquire and release (`[resources.ID]`)."""

    kind: str = key("ref", "which rules apply: `lock` feeds get-put.lock-imbalance; `state` "
                    "(a transaction, a published pointer) may outlive the call and is never "
                    "a leak; `memory` and `ref` are the subjects of use-after-release and "
                    "wrong-release; `holder` is a lock holder structure",
                    choice(*RESOURCE_KINDS), what="kind")
    null_ok: bool = key(False, "releasing NULL is harmless (kfree, brelse, dput, iput)", BOOL)
    ordered: bool = key(False, "must be undone in reverse order of acquisition "
                        "(error-path.disordered)", BOOL)
    embedded: bool = key(False, "lives inside another object: freeing the object needs its "
                         "put (kobject, struct device)", BOOL)
    nests: bool = key(False, "may be acquired again while held, and is held until as many "
                      "releases (rcu_read_lock inside rcu_read_lock)", BOOL)
    doc: str = key("", "one line: what holding it means")


@dataclass(frozen=True)
class Consume:
    """A reference a call drops without being given it directly (`consumes = [{...}]`)."""

    resource: str = key(doc="the resource id dropped")
    target: str = key(doc="the expression holding it, a format of the argument texts "
                      "({0}, {1}, ...): `iget_failed` drops `GFS2_I({0})->i_gl`")


@dataclass(frozen=True)
class Call:
    """What a call does to resources (`[calls.NAME]`, NAME the function or macro)."""

    acquires: tuple[str, ...] = key((), "what a successful call leaves held", IDS)
    releases: tuple[str, ...] = key((), "what it drops", IDS)
    target: tuple[str, ...] = key((), "which value names the resource: its return value, "
                                  "argument N, the object stored through argument N "
                                  "(`out:N`, `&gl`), or a format of the argument texts "
                                  "(`fmt:{0}->i_rwsem`); needed by acquires, releases, tests",
                                  TARGETS)
    success: str = key("always", "how the caller tests that it worked",
                       choice(*SUCCESS_KINDS), what="success")
    may_be_null: bool = key(False, "the resource may be NULL even on success "
                            "(posix_acl_create)", BOOL)
    consumes: tuple[Consume, ...] = key((), "references dropped that the call is not given "
                                        "directly", array(Consume))
    escapes: str = key("", "stores the object elsewhere (`list_add`, `dev_set_drvdata`): no "
                       "longer a leak", TARGET)
    maybe_consumes: str = key("", "may take the reference over (`queue_work`): the engine "
                              "stops tracking it rather than guess", TARGET)
    must_check: bool = key(False, "its result must be tested (get-put.unchecked)", BOOL)
    acquires_nothing: bool = key(False, "looks like an acquisition, is not one "
                                 "(`gfs2_rindex_update`)", BOOL)
    alias: bool = key(False, "`x = NAME(y)` makes x another name of `NAME(y)` (`GFS2_I`)",
                      BOOL)
    returns_arg: int | None = key(None, "returns its argument N (`dget(d)` returns d)", INT)
    tests: tuple[str, ...] = key((), "a predicate true exactly when this resource is held "
                                 "(`gfs2_holder_initialized`)", IDS)


@dataclass(frozen=True)
class Assign:
    """An assignment that acquires or releases: publishing a pointer in a shared object
    (`[[assign]]`)."""

    lhs: str = key(doc="the assigned expression; `*` matches any text (`*->gl_object`)")
    value: str = key("nonnull", "`nonnull` acquires (with `acquires`), `null` releases "
                     "(with `releases`)", choice(*ASSIGN_VALUES), what="value")
    acquires: str = key("", "the resource id acquired by a non-NULL value")
    releases: str = key("", "the resource id released by NULL")


@dataclass(frozen=True)
class ResourceTest:
    """An expression true exactly when a resource is held (`[[test]]`)."""

    expr: str = key(doc="the expression, compared without white space")
    resource: str = key(doc="the resource id it tests")


@dataclass(frozen=True)
class OpsUse:
    """A use of the object that needs one ops table (`[[ops.NAME.use]]`)."""

    pattern: str = key(doc="the use; `{obj}` is the object expression, `{any}` and `*` "
                       "match any text")
    requires: str = key(doc="the table it needs (one of `tables`)")
    why: str = key("", "one line for the finding")


@dataclass(frozen=True)
class OpsAssign:
    """Storing the object somewhere that needs one ops table (`[[ops.NAME.assign]]`)."""

    lhs: str = key(doc="where it is stored; `*` matches any text")
    requires: str = key(doc="the table it needs (one of `tables`)")
    why: str = key("", "one line for the finding")


@dataclass(frozen=True)
class Ops:
    """Objects made with an ops table passed to a getter, and the uses that need one
    table (`[ops.NAME]`, for ops-mismatch)."""

    getter: str = key(doc="the call that makes the object")
    ops_arg: int = key(doc="which argument of the getter is the ops table", value=INT)
    object_arg: str = key("return", "where the getter puts the object", TARGET)
    tables: tuple[str, ...] = key((), "the ops tables of this family", TEXTS)
    use: tuple[OpsUse, ...] = key((), "uses that need one table", array(OpsUse))
    assign: tuple[OpsAssign, ...] = key((), "stores that need one table", array(OpsAssign))


REGEX = _plain("a regular expression (Python's re)", lambda v: isinstance(v, str) and _compiles(v))


def _compiles(v: str) -> bool:
    try:
        re.compile(v)
    except re.error:
        return False
    return True


@dataclass(frozen=True)
class Idioms:
    """Kernel idioms the engine knows by name: the error-pointer macros, and the names that
    look like releases (`[idioms]`, in kernel-core). A later pack's key replaces the
    earlier one's; a key a pack leaves out keeps what it was."""

    err_ptr: tuple[str, ...] = key((), "make an error pointer of an errno; `NAME(0)` is NULL "
                                   "(`ERR_PTR`)", TEXTS)
    err_cast: tuple[str, ...] = key((), "an error pointer as another pointer type "
                                    "(`ERR_CAST`)", TEXTS)
    ptr_err: tuple[str, ...] = key((), "the errno of an error pointer, negative or 0 "
                                   "(`PTR_ERR`)", TEXTS)
    is_err: tuple[str, ...] = key((), "true exactly for an error pointer (`IS_ERR`)", TEXTS)
    is_err_or_null: tuple[str, ...] = key((), "true for an error pointer or NULL "
                                          "(`IS_ERR_OR_NULL`)", TEXTS)
    release_name: str = key("", "a call no pack describes whose name this matches "
                            "(searched, any case) may release what it is passed: the engine "
                            "stops tracking that", REGEX)
    unwind_release_name: str = key("", "in a function's unwind code, a call whose name this "
                                   "matches (searched, any case) may be the release of a pair "
                                   "inferred from the code (reviewbot/knowledge/infer.py)",
                                   REGEX)
    not_acquire: tuple[str, ...] = key((), "calls never taken for the acquisition of an "
                                       "inferred pair (`IS_ERR`, `likely`, `container_of`)",
                                       TEXTS)


@dataclass(frozen=True)
class Context:
    """What the context rules (`context.blocking-in-reclaim`, `context.sleep-in-atomic`)
    need to know: where reclaim enters a subsystem, what may block or sleep, which calls
    take and drop spinlocks (`[context]`). Names ending in `*` match any name they start;
    each list of a later pack is added to the earlier ones'; `remedies` entries replace."""

    reclaim_members: tuple[str, ...] = key((), "ops members whose function runs in memory "
                                           "reclaim, `STRUCT.MEMBER` "
                                           "(`super_operations.evict_inode`)", TEXTS)
    reclaim_functions: tuple[str, ...] = key((), "functions reclaim calls, named "
                                             "(`gfs2_clear_inode`)", TEXTS)
    reclaim_tests: tuple[str, ...] = key((), "conditions true exactly in reclaim, compared "
                                         "without white space; taken as true on paths from "
                                         "an entry point (`current->flags & PF_MEMALLOC`)",
                                         TEXTS)
    reclaim_false: tuple[str, ...] = key((), "conditions false on paths from a reclaim entry "
                                         "point, compared without white space: a flag only "
                                         "the task that creates an object sets, before it "
                                         "drops the object itself", TEXTS)
    cluster_calls: tuple[str, ...] = key((), "calls that may block on the cluster (DLM "
                                         "messaging, synchronous cluster-lock enqueue)", TEXTS)
    final_puts: tuple[str, ...] = key((), "calls that drop a reference on their first "
                                      "argument and may block when it is the last "
                                      "(`gfs2_glock_put`)", TEXTS)
    extra_refs: tuple[str, ...] = key((), "calls that take a reference on their first "
                                      "argument: a later put of it is not the last "
                                      "(`gfs2_glock_hold`)", TEXTS)
    safe_calls: tuple[str, ...] = key((), "calls that never block, whatever their code "
                                      "says (`gfs2_glock_queue_put`)", TEXTS)
    remedies: tuple[tuple[str, str], ...] = key((), "the safe alternative to name in a "
                                                "finding, per call "
                                                "(`gfs2_glock_put = \"gfs2_glock_queue_put()\"`)",
                                                NAME_MAP)
    sleeping_calls: tuple[str, ...] = key((), "calls that may sleep (`wait_event*`, "
                                          "`mutex_lock*`, `msleep`)", TEXTS)
    sleeping_rarely: tuple[str, ...] = key((), "sleeping calls that sleep only now and "
                                           "then (a reschedule point, a page fault, a final "
                                           "put): a chain through callees that ends in one "
                                           "is weak evidence (`cond_resched`, "
                                           "`copy_to_user`)", TEXTS)
    sleeping_gfp: tuple[str, ...] = key((), "allocation flags that let a call sleep "
                                        "(`GFP_KERNEL`, `GFP_NOFS`)", TEXTS)
    reclaim_unsafe_gfp: tuple[str, ...] = key((), "allocation flags that let an allocation "
                                              "recurse into filesystem reclaim "
                                              "(`GFP_KERNEL`)", TEXTS)
    nofs_begin: tuple[str, ...] = key((), "calls after which allocations do not enter "
                                      "filesystem reclaim (`memalloc_nofs_save`)", TEXTS)
    nofs_end: tuple[str, ...] = key((), "calls that end such a scope "
                                    "(`memalloc_nofs_restore`)", TEXTS)
    spin_acquire: tuple[str, ...] = key((), "calls that take the spinlock (or rwlock) that "
                                        "is their first argument (`spin_lock*`)", TEXTS)
    spin_try: tuple[str, ...] = key((), "calls that take it when they return true "
                                    "(`spin_trylock`)", TEXTS)
    spin_release: tuple[str, ...] = key((), "calls that drop it (`spin_unlock*`)", TEXTS)
    mutex_acquire: tuple[str, ...] = key((), "calls that take a sleeping lock "
                                         "(`mutex_lock*`, `down_write`)", TEXTS)
    mutex_release: tuple[str, ...] = key((), "calls that drop one (`mutex_unlock`)", TEXTS)
    sleeps_dropping: tuple[tuple[str, str], ...] = key((), "sleeping calls that let go of "
                                                       "one lock while they sleep and take "
                                                       "it again before they return: the "
                                                       "call (a `*` pattern) -> that lock, a "
                                                       "template of its arguments, {0} the "
                                                       "first (`\"wait_event_lock_irq*\" = "
                                                       "\"{2}\"`)", NAME_MAP)
    lock_args: tuple[tuple[str, str], ...] = key((), "calls of the lists above whose lock "
                                                 "is not their first argument: the call -> "
                                                 "that argument, {N} the N-th from 0 "
                                                 "(`pte_unmap_unlock = \"{1}\"`)", NAME_MAP)
    reclaim_locks: tuple[str, ...] = key((), "locks reclaim itself may take, by field name: "
                                         "an allocation that may recurse into reclaim while "
                                         "one is held is reported at medium confidence, "
                                         "not low", TEXTS)


@dataclass(frozen=True)
class PackFile:
    """One pack file: its sections. Each is optional."""

    pack: PackInfo = section(one_table(PackInfo), PackInfo, "what the pack is", "[pack]", """\
[pack]
name = "gfs2"
doc = "GFS2 glock references, glock holders, transactions and glock operation tables."
""")
    resources: dict[str, Resource] = section(by_name(Resource), dict, "resource kinds",
                                             "[resources.ID]", """\
[resources.glock-ref]
kind = "ref"
doc = "a reference on a glock (gfs2_glock_get/gfs2_glock_hold .. gfs2_glock_put)"
""")
    calls: dict[str, Call] = section(by_name(Call), dict, "what calls do", "[calls.NAME]", """\
[calls.gfs2_glock_get]
acquires = "glock-ref"   # or a list: nq_init acquires ["holder-init", "holder-queued"]
target = "out:4"
success = "zero"

[calls.iget_failed]
consumes = [{ resource = "glock-ref", target = "GFS2_I({0})->i_gl" }]
""")
    assign: tuple[Assign, ...] = section(array(Assign), tuple, "assignment patterns",
                                         "[[assign]]", """\
[[assign]]
lhs = "*->gl_object"
value = "nonnull"
acquires = "gl-object"
""")
    test: tuple[ResourceTest, ...] = section(array(ResourceTest), tuple, "tests of a resource",
                                     "[[test]]", """\
[[test]]
expr = "current->journal_info"
resource = "trans"
""")
    ops: dict[str, Ops] = section(by_name(Ops), dict, "ops tables", "[ops.NAME]", """\
[ops.glops]
getter = "gfs2_glock_get"
ops_arg = 2                # gfs2_glock_get(sdp, no, &GLOPS, create, &gl)
object_arg = "out:4"
tables = ["gfs2_inode_glops", "gfs2_iopen_glops"]

[[ops.glops.use]]
pattern = "&{obj}->gl_delete"
requires = "gfs2_iopen_glops"
why = "delete work runs from the iopen glock's callback"

[[ops.glops.assign]]
lhs = "*->i_gl"
requires = "gfs2_inode_glops"
""")
    idioms: Idioms = section(one_table(Idioms), Idioms, "kernel idioms", "[idioms]", """\
[idioms]
err_ptr = ["ERR_PTR"]
is_err = ["IS_ERR"]
release_name = "(free|release|put|destroy|unlock|uninit|cleanup|drop|unref|close)"
""")
    context: Context = section(one_table(Context), Context, "reclaim and atomic context",
                               "[context]", """\
[context]
reclaim_members = ["super_operations.evict_inode", "shrinker.scan_objects"]
reclaim_tests = ["current->flags & PF_MEMALLOC", "current_is_kswapd()"]
cluster_calls = ["gfs2_glock_nq", "dlm_*"]
final_puts = ["gfs2_glock_put"]
extra_refs = ["gfs2_glock_hold"]
safe_calls = ["gfs2_glock_queue_put"]
remedies = { gfs2_glock_put = "gfs2_glock_queue_put()" }
sleeping_calls = ["wait_event*", "msleep", "mutex_lock*"]
spin_acquire = ["spin_lock*"]
spin_release = ["spin_unlock*"]
""")


# --------------------------------------------------------------------------- reading

def error(file: str, where: str, problem: str) -> PackError:
    return PackError(f"pack {file}: {where}: {problem}" if where else f"pack {file}: {problem}")


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(name: str, options) -> str:
    import difflib

    near = difflib.get_close_matches(name, list(options), n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def _fields(cls: type) -> dict[str, Any]:
    got = _FIELDS.get(cls)
    if got is None:
        got = _FIELDS[cls] = {f.name: f for f in fields(cls)}
    return got


_FIELDS: dict[type, dict[str, Any]] = {}


def read_entry(cls: type, data: dict[str, Any], file: str, where: str) -> Any:
    """`data` (a TOML table) as an instance of entry class `cls`, or a PackError."""
    known = _fields(cls)
    for name in data:
        if name not in known:
            raise error(file, where, f"unknown key {name!r} (expected "
                        f"{', '.join(known)}{did_you_mean(name, known)})")
    values: dict[str, Any] = {}
    for name, f in known.items():
        spot = f"{where}.{name}" if where else name
        if name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise error(file, where or "(top)", f"missing key {name!r} "
                            f"({f.metadata['value'].describe}: {f.metadata['doc']})")
            continue
        value: Value = f.metadata["value"]
        try:
            values[name] = value.convert(data[name], file, spot)
        except ValueError:
            got = data[name]
            what = f.metadata["what"]
            if what and isinstance(got, str):
                raise error(file, spot, f"unknown {what} {_show(got)} (expected {value.describe}"
                            f"{did_you_mean(got, value.options)})") from None
            raise error(file, spot, f"expected {value.describe}, got {_show(got)}") from None
    return cls(**values)


def read_pack(data: dict[str, Any], file: str) -> PackFile:
    """Check one parsed pack against the schema (structure and values; references to
    resources are checked by the loader, against all loaded packs)."""
    pack: PackFile = read_entry(PackFile, data, file, "")
    for name, c in pack.calls.items():
        if (c.acquires or c.releases or c.tests) and not c.target:
            raise error(file, f"calls.{name}", "acquires, releases and tests need a target "
                        f"({_TARGET_TEXT})")
    for i, a in enumerate(pack.assign):
        need = "acquires" if a.value == "nonnull" else "releases"
        other = "releases" if need == "acquires" else "acquires"
        if not getattr(a, need) or getattr(a, other):
            raise error(file, f"assign[{i}]", f"value = {a.value!r} takes {need} (and not "
                        f"{other})")
    for fam, o in pack.ops.items():
        for kind, uses in (("use", o.use), ("assign", o.assign)):
            for i, u in enumerate(uses):
                if u.requires not in o.tables:
                    raise error(file, f"ops.{fam}.{kind}[{i}].requires",
                                f"unknown table {u.requires!r} (expected one of ops.{fam}."
                                f"tables{did_you_mean(u.requires, o.tables)})")
    return pack
