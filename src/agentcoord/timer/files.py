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

SPEC section 16, against whoever can plant files in the timer directory: no write follows a
symbolic link (atomic writes rename over one; the log and the lock file are opened with
``O_NOFOLLOW`` and accepted only as a regular file with one link), reads go through
:func:`~agentcoord.fs.read_text` (``O_NOFOLLOW|O_NONBLOCK``, regular files only, size caps), so a
FIFO never blocks anything, and a pid file proves nothing by itself: a timer is running only
while the pid it names holds the lock file's ``flock`` (:func:`holds_lock`).
"""

from __future__ import annotations

import json
import os
import re

from ..core.clock import stamp
from ..errors import BackendUnavailable, CoordError, CorruptData, InvalidName
from ..fs import atomic_write, pid_alive, proc_start_time, read_bytes, read_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_NAME = "default"
CHECKPOINT = ".coordination-checkpoint"
LAST_CHECK = ".coordination-last-check"
TIMER = ".coordination-timer"
LOG_MAX_BYTES = 256 * 1024
#: Size caps on what the timer's readers accept (SPEC section 16): a pid file is three short
#: lines, a checkpoint three, a sidecar a bounded summary (50 reaped-lease records at most).
PID_MAX_BYTES = 4096
CHECKPOINT_MAX_BYTES = 64 * 1024
JSON_MAX_BYTES = 4 * 1024 * 1024
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

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
        """Whether this timer ever ran here (its checkpoint or pid file is present; whatever
        is at the path counts, a symbolic link is not followed)."""
        return any(os.path.lexists(p) for p in (self.checkpoint, self.sidecar, self.pidfile))


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
    """The checkpoint at ``path`` (None when missing); :class:`CorruptData` for one that does
    not parse, is not a regular file (symlink, FIFO) or is over :data:`CHECKPOINT_MAX_BYTES`."""
    text = read_text(path, limit=CHECKPOINT_MAX_BYTES)
    return None if text is None else parse_checkpoint(text, path)


def read_count(path: str) -> int | None:
    """The seed's last-check file: one integer (empty counts as 0, as after ``echo 0 >``);
    :class:`CorruptData` as for :func:`read_checkpoint`."""
    text = read_text(path, limit=CHECKPOINT_MAX_BYTES)
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
    """A JSON object written by us, or None when missing; unreadable (not JSON, not a regular
    file, over :data:`JSON_MAX_BYTES`) is :class:`CorruptData` (exit 6)."""
    text = read_text(path, limit=JSON_MAX_BYTES)
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
    """The pid file: the daemon's pid, its kernel start time and the run's token. ``problem``
    says why a pid file that exists could not be used (malformed, not a regular file); such a
    one has pid 0 and is stale. ``lockfile`` is the lock that proves it (set by
    :func:`read_pidfile`: ``X.pid`` goes with ``X.lock``)."""

    __slots__ = ("lockfile", "pid", "problem", "start_time", "token")

    def __init__(
        self,
        pid: int,
        start_time: int | None,
        token: str,
        problem: str | None = None,
        lockfile: str | None = None,
    ) -> None:
        self.pid = pid
        self.start_time = start_time
        self.token = token
        self.problem = problem
        self.lockfile = lockfile

    def render(self) -> str:
        start = "" if self.start_time is None else str(self.start_time)
        return f"{self.pid}\n{start}\n{self.token}\n"


def read_pidfile(path: str) -> PidInfo | None:
    """The pid file, or None when missing. A malformed one, or one that is not a regular file
    (a symbolic link, a FIFO: never followed, never waited on), is a :class:`PidInfo` with pid 0
    and a ``problem``: stale, removed by ``stop``/``status``."""
    lockfile = path[: -len(".pid")] + ".lock" if path.endswith(".pid") else None
    try:
        text = read_text(path, limit=PID_MAX_BYTES)
    except CorruptData as exc:
        return PidInfo(0, None, "", problem=exc.reason, lockfile=lockfile)
    if text is None:
        return None
    lines = [ln.strip() for ln in text.splitlines()]
    try:
        pid = int(lines[0])
    except (IndexError, ValueError):
        return PidInfo(0, None, "", problem="malformed", lockfile=lockfile)
    start = int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else None
    token = lines[2] if len(lines) > 2 else ""
    return PidInfo(pid, start, token, lockfile=lockfile)


def open_regular(path: str, flags: int, *, mode: int | None = None) -> int:
    """A timer file opened by :func:`agentcoord.fs.open_regular` with one link required: a
    symbolic link, a special file or a hard link to a victim file is :class:`CorruptData`
    (SPEC section 16); ``OSError`` for anything else."""
    from ..fs import open_regular as fs_open_regular

    return fs_open_regular(path, flags, one_link=True, mode=mode)


# -- the lock: the only proof that a pid is our timer ------------------------------------------
def acquire_lock(path: str) -> int | None:
    """Take the exclusive ``flock`` on the timer's lock file at ``path`` without waiting, in
    *this* process (``/proc/locks`` names the process that takes a lock: the daemon takes its
    own, after its last fork). Returns the fd to hold for the process's whole life (closing it
    drops the lock; ``O_CLOEXEC``, so no child inherits it), or None when another process holds
    the lock. The file is created 0600 (0660 in a shared workspace) and an older, wider one of
    this user is tightened: a lock others can read is one they can hold (``flock`` needs only
    read access), and ``timer start`` would then refuse.

    Raises :class:`CorruptData` when the path is a symbolic link or not a regular file (a lock
    on a planted FIFO would prove nothing) and :class:`BackendUnavailable` when it cannot be
    opened. SPEC section 16."""
    import fcntl

    from ..fs import lock_mode

    mode = lock_mode(os.path.dirname(path))
    for _attempt in range(10):
        try:
            fd = open_regular(path, os.O_RDWR | os.O_CREAT, mode=mode)
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot open lock {path}: {exc.strerror or exc}", path=path
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as exc:
            os.close(fd)
            raise BackendUnavailable(f"cannot lock {path}: {exc.strerror}", path=path) from exc
        # The path may have been replaced between open and flock: hold the file it names now.
        try:
            same = os.path.samestat(os.fstat(fd), os.lstat(path))
        except OSError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise BackendUnavailable(f"cannot lock {path}: it keeps being replaced", path=path)


def _procfs() -> bool:
    """Whether ``/proc`` describes processes (Linux): else only weaker checks are possible."""
    return os.path.isdir("/proc/self")


def _lock_stat(path: str) -> os.stat_result | None:
    """The lock file's identity (device and inode), or None when there is no regular file."""
    try:
        fd = open_regular(path, os.O_RDONLY)
    except (OSError, CorruptData):
        return None
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _flock_holders(st: os.stat_result) -> tuple[set[int], set[int]] | None:
    """Pids that took a granted exclusive ``flock`` on ``st``'s inode, from ``/proc/locks``:
    those on the same device, and those on an inode of that number on any device (btrfs and
    overlayfs number devices differently there than ``stat`` does). None when unreadable.

    A line reads ``1: FLOCK  ADVISORY  WRITE 7836 fe:00:2146625 0 EOF``; a waiter's has ``->``
    after the id and is skipped."""
    try:
        raw = read_bytes("/proc/locks")
    except CoordError:
        return None
    if raw is None:
        return None
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    exact: set[int] = set()
    same_ino: set[int] = set()
    for line in raw.decode("ascii", "replace").splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[3] != "WRITE":
            continue
        dev, _, ino = fields[5].rpartition(":")
        if ino != str(st.st_ino):
            continue
        try:
            pid = int(fields[4])
        except ValueError:
            continue
        same_ino.add(pid)
        if dev == device:
            exact.add(pid)
    return exact, same_ino


