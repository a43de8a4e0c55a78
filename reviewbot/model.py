"""The data that flows between stages: patches and series in, findings out.

source -> Series -> Patch (unidiff) -> code context -> rules -> Finding -> drafts.
Every stage takes and returns these plain objects, so each can be tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import email.message

STATUSES = ("introduced", "preexisting", "fixed")


class InputError(Exception):
    """Bad input or usage: the CLI prints it as one line and exits 2."""


@dataclass
class TraceStep:
    """One step of a finding's path: a line and what happens there."""

    line: int
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "note": self.note}


@dataclass
class Site:
    """Another place in the function where the rule found the same defect on the same
    resource (merged into one finding: reviewbot/checks/registry.py, policy 2)."""

    line: int
    message: str
    trace: list[TraceStep] = field(default_factory=list)


@dataclass
class Finding:
    """One defect a rule reports, in a function of a file."""

    rule: str  # e.g. "error-path.missing-release"
    category: str  # "error-path" | "get-put" | "ops-mismatch" | "context"
    severity: str  # "warning" | "error" | "info"
    confidence: str  # "high" | "medium" | "low"
    file: str
    function: str
    line: int  # a line of the post-image (audit: of the file read)
    message: str
    trace: list[TraceStep] = field(default_factory=list)
    status: str | None = None  # introduced | preexisting | fixed; None in audit
    # What the finding is about, for differential matching (not a line number):
    # the normalised resource key, e.g. "ip->i_iopen_gh" or "io_gl".
    resource: str = ""
    # Lines of the *patch's post-image* that the draft should quote (the finding line
    # first); fixed findings carry pre-image lines here.
    lines: list[int] = field(default_factory=list)
    # cron mode: the revision of the same series in which this finding was first drafted
    still_present_since: int | None = None
    # the other places of the same defect in the function (not in the JSON output: the
    # differential review counts them, see review/pipeline.py diff_findings)
    sites: list[Site] = field(default_factory=list)

    def match_key(self) -> tuple[str, str, str, str]:
        return (self.rule, self.file, self.function, self.resource)

    def to_json(self, with_status: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "rule": self.rule,
            "category": self.category,
            "severity": self.severity,
            "confidence": self.confidence,
            "file": self.file,
            "function": self.function,
            "line": self.line,
            "message": self.message,
            "resource": self.resource,
            "trace": [t.to_json() for t in self.trace],
        }
        if with_status and self.status is not None:
            d["status"] = self.status
        return d


@dataclass
class Patch:
    """One patch message (or a plain diff) of a series."""

    subject: str  # subject without the [PATCH ...] prefix
    raw_subject: str  # the Subject header as sent (decoded, unfolded)
    message_id: str  # without angle brackets; "" for a plain diff
    number: int = 1
    total: int = 1
    revision: int = 1
    author_name: str = ""
    author_email: str = ""
    date: str = ""  # the Date header as sent
    to: list[str] = field(default_factory=list)  # addresses as "Name <a@b>"
    cc: list[str] = field(default_factory=list)
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    list_id: str = ""
    body: str = ""  # the commit message (above the "---")
    diff: str = ""  # the diff text, from the first "diff --git"
    message: email.message.EmailMessage | None = None  # original message, if any
    source: str = ""  # where it was read from (file path, URL), for messages
    unreviewable: str = ""  # why its diff cannot be reviewed (set on input), else ""

    @property
    def patchset(self):  # unidiff.PatchSet, parsed lazily and cached
        ps = self.__dict__.get("_patchset")
        if ps is None:
            from reviewbot.context.diff import parse_diff

            ps = parse_diff(self.diff)
            self.__dict__["_patchset"] = ps
        return ps


@dataclass
class Series:
    """The patches of one posting of a series (one revision), in order."""

    subject: str  # cover letter subject, else first patch's
    revision: int
    message_id: str  # cover letter's Message-ID, else first patch's
    patches: list[Patch] = field(default_factory=list)
    cover: Patch | None = None  # the cover letter (no diff), if any
    expected: int = 0  # the "T" of [PATCH M/T]
    missing: list[int] = field(default_factory=list)  # patch numbers not received
    replies: list[Patch] = field(default_factory=list)  # set aside: not patches

    @property
    def complete(self) -> bool:
        return not self.missing


@dataclass
class FileImage:
    """One file a patch touches: its text before and after, and where that came from."""

    path: str  # post-image path (pre-image path for a deletion)
    old_path: str
    pre: str | None  # None: new file, or could not be resolved
    post: str | None  # None: deleted file, or could not be resolved
    context: str  # "tree" | "hunks"
    resolved: bool = True
    note: str = ""  # why not resolved, or what was done instead
    # post-image line numbers the patch adds or changes (for "touched" tests)
    changed_post: set[int] = field(default_factory=set)
    changed_pre: set[int] = field(default_factory=set)


@dataclass
class PatchResult:
    """What the review of one patch found, and how its files were read."""

    patch: Patch
    context: str  # "tree" if every C file was resolved from a tree, else "hunks"
    findings: list[Finding] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)  # files not found in the tree
    notes: list[str] = field(default_factory=list)  # skipped files, binary diffs, ...
    files: list[FileImage] = field(default_factory=list)
    # functions the analyser could not walk ("path: fn(): why"): reviewed incompletely
    not_analysed: list[str] = field(default_factory=list)


@dataclass
class SeriesResult:
    """The results of a series' patches, in order."""

    series: Series
    patches: list[PatchResult] = field(default_factory=list)

    def findings(self, status: str | None = None) -> list[Finding]:
        return [
            f
            for p in self.patches
            for f in p.findings
            if status is None or f.status == status
        ]
