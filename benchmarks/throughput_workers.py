"""Worker processes of the throughput benchmark, and what their reports add up to.

Each worker runs as ``python -m benchmarks.throughput_workers MODE ...``, says ``ready``, waits
for the go line (:class:`benchmarks.common.Workers`), works, and prints one JSON report:
- ``coord TARGET AGENT DEADLINE``: claim / progress / complete through agentcoord's API on a
  directory or a Redis URL, until nothing is left to claim;
- ``sqlite DB AGENT DEADLINE``: the same three updates as SQLite WAL transactions;
- ``lua URL AGENT N KEYS PAYLOAD DEADLINE``: raw redis-py GET + Lua compare-and-set.
"""

from __future__ import annotations

import json
import os
import sys
import time

from .common import Workers, ms, percentile, worker_handshake

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MODULE = "benchmarks.throughput_workers"
OPS = ("claim", "progress", "complete")


class Probe:
    """Counts and times a few hot functions inside a worker, by wrapping them from here (src/ is
    not touched): where an operation's time goes when a target is not met."""

    def __init__(self) -> None:
        self.stats: dict[str, list[float]] = {}

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        fn = owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr, None)
        if fn is None or isinstance(fn, (staticmethod, classmethod)):
            return
        stats = self.stats.setdefault(name, [0, 0.0])

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                stats[0] += 1
                stats[1] += time.perf_counter() - t0

        setattr(owner, attr, wrapper)

    def install(self, coord: Any) -> None:
        import importlib

        self.wrap(os, "fsync", "os.fsync")
        targets = [
            ("agentcoord.fs", "FileLock", "acquire", "FileLock.acquire (lock wait)"),
            ("agentcoord.store.markdown.codec.task", None, "parse_task", "codec.task.parse_task"),
            ("agentcoord.store.markdown.codec.task", None, "render_task", "codec.task.render_task"),
            ("agentcoord.domain.tasks", "TaskBoard", "_claim_one", "_claim_one (attempts)"),
        ]
        for module, cls, attr, name in targets:
            try:
                owner: Any = importlib.import_module(module)
            except ImportError:
                continue
            if cls is not None:
                owner = getattr(owner, cls, None)
                if owner is None:
                    continue
            self.wrap(owner, attr, name)
        store_cls = type(coord.store)
        for attr in ("list_tasks", "list_task_heads", "get_task", "update_task", "update_agent"):
            self.wrap(store_cls, attr, f"{store_cls.__name__}.{attr}")


def _report(agent: str, lat: dict[str, list[float]], **extra: Any) -> None:
    print(json.dumps({"agent": agent, "lat": lat, **extra}), flush=True)


def worker_coord(target: str, agent: str, deadline_s: float) -> None:
    from agentcoord import errors
    from agentcoord.api import Coordinator

    coord = Coordinator.open(url=target) if "://" in target else Coordinator.open(target)
    coord.agents.register(agent)  # identity is strict (SPEC 11)
    tasks = coord.tasks
    probe = Probe()
    probe.install(coord)
    lat: dict[str, list[float]] = {op: [] for op in (*OPS, "failed")}
    claimed: list[list[Any]] = []
    completed: list[str] = []
    failures: dict[str, int] = {}
    worker_handshake()
    start = time.monotonic()
    deadline = start + deadline_s
    while time.monotonic() < deadline:
        try:
            t0 = time.perf_counter()
            task = tasks.claim(agent=agent)
            t1 = time.perf_counter()
            claimed.append([task.id, task.epoch])
            tasks.progress(task.id, agent=agent, percent=50, metrics={"by": agent})
            t2 = time.perf_counter()
            tasks.complete(task.id, agent=agent, result=agent)
            t3 = time.perf_counter()
        except errors.NothingToClaim:
            break
        except errors.CoordError as exc:
            failures[exc.code] = failures.get(exc.code, 0) + 1
            lat["failed"].append(time.perf_counter() - t0)
            continue
        completed.append(task.id)
        lat["claim"].append(t1 - t0)
        lat["progress"].append(t2 - t1)
        lat["complete"].append(t3 - t2)
    end = time.monotonic()
    coord.close()
    _report(
        agent,
        lat,
        claimed=claimed,
        completed=completed,
        failures=failures,
        start=start,
        end=end,
        probe=probe.stats,
    )


