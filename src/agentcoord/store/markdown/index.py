"""A stat-validated index of task heads for the markdown backend.

Listing 10,000 task files must not mean parsing 10,000 files (SPEC section 8: ``claim`` and
``list --status`` within 150 ms). The files stay the only truth: this index caches each file's
:class:`~agentcoord.core.models.TaskHead` keyed by ``(mtime_ns, size, inode)``; a file whose stat
differs is re-read.

The stat key alone is not enough ("racy git"): file times come from a coarse clock (a few ms on
ext4 with large inodes, one second with 128-byte inodes or on many network file systems, two on
FAT) and a replaced file's inode number is soon reused, so two versions written within one tick
with the same size can share a key. A row is therefore trusted on its stat only when the file's
mtime is older than the moment the row was recorded by more than the file system's own time
granularity (plus a margin); a younger ("racy") one is re-read and its CRC-32 compared with the
recorded one (a cheap read, not a parse) before it is believed. The granularity is learnt from
the mtimes themselves (the largest of 1 ns ... 2 s that divides every one seen), as git judges
racy entries by the file system's own clock. A racy row verified once its mtime is old enough is
re-stamped, so a long-lived process's own writes do not stay racy (re-read) forever.

The cache file is rewritten without fsync (losing it costs one slow scan) when enough rows
changed; concurrent rewrites are harmless because every row is re-validated by its reader.
Long-lived processes keep the rows in memory and note their own writes (under the record lock).
"""

from __future__ import annotations

import json
import os
import time
import zlib

from ...core.models import TaskHead
from ...errors import CoordError, CorruptData
from ...fs import atomic_write, ensure_dir, read_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ...core.models import Task

INDEX_VERSION = 5  # 5: heads carry labels, parent and requires (issue 16)
# A row: [mtime_ns, size, inode, crc32, recorded_ns, *TaskHead.to_list()]
_HEAD = 5
_STATUS = _HEAD + TaskHead.__slots__.index("status")
#: Margin over the file system's time granularity: files modified less than granularity + this
#: before their row was recorded are verified by CRC (one scheduler tick is 1-10 ms).
RACY_NS = 100_000_000
#: Granularities a file system's mtimes may have, coarsest first (FAT: 2 s).
GRANULES = (2_000_000_000, 1_000_000_000, 100_000_000, 10_000_000, 1_000_000, 1_000, 1)
#: Assumed until an mtime proves finer: a coarse file system never passes for a fine one.
COARSEST = GRANULES[0]
#: Re-parsing a few changed files is cheaper than rewriting a large index after every write.
REWRITE_AFTER = 32