def _fd_holds_flock(pid: int, st: os.stat_result) -> bool | None:
    """Whether ``pid`` has a descriptor open on ``st``'s file whose open file description holds
    an exclusive ``flock`` (``/proc/PID/fdinfo/N`` lists the locks held through fd N); None
    when its descriptors cannot be read (another user's process)."""
    base = f"/proc/{pid}"
    try:
        fds = os.listdir(f"{base}/fd")
    except PermissionError:
        return None
    except OSError:
        return False
    for fd in fds:
        try:
            if not os.path.samestat(os.stat(f"{base}/fd/{fd}"), st):
                continue
            info = read_text(f"{base}/fdinfo/{fd}", limit=PID_MAX_BYTES * 16) or ""
        except (OSError, CoordError):
            continue
        for line in info.splitlines():
            fields = line.split()  # lock: 1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF
            if fields[:1] == ["lock:"] and fields[2:3] == ["FLOCK"] and fields[4:5] == ["WRITE"]:
                return True
    return False


def lock_holder(lockfile: str) -> int | None:
    """The pid that took the exclusive ``flock`` on ``lockfile`` (from ``/proc/locks``), or
    None when nobody holds it or it cannot be told (for messages only: :func:`holds_lock` is the
    proof)."""
    st = _lock_stat(lockfile)
    holders = _flock_holders(st) if st is not None else None
    if holders is None:
        return None
    pids = holders[0] or holders[1]
    return min(pids) if len(pids) == 1 else None