def worker_sqlite(path: str, agent: str, deadline_s: float) -> None:
    import sqlite3

    db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    db.execute("PRAGMA synchronous=FULL")  # durable commits, like agentcoord's fsync
    lat: dict[str, list[float]] = {op: [] for op in OPS}
    claimed: list[list[Any]] = []

    def tx(sql: str, args: tuple[Any, ...]) -> Any:
        db.execute("BEGIN IMMEDIATE")
        try:
            found = db.execute(sql, args).fetchone()
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return found

    worker_handshake()
    start = time.monotonic()
    deadline = start + deadline_s
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        found = tx(
            "UPDATE tasks SET status='in_progress', agent=? WHERE id=(SELECT id FROM tasks "
            "WHERE status='pending' LIMIT 1) AND status='pending' RETURNING id",
            (agent,),
        )
        if found is None:
            break
        t1 = time.perf_counter()
        tx("UPDATE tasks SET progress=50 WHERE id=? AND agent=? RETURNING id", (found[0], agent))
        t2 = time.perf_counter()
        tx(
            "UPDATE tasks SET status='complete', progress=100 WHERE id=? AND agent=? RETURNING id",
            (found[0], agent),
        )
        t3 = time.perf_counter()
        claimed.append([found[0], 1])
        for op, a, b in (("claim", t0, t1), ("progress", t1, t2), ("complete", t2, t3)):
            lat[op].append(b - a)
    end = time.monotonic()
    _report(agent, lat, claimed=claimed, completed=[], failures={}, start=start, end=end)


