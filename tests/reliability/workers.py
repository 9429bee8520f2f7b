"""Worker processes of the reliability suite: ``python -m tests.reliability.workers MODE ...``.

``torture ROOT AGENT SEED END_AT MAX_OPS``: random operations on one workspace until the wall
clock reaches ``END_AT`` (or ``MAX_OPS``), checking what one process can check as it goes (its
own fenced writes, epochs it sees never going down, its consumer cursor never skipping or
repeating), then prints one JSON line of observations for the parent's global checks.

``victim ROOT ROLE AGENT SEED``: writes as fast as it can until killed; prints ``ready`` once its
first write is on disk. Roles: writer, claimer, emitter, cleaner.

``COORD_URL`` in the environment selects a Redis store (the directory still holds config.json).
"""

from __future__ import annotations

import json
import random
import sys
import time
import traceback
from collections import Counter
from typing import Any, ClassVar

from agentcoord import errors
from agentcoord.api import Coordinator

CHANNELS = ("alpha", "beta", "gamma")
PROJECTS = ("p1", "p2")


class Torture:
    def __init__(self, root: str, agent: str, seed: int) -> None:
        self.coord = Coordinator.open(root)
        self.agent = agent
        self.rng = random.Random(seed)
        self.held: dict[str, int] = {}  # task id -> epoch of my grant
        self.grants: set[tuple[str, int]] = set()
        self.seen_epoch: dict[str, int] = {}
        self.known: list[str] = []
        self.known_set: set[str] = set()
        self.cursor: dict[str, int] = {}
        self.emitted: dict[str, list[list[Any]]] = {c: [] for c in CHANNELS}
        self.created: list[str] = []
        self.problems: list[str] = []
        self.errors: Counter[str] = Counter()
        self.by_op: Counter[str] = Counter()
        self.k = 0

    # -- checks one process can make ---------------------------------------------------------
    def see(self, task: Any) -> None:
        """Epochs this process observes for a task never go down."""
        if task.epoch < self.seen_epoch.get(task.id, 0):
            self.problems.append(
                f"epoch of {task.id} went back: {self.seen_epoch[task.id]} -> {task.epoch}"
            )
        self.seen_epoch[task.id] = max(task.epoch, self.seen_epoch.get(task.id, 0))
        if task.id not in self.known_set:
            self.known_set.add(task.id)
            self.known.append(task.id)

    def fenced(self, task: Any, tid: str) -> None:
        """A holder write that succeeded was made under my own, current grant."""
        if (task.agent, task.epoch, task.status) != (self.agent, self.held[tid], "in_progress"):
            self.problems.append(
                f"write to {tid} accepted for {self.agent}@{self.held[tid]} but the task is "
                f"{task.status} held by {task.agent}@{task.epoch}"
            )

    # -- operations --------------------------------------------------------------------------
    def op_claim(self) -> None:
        tid = self.rng.choice(self.known) if self.known and self.rng.random() < 0.3 else None
        lease = self.rng.uniform(0.3, 3.0)
        task = self.coord.tasks.claim(tid, agent=self.agent, lease_seconds=lease)
        if (task.agent, task.status) != (self.agent, "in_progress"):
            self.problems.append(f"claim of {task.id} returned {task.status} by {task.agent}")
        if (task.id, task.epoch) not in self.grants:  # otherwise: a renewal of my own lease
            if task.epoch <= self.seen_epoch.get(task.id, 0):
                self.problems.append(f"grant of {task.id} at epoch {task.epoch} is not new")
            self.grants.add((task.id, task.epoch))
        self.see(task)
        self.held[task.id] = task.epoch

    def _mine(self) -> str | None:
        return self.rng.choice(sorted(self.held)) if self.held else None

    def op_progress(self) -> None:
        tid = self._mine()
        if tid is None:
            return self.op_claim()
        self.k += 1
        try:
            task = self.coord.tasks.progress(
                tid,
                agent=self.agent,
                percent=self.rng.uniform(0, 100),
                metrics={"by": self.agent, "k": self.k},
                epoch=self.held[tid],
            )
        except errors.Conflict:
            del self.held[tid]
            raise
        self.fenced(task, tid)
        self.see(task)
        return None

    def op_log(self) -> None:
        tid = self._mine()
        if tid is None:
            return self.op_heartbeat()
        try:
            task = self.coord.tasks.log(
                tid, f"step {self.k}", agent=self.agent, epoch=self.held[tid]
            )
        except errors.Conflict:
            del self.held[tid]
            raise
        self.fenced(task, tid)
        return None

    def op_finish(self) -> None:
        tid = self._mine()
        if tid is None:
            return self.op_claim()
        epoch = self.held.pop(tid)
        how = self.rng.choice(("complete", "complete", "fail", "release"))
        if how == "complete":
            task = self.coord.tasks.complete(tid, agent=self.agent, result="ok", epoch=epoch)
        elif how == "fail":
            task = self.coord.tasks.fail(tid, agent=self.agent, error="boom", epoch=epoch)
        else:
            task = self.coord.tasks.release(tid, agent=self.agent, epoch=epoch)
        if task.epoch != epoch:
            self.problems.append(f"{how} of {tid}@{epoch} stored epoch {task.epoch}")
        self.see(task)
        return None

    def op_abandon(self) -> None:
        """Forget a held task, like an agent that died: its lease must expire and be reclaimed."""
        tid = self._mine()
        if tid is not None:
            del self.held[tid]

    def op_heartbeat(self) -> None:
        try:
            self.coord.agents.heartbeat(self.agent, workload=self.rng.randrange(101))
        except errors.NotFound:
            self.coord.agents.register(self.agent)

    def op_emit(self) -> None:
        channel = self.rng.choice(CHANNELS)
        self.k += 1
        tag = f"{self.agent}:{self.k}"
        event = self.coord.events.emit(channel, "tick", {"tag": tag}, agent=self.agent)
        self.emitted[channel].append([event.seq, tag])

    def op_consume(self) -> None:
        channel = self.rng.choice(CHANNELS)
        got = self.coord.events.consume(channel, self.agent, limit=self.rng.randrange(1, 20))
        start = self.cursor.get(channel, 0)
        seqs = [e.seq for e in got]
        if seqs and seqs != list(range(start + 1, start + 1 + len(seqs))):
            self.problems.append(f"consumer {self.agent}@{channel} after {start} got {seqs[:5]}")
        if seqs:
            self.cursor[channel] = self.coord.events.ack(channel, self.agent, seqs[-1])

    def op_create(self) -> None:
        deps = self.rng.sample(self.known, min(len(self.known), self.rng.choice((0, 0, 1, 2))))
        task = self.coord.tasks.create(
            f"t by {self.agent}",
            project=self.rng.choice(PROJECTS),
            depends_on=deps,
            priority=self.rng.randrange(3),
            max_attempts=self.rng.choice((1, 2, 3)),
        )
        self.created.append(task.id)
        self.see(task)

    def op_cancel(self) -> None:
        if self.known:
            self.see(self.coord.tasks.cancel(self.rng.choice(self.known), reason="torture"))

    def op_get(self) -> None:
        if self.known:
            self.see(self.coord.tasks.get(self.rng.choice(self.known)))

    def op_list(self) -> None:
        for task in self.coord.tasks.list(status="open", limit=30):
            self.see(task)

    def op_reap(self) -> None:
        for task in self.coord.tasks.reap():
            self.see(task)

    def op_cleanup(self) -> None:
        self.coord.maintenance.cleanup(stale_hours=self.rng.choice((0.0, 1 / 3600)), keep_events=3)

    def op_context(self) -> None:
        self.coord.contexts.put(self.rng.choice(PROJECTS), "shared", {"by": self.agent})

    def op_doctor(self) -> None:
        self.coord.doctor.check()  # under load: may report lag, must not crash

    WEIGHTS: ClassVar[dict[str, int]] = {
        "claim": 16,
        "progress": 14,
        "log": 6,
        "finish": 10,
        "abandon": 2,
        "heartbeat": 6,
        "emit": 12,
        "consume": 6,
        "create": 12,
        "cancel": 1,
        "get": 5,
        "list": 3,
        "reap": 2,
        "cleanup": 1,
        "context": 2,
        "doctor": 1,
    }

    def run(self, end_at: float, max_ops: int) -> dict[str, Any]:
        names = list(self.WEIGHTS)
        weights = [self.WEIGHTS[n] for n in names]
        self.op_heartbeat()
        ops = 0
        while time.time() < end_at and ops < max_ops:
            name = self.rng.choices(names, weights)[0]
            ops += 1
            try:
                getattr(self, f"op_{name}")()
                self.by_op[name] += 1
            except errors.CoordError as exc:
                self.errors[exc.code] += 1
            except Exception:
                self.problems.append(f"{name}: {traceback.format_exc()}")
        return {
            "agent": self.agent,
            "ops": ops,
            "by_op": dict(self.by_op),
            "errors": dict(self.errors),
            "grants": sorted(self.grants),
            "emitted": self.emitted,
            "created": self.created,
            "problems": self.problems,
        }


