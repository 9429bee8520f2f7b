"""Event logs of the markdown backend: append, read, rotation, cursors, crashes, many processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcoord.core.models import Event
from agentcoord.errors import BackendUnavailable, CorruptData, InvalidInput, InvalidName
from agentcoord.store.markdown.store import MarkdownStore

DAY = 86400.0
T0 = 1760279400.0  # 2025-10-12T14:30:00Z
MIDNIGHT = 1760227200.0  # 2025-10-12T00:00:00Z


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _store(tmp_path: Path, clock: FakeClock | None = None) -> MarkdownStore:
    root = tmp_path / "coord"
    root.mkdir(exist_ok=True)
    return MarkdownStore(str(root), durable=False, clock=clock or FakeClock())


def _ev(etype: str = "step", **fields: str) -> Event:
    return Event("ignored", etype, fields=list(fields.items()))


def _emit(store: MarkdownStore, n: int, *, keep: int = 100, channel: str = "training") -> None:
    for i in range(n):
        store.append_events(channel, [_ev(Loss=f"0.{i}")], keep=keep)


def _seqs(events: list[Event]) -> list[int]:
    return [e.seq for e in events]


def test_append_assigns_seqs_and_reads_back(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = store.append_events("training", [_ev("started", Steps="10"), _ev(Loss="0.5")], keep=100)
    assert _seqs(first) == [1, 2]
    assert all(e.channel == "training" and e.time == T0 for e in first)
    second = store.append_events("training", [Event("x", "done", time=T0 + 1.5)], keep=100)
    assert second[0].seq == 3
    assert second[0].time == T0 + 1.5
    assert store.read_events("training") == first + second
    assert _seqs(store.read_events("training", after=1)) == [2, 3]
    assert _seqs(store.read_events("training", after=0, limit=2)) == [1, 2]
    assert store.read_events("training", after=3) == []
    assert store.last_seq("training") == 3
    assert store.append_events("training", [], keep=100) == []


def test_empty_and_unknown_channels(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.read_events("nothing") == []
    assert store.last_seq("nothing") == 0
    assert store.list_channels() == []
    _emit(store, 1, channel="b")
    _emit(store, 1, channel="a-b")
    (Path(store.root) / "events-.md").write_text("x")
    (Path(store.root) / ".events-c.md.tmp-1-2").write_text("x")
    assert store.list_channels() == ["a-b", "b"]


def test_bad_input_is_refused_before_touching_files(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(InvalidName):
        store.append_events("../x", [_ev()], keep=10)
    with pytest.raises(InvalidName):
        store.append_events("c", [_ev("bad type")], keep=10)
    with pytest.raises(InvalidInput):
        store.append_events("c", [Event("c", "t", fields=[("", "v")])], keep=10)
    with pytest.raises(InvalidInput):
        store.append_events("c", [_ev()], keep=-1)
    with pytest.raises(InvalidInput):
        store.read_events("c", after=-1)
    with pytest.raises(InvalidName):
        store.get_cursor("c", "a/b")
    assert os.listdir(store.root) == []


def test_rotation_moves_the_oldest_to_dated_archives(tmp_path: Path) -> None:
    clock = FakeClock()
    store = _store(tmp_path, clock)
    for i in range(7):
        clock.now = MIDNIGHT + i * DAY / 2  # two events a day
        store.append_events("training", [_ev(Loss=f"0.{i}")], keep=3)
    live = Path(store.root, "events-training.md").read_text()
    assert live.count("\n## Event:") == 3
    assert "**Last Seq**: 7" in live
    assert "Older events are in `archive/events-training-2025-10-13.md`_" in live
    archive = sorted(os.listdir(Path(store.root, "archive")))
    assert archive == ["events-training-2025-10-12.md", "events-training-2025-10-13.md"]
    days = [Path(store.root, "archive", a).read_text().count("\n## Event:") for a in archive]
    assert days == [2, 2]
    assert _seqs(store.read_events("training")) == list(range(1, 8))
    assert _seqs(store.read_events("training", after=2)) == list(range(3, 8))
    assert store.last_seq("training") == 7


def test_reads_from_the_live_window_skip_the_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path)
    _emit(store, 10, keep=4)  # live: 7..10

    def boom(channel: str, after: int, limit: int | None) -> list[Event]:
        raise AssertionError("archive parsed")

    monkeypatch.setattr(store.events.archive, "read", boom)
    assert _seqs(store.read_events("training", after=6)) == [7, 8, 9, 10]
    assert _seqs(store.read_events("training", after=9)) == [10]
    with pytest.raises(AssertionError):
        store.read_events("training", after=5)


def test_keep_zero_archives_everything(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _emit(store, 3, keep=0)
    assert "## Event:" not in Path(store.root, "events-training.md").read_text()
    assert _seqs(store.read_events("training")) == [1, 2, 3]
    _emit(store, 1, keep=0)
    assert store.last_seq("training") == 4


def test_seq_survives_a_deleted_live_file(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _emit(store, 5, keep=2)
    os.unlink(Path(store.root, "events-training.md"))
    assert store.last_seq("training") == 3
    new = store.append_events("training", [_ev()], keep=2)
    assert new[0].seq == 4
    assert _seqs(store.read_events("training")) == [1, 2, 3, 4]


def test_crash_between_archive_and_live_write_duplicates_never_loses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path)
    _emit(store, 5, keep=5)
    before = Path(store.root, "events-training.md").read_text()
    real_write = store.d.write

    def crash_on_live(name: str, text: str, *, durable: bool = True) -> None:
        if name == "events-training.md":
            raise BackendUnavailable("simulated crash")
        real_write(name, text, durable=durable)

    monkeypatch.setattr(store.d, "write", crash_on_live)
    with pytest.raises(BackendUnavailable):
        _emit(store, 2, keep=5)  # would archive seqs 1 and 2
    monkeypatch.undo()
    assert Path(store.root, "events-training.md").read_text() == before
    # Seqs 1-5 are now in the archive *and* the live file: readers see each once.
    assert _seqs(store.read_events("training")) == [1, 2, 3, 4, 5]
    _emit(store, 3, keep=5)  # archives 1-3 again: the archive must not repeat them
    assert _seqs(store.read_events("training")) == list(range(1, 9))
    (archive,) = Path(store.root, "archive").iterdir()
    assert archive.read_text().count("\n## Event:") == 3


def test_corrupt_live_file_is_reported_and_never_overwritten(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _emit(store, 3)
    path = Path(store.root, "events-training.md")
    bad = path.read_text().replace("**Seq**: 2", "**Seq**: two")
    path.write_text(bad)
    with pytest.raises(CorruptData) as info:
        store.append_events("training", [_ev()], keep=100)
    assert info.value.path == str(path)
    assert bad.split("\n")[info.value.line - 1] == "**Seq**: two"
    assert f"{path}:{info.value.line}:" in str(info.value)
    assert path.read_text() == bad
    with pytest.raises(CorruptData):
        store.read_events("training")
    with pytest.raises(CorruptData):
        _emit(store, 1, keep=0)
    assert path.read_text() == bad
    assert not Path(store.root, "archive").exists()


def test_corrupt_archive_is_reported_and_kept(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _emit(store, 4, keep=2)
    (archive,) = Path(store.root, "archive").iterdir()
    bad = archive.read_text().replace("**Seq**: 2", "**Seq**: two")
    archive.write_text(bad)
    with pytest.raises(CorruptData) as info:
        store.read_events("training")
    assert info.value.path == str(archive)
    assert info.value.line == bad.splitlines().index("**Seq**: two") + 1
    _emit(store, 1, keep=2)  # appending never rewrites what is there
    assert archive.read_text().startswith(bad)
    with pytest.raises(CorruptData):
        store.read_events("training", after=1)


def test_import_events_keeps_seqs(tmp_path: Path) -> None:
    store = _store(tmp_path)
    events = [Event("m", "x", seq=s) for s in (3, 4, 9)]
    assert _seqs(store.import_events("m", events, keep=2)) == [3, 4, 9]
    before = Path(store.root, "events-m.md").read_text()
    with pytest.raises(InvalidInput):
        store.import_events("m", [Event("m", "x", seq=10), Event("m", "x", seq=10)], keep=2)
    assert Path(store.root, "events-m.md").read_text() == before
    assert _seqs(store.append_events("m", [Event("m", "y")], keep=2)) == [10]
    assert _seqs(store.read_events("m")) == [3, 4, 9, 10]
    assert _seqs(store.read_events("m", after=4)) == [9, 10]


def test_cursors_move_forward_only(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.get_cursor("training", "monitor") == 0
    assert store.advance_cursor("training", "monitor", 5) == 5
    assert store.advance_cursor("training", "monitor", 3) == 5
    assert store.advance_cursor("training", "other", 2) == 2
    assert store.get_cursor("training", "monitor") == 5
    assert store.get_cursor("errors", "monitor") == 0
    path = Path(store.root, ".state", "cursors-training.json")
    assert json.loads(path.read_text()) == {"monitor": 5, "other": 2}
    path.write_text('{"monitor": 5,\n  "other": }')
    with pytest.raises(CorruptData) as info:
        store.get_cursor("training", "monitor")
    assert (info.value.path, info.value.line) == (str(path), 2)
    path.write_text('{"monitor": "five"}')
    with pytest.raises(CorruptData):
        store.advance_cursor("training", "monitor", 9)
    assert path.read_text() == '{"monitor": "five"}'


WRITER = """
import os, sys, time
from agentcoord.core.models import Event
from agentcoord.store.markdown.store import MarkdownStore
root, go, who = sys.argv[1], sys.argv[2], sys.argv[3]
store = MarkdownStore(root)
while not os.path.exists(go):
    time.sleep(0.001)
