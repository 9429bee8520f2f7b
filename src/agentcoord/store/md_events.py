"""Event logs, rotation and consumer cursors for the markdown backend.

``events-{channel}.md`` holds the newest ``keep`` events in append order, under the channel's lock
(``.locks/events-{channel}.lock``). Rotation happens inside :meth:`EventFiles.append_events`: the
oldest events move to ``archive/events-{channel}-{YYYY-MM-DD}.md`` (the UTC date of each event's
own time). Archive files are written *before* the live file is shortened, each atomically, so a
crash in between can only leave an event in both places, never in neither; readers and later
rotations drop such duplicates by ``seq``. The live file's ``**Last Seq**`` header keeps sequence
numbers growing across rotation.

Cursors live in ``.state/cursors-{channel}.json`` (``{"consumer": seq}``), changed under
``.locks/cursors-{channel}.lock`` and never moved backwards.
"""

from __future__ import annotations

import json
import os
import re

from ..errors import CorruptData, InvalidInput
from ..names import check_name
from .fsutil import ensure_dir, read_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..codec.event import EventLog
    from ..models import Event
    from .fsutil import FileLock

ARCHIVE = "archive"
STATE = ".state"
_LIVE = re.compile(r"events-(.+)\.md")


def _check_count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{what} must be a whole number >= 0, not {value!r}", field=what)
    return value


