"""Git commits as signs of life (SPEC section 4, Monitor; section 5, timer summaries).

A commit counts for an agent when its author name or the local part of its author e-mail is the
agent's name, or when a ``Coord-Agent: NAME`` line names it (the trailer parallel agents add when
they commit under one shared identity). Reading git is best effort: no git binary, not a
repository, a timeout or any error gives no commits, never an exception, because the monitor must
keep working on machines and workspaces without git.
"""

from __future__ import annotations

import os
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

#: Seconds one ``git log`` may take before it is abandoned (a huge repository, a hung NFS mount).
GIT_TIMEOUT = 5.0
#: Upper bound on commits read per call: enough for any check-in window, bounded output.
MAX_COMMITS = 5000
TRAILER = "Coord-Agent"

_TRAILER = re.compile(rf"^\s*{TRAILER}\s*:\s*(\S+)\s*$", re.IGNORECASE | re.MULTILINE)
_FORMAT = "%H%x1f%ct%x1f%an%x1f%ae%x1f%B%x1e"


class Commit:
    """One commit: ``sha``, committer ``time`` (POSIX seconds), author, and the agents it names."""

    __slots__ = ("author_email", "author_name", "sha", "subject", "time", "trailers")

    def __init__(
        self,
        sha: str,
        time: float,
        author_name: str,
        author_email: str,
        *,
        subject: str = "",
        trailers: list[str] | None = None,
    ) -> None:
        self.sha = sha
        self.time = time
        self.author_name = author_name
        self.author_email = author_email
        self.subject = subject
        #: Agent names from ``Coord-Agent:`` lines, in order.
        self.trailers = trailers if trailers is not None else []

    def agents(self) -> frozenset[str]:
        """Lower-cased names this commit may stand for: author name, e-mail local part,
        trailers."""
        names = {self.author_name.strip().lower(), self.author_email.partition("@")[0].lower()}
        names.update(t.lower() for t in self.trailers)
        names.discard("")
        return frozenset(names)

    def names(self, agent: str) -> bool:
        return agent.lower() in self.agents()

    def to_dict(self) -> dict[str, object]:
        return {
            "sha": self.sha,
            "time": self.time,
            "author": self.author_name,
            "email": self.author_email,
            "subject": self.subject,
            "agents": list(self.trailers),
        }

    def __repr__(self) -> str:
        return f"Commit({self.sha[:10]!r}, {self.time!r}, {self.author_name!r}, {self.trailers!r})"


def parse_log(output: str) -> list[Commit]:
    """Parse the output of ``git log --format=`` :data:`_FORMAT` (records end with ``\\x1e``)."""
    commits = []
    for raw in output.split("\x1e"):
        record = raw.lstrip("\n")
        if not record:
            continue
        parts = record.split("\x1f", 4)
        if len(parts) != 5:
            continue
        sha, ct, name, email, body = parts
        try:
            when = float(ct)
        except ValueError:
            continue
        subject = body.strip().split("\n", 1)[0]
        trailers = _TRAILER.findall(body)
        commits.append(Commit(sha, when, name, email, subject=subject, trailers=trailers))
    return commits


def in_repository(path: str) -> bool:
    """Whether ``path`` or an ancestor has ``.git`` (a directory, or a worktree's file): a cheap
    test that spares a process start where there is no repository."""
    from ..fs import git_top

    return os.path.isdir(path) and git_top(path) is not None


def commits_since(project_root: str | None, since_ts: float) -> list[Commit]:
    """Commits on any ref of the repository at ``project_root`` committed after ``since_ts``,
    newest first; ``[]`` when there is no repository or git cannot be run."""
    if not project_root or not in_repository(project_root):
        return []
    import subprocess  # off the CLI's start-up path: only the monitor and timer need it

    env = dict(os.environ)
    env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    cmd = [
        "git",
        "--no-pager",
        "-C",
        project_root,
        "log",
        "--all",
        f"--max-count={MAX_COMMITS}",
        "--no-color",
        f"--format={_FORMAT}",
    ]
    if since_ts >= 1:  # git reads "@0" as no date at all
        cmd.insert(6, f"--since=@{int(since_ts)}")
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            env=env,
            timeout=GIT_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    if proc.returncode != 0:
        return []
    text = proc.stdout.decode("utf-8", errors="replace")
    # --since has whole-second resolution; keep the bound exact.
    return [c for c in parse_log(text) if c.time > since_ts]


def latest_by_agent(commits: Iterable[Commit], names: Iterable[str]) -> dict[str, Commit]:
    """The newest commit standing for each of ``names`` (names without commits are absent)."""
    wanted = {n.lower(): n for n in names}
    out: dict[str, Commit] = {}
    for commit in commits:
        for key in commit.agents():
            name = wanted.get(key)
            if name is None:
                continue
            best = out.get(name)
            if best is None or commit.time > best.time:
                out[name] = commit
    return out
