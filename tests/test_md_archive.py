"""The markdown event archive (SPEC 3, 8): append-only files, torn tails, a clock that goes back,
reads far behind that cost a few small reads, and the files 0.1 wrote."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcoord.core.models import Event
from agentcoord.errors import CorruptData
from agentcoord.store.markdown import archive as archive_mod
from agentcoord.store.markdown.store import MarkdownStore

from .conftest import FakeClock, mount_for_test

T0 = 1760279400.0  # 2025-10-12T14:30:00Z
DAY = 86400.0


def _store(tmp_path: Path, clock: FakeClock | None = None) -> MarkdownStore:
    root = tmp_path / "coord"
    root.mkdir(exist_ok=True)
    return MarkdownStore(str(root), durable=False, clock=clock or FakeClock(T0))


def _emit(store: MarkdownStore, n: int, *, keep: int = 2, channel: str = "training") -> None:
    events = [Event(channel, "step", fields=[("i", str(i))]) for i in range(n)]
    for start in range(0, n, 500):
        store.append_events(channel, events[start : start + 500], keep=keep)


def _seqs(events: list[Event]) -> list[int]:
    return [e.seq for e in events]


def _archives(store: MarkdownStore) -> list[Path]:
    return sorted(p for p in Path(store.root, "archive").iterdir() if p.suffix == ".md")


class ReadCounter:
    """Counts the bytes ``os.read`` returns while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bytes = 0
        real = os.read

        def counting(fd: int, n: int) -> bytes:
            data = real(fd, n)
            self.bytes += len(data)
            return data

        monkeypatch.setattr(archive_mod.os, "read", counting)