def holds_lock(pid: int, lockfile: str) -> bool:
    """Whether process ``pid`` provably holds the timer's lock ``lockfile`` now (SPEC 16).

    On Linux both must hold: ``/proc/locks`` lists a granted exclusive ``flock`` on the lock
    file's device and inode *taken by* ``pid`` (a process that merely inherited the descriptor
    across ``fork`` is not named there), and ``/proc/PID/fdinfo`` shows ``pid`` holding it
    through one of its own descriptors (a pid reused after the taker died has no such
    descriptor). When the descriptors of another user's process cannot be read, the first
    alone decides; where the devices are numbered differently in ``/proc/locks``, the second
    decides with the inode. Without procfs a non-blocking ``flock`` is tried: if it succeeds
    nobody held the lock (False), else the pid is taken on trust. No lock file, a symbolic
    link or a non-regular file there: False."""
    if pid <= 0:
        return False
    st = _lock_stat(lockfile)
    if st is None:
        return False
    if not _procfs():
        return _flock_probe_held(lockfile)
    holders = _flock_holders(st)
    by_fd = _fd_holds_flock(pid, st)
    if by_fd is False:
        return False
    if holders is None:
        return by_fd is True
    exact, same_ino = holders
    return pid in exact or (by_fd is True and pid in same_ino and not exact)


def _flock_probe_held(lockfile: str) -> bool:
    """No procfs: whether someone holds ``lockfile`` (a shared ``flock`` that conflicts only
    with the daemon's exclusive one, released at once)."""
    import fcntl

    try:
        fd = open_regular(lockfile, os.O_RDONLY)
    except (OSError, CorruptData):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # drops the shared lock, if taken
    return False


#: The daemon's module (``python -m agentcoord.timer.daemon``) and its options that take a value.
DAEMON_MODULE = "agentcoord.timer.daemon"
_DAEMON_VALUE_OPTIONS = frozenset(
    {
        "--dir",
        "--timer-dir",
        "--name",
        "--interval",
        "--max-checks",
        "--max-interval",
        "--on-checkpoint",
        "--on-checkpoint-timeout",
        "--stop-with",
        "--stop-with-start",
        "--token",
    }
)


def _timer_of(lockfile: str) -> tuple[str, str] | None:
    """``(directory, name)`` of the timer whose lock is ``lockfile``, from its file name."""
    base = os.path.basename(lockfile)
    if not (base.startswith(TIMER) and base.endswith(".lock")):
        return None
    rest = base[len(TIMER) : -len(".lock")]
    if rest == "":
        return os.path.dirname(os.path.abspath(lockfile)), DEFAULT_NAME
    if rest.startswith("-") and _NAME.fullmatch(rest[1:]):
        return os.path.dirname(os.path.abspath(lockfile)), rest[1:]
    return None


def _daemon_options(args: list[str]) -> dict[str, str] | None:
    """The options of a ``python -m agentcoord.timer.daemon`` command line (the last of each
    wins, as in argparse), or None when it is not one."""
    try:
        start = args.index(DAEMON_MODULE) + 1
    except ValueError:
        return None
    if args[start - 2 : start - 1] != ["-m"]:
        return None
    options: dict[str, str] = {}
    i = start
    while i < len(args):
        arg = args[i]
        key, eq, value = arg.partition("=")
        if eq and key in _DAEMON_VALUE_OPTIONS:
            options[key] = value
        elif arg in _DAEMON_VALUE_OPTIONS and i + 1 < len(args):
            options[arg] = args[i + 1]
            i += 1
        i += 1
    return options


def names_this_timer(cmdline: bytes, lockfile: str) -> bool:
    """Whether the command line ``cmdline`` (``/proc/PID/cmdline``) is the daemon of the timer
    whose lock is ``lockfile``: ``--name NAME`` and ``--timer-dir DIR`` as ``coord timer start``
    passes them (a daemon started by hand without them: the default name, and the timer
    directory of its ``--dir``). A pid file copied from another timer names a process whose
    command line names that other timer (SPEC section 16)."""
    timer = _timer_of(lockfile)
    if timer is None:
        return False
    directory, name = timer
    args = [a.decode("utf-8", "surrogateescape") for a in cmdline.split(b"\0")]
    options = _daemon_options(args)
    if options is None or options.get("--name", DEFAULT_NAME) != name:
        return False
    given = options.get("--timer-dir")
    if given is None:
        root = options.get("--dir")
        if root is None or not os.path.isabs(root):
            return False
        from ..workspace import Workspace

        given = Workspace(root).timer_dir
    if not os.path.isabs(given):
        return False  # relative to a working directory we cannot know
    if os.path.normpath(given) == directory:
        return True
    try:
        return os.path.samefile(given, directory)
    except OSError:
        return False


