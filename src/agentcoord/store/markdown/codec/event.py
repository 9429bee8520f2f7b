"""``events-{channel}.md`` and its archives: the seed's "Event Log File Format", in append order.

Layout (oldest event first, so the seed's cursor recipe and ``tail`` see new events at the end)::

    # Training Events Log

    Last updated: 2025-10-12T14:30:00Z
    **Last Seq**: 4

    ---

    ## Event: checkpoint_saved
    **Seq**: 4
    **Time**: 2025-10-12T14:30:00Z
    **Loss**: 0.42

    ---

    _Note: This log contains the last 100 events. Older events are in `archive/...`_

The message log (:data:`MESSAGE_CHANNEL`, ``msg.log``) heads each message with its id, the way
the seed heads its message blocks (``## Message: 12`` instead of ``## Event: message``), still
followed by ``**Seq**: 12`` and ``**Time**``, so every reader (the block splitter, the archive's
bisection) sees the same shape; both headings are read on every channel, so files written
before the message heading existed still read.

``**Last Seq**`` survives rotation, so sequence numbers never repeat. Keys and values are escaped
with :func:`escape_line` (and ``*`` in keys, which would end the ``**Key**`` markup), so no text can
forge an event, a field or a separator. Times are written with millisecond precision when they
have a fraction; :func:`round_ms` is the value a time reads back as.
"""

from __future__ import annotations

import re
import time

from ....core.clock import iso_ms, parse_iso
from ....core.models import Event
from ....core.validate import check_name, is_valid_name
from ....errors import InvalidInput
from .text import _FIELD, Doc, escape_line, parse_doc, parse_int, unescape_line

_NOTE = re.compile(r"^_Note:.*Older events are in `([^`]*)`", re.MULTILINE)
_HEADER_LAST_SEQ = re.compile(r"^\*\*Last Seq\*\*:[ \t]*(\d+)[ \t]*$", re.MULTILINE)

#: The channel whose ``message`` events are written as ``## Message: <id>`` blocks (the
#: domain's ``messages.LOG_CHANNEL``; the store may not import the domain).
MESSAGE_CHANNEL = "msg.log"
MESSAGE_TYPE = "message"
#: The words a block's heading starts with (``## Event: <type>``, ``## Message: <id>``).
HEADINGS = ("Event", "Message")


class EventLog:
    """A parsed event file: its events (in seq order), the channel's last seq and the archive
    file the footer points to (live files only)."""

    __slots__ = ("archive", "events", "last_seq")

    def __init__(self, events: list[Event], last_seq: int, archive: str | None = None) -> None:
        self.events = events
        self.last_seq = last_seq
        self.archive = archive

    def __repr__(self) -> str:
        return f"EventLog({self.events!r}, last_seq={self.last_seq}, archive={self.archive!r})"


