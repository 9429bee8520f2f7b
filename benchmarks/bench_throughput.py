"""Claim / progress / complete throughput, against the file system's limit and the alternatives.

Baselines, timed in this run on the workspace's file system:
- the durable atomic-replace loop (write, fsync, replace, directory fsync): the limit for any
  durable one-file-per-record store;
- the seeds' bash recipe (``flock`` + ``sed`` + ``mv`` per task-file update), doing the same
  three updates per task;
- SQLite in WAL mode (synchronous=FULL) claiming rows, with 1 and 8 processes;
- a raw redis-py Lua compare-and-set loop, 8 processes.

Then agentcoord (Python API, durable writes): 1, 8 and 32 processes on markdown, 8 on Redis.
Every worker claims the next ready task, reports progress and completes it, until the board is
empty; afterwards the final state is checked for double claims and lost updates.

The worker processes are in :mod:`benchmarks.throughput_workers`.
"""

from __future__ import annotations

import os
import subprocess
import time

from .common import (
    NotAvailable,
    Workers,
    error_row,
    fast_store,
    ms,
    percentile,
    redis_server,
    row,
    scratch_dir,
    unavailable,
    with_workspace_param,
    workspace,
)
from .profiling import add_profile, cprofile_text
from .throughput_workers import MODULE as WORKER_MODULE
from .throughput_workers import Outcome, run_coord

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Row = dict[str, Any]

NAME = "throughput"
TITLE = "Claim / progress / complete throughput"
P99_TARGET_MS = 100.0


def sizes(quick: bool) -> dict[str, int]:
    if quick:
        return {"board": 96, "replace": 150, "bash": 30, "sqlite": 150, "lua": 300, "deadline": 40}
    return {"board": 240, "replace": 600, "bash": 120, "sqlite": 600, "lua": 1500, "deadline": 120}


# -- baselines -------------------------------------------------------------------------------
def sample_task_text() -> str:
    """A claimed task with progress, as agentcoord renders it (the payload of the baselines)."""
    with workspace("sample") as root:
        coord = fast_store(root)
        coord.tasks.create("benchmark task 1", id="b00001")
        coord.agents.register("w00")
        coord.tasks.claim("b00001", agent="w00")
        coord.tasks.progress("b00001", agent="w00", percent=50, metrics={"by": "w00"})
        with open(os.path.join(root, "task-b00001.md"), encoding="utf-8") as fh:
            return fh.read()


def atomic_replace(directory: str, payload: bytes, n: int) -> tuple[float, list[float]]:
    """The durable atomic-replace loop; returns writes/s and per-write latencies (s)."""
    path = os.path.join(directory, "task-replace.md")
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        tmp = f"{path}.tmp-{i}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        lat.append(time.perf_counter() - t0)
    return n / (time.perf_counter() - start), lat


BASH_RECIPE = r"""
set -e
dir=$1; n=$2; lock="$dir/.lock-tasks"
update() {  # the seeds' recipe: flock, sed into a temp file, atomic mv
  { flock -x 200
    sed -e "$2" "$1" > "$1.tmp"
    mv "$1.tmp" "$1"
  } 200>"$lock"
}
for ((i = 1; i <= n; i++)); do
  f="$dir/task-$i.md"
  update "$f" 's/^\*\*Status\*\*: .*/**Status**: in_progress/
    s/^\*\*Assigned Agent\*\*: .*/**Assigned Agent**: bash/'
  update "$f" 's/^- \*\*Current\*\*: .*/- **Current**: 50%/'
  update "$f" 's/^\*\*Status\*\*: .*/**Status**: complete/'
done
"""


def bash_recipe(directory: str, text: str, n: int) -> float:
    """Task-file updates per second of the seeds' shell recipe (3 updates per task)."""
    for i in range(1, n + 1):
        with open(os.path.join(directory, f"task-{i}.md"), "w", encoding="utf-8") as fh:
            fh.write(text)
    start = time.perf_counter()
    subprocess.run(["bash", "-c", BASH_RECIPE, "bash", directory, str(n)], check=True)
    elapsed = time.perf_counter() - start
    with open(os.path.join(directory, f"task-{n}.md"), encoding="utf-8") as fh:
        if "**Status**: complete" not in fh.read():
            raise RuntimeError("the bash recipe did not update the task file")
    return 3 * n / elapsed


