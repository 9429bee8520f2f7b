"""Markdown-backend specifics: the head index, file/id agreement, atomic writes, locks."""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcoord import errors
from agentcoord import fs as fsutil
from agentcoord.api import Coordinator
from agentcoord.store.markdown.index import TaskIndex
from agentcoord.workspace import Workspace

from .conftest import MARKDOWN_ONLY, mount_for_test


@MARKDOWN_ONLY
def test_index_sees_hand_edits_deletions_and_corruption(
    coord: Coordinator, workspace: Workspace
) -> None:
    for i in range(5):
        coord.tasks.create(f"t{i}", id=f"t{i}")
    assert len(coord.store.list_task_heads(statuses=["pending"])) == 5
    root = Path(workspace.root)
    # A person marks one complete by hand (same size edits still change mtime/inode).
    p = root / "task-t1.md"
    p.write_text(p.read_text().replace("**Status**: pending", "**Status**: complete"))
    (root / "task-t2.md").unlink()
    bad = root / "task-t3.md"
    bad.write_text(bad.read_text().replace("**Status**: pending", "**Status**: ???"))
    errs: list[errors.CorruptData] = []
    heads = coord.store.list_task_heads(statuses=["pending"], errors=errs)
    assert sorted(h.id for h in heads) == ["t0", "t4"]
    assert [e.path for e in errs] == [str(bad)]
    assert [t.id for t in coord.store.list_tasks(statuses=["complete"])] == ["t1"]


@MARKDOWN_ONLY
def test_index_file_is_only_a_cache(coord: Coordinator, workspace: Workspace) -> None:
    coord.tasks.create("a", id="a")
    coord.store.list_task_heads()
    index = Path(workspace.root) / ".state" / "index-task.json"
    assert index.exists()
    index.write_text("garbage{")
    assert [h.id for h in coord.store.list_task_heads()] == ["a"]
    index.unlink()
    assert [h.id for h in coord.store.list_task_heads()] == ["a"]


def test_big_index_tolerates_few_stale_entries(tmp_path: Path) -> None:
    calls: list[str] = []
    root = tmp_path / "ws"
    root.mkdir()
    coord = Coordinator.open(str(root))
    for i in range(60):
        coord.tasks.create(f"t{i}", id=f"t{i}")
    coord.store.list_task_heads()  # builds the index
    index = TaskIndex(str(root), str(root / ".state"))
    store = coord.store

    def parse(name: str, raw: bytes):  # type: ignore[no-untyped-def]
        calls.append(name)
        return store._task_from_bytes(name, raw)  # type: ignore[attr-defined]

    heads, _ = index.scan(store._task_bytes, parse, None)  # type: ignore[attr-defined]
    assert len(heads) == 60
    assert calls == []  # rows recorded long enough after the writes, or verified by CRC
    coord.tasks.claim("t5", agent="x", register=True)
    heads, parsed = index.scan(store._task_bytes, parse, None, frozenset({"in_progress"}))  # type: ignore[attr-defined]
    assert [h.id for _, h in heads] == ["t5"]
    assert list(parsed) == ["task-t5.md"]


@MARKDOWN_ONLY
def test_file_name_must_match_task_id(coord: Coordinator, workspace: Workspace) -> None:
    coord.tasks.create("a", id="a")
    root = Path(workspace.root)
    (root / "task-b.md").write_text((root / "task-a.md").read_text())
    with pytest.raises(errors.CorruptData, match="file name says task 'b'"):
        coord.tasks.get("b")


