"""The analysis engine: abstract interpretation of one function's graph under the packs.

In layers, each a module a reader can hold alone:

- ``values``: the value lattice (zero, negative, valid pointer, error pointer);
- ``keys``: how expressions name values and resources (``&x->y`` is ``x->y``);
- ``state``: the path state — resources held on a path, values, aliases, checker slots;
- ``facts``: what a function's code says before any path is walked (``FunctionFacts``);
- ``walker`` and ``transfer``: the walk and the transfer functions of branches, returns,
  statements and calls;
- ``checker``: the interface rule families implement (reviewbot/checks/).
"""

from reviewbot.engine.checker import (
    FUNCTION_EVENTS,
    HOOKS,
    PATH_EVENTS,
    Call,
    ChangeContext,
    Checker,
    Cond,
    FunctionContext,
)
from reviewbot.engine.facts import FunctionFacts, local_kinds
from reviewbot.engine.keys import ptr_key, static_key
from reviewbot.engine.state import (
    ABSENT,
    ESCAPED,
    FAILED,
    HELD,
    PENDING,
    RELEASED,
    UNKNOWN,
    Exit,
    PathState,
    Raw,
    Res,
)
from reviewbot.engine.values import ALL
from reviewbot.engine.walker import EFFORT, Walker

__all__ = [
    "FUNCTION_EVENTS", "HOOKS", "PATH_EVENTS", "Call", "ChangeContext", "Cond", "FunctionContext",
    "ABSENT", "ALL", "EFFORT", "ESCAPED", "FAILED", "HELD", "PENDING", "RELEASED", "UNKNOWN",
    "Checker", "Exit", "FunctionFacts", "PathState", "Raw", "Res", "Walker", "local_kinds",
    "ptr_key", "static_key",
]
