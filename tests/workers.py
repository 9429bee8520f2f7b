"""Worker processes for the multi-process tests: ``python -m tests.workers MODE TARGET ...``,
where TARGET is a workspace directory or a store URL.

Each prints one JSON line with what it did, so the parent can check the invariants.
"""

from __future__ import annotations

import json
import sys
import time

from agentcoord import errors
from agentcoord.api import Coordinator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from agentcoord.core.models import Task


def open_target(target: str) -> Coordinator:
    """A workspace directory, or a store URL (``redis://...?workspace=...``)."""
    return Coordinator.open(url=target) if "://" in target else Coordinator.open(target)


def claim_all(
    target: str, agent: str, ready: Callable[[Coordinator], None] | None = None
) -> dict[str, object]:
    coord = open_target(target)
    coord.agents.register(agent, takeover=True)  # identity is strict (SPEC 11)
    if ready is not None:
        ready(coord)
    claimed: list[list[object]] = []
    while True:
        try:
            task = coord.tasks.claim(agent=agent)
        except errors.NothingToClaim:
            break
        claimed.append([task.id, task.epoch])
    return {"agent": agent, "claimed": claimed}


def progress_loop(
    target: str,
    agent: str,
    task_id: str,
    n: int,
    key: str,
    ready: Callable[[Coordinator], None] | None = None,
) -> dict[str, object]:
    """``n`` progress reports (each its own read-modify-write of ``key``) and ``n`` increments
    of a shared counter through the store's atomic update: nothing may be lost."""
    coord = open_target(target)

    def incr(task: Task) -> Task:
        task.metrics["counter"] = int(task.metrics.get("counter", 0)) + 1
        return task

    if ready is not None:
        ready(coord)
    for i in range(1, n + 1):
        coord.tasks.progress(task_id, agent=agent, percent=i % 100, metrics={key: i})
        coord.store.update_task(task_id, incr)
    return {"key": key, "n": n}


def hold_then_stall(root: str, agent: str, task_id: str, lease: float) -> dict[str, object]:
    """Claim with a short lease, write, stall until another agent has taken the task over
    (the lease expired meanwhile), then try to write again."""
    coord = Coordinator.open(root)
    coord.agents.register(agent, takeover=True)
    task = coord.tasks.claim(task_id, agent=agent, lease_seconds=lease)
    coord.tasks.progress(task_id, agent=agent, percent=10, metrics={"writer": agent})
    deadline = time.monotonic() + 120
    while coord.tasks.get(task_id).agent == agent and time.monotonic() < deadline:
        time.sleep(0.05)
    outcome = "accepted"
    try:
        coord.tasks.progress(task_id, agent=agent, percent=99, metrics={"writer": agent})
    except errors.LeaseLost as exc:
        outcome = f"refused:{exc.exit_code}"
    return {"epoch": task.epoch, "late_write": outcome}


def churn(root: str, agent: str) -> None:
    """Write as fast as possible until killed (for kill -9 tests)."""
    coord = Coordinator.open(root)
    coord.agents.register(agent, takeover=True)
    i = 0
    while True:
        i += 1
        task = coord.tasks.create(f"churn {i} " + "x" * (i % 300), project="p")
        coord.tasks.claim(task.id, agent=agent)
        coord.tasks.progress(task.id, agent=agent, percent=50, metrics={"i": i})
        coord.tasks.log(task.id, "line " * (i % 50), agent=agent)
        coord.tasks.complete(task.id, agent=agent, result="ok")
        coord.agents.heartbeat(agent, workload=i % 100)


def main(argv: list[str]) -> int:
    mode, root, *rest = argv
    if mode == "claim":
        out = claim_all(root, rest[0])
    elif mode == "progress":
        out = progress_loop(root, rest[0], rest[1], int(rest[2]), rest[3])
    elif mode == "stall":
        out = hold_then_stall(root, rest[0], rest[1], float(rest[2]))
    elif mode == "churn":
        churn(root, rest[0])
        return 0
    else:
        raise SystemExit(f"unknown mode {mode}")
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
