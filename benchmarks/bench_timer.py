"""The timer daemon (SPEC section 8): drift over many ticks, idle CPU, resident memory.

- Drift: a real detached daemon (``coord timer start`` machinery) ticks every 10 ms for 1,000
  ticks (100 with ``--quick``) doing its full work each tick (reap, read the board, write the
  checkpoint and the sidecar). Drift is how late the last tick began against its absolute grid
  time ``t0 + N * interval``, measured by the daemon with ``time.monotonic``. Baseline, in the
  same run: the seed's bash loop (``sleep``, ``date``, write the file) for the same ticks, whose
  drift is its elapsed time minus ``N * interval`` (every iteration's work pushes the rest later).
- Idle CPU: ``utime + stime`` of a daemon (``/proc/PID/stat``) over a window between two ticks.
- Memory: ``VmRSS`` of the daemon after it has ticked (all its modules loaded), and the peak
  sampled during the drift run. Baseline: a bare ``python -c`` sleeping, same interpreter.

The bench workspace turns fsync off and git off (no repository): the figures are about the
schedule and the process, not the disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from .common import python, row, scratch_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Row = dict[str, Any]

NAME = "timer"
TITLE = "Timer daemon: drift, idle CPU, memory"
TICK = 0.01
DRIFT_TARGET_MS = 50.0
RSS_TARGET_MB = 40.0
IDLE_CPU_TARGET_PCT = 0.1

SEED_LOOP = r"""
count=0
while [ "$count" -lt "$1" ]; do
  sleep "$2"
  count=$((count + 1))
  ts=$(date '+%Y-%m-%d %H:%M:%S')
  printf '%s\n%s\n%s\n' "$count" "$ts" "⏰ Coordination checkpoint $count triggered at $ts" > "$3"