def victim(root: str, role: str, agent: str, seed: int) -> None:
    """Write until killed (SIGKILL at a random point is the test)."""
    coord = Coordinator.open(root)
    rng = random.Random(seed)
    coord.agents.register(agent)
    ready = False
    i = 0
    while True:
        i += 1
        try:
            if role == "writer":
                deps = [str(rng.randrange(1, i + 1))] if rng.random() < 0.2 else []
                task = coord.tasks.create(f"{agent} {i} " + "x" * (i % 200), depends_on=deps)
                coord.tasks.claim(task.id, agent=agent)
                coord.tasks.progress(task.id, agent=agent, percent=50, metrics={"i": i})
                coord.tasks.log(task.id, "line " * (i % 40), agent=agent)
                if rng.random() < 0.3:
                    coord.tasks.fail(task.id, agent=agent, error="crash test")
                else:
                    coord.tasks.complete(task.id, agent=agent, result="ok")
                coord.agents.heartbeat(agent, workload=i % 100)
                coord.contexts.put("proj", agent, {"i": i, "pad": "y" * (i % 500)})
            elif role == "claimer":
                task = coord.tasks.claim(agent=agent, lease_seconds=600)
                coord.tasks.progress(task.id, agent=agent, percent=10, metrics={"by": agent})
            elif role == "emitter":
                channel = CHANNELS[i % len(CHANNELS)]
                coord.events.emit(channel, "tick", {"i": i, "by": agent})
                got = coord.events.consume(channel, agent, limit=5)
                if got:
                    coord.events.ack(channel, agent, got[-1].seq)
            elif role == "cleaner":
                coord.maintenance.cleanup(stale_hours=0, keep_events=2)
                coord.tasks.reap()
            else:
                raise SystemExit(f"unknown role {role}")
        except errors.NothingToClaim:
            coord.tasks.create(f"for {agent}")
        except errors.NotFound:
            # A cleaner's ``cleanup(stale_hours=0)`` archives every agent at once: register
            # again, as a real agent told "unknown agent" would (strict identity, SPEC 11).
            try:
                coord.agents.register(agent)
            except errors.Conflict:  # it was a task that was gone, and the name is live
                pass
        except (errors.Conflict, errors.InvalidInput):
            pass
        if not ready:
            sys.stdout.write("ready\n")
            sys.stdout.flush()
            ready = True


def main(argv: list[str]) -> int:
    mode, root, *rest = argv
    if mode == "torture":
        agent, seed, seconds, max_ops = rest
        worker = Torture(root, agent, int(seed))
        # The clock starts once this process is ready: on a loaded machine, starting 32
        # interpreters can take longer than the whole run would.
        out = worker.run(time.time() + float(seconds), int(max_ops))
        sys.stdout.write(json.dumps(out) + "\n")
        return 0
    if mode == "victim":
        role, agent, seed = rest
        victim(root, role, agent, int(seed))
        return 0
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
