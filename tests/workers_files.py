"""A worker process for tests/test_files_concurrency.py: wait for the start file, reserve,
print the outcome as JSON (one line)."""

from __future__ import annotations

import json
import os
import sys
import time

from agentcoord.api import Coordinator
from agentcoord.errors import Conflict


def main() -> None:
    target, agent, go, *patterns = sys.argv[1:]
    if target.startswith(("redis://", "unix://")):
        coord = Coordinator.open(url=target)
    else:
        coord = Coordinator.open(target)
    coord.reservations.list()  # imports and connections before the start
    with open(go + f".ready-{agent}", "w"):
        pass
    deadline = time.monotonic() + 120
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            raise SystemExit("no start signal")
        time.sleep(0.0005)
    try:
        r = coord.reservations.reserve(agent, patterns)
        out = {"agent": agent, "won": True, "id": r.id}
    except Conflict as exc:
        out = {
            "agent": agent,
            "won": False,
            "holder": exc.details.get("holder"),
            "message": exc.message,
        }
    coord.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
