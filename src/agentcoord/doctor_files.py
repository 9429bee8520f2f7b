"""The markdown half of ``coord doctor``: what only a directory of files can get wrong.

Symlinks (writes replace them, but reads and directories follow them), world-writable files,
temp files of writers that died, locks that stay held, unreadable cursor and counter files, and
the archived task records that dependency checks need. See :mod:`agentcoord.doctor`.
"""

from __future__ import annotations

import os
import stat
import time

from .doctor import Violation
from .errors import CorruptData
from .procs import pid_alive

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .store.markdown import MarkdownStore

#: A temp file this old is an orphan even if its pid is alive (a reused pid, or a hung writer).
ORPHAN_AGE = 60.0
#: How long a lock may stay held (by a live process mid-write) before it is reported.
LOCK_WAIT = 0.5
_DIRS = (".locks", ".state", "archive")
_NOFOLLOW = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def listdir(directory: str) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []


def archived_tasks(md: MarkdownStore, errors: list[CorruptData]) -> dict[str, str]:
    """Archived task id -> status, from ``archive/task-*.md``."""
    from .codec.task import parse_task
    from .store.fsutil import read_text

    found: dict[str, str] = {}
    archive = md.path("archive")
    for name in listdir(archive):
        if name.startswith("task-") and name.endswith(".md"):
            path = os.path.join(archive, name)
            try:
                text = read_text(path)
                if text is not None:
                    task = parse_task(text, path)
                    found[task.id] = task.status
            except CorruptData as exc:
                errors.append(exc)
    return found


def cursors(md: MarkdownStore, out: list[Violation]) -> dict[str, dict[str, int]]:
    """channel -> consumer -> seq from ``.state/cursors-*.json``; unreadable files go to ``out``."""
    import json

    result: dict[str, dict[str, int]] = {}
    state = md.path(".state")
    for name in listdir(state):
        if not (name.startswith("cursors-") and name.endswith(".json")):
            continue
        path = os.path.join(state, name)
        try:
            with open(path, "rb") as fh:
                data = json.loads(fh.read() or b"{}")
        except (OSError, ValueError, RecursionError) as exc:
            out.append(Violation("corrupt", name, f"{path}:1: unreadable: {exc}", file=path))
            continue
        if not isinstance(data, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in data.values()
        ):
            out.append(Violation("corrupt", name, f"{path}:1: not a map of seqs", file=path))
            continue
        result[name[len("cursors-") : -len(".json")]] = data
    return result


def orphan_temp_files(md: MarkdownStore, now: float | None = None) -> list[str]:
    """Temp files of atomic writes (``.name.tmp-PID-HEX``) whose writer is gone from this
    machine, or older than :data:`ORPHAN_AGE` (a write never takes that long)."""
    import re

    pattern = re.compile(r"\..+\.tmp-(\d+)-[0-9a-f]+")
    now = time.time() if now is None else now
    found = []
    for directory in (md.root, md.path(".state"), md.path("archive")):
        for name in listdir(directory):
            m = pattern.fullmatch(name)
            if m is None:
                continue
            path = os.path.join(directory, name)
            try:
                age = now - os.lstat(path).st_mtime
            except FileNotFoundError:
                continue  # the writer finished meanwhile
            if age > ORPHAN_AGE or not pid_alive(int(m.group(1))):
                found.append(path)
    return found


def _walk(md: MarkdownStore) -> list[tuple[str, os.stat_result]]:
    """The workspace directory, its entries and the entries of its own directories."""
    out: list[tuple[str, os.stat_result]] = []
    try:
        out.append((md.root, os.lstat(md.root)))
    except FileNotFoundError:
        return out
    for directory in (md.root, *(md.path(d) for d in _DIRS)):
        if directory != md.root and os.path.islink(directory):
            continue  # reported as a symlink; what it points to is not ours
        for name in listdir(directory):
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


def check_files(md: MarkdownStore) -> list[Violation]:
    """Symlinks, world-writable entries, orphaned temp files, held locks, unreadable counters.
    (An unreadable task index is not reported: it is a cache that the next listing rebuilds.)"""
    out: list[Violation] = []
    orphans = set(orphan_temp_files(md))
    holders: dict[int, int] | None = None
    for path, st in _walk(md):
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
        if parent == ".locks" and stat.S_ISREG(st.st_mode) and not _lock_free(path):
            holders = _lock_holders() if holders is None else holders
            who = f"process {holders[st.st_ino]}" if st.st_ino in holders else "a live process"
            bad("lock_held", f"{path} stays locked by {who} (over {LOCK_WAIT:g}s)")
        elif parent == ".state" and name.startswith("counter-"):
            try:
                with open(path, "rb") as fh:
                    int(fh.read().strip() or b"0")
            except (OSError, ValueError):
                bad("corrupt", f"{path}:1: counter is not a number")
    return out


def remove_orphans(md: MarkdownStore) -> list[str]:
    actions = []
    for path in orphan_temp_files(md):
        try:
            os.unlink(path)
            actions.append(f"removed orphaned temp file {path}")
        except FileNotFoundError:
            pass
    return actions


def drop_index(md: MarkdownStore) -> list[str]:
    if not md.drop_index():
        return []
    return ["removed the task index cache (rebuilt by the next listing)"]


def chmod_safe(path: str) -> list[str]:
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
