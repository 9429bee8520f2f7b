"""Event logs, rotation and consumer cursors for the markdown backend.

``events-{channel}.md`` holds the newest ``keep`` events in append order, under the channel's lock
(``.locks/events-{channel}.lock``). Rotation happens inside :meth:`EventLogs.append_events`: the
oldest events are appended to ``archive/events-{channel}-{YYYY-MM-DD}.md`` (see
:mod:`.archive`: append-only files, read by bisection). The archive is written *before* the live
file is shortened, so a crash in between can only leave an event in both places, never in
neither; readers and later rotations drop such duplicates by ``seq``. The live file's
``**Last Seq**`` header keeps sequence numbers growing across rotation.

Cursors live in ``.state/cursors-{channel}.json`` (``{"consumer": seq}``), changed under
``.locks/cursors-{channel}.lock`` and never moved backwards.
"""

from __future__ import annotations

import json
import re

from ...core.clock import round_ms
from ...core.validate import check_name, is_valid_name
from ...errors import CorruptData
from ...fs import ensure_dir, read_text
from ..base import Store
from .archive import Archive
from .directory import STATE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ...core.models import Event
    from .codec.event import EventLog
    from .directory import Directory

_LIVE = re.compile(r"events-(.+)\.md")
_check_count = Store.check_count


