"""Worker processes for the multi-process Redis tests: ``python -m tests.workers_redis MODE URL
...`` (the URL names the workspace with ``?workspace=``). The claim and progress workers are
those of :mod:`tests.workers`; here each one, once its store is open, waits
at a barrier (``test:{workspace}:ready`` / ``:go``, outside the workspace's keys) so that all of
them start together, and prints one JSON line with what it did.
"""

from __future__ import annotations

import json
import sys
import time

from agentcoord import errors
from agentcoord.api import Coordinator

from .workers import claim_all, progress_loop


def barrier_keys(coord: Coordinator) -> tuple[str, str]:
    workspace = coord.store.workspace  # type: ignore[attr-defined]
    return f"test:{workspace}:ready", f"test:{workspace}:go"


def wait_for_go(coord: Coordinator) -> None:
    ready, go = barrier_keys(coord)
    client = coord.store.c.client  # type: ignore[attr-defined]
    client.incr(ready)
    deadline = time.monotonic() + 120
    # Short waits: the client's socket timeout (5 s) must outlast each BLPOP.
    while client.blpop([go], timeout=1) is None:
        if time.monotonic() > deadline:
            raise SystemExit("no go signal")


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
        out = claim_all(url, rest[0], ready=wait_for_go)
    elif mode == "progress":
        out = progress_loop(url, rest[0], rest[1], int(rest[2]), rest[3], ready=wait_for_go)
    elif mode == "ack":
        out = acknowledged_writes(url, rest[0])
    else:
        raise SystemExit(f"unknown mode {mode}")
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
