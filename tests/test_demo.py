"""``coord demo`` run non-interactively: a small team finishes everything but the deliberate
failure and its dependent, the killed agent's task is reclaimed and completed by another agent,
no task is claimed twice at one epoch, and no process it started is left running."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from agentcoord.demo.team import FAIL_TASK, plan

from .conftest import COORD

#: Generous: the run takes ~10 s at --speed 5; a loaded 2-core machine may take a few times that.
TIMEOUT = 240


def demo_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("COORD_URL", None)
    env.pop("COORD_DIR", None)
    env["TMPDIR"] = str(tmp_path)  # the throw-away workspace lands (and is removed) in here
    return env


def running(pid: int) -> bool:
    """Whether ``pid`` is a live agentcoord process (gone, a zombie or a reused pid: no)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rpartition(")")[2].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    return state not in ("Z", "X") and b"agentcoord" in cmdline


@pytest.mark.slow
def test_demo_summary_shows_failure_reclaim_and_no_double_claim(tmp_path: Path) -> None:
    out = subprocess.run(
        [*COORD, "--json", "demo", "--agents", "3", "--tasks", "6", "--speed", "5"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=demo_env(tmp_path),
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads(out.stdout)  # --json: stdout is only the summary
    assert summary["ok"] is True, summary["problems"]
    assert summary["problems"] == []

    # Everything complete except the deliberate failure and what depends on it.
    tasks = summary["tasks"]
    ids = [t[0] for t in plan(6)]
    assert tasks["total"] == len(ids) == 6
    assert tasks["failed"] == [FAIL_TASK]
    assert tasks["blocked"] == ["train-aug"]
    assert tasks["complete"] == 4
    assert tasks["open"] == []
    assert summary["failure"]["agent"] == "ai-engineer"
    assert "CUDA" in summary["failure"]["error"]

    # The killed agent's task was reclaimed after its lease and finished by another agent.
    killed, reclaimed = summary["killed"], summary["reclaimed"]
    assert killed["agent"] == "ml-ops"
    assert killed["percent"] >= 30
    assert reclaimed["task"] == killed["task"]
    assert reclaimed["status"] == "complete"
    assert reclaimed["by"] not in (None, "ml-ops")
    assert reclaimed["epoch"] == killed["epoch"] + 1
    assert reclaimed["attempts"] == 1
    victim = next(a for a in summary["agents"] if a["name"] == "ml-ops")
    assert victim["exit"] == -9  # SIGKILL, by pid
    assert all(a["exit"] == 0 for a in summary["agents"] if a["name"] != "ml-ops")

    # Exactly-once: as many claims as grants, none twice.
    assert summary["double_claims"] == 0
    # five claimable tasks (train-aug is blocked before anyone can claim it) + the reclaim
    assert summary["claims"] == sum(a["claims"] for a in summary["agents"]) >= 6

    # The timer ran and was stopped by its own stop command; nothing is left running.
    assert summary["timer"]["checkpoints"] >= 1
    assert summary["timer"]["stopped"] is True
    assert len(summary["pids"]) == 4  # three agents and the timer
    assert summary["leftover_pids"] == []
    assert [p for p in summary["pids"] if running(p)] == []
    assert not Path(summary["workspace"]).exists()  # thrown away
    assert summary["elapsed"] > 0


@pytest.mark.slow
def test_demo_without_a_terminal_prints_progress_lines_and_keeps_dir(tmp_path: Path) -> None:
    keep = tmp_path / "kept"
    out = subprocess.run(
        [*COORD, "demo", "--agents", "2", "--tasks", "4", "--speed", "10", "--keep", str(keep)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=demo_env(tmp_path),
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "\x1b[" not in text  # no colour, no screen handling in a pipe
    assert "ai-engineer failed augment" in text
    assert "train-aug blocked" in text
    assert "demo: killed ml-ops" in text
    assert "after ml-ops's lease expired" in text
    assert "demo finished in" in text
    assert "double claims: 0" in text
    assert "all stopped" in text
    root = keep / ".claude" / "coordination"
    assert (root / "task-tokenizer.md").exists()
    # The kept workspace is a normal one: the dashboard renders it.
    frame = subprocess.run(
        [*COORD, "--dir", str(root), "dashboard", "--width", "80", "--height", "24"],
        capture_output=True,
        text=True,
        timeout=60,
        env=demo_env(tmp_path),
        check=False,
    )
    assert frame.returncode == 0, frame.stderr
    assert "2/4 done" in frame.stdout
    assert "ml-ops" in frame.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--agents", "1"], "--agents"),
        (["--agents", "9"], "--agents"),
        (["--tasks", "3"], "--tasks"),
        (["--speed", "0"], "--speed"),
        (["--timeout", "-1"], "--timeout"),
        (["--bogus"], "bogus"),
    ],
)
def test_bad_input_is_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    out = subprocess.run(
        [*COORD, "--json", "demo", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=demo_env(tmp_path),
        check=False,
    )
    assert out.returncode == 2
    assert out.stdout == ""
    error = json.loads(out.stderr)["error"]
    assert error["code"] == "invalid_input"
    assert needle in error["message"]


def test_keep_refuses_a_directory_with_files(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine\n")
    out = subprocess.run(
        [*COORD, "demo", "--keep", str(tmp_path / "busy")],
        capture_output=True,
        text=True,
        timeout=60,
        env=demo_env(tmp_path),
        check=False,
    )
    assert out.returncode == 2
    assert "not empty" in out.stderr
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine\n"
