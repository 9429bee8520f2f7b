"""``coord timer start|stop|status``: spawn the daemon, end exactly it, report on it.

``stop`` never matches processes by name (the seed kills by command-line pattern), and a pid
file proves nothing by itself: whoever can write the timer directory can plant one naming any
process, with its real start time and a word of its command line. ``stop`` signals the pid file's
pid only if that process provably holds the timer's lock file, which the daemon ``flock``-s
for its whole life (:func:`~agentcoord.timer.files.holds_lock`: ``/proc/locks`` names it as the
taker and its own descriptor holds the lock; SPEC section 16). On Linux the process is pinned
first with a pidfd, then the lock is checked, then the signal goes through the pidfd: no other
process can take the pid between the check and the signal. When nobody holds the lock the pid
file is stale: ``stop`` and ``status`` say so and remove it, and never signal. ``start`` and
``status`` use the same proof, so a planted pid file neither blocks a start nor reads as
"running".

A Redis URL given with ``--url`` reaches the daemon in its environment (``$COORD_URL``), never
on its command line (SPEC section 16).
"""

from __future__ import annotations

import os
import signal
import sys
import time

from ..core.clock import duration, iso
from ..errors import (
    AlreadyRunning,
    BackendUnavailable,
    Conflict,
    CoordError,
    CorruptData,
    InvalidInput,
    NotFound,
)
from ..fs import pid_alive, proc_start_time
from .files import (
    TimerFiles,
    boot_id,
    is_our_timer,
    lock_holder,
    probe_writable,
    read_checkpoint,
    read_json,
    read_pidfile,
    runs_this_timer,
    timer_names,
    why_not_ours,
    write_json,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .files import PidInfo

#: Bounds on the flags (exit 2 outside them).
MIN_INTERVAL = 0.01
MAX_INTERVAL = 7 * 86400.0
START_TIMEOUT = 40.0


def validate(
    *,
    interval: float,
    max_checks: int,
    max_interval: float | None = None,
    on_checkpoint_timeout: float = 60.0,
) -> None:
    import math

    if not math.isfinite(interval) or interval <= 0:
        raise InvalidInput(f"--interval must be a positive number of seconds, not {interval:g}")
    if interval < MIN_INTERVAL or interval > MAX_INTERVAL:
        raise InvalidInput(
            f"--interval must be between {MIN_INTERVAL:g}s and {duration(MAX_INTERVAL)}, "
            f"not {interval:g}s"
        )
    if isinstance(max_checks, bool) or not isinstance(max_checks, int) or max_checks < 1:
        raise InvalidInput(f"--max-checks must be a whole number >= 1, not {max_checks!r}")
    if max_interval is not None and not (interval <= max_interval <= MAX_INTERVAL):
        raise InvalidInput(
            f"--max-interval must be at least --interval ({interval:g}s), not {max_interval:g}s"
        )
    if not math.isfinite(on_checkpoint_timeout) or on_checkpoint_timeout <= 0:
        raise InvalidInput("--on-checkpoint-timeout must be a positive number of seconds")


def start(
    root: str,
    timer_dir: str,
    *,
    name: str | None = None,
    interval: float = 30.0,
    max_checks: int = 1200,
    until_done: bool = False,
    adaptive: bool = False,
    max_interval: float | None = None,
    on_checkpoint: str | None = None,
    on_checkpoint_timeout: float = 60.0,
    stop_with: int | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """Start a detached timer; return its status once checkpoint 0 is on disk.

    ``url`` (a Redis URL, perhaps with a password) is passed to the daemon as ``$COORD_URL``
    in its environment, never as an argument. Raises :class:`AlreadyRunning` (exit 4) only
    when the pid file's process provably holds the timer's lock (a planted or stale pid file
    does not count; the daemon's own ``flock`` settles any race), :class:`InvalidInput`,
    :class:`NotFound`, :class:`BackendUnavailable` and the daemon's start-up errors."""
    import secrets
    import subprocess

    files = TimerFiles(timer_dir, name)
    validate(
        interval=interval,
        max_checks=max_checks,
        max_interval=max_interval,
        on_checkpoint_timeout=on_checkpoint_timeout,
    )
    if not os.path.isdir(root):
        raise NotFound(f"workspace directory {root} does not exist; run 'coord init'")
    if not os.path.isdir(files.directory):
        raise BackendUnavailable(
            f"cannot write timer files in {files.directory}: no such directory",
            path=files.directory,
        )
    probe_writable(files.directory)
    info = read_pidfile(files.pidfile)
    if is_our_timer(info, files.lockfile):
        assert info is not None
        raise AlreadyRunning(
            f"timer {files.name} is already running (pid {info.pid}); "
            f"'coord timer stop --name {files.name}' first",
            name=files.name,
            pid=info.pid,
        )
    token = secrets.token_hex(8)
    argv = [sys.executable, "-m", "agentcoord.timer.daemon", "--dir", root]
    argv += ["--timer-dir", files.directory, "--name", files.name, "--token", token]
    argv += ["--interval", repr(float(interval)), "--max-checks", str(max_checks)]
    argv += ["--on-checkpoint-timeout", repr(float(on_checkpoint_timeout))]
    if until_done:
        argv.append("--until-done")
    if adaptive:
        argv.append("--adaptive")
    if max_interval is not None:
        argv += ["--max-interval", repr(float(max_interval))]
    if on_checkpoint:
        argv += ["--on-checkpoint", on_checkpoint]
    if stop_with is not None:
        if stop_with <= 0 or proc_start_time(stop_with) is None:
            raise InvalidInput(f"--stop-with {stop_with}: no such process")
        argv += ["--stop-with", str(stop_with)]
        argv += ["--stop-with-start", str(proc_start_time(stop_with))]
    env = dict(os.environ)
    if url:
        env["COORD_URL"] = url  # /proc/PID/environ is the owner's only; cmdline is everyone's
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
        cwd=files.directory,
    )
    try:
        out, err = proc.communicate(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise BackendUnavailable(
            f"timer {files.name} did not start within {START_TIMEOUT:g}s"
        ) from None
    report = _report(out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
    if not report.get("ok"):
        raise _error(report)
    return status(files)


def _report(out: str, err: str) -> dict[str, Any]:
    import json

    for line in reversed(out.strip().splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    tail = err.strip().splitlines()[-1:] or ["no output"]
    return {"ok": False, "code": "error", "exit": 1, "message": f"timer failed: {tail[0]}"}


def _error(report: dict[str, Any]) -> CoordError:
    """The daemon's start-up error as the matching exception class (same exit code)."""
    from .. import errors

    message = str(report.get("message", "timer failed to start"))
    details = {
        k: v for k, v in report.items() if k not in ("ok", "code", "exit", "message", "reason")
    }
    exit_code = report.get("exit")
    if exit_code == 6:
        return CorruptData(
            str(report.get("path", "?")), int(report.get("line", 0)), report.get("reason", message)
        )
    by_code = {
        cls.code: cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, CoordError) and cls is not CorruptData
    }
    cls = by_code.get(str(report.get("code")), CoordError)
    return cls(message, **details)


# -- stop -----------------------------------------------------------------------------------
def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:
        return None
    return fd


def _signal(pid: int, pidfd: int | None, sig: int) -> bool:
    """Send ``sig``; False when the process is already gone. :class:`Conflict` (exit 4) when
    this user may not signal it (a timer another member of a shared workspace started)."""
    try:
        sender = getattr(signal, "pidfd_send_signal", None)
        if pidfd is not None and sender is not None:
            sender(pidfd, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        raise Conflict(
            f"the timer (pid {pid}) runs as {_owner(pid)}; this user may not stop it: ask "
            "its owner (or root) to run 'coord timer stop'",
            pid=pid,
        ) from None
    return True


def _owner(pid: int) -> str:
    """``user NAME (uid N)`` of the process ``pid``, as far as it can be told."""
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return "another user"
    try:
        import pwd

        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (KeyError, ImportError):
        return f"uid {uid}"


def _gone(info: PidInfo, pidfd: int | None) -> bool:
    """Whether the process ``info`` names has exited (its pidfd is readable then)."""
    if pidfd is not None:
        import select

        return bool(select.select([pidfd], [], [], 0)[0])
    return not pid_alive(info.pid) or proc_start_time(info.pid) != info.start_time


def _wait_gone(info: PidInfo, pidfd: int | None, timeout: float) -> bool:
    import select

    deadline = time.monotonic() + timeout
    while not _gone(info, pidfd):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if pidfd is not None:
            select.select([pidfd], [], [], min(remaining, 0.5))  # readable once it exits
        else:
            time.sleep(min(remaining, 0.02))
    return True


_ORPHAN = (
    "the lock file was replaced or removed; the daemon stops by itself at its next tick, "
    "its pid file is kept until then"
)


def _remove_stale(files: TimerFiles, info: PidInfo | None) -> bool:
    """Remove the pid file if it still holds ``info`` (and mark a 'running' sidecar dead).
    ``unlink`` removes a planted symbolic link or FIFO itself, never what it points to."""
    current = read_pidfile(files.pidfile)
    if current is None or info is None or current.render() != info.render():
        return False
    try:
        os.unlink(files.pidfile)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise BackendUnavailable(f"cannot remove {files.pidfile}: {exc.strerror}") from exc
    _mark_sidecar(files, info.token, "dead", "the timer process is gone (stale pid file removed)")
    return True


def _mark_sidecar(files: TimerFiles, token: str, state: str, reason: str) -> None:
    if not token:
        return
    try:
        side = read_json(files.sidecar)
    except CorruptData:
        return
    if side and side.get("run") == token and side.get("state") == "running":
        side.update(state=state, stop_reason=reason, next_tick=None, next_tick_epoch=None)
        side["updated"] = iso(time.time())
        write_json(files.sidecar, side, durable=False)


def stop(files: TimerFiles, *, timeout: float = 10.0) -> dict[str, Any]:
    """Stop the timer ``files`` describes: ``{"name", "stopped", "pid", "note"?, "killed"?,
    "stale_pidfile_removed"?}``. NotFound (exit 3) if it never ran here.

    The pid file's process is pinned (pidfd), then must provably hold the timer's lock
    (:func:`~agentcoord.timer.files.is_our_timer`); only then is it sent SIGTERM, and SIGKILL
    after ``timeout`` if it still holds the lock. Otherwise nothing is signalled: the pid file
    is stale, removed, and ``note`` says why (SPEC section 16)."""
    out: dict[str, Any] = {"name": files.name, "stopped": False, "pid": None}
    info = read_pidfile(files.pidfile)
    if info is None:
        if not files.exists():
            raise NotFound(f"no timer named {files.name} in {files.directory}", name=files.name)
        out["note"] = "not running"
        return out
    out["pid"] = info.pid
    pidfd = _pidfd(info.pid) if info.pid > 0 else None
    try:
        why = why_not_ours(info, files.lockfile)  # after pinning the process: no swap in between
        if why is not None:
            if runs_this_timer(info, files.lockfile):
                # This timer's own daemon (by its command line) whose lock file was replaced
                # under it: not provably ours to signal, not stale either. It notices at its
                # next tick and exits by itself (removing its pid file).
                out["note"] = f"not signalled ({why}): {_ORPHAN}"
                return out
            removed = _remove_stale(files, info)
            out["stale_pidfile_removed"] = removed
            out["note"] = f"not running (stale pid file{' removed' if removed else ''}: {why})"
            return out
        _signal(info.pid, pidfd, signal.SIGTERM)  # Conflict when not ours to signal
        if not _wait_gone(info, pidfd, timeout):
            if is_our_timer(info, files.lockfile):
                _signal(info.pid, pidfd, signal.SIGKILL)
                if not _wait_gone(info, pidfd, 5.0):
                    raise BackendUnavailable(
                        f"timer {files.name} (pid {info.pid}) did not exit after SIGKILL; "
                        "its pid file is kept",
                        pid=info.pid,
                    )
            out["killed"] = True
        out["stopped"] = True
        if os.path.lexists(files.pidfile):
            _remove_stale(files, info)
            _mark_sidecar(files, info.token, "stopped", "killed after SIGTERM timed out")
    finally:
        if pidfd is not None:
            os.close(pidfd)
    return out


def stop_all(timer_dir: str, *, timeout: float = 10.0) -> list[dict[str, Any]]:
    results = []
    for name in timer_names(timer_dir):
        files = TimerFiles(timer_dir, name)
        if os.path.exists(files.pidfile):
            results.append(stop(files, timeout=timeout))
    return results


# -- status ---------------------------------------------------------------------------------
def status(files: TimerFiles, *, now: float | None = None) -> dict[str, Any]:
    """Whether the timer runs, its count, last and next tick, interval; cleans a stale pid file.

    "Running" means the pid file's process provably holds the timer's lock (SPEC section 16);
    unreadable timer files (not JSON, a symbolic link, a FIFO) become ``warnings``."""
    when = time.time() if now is None else now
    if not files.exists():
        raise NotFound(f"no timer named {files.name} in {files.directory}", name=files.name)
    info = read_pidfile(files.pidfile)
    running = is_our_timer(info, files.lockfile)
    # The lock proof fails but the pid file names this timer's own live daemon (its start
    # time, token and --name/--timer-dir): its lock file was replaced under it. Not stale:
    # keep its pid file and say "unknown" until the daemon notices and exits.
    orphan = not running and runs_this_timer(info, files.lockfile)
    if info is not None and not running and not orphan:
        _remove_stale(files, info)
    warnings: list[str] = []
    try:
        side = read_json(files.sidecar) or {}
    except CorruptData as exc:
        side, warnings = {}, [exc.message]
    try:
        cp = read_checkpoint(files.checkpoint)
    except CorruptData as exc:
        cp, warnings = None, [*warnings, exc.message]
    state = side.get("state") or ("running" if running else "stopped")
    if state == "running" and not running:
        state = "dead"
    holder = None if running else lock_holder(files.lockfile)
    if orphan:
        assert info is not None
        state = "unknown"
        held = f"held by pid {holder}" if holder is not None else "held by no process"
        warnings.append(
            f"process {info.pid} is timer {files.name}'s daemon (its command line says so) "
            f"but does not hold the timer's lock {files.lockfile} ({held}): {_ORPHAN}"
        )
    elif holder is not None:
        # Some process holds the lock, but the pid file does not name it (replaced by hand or
        # planted): neither "running" (unproven) nor "dead"; stop signals nobody.
        state = "unknown"
        warnings.append(
            f"the timer's lock {files.lockfile} is held by pid {holder}, which the pid file "
            "does not name; 'coord timer stop' will not signal it"
        )
    next_tick = side.get("next_tick_epoch") if running else None
    mono = side.get("next_tick_monotonic") if running else None
    this_boot = boot_id()
    if (
        isinstance(mono, (int, float))
        and this_boot is not None
        and side.get("boot_id") == this_boot
    ):
        # The daemon sleeps on the monotonic clock: if the wall clock stepped since it wrote
        # the sidecar, its wall-clock "next tick" is off by that step; this is not.
        next_tick = when + (mono - time.monotonic())
    out: dict[str, Any] = {
        "name": files.name,
        "running": running,
        "pid": info.pid if running and info is not None else None,
        "state": state,
        "stop_reason": side.get("stop_reason") if not running else None,
        "count": cp.count if cp is not None else side.get("count"),
        "last_tick": cp.timestamp if cp is not None else side.get("timestamp"),
        "next_tick": iso(next_tick) if next_tick else None,
        "next_in": round(max(0.0, next_tick - when), 1) if next_tick else None,
        "interval": side.get("interval"),
        "base_interval": side.get("base_interval"),
        "adaptive": side.get("adaptive", False),
        "until_done": side.get("until_done", False),
        "max_checks": side.get("max_checks"),
        "started": side.get("started"),
        "checkpoint_file": files.checkpoint,
        "log": files.log,
    }
    if warnings:
        out["warnings"] = warnings
    return out


def status_all(timer_dir: str) -> list[dict[str, Any]]:
    return [status(TimerFiles(timer_dir, n)) for n in timer_names(timer_dir)]
