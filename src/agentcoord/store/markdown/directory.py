"""The coordination directory's primitives, shared by the parts of the markdown backend.

:class:`Directory` names the files (``path``), locks them (``flock(2)`` on ``.locks/{name}.lock``,
files that are never replaced, so the shell's ``flock(1)`` interoperates), writes them atomically
(temp file, fsync, ``os.replace``, directory fsync: :func:`agentcoord.fs.atomic_write`) and reads
them, and keeps a :class:`~agentcoord.store.cache.RecordCache` of the records it parsed.

The layout (SPEC section 3)::

    task-{id}.md  agent-{name}.md  events-{channel}.md  context-{project}-{domain}.md
    metrics-{type}.md  README.md  .gitkeep  config.json
    archive/   task-, agent- and events-{channel}-{YYYY-MM-DD}.md moved out of the live set
    .locks/    one lock file per record (never deleted while in use)
    .state/    counters, consumer cursors, the task head index (caches and small state)
"""

from __future__ import annotations

import os
import time

from ...fs import FileLock, atomic_write, ensure_dir, read_bytes, read_text, refuse_planted_link
from ..cache import RecordCache

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

LOCKS = ".locks"
STATE = ".state"
ARCHIVE = "archive"
README = "README.md"
KEEP = ".gitkeep"

README_TEXT = """# Coordination Directory

This directory contains ephemeral coordination files used by AI coding agents (agentcoord).

Files are created/updated during agent execution and cleaned up periodically (`coord cleanup`).
Read them freely; prefer `coord` commands for changes while agents are running, because every
write takes a lock in `.locks/` and replaces files atomically.
"""


class Directory:
    """A coordination directory at ``root``: paths, locks, atomic writes and reads."""

    def __init__(
        self,
        root: str,
        *,
        durable: bool = True,
        lock_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = os.path.abspath(root)
        refuse_planted_link(self.root)  # SPEC 16: never written through someone else's link
        self.durable = durable
        self.lock_timeout = lock_timeout
        self.clock = clock
        self.cache = RecordCache()
        #: The heads of the task files this process wrote, by the bytes it wrote.
        self.heads = RecordCache()
        self._locks_ready = False

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def lock(self, name: str) -> FileLock:
        """The lock of record ``name`` (``task-7``, ``events-team``, ``counter-task``)."""
        if not self._locks_ready:
            ensure_dir(self.path(LOCKS))
            self._locks_ready = True
        return FileLock(os.path.join(self.root, LOCKS, name + ".lock"), self.lock_timeout)

    def write(self, name: str, data: str | bytes, *, durable: bool = True) -> None:
        """Replace file ``name`` atomically (durably unless the store or the call says not)."""
        atomic_write(self.path(name), data, durable=self.durable and durable)

    def read_text(self, name: str) -> str | None:
        return read_text(self.path(name))

    def read_bytes(self, name: str) -> bytes | None:
        """The file's bytes, or None when it does not exist (:func:`agentcoord.fs.read_bytes`:
        a symlink or a non-regular file is :class:`CorruptData`, never followed or waited on)."""
        return read_bytes(self.path(name))

    def ensure(self, sub: str = "") -> str:
        path = self.path(sub) if sub else self.root
        ensure_dir(path)
        return path

    def names(self, sub: str = "", *, regular: bool = True) -> list[str]:
        """Names directly in ``sub`` (the root by default), sorted: regular files only (no
        symlinks), or with ``regular=False`` every entry (a link, a FIFO or a directory
        planted under a record's name is then reported by the reader, never hidden). A
        subdirectory that is a symbolic link is never listed through (nothing is read or
        removed in the directory it points to: ``doctor`` reports the link, writes refuse it,
        SPEC section 16)."""
        path = self.path(sub) if sub else self.root
        if sub and os.path.islink(path):
            return []
        try:
            with os.scandir(path) as entries:
                return sorted(
                    e.name for e in entries if not regular or e.is_file(follow_symlinks=False)
                )
        except (FileNotFoundError, NotADirectoryError):
            return []

    def prepare(self) -> list[str]:
        """Create the layout (root, ``archive/``, ``README.md``, ``.gitkeep``) where missing;
        return what was created. Idempotent."""
        done: list[str] = []
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            from ...errors import InvalidInput

            raise InvalidInput(f"{self.root} exists and is not a directory")
        for path in (self.root, self.path(ARCHIVE)):
            if not os.path.isdir(path):
                ensure_dir(path)
                done.append(f"created {path}/")
        for name, text in ((README, README_TEXT), (KEEP, "")):
            if not os.path.exists(self.path(name)):
                atomic_write(self.path(name), text)
                done.append(f"wrote {self.path(name)}")
        return done
