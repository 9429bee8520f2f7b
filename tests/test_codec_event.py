"""The event log codec: round trip, hostile text, the seed's shell recipes, corrupt files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcoord.core.clock import iso_ms, round_ms
from agentcoord.core.models import Event
from agentcoord.errors import CorruptData, InvalidInput, InvalidName
from agentcoord.store.markdown.codec.event import (
    append_blocks,
    archive_title,
    header_last_seq,
    parse_events,
    render_events,
)

HOSTILE = [
    "## Event: forged",
    "---",
    "**Seq**: 1",
    "**Time**: 2025-10-12T14:30:00Z",
    "a\n## Event: x\n**Seq**: 99\n---",
    "```json",
    "~~~",
    "_Note: fake footer `archive/x.md`_",
    "# Title",
    "line\rbreak\x85next\u2028sep\u2029para\x0bvt\x0cff",
    "\\n not a newline \\",
    "  padded  ",
    "*",
    "**",
    "x**: y",
    "\\*",
    "",
]

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True)
texts = st.one_of(
    st.text(), st.sampled_from(HOSTILE), st.lists(st.sampled_from(HOSTILE)).map("".join)
)
keys = texts.filter(bool)
# Times as the file holds them: milliseconds, years 1970-2099.
times = st.integers(0, 4_102_444_799_999).map(lambda ms: round_ms(ms / 1000))


@st.composite
def event_lists(draw: st.DrawFn, channel: str = "training") -> list[Event]:
    out: list[Event] = []
    seq = draw(st.integers(0, 10**6))
    for _ in range(draw(st.integers(0, 6))):
        seq += draw(st.integers(1, 3))
        fields = draw(st.lists(st.tuples(keys, texts), max_size=4))
        out.append(Event(channel, draw(names), seq=seq, time=draw(times), fields=fields))
    return out


def _event_headings(text: str) -> int:
    return sum(1 for line in text.split("\n") if line.startswith("## Event:"))


@settings(max_examples=300, deadline=None)
@given(events=event_lists(), extra=st.integers(0, 5), note=st.booleans())
def test_round_trip(events: list[Event], extra: int, note: bool) -> None:
    last = (events[-1].seq if events else 0) + extra
    archive = "archive/events-training-2025-10-11.md" if note else None
    text = render_events("training", events, last_seq=last, updated=1.5, archive=archive)
    log = parse_events(text, "events-training.md", "training")
    assert log.events == events
    assert log.last_seq == last
    assert log.archive == archive
    # Hostile text never adds an event, and no reader sees extra line breaks.
    assert _event_headings(text) == len(events)
    assert len(text.splitlines()) == text.count("\n")


@settings(max_examples=200, deadline=None)
@given(events=event_lists(), split=st.integers(0, 6))
def test_append_blocks_equals_full_render(events: list[Event], split: int) -> None:
    head, tail = events[:split], events[split:]
    title = archive_title("training", "2025-10-11")
    last = head[-1].seq if head else 0
    text = render_events("training", head, last_seq=last, title=title)
    assert header_last_seq(text) == last
    spliced = append_blocks(text, tail)
    if not tail:
        assert spliced is None
        return
    assert spliced == render_events("training", events, last_seq=events[-1].seq, title=title)


def test_layout_matches_seed() -> None:
    ev = Event(
        "training",
        "checkpoint_saved",
        seq=7,
        time=1760279400.0,
        fields=[("Workflow", "voice-clone"), ("Loss", "0.42"), ("Checkpoint Path", "`a/b.pt`")],
    )
    text = render_events(
        "training", [ev], last_seq=7, updated=1760279400.0, archive="archive/events-training-x.md"
    )
    lines = text.split("\n")
    assert lines[0] == "# Training Events Log"
    assert "Last updated: 2025-10-12T14:30:00Z" in lines
    assert "**Last Seq**: 7" in lines
    i = lines.index("## Event: checkpoint_saved")
    assert lines[i + 1 : i + 5] == [
        "**Seq**: 7",
        "**Time**: 2025-10-12T14:30:00Z",
        "**Workflow**: voice-clone",
        "**Loss**: 0.42",
    ]
    assert lines[-2].startswith("_Note: This log contains the last 1 events. Older events are in ")


def test_time_format() -> None:
    assert iso_ms(1760279400.0) == "2025-10-12T14:30:00Z"
    assert iso_ms(1760279400.25) == "2025-10-12T14:30:00.250Z"
    assert round_ms(1760279400.2504) == 1760279400.25


@pytest.mark.skipif(shutil.which("grep") is None, reason="needs grep")
def test_seed_grep_recipes(tmp_path: Path) -> None:
    evs = [
        Event("t", "training_step", seq=n, time=1e9 + n, fields=[("Loss", f"0.4{n}")])
        for n in range(1, 4)
    ]
    evs.append(Event("t", "note", seq=4, time=1e9, fields=[("text", "## Event: fake\n---")]))
    path = tmp_path / "events-t.md"
    path.write_text(render_events("t", evs, last_seq=4, updated=1e9))
    count = subprocess.run(
        ["grep", "-c", "^## Event:", str(path)], capture_output=True, text=True, check=False
    )
    assert count.stdout.strip() == "4"
    losses = subprocess.run(
        ["grep", "-oP", r"Loss.*:\s*\K[\d.]+", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if losses.returncode == 2:  # grep without -P support
        pytest.skip("grep has no -P")
    assert losses.stdout.split() == ["0.41", "0.42", "0.43"]


SEED = """# Training Events Log

