"""The timer's files, their names and formats, and the process checks behind ``stop``/``status``.

All of them live in the workspace's timer directory (``.claude/`` for the default layout, next to
``coordination/``), so the seed's paths hold exactly for the default timer:

=====================================  ===========================================================
``.coordination-checkpoint``           the seed's three lines: count, ``YYYY-MM-DD HH:MM:SS``, ⏰
``.coordination-checkpoint.json``      sidecar: the same checkpoint plus rich data (machine use)
``.coordination-last-check``           the seed's last processed count (one integer)
``.coordination-last-check.json``      which run that count belongs to, and when it was checked
``.coordination-timer.pid``            ``PID`` / process start time / token, one per line
``.coordination-timer.lock``           ``flock``-ed by the running daemon for its whole life
``.coordination-timer.log``            what each tick did (bounded)
=====================================  ===========================================================

A named timer inserts ``-NAME`` after the base name (``.coordination-checkpoint-quality``), and a
separate check-in consumer appends ``@CONSUMER`` to the last-check files. Every file is covered
by the workspace's ``.claude/.coordination-*`` ignore line. Writes are atomic
(:func:`~agentcoord.fs.atomic_write`), so a reader never sees half a checkpoint.
"""

from __future__ import annotations

import json
import os
import re

from ..core.clock import stamp
from ..errors import BackendUnavailable, CorruptData, InvalidName
from ..fs import atomic_write, pid_alive, proc_start_time, read_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_NAME = "default"
CHECKPOINT = ".coordination-checkpoint"
LAST_CHECK = ".coordination-last-check"
TIMER = ".coordination-timer"
LOG_MAX_BYTES = 256 * 1024

# Timer and consumer names end up inside file names that also carry ``.json``/``.pid``/``.lock``
# suffixes and an ``@`` separator, so they may not contain dots (``x.json`` would collide with the
# sidecar of timer ``x``) or ``@``.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")
_SUFFIXES = (".json", ".pid", ".lock", ".log")


def boot_id() -> str | None:
    """This boot's id (Linux): monotonic times compare only within one boot."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def check_timer_name(name: str | None, what: str = "timer name") -> str:
    """The timer's name (``default`` when none is given); exit 2 for anything unsafe,
    including an empty name (``--name ""`` is a mistake, not "the default timer")."""
    if name is None:
        return DEFAULT_NAME
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise InvalidName(
            f"invalid {what} {name!r}: use 1-48 characters from A-Z a-z 0-9 _ - "
            "starting with a letter or digit",
            field=what,
        )
    return name


class TimerFiles:
    """The paths of one timer's files in ``directory``."""

    __slots__ = ("checkpoint", "directory", "lockfile", "log", "name", "pidfile", "sidecar")

    def __init__(self, directory: str, name: str | None = None) -> None:
        self.directory = os.path.abspath(directory)
        self.name = check_timer_name(name)
        suffix = "" if self.name == DEFAULT_NAME else f"-{self.name}"
        self.checkpoint = os.path.join(self.directory, CHECKPOINT + suffix)
        self.sidecar = self.checkpoint + ".json"
        self.pidfile = os.path.join(self.directory, f"{TIMER}{suffix}.pid")
        self.lockfile = os.path.join(self.directory, f"{TIMER}{suffix}.lock")
        self.log = os.path.join(self.directory, f"{TIMER}{suffix}.log")

    def last_check(self, consumer: str | None = None) -> str:
        """The seed's last-check file, or a separate one per check-in consumer."""
        suffix = "" if self.name == DEFAULT_NAME else f"-{self.name}"
        if consumer:
            suffix += "@" + check_timer_name(consumer, "consumer name")
        return os.path.join(self.directory, LAST_CHECK + suffix)

    def exists(self) -> bool:
        """Whether this timer ever ran here (its checkpoint or pid file is present)."""
        return any(os.path.exists(p) for p in (self.checkpoint, self.sidecar, self.pidfile))


