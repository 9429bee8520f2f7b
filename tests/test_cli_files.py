"""``coord files``: reservations through the CLI (SPEC section 13), on every backend, and the
issue's must-show across two git worktrees."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from agentcoord.api import Coordinator

from .conftest import COORD, FakeClock
from .gitrepo import git


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    (root / "src" / "api").mkdir(parents=True)
    (root / "src" / "api" / "x.py").write_text("x = 1\n")
    (root / "README.md").write_text("# r\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "init")
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def agents(coord: Coordinator) -> None:
    coord.agents.register("a1")
    coord.agents.register("b2")


def test_reserve_list_check_release(run_cli: Any, repo: Path, agents: None) -> None:
    out = run_cli(
        "--json", "files", "reserve", "src", "--agent", "a1", "--reason", "API", "--ttl", "10m"
    )
    row = json.loads(out.stdout)
    assert row["patterns"] == ["src/**"]  # an existing directory stands for what is below it
    assert row["mode"] == "exclusive" and row["expires_in"] == 600
    got = run_cli("files", "reserve", "src/api/x.py", "--agent", "b2", code=4)
    for part in ("a1", "src/**", "API", "until"):
        assert part in got.stderr
    got = run_cli("files", "check", "src/api/x.py", "README.md", "--agent", "b2", code=4)
    assert "src/api/x.py is reserved by a1 (pattern 'src/**', exclusive, reason: API" in got.stderr
    assert "README.md" not in got.stderr
    got = run_cli("--json", "files", "check", "src/api/x.py", "--agent", "b2", code=4)
    data = json.loads(got.stdout)
    assert data["ok"] is False
    assert data["conflicts"][0]["holder"] == "a1" and data["conflicts"][0]["expires"]
    assert run_cli("files", "check", "README.md", "--agent", "b2").stdout == ""
    assert run_cli("files", "check", "src/api/x.py", "--agent", "a1").stdout == ""  # its own
    listed = json.loads(run_cli("--json", "files", "list").stdout)
    assert [r["agent"] for r in listed] == ["a1"]
    assert "src/**" in run_cli("files", "list", "--agent", "a1").stdout
    released = json.loads(run_cli("--json", "files", "release", "src/", "--agent", "a1").stdout)
    assert [r["patterns"] for r in released["released"]] == [["src/**"]]
    assert run_cli("files", "list").stdout.strip() == "no reservations"
    run_cli("files", "reserve", "src/api/x.py", "--agent", "b2", "--shared")
    run_cli("files", "reserve", "src/api/x.py", "--agent", "a1", "--shared")


def test_paths_are_relative_to_the_current_directory(
    run_cli: Any, repo: Path, agents: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo / "src")
    row = json.loads(
        run_cli("--json", "files", "reserve", "api/x.py", "../README.md", "--agent", "a1").stdout
    )
    assert row["patterns"] == ["src/api/x.py", "README.md"]
    absolute = str(repo / "src" / "api" / "x.py")
    run_cli("files", "check", absolute, "--agent", "b2", code=4)


def test_session_agent_is_the_default(
    run_cli: Any, repo: Path, agents: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COORD_AGENT", "a1")
    row = json.loads(run_cli("--json", "files", "reserve", "*.md").stdout)
    assert row["agent"] == "a1"
    run_cli("files", "check", "docs/a.md")  # the session's own
    monkeypatch.delenv("COORD_AGENT")
    run_cli("files", "check", "docs/a.md", code=4)  # nobody named: every reservation counts
    run_cli("files", "reserve", "x", code=2)  # reserve needs an agent


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["/etc/passwd"], 2),
        (["../outside"], 2),
        (["src/../../x"], 2),
        ([""], 2),
        (["a\x01b"], 2),
        (["a\nb"], 2),
        (["a\\b"], 2),
        (["*/../x"], 2),
        (["x", "--ttl", "-3"], 2),
        (["x", "--ttl", "0"], 2),
        (["x", "--ttl", "soon"], 2),
        (["x", "--reason", "two\nlines"], 2),
        (["x", "--task", "no/such"], 2),
        (["x", "--task", "nope"], 3),
    ],
)
def test_bad_input(run_cli: Any, repo: Path, agents: None, args: list[str], code: int) -> None:
    run_cli("files", "reserve", *args, "--agent", "a1", code=code)
    assert run_cli("files", "list").stdout.strip() == "no reservations"


def test_other_refusals(run_cli: Any, repo: Path, agents: None) -> None:
    run_cli("files", "reserve", "x", "--agent", "ghost", code=3)
    run_cli("files", "reserve", "x", "--agent", "bad name", code=2)
    run_cli("files", "release", "--agent", "a1", code=2)  # neither paths nor --all
    run_cli("files", "release", "x", "--all", "--agent", "a1", code=2)
    run_cli("files", "check", "--agent", "a1", code=2)
    run_cli("files", "check", "x", "--staged", "--agent", "a1", code=2)
    run_cli("files", "check", "/etc/passwd", "--agent", "a1", code=2)
    run_cli("files", "frobnicate", code=2)


def test_check_staged(run_cli: Any, repo: Path, agents: None) -> None:
    run_cli("files", "reserve", "src/**", "--agent", "a1", "--reason", "mine")
    (repo / "README.md").write_text("# changed\n")
    git(repo, "add", "README.md")
    run_cli("files", "check", "--staged", "--agent", "b2")
    (repo / "src" / "api" / "x.py").write_text("x = 2\n")
    git(repo, "add", "src/api/x.py")
    got = run_cli("files", "check", "--staged", "--agent", "b2", code=4)
    assert "src/api/x.py is reserved by a1" in got.stderr and "mine" in got.stderr
    run_cli("files", "check", "--staged", "--agent", "a1")


def test_task_tied_reservation_ends_with_reap(
    run_cli: Any, repo: Path, agents: None, coord: Coordinator, clock: FakeClock
) -> None:
    coord.tasks.create("api", id="t1")
    coord.tasks.claim("t1", agent="a1", lease_seconds=60)
    run_cli("files", "reserve", "src/**", "--agent", "a1", "--task", "t1")
    run_cli("files", "reserve", "src/api/x.py", "--agent", "b2", code=4)
    clock.advance(61)
    run_cli("reap")
    assert run_cli("files", "list").stdout.strip() == "no reservations"
    run_cli("files", "reserve", "src/api/x.py", "--agent", "b2")


# -- the must-show: two agents in two worktrees of one repository -------------------
def coord_in(cwd: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for name in ("COORD_DIR", "COORD_URL", "COORD_AGENT"):
        env.pop(name, None)
    done = subprocess.run(
        [*COORD, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    return done


@pytest.mark.slow
def test_two_worktrees_overlap_and_the_reservation_ends_with_the_reaped_lease(
    tmp_path: Path,
) -> None:
    main = tmp_path / "main"
    (main / "src" / "api").mkdir(parents=True)
    (main / "src" / "api" / "x.py").write_text("x = 1\n")
    git(main, "init", "-q")
    git(main, "add", ".")
    git(main, "commit", "-q", "-m", "init")
    coord_in(main, "init")
    other = tmp_path / "other"
    git(main, "worktree", "add", "-q", str(other))
    coord_in(main, "agent", "register", "holder")
    coord_in(other, "agent", "register", "loser")  # the worktree shares the main workspace
    coord_in(main, "task", "create", "rework the API", "--id", "t1")
    coord_in(main, "task", "claim", "t1", "--agent", "holder", "--lease", "2s")
    coord_in(
        main,
        "files",
        "reserve",
        "src/api/**",
        "--agent",
        "holder",
        "--task",
        "t1",
        "--reason",
        "API rework",
    )
    # the loser, in the other worktree, asks for an overlapping path: told who holds it
    got = coord_in(other, "files", "reserve", "src/api/x.py", "--agent", "loser", code=4)
    for part in ("holder", "src/api/**", "API rework", "task t1"):
        assert part in got.stderr, got.stderr
    got = coord_in(other / "src", "files", "check", "api/x.py", "--agent", "loser", code=4)
    assert "src/api/x.py is reserved by holder" in got.stderr
    # the holder's session dies: no more heartbeats; its lease runs out and is reaped
    time.sleep(2.5)
    reaped = json.loads(coord_in(main, "--json", "reap").stdout)
    assert "t1" in json.dumps(reaped)
    assert json.loads(coord_in(other, "--json", "files", "list").stdout) == []
    assert "reservations.md" not in os.listdir(main / ".claude" / "coordination")
    coord_in(other, "files", "check", "src/api/x.py", "--agent", "loser")
    row = json.loads(
        coord_in(other, "--json", "files", "reserve", "src/api/x.py", "--agent", "loser").stdout
    )
    assert row["agent"] == "loser" and row["patterns"] == ["src/api/x.py"]


# -- review findings (issue 18) ----------------------------------------------------------------
def test_staged_renames_and_odd_names_are_checked_literally(
    run_cli: Any, repo: Path, agents: None
) -> None:
    """The pre-commit question: a rename of a reserved file touches it (its old name is
    deleted); names with spaces, '[' or '*' are files, not globs; any number of them."""
    run_cli("files", "reserve", "src/api/x.py", "--agent", "a1")
    git(repo, "mv", "src/api/x.py", "src/api/renamed.py")
    got = run_cli("files", "check", "--staged", "--agent", "b2", code=4)
    assert "src/api/x.py" in got.stderr and "a1" in got.stderr
    git(repo, "reset", "-q", "--hard")
    for name in ("src/trailing ", "src/[x].py", "src/*", *(f"src/m{i}.txt" for i in range(300))):
        (repo / name).write_text("x\n")
    git(repo, "add", "-A")
    run_cli("files", "check", "--staged", "--agent", "b2")  # nothing reserved among them: 0
    run_cli("files", "reserve", "src/m7.txt", "--agent", "a1")
    got = run_cli("files", "check", "--staged", "--agent", "b2", code=4)
    assert "src/m7.txt" in got.stderr
    assert "src/[x].py" not in got.stderr and "src/*" not in got.stderr


def test_a_directory_named_like_dot_dot_is_inside_the_repository(
    run_cli: Any, repo: Path, agents: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "..hid" / "sub").mkdir(parents=True)
    monkeypatch.chdir(repo / "..hid")
    row = json.loads(run_cli("--json", "files", "reserve", "sub/y.py", "--agent", "a1").stdout)
    assert row["patterns"] == ["..hid/sub/y.py"]