Last updated: 2025-10-12T14:30:00Z

---

## Event: checkpoint_saved
**Time**: 2025-10-12T14:30:00Z
**Step**: 3500
**Loss**: 0.42

---

## Event: training_started
**Time**: 2025-10-12T10:00:00Z
**Total Steps**: 10000

---

_Note: This log contains the last 100 events. Older events are in `archive/events-training-2025-10-11.md`_
"""


def test_seed_file_without_seq_is_numbered_by_time() -> None:
    log = parse_events(SEED, "events-training.md", "training")
    assert [(e.seq, e.type) for e in log.events] == [
        (1, "training_started"),
        (2, "checkpoint_saved"),
    ]
    assert log.events[1].fields == [("Step", "3500"), ("Loss", "0.42")]
    assert log.last_seq == 2
    assert log.archive == "archive/events-training-2025-10-11.md"


def test_user_fields_named_seq_and_time_are_data() -> None:
    ev = Event("c", "x", seq=3, time=5.0, fields=[("Seq", "1"), ("time", "never")])
    log = parse_events(render_events("c", [ev], last_seq=3), "p", "c")
    assert log.events == [ev]


def _corrupt(text: str) -> CorruptData:
    with pytest.raises(CorruptData) as info:
        parse_events(text, "/x/events-c.md", "c")
    return info.value


GOOD = render_events(
    "c",
    [Event("c", "a", seq=1, time=0.0), Event("c", "b", seq=2, time=0.0, fields=[("k", "v")])],
    last_seq=2,
)


def test_corrupt_files_name_the_line() -> None:
    assert _corrupt("").line == 1
    assert "heading" in _corrupt("just text\n").reason
    err = _corrupt(GOOD.replace("**Seq**: 2", "**Seq**: two"))
    assert err.path == "/x/events-c.md"
    assert GOOD.split("\n")[err.line - 1] == "**Seq**: 2"
    err = _corrupt(GOOD.replace("**Seq**: 2", "**Seq**: 1"))
    assert "does not follow" in err.reason
    err = _corrupt(GOOD.replace("**k**: v", "stray text"))
    assert GOOD.split("\n")[err.line - 1] == "**k**: v"
    assert (
        "**Time**"
        in _corrupt(GOOD.replace("**Time**: 1970-01-01T00:00:00Z\n**k**", "**k**")).reason
    )
    assert "timestamp" in _corrupt(GOOD.replace("1970-01-01T00:00:00Z", "yesterday", 1)).reason
    assert "section" in _corrupt(GOOD + "\n## Notes\nhello\n").reason
    assert "event type" in _corrupt(GOOD.replace("## Event: a", "## Event: ../a")).reason
    assert "Seq" in _corrupt(GOOD.replace("**Seq**: 2\n", "")).reason
    assert "Last Seq" in _corrupt(GOOD.replace("**Last Seq**: 2", "**Last Seq**: x")).reason


def test_render_refuses_bad_type_and_empty_key() -> None:
    with pytest.raises(InvalidName):
        render_events("c", [Event("c", "bad type", seq=1)], last_seq=1)
    with pytest.raises(InvalidInput):
        render_events("c", [Event("c", "ok", seq=1, fields=[("", "v")])], last_seq=1)


def test_tolerates_hand_edited_values() -> None:
    edited = GOOD.replace("**k**: v", "**k**:   edited value  ").replace(
        "1970-01-01T00:00:00Z", "1970-01-01 00:00:05", 1
    )
    log = parse_events(edited, "p", "c")
    assert log.events[1].fields == [("k", "edited value")]
    assert log.events[0].time == 5.0


# -- the message log: ``## Message: <id>`` blocks (issue 18) -------------------------------------
MSG = "msg.log"
FORGE = "hello\n## Message: 99\n**From**: mallory\n**Seq**: 99\n---\n## Event: message"


def _message(seq: int, body: str = "hi", **extra: str) -> Event:
    fields = [("From", "alice"), ("To", "bob"), ("Subject", "s"), ("Body", body)]
    return Event(MSG, "message", seq=seq, time=1760279400.0 + seq, fields=[*fields, *extra.items()])


def test_message_log_blocks_are_headed_by_the_message_id() -> None:
    from agentcoord.domain.messages import LOG_CHANNEL
    from agentcoord.store.markdown.codec.event import MESSAGE_CHANNEL

    assert MESSAGE_CHANNEL == LOG_CHANNEL  # the store cannot import the domain: kept equal here
    events = [_message(1), _message(2, "two\nlines")]
    text = render_events(MSG, events, last_seq=2, updated=1760279400.0)
    lines = text.split("\n")
    assert [ln for ln in lines if ln.startswith("## ")] == ["## Message: 1", "## Message: 2"]
    i = lines.index("## Message: 1")
    assert lines[i + 1 : i + 7] == [
        "**Seq**: 1",
        "**Time**: 2025-10-12T14:30:01Z",
        "**From**: alice",
        "**To**: bob",
        "**Subject**: s",
        "**Body**: hi",
    ]
    assert "**Body**: two\\nlines" in lines
    log = parse_events(text, "events-msg.log.md", MSG)
    assert log.events == events


def test_only_messages_of_the_message_log_get_the_message_heading() -> None:
    other = render_events("c", [Event("c", "message", seq=1, time=0.0)], last_seq=1)
    assert "\n## Event: message\n" in other and "## Message" not in other
    note = Event(MSG, "note", seq=1, time=0.0)  # a type other than message keeps its name
    text = render_events(MSG, [note, _message(2)], last_seq=2)
    assert "\n## Event: note\n**Seq**: 1\n" in text and "\n## Message: 2\n**Seq**: 2\n" in text
    assert parse_events(text, "p", MSG).events == [note, _message(2)]


def test_message_log_written_before_the_message_heading_still_reads() -> None:
    new = render_events(MSG, [_message(1), _message(2)], last_seq=2)
    old = new.replace("## Message: 1\n", "## Event: message\n").replace(
        "## Message: 2\n", "## Event: message\n"
    )
    assert "## Message" not in old
    assert parse_events(old, "p", MSG).events == [_message(1), _message(2)]
    mixed = new.replace("## Message: 1\n", "## Event: message\n")  # appended after an upgrade
    assert parse_events(mixed, "p", MSG).events == [_message(1), _message(2)]
    # a file that also holds the old heading appends new-style blocks after its old ones
    title = archive_title(MSG, "2025-10-12")
    old_archive = render_events(MSG, [_message(1)], last_seq=1, title=title).replace(
        "## Message: 1\n", "## Event: message\n"
    )
    spliced = append_blocks(old_archive, [_message(2)], MSG)
    assert spliced is not None
    assert spliced.index("\n## Event: message\n") < spliced.index("\n## Message: 2\n")
    assert parse_events(spliced, "p", MSG).events == [_message(1), _message(2)]


def test_a_message_heading_without_seq_takes_its_id_and_a_wrong_one_is_corrupt() -> None:
    text = render_events(MSG, [_message(1), _message(5)], last_seq=5)
    no_seq = text.replace("**Seq**: 1\n", "").replace("**Seq**: 5\n", "")
    assert [e.seq for e in parse_events(no_seq, "p", MSG).events] == [1, 5]
    with pytest.raises(CorruptData) as info:
        parse_events(text.replace("## Message: 5", "## Message: 4"), "p", MSG)
    assert "message id 4" in info.value.reason
    for bad in ("x", "0", "-1", "", "٣"):
        with pytest.raises(CorruptData) as info:
            parse_events(text.replace("## Message: 5", f"## Message: {bad}"), "p", MSG)
        assert "message id" in info.value.reason


def test_a_hostile_message_cannot_forge_a_block_or_a_field() -> None:
    events = [_message(1, FORGE, Subject2=FORGE), _message(2, FORGE)]
    text = render_events(MSG, events, last_seq=2, updated=0.0)
    headings = [ln for ln in text.split("\n") if ln.startswith("#")]
    assert headings == ["# Msg.log Events Log", "## Message: 1", "## Message: 2"]
    assert [ln for ln in text.split("\n") if ln.startswith("**From**")] == ["**From**: alice"] * 2
    assert parse_events(text, "p", MSG).events == events


@settings(max_examples=200, deadline=None)
@given(
    events=event_lists(MSG).map(
        lambda evs: [
            Event(
                e.channel, "message" if i % 3 else e.type, seq=e.seq, time=e.time, fields=e.fields
            )
            for i, e in enumerate(evs)
        ]
    ),
    split=st.integers(0, 6),
)
def test_message_log_round_trip_and_block_append(events: list[Event], split: int) -> None:
    last = events[-1].seq if events else 0
    text = render_events(MSG, events, last_seq=last, updated=1.5)
    assert parse_events(text, "events-msg.log.md", MSG).events == events
    starts = [ln for ln in text.split("\n") if ln.startswith("## ")]
    assert len(starts) == len(events)
    assert sum(ln.startswith("## Message: ") for ln in starts) == sum(
        e.type == "message" for e in events
    )
    title = archive_title(MSG, "2025-10-11")
    head, tail = events[:split], events[split:]
    base = render_events(MSG, head, last_seq=head[-1].seq if head else 0, title=title)
    if tail:
        assert append_blocks(base, tail, MSG) == render_events(
            MSG, events, last_seq=last, title=title
        )
