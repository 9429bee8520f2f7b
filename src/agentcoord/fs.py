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

Modes (SPEC section 16)

Nothing is ever world-writable. A one-user workspace gets files 0644 and directories 0755 (less
if the umask says so). A workspace shared by a Unix group (``coord init --shared-group G``) has
setgid, group-writable directories: a file written into such a directory is 0664 and a directory
made in one is 02775, whatever the writer's umask (fchmod after creating), so every member of the
group can go on writing. The policy is read from the directory a file goes into (one ``stat`` per
directory per process, cached: :func:`modes`), so no caller has to pass it on. A file holding a
credential is written with an explicit ``mode`` (0600; 0640 in a shared workspace).

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
#: A workspace shared by a Unix group: group-writable, setgid directories, never o+w.
SHARED_FILE_MODE = 0o664
SHARED_DIR_MODE = 0o2775
#: A file holding a credential: the owner only (the group too, read-only, when shared).
PRIVATE_MODE = 0o600
SHARED_PRIVATE_MODE = 0o640
#: A lock file: ``flock(2)`` needs only a read-only descriptor, so a lock anyone can read is a
#: lock anyone can hold (and so block every writer). The owner only; the group when shared.
LOCK_MODE = 0o600
SHARED_LOCK_MODE = 0o660
_SHARED_BITS = stat.S_ISGID | stat.S_IWGRP
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


_MODES: dict[str, tuple[int, int]] = {}
_UMASK: list[int] = []


def modes(directory: str) -> tuple[int, int]:
    """(file mode, directory mode) for entries made in ``directory``: the shared modes
    (:data:`SHARED_FILE_MODE`, :data:`SHARED_DIR_MODE`) when it is setgid and group-writable,
    else :data:`FILE_MODE` and :data:`DIR_MODE`. Cached per directory for the life of the
    process (:func:`forget_modes` after converting a workspace); a directory that cannot be
    stat'ed gets the one-user modes, uncached."""
    found = _MODES.get(directory)
    if found is None:
        try:
            st = os.stat(directory or ".")
        except OSError:
            return FILE_MODE, DIR_MODE
        shared = st.st_mode & _SHARED_BITS == _SHARED_BITS
        found = (SHARED_FILE_MODE, SHARED_DIR_MODE) if shared else (FILE_MODE, DIR_MODE)
        _MODES[directory] = found
    return found


def is_shared(directory: str) -> bool:
    """Whether ``directory`` is part of a workspace shared by a Unix group (:func:`modes`)."""
    return modes(directory)[1] == SHARED_DIR_MODE


def private_mode(directory: str) -> int:
    """The mode of a file holding a credential in ``directory``: 0600, or 0640 when the
    directory is shared (the group needs the credential; the world never gets it)."""
    return SHARED_PRIVATE_MODE if is_shared(directory) else PRIVATE_MODE


def lock_mode(directory: str) -> int:
    """The mode of a lock file in ``directory``: 0600, or 0660 when the directory is shared
    (every member takes the locks; nobody else may hold one)."""
    return SHARED_LOCK_MODE if is_shared(directory) else LOCK_MODE


def tighten(fd: int, st: os.stat_result, mode: int) -> None:
    """Take from the file at ``fd`` the permission bits ``mode`` does not have, when this user
    owns it (a lock file left 0644 by an older version); someone else's file is left alone."""
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & ~mode & 0o7777:
        try:
            os.fchmod(fd, stat.S_IMODE(st.st_mode) & mode)
        except OSError:
            pass  # a read-only file system: the lock still works


def forget_modes() -> None:
    """Drop the cached modes (after a directory's mode changed in this process)."""
    _MODES.clear()


def umask() -> int:
    """The process's umask (read once: ``os.umask`` can only be read by setting it)."""
    if not _UMASK:
        value = os.umask(0o022)
        os.umask(value)
        _UMASK.append(value)
    return _UMASK[0]


def fix_mode(fd: int, mode: int) -> None:
    """Give the file just created at ``fd`` exactly ``mode`` when the umask took bits from it.
    The one-user :data:`FILE_MODE` is left to the umask (stricter is fine): no extra syscall
    on the common path."""
    if mode != FILE_MODE and mode & ~umask() != mode:
        os.fchmod(fd, mode)


