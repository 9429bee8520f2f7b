"""``coord setup git``: the pre-commit guard (SPEC sections 12 and 13; issue 18). Real ``git
commit`` runs: refused while another agent holds an exclusive reservation on a staged file,
allowed after release; a user's own pre-commit script keeps running; ``--remove`` gives its
bytes back."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agentcoord.ops.setup import GIT_BEGIN, GIT_END, git_block

from .gitrepo import git_env
from .test_sessions import coord

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

COORD_BIN = str(Path(sys.executable).with_name("coord"))
USER_HOOK = b'#!/bin/sh\n# my own checks\necho user-hook-ran > "$(git rev-parse --git-dir)/ran"\n'


def git(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in git_env(**env).items() if k not in ("COORD_DIR", "COORD_URL")}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=120, check=False
    )


def setup_git(cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return coord(cwd, "setup", "git", "--coord", COORD_BIN, *extra)


def commit(cwd: Path, name: str, agent: str) -> subprocess.CompletedProcess[str]:
    path = cwd / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(path.read_text() + "more\n" if path.exists() else "new\n")
    assert git(cwd, "add", name).returncode == 0
    return git(cwd, "commit", "-q", "-m", f"change {name}", COORD_AGENT=agent)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one commit, a board, and agents alice and bob."""
    root = tmp_path / "proj"
    root.mkdir()
    assert git(root, "init", "-q", "-b", "main").returncode == 0
    (root / "README").write_text("x\n")
    git(root, "add", "README")
    assert git(root, "commit", "-q", "-m", "init").returncode == 0
    assert coord(root, "init").returncode == 0
    for name in ("alice", "bob"):
        assert coord(root, "agent", "register", name).returncode == 0
    return root


def test_a_commit_of_a_reserved_file_is_refused_and_allowed_after_release(repo: Path) -> None:
    done = setup_git(repo)
    assert done.returncode == 0, done.stderr
    assert "created .git/hooks/pre-commit" in done.stdout
    hook = repo / ".git" / "hooks" / "pre-commit"
    assert hook.stat().st_mode & 0o777 == 0o755
    assert hook.read_text().startswith("#!/bin/sh\n" + GIT_BEGIN + "\n")
    reserved = coord(
        repo, "files", "reserve", "src/api.py", "--reason", "auth refactor", COORD_AGENT="alice"
    )
    assert reserved.returncode == 0, reserved.stderr
    refused = commit(repo, "src/api.py", "bob")
    assert refused.returncode != 0
    err = refused.stderr
    assert "src/api.py is reserved by alice" in err
    assert "pattern 'src/api.py'" in err and "auth refactor" in err and "until released" in err
    assert "git commit --no-verify skips this check" in err
    assert git(repo, "log", "--format=%s", "-1").stdout.strip() == "init"
    # the holder itself commits; an unreserved file goes through for anyone
    assert git(repo, "commit", "-q", "-m", "mine", COORD_AGENT="alice").returncode == 0
    assert commit(repo, "other.txt", "bob").returncode == 0
    # released: bob's commit goes through
    again = commit(repo, "src/api.py", "bob")
    assert again.returncode != 0
    assert coord(repo, "files", "release", "src/api.py", COORD_AGENT="alice").returncode == 0
    allowed = git(repo, "commit", "-q", "-m", "bob's change", COORD_AGENT="bob")
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stderr == ""


