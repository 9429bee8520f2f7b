"""Worker processes for the multi-process Redis tests: ``python -m tests.workers_redis MODE URL
...`` (the URL names the workspace with ``?workspace=``).

Each worker opens the store through the public API (``Coordinator.open(url=...)``), then waits
at a barrier (``test:{workspace}:ready`` / ``:go``, outside the workspace's keys) so that all of
them start together, and prints one JSON line with what it did.
"""

from __future__ import annotations

import json
import sys
import time

from agentcoord import errors
from agentcoord.api import Coordinator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from agentcoord.models import Task


def barrier_keys(coord: Coordinator) -> tuple[str, str]:
    workspace = coord.store.workspace  # type: ignore[attr-defined]
    return f"test:{workspace}:ready", f"test:{workspace}:go"


def wait_for_go(coord: Coordinator) -> None:
    ready, go = barrier_keys(coord)
    client = coord.store._client  # type: ignore[attr-defined]
    client.incr(ready)
    deadline = time.monotonic() + 120
    # Short waits: the client's socket timeout (5 s) must outlast each BLPOP.
    while client.blpop([go], timeout=1) is None:
        if time.monotonic() > deadline:
            raise SystemExit("no go signal")


def claim_all(url: str, agent: str) -> dict[str, object]:
    coord = Coordinator.open(url=url)
    wait_for_go(coord)
    claimed: list[list[object]] = []
    while True:
        try:
            task = coord.tasks.claim(agent=agent)
        except errors.NothingToClaim:
            break
        claimed.append([task.id, task.epoch])
    return {"agent": agent, "claimed": claimed}


def progress_loop(url: str, agent: str, task_id: str, n: int, key: str) -> dict[str, object]:
    coord = Coordinator.open(url=url)

    def incr(task: Task) -> Task:
        task.metrics["counter"] = int(task.metrics.get("counter", 0)) + 1
        return task

    wait_for_go(coord)
    for i in range(1, n + 1):
        coord.tasks.progress(task_id, agent=agent, percent=i % 100, metrics={key: i})
        coord.store.update_task(task_id, incr)
    return {"key": key, "n": n}


def acknowledged_writes(url: str, agent: str) -> dict[str, object]:
    """Create tasks until the store goes away; print each id once its write is acknowledged
    (flushed line by line, so the parent knows exactly what was acknowledged)."""
    coord = Coordinator.open(url=url)
    i = 0
    started = time.monotonic()
    while time.monotonic() - started < 120:
        i += 1
        try:
            task = coord.tasks.create(f"ack {i}", id=f"{agent}-{i}")
        except errors.BackendUnavailable as exc:
            return {"stopped": exc.code, "exit": exc.exit_code, "message": exc.message}
        sys.stdout.write(f"ack {task.id}\n")
        sys.stdout.flush()
    return {"stopped": "timeout"}


def main(argv: list[str]) -> int:
    mode, url, *rest = argv
    if mode == "claim":
        out = claim_all(url, rest[0])
    elif mode == "progress":
        out = progress_loop(url, rest[0], rest[1], int(rest[2]), rest[3])
    elif mode == "ack":
        out = acknowledged_writes(url, rest[0])
    else:
        raise SystemExit(f"unknown mode {mode}")
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
