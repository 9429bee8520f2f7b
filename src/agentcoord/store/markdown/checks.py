"""What only a directory of files can get wrong (``coord doctor``'s storage half, reached through
:meth:`MarkdownStore.check_storage <agentcoord.store.markdown.store.MarkdownStore.check_storage>`).

- ``symlink``: reads and directories follow a symlink (writes replace it);
- ``permissions``: a world-writable entry (repairable: ``chmod o-w``, never through a symlink);
- ``temp_file``: a temp file of an atomic write whose writer died (repairable: removed);
- ``lock_held``: a lock file that stays locked (only a live process can hold a ``flock``);
- ``corrupt``: an unreadable counter file.

One rule decides what a temp file of a dead writer is (:func:`orphan_temp_files`), for both
``doctor`` and ``cleanup``.
"""

from __future__ import annotations

import os
import re
import stat
import time

from ...errors import CoordError
from ...fs import TMP_MARK, pid_alive, read_bytes
from ..base import Violation
from .directory import ARCHIVE, LOCKS, STATE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .directory import Directory

#: A temp file this old is an orphan even if a process with its pid is alive (the pid was reused,
#: or the writer hung): no write takes a day.
STALE_TEMP_AGE = 24 * 3600.0
#: How long a lock may stay held (by a live process mid-write) before it is reported.
LOCK_WAIT = 0.5
_DIRS = (LOCKS, STATE, ARCHIVE)
_NOFOLLOW = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_TMP = re.compile(r"\..+" + re.escape(TMP_MARK) + r"(\d+)-[0-9a-f]+")


def orphan_temp_files(d: Directory, *, min_age: float, now: float | None = None) -> list[str]:
    """Temp files (``.name.tmp-PID-HEX``) of atomic writes whose writer is gone: its pid is not
    alive on this machine and the file is at least ``min_age`` seconds old, or the file is older
    than :data:`STALE_TEMP_AGE`. A live writer's file is never among them."""
    now = time.time() if now is None else now
    found = []
    for sub in ("", STATE, ARCHIVE):
        directory = d.path(sub) if sub else d.root
        if sub and os.path.islink(directory):
            continue  # never remove anything through a link into another directory
        for name in _listdir(directory):
            m = _TMP.fullmatch(name)
            if m is None:
                continue
            path = os.path.join(directory, name)
            try:
                age = now - os.lstat(path).st_mtime
            except FileNotFoundError:
                continue  # the writer finished meanwhile
            if age >= STALE_TEMP_AGE or (age >= min_age and not pid_alive(int(m.group(1)))):
                found.append(path)
    return sorted(found)


def remove(paths: Sequence[str]) -> list[str]:
    """Unlink ``paths`` (gone already: fine); return those removed."""
    removed = []
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


def check_files(d: Directory) -> list[Violation]:
    """Symlinks, world-writable entries, orphaned temp files, held locks, unreadable counters.
    (An unreadable task index is not reported: it is a cache that the next listing rebuilds.)"""
    out: list[Violation] = []
    orphans = set(orphan_temp_files(d, min_age=0.0))
    holders: dict[int, int] | None = None
    for path, st in _walk(d):
        name = os.path.basename(path)

        def bad(
            kind: str, msg: str, *, repairable: bool = False, name: str = name, path: str = path
        ) -> None:
            out.append(Violation(kind, name, msg, file=path, repairable=repairable))

        if stat.S_ISLNK(st.st_mode):
            bad("symlink", f"{path} is a symlink to {os.readlink(path)}: reads follow it")
            continue
        if st.st_mode & stat.S_IWOTH:
            mode = stat.S_IMODE(st.st_mode)
            bad("permissions", f"{path} is world-writable (mode {mode:o})", repairable=True)
        if path in orphans:
            bad("temp_file", f"{path} is a temp file of a writer that died", repairable=True)
        parent = os.path.basename(os.path.dirname(path))
        if parent == LOCKS and stat.S_ISREG(st.st_mode) and not _lock_free(path):
            holders = _lock_holders() if holders is None else holders
            who = f"process {holders[st.st_ino]}" if st.st_ino in holders else "a live process"
            bad("lock_held", f"{path} stays locked by {who} (over {LOCK_WAIT:g}s)")
        elif parent == STATE and name.startswith("counter-"):
            try:  # never through a link, never waiting on a FIFO (SPEC section 16)
                int((read_bytes(path, limit=4096) or b"0").strip() or b"0")
            except CoordError as exc:
                bad("corrupt", str(exc))
            except ValueError:
                bad("corrupt", f"{path}:1: counter is not a number")
    return out


def repair(found: Sequence[Violation]) -> list[str]:
    """Remove the orphaned temp files and the world write permission that ``found`` names."""
    actions = []
    temps = [v.file for v in found if v.kind == "temp_file" and v.file is not None]
    actions += [f"removed orphaned temp file {p}" for p in remove(temps)]
    for v in found:
        if v.kind == "permissions" and v.file is not None:
            actions += _chmod_safe(v.file)
    return actions


def _listdir(directory: str) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _walk(d: Directory) -> list[tuple[str, os.stat_result]]:
    """The workspace directory, its entries and the entries of its own directories."""
    out: list[tuple[str, os.stat_result]] = []
    try:
        out.append((d.root, os.lstat(d.root)))
    except FileNotFoundError:
        return out
    for directory in (d.root, *(d.path(sub) for sub in _DIRS)):
        if directory != d.root and os.path.islink(directory):
            continue  # reported as a symlink; what it points to is not ours
        for name in _listdir(directory):
            path = os.path.join(directory, name)
            try:
                out.append((path, os.lstat(path)))
            except FileNotFoundError:
                continue
    return out


def _lock_holders() -> dict[int, int]:
    """inode -> pid of every flock on this machine (``/proc/locks``; empty where unavailable)."""
    holders: dict[int, int] = {}
    try:
        with open("/proc/locks") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[4].isdigit():
                    holders[int(parts[5].rsplit(":", 1)[-1])] = int(parts[4])
    except (OSError, ValueError):
        pass
    return holders


def _lock_free(path: str) -> bool:
    """Whether ``flock(LOCK_NB)`` succeeds within :data:`LOCK_WAIT` (released at once)."""
    import fcntl

    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fd = os.open(path, _NOFOLLOW)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
        finally:
            os.close(fd)  # closing drops our flock at once
        time.sleep(0.02)


def _chmod_safe(path: str) -> list[str]:
    """Remove world write permission from ``path``, never through a symlink swapped in."""
    try:
        fd = os.open(path, _NOFOLLOW)
    except OSError:
        return []
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if not mode & stat.S_IWOTH:
            return []
        os.fchmod(fd, mode & ~stat.S_IWOTH)
    finally:
        os.close(fd)
    return [f"removed world write permission from {path}"]
