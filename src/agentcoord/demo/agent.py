"""One simulated agent of ``coord demo``: ``python -m agentcoord.demo.agent --dir ROOT --name N``.

It uses the real Python API, as an agent's tool would: register, claim the next ready task under a
short lease, report progress with metrics (``loss``, ``samples/s``) every step (which renews
the lease), log, heartbeat with its workload, emit events on the ``team`` channel, and complete.
Given ``--fail-task ID`` it fails that task half-way (the demo's deliberate failure). It exits
when no task is left open (pending, assigned or in progress), after signing off as offline.

Every claim, completion and failure is appended to ``--journal`` (one JSON object per line,
flushed at once: ``event``, ``agent``, ``task``, ``epoch``, ``time``, ``pid``) so that the demo
driver can check afterwards (:func:`double_claims`) that no task was ever claimed twice at the
same epoch, also by an agent it killed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time

from ..api import Coordinator
from ..core.models import ASSIGNED, IN_PROGRESS, PENDING
from ..errors import BreakerOpen, CoordError, LeaseLost, NothingToClaim

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, TextIO

    from ..core.models import Task

CHANNEL = "team"
#: The error the deliberately failing task reports.
FAIL_ERROR = "CUDA out of memory at batch 4096"
_EXPIRED = re.compile(r"lease of (\S+) expired")
_EPOCH = re.compile(r"^claimed by \S+ \(epoch (\d+)\)")


class DemoAgent:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns
        self.name: str = ns.name
        self.speed: float = ns.speed
        self.coord = Coordinator.open(ns.dir)
        self.rng = random.Random(ns.seed)
        self.journal: TextIO | None = (
            open(ns.journal, "a", encoding="utf-8", buffering=1) if ns.journal else None  # noqa: SIM115
        )
        self.last_beat = 0.0

    # -- helpers ---------------------------------------------------------------------------
    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds / self.speed))

    def record(self, what: str, task: Task, **extra: Any) -> None:
        if self.journal is None:
            return
        row = {"event": what, "agent": self.name, "task": task.id, "epoch": task.epoch}
        row.update(extra, time=time.time(), pid=os.getpid())
        self.journal.write(json.dumps(row) + "\n")

    def emit(self, type: str, **fields: object) -> None:
        try:
            self.coord.events.emit(CHANNEL, type, fields, agent=self.name)
        except CoordError:
            pass  # events are narration; the task records are the truth

    def beat(self, workload: int, status: str | None = None) -> None:
        self.coord.agents.heartbeat(self.name, workload=workload, status=status)
        self.last_beat = time.monotonic()

    def open_work(self) -> bool:
        heads = self.coord.store.list_task_heads(statuses=(PENDING, ASSIGNED, IN_PROGRESS))
        return bool(heads)

    # -- the agent's life --------------------------------------------------------------------
    def run(self) -> int:
        self.coord.agents.register(
            self.name, capabilities=["python", "ml"], note=f"demo agent, pid {os.getpid()}"
        )
        self.emit("joined", pid=os.getpid())
        while True:
            try:
                task = self.coord.tasks.claim(agent=self.name, lease_seconds=self.ns.lease)
            except NothingToClaim:
                if not self.open_work():
                    break
                if time.monotonic() - self.last_beat >= 2.0 / self.speed:
                    self.beat(0, "idle")
                self.sleep(self.ns.idle)
                continue
            except (BreakerOpen, LeaseLost):
                self.sleep(self.ns.idle * 4)
                continue
            self.work(task)
        self.beat(0, "offline")
        self.emit("signed_off")
        return 0

    def work(self, task: Task) -> None:
        self.record("claim", task, attempts=task.attempts)
        previous = next(
            (m.group(1) for ln in reversed(task.logs) if (m := _EXPIRED.search(ln.message))),
            None,
        )
        if task.attempts and previous and previous != self.name:
            self.emit("reclaimed", task=task.id, epoch=task.epoch, **{"from": previous})
        else:
            self.emit("claimed", task=task.id, epoch=task.epoch)
        self.beat(self.rng.randint(60, 80))
        total = int(task.progress_total or 10)
        loss0 = self.rng.uniform(2.2, 3.0)
        loss = loss0
        try:
            for step in range(1, total + 1):
                self.sleep(self.ns.step * self.rng.uniform(0.75, 1.25))
                if task.id == self.ns.fail_task and step > total // 2:
                    self.coord.tasks.fail(
                        task.id, agent=self.name, error=FAIL_ERROR, epoch=task.epoch
                    )
                    self.record("fail", task)
                    self.emit("failed", task=task.id, error=FAIL_ERROR)
                    return
                loss = loss0 * math.exp(-2.4 * step / total) + self.rng.uniform(0.0, 0.04)
                metrics = {
                    "loss": round(loss, 4),
                    "samples/s": round(self.rng.uniform(900.0, 1400.0), 1),
                }
                self.coord.tasks.progress(
                    task.id, agent=self.name, current=step, metrics=metrics, epoch=task.epoch
                )
                if step == total // 2:
                    self.coord.tasks.log(
                        task.id,
                        f"checkpoint saved at step {step} (loss {loss:.3f})",
                        agent=self.name,
                        epoch=task.epoch,
                    )
                    self.emit("checkpoint", task=task.id, step=step, loss=f"{loss:.3f}")
                if time.monotonic() - self.last_beat >= 2.0 / self.speed:
                    self.beat(self.rng.randint(70, 98))
            self.coord.tasks.complete(
                task.id, agent=self.name, result=f"final loss {loss:.3f}", epoch=task.epoch
            )
        except CoordError as exc:  # lease lost or stale epoch: someone else owns it now
            self.record("lost", task, code=exc.code)
            self.emit("lease_lost", task=task.id, code=exc.code)
            return
        self.record("complete", task)
        self.emit("completed", task=task.id, loss=f"{loss:.3f}")


# -- reading the journals (the demo driver's checks) ----------------------------------------------
def read_journal(directory: str) -> list[dict[str, Any]]:
    """Every ``journal-*.ndjson`` row in ``directory``."""
    rows = []
    for name in sorted(os.listdir(directory)):
        if name.startswith("journal-") and name.endswith(".ndjson"):
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                for line in f:
                    try:
                        rows.append(json.loads(line))
                    except ValueError:
                        continue  # a line cut short by SIGKILL
    return rows


def double_claims(journal: list[dict[str, Any]], tasks: dict[str, Task]) -> int:
    """Grants handed out twice: one (task, epoch) claimed by two agents (in the journals, or in
    the task records' own "claimed by ... (epoch N)" log lines), more claims of a task than its
    epoch counts, or a task completed twice."""
    from collections import Counter

    grants = Counter((r["task"], r["epoch"]) for r in journal if r["event"] == "claim")
    done = Counter(r["task"] for r in journal if r["event"] == "complete")
    double = sum(n - 1 for n in [*grants.values(), *done.values()] if n > 1)
    for task in tasks.values():
        logged = Counter(m.group(1) for ln in task.logs if (m := _EPOCH.search(ln.message)))
        double += sum(n - 1 for n in logged.values() if n > 1)
        double += max(0, sum(1 for key in grants if key[0] == task.id) - task.epoch)
    return double


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agentcoord.demo.agent")
    p.add_argument("--dir", required=True, help="the coordination directory")
    p.add_argument("--name", required=True)
    p.add_argument("--speed", type=float, default=1.0, help="divides every sleep")
    p.add_argument("--step", type=float, default=1.0, help="seconds per progress step at 1x")
    p.add_argument("--idle", type=float, default=0.5, help="seconds between claims when idle")
    p.add_argument("--lease", type=float, default=6.0, help="lease seconds (not scaled)")
    p.add_argument("--fail-task", default=None, help="fail this task half-way")
    p.add_argument("--journal", default=None, help="append claims/completions here (NDJSON)")
    p.add_argument("--seed", type=int, default=None)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        return DemoAgent(ns).run()
    except KeyboardInterrupt:
        return 130
    except CoordError as exc:
        sys.stderr.write(f"{ns.name}: {exc.message}\n")
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