LUA_CAS = """
if (redis.call('GET', KEYS[1]) or '') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


def worker_lua(url: str, agent: str, n: int, keys: int, payload: str, deadline_s: float) -> None:
    """Raw redis-py: GET a record, change it, compare-and-set it back with a Lua script."""
    import redis

    client = redis.Redis.from_url(url)
    cas = client.register_script(LUA_CAS)
    names = [f"bench:cas:{i}" for i in range(keys)]
    lat: dict[str, list[float]] = {"cas": []}
    retries = 0
    worker_handshake()
    start = time.monotonic()
    for i in range(n):
        if time.monotonic() > start + deadline_s:
            break
        key = names[(i * 7 + hash(agent)) % keys]
        t0 = time.perf_counter()
        while True:
            old = client.get(key) or b""  # the script reads a missing key as "" too
            new = payload + f"\n{agent} {i}"
            if cas(keys=[key], args=[old, new]):
                break
            retries += 1
        lat["cas"].append(time.perf_counter() - t0)
    end = time.monotonic()
    failures = {"retries": retries}
    _report(agent, lat, claimed=[], completed=[], failures=failures, start=start, end=end)


def worker_main(argv: list[str]) -> int:
    mode, *rest = argv
    if mode == "coord":
        worker_coord(rest[0], rest[1], float(rest[2]))
    elif mode == "sqlite":
        worker_sqlite(rest[0], rest[1], float(rest[2]))
    elif mode == "lua":
        worker_lua(rest[0], rest[1], int(rest[2]), int(rest[3]), rest[4], float(rest[5]))
    else:
        raise SystemExit(f"unknown worker mode {mode!r}")
    return 0


# -- running and checking --------------------------------------------------------------------
class Outcome:
    """What a group of workers did: rate, latencies, and the invariant checks."""

    def __init__(self, reports: list[dict[str, Any]]) -> None:
        self.reports = reports
        self.lat = {op: [x for r in reports for x in r["lat"].get(op, [])] for op in (*OPS, "cas")}
        self.all_lat = [x for v in self.lat.values() for x in v]
        # Failed attempts (a cycle cut short by an error) count in the time, not in the ops.
        self.failed_time = sum(x for r in reports for x in r["lat"].get("failed", []))
        wall = max(r["end"] for r in reports) - min(r["start"] for r in reports)
        self.ops = len(self.all_lat)
        self.rate = self.ops / wall if wall > 0 else 0.0
        seen: dict[Any, int] = {}
        for r in reports:
            for task_id, _epoch in r["claimed"]:
                seen[task_id] = seen.get(task_id, 0) + 1
        self.double_claims = sum(n - 1 for n in seen.values() if n > 1)
        self.failures: dict[str, int] = {}
        for r in reports:
            for code, n in r["failures"].items():
                self.failures[code] = self.failures.get(code, 0) + n
        self.lost_updates = 0
        self.unfinished = 0
        self.probe: dict[str, list[float]] = {}
        for r in reports:
            for name, (count, secs) in r.get("probe", {}).items():
                acc = self.probe.setdefault(name, [0, 0.0])
                acc[0] += count
                acc[1] += secs

    def breakdown(self) -> str:
        """Per operation: calls and time inside the probed functions (nested calls overlap)."""
        total = sum(self.all_lat) + self.failed_time
        lines = [
            f"{self.ops} operations, {ms(total / self.ops) if self.ops else 0:.1f} ms each "
            f"on average; p50 {self.p(50):.1f} ms, p99 {self.p(99):.1f} ms",
            "time inside each function per operation (nested calls overlap), share of all "
            "operation time:",
            "",
            f"{'inside':44} {'calls/op':>9} {'ms/op':>8} {'share':>6}",
        ]
        for name, (count, secs) in sorted(self.probe.items(), key=lambda kv: -kv[1][1]):
            share = 100 * secs / total if total else 0
            per = self.ops or 1
            lines.append(f"{name:44} {count / per:9.2f} {ms(secs / per):8.2f} {share:5.0f}%")
        for op, values in self.lat.items():
            if values:
                lines.append(
                    f"{op:10} p50 {ms(percentile(values, 50)):7.1f} ms  "
                    f"p99 {ms(percentile(values, 99)):7.1f} ms  max {ms(max(values)):7.1f} ms"
                )
        return "\n".join(lines)

    def p(self, pct: float) -> float:
        return ms(percentile(self.all_lat, pct)) if self.all_lat else 0.0

    def detail(self) -> str:
        parts = [
            f"{op} p50 {ms(percentile(v, 50)):.1f}/p99 {ms(percentile(v, 99)):.1f} ms"
            for op, v in self.lat.items()
            if v
        ]
        if self.failures:
            parts.append("failures " + ", ".join(f"{k}={v}" for k, v in self.failures.items()))
        return f"{self.ops} ops; " + "; ".join(parts)

    def check_final(self, target: str) -> None:
        """Every acknowledged completion must be in the final state, by the worker that made it
        (a lost update would show another holder, status or progress writer)."""
        from agentcoord.api import Coordinator

        coord = Coordinator.open(url=target) if "://" in target else Coordinator.open(target)
        for r in self.reports:
            for task_id in r["completed"]:
                task = coord.tasks.get(task_id)
                agent = r["agent"]
                if (
                    task.status != "complete"
                    or task.agent != agent
                    or task.metrics.get("by") != agent
                    or task.result != agent
                ):
                    self.lost_updates += 1
        self.unfinished = len(coord.tasks.list(status="open"))
        coord.close()


def run_coord(
    target: str, procs: int, deadline: float, env: dict[str, str] | None = None
) -> Outcome:
    agents = [f"w{i:02d}" for i in range(procs)]
    workers = Workers(
        MODULE,
        [["coord", target, a, str(deadline)] for a in agents],
        timeout=deadline + 60,
        env=env,
    )
    outcome = Outcome(workers.start().run())
    outcome.check_final(target)
    return outcome


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