done
"""


def _workspace(base: str) -> tuple[str, str]:
    from agentcoord.workspace import Workspace, init_workspace

    root = os.path.join(base, "coordination")
    init_workspace(root)
    with open(os.path.join(root, "config.json"), "w", encoding="utf-8") as fh:
        json.dump({"durable": False, "monitor": {"git": False}}, fh)
    return root, Workspace(root).timer_dir


def _stat_cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        raw = fh.read()
    fields = raw[raw.rfind(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def _rss_mb(pid: int, key: str = "VmRSS") -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _sidecar(timer_dir: str) -> dict[str, Any]:
    from agentcoord.timer.files import TimerFiles, read_json

    return read_json(TimerFiles(timer_dir).sidecar) or {}


def _stop(timer_dir: str) -> None:
    from agentcoord.errors import NotFound
    from agentcoord.timer import control
    from agentcoord.timer.files import TimerFiles

    try:
        control.stop(TimerFiles(timer_dir))  # by the recorded pid, after checking it is ours
    except NotFound:
        pass


def _seed_drift(n: int, base: str) -> float:
    target = os.path.join(base, "seed-checkpoint")
    start = time.monotonic()
    subprocess.run(
        ["bash", "-c", SEED_LOOP, "seed-timer", str(n), str(TICK), target],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return (time.monotonic() - start - n * TICK) * 1000.0


def _drift(quick: bool) -> tuple[list[Row], float | None]:
    from agentcoord.fs import pid_alive
    from agentcoord.timer import control

    n = 100 if quick else 1000
    with scratch_dir("timer-drift") as base:
        root, timer_dir = _workspace(base)
        status = control.start(root, timer_dir, interval=TICK, max_checks=n)
        pid = status["pid"]
        cpu0 = cpu1 = _stat_cpu_ticks(pid)
        peak = 0.0
        deadline = time.monotonic() + n * TICK * 20 + 60
        try:
            while pid_alive(pid) and time.monotonic() < deadline:
                rss = _rss_mb(pid)
                peak = max(peak, rss or 0.0)
                try:
                    cpu1 = _stat_cpu_ticks(pid)
                except OSError:
                    break
                time.sleep(0.05)
        finally:
            _stop(timer_dir)
        side = _sidecar(timer_dir)
        baseline = _seed_drift(n, base)
    sched = side.get("schedule") or {}
    drift = sched.get("lateness_ms")
    ticks = int(sched.get("tick") or 0)
    wall = None
    if side.get("epoch") and side.get("started_epoch"):
        wall = (side["epoch"] - side["started_epoch"] - ticks * TICK) * 1000.0
    finished = side.get("state") == "finished" and side.get("count") == n
    note = (
        f"{side.get('count')} checkpoints, {sched.get('skipped', 0)} ticks skipped, max lateness "
        f"{sched.get('max_lateness_ms', 0):.2f} ms; wall-clock check {wall:.2f} ms"
        if wall is not None
        else "no sidecar"
    )
    if not finished:
        note += f"; did not finish cleanly (state {side.get('state')})"
    hz = os.sysconf("SC_CLK_TCK")
    per_tick = (cpu1 - cpu0) / hz / max(ticks, 1) * 1000.0
    rows = [
        row(
            f"drift over {n:,} ticks at {TICK * 1000:g} ms",
            drift,
            "ms",
            baseline=baseline,
            target=f"< {DRIFT_TARGET_MS:g} ms over 1,000 ticks",
            met=drift is not None and drift < DRIFT_TARGET_MS and finished,
            note=note + "; baseline: the seed's bash sleep loop, same ticks",
        ),
        row(
            "CPU per tick (full tick work)",
            per_tick,
            "ms",
            note="reap + board read + two atomic writes, fsync off",
        ),
    ]
    if quick and drift is not None:
        rows[0]["note"] += " (quick run: 100 ticks; the full run does 1,000)"
    return rows, peak or None


def _idle(quick: bool, drift_peak: float | None) -> list[Row]:
    from agentcoord.timer import control

    interval = 3.0 if quick else 11.0
    with scratch_dir("timer-idle") as base:
        root, timer_dir = _workspace(base)
        status = control.start(root, timer_dir, interval=interval)
        pid = status["pid"]
        try:
            deadline = time.monotonic() + interval * 3 + 30
            while (_sidecar(timer_dir).get("count") or 0) < 1:
                if time.monotonic() > deadline:
                    raise RuntimeError("the idle timer never ticked")
                time.sleep(0.05)
            time.sleep(0.5)
            window = interval - 1.5
            a = _stat_cpu_ticks(pid)
            time.sleep(window)
            b = _stat_cpu_ticks(pid)
            rss = _rss_mb(pid)
            hwm = _rss_mb(pid, "VmHWM")
        finally:
            _stop(timer_dir)
    hz = os.sysconf("SC_CLK_TCK")
    cpu_pct = (b - a) / hz / window * 100.0
    bare = subprocess.Popen(
        [python(), "-c", "import time; time.sleep(30)"], stdin=subprocess.DEVNULL
    )
    try:
        time.sleep(0.5)
        bare_rss = _rss_mb(bare.pid)
    finally:
        bare.terminate()
        bare.wait()
    peak = max(x for x in (rss, hwm, drift_peak) if x is not None) if rss is not None else None
    return [
        row(
            f"idle CPU between ticks ({window:g} s window)",
            cpu_pct,
            "%",
            target="~0 (< 0.1%)",
            met=cpu_pct < IDLE_CPU_TARGET_PCT,
            note=f"{b - a} clock ticks of {hz}/s used; sleeps in select() until the next tick",
        ),
        row(
            "resident memory (peak of idle and 10 ms runs)",
            peak,
            "MB",
            baseline=bare_rss,
            target=f"<= {RSS_TARGET_MB:g} MB",
            met=peak is not None and peak <= RSS_TARGET_MB,
            note=f"VmRSS idle {rss:.1f} MB, VmHWM {hwm:.1f} MB; baseline: bare python sleeping"
            if rss is not None and hwm is not None
            else "",
        ),
    ]


def run(quick: bool = False) -> list[Row]:
    rows, peak = _drift(quick)
    return rows + _idle(quick, peak)


if __name__ == "__main__":
    for r in run("--quick" in sys.argv[1:]):
        print(json.dumps(r))