def test_atomic_write_replaces_symlink_instead_of_following(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    link = tmp_path / "task-x.md"
    link.symlink_to(outside)
    fsutil.atomic_write(str(link), "new")
    assert outside.read_text() == "precious"
    assert not link.is_symlink() and link.read_text() == "new"


@MARKDOWN_ONLY
def test_files_are_not_world_writable(coord: Coordinator, workspace: Workspace) -> None:
    coord.tasks.create("a", id="a")
    for path in Path(workspace.root).rglob("*"):
        assert not os.stat(path).st_mode & stat.S_IWOTH, path


def test_write_failure_leaves_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.md"
    target.write_text("old")

    def boom(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil.os, "fsync", boom)
    with pytest.raises(errors.BackendUnavailable, match="No space left"):
        fsutil.atomic_write(str(target), "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.md"]


def test_lock_interoperates_with_flock_and_times_out(tmp_path: Path) -> None:
    path = str(tmp_path / "x.lock")
    with open(path, "w") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(errors.LockTimeout) as info:
            fsutil.FileLock(path, timeout=0.2).acquire()
        assert info.value.exit_code == 5
    with fsutil.FileLock(path, timeout=0.2):
        pass


def test_lock_survives_unlink_race(tmp_path: Path) -> None:
    path = str(tmp_path / "x.lock")
    first = fsutil.FileLock(path)
    first.acquire()
    os.unlink(path)  # maintenance removed it while held: a new lock must not "share" it
    second = fsutil.FileLock(path, timeout=0.2)
    second.acquire()  # locks the new inode: allowed, the old one is unreachable
    second.release()
    first.release()


@MARKDOWN_ONLY
def test_claim_skips_a_candidate_another_writer_holds(
    coord: Coordinator, workspace: Workspace
) -> None:
    coord.tasks.create("first", id="a", priority=9)
    coord.tasks.create("second", id="b")
    lock = Path(workspace.root) / ".locks" / "task-a.lock"
    lock.parent.mkdir(exist_ok=True)
    with open(lock, "a") as held:  # as `flock .locks/task-a.lock ...` in a shell would
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert (
            coord.tasks.claim(agent="x", register=True).id == "b"
        )  # did not queue behind the holder
    assert coord.tasks.claim(agent="y", register=True).id == "a"


def test_long_lived_index_sees_other_writers(workspace: Workspace) -> None:
    from agentcoord.store.markdown.store import MarkdownStore

    mine = Coordinator.open(workspace.root)
    other = Coordinator(MarkdownStore(workspace.root), workspace=workspace)  # another process
    for i in range(3):
        mine.tasks.create(f"t{i}", id=f"t{i}")
    assert [h.status for h in mine.store.list_task_heads()] == ["pending"] * 3
    mine.tasks.claim("t0", agent="me", register=True)  # noted in memory, no re-parse needed
    other.tasks.claim("t1", agent="them", register=True)  # only visible through the files
    heads = {h.id: (h.status, h.agent) for h in mine.store.list_task_heads()}
    assert heads == {
        "t0": ("in_progress", "me"),
        "t1": ("in_progress", "them"),
        "t2": ("pending", None),
    }
    assert {h.id for h in other.store.list_task_heads(statuses=["in_progress"])} == {"t0", "t1"}


def test_index_is_not_fooled_by_a_reused_stat_key(workspace: Workspace) -> None:
    """Two versions of a file written within one clock tick, of the same size, on a reused
    inode, share (mtime, size, inode): the index must look at the content ("racy git")."""
    coord = Coordinator.open(workspace.root)
    coord.tasks.create("aaaa", id="t1")
    assert [h.status for h in coord.store.list_task_heads()] == ["pending"]
    path = Path(workspace.root) / "task-t1.md"
    st = os.stat(path)
    text = path.read_text()
    forged = text.replace("**Status**: pending", "**Status**: blocked")
    assert len(forged) == len(text)
    path.write_text(forged)  # same inode, same size...
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # ...and the same mtime
    assert [h.status for h in coord.store.list_task_heads()] == ["blocked"]


def test_noted_heads_say_what_the_files_say(workspace: Workspace) -> None:
    """A process's own writes go into its in-memory index; those heads must equal what any
    other reader parses from the files (found by the torture test: a sub-second lease in the
    head, whole seconds in the file, made reap skip an expired lease)."""
    from agentcoord.store.markdown.store import MarkdownStore

    from .conftest import FakeClock

    clock = FakeClock(1_760_000_000.75)  # fractions on purpose
    mine = Coordinator(MarkdownStore(workspace.root, clock=clock), workspace=workspace, clock=clock)
    for i in range(4):
        mine.tasks.create(f"t{i}", id=f"t{i}")
    mine.store.list_task_heads()  # loads the index into memory
    clock.advance(0.4)
    mine.tasks.claim("t0", agent="a", lease_seconds=2.5, register=True)
    mine.tasks.progress("t0", agent="a", percent=10)
    fresh = MarkdownStore(workspace.root)
    assert {h.id: h for h in mine.store.list_task_heads()} == {
        h.id: h for h in fresh.list_task_heads()
    }
    lease = mine.tasks.get("t0").lease_expires
    assert lease is not None
    assert lease >= clock.now + 2.5  # never shorter than granted
    assert lease == int(lease)  # and exactly what the file holds


def _whole_second_stamp(path: Path, second: int) -> None:
    """What a file system with one-second timestamps (ext4 with 128-byte inodes, many NFS
    servers) records: the mtime truncated to the second."""
    os.utime(path, ns=(second * 10**9, second * 10**9))


def test_index_on_a_file_system_with_one_second_timestamps(workspace: Workspace) -> None:
    """Issue 14, item 5: ``task list``, then a same-size hand edit of a task's priority under
    its lock within the same second, then ``task claim``: the index must not serve the old
    priority. Racy rows are judged in the file system's own granularity, as git does."""
    import fcntl
    import time

    while time.time() % 1 < 0.15 or time.time() % 1 > 0.8:  # room on both sides of the second
        time.sleep(0.02)
    second = int(time.time())
    coord = Coordinator.open(workspace.root)
    coord.tasks.create("low", id="t1", priority=1)
    coord.tasks.create("high", id="t2", priority=2)
    for name in ("task-t1.md", "task-t2.md"):
        _whole_second_stamp(Path(workspace.root) / name, second)
    assert [h.id for h in coord.tasks.heads()] == ["t2", "t1"]  # the index recorded both
    path = Path(workspace.root) / "task-t1.md"
    text = path.read_text()
    edited = text.replace("**Priority**: 1", "**Priority**: 3")
    assert len(edited) == len(text)
    with open(Path(workspace.root) / ".locks" / "task-t1.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the documented way to edit by hand
        with open(path, "r+") as fh:  # in place: same inode, same size
            fh.write(edited)
        _whole_second_stamp(path, second)  # the same second
    # Learnt from the mtimes: whole seconds (two, when the second happens to be even).
    assert coord.store.index_granularity() in (10**9, 2 * 10**9)
    assert coord.tasks.claim(agent="a", register=True).id == "t1"  # priority 3 now


def test_verified_rows_are_restamped_so_reads_stay_constant(workspace: Workspace) -> None:
    """A long-lived process's own writes are noted as racy rows; once they are old enough and
    verified, they are trusted on their stat again (it used to read every file it ever wrote
    on every scan: 238 reads per claim on a 240-task board)."""
    import time

    from agentcoord.store.markdown.store import MarkdownStore

    store = MarkdownStore(workspace.root, durable=False)
    coord = Coordinator(store, workspace=workspace)
    for i in range(40):
        coord.tasks.create(f"t{i}", id=f"t{i}")
    store.list_task_heads()
    reads: list[str] = []
    real = store._task_bytes

    def counting(name: str) -> bytes | None:
        reads.append(name)
        return real(name)

    store._task_bytes = counting  # type: ignore[method-assign]
    time.sleep(0.25)  # past the racy window of a fine-grained file system
    store.list_task_heads()
    assert len(reads) == 40  # each verified once ...
    reads.clear()
    store.list_task_heads()
    assert reads == []  # ... and trusted on its stat from then on
    coord.tasks.claim("t7", agent="a", register=True)
    reads.clear()
    store.list_task_heads()
    assert reads == ["task-t7.md"]  # only what changed (racy: just written)


@pytest.fixture
def coarse_fs(tmp_path: Path) -> Iterator[Path]:
    """A real ext4 file system with 128-byte inodes (one-second timestamps), loop-mounted.
    Needs root (CI runs as root); elsewhere the simulation above covers the same logic."""
    import shutil
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a loop device needs root")
    mkfs = shutil.which("mkfs.ext4")
    if mkfs is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mkfs.ext4 is missing (e2fsprogs)")
        pytest.skip("mkfs.ext4 is not installed")
    image = tmp_path / "ext4.img"
    with open(image, "wb") as fh:
        fh.truncate(16 * 1024 * 1024)
    subprocess.run([mkfs, "-q", "-I", "128", "-F", str(image)], check=True, capture_output=True)
    yield from mount_for_test(["-o", "loop", str(image)], tmp_path / "mnt", "a loop device")


def test_index_on_a_real_ext4_with_128_byte_inodes(coarse_fs: Path) -> None:
    import fcntl
    import time

    from agentcoord.workspace import init_workspace

    ws, _ = init_workspace(str(coarse_fs / "coord"))
    coord = Coordinator.open(ws.root)
    while time.time() % 1 > 0.2:  # write, list and edit within one second ...
        time.sleep(0.02)
    coord.tasks.create("low", id="t1", priority=1)
    coord.tasks.create("high", id="t2", priority=2)
    time.sleep(0.25)  # ... but the list well after the writes (beyond a fine-grained margin)
    assert [h.id for h in coord.tasks.heads()] == ["t2", "t1"]
    path = Path(ws.root) / "task-t1.md"
    assert os.stat(path).st_mtime_ns % 10**9 == 0  # the premise: one-second timestamps
    edited = path.read_text().replace("**Priority**: 1", "**Priority**: 3")
    with open(Path(ws.root) / ".locks" / "task-t1.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(path, "r+") as fh:
            fh.write(edited)
    assert coord.tasks.claim(agent="a", register=True).id == "t1"
    coord.close()
