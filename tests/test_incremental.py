"""What makes a batch fast must not change what it finds: incremental parsing, derived
sibling indexes and per-directory file listings give the same results as the slow way."""

from __future__ import annotations

import random

import pytest

from reviewbot import cmodel
from reviewbot.checks.siblings import SiblingIndex
from reviewbot.cmodel import parse as cparse
from reviewbot.context.tree import CodeContext
from reviewbot.packs import load_packs


def _c_files(corpus_dir) -> list:
    return sorted(p for p in corpus_dir.glob("cases/*/base/**/*.c"))[:12]


def _edits(src: bytes, rng: random.Random) -> list[bytes]:
    """Edits a patch makes: a goto becomes a return, a line is added, a call is deleted."""
    lines = src.split(b"\n")
    out = []
    gotos = [i for i, ln in enumerate(lines) if b"goto " in ln]
    calls = [i for i, ln in enumerate(lines) if ln.strip().endswith(b");") and b"(" in ln]
    for i in rng.sample(gotos, min(2, len(gotos))):
        new = lines[:]
        new[i] = new[i].replace(b"goto", b"return -EIO; //")
        out.append(b"\n".join(new))
    for i in rng.sample(calls, min(2, len(calls))):
        new = lines[:]
        del new[i]
        out.append(b"\n".join(new))
        new = lines[:]
        new.insert(i, b"\tkfree(p);")
        out.append(b"\n".join(new))
    return out


def test_incremental_parse_matches_full_parse(corpus_dir) -> None:
    rng = random.Random(7)
    checked = 0
    for path in _c_files(corpus_dir):
        src = path.read_bytes()
        for new in _edits(src, rng):
            cparse._CACHE.clear()
            old = cmodel.parse_c(src, str(path))
            old_sexp = str(old.tree.root_node)
            inc = cmodel.parse_c(new, str(path))  # from old's tree
            full = cparse._parse_c(new, str(path))
            assert inc.clean == full.clean
            if not full.tree.root_node.has_error:
                assert str(inc.tree.root_node) == str(full.tree.root_node), path
            assert [(f.name, f.start_line, f.end_line) for f in inc.functions] == \
                [(f.name, f.start_line, f.end_line) for f in full.functions]
            assert str(old.tree.root_node) == old_sexp  # the old tree was not edited
            checked += 1
    assert checked >= 20


def test_incremental_parse_of_unrelated_text_is_a_full_parse() -> None:
    cparse._CACHE.clear()
    cmodel.parse_c("int a(void) { return 0; }\n", "x.c")
    cf = cmodel.parse_c("static void b(int x)\n{\n\tif (x)\n\t\tc();\n}\n", "x.c")
    assert [f.name for f in cf.functions] == ["b"]
    assert str(cf.tree.root_node) == str(cparse._parse_c(cf.source, "x.c").tree.root_node)


def test_preprocess_blanks_annotations_keeping_offsets() -> None:
    src = (b"static int __init foo(void) __acquires(&l->lock)\n{\n"
           b"\tstruct x *p __free(kfree) = NULL;\n\t__le32 v;\n\tint __attribute__((unused))\n"
           b"\t\tw;\n\treturn __init_rwsem(p);\n}\n")
    clean, notes = cmodel.preprocess(src)
    assert len(clean) == len(src) and clean.count(b"\n") == src.count(b"\n")
    assert b"__init " not in clean and b"__acquires" not in clean and b"__free" not in clean
    assert b"__le32" in clean and b"__init_rwsem(p)" in clean  # a type and a plain call stay
    assert [(a.name, a.arg, a.line) for a in notes] == [
        ("__acquires", "&l->lock", 1), ("__free", "kfree", 3), ("__attribute__", "(unused)", 5)]


