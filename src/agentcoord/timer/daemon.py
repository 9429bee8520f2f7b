"""The timer process: ``python -m agentcoord.timer.daemon --dir ROOT --token T [options]``.

``coord timer start`` runs this module in a new session; it forks once more and the grandchild
is the daemon (classic double fork: not a session leader, so it can never regain a controlling
terminal, and nobody has to reap it but init). Start-up is synchronous for the caller: the
grandchild takes the timer's ``flock`` itself, after the last fork (a second daemon of the same
name cannot; ``/proc/locks`` names the grandchild, the pid its pid file records, which is what
``coord timer stop`` checks before it signals, SPEC section 16), opens the store,
writes its pid file and checkpoint 0, and only then reports ``{"ok": true, "pid": N}`` through a
pipe; the intermediate process prints that report and exits with the matching code (4 already
running, 5 unwritable, ...).

The loop sleeps until absolute grid times ``t0 + k * interval`` (``time.monotonic``, immune to
wall-clock steps; stamps use the wall clock). A tick that runs late never shifts later ones, and
ticks missed (machine suspended, a slow ``--on-checkpoint``) are skipped, not burst. SIGTERM and
SIGINT wake the sleep through a wake-up pipe; the tick in progress completes, the sidecar records
why the timer stopped, the pid file is removed, and the process exits 0. Between ticks it sleeps
in ``select`` and uses no CPU.

A Redis URL is never an argument (``/proc/PID/cmdline`` is readable by every local user, SPEC
section 16): the store is the workspace's, with the URL from ``$COORD_URL`` (``coord timer
start`` puts a ``--url`` there; ``/proc/PID/environ`` is the owner's only) or ``config.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import time

from .files import TimerFiles, append_log
from .tick import FAILED, STOPPED, Options, Timer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

#: How long the intermediate process waits for the daemon's start-up report.
READY_TIMEOUT = 30.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agentcoord.timer.daemon")
    p.add_argument("--dir", required=True, help="the coordination directory")
    p.add_argument("--timer-dir", help="where the timer files live (default: the workspace's)")
    p.add_argument("--name", default=None)
    p.add_argument("--interval", type=float, default=30.0, help="seconds (float)")
    p.add_argument("--max-checks", type=int, default=1200)
    p.add_argument("--until-done", action="store_true")
    p.add_argument("--adaptive", action="store_true")
    p.add_argument("--max-interval", type=float)
    p.add_argument("--on-checkpoint")
    p.add_argument("--on-checkpoint-timeout", type=float, default=60.0)
    p.add_argument("--stop-with", type=int)
    p.add_argument("--stop-with-start", type=int)
    p.add_argument("--token", required=True, help="identifies this run (pid file, sidecar)")
    p.add_argument("--foreground", action="store_true", help="no fork; report on stderr")
    return p


class Daemon:
    """The process around a :class:`Timer`: store, signals, the absolute-time loop."""

    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns
        self.stop_signal = 0
        self._wake_r = -1
        self.timer: Timer | None = None
        self._lock: int | None = None

    # -- start-up ---------------------------------------------------------------------------
    def setup(self) -> None:
        """Take the lock, open the store, write pid file and checkpoint 0. Raises CoordError."""
        from ..api import Coordinator
        from ..errors import AlreadyRunning
        from ..workspace import Workspace
        from .files import acquire_lock

        ns = self.ns
        ws = Workspace(os.path.abspath(ns.dir))
        files = TimerFiles(ns.timer_dir or ws.timer_dir, ns.name)
        # Taken here, in the process that runs the timer and writes its pid file: /proc/locks
        # names the taker, and ``stop`` signals only the pid file's pid if it is that taker.
        lock = acquire_lock(files.lockfile)
        if lock is None:
            raise AlreadyRunning(
                f"timer {files.name} is already running in {files.directory}", name=files.name
            )
        self._lock = lock  # held (fd open) for the daemon's whole life
        # A Redis URL comes from $COORD_URL or config.json, never from argv (SPEC 16).
        coord = Coordinator.open(ws.root)
        durable = bool(coord.config["durable"]) and os.environ.get("COORD_FSYNC") != "0"
        opts = Options(
            interval=ns.interval,
            max_checks=ns.max_checks,
            until_done=ns.until_done,
            adaptive=ns.adaptive,
            max_interval=ns.max_interval,
            on_checkpoint=ns.on_checkpoint,
            on_checkpoint_timeout=ns.on_checkpoint_timeout,
            stop_with=ns.stop_with,
            stop_with_start=ns.stop_with_start,
            token=ns.token,
        )
        self._install_signals()
        self.timer = Timer(
            coord, files, opts, durable=durable, should_stop=lambda: bool(self.stop_signal)
        )
        self.t0_mono = time.monotonic()
        self.timer.t0_mono = self.t0_mono
        try:
            self.timer.begin(time.time())
        except BaseException:
            self.timer.finish(FAILED, "could not write the checkpoint at start-up")
            raise

    def _install_signals(self) -> None:
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self._wake_r = r
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)

        def handler(signum: int, frame: object) -> None:
            self.stop_signal = signum

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    # -- the loop ---------------------------------------------------------------------------
    def lock_lost(self) -> str | None:
        """Why the lock this process holds no longer proves it is the timer (the file at the
        lock's path is not the one locked: replaced, renamed away or removed), else None."""
        timer = self.timer
        if self._lock is None or timer is None:
            return None
        path = timer.files.lockfile
        try:
            same = os.path.samestat(os.fstat(self._lock), os.lstat(path))
        except FileNotFoundError:
            return f"its lock file {path} was removed or renamed"
        except OSError as exc:
            return f"cannot check its lock file {path}: {exc.strerror or exc}"
        if not same:
            return f"its lock file {path} was replaced by another file"
        return None

    def _sleep_until(self, target: float) -> bool:
        """Sleep until monotonic ``target``; False if a stop signal came first."""
        while not self.stop_signal:
            remaining = target - time.monotonic()
            if remaining <= 0:
                return True
            readable, _, _ = select.select([self._wake_r], [], [], remaining)
            if readable:
                try:
                    os.read(self._wake_r, 512)
                except BlockingIOError:
                    pass
        return False

    def serve(self) -> int:
        timer = self.timer
        assert timer is not None
        interval = timer.opts.interval
        k = 0
        try:
            while True:
                target = self.t0_mono + (k + 1) * interval
                if not self._sleep_until(target):
                    break
                if not os.path.isdir(timer.files.directory):
                    timer.stop_reason = f"timer directory {timer.files.directory} was removed"
                    timer.state = STOPPED
                    return 0  # nothing left to write to
                lost = self.lock_lost()
                if lost is not None:
                    # Nobody can prove this process is the timer any more ('timer stop' would
                    # not signal it, 'timer status' could not report it): stop, so the state
                    # converges to "not running" (SPEC section 16).
                    timer.stop_reason, timer.state = lost, STOPPED
                    break
                k += 1
                now = time.time()
                if not timer.on_grid(k, now, time.monotonic() - target):
                    break
                if self.stop_signal:
                    break
                # Skip ahead over grid points already past: never burst to catch up.
                behind = int((time.monotonic() - self.t0_mono) / interval)
                if behind > k:
                    timer.schedule["skipped"] += behind - k
                    timer.log(f"skipped {behind - k} tick(s): tick {k} ran past them")
                    k = behind
        except BaseException as exc:
            timer.finish(FAILED, f"crashed: {type(exc).__name__}: {exc}")
            raise
        if self.stop_signal:
            name = signal.Signals(self.stop_signal).name
            timer.finish(STOPPED, f"stopped by {name}")
        else:
            timer.finish(timer.state, timer.stop_reason or "stopped")
        return 0


# -- process plumbing ----------------------------------------------------------------------
def _devnull_stdio() -> None:
    fd = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(fd, target)
    if fd > 2:
        os.close(fd)


def _error_report(exc: BaseException) -> dict[str, Any]:
    from ..errors import CoordError

    if isinstance(exc, CoordError):
        return {"ok": False, **exc.to_dict()}
    return {"ok": False, "code": "error", "exit": 1, "message": f"{type(exc).__name__}: {exc}"}


def _grandchild(ns: argparse.Namespace, report_fd: int) -> int:
    os.chdir("/")
    _devnull_stdio()
    daemon = Daemon(ns)
    try:
        daemon.setup()
    except BaseException as exc:
        report = _error_report(exc)
        os.write(report_fd, json.dumps(report).encode())
        os.close(report_fd)
        return int(report.get("exit", 1))
    assert daemon.timer is not None
    report = {"ok": True, "pid": os.getpid(), "name": daemon.timer.files.name}
    os.write(report_fd, json.dumps(report).encode())
    os.close(report_fd)
    try:
        return daemon.serve()
    except BaseException as exc:
        append_log(daemon.timer.files.log, f"daemon crashed: {type(exc).__name__}: {exc}")
        return 1


def _read_report(fd: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return {"ok": False, "code": "error", "exit": 1, "message": "timer start timed out"}
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    raw = b"".join(chunks).decode("utf-8", "replace")
    if not raw:
        return {
            "ok": False,
            "code": "error",
            "exit": 1,
            "message": "the timer process exited during start-up",
        }
    data: dict[str, Any] = json.loads(raw)
    return data


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    ns.dir = os.path.abspath(ns.dir)  # before the daemon changes to /
    if ns.timer_dir:
        ns.timer_dir = os.path.abspath(ns.timer_dir)
    if ns.foreground:
        daemon = Daemon(ns)
        try:
            daemon.setup()
        except BaseException as exc:
            sys.stderr.write(json.dumps(_error_report(exc)) + "\n")
            return int(_error_report(exc).get("exit", 1))
        return daemon.serve()
    if os.getsid(0) != os.getpid():
        try:
            os.setsid()  # started by hand, not by ``coord timer start``: leave the terminal
        except OSError:
            pass
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the daemon
        os.close(r)
        code = 1
        try:
            code = _grandchild(ns, w)
        finally:
            os._exit(code)
    os.close(w)
    report = _read_report(r, READY_TIMEOUT)
    os.close(r)
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    return 0 if report.get("ok") else int(report.get("exit", 1))


if __name__ == "__main__":
    sys.exit(main())
