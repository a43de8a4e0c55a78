"""Exit statuses of reviewbot's commands, defined once.

0 clean (nothing new found, or a run that completed), 1 new findings, 2 bad input (a
one-line message on stderr: a file, the configuration, a held lock, an unreachable
server), 3 reviewed incompletely: the command did part of its work but something was
left out (an item that failed and waits for a retry or was parked, a deadline reached, a
gap in what was read). 3 outranks 1: "incomplete" is the first thing to tell; 2 stays
"nothing could be done".
"""

from __future__ import annotations

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3



def combine(*codes: int) -> int:
    """The status of a command made of several outcomes: 2 if any is bad input, then 3
    (incomplete) over 1 (findings) over 0."""
    for code in (EXIT_BAD_INPUT, EXIT_INCOMPLETE, EXIT_FINDINGS):
        if code in codes:
            return code
    return EXIT_CLEAN