class TaskIndex:
    """Heads of the ``task-*.md`` files in ``root``, cached in ``state_dir``."""

    def __init__(self, root: str, state_dir: str) -> None:
        self.root = root
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, "index-task.json")
        #: The rows as of this process's last scan (and its own writes since): a long-lived
        #: process re-reads only files that others changed. None until the first scan.
        self.memory: dict[str, list[Any]] | None = None
        #: The file system's mtime granularity (ns) as the mtimes seen so far show it.
        self.granularity = COARSEST
        self._unsaved = 0  # rows that differ from the file on disk

    def note(self, name: str, task: Task, raw: bytes) -> None:
        """Record this process's own write of ``name`` with content ``raw`` (call it under the
        record's lock, so that the stat is of this very write)."""
        if self.memory is None:
            return
        try:
            key = stat_key(os.stat(os.path.join(self.root, name), follow_symlinks=False))
        except OSError:
            self.memory.pop(name, None)
            return
        self.memory[name] = _row(key, raw, task)
        self._unsaved += 1

    def racy(self, row: list[Any]) -> bool:
        """Whether ``row`` was recorded too soon after its file's mtime for the stat to prove
        the content (within the file system's granularity plus :data:`RACY_NS`)."""
        return bool(row[4] - row[0] < self.granularity + RACY_NS)

    def _load(self) -> dict[str, list[Any]]:
        try:
            raw = read_bytes(self.path)
            data = json.loads(raw) if raw is not None else None
        except (CoordError, ValueError, RecursionError):  # a cache: unreadable means empty
            return {}
        if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def scan(
        self,
        read: Callable[[str], bytes | None],
        parse: Callable[[str, bytes], Task],
        errors: list[CorruptData] | None,
        statuses: frozenset[str] | None = None,
    ) -> tuple[list[tuple[str, TaskHead]], dict[str, Task]]:
        """(file name, head) of every readable task file in one of ``statuses`` (all if None),
        plus the tasks it had to parse, so that nothing is parsed twice.

        ``read(name)`` returns a file's bytes (None if it vanished); ``parse(name, raw)`` turns
        them into a task or raises :class:`CorruptData`."""
        cache = self.memory if self.memory is not None else self._load()
        fresh: dict[str, list[Any]] = {}
        heads: list[tuple[str, TaskHead]] = []
        parsed: dict[str, Task] = {}
        changed = 0
        try:
            entries = os.scandir(self.root)
        except FileNotFoundError:
            return heads, parsed
        with entries:
            for entry in entries:
                name = entry.name
                if not (name.startswith("task-") and name.endswith(".md")):
                    continue
                try:
                    key = stat_key(entry.stat(follow_symlinks=False))
                except FileNotFoundError:
                    continue
                self.granularity = min(self.granularity, granule(key[0]))
                row = cache.get(name)
                raw: bytes | None = None
                try:
                    if row is not None and row[:3] == key and len(row) > _STATUS:
                        if self.racy(row):  # believe the content, not the stat
                            raw = read(name)
                            if raw is None:
                                continue
                            if zlib.crc32(raw) == row[3]:
                                restamped = self._restamp(row)
                                changed += restamped is not row
                                row = restamped
                        if raw is None or zlib.crc32(raw) == row[3]:
                            fresh[name] = row
                            if statuses is not None and row[_STATUS] not in statuses:
                                continue  # most rows: filtered without building an object
                            try:
                                heads.append((name, TaskHead.from_list(row[_HEAD:])))
                                continue
                            except (TypeError, ValueError):
                                del fresh[name]
                    changed += 1
                    if raw is None:
                        raw = read(name)
                        if raw is None:
                            continue
                    task = parse(name, raw)
                except CorruptData as exc:  # unreadable, or not a regular file: reported
                    if errors is not None:
                        errors.append(exc)
                    continue
                fresh[name] = _row(key, raw, task)
                head = TaskHead.of(task)
                if statuses is None or head.status in statuses:
                    heads.append((name, head))
                    parsed[name] = task
        self._unsaved += changed + max(0, len(cache) - len(fresh))
        self.memory = fresh
        if self._unsaved > min(REWRITE_AFTER, len(fresh) // 100) or (
            self._unsaved and len(fresh) < 1000
        ):
            self._save(fresh)
            self._unsaved = 0
        return heads, parsed

    def _save(self, entries: dict[str, list[Any]]) -> None:
        try:
            ensure_dir(self.state_dir)
            payload = json.dumps(
                {"version": INDEX_VERSION, "entries": entries}, separators=(",", ":")
            )
            atomic_write(self.path, payload, durable=False)
        except Exception:  # a cache that cannot be written only costs speed
            pass

    def _restamp(self, row: list[Any]) -> list[Any]:
        """A racy row whose content was just verified: recorded anew if its mtime is now old
        enough that any later change must show in the stat (else the same row)."""
        now = time.time_ns()
        if now - row[0] < self.granularity + RACY_NS:
            return row
        return [*row[:4], now, *row[_HEAD:]]


def stat_key(st: os.stat_result) -> list[int]:
    """What a row is keyed by: ``[mtime_ns, size, inode]``."""
    return [st.st_mtime_ns, st.st_size, st.st_ino]


def granule(mtime_ns: int) -> int:
    """The coarsest of :data:`GRANULES` that ``mtime_ns`` is a multiple of."""
    for size in GRANULES:
        if mtime_ns % size == 0:
            return size
    return 1


def _row(key: list[int], raw: bytes, task: Task) -> list[Any]:
    from .codec.task import written_head  # the head must say what the file says

    head = written_head(task)
    return [*key, zlib.crc32(raw), time.time_ns(), *head.to_list()]
