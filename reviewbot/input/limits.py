"""What one input may cost: caps on the bytes read where input enters reviewbot.

Files and standard input are read as streams (an mbox message by message), so memory
follows the largest message, not the file; past a cap the read stops with one line that
names the input and the limit (exit 2). The configuration's ``[review]`` section may
change them: ``max_input_mb`` (a whole file, stdin or directory entry), ``max_message_mb``
(one message or plain diff), and for ``--msgid`` ``timeout`` (seconds for the thread),
``max_download_mb`` and ``max_decompressed_mb`` (the thread mbox as sent and inflated).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import BinaryIO

from reviewbot.model import InputError

MIB = 1 << 20
# bytes of one C file that `audit` parses: tree-sitter spends up to ~80 bytes of memory
# per byte of dense code (a 4 MB single expression took 739 MB); the largest .c file of
# linux 6.1 is 1.7 MB. A larger file is left out, said on stderr, exit status 3.
MAX_C_FILE = 2 * MIB


@dataclass(frozen=True)
class InputCaps:
    max_input: int = 1024 * MIB  # bytes of one file or stdin (an mbox is streamed)
    max_message: int = 64 * MIB  # bytes of one message, or of a plain diff
    lore_timeout: float = 60.0  # seconds for a --msgid thread mbox, the whole transfer
    max_download: int = 64 * MIB  # bytes of that mbox as sent (gzip)
    # bytes of it inflated: a gzip bomb stops here. A thread is parsed whole (b4): ~4 bytes
    # of memory per byte, so a 64 MiB thread stays under 300 MB (lore's largest are ~20)
    max_decompressed: int = 64 * MIB

    @classmethod
    def from_config(cls, cfg: dict) -> InputCaps:
        """The caps of a ``[review]`` section; a bad value is an InputError."""
        caps = cls()
        keys = {"max_input_mb": "max_input", "max_message_mb": "max_message",
                "max_download_mb": "max_download",
                "max_decompressed_mb": "max_decompressed"}
        try:
            for key, attr in keys.items():
                if key in cfg:
                    n = int(float(cfg[key]) * MIB)
                    if n <= 0:
                        raise ValueError(f"{key} must be positive")
                    caps = replace(caps, **{attr: n})
            if "timeout" in cfg:
                t = float(cfg["timeout"])
                if t <= 0:
                    raise ValueError("timeout must be a positive number of seconds")
                caps = replace(caps, lore_timeout=t)
        except (TypeError, ValueError) as e:
            raise InputError(f"config [review]: {e}") from None
        return caps


def mib(n: int) -> str:
    """A byte count as the MiB a limit is configured in."""
    return f"{n / MIB:g} MiB"


class PrefixedStream(io.RawIOBase):
    """A stream whose first bytes were already read (to tell mail from a diff, or by the
    serve client up to its request limit): those bytes, then the rest of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self.head, self.rest = memoryview(head), rest

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.head:
            n = min(len(b), len(self.head))
            b[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.rest.read1(len(b)) if hasattr(self.rest, "read1") else \
            self.rest.read(len(b))
        b[:len(data)] = data
        return len(data)