def timer_names(directory: str) -> list[str]:
    """Names of the timers that have files in ``directory`` (default first)."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    found: set[str] = set()
    for entry in entries:
        for base in (CHECKPOINT, TIMER):
            if not entry.startswith(base):
                continue
            rest = entry[len(base) :]
            for ext in _SUFFIXES:
                if rest.endswith(ext):
                    rest = rest[: -len(ext)]
                    break
            if rest == "":
                found.add(DEFAULT_NAME)
            elif rest.startswith("-") and _NAME.fullmatch(rest[1:]):
                found.add(rest[1:])
    return sorted(found, key=lambda n: (n != DEFAULT_NAME, n))


# -- checkpoint (the seed's three lines) ------------------------------------------------------
def checkpoint_message(count: int, ts: float) -> str:
    return f"⏰ Coordination checkpoint {count} triggered at {stamp(ts)}"


def format_checkpoint(count: int, ts: float) -> str:
    """``count``, ``YYYY-MM-DD HH:MM:SS`` (UTC) and the ⏰ message, one per line (seed 004)."""
    return f"{count}\n{stamp(ts)}\n{checkpoint_message(count, ts)}\n"


class Checkpoint:
    __slots__ = ("count", "message", "timestamp")

    def __init__(self, count: int, timestamp: str, message: str) -> None:
        self.count = count
        self.timestamp = timestamp
        self.message = message


def parse_checkpoint(text: str, path: str) -> Checkpoint:
    """Read the three lines back; only the count is required (a person may have trimmed it)."""
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    try:
        count = int(first)
    except ValueError:
        raise CorruptData(path, 1, f"checkpoint count is not a whole number: {first!r}") from None
    if count < 0:
        raise CorruptData(path, 1, f"checkpoint count is negative: {count}")
    timestamp = lines[1].strip() if len(lines) > 1 else ""
    message = lines[2].strip() if len(lines) > 2 else ""
    return Checkpoint(count, timestamp, message)


def read_checkpoint(path: str) -> Checkpoint | None:
    text = read_text(path)
    return None if text is None else parse_checkpoint(text, path)


def read_count(path: str) -> int | None:
    """The seed's last-check file: one integer (empty counts as 0, as after ``echo 0 >``)."""
    text = read_text(path)
    if text is None:
        return None
    first = text.strip().splitlines()[0].strip() if text.strip() else "0"
    try:
        value = int(first)
    except ValueError:
        raise CorruptData(path, 1, f"last-check count is not a whole number: {first!r}") from None
    return max(value, 0)


# -- JSON side files -------------------------------------------------------------------------
def read_json(path: str) -> dict[str, Any] | None:
    """A JSON object written by us, or None when missing; unreadable is reported (exit 6)."""
    text = read_text(path)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptData(path, exc.lineno, f"not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise CorruptData(path, 1, "expected a JSON object")
    return data


def write_json(path: str, data: dict[str, Any], *, durable: bool = True) -> None:
    atomic_write(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n", durable=durable)


# -- pid file and process identity -------------------------------------------------------------
class PidInfo:
    """The pid file: the daemon's pid, its kernel start time and the run's token."""

    __slots__ = ("pid", "start_time", "token")

    def __init__(self, pid: int, start_time: int | None, token: str) -> None:
        self.pid = pid
        self.start_time = start_time
        self.token = token

    def render(self) -> str:
        start = "" if self.start_time is None else str(self.start_time)
        return f"{self.pid}\n{start}\n{self.token}\n"


def read_pidfile(path: str) -> PidInfo | None:
    """The pid file, or None when missing or malformed (a malformed one is treated as stale)."""
    text = read_text(path)
    if text is None:
        return None
    lines = [ln.strip() for ln in text.splitlines()]
    try:
        pid = int(lines[0])
    except (IndexError, ValueError):
        return PidInfo(0, None, "")
    start = int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else None
    token = lines[2] if len(lines) > 2 else ""
    return PidInfo(pid, start, token)


def is_our_timer(info: PidInfo | None) -> bool:
    """True only if the pid still belongs to the timer that wrote ``info``: alive, started at
    the recorded time (a reused pid starts later) and carrying the run's token in its command
    line. Without procfs only liveness can be checked."""
    if info is None or info.pid <= 0 or not pid_alive(info.pid):
        return False
    if not os.path.isdir("/proc/self"):
        return True
    if info.start_time is None or proc_start_time(info.pid) != info.start_time:
        return False
    try:
        with open(f"/proc/{info.pid}/cmdline", "rb") as fh:
            args = fh.read().split(b"\0")
    except OSError:
        return False
    return bool(info.token) and info.token.encode() in args


# -- log -----------------------------------------------------------------------------------------
def append_log(path: str, line: str, *, max_bytes: int = LOG_MAX_BYTES) -> None:
    """Append one line; past ``max_bytes`` keep the newest half (the log stays bounded)."""
    data = (line.rstrip("\n").replace("\n", " | ") + "\n").encode("utf-8", "replace")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, data)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > max_bytes:
            with open(path, "rb") as fh:
                fh.seek(size - max_bytes // 2)
                tail = fh.read()
            cut = tail.find(b"\n") + 1
            atomic_write(path, tail[cut:], durable=False)
    except (OSError, BackendUnavailable):
        pass  # the log is a convenience: never let it stop a tick


def probe_writable(directory: str) -> None:
    """Raise :class:`BackendUnavailable` naming ``directory`` unless files can be created in it."""
    probe = os.path.join(directory, f".coordination-probe-{os.getpid()}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BackendUnavailable(
            f"cannot write timer files in {directory}: {exc.strerror or exc}",
            path=directory,
        ) from exc
