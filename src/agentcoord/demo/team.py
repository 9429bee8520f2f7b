"""``coord demo``: a simulated team on a throw-away workspace, shown live (SPEC section 7).

The driver creates a markdown workspace (a temporary directory, or ``--keep DIR``) with a small
ML-pipeline DAG of tasks, starts the coordination timer with ``coord timer start``, and spawns N
agent processes (:mod:`agentcoord.demo.agent`, real API calls). Two agents have a part to play:

- the first is the only one that may claim ``augment`` (assigned to it) and fails it half-way, so
  its dependents are blocked while the rest of the pipeline carries on;
- the second is killed with SIGKILL (by pid) mid-task. Its lease runs out, and another agent's
  next claim (or the timer's tick) takes the task back; another agent finishes it.

On a terminal the live dashboard shows it all; otherwise one line per notable change is printed.
When no task is left open the driver stops everything it started (agents by pid, the timer with
``coord timer stop``), checks the outcome from the task records and the agents' journals
(everything complete but the failure and its dependents, the killed agent's task finished by
another agent, no task ever claimed twice at one epoch, no process left) and prints a summary.
``--speed X`` divides every sleep; the default run takes about a minute.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time

from ..core.models import ASSIGNED, BLOCKED, COMPLETE, FAILED, IN_PROGRESS, PENDING
from ..errors import CoordError, InvalidInput
from ..fs import pid_alive

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable
    from typing import Any

    from ..api import Coordinator
    from ..dashboard.app import Snapshot

NAMES = ("ai-engineer", "ml-ops", "data-engineer", "qa-engineer", "researcher", "backend-dev",
         "sre", "frontend-dev")  # fmt: skip
#: (id, title, dependencies, steps, priority). The first four are always present (with --tasks 4
#: or more): two roots, the task that fails and its dependent; the rest extend the pipeline.
PIPELINE: tuple[tuple[str, str, tuple[str, ...], int, int], ...] = (
    ("prep-data", "Prepare dataset", (), 8, 9),
    ("tokenizer", "Train tokenizer", (), 6, 8),
    ("augment", "GPU data augmentation", ("prep-data",), 6, 7),
    ("train-aug", "Train on augmented data", ("augment",), 8, 6),
    ("baseline", "Baseline model", ("prep-data",), 7, 5),
    ("train-small", "Train small model", ("prep-data", "tokenizer"), 10, 7),
    ("weights", "Download pretrained weights", (), 5, 4),
    ("train-large", "Fine-tune large model", ("train-small", "weights"), 12, 6),
    ("eval", "Evaluation suite", ("baseline", "train-small"), 8, 5),
    ("report", "Write the report", ("eval", "train-large"), 5, 3),
)
FAIL_TASK = "augment"
MIN_AGENTS, MAX_AGENTS = 2, 8
MIN_TASKS, MAX_TASKS = 4, 40
#: Seconds at 1x: one progress step, a lease (floored so a slow machine keeps its leases),
#: the timer's interval, an idle agent's pause between claims.
STEP, LEASE, MIN_LEASE, TIMER_EVERY, IDLE = 1.2, 6.0, 2.0, 8.0, 0.5
#: The victim is assigned the first of these in the plan and killed once it is this far in.
KILL_TARGETS, KILL_AT = ("train-small", "baseline", "tokenizer"), 30.0
OPEN = frozenset({PENDING, ASSIGNED, IN_PROGRESS})


def plan(n_tasks: int) -> list[tuple[str, str, tuple[str, ...], int, int]]:
    """The first ``n_tasks`` of the pipeline, then sweeps that depend on the baseline."""
    tasks = list(PIPELINE[:n_tasks])
    for k in range(1, n_tasks - len(PIPELINE) + 1):
        tasks.append((f"sweep-{k}", f"Hyperparameter sweep {k}", ("baseline",), 4 + k % 3, 2))
    return tasks


def agent_names(n: int) -> list[str]:
    return [NAMES[i] if i < len(NAMES) else f"agent-{i + 1}" for i in range(n)]


def validate(agents: int, tasks: int, speed: float, timeout: float | None) -> None:
    if not MIN_AGENTS <= agents <= MAX_AGENTS:
        raise InvalidInput(f"--agents must be from {MIN_AGENTS} to {MAX_AGENTS}, not {agents}")
    if not MIN_TASKS <= tasks <= MAX_TASKS:
        raise InvalidInput(f"--tasks must be from {MIN_TASKS} to {MAX_TASKS}, not {tasks}")
    if not 0.1 <= speed <= 50:
        raise InvalidInput(f"--speed must be from 0.1 to 50, not {speed:g}")
    if timeout is not None and timeout <= 0:
        raise InvalidInput(f"--timeout must be a positive number of seconds, not {timeout:g}")


class Demo:
    """One run: workspace, timer, agent processes, the director's decisions and the summary."""

    def __init__(
        self, *, agents: int = 4, tasks: int = 10, speed: float = 1.0, keep: str | None = None,
        timeout: float | None = None, say: Any = None,
    ) -> None:  # fmt: skip
        validate(agents, tasks, speed, timeout)
        self.n_agents, self.n_tasks, self.speed = agents, tasks, speed
        self.keep = os.path.abspath(keep) if keep else None
        self.timeout = timeout if timeout is not None else 240.0 / speed + 60.0
        self.say = say  # callable(str) for progress lines, or None
        self.names = agent_names(agents)
        self.failer, self.victim = self.names[0], self.names[1]
        ids = [t[0] for t in plan(tasks)]
        self.target = next(t for t in KILL_TARGETS if t in ids)
        self.lease = max(LEASE / speed, MIN_LEASE)
        self.project = self.root = ""
        self.coord: Coordinator | None = None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.timer_pid: int | None = None
        self.timer_stopped = False
        self.started = time.monotonic()
        self.killed: dict[str, Any] | None = None
        self.finished_at: float | None = None
        self.notes: list[str] = []
        self._seen: dict[str, tuple[str, str | None, int]] = {}
        self._checkpoint: int | None = None
        self._exits: set[str] = set()

    # -- set-up ------------------------------------------------------------------------------
    def setup(self) -> Coordinator:
        import tempfile

        from ..api import Coordinator
        from ..fs import atomic_write
        from ..workspace import init_workspace

        if self.keep:
            if os.path.islink(self.keep):  # SPEC 16: a planted link would send the run elsewhere
                raise InvalidInput(
                    f"--keep {self.keep}: is a symbolic link; it is never followed (give the "
                    "directory itself)"
                )
            if os.path.lexists(self.keep) and not os.path.isdir(self.keep):
                raise InvalidInput(f"--keep {self.keep}: exists and is not a directory")
            if os.path.exists(self.keep) and os.listdir(self.keep):
                raise InvalidInput(f"--keep {self.keep}: the directory exists and is not empty")
            os.makedirs(self.keep, exist_ok=True)
            self.project = self.keep
        else:
            self.project = tempfile.mkdtemp(prefix="coord-demo-")
        os.makedirs(os.path.join(self.project, "demo-logs"), exist_ok=True)
        ws, _ = init_workspace(os.path.join(self.project, ".claude", "coordination"))
        self.root = ws.root
        s = 1.0 / self.speed
        config = {
            "durable": False, "lease_seconds": self.lease, "max_attempts": 5,  # throw-away
            "monitor": {"normal": 3 * s, "acceptable": 6 * s, "concerning": 9 * s,
                        "stuck": 14 * s, "git": False},
        }  # fmt: skip
        atomic_write(os.path.join(self.root, "config.json"), json.dumps(config, indent=2) + "\n")
        coord = Coordinator.open(self.root)
        for name in (self.failer, self.victim):  # the plan assigns them work before they start:
            coord.agents.require(name, purpose="assign", register=True)  # identity is strict
        for task_id, title, deps, steps, prio in plan(self.n_tasks):
            coord.tasks.create(
                title, id=task_id, priority=prio, depends_on=deps, total=steps, project="demo",
                assign={FAIL_TASK: self.failer, self.target: self.victim}.get(task_id),
                created_by="demo",
            )  # fmt: skip
        self.coord = coord
        return coord

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["COORD_DIR"] = self.root
        env.pop("COORD_URL", None)
        return env

    def _coord_cli(self, *args: str) -> dict[str, Any]:
        import subprocess

        cmd = [sys.executable, "-m", "agentcoord", "--dir", self.root, "--json", *args]
        out = subprocess.run(
            cmd, capture_output=True, text=True, env=self._env(), timeout=60, check=False
        )
        if out.returncode != 0:
            raise CoordError(f"coord {' '.join(args)} failed: {out.stderr.strip()}")
        data: dict[str, Any] = json.loads(out.stdout)
        return data

    def start(self) -> None:
        """The timer (``coord timer start``, ending with this process at the latest), then the
        agents."""
        import subprocess

        interval = max(TIMER_EVERY / self.speed, 1.0)
        status = self._coord_cli(
            "timer", "start", "--interval", f"{interval:g}", "--stop-with", str(os.getpid())
        )
        self.timer_pid = status.get("pid")
        logs = os.path.join(self.project, "demo-logs")
        for i, name in enumerate(self.names):
            opts = {
                "--dir": self.root, "--name": name, "--speed": f"{self.speed:g}",
                "--step": f"{STEP:g}", "--idle": f"{IDLE:g}", "--lease": f"{self.lease:g}",
                "--seed": str(i), "--journal": os.path.join(logs, f"journal-{name}.ndjson"),
            }  # fmt: skip
            argv = [sys.executable, "-m", "agentcoord.demo.agent", *sum(opts.items(), ())]
            if name == self.failer:
                argv += ["--fail-task", FAIL_TASK]
            with open(os.path.join(logs, f"{name}.log"), "ab") as log:
                self.procs[name] = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=self._env(), start_new_session=True,  # Ctrl-C reaches only the driver
                )  # fmt: skip
        self.started = time.monotonic()
        self.line(
            f"{self.n_agents} agents, {self.n_tasks} tasks, timer every {interval:g}s "
            f"(pid {self.timer_pid}); workspace {self.root}"
        )

    # -- directing ---------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self, text: str) -> None:
        if self.say is not None:
            self.say(f"[{self.elapsed():5.1f}s] {text}")

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.line(text)

    def step(self, snap: Snapshot) -> bool:
        """React to a new snapshot: narrate, kill the victim mid-task once, and say whether the
        run is over (no open task left, or the time is up)."""
        self._narrate(snap)
        if self.killed is None:
            self._maybe_kill(snap)
        snap.notes = list(self.notes)
        for name, proc in self.procs.items():
            if proc.poll() not in (None, 0) and name != self.victim and name not in self._exits:
                self._exits.add(name)
                self.note(f"{name} exited with status {proc.returncode}")
        if snap.error is None and snap.tasks and not any(t.status in OPEN for t in snap.tasks):
            self.finished_at = self.elapsed()
            self.note(f"all tasks finished after {self.finished_at:.1f}s")
            return True
        if all(p.poll() is not None for p in self.procs.values()):
            self.note("every agent process has exited with work still open: stopping")
            return True
        if self.elapsed() > self.timeout:
            self.note(f"time is up ({self.timeout:g}s): stopping")
            return True
        return False

    def _maybe_kill(self, snap: Snapshot) -> None:
        import signal

        proc = self.procs.get(self.victim)
        if proc is None:
            return
        for task in snap.tasks:
            pct = task.progress_percent() or 0.0
            if task.status != IN_PROGRESS or task.agent != self.victim or task.id != self.target:
                continue
            if pct < KILL_AT:
                return
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            self.killed = {"agent": self.victim, "pid": proc.pid, "task": task.id,
                           "epoch": task.epoch, "percent": round(pct),
                           "at": round(self.elapsed(), 1)}  # fmt: skip
            assert self.coord is not None
            fields = {"task": task.id, "pid": proc.pid, "at": f"{pct:.0f}%"}
            self.coord.events.emit("team", "sigkill", fields, agent=self.victim)
            self.note(
                f"demo: killed {self.victim} (pid {proc.pid}) mid-task on {task.id} at "
                f"{pct:.0f}%; its lease runs out in {self.lease:g}s"
            )
            return

    def _narrate(self, snap: Snapshot) -> None:
        lines: list[tuple[float, int, str]] = []  # (time, finishes before claims, line)
        for task in snap.tasks:
            key = (task.status, task.agent, task.epoch)
            before = self._seen.get(task.id)
            self._seen[task.id] = key
            if before == key or (before is None and task.status == "pending"):
                continue
            when = task.updated_at or 0.0
            if task.status == IN_PROGRESS and (before is None or before[2] != task.epoch):
                how = "took over" if task.attempts else "claimed"
                extra = f" after {_expired_holder(task)}'s lease expired" if task.attempts else ""
                line = f"{task.agent} {how} {task.id} (epoch {task.epoch}){extra}"
                when = (task.started_at or when) + 0.5  # stored to the second: after finishes
            elif task.status == COMPLETE and (before is None or before[0] != COMPLETE):
                loss = task.metrics.get("loss")
                line = f"{task.agent} completed {task.id}" + (f", loss {loss}" if loss else "")
                when = task.completed_at or when
            elif task.status == FAILED and (before is None or before[0] != FAILED):
                line = f"{task.agent} failed {task.id}: {task.error}"
            elif task.status == BLOCKED and (before is None or before[0] != BLOCKED):
                line = f"{task.id} blocked: {task.blocked_reason}"
            elif task.status == "pending" and before is not None and before[0] == IN_PROGRESS:
                line = f"{task.id} requeued: the lease of {before[1]} expired"
            else:
                continue
            lines.append((when, len(lines), line))
        for _, _, line in sorted(lines):
            self.line(line)
        for timer in snap.timers[:1]:
            count = timer.get("count")
            if timer.get("running") and count != self._checkpoint and count:
                self.line(f"timer checkpoint #{count}")
            self._checkpoint = count

    # -- ending ------------------------------------------------------------------------------
    def stop(self) -> list[int]:
        """Stop every process this run started (by pid); return the pids still alive."""
        import signal
        import subprocess

        grace = time.monotonic() + max(3.0, 4 * IDLE / self.speed)
        for proc in self.procs.values():  # they exit by themselves once nothing is open
            try:
                proc.wait(timeout=max(0.0, grace - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.timer_pid is not None and not self.timer_stopped:
            try:
                self._coord_cli("timer", "stop")
                self.timer_stopped = True
            except CoordError as exc:
                self.line(str(exc))
        return [p for p in self.pids() if pid_alive(p)]

    def pids(self) -> list[int]:
        out = [p.pid for p in self.procs.values()]
        return out + ([self.timer_pid] if self.timer_pid is not None else [])

    def cleanup(self) -> None:
        if self.coord is not None:
            self.coord.close()
        if not self.keep and self.project:
            import shutil

            shutil.rmtree(self.project, ignore_errors=True)


def _expired_holder(task: Any) -> str:
    for ln in reversed(task.logs):
        m = re.search(r"lease of (\S+) expired", ln.message)
        if m:
            return m.group(1)
    return "its holder"


def run_demo(
    demo: Demo,
    summarize: Callable[[Demo, list[int], str | None], dict[str, Any]],
    *,
    live: bool,
    console: Any = None,
) -> dict[str, Any]:
    """Run ``demo`` to the end (live dashboard, or progress lines through ``demo.say``), stop
    what it started and return ``summarize(demo, leftover_pids, stopped_early)``."""
    from ..dashboard.app import run as run_dashboard

    stopped: str | None = None
    try:
        coord = demo.setup()
        try:
            demo.start()
            if live:
                how = run_dashboard(coord, console=console, hook=demo.step, hold=3.0, reread=1.0)
                stopped = None if how == "done" else how
            else:
                _plain_loop(demo, coord)
        except KeyboardInterrupt:
            stopped = "interrupted"
        finally:
            leftover = demo.stop()
        return summarize(demo, leftover, stopped)
    finally:
        demo.cleanup()


def _plain_loop(demo: Demo, coord: Coordinator) -> None:
    """Without a terminal: re-read on change (at most every MIN_GAP s) or every second."""
    from ..dashboard.app import CHANGE, MIN_GAP, Feed, safe_gather

    feed = Feed(coord).start()
    snap = None
    try:
        while True:
            snap = safe_gather(coord, snap)
            if demo.step(snap):
                return
            got = feed.wait(1.0)
            if CHANGE in got:
                time.sleep(MIN_GAP)
    finally:
        feed.stop()
