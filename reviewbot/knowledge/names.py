"""The vocabulary learning starts from: which name parts say acquire or release, when two
names are symmetric (`clk_prepare_enable` / `clk_disable_unprepare`), and the few facts
known without looking at the tree (`kfree(NULL)` is harmless, `panic()` does not return).

Names only propose; every learned pair still needs functions of the tree that agree.
"""

from __future__ import annotations

from functools import lru_cache

# verb -> the verbs that undo it (the list, and a few as common in drivers; not
# add/del: list_add .. list_del links an object, it does not own it)
ANTONYMS: dict[str, tuple[str, ...]] = {
    "get": ("put",), "alloc": ("free",), "register": ("unregister",),
    "enable": ("disable",), "prepare": ("unprepare",), "request": ("release", "free"),
    "create": ("destroy",), "map": ("unmap",), "lock": ("unlock",), "hold": ("put",),
    "ref": ("unref",), "pin": ("unpin",), "start": ("stop",),
    "init": ("exit", "cleanup", "deinit", "uninit"),
    "attach": ("detach",), "new": ("free", "destroy", "put"), "open": ("close",),
    "acquire": ("release",), "claim": ("release",), "bind": ("unbind",),
    "connect": ("disconnect",), "begin": ("end",),
    "grab": ("put", "release"), "kmalloc": ("kfree",), "kzalloc": ("kfree",),
}
_PAIRS = {(a, r) for a, rs in ANTONYMS.items() for r in rs}
ACQUIRE_VERBS = frozenset(ANTONYMS)
RELEASE_VERBS = frozenset(r for rs in ANTONYMS.values() for r in rs) | {
    "kfree", "vfree", "kvfree", "deinit", "uninit", "drop", "relse", "unreserve", "dec",
    "teardown", "unrequest", "unload", "uninstall", "iounmap", "fput", "dput", "iput"}
# tokens that end in a release verb and mean nothing of the kind
_NOT_RELEASE = frozenset({"input", "output", "throughput", "compute", "uninput", "spend",
                          "append", "extend", "backend", "frontend", "send", "blend",
                          "pend", "suspend", "legend", "dividend", "weekend", "trend",
                          "recommend", "depend", "attend", "intend", "tend", "friend"})


# verbs of setup calls: a status result tells whether the setup happened, and a caller
# that goes on after a failure leaves earlier setup in place (get-put.unchecked)
SETUP_VERBS = frozenset({"register", "init", "add", "setup", "start", "enable", "request",
                         "attach", "connect", "bind", "probe", "create", "prepare", "open",
                         "install", "activate", "online", "map", "load", "claim"})


@lru_cache(maxsize=1 << 16)
def is_setup_name(name: str) -> bool:
    """`misc_register`, `device_add`, `snd_soc_component_init`, `cdev_add`: a name with a
    setup verb, not a query or a test (`*_is_*`, `*_get_*` say nothing of setup)."""
    toks = tokens(name)
    return any(t in SETUP_VERBS for t in toks) and not any(
        t in ("is", "has", "can", "get", "check", "test") for t in toks)


def tokens(name: str) -> list[str]:
    return [t for t in name.lower().split("_") if t]


def _verb_of(tok: str, verbs: frozenset[str]) -> str | None:
    """The verb a token is or ends in (`iput` -> put, `kfree` -> free, `iounmap` -> unmap);
    a glued stem longer than two letters is a different word (`output`)."""
    if tok in verbs:
        return tok
    if tok in _NOT_RELEASE:
        return None
    for v in verbs:
        if tok.endswith(v) and 0 < len(tok) - len(v) <= 2:
            return v
    return None


@lru_cache(maxsize=1 << 16)
def is_release_name(name: str) -> bool:
    return any(_verb_of(t, RELEASE_VERBS) for t in tokens(name))


@lru_cache(maxsize=1 << 16)
def is_acquire_name(name: str) -> bool:
    return any(_verb_of(t, ACQUIRE_VERBS) for t in tokens(name))


def _antonym_tokens(a: str, b: str) -> bool:
    if (a, b) in _PAIRS:
        return True
    # glued stems: iget/iput, kmap/kunmap, dget/dput
    for va, vb in _PAIRS:
        if a.endswith(va) and b.endswith(vb) and a[:-len(va)] == b[:-len(vb)] \
                and len(a) - len(va) <= 2:
            return True
    return False