def test_derived_sibling_index_equals_a_fresh_one(corpus_dir) -> None:
    base = corpus_dir / "cases" / "035-trans-remove-revoke-glock-put" / "base"
    if not base.is_dir():
        pytest.skip("case 035 not in the corpus")
    packs = load_packs()
    files = {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*.c"))}
    whole = SiblingIndex(files, packs)
    assert whole.by_sig  # the revoke lists are torn down in several places

    def view(ix: SiblingIndex):
        return (ix.wanted, ix.summ, {k: [(t.fn, t.obj, t.line, sorted(t.drops)) for t in v]
                                     for k, v in ix.by_sig.items()})

    for path, text in files.items():
        # drop every glock put from one file: the others' index is reused, this one re-read
        changed = text.replace("gfs2_glock_put(", "gfs2_glock_hold(")
        derived = whole.with_files({path: changed})
        fresh = SiblingIndex({**files, path: changed}, packs)
        assert view(derived) == view(fresh), path
        emptied = whole.with_files({path: ""})
        assert view(emptied) == view(SiblingIndex({**files, path: ""}, packs))
    assert whole.with_files(dict(files)) is whole


def test_dir_files_lists_one_directory(tmp_path) -> None:
    (tmp_path / "fs" / "x" / "sub").mkdir(parents=True)
    (tmp_path / "fs" / "x" / "a.c").write_text("int a;\n")
    (tmp_path / "fs" / "x" / "b.h").write_text("int b;\n")
    (tmp_path / "fs" / "x" / "sub" / "c.c").write_text("int c;\n")
    (tmp_path / "top.c").write_text("int t;\n")
    ctx = CodeContext(str(tmp_path))
    assert ctx.dir_files("fs/x") == {"fs/x/a.c": "int a;\n"}
    assert ctx.dir_files(".") == {"top.c": "int t;\n"}
    assert ctx.dir_files("fs/nope") == {}
    assert ctx.dir_files("../etc") == {}


def test_dir_files_lists_one_directory_of_a_git_tree(make_repo) -> None:
    repo = make_repo({"fs/x/a.c": "int a;\n", "fs/x/b.h": "int b;\n",
                      "fs/x/sub/c.c": "int c;\n", "top.c": "int t;\n"})
    ctx = CodeContext(repo.workdir)
    assert ctx.kind == "git"
    assert ctx.dir_files("fs/x") == {"fs/x/a.c": "int a;\n"}
    assert ctx.dir_files(".") == {"top.c": "int t;\n"}
    assert ctx.dir_files("fs/x/a.c") == {} and ctx.dir_files("fs/nope") == {}


def test_dropped_graph_is_built_again_with_the_same_findings(corpus_dir) -> None:
    import gc

    from reviewbot.review.analysis import analyze_cfile

    case = corpus_dir / "cases" / "001-seedA-create-inode-iopen-unlock" / "base"
    path = next(case.rglob("inode.c"))
    cf = cparse._parse_c(path.read_bytes(), "fs/gfs2/inode.c")
    first = [(f.line, f.rule) for f in analyze_cfile(cf, "fs/gfs2/inode.c")]
    assert first
    fn = cf.by_name()["gfs2_create_inode"]
    nodes = list(fn.nodes)
    for f in cf.functions:
        f.drop_cfg()
    assert fn.nodes == [] and all(not n.succ for n in nodes)
    del nodes
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        again = [(f.line, f.rule) for f in analyze_cfile(cf, "fs/gfs2/inode.c")]
        for f in cf.functions:
            f.drop_cfg()
        gc.collect()
        cyclic = [o for o in gc.garbage if type(o).__name__ in ("Node", "PNode")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert again == first
    assert not cyclic  # graphs and syntax views were freed without the cyclic collector


def _same_function(a: cmodel.Function, b: cmodel.Function) -> bool:
    return (a.name, a.start_line, a.end_line, a.params, a.is_static, str(a.node)) == \
        (b.name, b.start_line, b.end_line, b.params, b.is_static, str(b.node)) and \
        [(n.name, n.arg, n.offset, n.line) for n in a._notes] == \
        [(n.name, n.arg, n.offset, n.line) for n in b._notes]


def test_region_parse_gives_the_functions_of_a_whole_file_parse(corpus_dir) -> None:
    checked = 0
    for path in sorted(corpus_dir.glob("cases/*/base/**/*.c")):
        raw = path.read_bytes()
        if len(raw) < cmodel.REGION_MIN_BYTES:
            continue
        full = cparse._parse_c(raw, str(path))
        for fn in full.functions[::7]:
            for line in (fn.start_line, (fn.start_line + fn.end_line) // 2, fn.end_line):
                part = cmodel.parse_region(raw, str(path), {line})
                got = [f for f in part.functions if f.start_line <= line <= f.end_line]
                assert got and _same_function(got[0], fn), (path, fn.name, line)
                checked += 1
            by_name = cmodel.parse_region(raw, str(path), set(), {fn.name})
            assert any(_same_function(f, fn) for f in by_name.functions), (path, fn.name)
    assert checked >= 50


def test_region_parse_reads_only_the_region_and_falls_back_when_cut() -> None:
    filler = "".join(f"static int pad{i}(void)\n{{\n\treturn {i};\n}}\n\n" for i in range(400))
    src = filler + "int target(int x)\n{\n\tif (x)\n\t\treturn -EIO;\n\treturn 0;\n}\n" + filler
    line = filler.count("\n") + 4
    part = cmodel.parse_region(src, "t.c", {line})
    assert [f.name for f in part.functions] == ["target"]
    assert part.functions[0].start_line == line - 3
    # a column-0 brace inside the function cuts it: the region is not clean, so the
    # whole file is parsed and the function is still found whole
    cut = filler + "int target(int x)\n{\n#if X\n\tif (x) {\n#else\n}\n#endif\n\treturn 0;\n}\n" + filler
    line = filler.count("\n") + 8
    full = cparse._parse_c(cut.encode(), "t.c")
    part = cmodel.parse_region(cut, "t.c", {line})
    want = [f.name for f in full.functions if f.start_line <= line <= f.end_line]
    assert [f.name for f in part.functions if f.start_line <= line <= f.end_line] == want


def test_region_parse_finds_a_function_by_name_wherever_its_name_starts() -> None:
    filler = "".join(f"static int pad{i}(void)\n{{\n\treturn {i};\n}}\n\n" for i in range(200))
    src = filler + "static struct x *\nnamed_here(int a)\n{\n\treturn NULL;\n}\n" + filler + \
        "int __init other_one(void)\n{\n\treturn 0;\n}\n" + filler
    part = cmodel.parse_region(src, "t.c", set(), {"named_here", "other_one", "absent"})
    assert sorted(f.name for f in part.functions) == ["named_here", "other_one"]
