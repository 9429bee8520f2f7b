"""The markdown change feed: watchfiles and the polling fallback give the same hints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentcoord.core.models import Event
from agentcoord.fs import atomic_write
from agentcoord.store.base import Change
from agentcoord.store.markdown import watch as md_watch
from agentcoord.store.markdown.store import MarkdownStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MODES = ["watchfiles", "poll"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name: str = request.param
    if name == "poll":
        monkeypatch.setenv("COORD_WATCH", "poll")
    else:
        monkeypatch.delenv("COORD_WATCH", raising=False)

        def no_poll(*args: object) -> Iterator[list[Change]]:
            raise AssertionError("fell back to polling")

        monkeypatch.setattr(md_watch, "_poll", no_poll)
    return name


def _store(tmp_path: Path) -> MarkdownStore:
    root = tmp_path / "coord"
    root.mkdir()
    (root / "archive").mkdir()
    return MarkdownStore(str(root), durable=False)


def _expect(
    it: Iterator[list[Change]], *wanted: tuple[str, str, str]
) -> list[tuple[str, str, str]]:
    """Read batches until every wanted hint arrived; return everything seen on the way."""
    seen: list[tuple[str, str, str]] = []
    missing = set(wanted)
    for batch in it:  # the watch's own timeout ends this loop if a hint never comes
        for change in batch:
            got = (change.kind, change.key, change.action)
            seen.append(got)
            missing.discard(got)
        if not missing:
            return seen
    raise AssertionError(f"watch ended without {sorted(missing)}; saw {seen}")


def test_created_changed_archived_removed(tmp_path: Path, mode: str) -> None:
    store = _store(tmp_path)
    root = Path(store.root)
    atomic_write(str(root / "agent-old.md"), "x")
    it = store.watch(timeout=20)
    try:
        atomic_write(str(root / "task-t1.md"), "v1")  # before the first next(): still reported
        assert _expect(it, ("task", "t1", "created")) == [("task", "t1", "created")]
        atomic_write(str(root / "task-t1.md"), "version 2")
        _expect(it, ("task", "t1", "changed"))
        os.replace(root / "task-t1.md", root / "archive" / "task-t1.md")
        _expect(it, ("task", "t1", "archived"))
        os.unlink(root / "agent-old.md")
        _expect(it, ("agent", "old", "removed"))
        store.append_events("training", [Event("training", "step")], keep=100)
        _expect(it, ("event", "training", "created"))
        store.append_events("training", [Event("training", "step")], keep=100)
        _expect(it, ("event", "training", "changed"))
        # Noise that is not a record: temp files, locks, state, the README, other names.
        (root / "README.md").write_text("readme")
        (root / ".task-x.md.tmp-1-2").write_text("tmp")
        store.advance_cursor("training", "c", 1)
        atomic_write(str(root / "context-p-d.md"), "c")
        atomic_write(str(root / "metrics-performance.md"), "m")
        seen = _expect(it, ("context", "p-d", "created"), ("metrics", "performance", "created"))
        assert {s[0] for s in seen} <= {"context", "metrics"}
    finally:
        it.close()


def test_timeout_ends_a_quiet_watch(tmp_path: Path, mode: str) -> None:
    store = _store(tmp_path)
    assert list(store.watch(timeout=0.2)) == []


def test_watching_a_missing_directory_polls_until_it_appears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COORD_WATCH", raising=False)
    root = tmp_path / "later"
    store = MarkdownStore(str(root), durable=False)
    it = store.watch(timeout=20)
    try:
        root.mkdir()
        atomic_write(str(root / "task-a.md"), "x")
        _expect(it, ("task", "a", "created"))
    finally:
        it.close()


def _broken_call(*args: object, **kwargs: object) -> Iterator[set[tuple[int, str]]]:
    raise OSError(28, "inotify watch limit reached")


def _broken_start(*args: object, **kwargs: object) -> Iterator[set[tuple[int, str]]]:
    if args:  # a generator, like the real one: it fails on the first next()
        raise OSError(28, "inotify watch limit reached")
    yield set()


@pytest.mark.parametrize("broken", [_broken_call, _broken_start])
def test_falls_back_to_polling_when_watching_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: Callable[..., object]
) -> None:
    import watchfiles

    monkeypatch.delenv("COORD_WATCH", raising=False)
    monkeypatch.setattr(watchfiles, "watch", broken)
    store = _store(tmp_path)
    it = store.watch(timeout=20)
    try:
        atomic_write(os.path.join(store.root, "task-a.md"), "x")
        _expect(it, ("task", "a", "created"))
        atomic_write(os.path.join(store.root, "task-a.md"), "xy")
        _expect(it, ("task", "a", "changed"))
    finally:
        it.close()


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")
def test_closing_the_watch_leaves_no_thread(tmp_path: Path, mode: str) -> None:
    store = _store(tmp_path)
    before = _threads()
    for n in range(3):
        it = store.watch(timeout=20)
        atomic_write(os.path.join(store.root, "task-a.md"), str(n))
        next(it)
        it.close()
    for _ in range(200):  # the watcher's thread ends asynchronously after close
        if _threads() <= before:
            break
        time.sleep(0.025)
    assert _threads() <= before


CHILD = """
import sys
from agentcoord.store.markdown.store import MarkdownStore
it = MarkdownStore(sys.argv[1]).watch()
print("ready", flush=True)
for batch in it:
    pass
"""


@pytest.mark.parametrize("watch_mode", MODES)
def test_keyboard_interrupt_stops_the_watch(tmp_path: Path, watch_mode: str) -> None:
    root = tmp_path / "coord"
    root.mkdir()
    env = dict(os.environ)
    env.pop("COORD_WATCH", None)
    if watch_mode == "poll":
        env["COORD_WATCH"] = "poll"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # let it settle inside the wait (not a timing assertion)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err


def test_classify() -> None:
    assert md_watch.classify("task-42.md") == ("task", "42")
    assert md_watch.classify("context-proj-1-dataset.md") == ("context", "proj-1-dataset")
    assert md_watch.classify("events-training.md") == ("event", "training")
    assert md_watch.classify("task-.md") is None
    assert md_watch.classify(".task-1.md.tmp-1-2") is None
    assert md_watch.classify("README.md") is None