def sqlite_prepare(path: str, board: int) -> None:
    import sqlite3

    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE tasks (id INTEGER PRIMARY KEY, status TEXT NOT NULL, agent TEXT, "
        "progress INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute("CREATE INDEX tasks_status ON tasks(status)")
    db.executemany("INSERT INTO tasks (status) VALUES (?)", [("pending",)] * board)
    db.commit()
    db.close()


def make_board(target: str, board: int) -> None:
    if "://" in target:
        from agentcoord.api import Coordinator

        coord = Coordinator.open(url=target)
    else:
        coord = fast_store(target)
    for i in range(board):
        coord.tasks.create(f"benchmark task {i + 1}", id=f"b{i + 1:05d}")
    coord.close()


def _guarded(rows: list[Row], name: str, fn: Callable[[], Any]) -> Any:
    """Run one part; on a crash, add an error row and go on with the others."""
    try:
        return fn()
    except Exception as exc:
        import traceback

        traceback.print_exc()
        rows.append(error_row(name, exc))
        return None


def _sqlite(procs: int, rows_n: int, deadline: float) -> Outcome:
    with scratch_dir("sqlite") as d:
        db = os.path.join(d, "tasks.db")
        sqlite_prepare(db, rows_n)
        workers = Workers(
            WORKER_MODULE,
            [["sqlite", db, f"w{i}", str(deadline)] for i in range(procs)],
            timeout=deadline + 60,
        )
        return Outcome(workers.start().run())


def _markdown(
    procs: int, board: int, deadline: float, env: dict[str, str] | None = None
) -> Outcome:
    with workspace(f"md{procs}") as root:
        make_board(root, board)
        return run_coord(root, procs, deadline, env)


def run(quick: bool = False) -> list[Row]:
    cfg = sizes(quick)
    board, deadline = cfg["board"], float(cfg["deadline"])
    rows: list[Row] = []
    text = sample_task_text()

    # Baselines on the workspace's file system.
    def replace() -> float:
        with scratch_dir("replace") as d:
            rate, lat = atomic_replace(d, text.encode(), cfg["replace"])
        rows.append(
            row(
                "durable atomic-replace loop (baseline)",
                rate,
                "writes/s",
                note=f"{len(text)} B task file; p50 {ms(percentile(lat, 50)):.1f} ms, "
                f"p99 {ms(percentile(lat, 99)):.1f} ms per write",
            )
        )
        return rate

    def bash() -> float:
        with scratch_dir("bash") as d:
            rate = bash_recipe(d, text, cfg["bash"])
        rows.append(
            row(
                "seeds' bash recipe: flock+sed+mv (baseline)",
                rate,
                "updates/s",
                note=f"{cfg['bash']} tasks x 3 updates; no fsync (as in the seeds)",
            )
        )
        return rate

    replace_rate = _guarded(rows, "durable atomic-replace loop", replace)
    bash_rate = _guarded(rows, "seeds' bash recipe", bash)
    sqlite: dict[int, Outcome] = {}
    for procs in (1, 8):
        sq = _guarded(rows, f"SQLite {procs}", lambda p=procs: _sqlite(p, cfg["sqlite"], deadline))
        if sq is None:
            continue
        sqlite[procs] = sq
        rows.append(
            row(
                f"SQLite WAL claim/progress/complete, {procs} proc (baseline)",
                sq.rate,
                "ops/s",
                note=f"synchronous=FULL; p99 {sq.p(99):.1f} ms; double claims {sq.double_claims}",
            )
        )

    # agentcoord, markdown backend.
    md: dict[int, Outcome] = {}
    for procs in (1, 8, 32):
        out = _guarded(rows, f"markdown {procs}", lambda p=procs: _markdown(p, board, deadline))
        if out is not None:
            md[procs] = out
    if 1 in md:
        one = md[1]
        rows.append(
            row(
                "markdown API, 1 proc: rate vs durable atomic replace",
                one.rate,
                "ops/s",
                baseline=replace_rate,
                target=">= 50% of atomic-replace rate",
                met=one.rate >= 0.5 * replace_rate if replace_rate else None,
                note=f"board of {board} tasks; {one.detail()}",
            )
        )
        rows.append(
            row(
                "markdown API, 1 proc: rate vs seeds' bash recipe",
                one.rate,
                "ops/s",
                baseline=bash_rate,
                target=">= 3x bash recipe",
                met=one.rate >= 3 * bash_rate if bash_rate else None,
            )
        )
        nosync = _guarded(
            rows, "markdown fsync off", lambda: _markdown(1, board, deadline, {"COORD_FSYNC": "0"})
        )
        if nosync is not None:
            rows.append(
                row(
                    "markdown API, 1 proc, fsync off: rate vs bash recipe",
                    nosync.rate,
                    "ops/s",
                    baseline=bash_rate,
                    note="COORD_FSYNC=0, like the seeds' recipe (which never fsyncs); "
                    "for comparison only",
                )
            )
        slow = (replace_rate and one.rate < 0.5 * replace_rate) or (
            bash_rate and one.rate < 3 * bash_rate
        )
        if slow:
            add_profile("markdown API, 1 process: where an operation's time goes", one.breakdown())
            if nosync is not None:
                add_profile("markdown API, 1 process, fsync off: the same", nosync.breakdown())
            _guarded(rows, "profile", lambda: _profile(board))
    for procs in (8, 32):
        if procs not in md:
            continue
        out = md[procs]
        rows.append(
            row(
                f"markdown API, {procs} procs: p99 per operation",
                out.p(99),
                "ms",
                baseline=out.p(50),
                target=f"p99 <= {P99_TARGET_MS:g} ms",
                met=out.p(99) <= P99_TARGET_MS,
                note=f"baseline column = p50; {out.rate:.0f} ops/s; {out.detail()}",
            )
        )
        if out.p(99) > P99_TARGET_MS:
            add_profile(
                f"markdown API, {procs} processes: where an operation's time goes", out.breakdown()
            )
        rows.append(
            row(
                f"markdown API, {procs} procs: double claims + lost updates",
                out.double_claims + out.lost_updates,
                "count",
                target="= 0",
                met=out.double_claims == 0 and out.lost_updates == 0,
                note=f"double claims {out.double_claims}, lost updates {out.lost_updates}, "
                f"tasks left open {out.unfinished}",
            )
        )
    if 8 in md:
        rows.append(
            row(
                "markdown API, 8 procs: rate vs SQLite WAL, 8 procs",
                md[8].rate,
                "ops/s",
                baseline=sqlite[8].rate if 8 in sqlite else None,
                note="for scale; no target",
            )
        )
    redis_rows = _guarded(
        rows, "Redis", lambda: _redis_rows(cfg, md[8].rate if 8 in md else None, text)
    )
    rows += redis_rows or []
    return rows


def _redis_rows(cfg: dict[str, int], md8: float | None, text: str) -> list[Row]:
    board, deadline = cfg["board"], float(cfg["deadline"])
    name = "Redis API, 8 procs: rate vs markdown, 8 procs"
    target = ">= 3x markdown at 8 procs"
    try:
        import agentcoord.store.redis.store  # noqa: F401
    except ImportError as exc:
        return [unavailable(name, f"Redis backend: {exc}", unit="ops/s", target=target)]
    try:
        with redis_server() as url:
            workers = Workers(
                WORKER_MODULE,
                [
                    ["lua", url, f"w{i}", str(cfg["lua"] // 8), "32", text, str(deadline)]
                    for i in range(8)
                ],
                timeout=deadline + 60,
            )
            lua = Outcome(workers.start().run())
            ws = with_workspace_param(url, "bench8")
            make_board(ws, board)
            out = run_coord(ws, 8, deadline)
    except NotAvailable as exc:
        return [unavailable(name, str(exc), unit="ops/s", target=target)]
    if md8 and out.rate < 3 * md8:
        add_profile("Redis API, 8 processes: where an operation's time goes", out.breakdown())
    return [
        row(
            "raw redis-py Lua CAS loop, 8 procs (baseline)",
            lua.rate,
            "updates/s",
            note=f"GET + EVALSHA compare-and-set of a {len(text)} B value over 32 keys; "
            f"p99 {lua.p(99):.1f} ms; retries {lua.failures.get('retries', 0)}",
        ),
        row(
            name,
            out.rate,
            "ops/s",
            baseline=md8,
            target=target,
            met=out.rate >= 3 * md8 if md8 else None,
            note=f"p99 {out.p(99):.1f} ms; {out.detail()}",
        ),
        row(
            "Redis API, 8 procs: rate vs raw Lua CAS loop",
            out.rate,
            "ops/s",
            baseline=lua.rate,
            note="for scale; no target",
        ),
        row(
            "Redis API, 8 procs: double claims + lost updates",
            out.double_claims + out.lost_updates,
            "count",
            target="= 0",
            met=out.double_claims == 0 and out.lost_updates == 0,
            note=f"double claims {out.double_claims}, lost updates {out.lost_updates}",
        ),
    ]


def _profile(board: int) -> None:
    """Why one process is slower than half the atomic-replace rate: cProfile of a fresh board."""
    from agentcoord.api import Coordinator

    with workspace("profile") as root:
        make_board(root, board)
        coord = Coordinator.open(root)
        coord.agents.register("prof")
        n = min(30, board)

        def cycles() -> None:
            for _ in range(n):
                task = coord.tasks.claim(agent="prof")
                coord.tasks.progress(task.id, agent="prof", percent=50, metrics={"by": "prof"})
                coord.tasks.complete(task.id, agent="prof", result="prof")

        text = cprofile_text(cycles)
    add_profile(
        f"markdown API, 1 process: cProfile of {n} claim/progress/complete cycles "
        f"(board of {board} tasks)",
        text,
    )