# -- time ----------------------------------------------------------------------------------------
def day_of(ts: float) -> str:
    """The UTC date an event belongs to for archiving (``YYYY-MM-DD``)."""
    return time.strftime("%Y-%m-%d", time.gmtime(round(ts * 1000) // 1000))


# -- rendering -----------------------------------------------------------------------------------
def escape_key(key: str) -> str:
    """Escape a field name: as a value, plus ``*`` (which would close the ``**`` markup)."""
    if not key:
        raise InvalidInput("event field names must not be empty", field="key")
    out = escape_line(key)
    if out.startswith("\\*"):  # the structural backslash is moot once "*" becomes \x2a
        out = out[1:]
    return out.replace("*", "\\x2a")


def _field_line(key: str, value: str) -> str:
    val = escape_line(value)
    return f"**{escape_key(key)}**: {val}" if val else f"**{escape_key(key)}**:"


def heading(channel: str, event: Event) -> str:
    """The block's heading line: ``## Message: <id>`` for a message of the message log,
    ``## Event: <type>`` for every other event."""
    if channel == MESSAGE_CHANNEL and event.type == MESSAGE_TYPE:
        return f"## Message: {event.seq}"
    return f"## Event: {event.type}"


def event_lines(event: Event, channel: str | None = None) -> list[str]:
    """One event block of ``channel`` (the event's own when omitted), preceded by a blank line
    and followed by ``---``."""
    check_name(event.type, "event type")
    out = [
        "",
        heading(event.channel if channel is None else channel, event),
        f"**Seq**: {event.seq}",
        f"**Time**: {iso_ms(event.time)}",
    ]
    out.extend(_field_line(k, v) for k, v in event.fields)
    out.extend(("", "---"))
    return out


def live_title(channel: str) -> str:
    return f"{channel[:1].upper()}{channel[1:]} Events Log"


def archive_title(channel: str, day: str) -> str:
    return f"{channel[:1].upper()}{channel[1:]} Events Archive {day}"


def render_events(
    channel: str,
    events: list[Event],
    *,
    last_seq: int,
    updated: float | None = None,
    archive: str | None = None,
    title: str | None = None,
) -> str:
    """Render a live log (``updated`` set, ``archive`` naming the newest archive file when older
    events exist) or, with ``title=archive_title(...)`` and no ``updated``, an archive file."""
    out = [f"# {title or live_title(channel)}", ""]
    if updated is not None:
        out.append(f"Last updated: {iso_ms(updated)}")
    out.extend((f"**Last Seq**: {last_seq}", "", "---"))
    for event in events:
        out.extend(event_lines(event, channel))
    if archive:
        out.append("")
        out.append(
            f"_Note: This log contains the last {len(events)} events. "
            f"Older events are in `{archive}`_"
        )
    out.append("")
    return "\n".join(out)


def header_last_seq(text: str) -> int | None:
    """The ``**Last Seq**`` header of a rendered file without parsing it (None if absent)."""
    head_end = text.find("\n## ")
    m = _HEADER_LAST_SEQ.search(text, 0, head_end if head_end >= 0 else len(text))
    return int(m.group(1)) if m else None


def append_blocks(text: str, events: list[Event], channel: str | None = None) -> str | None:
    """``text`` (an archive file without footer) with ``events`` appended and its ``**Last Seq**``
    moved to the last one, without re-parsing the whole file; ``None`` when the file is not in
    the shape this module writes (the caller then parses and re-renders it)."""
    head_end = text.find("\n## ")
    m = _HEADER_LAST_SEQ.search(text, 0, head_end if head_end >= 0 else len(text))
    body = text.rstrip("\n")
    if m is None or not events or not (body.endswith("\n---") or body == "---"):
        return None
    lines: list[str] = []
    for event in events:
        lines.extend(event_lines(event, channel))
    spliced = body[: m.start(1)] + str(events[-1].seq) + body[m.end(1) :]
    return spliced + "\n" + "\n".join(lines) + "\n"


# -- parsing -------------------------------------------------------------------------------------
def parse_events(text: str, path: str, channel: str) -> EventLog:
    """Parse a live or archive event file; :class:`CorruptData` names the line it cannot read."""
    doc = parse_doc(text, path)
    if doc.title is None or "events" not in doc.title.lower():
        raise doc.corrupt(1, "missing '# <Channel> Events Log' heading")
    events: list[Event] = []
    missing_seq: list[int] = []
    for section in doc.sections:
        event, heading_seq = _heading(doc, section.heading, section.line, channel)
        seq_line = time_line = 0
        for no, line in section.lines:
            stripped = line.strip()
            if not stripped or stripped == "---":
                continue
            if stripped.startswith("_Note:"):  # the footer (escaped text never starts with _)
                continue
            m = _FIELD.match(line)
            if m is None:
                raise doc.corrupt(no, "expected a '**Field**: value' line")
            # Raw surrounding blanks are a person's typing: rendered values escape their own.
            key, value = m.group(1).strip(), m.group(2).strip()
            # The renderer writes Seq and Time first: later fields of those names are the
            # event's own data.
            if not seq_line and key.lower() == "seq":
                event.seq, seq_line = parse_int(doc, value, no, "Seq"), no
                if event.seq < 1:
                    raise doc.corrupt(no, f"**Seq** must be positive, not {event.seq}")
            elif not time_line and key.lower() == "time":
                event.time, time_line = _parse_time(doc, value, no), no
            else:
                event.fields.append((unescape_line(key), unescape_line(value)))
        if not time_line:
            raise doc.corrupt(section.line, "event has no **Time**")
        if heading_seq and seq_line and event.seq != heading_seq:
            raise doc.corrupt(
                seq_line, f"**Seq** {event.seq} is not the heading's message id {heading_seq}"
            )
        if heading_seq and not seq_line:
            event.seq = heading_seq
        elif not seq_line:
            missing_seq.append(section.line)
        events.append(event)
    _check_order(doc, events, missing_seq)
    last = max((e.seq for e in events), default=0)
    header = doc.field("Last Seq")
    if header is not None:
        last = max(last, parse_int(doc, header[0], header[1], "Last Seq"))
    note = _NOTE.search(text)
    return EventLog(events, last, note.group(1) if note else None)


def _heading(doc: Doc, heading: str, line: int, channel: str) -> tuple[Event, int]:
    """The event a block heading starts and the message id it names (0 for ``## Event:``)."""
    word, colon, rest = heading.partition(":")
    word = word.strip().lower()
    if colon and word == "event":
        etype = rest.strip()
        if not is_valid_name(etype):
            raise doc.corrupt(line, f"invalid event type {etype!r}")
        return Event(channel, etype), 0
    if colon and word == "message":
        ident = rest.strip()
        if not (ident.isascii() and ident.isdigit()) or int(ident) < 1:
            raise doc.corrupt(line, f"invalid message id {ident!r} (want '## Message: <id>')")
        return Event(channel, MESSAGE_TYPE), int(ident)
    raise doc.corrupt(
        line, f"unexpected section {heading!r} (want '## Event: <type>' or '## Message: <id>')"
    )


def _parse_time(doc: Doc, value: str, line: int) -> float:
    try:
        return parse_iso(value)
    except ValueError:
        raise doc.corrupt(line, f"**Time** is not a timestamp: {value!r}") from None


def _check_order(doc: Doc, events: list[Event], missing_seq: list[int]) -> None:
    if missing_seq and len(missing_seq) < len(events):
        raise doc.corrupt(missing_seq[0], "event has no **Seq**")
    if missing_seq:
        # A log written by the seed's recipes (no Seq, often newest first): number it by time.
        events.sort(key=lambda e: e.time)
        for n, event in enumerate(events, start=1):
            event.seq = n
        return
    prev = 0
    for event, section in zip(events, doc.sections, strict=True):
        if event.seq <= prev:
            raise doc.corrupt(section.line, f"**Seq** {event.seq} does not follow {prev}")
        prev = event.seq
