"""Multi-process guarantees on the Redis backend (issue 6 "Must show"): claim exactly once and
no lost update, with 8 and 32 worker processes (tests/workers_redis.py) on one workspace."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from agentcoord.api import Coordinator
from agentcoord.errors import NotFound

from .redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

REPO = str(Path(__file__).resolve().parent.parent)


def workspace_url(server: RedisServer) -> str:
    return f"{server.url}?workspace=cc-{uuid.uuid4().hex[:10]}"


def run_workers(coord: Coordinator, argvs: list[list[str]]) -> list[dict[str, object]]:
    """Start one worker per argv, release them together, return their JSON results."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.workers_redis", *argv],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    client = coord.store.c.client  # type: ignore[attr-defined]
    ready, go = (f"test:{coord.store.workspace}:{k}" for k in ("ready", "go"))  # type: ignore[attr-defined]
    try:
        deadline = time.monotonic() + 120
        while int(client.get(ready) or 0) < len(procs):
            assert time.monotonic() < deadline, "workers did not start"
            for p in procs:
                assert p.poll() is None, p.communicate()
            time.sleep(0.02)
        client.rpush(go, *["go"] * len(procs))
        results = []
        for p in procs:
            stdout, stderr = p.communicate(timeout=240)
            assert p.returncode == 0, stderr
            results.append(json.loads(stdout.strip().splitlines()[-1]))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()


@pytest.mark.parametrize("procs", [8, 32])
def test_claim_200_tasks_exactly_once(procs: int, redis_server: RedisServer) -> None:
    url = workspace_url(redis_server)
    coord = Coordinator.open(url=url)
    for i in range(200):
        coord.tasks.create(f"task {i}", id=f"t{i}")
    results = run_workers(coord, [["claim", url, f"w{i}"] for i in range(procs)])
    claims = [(r["agent"], tid) for r in results for tid, _ in r["claimed"]]  # type: ignore[attr-defined]
    ids = [tid for _, tid in claims]
    assert len(ids) == 200
    assert len(set(ids)) == 200
    for agent, tid in claims:
        task = coord.tasks.get(tid)
        assert (task.status, task.agent, task.epoch) == ("in_progress", agent, 1)
    assert coord.store.list_task_heads(statuses=["pending"]) == []
    coord.close()


@pytest.mark.parametrize("procs", [8, 32])
def test_2000_progress_updates_and_increments_lose_nothing(
    procs: int, redis_server: RedisServer
) -> None:
    url = workspace_url(redis_server)
    coord = Coordinator.open(url=url)
    coord.tasks.create("shared", id="shared")
    coord.agents.register("a1")
    coord.tasks.claim("shared", agent="a1", lease_seconds=3600)
    shares = [2000 // procs + (i < 2000 % procs) for i in range(procs)]
    argvs = [["progress", url, "a1", "shared", str(n), f"w{i}"] for i, n in enumerate(shares)]
    run_workers(coord, argvs)
    task = coord.tasks.get("shared")
    assert task.metrics["counter"] == 2000
    for i, n in enumerate(shares):
        assert task.metrics[f"w{i}"] == n
    # The head index followed every write: the task is listed under its state, once.
    assert [h.id for h in coord.store.list_task_heads(statuses=["in_progress"])] == ["shared"]
    coord.close()


def test_a_stale_remembered_value_never_decides(redis_server: RedisServer) -> None:
    """Each store starts an update from the value it last wrote (one round trip fewer); what
    another process wrote meanwhile must still decide refusals and "no change"."""
    from agentcoord.core.models import Task
    from agentcoord.errors import Conflict
    from agentcoord.store.redis.store import RedisStore

    url = workspace_url(redis_server)
    a, b = RedisStore(url), RedisStore(url)

    def holder(name: str):  # type: ignore[no-untyped-def]
        def fn(task: Task) -> Task:
            task.agent = name
            return task

        return fn

    def needs_new(task: Task) -> Task:
        if task.agent != "new":
            raise Conflict(f"held by {task.agent}")
        task.metrics["ok"] = 1
        return task

    a.create_task(Task("1", "x"))
    a.update_task("1", holder("old"))  # a remembers agent "old"
    b.update_task("1", holder("new"))
    assert a.update_task("1", needs_new).metrics == {"ok": 1}
    b.update_task("1", holder("newer"))
    assert a.update_task("1", lambda t: None).agent == "newer"
    a.archive_task("1", lambda t: True)
    with pytest.raises(NotFound):
        b.update_task("1", holder("gone"))
    a.close()
    b.close()
