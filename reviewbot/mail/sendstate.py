"""What `reviewbot send` remembers about drafts the SMTP server refused.

A refused draft stays where it is (a Maildir's new/, the folder of .eml files) and is
tried again by later runs, after ``retry_after_minutes`` doubled with each try; after
``max_tries`` it is moved to ``DIR/parked/`` and no longer tried. Its reason and tries are
kept in ``DIR/.reviewbot-send.json`` (written whole to a temporary file and renamed, so a
killed run leaves the old or the new file, never half of one).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from reviewbot.model import InputError

STATE_NAME = ".reviewbot-send.json"


@dataclass
class Refusal:
    reason: str
    tries: int
    next_at: float
    parked: bool = False


class SendState:
    """The refusals of the drafts in one folder, by file name."""

    def __init__(self, folder: Path, max_tries: int, retry_after: float) -> None:
        self.folder = folder
        self.path = folder / STATE_NAME
        self.max_tries = max_tries
        self.retry_after = retry_after
        self.items: dict[str, Refusal] = {}
        try:
            data = json.loads(self.path.read_text())
            self.items = {k: Refusal(**v) for k, v in data.items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise InputError(f"{self.path}: unreadable ({e}): move it aside (the drafts it"
                             " names are then tried again)") from None

    @classmethod
    def for_drafts(cls, path: Path, max_tries: int, retry_after: float) -> SendState:
        """The state of the folder holding the drafts at ``path``."""
        folder = path.parent if path.is_file() else path
        return cls(folder, max_tries, retry_after)

    def waiting(self, name: str, now: float) -> Refusal | None:
        """The refusal that holds this draft back now (its retry is not due), if any."""
        r = self.items.get(name)
        return r if r is not None and (r.parked or r.next_at > now) else None

    def refused(self, draft: Path, reason: str, now: float) -> Refusal:
        """Record a refusal; the draft is parked after the last try."""
        old = self.items.get(draft.name)
        tries = (old.tries if old else 0) + 1
        r = Refusal(reason, tries, now + self.retry_after * 2 ** (tries - 1),
                    parked=tries >= self.max_tries)
        if r.parked:
            parked = self.folder / "parked"
            parked.mkdir(exist_ok=True)
            os.replace(draft, parked / draft.name)
        self.items[draft.name] = r
        self.save()
        return r

    def sent(self, name: str) -> None:
        if self.items.pop(name, None) is not None:
            self.save()

    def save(self) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.folder)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump({k: asdict(v) for k, v in self.items.items()}, fh, indent=1)
            os.replace(tmp, self.path)
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise InputError(f"cannot write {self.path}: {e.strerror or e}") from None