class EventFiles:
    """Mixin for :class:`~agentcoord.store.markdown.MarkdownStore`: the event half of the Store."""

    if TYPE_CHECKING:
        root: str
        durable: bool
        clock: Callable[[], float]

        def path(self, name: str) -> str: ...
        def lock(self, name: str) -> FileLock: ...
        def write(self, name: str, text: str) -> None: ...

    # -- appending and rotation -------------------------------------------------------------
    def append_events(self, channel: str, events: list[Event], *, keep: int) -> list[Event]:
        return self._write_events(channel, events, keep=keep, explicit=False)

    def import_events(self, channel: str, events: list[Event], *, keep: int) -> list[Event]:
        """Append events *keeping their seq* (``coord migrate``): each must be larger than the
        channel's last seq and than the one before it, else :class:`InvalidInput`, nothing
        written. Gaps are allowed; later appends continue after the largest."""
        return self._write_events(channel, events, keep=keep, explicit=True)

    def _write_events(
        self, channel: str, events: list[Event], *, keep: int, explicit: bool
    ) -> list[Event]:
        from ..codec.event import EventLog, escape_key, norm_time, render_events
        from ..models import Event

        check_name(channel, "channel")
        _check_count(keep, "keep")
        for event in events:
            check_name(event.type, "event type")
            for key, _ in event.fields:
                escape_key(key)  # refuses an empty name before anything is touched
        if not events:
            return []
        with self.lock(f"events-{channel}"):
            if not explicit:
                fast = self._append_blocks(channel, events, keep)
                if fast is not None:
                    return fast
            log = self._live(channel)
            if log is None:  # a deleted live file must not restart the numbering
                log = EventLog([], self._archive_last_seq(channel))
            now = self.clock()
            seq = log.last_seq
            added: list[Event] = []
            for event in events:
                if explicit and event.seq <= seq:
                    raise InvalidInput(
                        f"imported events for channel {channel!r} must have increasing seqs "
                        f"above {log.last_seq}; got {event.seq} after {seq}"
                    )
                seq = event.seq if explicit else seq + 1
                stamp = norm_time(event.time or now)
                added.append(
                    Event(channel, event.type, seq=seq, time=stamp, fields=list(event.fields))
                )
            live = log.events + added
            old = live[: len(live) - keep] if len(live) > keep else []
            live = live[len(old) :]
            note = self._archive_name(channel, old[-1].time) if old else log.archive
            text = render_events(channel, live, last_seq=seq, updated=now, archive=note)
            if old:
                self._archive_events(channel, old)
            self.write(f"events-{channel}.md", text)
        return added

    def rotate_events(self, channel: str, *, keep: int, dry_run: bool = False) -> int:
        from ..codec.event import render_events

        check_name(channel, "channel")
        _check_count(keep, "keep")
        with self.lock(f"events-{channel}"):
            log = self._live(channel)
            if log is None or len(log.events) <= keep:
                return 0
            old = log.events[: len(log.events) - keep]
            if dry_run:
                return len(old)
            live = log.events[len(old) :]
            note = self._archive_name(channel, old[-1].time)
            text = render_events(
                channel, live, last_seq=log.last_seq, updated=self.clock(), archive=note
            )
            self._archive_events(channel, old)  # archive first: a crash duplicates, never loses
            self.write(f"events-{channel}.md", text)
            return len(old)

    def _append_blocks(self, channel: str, events: list[Event], keep: int) -> list[Event] | None:
        """The common append, by block edits (see :mod:`agentcoord.codec.event_blocks`): only
        the blocks that rotate out are parsed. None when the file is absent or not in the shape
        this module writes; the caller then takes the full path."""
        from ..codec.event import norm_time, parse_events
        from ..codec.event_blocks import LiveBlocks
        from ..models import Event

        path = self.path(f"events-{channel}.md")
        text = read_text(path)
        live = LiveBlocks.split(text) if text is not None else None
        if live is None:
            return None
        now = self.clock()
        added = [
            Event(
                channel,
                e.type,
                seq=live.last_seq + i,
                time=norm_time(e.time or now),
                fields=list(e.fields),
            )
            for i, e in enumerate(events, start=1)
        ]
        drop = max(0, len(live.blocks) + len(added) - keep)
        from_file = min(drop, len(live.blocks))
        old: list[Event] = []
        if from_file:
            old = parse_events(live.mini_log(live.blocks[:from_file]), path, channel).events
        old += added[: drop - from_file]
        note = self._archive_name(channel, old[-1].time) if old else None
        new_text = live.render(added, drop, now, note)
        if old:
            self._archive_events(channel, old)  # archive first: a crash duplicates, never loses
        self.write(f"events-{channel}.md", new_text)
        return added

    def _archive_name(self, channel: str, when: float) -> str:
        from ..codec.event import day_of

        return f"{ARCHIVE}/events-{channel}-{day_of(when)}.md"

    def _archive_events(self, channel: str, events: list[Event]) -> None:
        """Append ``events`` (in seq order) to their dates' archive files, skipping any that a
        rotation interrupted by a crash already wrote there."""
        from ..codec.event import (
            append_blocks,
            archive_title,
            day_of,
            header_last_seq,
            parse_events,
            render_events,
        )

        by_day: dict[str, list[Event]] = {}
        for event in events:
            by_day.setdefault(day_of(event.time), []).append(event)
        ensure_dir(self.path(ARCHIVE))
        for day, batch in by_day.items():
            name = self._archive_name(channel, batch[0].time)
            path = self.path(name)
            text = read_text(path)
            if text is None:
                title = archive_title(channel, day)
                self.write(name, render_events(channel, batch, last_seq=batch[-1].seq, title=title))
                continue
            prev = header_last_seq(text)
            parsed = None
            if prev is None:
                parsed = parse_events(text, path, channel)  # unreadable: reported, not replaced
                prev = parsed.last_seq
            fresh = [e for e in batch if e.seq > prev]
            if not fresh:
                continue
            new = append_blocks(text, fresh)
            if new is None:
                parsed = parsed or parse_events(text, path, channel)
                new = render_events(
                    channel,
                    parsed.events + fresh,
                    last_seq=fresh[-1].seq,
                    title=archive_title(channel, day),
                )
            self.write(name, new)

    # -- reading ----------------------------------------------------------------------------
    def _live(self, channel: str) -> EventLog | None:
        from ..codec.event import parse_events

        path = self.path(f"events-{channel}.md")
        text = read_text(path)
        return None if text is None else parse_events(text, path, channel)

    def _archive_files(self, channel: str) -> list[str]:
        pattern = re.compile(rf"events-{re.escape(channel)}-\d{{4}}-\d{{2}}-\d{{2}}\.md")
        try:
            with os.scandir(self.path(ARCHIVE)) as entries:
                names = [e.name for e in entries if pattern.fullmatch(e.name)]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [os.path.join(self.path(ARCHIVE), n) for n in sorted(names)]

    def _archive_last_seq(self, channel: str) -> int:
        from ..codec.event import header_last_seq, parse_events

        last = 0
        for path in self._archive_files(channel):
            text = read_text(path) or ""
            seq = header_last_seq(text)
            if seq is None:
                seq = parse_events(text, path, channel).last_seq
            last = max(last, seq)
        return last

    def _read_archive(self, channel: str, after: int) -> list[Event]:
        from ..codec.event import header_last_seq, parse_events

        out: list[Event] = []
        for path in self._archive_files(channel):
            text = read_text(path)
            if text is None:
                continue
            last = header_last_seq(text)
            if last is not None and last <= after:  # nothing new in there: skip the parse
                continue
            out.extend(e for e in parse_events(text, path, channel).events if e.seq > after)
        return out

    def read_events(self, channel: str, *, after: int = 0, limit: int | None = None) -> list[Event]:
        check_name(channel, "channel")
        _check_count(after, "after")
        if limit is not None:
            _check_count(limit, "limit")
        # The live file first: whatever rotated out of it before this read is already in the
        # archive (archives are written before the live file is shortened).
        recent = self._read_recent(channel, after)
        if recent is not None:
            return recent if limit is None else recent[:limit]
        log = self._live(channel)
        live = log.events if log is not None else []
        if log is not None and (after >= live[0].seq - 1 if live else after >= log.last_seq):
            out = [e for e in live if e.seq > after]
        else:
            merged = {e.seq: e for e in self._read_archive(channel, after)}
            for event in live:
                if event.seq > after:
                    merged.setdefault(event.seq, event)
            out = [merged[s] for s in sorted(merged)]
        return out if limit is None else out[:limit]

    def _read_recent(self, channel: str, after: int) -> list[Event] | None:
        """Events after ``after`` when the live file still holds all of them, parsing only
        those blocks (a follower's wake-up); None to take the full path."""
        from bisect import bisect_right

        from ..codec.event import parse_events
        from ..codec.event_blocks import LiveBlocks

        path = self.path(f"events-{channel}.md")
        text = read_text(path)
        live = LiveBlocks.split(text) if text is not None else None
        if live is None or after < (live.seqs[0] - 1 if live.seqs else live.last_seq):
            return None
        fresh = live.blocks[bisect_right(live.seqs, after) :]
        return parse_events(live.mini_log(fresh), path, channel).events if fresh else []

    def last_seq(self, channel: str) -> int:
        check_name(channel, "channel")
        log = self._live(channel)
        return log.last_seq if log is not None else self._archive_last_seq(channel)

    def list_channels(self) -> list[str]:
        from ..names import is_valid_name

        try:
            with os.scandir(self.root) as entries:
                names = [e.name for e in entries]
        except FileNotFoundError:
            return []
        found = (_LIVE.fullmatch(n) for n in names)
        return sorted(m.group(1) for m in found if m and is_valid_name(m.group(1)))

    # -- cursors ----------------------------------------------------------------------------
    def _cursor_name(self, channel: str) -> str:
        return f"{STATE}/cursors-{channel}.json"

    def _cursors(self, channel: str) -> dict[str, int]:
        path = self.path(self._cursor_name(channel))
        text = read_text(path)
        if text is None or not text.strip():
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CorruptData(path, exc.lineno, f"cursor file is not json: {exc.msg}") from None
        if not isinstance(data, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in data.values()
        ):
            raise CorruptData(path, 1, 'cursor file must map consumer names to seqs: {"name": 42}')
        return data

    def get_cursor(self, channel: str, consumer: str) -> int:
        check_name(channel, "channel")
        check_name(consumer, "consumer")
        return self._cursors(channel).get(consumer, 0)

    def advance_cursor(self, channel: str, consumer: str, seq: int) -> int:
        check_name(channel, "channel")
        check_name(consumer, "consumer")
        _check_count(seq, "seq")
        ensure_dir(self.path(STATE))
        with self.lock(f"cursors-{channel}"):
            cursors = self._cursors(channel)
            current = cursors.get(consumer, 0)
            if seq <= current:
                return current
            cursors[consumer] = seq
            self.write(
                self._cursor_name(channel), json.dumps(cursors, indent=2, sort_keys=True) + "\n"
            )
            return seq
