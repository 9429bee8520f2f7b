"""Real git repositories for tests: the one ``git`` helper (author and committer set, so a
commit works on a machine with no git identity)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git_env(**extra: str) -> dict[str, str]:
    """The environment of a git command in a test: this one, an identity, ``extra``."""
    return {**os.environ, **IDENTITY, **extra}


def git(cwd: Path, *args: str) -> str:
    """Run ``git ARGS`` in ``cwd``; its stdout (CalledProcessError when it fails)."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=git_env(), capture_output=True, text=True, check=True
    )
    return done.stdout


def repo_with_worktrees(base: Path, *names: str) -> Path:
    """``base/proj``: a repository with one commit (branch ``main``) and a linked worktree
    ``base/proj-NAME`` (branch NAME) for each name; returns the main worktree."""
    main = base / "proj"
    main.mkdir()
    git(main, "init", "-q", "-b", "main")
    (main / "README").write_text("x\n")
    git(main, "add", "README")
    git(main, "commit", "-q", "-m", "init")
    for name in names:
        git(main, "worktree", "add", "-q", str(base / f"proj-{name}"), "-b", name)
    return main
