"""Multi-process guarantees on the markdown backend (issue 2 "Must show")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentcoord.api import Coordinator
from agentcoord.store.markdown.codec.task import parse_task
from agentcoord.workspace import Workspace

from .conftest import COORD, coord_env

REPO = str(Path(__file__).resolve().parent.parent)


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.workers", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def collect(procs: list[subprocess.Popen[str]], timeout: float = 240) -> list[dict[str, object]]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        assert p.returncode == 0, stderr
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


@pytest.mark.slow
def test_eight_processes_claim_200_tasks_exactly_once(workspace: Workspace) -> None:
    coord = Coordinator.open(workspace.root)
    for i in range(200):
        coord.tasks.create(f"task {i}", id=f"t{i}")
    results = collect([spawn("claim", workspace.root, f"w{i}") for i in range(8)])
    claims = [(r["agent"], tid) for r in results for tid, _ in r["claimed"]]  # type: ignore[attr-defined]
    ids = [tid for _, tid in claims]
    assert len(ids) == 200
    assert len(set(ids)) == 200
    for agent, tid in claims:
        task = coord.tasks.get(tid)
        assert (task.status, task.agent, task.epoch) == ("in_progress", agent, 1)


@pytest.mark.slow
def test_four_processes_500_progress_updates_lose_nothing(workspace: Workspace) -> None:
    coord = Coordinator.open(workspace.root)
    coord.tasks.create("shared", id="shared")
    coord.agents.register("a1")
    coord.tasks.claim("shared", agent="a1", lease_seconds=3600)
    collect([spawn("progress", workspace.root, "a1", "shared", "500", f"w{i}") for i in range(4)])
    task = coord.tasks.get("shared")
    assert task.metrics["counter"] == 2000
    for i in range(4):
        assert task.metrics[f"w{i}"] == 500


@pytest.mark.slow
def test_lease_expiring_mid_run_refuses_old_holder(workspace: Workspace) -> None:
    coord = Coordinator.open(workspace.root)
    coord.tasks.create("contested", id="c1")
    coord.agents.register("new")
    old = spawn("stall", workspace.root, "old", "c1", "3")
    # Wait until the old holder has claimed and written, then take over after expiry.
    import time

    deadline = time.monotonic() + 120
    while coord.tasks.get("c1").metrics.get("writer") != "old":
        assert old.poll() is None, old.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    while True:
        try:
            new = coord.tasks.claim("c1", agent="new")
            break
        except Exception:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    coord.tasks.progress("c1", agent="new", percent=42, metrics={"writer": "new"})
    (result,) = collect([old])
    assert result["late_write"] == "refused:4"
    task = coord.tasks.get("c1")
    assert (task.agent, task.epoch, task.metrics["writer"], task.percent) == ("new", 2, "new", 42)
    assert new.attempts == 1
    # The same refusal through the CLI: exit 4.
    proc = subprocess.run(
        [*COORD, "task", "progress", "c1", "--agent", "old", "--percent", "5"],
        env=coord_env(workspace.root),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 4, proc.stderr


@pytest.mark.slow
def test_kill_9_mid_write_leaves_parseable_files_and_no_lock(workspace: Workspace) -> None:
    import fcntl
    import random
    import signal
    import time

    rng = random.Random(7)
    root = Path(workspace.root)
    for round_ in range(8):
        proc = spawn("churn", workspace.root, f"victim{round_}")
        # Kill only once it is writing (start-up is slow on a loaded machine), at a random point.
        deadline = time.monotonic() + 120
        while not any(root.glob(f".locks/agent-victim{round_}.lock")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(rng.random() * 0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    tasks = list(root.glob("task-*.md"))
    assert tasks, "the churn worker wrote nothing"
    for path in tasks:
        parse_task(path.read_text(), str(path))  # raises CorruptData if half-written
    for lock in (root / ".locks").iterdir():
        with open(lock, "rb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # would raise if held
    # The board still works after the crashes.
    coord = Coordinator.open(workspace.root)
    assert coord.tasks.create("after crash").status == "pending"