for i in range(50):
    store.append_events("training", [Event("training", "step", fields=[("Writer", who)])], keep=100)
"""


@pytest.mark.slow
def test_three_processes_and_a_consumer(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.clock = time.time
    go = tmp_path / "go"
    got: list[Event] = []

    def consume() -> None:
        cursor = store.get_cursor("training", "reader")
        batch = store.read_events("training", after=cursor)
        got.extend(batch)
        if batch:
            store.advance_cursor("training", "reader", batch[-1].seq)

    consume()  # before anything exists
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, store.root, str(go), str(n)])
        for n in range(3)
    ]
    try:
        go.touch()
        while any(p.poll() is None for p in procs):
            consume()  # during appends and rotations
        for p in procs:
            assert p.wait(timeout=120) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    consume()  # after
    consume()
    assert _seqs(got) == list(range(1, 151))
    assert sorted(e.fields[0][1] for e in got) == sorted(
        str(n) for n in range(3) for _ in range(50)
    )
    live = Path(store.root, "events-training.md")
    assert _seqs(store.read_events("training")) == list(range(1, 151))
    assert live.read_text().count("\n## Event:") == 100
    (archive,) = Path(store.root, "archive").iterdir()
    assert archive.read_text().count("\n## Event:") == 50
    if shutil.which("grep"):
        out = subprocess.run(
            ["grep", "-c", "^## Event:", str(live)], capture_output=True, text=True, check=False
        )
        assert out.stdout.strip() == "100"
    assert store.get_cursor("training", "reader") == 150


@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(st.integers(1, 4), min_size=1, max_size=12),
    keep=st.integers(0, 6),
    text=st.text(max_size=8),
    channel=st.sampled_from(["ch", "msg.log"]),
)
def test_block_fast_path_writes_what_the_full_renderer_writes(
    tmp_path_factory: pytest.TempPathFactory, batches: list[int], keep: int, text: str, channel: str
) -> None:
    def run(fast: bool) -> dict[str, str]:
        root = tmp_path_factory.mktemp("fast" if fast else "full")
        store = MarkdownStore(str(root), durable=False, clock=lambda: 1_760_000_000.0)
        if not fast:
            store._append_blocks = lambda *a: None  # type: ignore[method-assign]
        t = 1_760_000_000.0
        for n in batches:
            events = []
            for _ in range(n):
                t += 7_000.0  # crosses archive days now and then
                etype = "message" if channel == "msg.log" else "step"
                events.append(Event(channel, etype, time=t, fields=[("k", text)]))
            store.append_events(channel, events, keep=keep)
        assert [e.seq for e in store.read_events(channel)] == list(range(1, sum(batches) + 1))
        return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*.md")}

    assert run(True) == run(False)


def test_message_log_files_head_blocks_by_message_id_and_read_the_old_heading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``events-msg.log.md``: ``## Message: <id>`` blocks, by the block fast path too; a live
    file written with ``## Event: message`` blocks is still read, appended to and rotated."""
    from agentcoord.store.markdown.codec import event_blocks

    store = _store(tmp_path)
    live = Path(store.root, "events-msg.log.md")
    msg = [_ev("message", From="alice", Body="b")]
    store.append_events("msg.log", msg, keep=100)
    old = live.read_text().replace("## Message: 1\n", "## Event: message\n")
    live.write_text(old)  # as a version before the message heading wrote it
    assert _seqs(store.read_events("msg.log")) == [1]
    assert _seqs(store.read_events("msg.log", after=0)) == [1]  # the follower's path
    splits: list[object] = []
    real = event_blocks.LiveBlocks.split.__func__  # type: ignore[attr-defined]

    def split(cls: type, text: str) -> object:
        splits.append(out := real(cls, text))
        return out

    monkeypatch.setattr(event_blocks.LiveBlocks, "split", classmethod(split))
    store.append_events("msg.log", msg * 2, keep=100)
    assert splits and all(s is not None for s in splits)  # the fast path took the old file
    text = live.read_text()
    assert [ln for ln in text.splitlines() if ln.startswith("## ")] == [
        "## Event: message",
        "## Message: 2",
        "## Message: 3",
    ]
    assert "\n## Message: 3\n**Seq**: 3\n**Time**: " in text
    assert "\n**From**: alice\n**Body**: b\n\n---\n" in text
    got = store.read_events("msg.log", after=1)
    assert [(e.seq, e.type, e.fields) for e in got] == [
        (n, "message", [("From", "alice"), ("Body", "b")]) for n in (2, 3)
    ]
    store.append_events("msg.log", msg, keep=2)  # rotates the old block out to the archive
    (archive,) = Path(store.root, "archive").glob("events-msg.log-*.md")
    assert [ln for ln in archive.read_text().splitlines() if ln.startswith("## ")] == [
        "## Message: 1",
        "## Message: 2",
    ]
    assert _seqs(store.read_events("msg.log")) == [1, 2, 3, 4]
    # other channels keep the event heading, whatever the type
    store.append_events("training", [_ev("message")], keep=100)
    other = Path(store.root, "events-training.md").read_text()
    assert "\n## Event: message\n**Seq**: 1\n" in other and "## Message" not in other


def test_a_message_heading_that_is_not_its_seq_is_corrupt_and_kept(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.append_events("msg.log", [_ev("message"), _ev("message")], keep=100)
    live = Path(store.root, "events-msg.log.md")
    broken = live.read_text().replace("## Message: 2\n", "## Message: 7\n")
    live.write_text(broken)
    for act in (
        lambda: store.append_events("msg.log", [_ev("message")], keep=100),
        lambda: store.read_events("msg.log", after=1),
    ):
        with pytest.raises(CorruptData) as info:
            act()
        assert info.value.path == str(live)
        assert broken.splitlines()[info.value.line - 1] == "**Seq**: 2"
    assert live.read_text() == broken
