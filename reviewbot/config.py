"""Configuration: one TOML file. Every key can also be given as a flag where a command says so.

Looked up in this order: --config FILE, $REVIEWBOT_CONFIG, ~/.config/reviewbot/config.toml.
Sections: [mail] (drafting and sending, see draft.py / sendmail.py), [poll] and [[lists]]
(cron mode, see poll.py), [packs] (the user's packs, see docs/packs.md), [review] tree and
[[ignore]] (findings to leave out, see docs/json.md). A missing file is an empty
configuration; a broken one is an InputError (one line, exit 2). Credentials are read from
here or the environment only.

Per-repository settings come from `git config reviewbot.*` (tree, pack, ignore), as b4
reads `b4.*`. Precedence: command line > configuration file > git config > defaults; packs
load shipped, git config, configuration file, command line (a later one wins), and ignore
lists from all three add up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewbot.model import InputError


def config_path(explicit: str | None = None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get("REVIEWBOT_CONFIG")
    if env:
        return Path(env)
    p = Path(os.path.expanduser("~/.config/reviewbot/config.toml"))
    return p if p.is_file() else None


def load_config(explicit: str | None = None) -> dict[str, Any]:
    path = config_path(explicit)
    if path is None:
        return {}
    import tomllib  # here: a run without a configuration file does not import it

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        if explicit or os.environ.get("REVIEWBOT_CONFIG"):
            raise InputError(f"config file not found: {path}") from None
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"cannot read config {path}: {e}") from None


def section(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    v = cfg.get(name, {})
    return v if isinstance(v, dict) else {}


# ------------------------------------------------- per-repository settings (git config)

GIT_KEYS = ("reviewbot.tree", "reviewbot.pack", "reviewbot.ignore")


def _may_have_keys(cwd: str) -> bool:
    """Whether a git configuration file git would read from `cwd` may set reviewbot.*
    keys: one that mentions them (or includes another file), or a repository whose config
    is not where a plain checkout keeps it (a worktree, a submodule). Reading a few small
    files spares the git subprocess (~4 ms) on the common path, a cold review's budget."""
    home = Path(os.path.expanduser("~"))
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    files = [home / ".gitconfig", xdg / "git" / "config", Path("/etc/gitconfig")]
    for var in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG"):
        if os.environ.get(var):
            files.append(Path(os.environ[var]))
    if os.environ.get("GIT_DIR") or os.environ.get("GIT_CONFIG_COUNT"):
        return True
    p = Path(cwd).resolve()
    for d in (p, *p.parents):
        dot = d / ".git"
        if dot.is_dir():
            files.append(dot / "config")
            break
        if dot.exists():
            return True  # a worktree or submodule: its config is elsewhere, let git say
    for f in files:
        try:
            text = f.read_bytes().lower()
        except OSError:
            continue
        if b"reviewbot" in text or b"include" in text:
            return True
    return False


def git_config(cwd: str = ".") -> dict[str, list[str]]:
    """The `reviewbot.*` keys git sees from `cwd` (repository, global and system files), as
    b4 reads `b4.*`: each key's values in git's order. {} when no configuration file git
    reads can have them, or without git."""
    import subprocess

    if not _may_have_keys(cwd):
        return {}
    try:
        r = subprocess.run(["git", "config", "-z", "--get-regexp", r"^reviewbot\."],
                           cwd=cwd, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    out: dict[str, list[str]] = {}
    for item in r.stdout.decode("utf-8", "replace").split("\0"):
        if item:
            key, _, value = item.partition("\n")
            out.setdefault(key.lower(), []).append(value)
    return out


@dataclass(frozen=True)
class IgnoreRule:
    """Findings to leave out: a rule (full id, short name or category), a path glob and a
    function glob (fnmatch); `where` says which setting it came from, for messages."""

    rule: str
    path: str = "*"
    function: str = "*"
    where: str = ""


def parse_ignore(spec: str, where: str) -> IgnoreRule:
    """`RULE[:PATH_GLOB[:FUNCTION]]`, the form of --ignore and of `git config reviewbot.ignore`."""
    parts = spec.strip().split(":")
    if not parts[0] or len(parts) > 3:
        raise InputError(f"{where}: {spec!r}: expected RULE[:PATH_GLOB[:FUNCTION]]")
    return IgnoreRule(parts[0], *(p or "*" for p in parts[1:]), where=where)


def config_ignores(cfg: dict[str, Any], where: str) -> list[IgnoreRule]:
    """`[[ignore]]` tables of the configuration file: rule (required), path, function."""
    items = cfg.get("ignore", [])
    if not isinstance(items, list):
        raise InputError(f"{where}: [[ignore]]: expected an array of tables")
    out = []
    for n, it in enumerate(items, 1):
        at = f"{where}: [[ignore]] #{n}"
        if not isinstance(it, dict) or not isinstance(it.get("rule"), str) or not it["rule"]:
            raise InputError(f"{at}: expected a table with rule = \"...\"")
        extra = set(it) - {"rule", "path", "function"}
        if extra:
            raise InputError(f"{at}: unknown key {sorted(extra)[0]!r} (rule, path, function)")
        for k in ("path", "function"):
            if not isinstance(it.get(k, "*"), str):
                raise InputError(f"{at}: {k}: expected a string")
        out.append(IgnoreRule(it["rule"], it.get("path", "*"), it.get("function", "*"), at))
    return out


@dataclass
class Settings:
    """What a command takes from the command line, the configuration file and git config,
    in that order of precedence (then the defaults)."""

    tree: str | None = None  # None: none given (the command may find one)
    tree_from: str = ""  # "--tree", "config FILE", "git config reviewbot.tree"
    git_packs: list[str] = field(default_factory=list)  # reviewbot.pack, absolute
    ignores: list[IgnoreRule] = field(default_factory=list)


def settings(args, cfg: dict[str, Any] | None = None, cwd: str = ".",
             tree_sections: tuple[str, ...] = ("review",)) -> Settings:
    """The settings of one command run: `args.tree` (if the command has it) over the
    configuration's `tree` (in `tree_sections`) over `git config reviewbot.tree`; ignore
    lists are added up (command line, configuration, git config)."""
    cfg = load_config(getattr(args, "config", None)) if cfg is None else cfg
    where = f"config {config_path(getattr(args, 'config', None))}"
    git = git_config(cwd)
    s = Settings()
    tree = getattr(args, "tree", None)
    if tree:
        s.tree, s.tree_from = tree, "--tree"
    else:
        for name in tree_sections:
            t = section(cfg, name).get("tree")
            if isinstance(t, str) and t:
                s.tree, s.tree_from = os.path.expanduser(t), f"{where}: [{name}] tree"
                break
        else:
            if git.get("reviewbot.tree"):
                s.tree = os.path.join(cwd, os.path.expanduser(git["reviewbot.tree"][-1]))
                s.tree_from = "git config reviewbot.tree"
    s.git_packs = [os.path.abspath(os.path.join(cwd, os.path.expanduser(p)))
                   for p in git.get("reviewbot.pack", [])]
    s.ignores = [parse_ignore(r, "--ignore") for r in getattr(args, "ignore", None) or ()]
    s.ignores += config_ignores(cfg, where)
    s.ignores += [parse_ignore(r, "git config reviewbot.ignore")
                  for r in git.get("reviewbot.ignore", [])]
    return s