def test_no_verify_skips_and_a_broken_board_only_warns(repo: Path) -> None:
    assert setup_git(repo).returncode == 0
    assert coord(repo, "files", "reserve", "a.txt", COORD_AGENT="alice").returncode == 0
    (repo / "a.txt").write_text("x\n")
    git(repo, "add", "a.txt")
    skipped = git(repo, "commit", "-q", "--no-verify", "-m", "skip", COORD_AGENT="bob")
    assert skipped.returncode == 0
    shutil.rmtree(repo / ".claude" / "coordination")  # no board any more
    warned = commit(repo, "a.txt", "bob")
    assert warned.returncode == 0, warned.stderr
    lines = [x for x in warned.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("agentcoord: warning: reservation check")


def test_a_users_hook_keeps_running_and_remove_restores_it(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_bytes(USER_HOOK)
    hook.chmod(0o750)
    dry = setup_git(repo, "--dry-run")
    assert dry.returncode == 0 and "would update .git/hooks/pre-commit" in dry.stdout
    assert hook.read_bytes() == USER_HOOK
    assert setup_git(repo).returncode == 0
    text = hook.read_text()
    assert text.startswith("#!/bin/sh\n" + GIT_BEGIN)
    assert text.endswith(USER_HOOK.decode().split("\n", 1)[1])
    assert hook.stat().st_mode & 0o777 == 0o750
    again = setup_git(repo)
    assert "unchanged .git/hooks/pre-commit (up to date)" in again.stdout
    assert hook.read_text() == text
    assert commit(repo, "b.txt", "bob").returncode == 0
    assert (repo / ".git" / "ran").read_text() == "user-hook-ran\n"  # the user's part ran
    assert coord(repo, "files", "reserve", "b.txt", COORD_AGENT="alice").returncode == 0
    (repo / ".git" / "ran").unlink()
    assert commit(repo, "b.txt", "bob").returncode != 0
    assert not (repo / ".git" / "ran").exists()  # refused before the user's checks
    removed = setup_git(repo, "--remove")
    assert removed.returncode == 0, removed.stderr
    assert hook.read_bytes() == USER_HOOK
    assert hook.stat().st_mode & 0o777 == 0o750
    assert git(repo, "commit", "-q", "-m", "now", COORD_AGENT="bob").returncode == 0


def test_remove_of_a_hook_setup_created_deletes_it_and_keeps_the_directory(repo: Path) -> None:
    hooks = repo / ".git" / "hooks"
    assert setup_git(repo).returncode == 0
    assert setup_git(repo, "--remove").returncode == 0
    assert not (hooks / "pre-commit").exists() and hooks.is_dir()


def test_a_user_edit_of_the_hook_is_kept_on_remove(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"
    assert setup_git(repo).returncode == 0
    hook.write_text(hook.read_text() + "echo mine\n")
    assert setup_git(repo, "--remove").returncode == 0
    assert hook.read_text() == "#!/bin/sh\necho mine\n"


def test_hooks_path_inside_is_used_and_outside_is_refused(repo: Path, tmp_path: Path) -> None:
    git(repo, "config", "core.hooksPath", ".githooks")
    done = setup_git(repo)
    assert done.returncode == 0, done.stderr
    assert (repo / ".githooks" / "pre-commit").is_file()
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    assert coord(repo, "files", "reserve", "c.txt", COORD_AGENT="alice").returncode == 0
    assert commit(repo, "c.txt", "bob").returncode != 0
    assert setup_git(repo, "--remove").returncode == 0
    assert not (repo / ".githooks" / "pre-commit").exists()
    outside = tmp_path / "shared-hooks"
    git(repo, "config", "core.hooksPath", str(outside))
    refused = setup_git(repo)
    assert refused.returncode == 2
    assert "outside the repository" in refused.stderr and str(outside) in refused.stderr
    assert not outside.exists()


def test_a_linked_worktree_installs_the_shared_hook(repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "proj-wt"
    assert git(repo, "worktree", "add", "-q", str(wt), "-b", "wt").returncode == 0
    done = setup_git(wt)
    assert done.returncode == 0, done.stderr
    assert (repo / ".git" / "hooks" / "pre-commit").is_file()
    assert (repo / ".claude" / ".coordination-setup.json").is_file()  # the main worktree's
    assert coord(repo, "files", "reserve", "d.txt", COORD_AGENT="alice").returncode == 0
    refused = commit(wt, "d.txt", "bob")
    assert refused.returncode != 0 and "d.txt is reserved by alice" in refused.stderr


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (b"#!/usr/bin/env python3\nprint(1)\n", 4, "python3 script"),
        (b"#!/bin/sh\n# agentcoord:end\n", 6, "without"),
        (b"\xff\xfe#!/bin/sh\n", 6, "UTF-8"),
    ],
)
def test_hooks_it_cannot_edit_are_refused_and_left_alone(
    repo: Path, content: bytes, code: int, message: str
) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_bytes(content)
    done = setup_git(repo)
    assert done.returncode == code, done.stderr
    assert message in done.stderr
    assert hook.read_bytes() == content
    assert not (repo / ".claude" / ".coordination-setup.json").exists()


def test_outside_a_repository_is_exit_2(tmp_path: Path) -> None:
    done = setup_git(tmp_path)
    assert done.returncode == 2
    assert "coord setup git" in done.stderr


def test_other_shells_and_crlf_keep_their_style() -> None:
    from agentcoord.ops.setup import TOOLS, Job, _edit

    part = TOOLS["git"].parts[0]
    bash = "#!/usr/bin/env bash\r\nset -eu\r\n"
    out = _edit(Job(part, "p", "coord", ["coord"]), bash)
    assert out == "#!/usr/bin/env bash\r\n" + git_block("coord", "\r\n") + "\r\nset -eu\r\n"
    back = _edit(Job(part, "p", "coord", ["coord"], remove=True, before=bash), out)
    assert back == bash
    bare = "echo no shebang\n"
    assert _edit(Job(part, "p", "coord", ["coord"]), bare) == git_block("coord") + "\n" + bare
    assert GIT_END in git_block("c o")
    assert "'c o' files check --staged" in git_block("c o")
