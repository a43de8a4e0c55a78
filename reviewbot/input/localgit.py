"""Local commits as a series (`reviewbot review --git A..B --repo PATH`), read with pygit2.

For reviewing a branch before `git send-email`: each commit of the range becomes a patch
of one series, in order; the tree is the repository itself and the base the parent of
the first commit, so every pre-image is found by its blob id.
"""

from __future__ import annotations

from reviewbot.model import InputError, Patch, Series


def _open(repo_path: str):
    import pygit2

    try:
        return pygit2.Repository(repo_path)
    except (pygit2.GitError, KeyError) as e:
        raise InputError(f"--repo {repo_path}: not a git repository ({e})") from None


def _check_sizes(repo, diff, where: str) -> None:
    """InputError for a blob of the diff larger than the tree reader takes, by its header
    (libgit2 inflates a whole blob to make the patch text: an object bomb stops here)."""
    from reviewbot.context.tree import MAX_FILE_BYTES

    for delta in diff.deltas:
        for f in (delta.old_file, delta.new_file):
            if f.id.raw == b"\0" * 20:
                continue  # the side of an added or deleted file
            _kind, size = repo.odb.read_header(f.id)
            if size > MAX_FILE_BYTES:
                raise InputError(f"{where}: {f.path}: git object {f.id} is {size} bytes by "
                                 f"its header, over the limit of {MAX_FILE_BYTES}: not read")


def series_from_range(rev_range: str, repo_path: str = ".") -> tuple[Series, str, str]:
    """(series, repository path, base revision) for `A..B`, or a single commit `C`."""
    import pygit2

    repo = _open(repo_path)
    try:
        if ".." in rev_range:
            a, b = rev_range.split("..", 1)
            start = repo.revparse_single(a or "HEAD").peel(pygit2.Commit)
            end = repo.revparse_single(b or "HEAD").peel(pygit2.Commit)
            walker = repo.walk(end.id, pygit2.enums.SortMode.TOPOLOGICAL
                               | pygit2.enums.SortMode.REVERSE)
            walker.hide(start.id)
            commits = list(walker)
            base = str(start.id)
        else:
            c = repo.revparse_single(rev_range).peel(pygit2.Commit)
            commits = [c]
            if not c.parents:
                raise InputError(f"--git {rev_range}: a root commit has no base to review against")
            base = str(c.parents[0].id)
    except (KeyError, ValueError, pygit2.InvalidSpecError):
        raise InputError(f"--git {rev_range}: does not resolve in {repo_path}") from None
    except pygit2.GitError as e:  # a corrupt pack or object, not a bad range
        cause = " ".join(str(e).split())[:300]
        raise InputError(f"--git {rev_range}: cannot be read in {repo_path}: {cause}") from None
    commits = [c for c in commits if len(c.parents) == 1]  # merges carry no patch of their own
    if not commits:
        raise InputError(f"--git {rev_range}: no commits to review")
    patches = []
    for n, c in enumerate(commits, 1):
        try:
            diff = repo.diff(c.parents[0], c, context_lines=3)
            _check_sizes(repo, diff, f"--git {rev_range}: commit {c.short_id}")
            text = diff.patch or ""  # reads the blobs: only after their headers were seen
        except pygit2.GitError as e:
            cause = " ".join(str(e).split())[:300]
            raise InputError(f"--git {rev_range}: commit {c.id} cannot be read in "
                             f"{repo_path}: {cause}") from None
        subject, _, body = c.message.partition("\n")
        patches.append(Patch(
            subject=subject.strip(), raw_subject=subject.strip(), message_id="",
            number=n, total=len(commits), author_name=c.author.name,
            author_email=c.author.email, body=body.strip(), diff=text,
            source=f"{repo_path}:{c.short_id}",
        ))
    head = patches[0].subject if len(patches) == 1 else f"{rev_range} ({len(patches)} commits)"
    return Series(subject=head, revision=1, message_id="", patches=patches,
                  expected=len(patches)), repo.workdir or repo.path, base