def atomic_write(
    path: str, data: str | bytes, *, durable: bool = True, mode: int | None = None
) -> None:
    """Replace ``path`` with ``data`` atomically; raise :class:`BackendUnavailable` on I/O errors
    (disk full, read-only file system, permissions) with the previous file left intact.

    The file gets ``mode`` when given (a credential: :func:`private_mode`), else the mode its
    directory's policy gives (:func:`modes`). The temp file is created with that mode, so the
    data is never readable more widely, not even for a moment (SPEC section 16)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = tmp_name(path)
    want = modes(os.path.dirname(path))[0] if mode is None else mode
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, want)
        try:
            fix_mode(fd, want)
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


def open_regular(
    path: str,
    flags: int = os.O_RDONLY,
    *,
    what: str = "",
    one_link: bool = False,
    mode: int | None = None,
) -> int:
    """The fd of :func:`open_stat` (which see)."""
    return open_stat(path, flags, what=what, one_link=one_link, mode=mode)[0]


def open_stat(
    path: str,
    flags: int = os.O_RDONLY,
    *,
    what: str = "",
    one_link: bool = False,
    mode: int | None = None,
) -> tuple[int, os.stat_result]:
    """``open(2)`` that a planted link or special file cannot redirect or block (SPEC section
    16): ``O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC`` are added to ``flags`` and the result is
    accepted only when it is a regular file (with ``one_link``, one with a single link: a hard
    link to a victim file would otherwise be written through). With ``O_CREAT`` a new file gets
    its directory's mode (:func:`modes`, kept whatever the umask), or ``mode`` when given (a
    lock: :func:`lock_mode`); with ``mode``, an existing file of this user that grants more
    is tightened to it (:func:`tighten`). Returns the fd (the caller closes it) and its
    ``fstat``.

    Raises :class:`CorruptData` (``path:1``, the message starting with ``what``) for a symbolic
    link, a FIFO, a device, a directory or, with ``one_link``, a file with several links; and
    ``OSError`` for anything else (``FileNotFoundError`` without ``O_CREAT``)."""
    flags |= _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC
    wanted = mode
    if mode is None:
        mode = modes(os.path.dirname(path))[0] if flags & os.O_CREAT else FILE_MODE
    label = f"{what} " if what else ""
    try:
        fd = -1
        if flags & os.O_CREAT and mode not in (FILE_MODE, LOCK_MODE):  # g+w despite the umask
            try:
                fd = os.open(path, flags | os.O_EXCL, mode)
            except FileExistsError:
                pass
            else:
                fix_mode(fd, mode)
        if fd < 0:
            fd = os.open(path, flags, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CorruptData(path, 1, f"{label}is a symbolic link; it is never followed") from None
        if exc.errno == errno.EISDIR:
            raise CorruptData(path, 1, f"{label}is a directory, not a file") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CorruptData(path, 1, f"{label}is not a regular file ({file_kind(st.st_mode)})")
        if one_link and st.st_nlink != 1:
            raise CorruptData(path, 1, f"{label}has {st.st_nlink} hard links; it must have one")
        if wanted is not None:
            tighten(fd, st, wanted)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_bytes(path: str, *, limit: int = MAX_READ) -> bytes | None:
    """The bytes of the regular file at ``path``, or None when there is none (SPEC sections 9
    and 16). Opened by :func:`open_stat`: a symlink, a FIFO, a device or a directory is
    :class:`CorruptData` (``path:1``), never followed and never waited on; so is a file
    larger than ``limit`` bytes. :class:`BackendUnavailable` when it cannot be read."""
    got = read_with_mode(path, limit=limit)
    return None if got is None else got[0]


def read_with_mode(path: str, *, limit: int = MAX_READ, what: str = "") -> tuple[bytes, int] | None:
    """:func:`read_bytes` and the file's permission bits (a rewrite keeps them), or None when
    there is no file (``what`` starts the message of a :class:`CorruptData`)."""
    try:
        fd, st = open_stat(path, what=what)
    except FileNotFoundError:
        return None
    except NotADirectoryError:  # a FIFO or a file planted where ``.state/`` belongs
        parent = os.path.dirname(path)
        raise CorruptData(parent, 1, "is not a directory (a file is in its place)") from None
    except OSError as exc:
        raise BackendUnavailable(f"cannot read {path}: {exc.strerror}", path=path) from exc
    try:
        size = st.st_size
        if size > limit:
            raise CorruptData(path, 1, f"is {size:,} bytes; the limit is {limit:,}")
        chunks = []
        total = 0
        while True:
            chunk = os.read(fd, max(65536, size + 1))
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise CorruptData(path, 1, f"is over {limit:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks), stat.S_IMODE(st.st_mode)
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


def file_kind(mode: int) -> str:
    """What a non-regular file is, for messages: ``a FIFO``, ``a directory`` ..."""
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


def refuse_planted_link(path: str) -> None:
    """:class:`CorruptData` (exit 6) when ``path`` is a symbolic link in a directory that
    others can write (group- or world-writable, as sshd's ``StrictModes``): someone else could
    have planted it, or can swap it, to send every write elsewhere (SPEC section 16). A link in
    a directory only its owner can write (a user's own ``ln -s``) is followed as usual; so is
    one in a sticky directory (``/tmp``) that this user or root owns, since nobody else can
    replace it there."""
    try:
        st = os.lstat(path)
    except OSError:
        return
    if not stat.S_ISLNK(st.st_mode):
        return
    try:
        parent = os.stat(os.path.dirname(path) or ".")
    except OSError:
        return
    if not parent.st_mode & 0o022:
        return
    if parent.st_mode & stat.S_ISVTX and st.st_uid in (0, os.geteuid()):
        return
    raise CorruptData(
        path, 1, "is a symbolic link in a directory others can write; it is never followed"
    )


def missing_dirs(root: str, rel: str) -> list[str]:
    """The directories on the way from ``root`` to the file ``rel`` (``/``-separated, relative)
    that do not exist yet, outermost first. A symbolic link among them is :class:`CorruptData`
    (a write is never sent through one; :func:`refuse_planted_link`'s message when someone else
    could have planted it); so is a file where a directory belongs."""
    out: list[str] = []
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        path = os.path.join(root, sub)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            out.append(sub)
            continue
        if stat.S_ISLNK(st.st_mode):
            refuse_planted_link(path)
            raise CorruptData(path, 1, "is a symbolic link; a write is never sent through one")
        if not stat.S_ISDIR(st.st_mode):
            raise CorruptData(path, 1, f"is {file_kind(st.st_mode)}, not a directory")
    return out


def remove_file(path: str) -> None:
    """Unlink ``path`` (gone already is fine); :class:`BackendUnavailable` when it cannot be."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise BackendUnavailable(f"cannot remove {path}: {exc.strerror}", path=path) from exc


def remove_empty_dir(path: str) -> bool:
    """Remove the directory ``path`` if it is empty (never a link); whether it was removed."""
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            return False
        os.rmdir(path)
    except OSError:
        return False
    return True


def ensure_dir(path: str) -> None:
    """Create ``path`` and any missing parents, each with the directory mode of its parent
    (:func:`modes`: :data:`DIR_MODE`, or :data:`SHARED_DIR_MODE` inside a shared workspace;
    ``os.makedirs`` applies the mode to the last component only, and the umask to all).

    A symbolic link at ``path`` is :class:`CorruptData` (exit 6): a workspace directory such as
    ``archive/`` or ``.locks/`` planted as a link elsewhere would send writes out of the
    workspace (SPEC section 16); so is a FIFO, a socket or a device there. A regular file in
    the way, or a directory that cannot be made, is :class:`BackendUnavailable`."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise BackendUnavailable(f"cannot create {path}: {exc.strerror}", path=path) from exc
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            return
        if stat.S_ISLNK(st.st_mode):
            raise CorruptData(
                path, 1, "is a symbolic link; a workspace directory is never followed elsewhere"
            )
        if not stat.S_ISREG(st.st_mode):  # a FIFO or a socket where a directory belongs
            raise CorruptData(path, 1, f"is {file_kind(st.st_mode)}, not a directory")
    missing = []
    head = os.path.abspath(path)
    while head and not os.path.isdir(head):
        missing.append(head)
        parent = os.path.dirname(head)
        if parent == head:
            break
        head = parent
    for directory in reversed(missing):
        mode = modes(os.path.dirname(directory))[1]
        try:
            os.mkdir(directory, mode & 0o777)
            if mode != DIR_MODE:  # setgid and g+w, whatever the umask
                fd = os.open(directory, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC)
                try:
                    os.fchmod(fd, mode)
                finally:
                    os.close(fd)
        except FileExistsError:
            if not os.path.isdir(directory) or os.path.islink(directory):
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
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):  # a FIFO or a device planted as a lock
                    os.close(fd)
                    raise CorruptData(
                        self.path, 1, f"is not a regular file ({file_kind(st.st_mode)})"
                    )
                same = os.path.samestat(st, os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                tighten(fd, st, lock_mode(os.path.dirname(self.path)))  # an older 0644 lock
                self._fd = fd
                return True
            os.close(fd)

    def _open(self) -> int:
        """The lock file, opened without following a link or waiting on a FIFO; anything but a
        regular file there is :class:`CorruptData` naming it (SPEC section 16). A new lock is
        0600 (0660 shared: :func:`lock_mode`): ``flock`` needs only read access, so a lock
        others could read is one they could hold."""
        mode = lock_mode(os.path.dirname(self.path))
        flags = os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC
        try:
            if mode != LOCK_MODE:  # shared: a lock this process makes gets g+w despite the umask
                try:
                    fd = os.open(self.path, flags | os.O_EXCL, mode)
                except FileExistsError:
                    pass
                else:
                    fix_mode(fd, mode)
                    return fd
            fd = os.open(self.path, flags, mode)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise CorruptData(
                    self.path, 1, "is a symbolic link; a lock is never taken through one"
                ) from None
            if exc.errno == errno.EISDIR:
                raise CorruptData(self.path, 1, "is a directory, not a lock file") from None
            raise BackendUnavailable(f"cannot open lock {self.path}: {exc.strerror}") from exc
        return fd

    def release(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def git_top(directory: str) -> str | None:
    """The nearest directory at or above ``directory`` holding a ``.git`` (a directory, or a
    linked worktree's or submodule's ``.git`` file): the top of its worktree, found without
    starting git (a hook's and the monitor's cheap test). None outside any repository."""
    here = os.path.abspath(directory)
    while True:
        if os.path.lexists(os.path.join(here, ".git")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


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