@lru_cache(maxsize=1 << 16)
def symmetric(acq: str, rel: str) -> bool:
    """Whether `rel` is named as the undo of `acq`: the same name with its verbs replaced
    by their antonyms (in the same or reverse order: clk_prepare_enable ->
    clk_disable_unprepare), allowing a trailing modifier to differ when a common stem
    remains (pm_runtime_get_sync -> pm_runtime_put)."""
    a, r = tokens(acq), tokens(rel)
    if not a or not r or a == r:
        return False
    i = 0
    while i < min(len(a), len(r)) and a[i] == r[i]:
        i += 1
    j = 0
    while j < min(len(a), len(r)) - i and a[-1 - j] == r[-1 - j]:
        j += 1
    ma, mr = a[i:len(a) - j], r[i:len(r) - j]
    if not ma or not mr:
        return False
    if len(ma) == len(mr) and (all(_antonym_tokens(x, y) for x, y in zip(ma, mr, strict=True))
                               or all(_antonym_tokens(x, y)
                                      for x, y in zip(reversed(ma), mr, strict=True))):
        return True
    # get_sync / put, alloc_coherent / free_coherent: the verb first, modifiers differ
    # (but spin_lock_init is no spin_lock: a modifier that is a verb changes the meaning)
    return bool(i > 0 and _antonym_tokens(ma[0], mr[0]) and
                not any(_verb_of(x, ACQUIRE_VERBS | RELEASE_VERBS) for x in ma[1:] + mr[1:]))


def counterparts(name: str) -> set[str]:
    """Names that would undo `name` by its words: one acquire verb replaced by an antonym
    (`sctp_endpoint_new` -> `sctp_endpoint_free`, `sctp_endpoint_destroy`, ...)."""
    toks = name.split("_")
    out: set[str] = set()
    for i, t in enumerate(toks):
        v = _verb_of(t.lower(), ACQUIRE_VERBS)
        if v is None:
            continue
        stem = t[:len(t) - len(v)]
        for r in ANTONYMS[v]:
            out.add("_".join(toks[:i] + [stem + r] + toks[i + 1:]))
    return out


MANAGED_PREFIXES = ("devm_", "pcim_", "drmm_", "dmam_")

# Known without mining (kernel documentation of each function); learned entries add to them.
NULL_SAFE = frozenset({
    "kfree", "kvfree", "vfree", "kfree_sensitive", "kvfree_sensitive", "kfree_const",
    "kmem_cache_free", "of_node_put", "fwnode_handle_put", "put_device", "kobject_put",
    "iput", "dput", "brelse", "bforget", "release_firmware", "clk_disable_unprepare",
    "clk_put", "kfree_skb", "consume_skb", "dev_kfree_skb", "dev_kfree_skb_any",
    "usb_free_urb", "bitmap_free", "debugfs_remove", "debugfs_remove_recursive",
    "regulator_put", "posix_acl_release", "crypto_free_shash", "crypto_free_skcipher",
    "free_page", "free_pages", "mempool_destroy", "kmem_cache_destroy",
    "destroy_workqueue", "gpiod_put_array"})
NORETURN = frozenset({
    "BUG", "panic", "do_exit", "do_group_exit", "make_task_dead", "kthread_exit",
    "kthread_complete_and_exit", "__module_put_and_kthread_exit", "unreachable",
    "__builtin_unreachable", "__builtin_trap", "machine_halt", "machine_power_off",
    "emergency_restart", "__stack_chk_fail", "rest_init", "cpu_startup_entry"})
# Calls that take a reference-counted object and a release callback for the last put.
KREF_PUTS = {"kref_put": 1, "kref_put_mutex": 1, "kref_put_lock": 1}
DEVM_ACTIONS = {"devm_add_action_or_reset": 1, "devm_add_action": 1}
# `.release`-like members of the types whose objects are reference counted
RELEASE_MEMBERS = {("kobj_type", "release"), ("device_type", "release"),
                   ("class", "dev_release"), ("class", "class_release"),
                   ("device", "release"), ("bus_type", "release")}