def test_an_archive_file_names_its_first_seq_and_is_appended_to(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _emit(store, 5)
    (path,) = _archives(store)
    text = path.read_text()
    assert text.startswith("# Training Events Archive 2025-10-12\n\n**First Seq**: 1\n\n---\n")
    _emit(store, 3)
    assert path.read_text().startswith(text)  # appended to, never rewritten
    assert _seqs(store.read_events("training")) == list(range(1, 9))
    assert (
        "archive/events-training-2025-10-12.md"
        in Path(store.root, "events-training.md").read_text()
    )


def test_a_torn_tail_is_invisible_then_cut_and_kept_aside(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _emit(store, 6)  # archive: 1-4, live: 5-6
    (path,) = _archives(store)
    whole = path.read_bytes()
    # A crash in the middle of appending seq 5: its block is half there.
    torn = b"\n## Event: step\n**Seq**: 5\n**Ti"
    path.write_bytes(whole + torn)
    assert _seqs(store.read_events("training")) == [1, 2, 3, 4, 5, 6]
    assert store.last_seq("training") == 6
    _emit(store, 1)  # archives 5: cuts the torn tail first
    assert path.read_bytes().startswith(whole)
    assert path.read_bytes().count(b"**Seq**: 5\n") == 1
    assert Path(str(path) + ".torn").read_bytes() == torn
    assert _seqs(store.read_events("training")) == list(range(1, 8))
    assert _seqs(store.read_events("training", after=3)) == [4, 5, 6, 7]


def test_events_go_to_their_day_but_never_back_to_an_older_file(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    store = _store(tmp_path, clock)
    _emit(store, 3)  # day 1: seq 1 archived
    clock.now += DAY
    _emit(store, 3)  # day 2
    clock.now -= 2 * DAY  # a clock set back two days
    _emit(store, 3)
    names = [p.name for p in _archives(store)]
    assert names == ["events-training-2025-10-12.md", "events-training-2025-10-13.md"]
    # Each file's seqs follow the previous file's: reads from any point see every event once.
    for after in range(10):
        assert _seqs(store.read_events("training", after=after)) == list(range(after + 1, 10))


def test_a_read_far_behind_costs_a_few_windows_not_the_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path)
    _emit(store, 60_000)
    (path,) = _archives(store)
    size = path.stat().st_size
    counter = ReadCounter(monkeypatch)
    got = store.read_events("training", after=42_345, limit=50)
    assert _seqs(got) == list(range(42_346, 42_396))
    assert [dict(e.fields)["i"] for e in got[:2]] == ["42345", "42346"]
    # log2(size / WINDOW) probes, the tail, one chunk: not the ~70 windows of the file.
    assert counter.bytes < 12 * archive_mod.WINDOW < size / 5


def test_an_append_costs_what_it_appends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path)
    _emit(store, 20_000)
    (path,) = _archives(store)
    counter = ReadCounter(monkeypatch)
    before = path.stat().st_size
    _emit(store, 1)
    assert path.stat().st_size - before < 200
    assert counter.bytes <= 3 * archive_mod.WINDOW  # the tail, not the file


def test_reads_page_through_many_files_in_order(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    store = _store(tmp_path, clock)
    for _ in range(5):
        _emit(store, 7)
        clock.now += DAY
    assert len(_archives(store)) == 5
    seen: list[int] = []
    after = 0
    while True:
        page = store.read_events("training", after=after, limit=4)
        if not page:
            break
        seen += _seqs(page)
        after = page[-1].seq
    assert seen == list(range(1, 36))


def test_corruption_far_into_a_file_names_its_line(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _emit(store, 6000)
    (path,) = _archives(store)
    lines = path.read_text().splitlines()
    at = lines.index("**Seq**: 5000")
    lines[at + 1] = "**Time**: yesterday"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorruptData) as info:
        store.read_events("training", after=4990, limit=20)
    assert info.value.path == str(path)
    assert info.value.line == at + 2


def test_an_archive_written_by_0_1_is_read_and_appended_to(tmp_path: Path) -> None:
    store = _store(tmp_path)
    archive = Path(store.root, "archive")
    archive.mkdir()
    blocks = "".join(
        f"\n## Event: step\n**Seq**: {s}\n**Time**: 2025-10-12T10:00:0{s}.000Z\n\n---\n"
        for s in (1, 2, 3)
    )
    legacy = f"# Training Events Archive 2025-10-12\n\n**Last Seq**: 3\n\n---\n{blocks}"
    (archive / "events-training-2025-10-12.md").write_text(legacy)
    assert _seqs(store.read_events("training")) == [1, 2, 3]
    assert store.last_seq("training") == 3
    assert _seqs(store.read_events("training", after=2)) == [3]
    _emit(store, 4)  # continues at 4; archives 4 and 5 into the same day's file
    assert _seqs(store.read_events("training")) == list(range(1, 8))
    assert (archive / "events-training-2025-10-12.md").read_text().startswith(legacy)


def test_a_symlinked_archive_file_is_corrupt_not_followed(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _emit(store, 4)
    (path,) = _archives(store)
    target = tmp_path / "elsewhere.md"
    os.rename(path, target)
    os.symlink(target, path)
    with pytest.raises(CorruptData):
        store.read_events("training")
    before = target.read_bytes()
    with pytest.raises(CorruptData):
        _emit(store, 1)
    assert target.read_bytes() == before


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs."""
    yield from mount_for_test(
        ["-t", "tmpfs", "-o", "size=2m", "tmpfs"], tmp_path / "mnt", "a tmpfs"
    )


def test_emits_go_on_when_the_disk_has_no_room_for_a_second_archive(small_fs: Path) -> None:
    store = _store(small_fs)
    _emit(store, 12_000)  # ~1 MiB of archive
    (path,) = _archives(store)
    size = path.stat().st_size
    stat = os.statvfs(small_fs)
    free = stat.f_bavail * stat.f_frsize
    filler = small_fs / "filler"
    filler.write_bytes(b"\0" * max(free - 200 * 1024, 0))  # leave ~200 KiB: less than the archive
    stat = os.statvfs(small_fs)
    assert stat.f_bavail * stat.f_frsize < size
    for _ in range(300):
        store.append_events("training", [Event("training", "step")], keep=2)
    assert _seqs(store.read_events("training", after=12_000)) == list(range(12_001, 12_301))


@pytest.mark.parametrize("channel", ["training", "msg.log"])
@pytest.mark.parametrize("window", [64, 97, 256, 1000])
def test_every_read_after_any_seq_matches_the_log_whatever_the_block_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int, channel: str
) -> None:
    """Bisection with windows small enough to cut blocks and seq lines anywhere (a block much
    longer than a window, a window ending inside ``**Seq**: 15``): every read after every seq,
    with every limit, returns exactly the events after it, and ends (a probe whose next block
    lay beyond the search bound once looped forever)."""
    import random
    import signal

    monkeypatch.setattr(archive_mod, "WINDOW", window)
    monkeypatch.setattr(archive_mod, "CHUNK", window)
    rng = random.Random(window)
    clock = FakeClock(T0)
    store = _store(tmp_path, clock)
    sizes = [rng.choice([1, 10, 60, 300, 2000, 5 * window]) for _ in range(60)]
    for i, size in enumerate(sizes):
        value = rng.choice(["x", "😀", "é"]) * size
        etype = "message" if channel == "msg.log" else "step"  # msg.log: "## Message: N"
        store.append_events(channel, [Event(channel, etype, fields=[("v", value)])], keep=1)
        if i % 17 == 16:  # a few archive files
            clock.now += DAY
    heading = "\n## Message: 2\n" if channel == "msg.log" else "\n## Event: step\n"
    assert heading in _archives(store)[0].read_text()
    every = _seqs(store.read_events(channel))
    assert every == list(range(1, 61))

    def hung(*_: object) -> None:
        raise AssertionError("a read did not end")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        for after in range(61):
            for limit in (1, 2, 7, None):
                got = _seqs(store.read_events(channel, after=after, limit=limit))
                want = every[after:] if limit is None else every[after : after + limit]
                assert got == want, (after, limit)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_an_archive_edited_beyond_a_torn_append_is_corrupt_and_never_cut(tmp_path: Path) -> None:
    """CRLF line endings, text typed after the last block, a cut header: text after the last
    complete block that an interrupted append cannot have left is reported (exit 6 with the
    line) by reads and appends alike, and nothing is cut off. (A last block that lost its
    ``---`` looks exactly like an interrupted append: it is set aside in ``.torn``, see above.)"""
    store = _store(tmp_path)
    _emit(store, 6)  # archive: 1-4
    (path,) = _archives(store)
    good = path.read_bytes()
    edits = {
        "crlf": good.replace(b"\n", b"\r\n"),
        "trailing text": good + b"a note typed at the end\n",
        "cut header": good[: good.index(b"**First")],
    }
    for name, text in edits.items():
        path.write_bytes(text)
        with pytest.raises(CorruptData) as info:
            store.read_events("training", after=0)
        assert info.value.path == str(path), name
        with pytest.raises(CorruptData):
            _emit(store, 1)  # a rotation: must not cut the file
        assert path.read_bytes() == text, name
        assert not Path(str(path) + ".torn").exists(), name


def _messages(store: MarkdownStore, n: int, *, keep: int = 2) -> None:
    events = [
        Event("msg.log", "message", fields=[("From", "alice"), ("Body", f"n={i}")])
        for i in range(n)
    ]
    for start in range(0, n, 500):
        store.append_events("msg.log", events[start : start + 500], keep=keep)


def test_message_log_archive_has_message_blocks_read_by_bisection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path)
    _messages(store, 30_000)
    (path,) = _archives(store)
    assert path.name.startswith("events-msg.log-")
    text = path.read_text()
    assert "\n## Event:" not in text
    assert text.count("\n## Message: ") == 29_998
    assert "\n## Message: 7\n**Seq**: 7\n**Time**: 2025-10-12T14:30:00Z\n**From**: alice\n" in text
    counter = ReadCounter(monkeypatch)
    got = store.read_events("msg.log", after=21_345, limit=50)
    assert _seqs(got) == list(range(21_346, 21_396))
    assert dict(got[0].fields) == {"From": "alice", "Body": "n=21345"}
    # a few windows (the tail, the probes, one chunk), not the ~47 windows of the file
    assert counter.bytes < min(12 * archive_mod.WINDOW, path.stat().st_size / 3)


def test_message_archive_written_with_the_event_heading_is_read_and_appended_to(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    archive = Path(store.root, "archive")
    archive.mkdir()
    blocks = "".join(
        f"\n## Event: message\n**Seq**: {s}\n**Time**: 2025-10-12T10:00:0{s}.000Z\n"
        f"**From**: alice\n\n---\n"
        for s in (1, 2, 3)
    )
    old = f"# Msg.log Events Archive 2025-10-12\n\n**First Seq**: 1\n\n---\n{blocks}"
    (archive / "events-msg.log-2025-10-12.md").write_text(old)
    assert _seqs(store.read_events("msg.log")) == [1, 2, 3]
    assert store.last_seq("msg.log") == 3
    assert _seqs(store.read_events("msg.log", after=2)) == [3]
    _messages(store, 4)  # continues at 4; archives 4 and 5 into the same day's file
    assert _seqs(store.read_events("msg.log")) == list(range(1, 8))
    text = (archive / "events-msg.log-2025-10-12.md").read_text()
    assert text.startswith(old)
    assert text[len(old) :].startswith("\n## Message: 4\n**Seq**: 4\n")
    for after in range(8):
        assert _seqs(store.read_events("msg.log", after=after)) == list(range(after + 1, 8))


@pytest.mark.parametrize("cut", [3, 7, 12, 20])
def test_a_torn_message_block_is_invisible_then_cut(tmp_path: Path, cut: int) -> None:
    store = _store(tmp_path)
    _messages(store, 6)  # archive: 1-4, live: 5-6
    (path,) = _archives(store)
    whole = path.read_bytes()
    torn = b"\n## Message: 5\n**Seq**: 5\n**Ti"[:cut]
    path.write_bytes(whole + torn)
    assert _seqs(store.read_events("msg.log")) == [1, 2, 3, 4, 5, 6]
    assert store.last_seq("msg.log") == 6
    _messages(store, 1)  # archives 5: cuts the torn tail first
    assert path.read_bytes().startswith(whole)
    assert path.read_bytes().count(b"**Seq**: 5\n") == 1
    assert Path(str(path) + ".torn").read_bytes() == torn
    assert _seqs(store.read_events("msg.log", after=3)) == [4, 5, 6, 7]