class EventLogs:
    """The event logs and cursors of a coordination directory (the event half of
    :class:`~agentcoord.store.markdown.store.MarkdownStore`)."""

    def __init__(self, directory: Directory) -> None:
        self.d = directory
        self.archive = Archive(directory)

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
        from ...core.models import Event
        from .codec.event import EventLog, render_events

        Store.check_events(channel, events, keep)
        if not events:
            return []
        with self.d.lock(f"events-{channel}"):
            if not explicit:
                fast = self._append_blocks(channel, events, keep)
                if fast is not None:
                    return fast
            log = self._live(channel)
            if log is None:  # a deleted live file must not restart the numbering
                log = EventLog([], self.archive.last_seq(channel))
            if explicit:
                Store.check_import_seqs(channel, log.last_seq, events)
            now = self.d.clock()
            seq = log.last_seq
            added: list[Event] = []
            for event in events:
                seq = event.seq if explicit else seq + 1
                stamp = round_ms(event.time or now)
                added.append(
                    Event(channel, event.type, seq=seq, time=stamp, fields=list(event.fields))
                )
            live = log.events + added
            old = live[: len(live) - keep] if len(live) > keep else []
            live = live[len(old) :]
            # The archive first: a crash in between duplicates, never loses.
            note = self.archive.append(channel, old) if old else log.archive
            text = render_events(channel, live, last_seq=seq, updated=now, archive=note)
            self.d.write(f"events-{channel}.md", text)
        return added

    def rotate_events(self, channel: str, *, keep: int, dry_run: bool = False) -> int:
        from .codec.event import render_events

        check_name(channel, "channel")
        _check_count(keep, "keep")
        with self.d.lock(f"events-{channel}"):
            log = self._live(channel)
            if log is None or len(log.events) <= keep:
                return 0
            old = log.events[: len(log.events) - keep]
            if dry_run:
                return len(old)
            live = log.events[len(old) :]
            note = self.archive.append(channel, old)  # first: a crash duplicates, never loses
            text = render_events(
                channel, live, last_seq=log.last_seq, updated=self.d.clock(), archive=note
            )
            self.d.write(f"events-{channel}.md", text)
            return len(old)

    def _append_blocks(self, channel: str, events: list[Event], keep: int) -> list[Event] | None:
        """The common append, by block edits (see :mod:`.codec.event_blocks`): only the blocks
        that rotate out are parsed. None when the file is absent or not in the shape
        this module writes; the caller then takes the full path."""
        from ...core.models import Event
        from .codec.event import parse_events
        from .codec.event_blocks import LiveBlocks

        path = self.d.path(f"events-{channel}.md")
        text = read_text(path)
        live = LiveBlocks.split(text) if text is not None else None
        if live is None:
            return None
        now = self.d.clock()
        added = [
            Event(
                channel,
                e.type,
                seq=live.last_seq + i,
                time=round_ms(e.time or now),
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
        note = self.archive.append(channel, old) if old else None  # first: see rotate_events
        new_text = live.render(channel, added, drop, now, note)
        self.d.write(f"events-{channel}.md", new_text)
        return added

    # -- reading ----------------------------------------------------------------------------
    def _live(self, channel: str) -> EventLog | None:
        from .codec.event import parse_events

        path = self.d.path(f"events-{channel}.md")
        text = read_text(path)
        return None if text is None else parse_events(text, path, channel)

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
            merged = {e.seq: e for e in self.archive.read(channel, after, limit)}
            for event in live:
                if event.seq > after:
                    merged.setdefault(event.seq, event)
            out = [merged[s] for s in sorted(merged)]
        return out if limit is None else out[:limit]

    def _read_recent(self, channel: str, after: int) -> list[Event] | None:
        """Events after ``after`` when the live file still holds all of them, parsing only
        those blocks (a follower's wake-up); None to take the full path."""
        from bisect import bisect_right

        from .codec.event import parse_events
        from .codec.event_blocks import LiveBlocks

        path = self.d.path(f"events-{channel}.md")
        text = read_text(path)
        live = LiveBlocks.split(text) if text is not None else None
        if live is None or after < (live.seqs[0] - 1 if live.seqs else live.last_seq):
            return None
        fresh = live.blocks[bisect_right(live.seqs, after) :]
        return parse_events(live.mini_log(fresh), path, channel).events if fresh else []

    def last_seq(self, channel: str) -> int:
        check_name(channel, "channel")
        log = self._live(channel)
        return log.last_seq if log is not None else self.archive.last_seq(channel)

    def list_channels(self) -> list[str]:
        """Channels with a live file or an archive file (a live file deleted by hand). A FIFO or
        a link under a live file's name counts, as a corrupt file does: its reader reports it
        (exit 6 naming it), never "no such channel" (SPEC section 16)."""
        found = {m.group(1) for m in map(_LIVE.fullmatch, self.d.names(regular=False)) if m}
        return sorted({c for c in found if is_valid_name(c)} | self.archive.channels())

    def live_event_count(self, channel: str) -> int:
        check_name(channel, "channel")
        log = self._live(channel)
        return 0 if log is None else len(log.events)

    def raise_last_seq(self, channel: str, seq: int) -> int:
        """Rewrite the live file's ``**Last Seq**`` to at least ``seq`` (creating the file)."""
        from .codec.event import EventLog, render_events

        check_name(channel, "channel")
        _check_count(seq, "seq")
        with self.d.lock(f"events-{channel}"):
            log = self._live(channel) or EventLog([], self.archive.last_seq(channel))
            if log.last_seq >= seq:
                return log.last_seq
            text = render_events(
                channel, log.events, last_seq=seq, updated=self.d.clock(), archive=log.archive
            )
            self.d.write(f"events-{channel}.md", text)
            return seq

    # -- cursors ----------------------------------------------------------------------------
    def _cursor_name(self, channel: str) -> str:
        return f"{STATE}/cursors-{channel}.json"

    def _cursors(self, channel: str) -> dict[str, int]:
        path = self.d.path(self._cursor_name(channel))
        text = read_text(path)
        if text is None or not text.strip():
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CorruptData(path, exc.lineno, f"cursor file is not json: {exc.msg}") from None
        except (ValueError, RecursionError) as exc:
            raise CorruptData(path, 1, f"cursor file is not json: {exc}") from None
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
        ensure_dir(self.d.path(STATE))
        with self.d.lock(f"cursors-{channel}"):
            cursors = self._cursors(channel)
            current = cursors.get(consumer, 0)
            if seq <= current:
                return current
            cursors[consumer] = seq
            self.d.write(
                self._cursor_name(channel), json.dumps(cursors, indent=2, sort_keys=True) + "\n"
            )
            return seq

    def reset_cursor(self, channel: str, consumer: str, seq: int) -> int:
        check_name(channel, "channel")
        check_name(consumer, "consumer")
        _check_count(seq, "seq")
        ensure_dir(self.d.path(STATE))
        with self.d.lock(f"cursors-{channel}"):
            cursors = self._cursors(channel)
            cursors[consumer] = seq
            self.d.write(
                self._cursor_name(channel), json.dumps(cursors, indent=2, sort_keys=True) + "\n"
            )
            return seq

    def list_cursors(self, *, errors: list[CorruptData] | None = None) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for file in self.d.names(STATE, regular=False):  # a planted FIFO is reported
            channel = file[len("cursors-") : -len(".json")]
            if not (file.startswith("cursors-") and file.endswith(".json")):
                continue
            if not is_valid_name(channel):
                continue
            try:
                cursors = self._cursors(channel)
            except CorruptData as exc:
                if errors is None:
                    raise
                errors.append(exc)
                continue
            bad = [c for c in cursors if not is_valid_name(c)]
            if bad:
                path = self.d.path(self._cursor_name(channel))
                problem = CorruptData(path, 1, f"invalid consumer name {bad[0]!r}")
                if errors is None:
                    raise problem
                errors.append(problem)
                continue
            if cursors:
                out[channel] = dict(sorted(cursors.items()))
        return out