def runs_this_timer(info: PidInfo | None, lockfile: str | None = None) -> bool:
    """Whether ``info`` names a live daemon of the timer whose lock is ``lockfile`` (default:
    ``info.lockfile``) by every sign short of the lock: alive, started at the recorded time (a
    reused pid starts later), the run's token a word of its command line, and that command
    line naming this timer (:func:`names_this_timer`). Not a proof (the lock is, see
    :func:`is_our_timer`); it tells a daemon whose lock file was replaced under it from a stale
    pid file. False without procfs (nothing of this can be read there)."""
    lockfile = lockfile or (info.lockfile if info is not None else None)
    if info is None or lockfile is None or info.pid <= 0 or not _procfs():
        return False
    if not pid_alive(info.pid):
        return False
    if info.start_time is None or proc_start_time(info.pid) != info.start_time:
        return False
    try:
        cmdline = read_bytes(f"/proc/{info.pid}/cmdline", limit=1 << 20) or b""
    except CoordError:
        return False
    if not info.token or info.token.encode() not in cmdline.split(b"\0"):
        return False
    return names_this_timer(cmdline, lockfile)


def is_our_timer(info: PidInfo | None, lockfile: str | None = None) -> bool:
    """True only if ``info`` names the running timer: alive, started at the recorded time, the
    run's token in its command line, that command line naming *this* timer (``--name``,
    ``--timer-dir``: :func:`runs_this_timer`), and, the proof, holding the timer's lock
    ``lockfile`` (default: ``info.lockfile``, the pid file's own; with neither, nothing is
    proven: False) (:func:`holds_lock`). The first ones are cheap filters; a planted pid file
    can satisfy the first three for an unrelated process (its real pid, start time and a word
    of its command line), and a pid file copied from another timer whose lock was renamed into
    this one's name can satisfy the lock, never both. Without procfs: liveness and the lock."""
    lockfile = lockfile or (info.lockfile if info is not None else None)
    if info is None or lockfile is None or info.pid <= 0 or not pid_alive(info.pid):
        return False
    if _procfs() and not runs_this_timer(info, lockfile):
        return False
    return holds_lock(info.pid, lockfile)


def why_not_ours(info: PidInfo | None, lockfile: str) -> str | None:
    """None when ``info`` names the running timer (:func:`is_our_timer`), else why not, for
    the ``note`` of ``timer stop``."""
    if info is None:
        return "no pid file"
    if info.problem is not None:
        return f"the pid file {info.problem}"
    if is_our_timer(info, lockfile):
        return None
    if not pid_alive(info.pid):
        return f"process {info.pid} is gone"
    holder = lock_holder(lockfile)
    held = f"held by pid {holder}" if holder is not None else "held by no process"
    if _procfs() and not runs_this_timer(info, lockfile):
        timer = _timer_of(lockfile)
        name = timer[1] if timer is not None else "?"
        return (
            f"process {info.pid} is not timer {name}'s daemon (its start time, token or "
            f"command line --name/--timer-dir do not match; the timer's lock is {held})"
        )
    return f"process {info.pid} does not hold the timer's lock ({held})"


# -- log -----------------------------------------------------------------------------------------
def append_log(path: str, line: str, *, max_bytes: int = LOG_MAX_BYTES) -> None:
    """Append one line; past ``max_bytes`` keep the newest half (the log stays bounded).

    Never through a symbolic or hard link, never into a FIFO or device (:func:`open_regular`):
    such a log is not written at all. The tail kept on rotation is read from the descriptor
    just verified, not by opening the path again. SPEC section 16."""
    data = (line.rstrip("\n").replace("\n", " | ") + "\n").encode("utf-8", "replace")
    try:
        fd = open_regular(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    except (OSError, CoordError):
        return  # the log is a convenience: never let it stop a tick
    tail = b""
    try:
        os.write(fd, data)
        size = os.fstat(fd).st_size
        if size > max_bytes:
            keep = max_bytes // 2
            tail = os.pread(fd, keep, size - keep)
    except OSError:
        return
    finally:
        os.close(fd)
    if tail:
        cut = tail.find(b"\n") + 1
        try:
            atomic_write(path, tail[cut:], durable=False)
        except BackendUnavailable:
            pass


def probe_writable(directory: str) -> None:
    """Raise :class:`BackendUnavailable` naming ``directory`` unless files can be created in it
    (a file of a random name, created exclusively and never through a link)."""
    probe = os.path.join(directory, f".coordination-probe-{os.urandom(8).hex()}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o644)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BackendUnavailable(
            f"cannot write timer files in {directory}: {exc.strerror or exc}",
            path=directory,
        ) from exc
