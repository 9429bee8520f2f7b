"""The change feed of the markdown backend: file-system events turned into :class:`Change` hints.

``watchfiles`` (inotify on Linux) is used with its batching cut to a few milliseconds: by default it
groups changes for ~50-1600 ms, far above the 10 ms delivery target for ``event tail --follow``
(SPEC section 8). Only names in the coordination directory itself count (``task-``, ``agent-``,
``events-``, ``context-``, ``metrics-``); temp files, ``.locks/``, ``.state/`` and ``archive/`` are
not reported. Every touched name is resolved with a ``stat``, so the hint says what is true now:
``created`` (new name), ``changed``, ``archived`` (gone, and ``archive/`` holds that name) or
``removed``.

When watching cannot start (no inotify, limits reached, any ``OSError``) or ``COORD_WATCH=poll`` is
set, the directory is polled with ``os.scandir`` every :data:`POLL_INTERVAL` s, comparing inode,
size and mtime, and the same batches are yielded.
"""

from __future__ import annotations

import os
import time

from ..base import Change
from .directory import ARCHIVE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Generator, Iterable

    Sig = tuple[int, int, int]
    Snapshot = dict[str, Sig]

POLL_INTERVAL = 0.05
#: watchfiles settings (milliseconds): wake every STEP, deliver once a STEP passes without news
#: (or after DEBOUNCE at most), and come back to Python every SLICE to check the timeout.
STEP_MS = 1
DEBOUNCE_MS = 5
SLICE_MS = 50
_KINDS = (
    ("task-", "task"),
    ("agent-", "agent"),
    ("events-", "event"),
    ("context-", "context"),
    ("metrics-", "metrics"),
)


def classify(name: str) -> tuple[str, str] | None:
    """``task-42.md`` -> ``("task", "42")``; None for anything that is not a record file."""
    if not name.endswith(".md") or name.startswith("."):
        return None
    stem = name[:-3]
    if stem == "reservations":
        return "reservation", "*"
    for prefix, kind in _KINDS:
        if stem.startswith(prefix) and len(stem) > len(prefix):
            return kind, stem[len(prefix) :]
    return None


def _sig(st: os.stat_result) -> Sig:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def snapshot(root: str) -> Snapshot:
    out: Snapshot = {}
    try:
        entries = os.scandir(root)
    except (FileNotFoundError, NotADirectoryError):
        return out
    with entries:
        for entry in entries:
            if classify(entry.name) is None:
                continue
            try:
                out[entry.name] = _sig(entry.stat(follow_symlinks=False))
            except FileNotFoundError:
                continue
    return out


def _gone(root: str, name: str, kind: str, key: str) -> Change:
    archived = os.path.lexists(os.path.join(root, ARCHIVE, name))
    return Change(kind, key, "archived" if archived else "removed")


def diff(root: str, old: Snapshot, new: Snapshot) -> list[Change]:
    """What changed between two snapshots, in name order."""
    out: list[Change] = []
    for name in sorted(old.keys() | new.keys()):
        kind, key = classify(name) or ("", "")
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if after is None:
            out.append(_gone(root, name, kind, key))
        else:
            out.append(Change(kind, key, "created" if before is None else "changed"))
    return out


def resolve(root: str, snap: Snapshot, names: set[str]) -> list[Change]:
    """Turn names the OS reported as touched into changes, updating ``snap`` in place. A touched
    name that still exists is reported even if its stat looks the same (mtime is coarse)."""
    out: list[Change] = []
    for name in sorted(names):
        found = classify(name)
        if found is None:
            continue
        kind, key = found
        try:
            sig: Sig | None = _sig(os.stat(os.path.join(root, name), follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError):
            sig = None
        before = snap.pop(name, None)
        if sig is not None:
            snap[name] = sig
            out.append(Change(kind, key, "changed" if before is not None else "created"))
        elif before is not None:
            out.append(_gone(root, name, kind, key))
    return out


def watch(root: str, timeout: float | None = None) -> Generator[list[Change], None, None]:
    """Batches of change hints in directory ``root`` from this call on (the directory is read
    now, so a caller may call ``watch()``, then read the state, then iterate without missing
    anything); ends after ``timeout`` seconds without a change, if given."""
    return _watch(root, snapshot(root), timeout)


def _watch(root: str, snap: Snapshot, timeout: float | None) -> Generator[list[Change], None, None]:
    if os.environ.get("COORD_WATCH", "").strip().lower() != "poll":
        finished = yield from _watch_native(root, snap, timeout)
        if finished:
            return
    yield from _poll(root, snap, timeout)


def _watch_native(
    root: str, snap: Snapshot, timeout: float | None
) -> Generator[list[Change], None, bool]:
    """Watch with watchfiles; returns False (having yielded nothing) if it cannot start, or if it
    fails later, so that the caller falls back to polling from the same snapshot."""
    try:
        import watchfiles
    except ImportError:
        return False
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        changes = watchfiles.watch(
            root,
            watch_filter=None,
            debounce=DEBOUNCE_MS,
            step=STEP_MS,
            rust_timeout=SLICE_MS,
            yield_on_timeout=True,
            recursive=False,
            force_polling=False,
            raise_interrupt=True,
        )
    except (OSError, RuntimeError):
        return False
    started = False
    try:
        while True:
            try:
                raw = next(changes)
            except StopIteration:
                return True
            except (OSError, RuntimeError):
                # Cannot start (no inotify, limits) or the watcher broke: poll instead.
                return False
            if not started:
                # The watcher runs now; anything between the snapshot and its start shows here.
                started = True
                now = snapshot(root)
                batch = diff(root, snap, now)
                snap.clear()
                snap.update(now)
            else:
                batch = resolve(root, snap, _names(root, raw))
            if batch:
                yield batch
                if deadline is not None:
                    deadline = time.monotonic() + (timeout or 0.0)
            elif deadline is not None and time.monotonic() >= deadline:
                return True
    finally:
        changes.close()


def _names(root: str, raw: Iterable[tuple[object, str]]) -> set[str]:
    return {os.path.basename(p) for _, p in raw if os.path.dirname(p) == root}


def _poll(root: str, snap: Snapshot, timeout: float | None) -> Generator[list[Change], None, None]:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        began = time.monotonic()
        now = snapshot(root)
        batch = diff(root, snap, now)
        snap = now
        if batch:
            yield batch
            if deadline is not None:
                deadline = time.monotonic() + (timeout or 0.0)
        elif deadline is not None and time.monotonic() >= deadline:
            return
        # A huge directory must not turn polling into a busy loop.
        pause = max(POLL_INTERVAL, 2 * (time.monotonic() - began))
        if deadline is not None:
            pause = max(0.0, min(pause, deadline - time.monotonic()))
        time.sleep(pause)
