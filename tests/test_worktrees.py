"""Git worktrees share one board (SPEC section 2; issue 17 item 1): discovery from a linked
worktree finds the main worktree's workspace, and ``coord init`` there is refused (exit 4)
unless ``--here``. The tests make real repositories and worktrees with git."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agentcoord.workspace import SUBDIR, find_root, worktree_main

from .conftest import COORD
from .gitrepo import git, repo_with_worktrees

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None and os.environ.get("CI") != "true", reason="needs git"
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one commit and a linked worktree at ``../proj-frontend``."""
    return repo_with_worktrees(tmp_path, "frontend")


def coord(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COORD_DIR", "COORD_URL")}
    return subprocess.run(
        [*COORD, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_worktree_main_reads_what_git_says(repo: Path) -> None:
    worktree = repo.parent / "proj-frontend"
    common = git(worktree, "rev-parse", "--path-format=absolute", "--git-common-dir").strip()
    assert worktree_main(str(worktree)) == os.path.dirname(common) == str(repo)
    assert worktree_main(str(repo)) is None  # the main worktree itself
    assert worktree_main(str(repo.parent)) is None  # no repository


def test_a_linked_worktree_finds_the_main_board(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert coord(repo, "init").returncode == 0
    worktree = repo.parent / "proj-frontend"
    (worktree / "src" / "deep").mkdir(parents=True)
    made = coord(worktree / "src" / "deep", "--json", "task", "create", "from the worktree")
    assert made.returncode == 0, made.stderr
    listed = json.loads(coord(repo, "--json", "task", "list").stdout)
    assert [t["title"] for t in listed] == ["from the worktree"]
    monkeypatch.chdir(worktree / "src")
    monkeypatch.delenv("COORD_DIR", raising=False)
    assert find_root() == str(repo / SUBDIR)
    assert not (worktree / ".claude").exists()


def test_init_in_a_linked_worktree_is_refused_unless_here(repo: Path) -> None:
    worktree = repo.parent / "proj-frontend"
    for board_exists in (False, True):
        if board_exists:
            assert coord(repo, "init").returncode == 0
        refused = coord(worktree, "--json", "init")
        assert refused.returncode == 4, refused.stderr
        error = json.loads(refused.stderr.strip().splitlines()[-1])["error"]
        assert error["main"] == str(repo) and "--here" in error["message"]
        assert not (worktree / ".claude").exists()
    own = coord(worktree, "init", "--here")
    assert own.returncode == 0, own.stderr
    assert (worktree / SUBDIR).is_dir()
    # a worktree's own board wins over the main one from then on (it was asked for)
    assert coord(worktree, "task", "create", "own").returncode == 0
    titles = [t["title"] for t in json.loads(coord(worktree, "--json", "task", "list").stdout)]
    assert titles == ["own"]


def test_a_submodule_git_file_is_not_a_worktree(tmp_path: Path) -> None:
    """A submodule's ``.git`` file names a gitdir without ``commondir``: not a worktree."""
    sub = tmp_path / "sub"
    gitdir = tmp_path / "super" / ".git" / "modules" / "sub"
    gitdir.mkdir(parents=True)
    sub.mkdir()
    (sub / ".git").write_text(f"gitdir: {gitdir}\n")
    assert worktree_main(str(sub)) is None
    (sub / ".git").write_text("not a gitdir line\n")
    assert worktree_main(str(sub)) is None


def test_a_committed_board_directory_does_not_split_the_board(repo: Path) -> None:
    """``coord init`` un-ignores the board's README.md and .gitkeep, so once committed every
    checkout of the branch has a ``.claude/coordination/``: a new worktree still uses the main
    worktree's board (the new-user review of issue 17 found it silently empty)."""
    assert coord(repo, "init").returncode == 0
    assert coord(repo, "task", "create", "shared", "--id", "t1").returncode == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "board")
    late = repo.parent / "proj-late"
    git(repo, "worktree", "add", "-q", str(late), "-b", "late")
    assert (late / SUBDIR / "README.md").exists()  # checked out with the branch
    listed = json.loads(coord(late, "--json", "task", "list").stdout)
    assert [t["id"] for t in listed] == ["t1"]
    # Until 'init --here' makes it a board of the worktree's own.
    assert coord(late, "init", "--here").returncode == 0
    assert json.loads(coord(late, "--json", "task", "list").stdout) == []
    assert [t["id"] for t in json.loads(coord(repo, "--json", "task", "list").stdout)] == ["t1"]
