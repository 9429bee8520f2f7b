"""The file system and processes: durable atomic writes, ``flock(2)`` locks, facts about pids.

Used by the markdown store, the workspace's config, the timer's files and the demo; nothing here
knows what a task is.

Writes (SPEC section 3)

Writes go to a hidden temp file in the same directory, are fsynced, renamed over the target with
``os.replace`` and the directory is fsynced: a reader sees the old file or the new one, never half
of one, and a crash at any point leaves at most an orphaned ``.*.tmp-*`` file for ``cleanup``.

Locks are ``flock(2)`` on files in ``.locks/`` that writers never replace, so the shell's
``flock(1)`` interoperates and a crashed holder leaves no lock (the kernel drops it with the fd).
A lock file may be unlinked by maintenance; :meth:`FileLock.acquire` re-checks after locking that
the path still names the inode it locked, so a deleted lock can never be "held" by two processes.

Pids: :func:`pid_alive` and :func:`proc_start_time` are used wherever a pid is trusted: the
timer's stop (never signal a reused pid), orphaned temp files (remove only a dead writer's), the
demo's own agent processes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from .errors import BackendUnavailable, CorruptData, LockTimeout

TMP_MARK = ".tmp-"
FILE_MODE = 0o644
DIR_MODE = 0o755
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
#: The largest file any read accepts (records are small; archives are segmented).
MAX_READ = 64 * 1024 * 1024


def tmp_name(path: str) -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}{TMP_MARK}{os.getpid()}-{os.urandom(4).hex()}")


def fsync_dir(directory: str) -> None:
    fd = os.open(directory or ".", os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: str | bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically; raise :class:`BackendUnavailable` on I/O errors
    (disk full, read-only file system, permissions) with the previous file left intact."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = tmp_name(path)
    try:
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, FILE_MODE
        )
        try:
            view = memoryview(raw)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        # rename(2) replaces a symlink at ``path`` rather than writing through it.
        os.replace(tmp, path)
        if durable:
            fsync_dir(os.path.dirname(path))
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise BackendUnavailable(
            f"cannot write {path}: {exc.strerror or exc}", path=path, errno=exc.errno
        ) from exc


def read_bytes(path: str, *, limit: int = MAX_READ) -> bytes | None:
    """The bytes of the regular file at ``path``, or None when there is none (SPEC sections 9
    and 16). Opened with ``O_NOFOLLOW | O_NONBLOCK``: a symlink, a FIFO, a device or a directory
    is :class:`CorruptData` (``path:1``), never followed and never waited on; so is a file
    larger than ``limit`` bytes. :class:`BackendUnavailable` when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CorruptData(
                path, 1, "is a symbolic link; records are never read through one"
            ) from None
        if exc.errno == errno.EISDIR:
            raise CorruptData(path, 1, "is a directory, not a file") from None
        raise BackendUnavailable(f"cannot read {path}: {exc.strerror}", path=path) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CorruptData(path, 1, f"is not a regular file ({_kind(st.st_mode)})")
        if st.st_size > limit:
            raise CorruptData(path, 1, f"is {st.st_size:,} bytes; the limit is {limit:,}")
        chunks = []
        size = 0
        while True:
            chunk = os.read(fd, max(65536, st.st_size + 1))
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise CorruptData(path, 1, f"is over {limit:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise BackendUnavailable(f"cannot read {path}: {exc.strerror}", path=path) from exc
    finally:
        os.close(fd)


def decode(raw: bytes, path: str) -> str:
    """``raw`` as UTF-8 text without a leading byte order mark (editors such as Notepad write
    one). Invalid UTF-8 is :class:`CorruptData` naming the line of the first bad byte: never
    silently rewritten as U+FFFD."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise CorruptData(path, line, f"invalid UTF-8 (byte {exc.start})") from None
    return text[1:] if text.startswith("\ufeff") else text


def read_text(path: str, *, limit: int = MAX_READ) -> str | None:
    """The text of the regular file at ``path`` (:func:`read_bytes`, then :func:`decode`), or
    None when there is none."""
    raw = read_bytes(path, limit=limit)
    return None if raw is None else decode(raw, path)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def ensure_dir(path: str) -> None:
    """Create ``path`` and any missing parents, each with :data:`DIR_MODE` (``os.makedirs``
    applies the mode to the last component only, leaving parents at 0o777 minus the umask)."""
    if os.path.isdir(path):
        return
    missing = []
    head = os.path.abspath(path)
    while head and not os.path.isdir(head):
        missing.append(head)
        parent = os.path.dirname(head)
        if parent == head:
            break
        head = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise BackendUnavailable(
                    f"cannot create {directory}: a file is in the way", path=directory
                ) from None
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot create {directory}: {exc.strerror}", path=directory
            ) from exc


class FileLock:
    """An exclusive ``flock(2)`` on ``path`` (created if needed), with a timeout.

    Contention is resolved by polling with a short randomised back-off: a blocking ``flock`` cannot
    time out without signals, which a library must not use.
    """

    __slots__ = ("_fd", "path", "timeout")

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self._fd = -1

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take the lock; with ``blocking=False`` return False at once if someone holds it."""
        deadline = time.monotonic() + self.timeout
        delay = 0.0002
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if not blocking:
                    return False
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"timed out after {self.timeout:g}s waiting for lock {self.path}",
                        path=self.path,
                    ) from None
                time.sleep(delay * (0.5 + os.urandom(1)[0] / 255))  # jitter; no `random` import
                delay = min(delay * 2, 0.01)
                continue
            except OSError as exc:
                os.close(fd)
                raise BackendUnavailable(f"cannot lock {self.path}: {exc.strerror}") from exc
            # The file may have been unlinked (and perhaps recreated) between open and flock.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC, FILE_MODE)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise BackendUnavailable(f"refusing to follow symlink at lock {self.path}") from exc
            raise BackendUnavailable(f"cannot open lock {self.path}: {exc.strerror}") from exc

    def release(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- processes ------------------------------------------------------------------------------
def proc_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` fields from field 3 (state) on; None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def proc_start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/PID/stat``: when the process started, in clock ticks since boot."""
    fields = proc_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    return int(fields[19])


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` names a live process (a zombie has already exited)."""
    if pid <= 0:
        return False
    fields = proc_fields(pid)
    if fields is not None:
        return fields[0] not in ("Z", "X")
    if os.path.isdir("/proc/self"):
        return False
    try:  # no procfs (not Linux): the best we can do is "a process with this pid exists"
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
