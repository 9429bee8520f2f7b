"""How ``task list --status in_progress`` and ``task claim`` grow with 100, 1,000 and 10,000 task
files, as whole ``coord`` processes and through the Python API.

SPEC section 8: at 10,000 task files each within 150 ms. Baselines, timed on the same board in the
same run: a ``stat`` of every task file and a read of every task file (page cache warm).
The board is 60% pending, 10% in progress, 30% complete, like a long-running project.
"""

from __future__ import annotations

import os
import time

from .common import (
    child_env,
    coord_argv,
    fast_store,
    median,
    ms,
    python,
    row,
    run_once,
    workspace,
)
from .profiling import add_profile, cprofile_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Row = dict[str, Any]

NAME = "scale"
TITLE = "Task board size: list and claim at 100, 1,000, 10,000 tasks"
SIZES = (100, 1000, 10000)
TARGET_MS = 150.0


def grow_board(root: str, start: int, stop: int) -> None:
    """Add tasks ``start+1 .. stop`` (written without fsync: set-up is not timed)."""
    from agentcoord.core.models import Task

    store = fast_store(root).store
    now = time.time()
    for i in range(start + 1, stop + 1):
        kind = i % 10
        task = Task(f"s{i:05d}", f"scale task {i}", created_at=now - 3600 + i * 0.01)
        task.updated_at = task.created_at
        if kind == 0:  # in progress, held by one of 20 agents with a long lease
            task.status, task.agent, task.epoch = "in_progress", f"agent{i % 20}", 1
            task.started_at, task.lease_expires = now, now + 7 * 24 * 3600
        elif kind in (1, 2, 3):
            task.status, task.agent, task.epoch = "complete", f"agent{i % 20}", 1
            task.started_at, task.completed_at = now - 60, now - 30
        store.create_task(task)


def _task_files(root: str) -> list[str]:
    with os.scandir(root) as entries:
        return [
            os.path.join(root, e.name)
            for e in entries
            if e.name.startswith("task-") and e.name.endswith(".md")
        ]


def stat_all(root: str) -> None:
    for path in _task_files(root):
        os.stat(path)


def read_all(root: str) -> None:
    for path in _task_files(root):
        with open(path, "rb") as fh:
            fh.read()


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(quick: bool = False) -> list[Row]:
    from agentcoord.api import Coordinator

    runs = 3 if quick else 7
    env = child_env()
    rows: list[Row] = []
    with workspace("scale") as root:
        coord = [*coord_argv(), "--dir", root]
        list_cmd = [*coord, "task", "list", "--status", "in_progress"]
        claim_cmd = [*coord, "task", "claim", "--agent", "scale-cli"]
        setup = Coordinator.open(root)
        for name in ("scale-cli", "scale-api"):  # identity is strict (SPEC 11)
            setup.agents.register(name)
        setup.close()

        def api_list() -> None:
            Coordinator.open(root).tasks.list(status="in_progress")

        def api_claim() -> None:
            Coordinator.open(root).tasks.claim(agent="scale-api")

        # One figure per column; rounds interleave them so load bursts hit all alike.
        measures: dict[str, Callable[[], float]] = {
            "stat": lambda: _timed(lambda: stat_all(root)),
            "read": lambda: _timed(lambda: read_all(root)),
            "python": lambda: run_once([python(), "-c", "pass"], env=env),
            "cli list": lambda: run_once(list_cmd, env=env),
            "cli claim": lambda: run_once(claim_cmd, env=env),
            "api list": lambda: _timed(api_list),
            "api claim": lambda: _timed(api_claim),
        }
        have = 0
        for size in SIZES:
            grow_board(root, have, size)
            have = size
            cold = ms(run_once(list_cmd, env=env))  # the first call after the board grew
            for measure in measures.values():  # warm-up
                measure()
            samples: dict[str, list[float]] = {key: [] for key in measures}
            for _ in range(runs):
                for key, measure in measures.items():
                    samples[key].append(measure())
            fig = {key: ms(median(values)) for key, values in samples.items()}
            rows += _size_rows(size, fig, cold, runs)
            at_target = size == SIZES[-1]
            if at_target and (fig["cli list"] > TARGET_MS or fig["cli claim"] > TARGET_MS):
                _profile(api_list, api_claim)
        rows.append(_growth(rows))
    return rows


def _size_rows(size: int, fig: dict[str, float], cold: float, runs: int) -> list[Row]:
    label = f"{size:,} tasks"
    at_target = size == SIZES[-1]
    target = f"<= {TARGET_MS:g} ms" if at_target else ""
    read = fig["read"]
    process = f"whole process, median of {runs} (python -c pass: {fig['python']:.0f} ms)"
    return [
        row(f"{label}: stat every task file (baseline)", fig["stat"], "ms"),
        row(f"{label}: read every task file (baseline)", read, "ms"),
        row(
            f"{label}: coord task list --status in_progress",
            fig["cli list"],
            "ms",
            baseline=read,
            target=target,
            met=fig["cli list"] <= TARGET_MS if at_target else None,
            note=f"{process}; first call after growing the board {cold:.0f} ms; "
            "ratio to reading every file",
        ),
        row(
            f"{label}: coord task claim",
            fig["cli claim"],
            "ms",
            baseline=read,
            target=target,
            met=fig["cli claim"] <= TARGET_MS if at_target else None,
            note=f"{process}; durable writes",
        ),
        row(f"{label}: API tasks.list(status=in_progress)", fig["api list"], "ms", baseline=read),
        row(f"{label}: API tasks.claim()", fig["api claim"], "ms", baseline=read),
    ]


def _growth(rows: list[Row]) -> Row:
    """How the CLI list cost grows from 1,000 to 10,000 tasks (1.0 = flat, 10 = linear)."""
    values = {r["name"]: r["value"] for r in rows}
    small = values.get(f"{SIZES[1]:,} tasks: coord task list --status in_progress")
    large = values.get(f"{SIZES[2]:,} tasks: coord task list --status in_progress")
    return row(
        "coord task list: cost growth 1,000 -> 10,000 tasks",
        large,
        "ms",
        baseline=small,
        note="ratio 10x would be linear in the number of files",
    )


def _profile(api_list: Callable[[], None], api_claim: Callable[[], None]) -> None:
    def both() -> None:
        for _ in range(3):
            api_list()
            api_claim()

    add_profile(
        f"3 x (tasks.list(status=in_progress) + tasks.claim()) via the API, {SIZES[-1]:,} tasks",
        cprofile_text(both),
    )
