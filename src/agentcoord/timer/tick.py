"""What the timer does on each tick, independent of the process around it (:mod:`.daemon`).

Ticks fall on an absolute grid, ``t0 + k * interval``. On every grid point the timer reaps expired
leases and reads the workspace (monitor classes, open tasks, commits); whether it then *emits* a
checkpoint (the seed's file, the sidecar, ``--on-checkpoint``) depends on the mode:

- plain: every grid point is a checkpoint;
- ``--adaptive``: while everything is healthy the gap between checkpoints doubles (1, 2, 4 ...
  grid steps, at most ``max_interval``); a probe that finds an agent Concerning or worse, or a
  reaped lease, emits at once and snaps back to every grid point. Agents that hold no work are
  Idle or Gone (SPEC section 4), never trouble, so a team with nothing to do backs off too.
  Probing stays on the base grid, so trouble is still noticed within one base interval and
  reaping never slows down;
- ``--until-done``: a probe that finds tasks but none pending, assigned or in progress emits a
  final checkpoint and stops the timer.
"""

from __future__ import annotations

import os
import time

from ..core.clock import iso, stamp
from ..fs import proc_start_time
from .files import (
    PidInfo,
    append_log,
    boot_id,
    checkpoint_message,
    format_checkpoint,
    read_pidfile,
    write_json,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..api import Coordinator
    from .files import TimerFiles

SIDECAR_VERSION = 1
#: Reaped-lease records kept in the sidecar (newest last).
HISTORY = 50

RUNNING, STOPPED, DONE, FINISHED, FAILED = "running", "stopped", "done", "finished", "failed"


class Options:
    """A timer's settings (the ``coord timer start`` flags)."""

    __slots__ = (
        "adaptive",
        "interval",
        "max_checks",
        "max_interval",
        "on_checkpoint",
        "on_checkpoint_timeout",
        "stop_with",
        "stop_with_start",
        "token",
        "until_done",
    )

    def __init__(
        self,
        *,
        interval: float = 30.0,
        max_checks: int = 1200,
        until_done: bool = False,
        adaptive: bool = False,
        max_interval: float | None = None,
        on_checkpoint: str | None = None,
        on_checkpoint_timeout: float = 60.0,
        stop_with: int | None = None,
        stop_with_start: int | None = None,
        token: str = "",
    ) -> None:
        self.interval = interval
        self.max_checks = max_checks
        self.until_done = until_done
        self.adaptive = adaptive
        self.max_interval = max_interval if max_interval is not None else default_max(interval)
        self.on_checkpoint = on_checkpoint
        self.on_checkpoint_timeout = on_checkpoint_timeout
        self.stop_with = stop_with
        self.stop_with_start = stop_with_start
        self.token = token


def default_max(interval: float) -> float:
    """``--adaptive`` backs off to 8x the interval, but not past 10 minutes (unless the interval
    itself is longer)."""
    return max(interval, min(8 * interval, 600.0))


class Timer:
    """One timer's state and its files. ``begin`` once, ``on_grid`` per grid point, ``finish``."""

    def __init__(
        self,
        coord: Coordinator,
        files: TimerFiles,
        opts: Options,
        *,
        durable: bool = True,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.coord = coord
        self.files = files
        self.opts = opts
        self.durable = durable
        self.should_stop = should_stop
        self.count = 0
        self.factor = 1
        self.max_factor = max(1, int(opts.max_interval / opts.interval)) if opts.adaptive else 1
        self.next_emit = 1
        self.t0 = 0.0
        #: When the grid started on the monotonic clock (set by the daemon that runs it).
        self.t0_mono: float | None = None
        self.last_emit = 0.0
        self.reaped: list[dict[str, Any]] = []  # since the last checkpoint
        self.history: list[dict[str, Any]] = []
        self.health: dict[str, Any] | None = None
        self.schedule = {"tick": 0, "lateness_ms": 0.0, "max_lateness_ms": 0.0, "skipped": 0}
        self.hook: dict[str, Any] | None = None
        self.state = RUNNING
        self.stop_reason: str | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def log(self, message: str) -> None:
        append_log(self.files.log, f"{stamp(time.time())} {message}")

    def begin(self, t0: float) -> None:
        """Write the pid file and checkpoint 0 (the seed: "checkpoint file created
        immediately"); ``t0`` is the wall time of grid point 0."""
        self.t0 = self.last_emit = t0
        pid = os.getpid()
        info = PidInfo(pid, proc_start_time(pid), self.opts.token)
        from ..fs import atomic_write

        atomic_write(self.files.pidfile, info.render(), durable=self.durable)
        self._write(t0)
        mode = " adaptive" if self.opts.adaptive else ""
        self.log(
            f"started pid {pid}: every {self.opts.interval:g}s{mode}, "
            f"up to {self.opts.max_checks} checkpoints"
            + (", until done" if self.opts.until_done else "")
        )

    def finish(self, state: str, reason: str) -> None:
        """Record why the timer ends and remove its pid file (if it is still ours)."""
        if self.state == RUNNING or state == FAILED:
            self.state = state
        self.stop_reason = self.stop_reason or reason
        try:
            self._write_sidecar(time.time(), next_tick=None)
        except Exception as exc:
            self.log(f"cannot update {self.files.sidecar}: {exc}")
        info = read_pidfile(self.files.pidfile)
        if info is not None and info.token == self.opts.token:
            try:
                os.unlink(self.files.pidfile)
            except OSError:
                pass
        self.log(f"{self.state}: {self.stop_reason} (checkpoint {self.count})")

    # -- ticks ------------------------------------------------------------------------------
    def next_tick(self) -> float:
        return self.t0 + self.next_emit * self.opts.interval

    def next_tick_monotonic(self) -> float | None:
        """The next tick on the monotonic clock the daemon sleeps on (None before it runs):
        ``timer status`` reports this truth even after the wall clock stepped."""
        if self.t0_mono is None:
            return None
        return self.t0_mono + self.next_emit * self.opts.interval

    def on_grid(self, k: int, now: float, lateness: float) -> bool:
        """Grid point ``k`` (``lateness`` seconds after its time). Returns False to stop."""
        sched = self.schedule
        sched["tick"] = k
        sched["lateness_ms"] = round(lateness * 1000, 3)
        sched["max_lateness_ms"] = max(sched["max_lateness_ms"], sched["lateness_ms"])
        if self.opts.stop_with and not self._watched_alive():
            self.stop_reason = f"process {self.opts.stop_with} (--stop-with) ended"
            self.state = STOPPED
            return False
        reaped = self._reap(now)
        try:
            health = self.coord.reports.check_in(since=self.last_emit, now=now)
        except Exception as exc:  # never let a read problem stop the timer
            health = {"errors": [f"{type(exc).__name__}: {exc}"]}
        agents = health.get("agents") or {}
        tasks = health.get("tasks") or {}
        trouble = bool(reaped) or bool(agents.get("trouble"))
        done = self.opts.until_done and tasks.get("total", 0) > 0 and tasks.get("open", 1) == 0
        if not (k >= self.next_emit or trouble or done):
            return True
        self.health = health
        self.count += 1
        if trouble:
            self.factor = 1
        elif self.opts.adaptive:
            self.factor = min(self.factor * 2, self.max_factor)
        self.next_emit = k + self.factor
        if done:
            self.state, self.stop_reason = DONE, "no task is pending, assigned or in progress"
        elif self.count >= self.opts.max_checks:
            self.state, self.stop_reason = FINISHED, f"reached --max-checks {self.opts.max_checks}"
        running = self.state == RUNNING
        self._write(now, next_tick=self.next_tick() if running else None)
        self.last_emit = now
        self.reaped = []
        self.log(self._tick_line(k, trouble))
        if self.opts.on_checkpoint:
            self._run_hook(now)
        return running

    def _tick_line(self, k: int, trouble: bool) -> str:
        line = f"checkpoint {self.count} (tick {k}, {self.schedule['lateness_ms']:.1f} ms late)"
        if self.opts.adaptive:
            line += f", next in {self.factor * self.opts.interval:g}s"
            line += " (trouble: back to base interval)" if trouble else ""
        return line

    def _watched_alive(self) -> bool:
        from ..fs import pid_alive

        pid = self.opts.stop_with or 0
        if not pid_alive(pid):
            return False
        start = self.opts.stop_with_start
        return start is None or proc_start_time(pid) in (None, start)

    def _reap(self, now: float) -> list[dict[str, Any]]:
        try:
            changed = self.coord.tasks.reap()
        except Exception as exc:
            self.log(f"reap failed: {type(exc).__name__}: {exc}")
            return []
        finally:
            for message in self.coord.warnings:
                self.log(f"warning: {message}")
            self.coord.warnings.clear()
        rows = [{"id": t.id, "status": t.status, "attempts": t.attempts} for t in changed]
        if rows:
            self.reaped.extend(rows)
            self.history.append({"time": iso(now), "tasks": rows})
            del self.history[:-HISTORY]
            shown = ", ".join(f"{r['id']} -> {r['status']}" for r in rows[:10])
            self.log(f"reaped {len(rows)} expired lease(s): {shown}")
        return rows

    def _run_hook(self, now: float) -> None:
        from .oncheckpoint import run_command

        ws = self.coord.workspace
        env = dict(os.environ)
        env.update(
            COORD_CHECKPOINT=str(self.count),
            COORD_CHECKPOINT_TIME=stamp(now),
            COORD_CHECKPOINT_ISO=iso(now),
            COORD_CHECKPOINT_FILE=self.files.checkpoint,
            COORD_CHECKPOINT_JSON=self.files.sidecar,
            COORD_TIMER_NAME=self.files.name,
            COORD_TIMER_STATE=self.state,
        )
        if ws is not None:
            env["COORD_DIR"] = ws.root
        assert self.opts.on_checkpoint is not None
        result = run_command(
            self.opts.on_checkpoint,
            env=env,
            cwd=ws.project_root if ws is not None else None,
            timeout=self.opts.on_checkpoint_timeout,
            should_stop=self.should_stop,
        )
        result["checkpoint"] = self.count
        self.hook = result
        if result.get("error"):
            tail = (result.get("output") or "")[-200:]
            self.log(f"on-checkpoint failed: {result['error']}" + (f": {tail}" if tail else ""))

    # -- files ------------------------------------------------------------------------------
    def _write(self, now: float, next_tick: float | None = None) -> None:
        """Sidecar first, then the seed's file: whoever sees checkpoint N finds sidecar >= N."""
        if next_tick is None and self.state == RUNNING:
            next_tick = self.next_tick()
        self._write_sidecar(now, next_tick=next_tick, tick_time=now)
        from ..fs import atomic_write

        atomic_write(
            self.files.checkpoint, format_checkpoint(self.count, now), durable=self.durable
        )

    def _write_sidecar(
        self, now: float, *, next_tick: float | None, tick_time: float | None = None
    ) -> None:
        opts = self.opts
        emitted = tick_time if tick_time is not None else self.last_emit
        data: dict[str, Any] = {
            "version": SIDECAR_VERSION,
            "name": self.files.name,
            "run": opts.token,
            "pid": os.getpid(),
            "state": self.state,
            "stop_reason": self.stop_reason,
            "count": self.count,
            "timestamp": stamp(emitted),
            "time": iso(emitted),
            "epoch": emitted,
            "message": checkpoint_message(self.count, emitted),
            "interval": self.factor * opts.interval,
            "base_interval": opts.interval,
            "max_interval": opts.max_interval if opts.adaptive else opts.interval,
            "adaptive": opts.adaptive,
            "until_done": opts.until_done,
            "max_checks": opts.max_checks,
            "on_checkpoint": opts.on_checkpoint,
            "started": iso(self.t0),
            "started_epoch": self.t0,
            "next_tick": iso(next_tick) if next_tick is not None else None,
            "next_tick_epoch": next_tick,
            "next_tick_monotonic": self.next_tick_monotonic() if next_tick is not None else None,
            "boot_id": boot_id(),
            "updated": iso(now),
            "schedule": dict(self.schedule),
            "reaped": list(self.reaped),
            "reaped_history": list(self.history),
            "health": self.health,
            "on_checkpoint_last": self.hook,
        }
        write_json(self.files.sidecar, data, durable=self.durable)
