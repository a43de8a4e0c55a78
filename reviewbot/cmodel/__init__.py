"""The C function model: tree-sitter-c syntax trees turned into control-flow graphs.

Kernel C is not plain C: annotations such as ``__acquires(x)`` or ``__free(kfree)`` and
iterator macros such as ``list_for_each_entry(...) { ... }`` confuse any C grammar. Before
parsing, annotation macros are blanked out and remembered (annotations.py); iterator macros
are recognised in the tree and treated as loops (cfg.py). The layers, one module each:

- ``syntax``: the parser, plain-Python views of syntax nodes (``PNode``), ``text``,
  ``norm``, ``callee``, ``args`` and the node-type index of a function body;
- ``annotations``: annotation blanking (``preprocess``, ``Annotation``);
- ``cfg``: control-flow graphs (``Node``, ``build_cfg``);
- ``function``: one function and what the rules ask of it (``Function``);
- ``parse``: files into functions, whole or by regions (``CFile``, ``parse_c``,
  ``parse_region``).

The names the rest of the package uses are imported from here.
"""

from __future__ import annotations

from reviewbot.cmodel.annotations import Annotation, preprocess
from reviewbot.cmodel.cfg import Node
from reviewbot.cmodel.function import Function
from reviewbot.cmodel.parse import REGION_MIN_BYTES, CFile, lines_with, parse_c, parse_region
from reviewbot.cmodel.syntax import PNode, args, callee, line_of, norm, strip_parens, text

__all__ = ["REGION_MIN_BYTES", "Annotation", "CFile", "Function", "Node", "PNode", "args",
           "callee", "line_of", "lines_with", "norm", "parse_c", "parse_region", "preprocess",
           "strip_parens", "text"]
