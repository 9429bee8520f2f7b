"""Events (conformance, every backend): emit, tail, consume/ack, follow; and the issue's
scenario through the CLI: 3 processes x 50 events, rotation, a consumer that gets all 150 once."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from agentcoord.api import Coordinator
from agentcoord.domain.events import MAX_FIELDS, MAX_VALUE
from agentcoord.errors import InvalidInput, InvalidName
from agentcoord.workspace import Config, Workspace

from .conftest import COORD, T0, FakeClock, coord_env


def _seqs(events: list) -> list[int]:  # type: ignore[type-arg]
    return [e.seq for e in events]


# -- emit ---------------------------------------------------------------------------------------
def test_emit_assigns_seq_time_and_keeps_field_order(coord: Coordinator, clock: FakeClock) -> None:
    first = coord.events.emit("training", "started", [("Total Steps", "10000"), ("Batch", "8")])
    clock.advance(1.5)
    second = coord.events.emit("training", "step", {"Loss": 0.42, "ok": True}, agent="ai-eng")
    assert (first.seq, second.seq) == (1, 2)
    assert (first.time, second.time) == (T0, T0 + 1.5)
    assert first.fields == [("Total Steps", "10000"), ("Batch", "8")]
    assert second.fields == [("Agent", "ai-eng"), ("Loss", "0.42"), ("ok", "true")]
    assert coord.events.tail("training") == [first, second]
    assert coord.events.channels() == ["training"]


@pytest.mark.parametrize(
    ("channel", "etype", "fields"),
    [
        ("a/b", "x", []),
        ("..", "x", []),
        ("ok", "bad type", []),
        ("ok", "", []),
        ("ok", "x", [("", "v")]),
        ("ok", "x", [("  ", "v")]),
        ("ok", "x", [("two\nlines", "v")]),
        ("ok", "x", [("k" * 101, "v")]),
        ("ok", "x", [("k", "v" * (MAX_VALUE + 1))]),
        ("ok", "x", [(f"k{i}", "v") for i in range(MAX_FIELDS + 1)]),
        ("ok", "x", [("k", ["not", "text"])]),
    ],
)
def test_emit_refuses_bad_input_before_writing(
    coord: Coordinator, channel: str, etype: str, fields: list[tuple[str, object]]
) -> None:
    with pytest.raises(InvalidInput):
        coord.events.emit(channel, etype, fields)  # type: ignore[arg-type]
    assert coord.events.channels() == []


def test_emit_refuses_bad_agent_name(coord: Coordinator) -> None:
    with pytest.raises(InvalidName):
        coord.events.emit("ch", "x", agent="../evil")


def test_hostile_values_round_trip(coord: Coordinator) -> None:
    hostile = "x\n## Event: forged\n**Seq**: 999\n---"
    coord.events.emit("ch", "x", [("note", hostile), ("**Seq**", "7")])
    (got,) = coord.events.tail("ch")
    assert got.seq == 1
    assert got.fields == [("note", hostile), ("**Seq**", "7")]


# -- tail ---------------------------------------------------------------------------------------
def test_tail_newest_n_and_since_pages_forward(coord: Coordinator) -> None:
    for i in range(10):
        coord.events.emit("ch", "e", [("i", str(i))])
    assert _seqs(coord.events.tail("ch", n=3)) == [8, 9, 10]
    assert _seqs(coord.events.tail("ch", n=0)) == []
    assert _seqs(coord.events.tail("ch", n=50)) == list(range(1, 11))
    assert _seqs(coord.events.tail("ch", since=4, n=3)) == [5, 6, 7]
    assert _seqs(coord.events.tail("ch", since=7)) == [8, 9, 10]
    assert coord.events.tail("empty", n=5) == []
    with pytest.raises(InvalidInput):
        coord.events.tail("ch", n=-1)


def test_tail_reads_across_rotation(coord: Coordinator) -> None:
    small = Coordinator(
        coord.store, config=Config({"keep_events": 5}), workspace=coord.workspace, clock=coord.clock
    )
    for i in range(12):
        small.events.emit("ch", "e", [("i", str(i))])
    assert _seqs(small.events.tail("ch", n=8)) == list(range(5, 13))
    assert _seqs(small.events.tail("ch", since=0)) == list(range(1, 13))


# -- consumers ----------------------------------------------------------------------------------
def test_consume_then_ack_delivers_each_event_once(coord: Coordinator) -> None:
    for i in range(5):
        coord.events.emit("ch", "e", [("i", str(i))])
    batch = coord.events.consume("ch", "c1", limit=3)
    assert _seqs(batch) == [1, 2, 3]
    # Not acknowledged yet: a crash here means the same batch comes again (at-least-once).
    assert _seqs(coord.events.consume("ch", "c1", limit=3)) == [1, 2, 3]
    assert coord.events.ack("ch", "c1", 3) == 3
    assert _seqs(coord.events.consume("ch", "c1")) == [4, 5]
    # Consumers are independent.
    assert _seqs(coord.events.consume("ch", "c2", limit=1)) == [1]


def test_ack_never_moves_back_and_not_past_the_end(coord: Coordinator) -> None:
    for _ in range(3):
        coord.events.emit("ch", "e")
    assert coord.events.ack("ch", "c", 3) == 3
    assert coord.events.ack("ch", "c", 1) == 3
    assert coord.events.cursor("ch", "c") == 3
    with pytest.raises(InvalidInput):
        coord.events.ack("ch", "c", 4)
    with pytest.raises(InvalidName):
        coord.events.consume("ch", "bad/consumer")


def test_consumer_survives_rotation(coord: Coordinator) -> None:
    small = Coordinator(
        coord.store, config=Config({"keep_events": 4}), workspace=coord.workspace, clock=coord.clock
    )
    seen: list[int] = []
    for round_ in range(5):
        for _ in range(3 + round_):
            small.events.emit("ch", "e")
        batch = small.events.consume("ch", "c", limit=2)
        seen += _seqs(batch)
        small.events.ack("ch", "c", batch[-1].seq)
    while batch := small.events.consume("ch", "c", limit=2):
        seen += _seqs(batch)
        small.events.ack("ch", "c", batch[-1].seq)
    assert seen == list(range(1, 26))


# -- follow -------------------------------------------------------------------------------------
def test_follow_yields_backlog_then_new_events(coord: Coordinator) -> None:
    coord.events.emit("ch", "before")
    got: list[str] = []
    done = threading.Event()

    def reader() -> None:
        for event in coord.events.follow("ch", since=0, timeout=10):
            got.append(event.type)
            if len(got) == 3:
                break
        done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    coord.events.emit("other", "noise")
    coord.events.emit("ch", "one")
    coord.events.emit("ch", "two")
    thread.join(30)
    assert done.is_set()
    assert got == ["before", "one", "two"]


def test_follow_from_consumer_cursor_and_timeout_ends_it(coord: Coordinator) -> None:
    for _ in range(3):
        coord.events.emit("ch", "e")
    coord.events.ack("ch", "c", 2)
    got = list(coord.events.follow("ch", consumer="c", timeout=0.2))
    assert _seqs(got) == [3]
    # Nothing new and no since: only new events, and the timeout ends the (empty) stream.
    assert list(coord.events.follow("ch", timeout=0.1)) == []
    with pytest.raises(InvalidInput):
        coord.events.follow("ch", timeout=-1)


# -- the scenario, through the CLI --------------------------------------------------------
def _consume_cli(env: dict[str, str]) -> list[dict[str, object]]:
    proc = subprocess.run(
        [*COORD, "--json", "event", "tail", "ch", "--consumer", "reader", "-n", "7"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.slow
def test_three_processes_150_events_rotation_and_a_consumer(workspace: Workspace) -> None:
    env = coord_env(workspace.root)
    env["COORD_FSYNC"] = "0"
    root = Path(workspace.root)
    received: list[dict[str, object]] = []
    received += _consume_cli(env)  # before: nothing there yet
    assert received == []
    script = (
        'for i in $(seq 1 50); do "$0" -m agentcoord event emit ch step '
        'writer="$1" i="$i" || exit 1; done'
    )
    writers = [subprocess.Popen(["sh", "-c", script, COORD[0], f"w{w}"], env=env) for w in range(3)]
    try:
        while any(p.poll() is None for p in writers):  # during: rotation happens under us
            received += _consume_cli(env)
            time.sleep(0.1)  # leave the CPUs to the writers
    finally:
        for p in writers:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=60)
    assert [p.returncode for p in writers] == [0, 0, 0]
    while batch := _consume_cli(env):  # after
        received += batch

    seqs = [int(str(e["seq"])) for e in received]
    assert seqs == list(range(1, 151))  # every event exactly once, in order
    assert all({"seq", "type", "time"} <= e.keys() for e in received)
    per_writer = {}
    for e in received:
        fields = e["fields"]
        assert isinstance(fields, dict)
        per_writer.setdefault(fields["writer"], []).append(int(fields["i"]))
    assert per_writer == {f"w{w}": list(range(1, 51)) for w in range(3)}

    live = root / "events-ch.md"
    count = subprocess.run(
        ["grep", "-c", "^## Event:", str(live)], capture_output=True, text=True, check=False
    )
    assert count.stdout.strip() == "100"
    archives = sorted((root / "archive").glob("events-ch-*.md"))
    assert archives and all(
        re.fullmatch(r"events-ch-\d{4}-\d{2}-\d{2}\.md", a.name) for a in archives
    )
    archived = sum(a.read_text().count("\n## Event:") for a in archives)
    assert archived == 50
    all_seqs = re.findall(r"^\*\*Seq\*\*: (\d+)$", live.read_text(), re.MULTILINE)
    for a in archives:
        all_seqs += re.findall(r"^\*\*Seq\*\*: (\d+)$", a.read_text(), re.MULTILINE)
    assert sorted(int(s) for s in all_seqs) == list(range(1, 151))
