"""Event channels: emit, tail, consumer cursors and live follow (SPEC section 4, issue 4).

Each channel is an append-only log with store-assigned sequence numbers (``**Seq**`` in
``events-{channel}.md``) that never repeat, also across rotation. Readers address events by seq,
never by position in a file, so rotation (which moves old events to the archive) is invisible
to them.

Consumers (``coord event tail --consumer NAME``) get **at-least-once, in-order** delivery:
:meth:`Events.consume` returns the events after the consumer's saved cursor without moving it;
the caller delivers them and then calls :meth:`Events.ack` with the last seq it delivered. A
consumer that crashes between delivery and ack gets the unacknowledged events again on its next
read (never a gap; at most that batch twice). The cursor only moves forward, so two readers
sharing one consumer name cannot move it back, but they may both deliver the same events: use
one reader per consumer name.

:meth:`Events.follow` is driven by the store's change feed (inotify on markdown, pub/sub on
Redis). A hint only says "channel C changed": the log itself is re-read after the last seq seen,
so a lost or merged hint costs nothing but latency, and a bounded poll (:data:`SAFETY_POLL`)
catches anything a hint never announced.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ..core.models import Event
from ..core.validate import check_name, encodable, seconds, whole
from ..errors import InvalidInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from ..core.config import Config
    from ..store.base import Change, Store

    #: ``on_reset(last_seen, last_seq)``: the channel's seqs went back (see Events.follow).
    ResetHook = Callable[[int, int], None]

#: Bounds on what one event may carry, so a log stays readable and a runaway emitter small.
MAX_FIELDS = 64
MAX_KEY = 100
MAX_VALUE = 4000
MAX_EVENT_CHARS = 16 * 1024
#: Seconds between re-reads when no hint arrives: a safety net, not the delivery path.
SAFETY_POLL = 1.0
#: Key under which ``emit(agent=...)`` records the emitting agent.
AGENT_KEY = "Agent"
#: Field names an event's own lines use (``**Seq**``, ``**Time**``, ``**Agent**``): a field of
#: one of these names (any case) could pass for them, so it is refused.
RESERVED_KEYS = frozenset({"agent", "seq", "time"})
#: Channels written only by :mod:`agentcoord.domain.messages` (``msg.log``, ``msg.receipts.*``).
RESERVED_PREFIX = "msg."


def check_fields(fields: Iterable[tuple[str, str]] | Mapping[str, object]) -> list[tuple[str, str]]:
    """Validate and normalize event fields: keys non-empty, one line, bounded; values text."""
    pairs: list[tuple[object, object]] = (
        list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    )
    if len(pairs) > MAX_FIELDS:
        raise InvalidInput(f"an event may carry at most {MAX_FIELDS} fields, not {len(pairs)}")
    out: list[tuple[str, str]] = []
    total = 0
    for pair in pairs:
        try:
            raw_key, raw_value = pair
        except (TypeError, ValueError):
            raise InvalidInput(f"event fields must be key/value pairs, not {pair!r}") from None
        if not isinstance(raw_key, str):
            raise InvalidInput(f"event field names must be text, not {raw_key!r}")
        key = encodable(raw_key, "event field name").strip()
        if not key:
            raise InvalidInput("event field names must not be empty", field="key")
        if key.lower() in RESERVED_KEYS:
            hint = " (the emitting agent is --agent / agent=)" if key.lower() == "agent" else ""
            raise InvalidInput(
                f"event field name {key!r} is reserved for the event's own {key.title()}{hint}; "
                "choose another name",
                field=key,
            )
        if any(ch in key for ch in "\n\r") or not key.isprintable():
            raise InvalidInput(
                f"event field name {key[:40]!r} must be one line of printable text", field="key"
            )
        if len(key) > MAX_KEY:
            raise InvalidInput(
                f"event field name {key[:40]!r}... is {len(key)} characters; the limit is "
                f"{MAX_KEY}",
                field="key",
            )
        if raw_value is None:
            value = ""
        elif isinstance(raw_value, str):
            value = encodable(raw_value, f"event field {key!r}")
        elif isinstance(raw_value, (bool, int, float)):
            value = str(raw_value).lower() if isinstance(raw_value, bool) else str(raw_value)
        else:
            raise InvalidInput(f"event field {key!r} must be text or a number")
        if len(value) > MAX_VALUE:
            raise InvalidInput(
                f"event field {key!r} is {len(value)} characters; the limit is {MAX_VALUE}",
                field=key,
            )
        total += len(key) + len(value)
        out.append((key, value))
    if total > MAX_EVENT_CHARS:
        raise InvalidInput(f"event is {total} characters; the limit is {MAX_EVENT_CHARS}")
    return out


def keep_events(config: Config) -> int:
    """Config ``keep_events`` (default 100), checked: :class:`InvalidInput` unless a whole
    number >= 1."""
    value = config.get("keep_events", 100)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"config keep_events must be a whole number >= 1, not {value!r}")
    return value


def _count(value: int | None, what: str) -> int | None:
    """A seq, a cursor or a count from the caller: a whole number from 0 to 2**53 - 1 (Redis
    stream ids and Lua numbers hold no more exactly)."""
    return None if value is None else whole(value, what)


def _reserved(channel: str) -> bool:
    """A channel of :mod:`agentcoord.domain.messages` (case folded: on a case-insensitive file
    system ``MSG.log`` is the same file as ``msg.log``)."""
    return channel.lower().startswith(RESERVED_PREFIX)


def _consumer_of(channel: str, consumer: str) -> None:
    """Check a consumer cursor's channel and name. The cursors of the message channels are the
    agents' read state (:mod:`agentcoord.domain.messages`): moving one through the events API
    would mark someone's messages read, so it is :class:`InvalidInput` (exit 2); the messages
    are read with ``coord msg``, and the channel itself may still be tailed without a cursor."""
    check_name(channel, "channel")
    check_name(consumer, "consumer")
    if _reserved(channel):
        raise InvalidInput(
            f"channel {channel!r} holds messages between agents: its cursors are their read "
            "state; read them with 'coord msg inbox' (a tail without --consumer is fine)",
            field="consumer",
        )


class Events:
    """The event operations (``coord.events``), over a :class:`~agentcoord.store.base.Store`."""

    def __init__(self, store: Store, config: Config, clock: Callable[[], float]) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    @property
    def keep(self) -> int:
        """How many events the live log keeps (config ``keep_events``, default 100)."""
        return keep_events(self.config)

    # -- writing -------------------------------------------------------------------------------
    def emit(
        self,
        channel: str,
        type: str,
        fields: Iterable[tuple[str, str]] | Mapping[str, object] = (),
        *,
        agent: str | None = None,
    ) -> Event:
        """Append one event; returns it with its ``seq`` and ``time``. Channels starting with
        ``msg.`` hold messages and their receipts (:mod:`agentcoord.domain.messages`) and are
        written only by it: :class:`InvalidInput` (exit 2) here, so no event forges a message."""
        check_name(channel, "channel")
        if _reserved(channel):
            raise InvalidInput(
                f"channel {channel!r}: channels starting with {RESERVED_PREFIX!r} hold messages "
                "between agents; send one with 'coord msg send'",
                field="channel",
            )
        check_name(type, "event type")
        pairs = check_fields(fields)
        if agent is not None:
            pairs.insert(0, (AGENT_KEY, check_name(agent, "agent name")))
        event = Event(channel, type, time=self.clock(), fields=pairs)
        return self.store.append_events(channel, [event], keep=self.keep)[0]

    # -- reading -------------------------------------------------------------------------------
    def channels(self) -> list[str]:
        return self.store.list_channels()

    def last_seq(self, channel: str) -> int:
        return self.store.last_seq(check_name(channel, "channel"))

    def tail(self, channel: str, *, n: int | None = None, since: int | None = None) -> list[Event]:
        """Without ``since``: the newest ``n`` events (all when ``n`` is None), oldest first.
        With ``since``: the first ``n`` events after seq ``since``, so that paging with
        ``since=<last seq shown>`` never skips one."""
        check_name(channel, "channel")
        n = _count(n, "n")
        since = _count(since, "since")
        if since is not None:
            return self.store.read_events(channel, after=since, limit=n)
        if n is None:
            return self.store.read_events(channel)
        if n == 0:
            return []
        last = self.store.last_seq(channel)
        start = max(0, last - n)
        found = self.store.read_events(channel, after=start)
        if len(found) < n and start > 0:  # seqs with gaps (imported logs): look further back
            found = self.store.read_events(channel)
        return found[-n:]

    def cursor(self, channel: str, consumer: str) -> int:
        _consumer_of(channel, consumer)
        return self.store.get_cursor(channel, consumer)

    def consume(
        self,
        channel: str,
        consumer: str,
        *,
        limit: int | None = None,
        on_reset: ResetHook | None = None,
    ) -> list[Event]:
        """The events after ``consumer``'s cursor, in order (at most ``limit``). The cursor does
        not move: call :meth:`ack` with the last seq once they are delivered.

        A cursor beyond the channel's last seq means the channel was reset (its log deleted, a
        Redis workspace flushed): ``on_reset(cursor, last_seq)`` is told, the cursor goes back
        to 0 and the channel is read from its start, so that no new event is skipped."""
        _consumer_of(channel, consumer)
        limit = _count(limit, "limit")
        after = self.store.get_cursor(channel, consumer)
        if after:
            last = self.store.last_seq(channel)
            if last < after:
                if on_reset is not None:
                    on_reset(after, last)
                self.store.reset_cursor(channel, consumer, 0)
                after = 0
        return self.store.read_events(channel, after=after, limit=limit)

    def ack(self, channel: str, consumer: str, seq: int) -> int:
        """Record that ``consumer`` has handled every event up to ``seq``; returns the cursor
        (which never moves back)."""
        _consumer_of(channel, consumer)
        if _count(seq, "seq") and seq > self.store.last_seq(channel):
            raise InvalidInput(
                f"cannot acknowledge seq {seq} on channel {channel!r}: its last event is "
                f"{self.store.last_seq(channel)}",
                field="seq",
            )
        return self.store.advance_cursor(channel, consumer, seq)

    # -- following -----------------------------------------------------------------------------
    def follow(
        self,
        channel: str,
        *,
        since: int | None = None,
        consumer: str | None = None,
        timeout: float | None = None,
        on_reset: ResetHook | None = None,
    ) -> Iterator[Event]:
        """Yield the events after ``since`` (default: the consumer's cursor, else the channel's
        last seq, i.e. only new ones), then every new event as it is appended. Ends after
        ``timeout`` seconds without a new event, if given. Nothing is acknowledged here: a
        consumer calls :meth:`ack` after handling each event (or batch).

        A follower never skips events silently (SPEC section 9): when the channel's last seq
        falls below the last one seen (its log deleted or truncated, the store flushed) it calls
        ``on_reset(last_seen, last_seq)``, moves ``consumer``'s cursor back to 0 if given, and
        reads the channel again from its start."""
        check_name(channel, "channel")
        if consumer is not None:
            _consumer_of(channel, consumer)
        since = _count(since, "since")
        if timeout is not None:
            timeout = seconds(timeout, "timeout")
        return self._follow(channel, since, consumer, timeout, on_reset)

    def _follow(
        self,
        channel: str,
        since: int | None,
        consumer: str | None,
        timeout: float | None,
        on_reset: ResetHook | None,
    ) -> Iterator[Event]:
        # The first watch is opened before the starting point is read: a change in between is
        # then both in the read and in the feed, never in neither.
        hints = self.store.watch(timeout=self._slice(timeout, None))
        try:
            if since is not None:
                last = since
            elif consumer is not None:
                last = self.store.get_cursor(channel, consumer)
            else:
                last = self.store.last_seq(channel)
            deadline = None if timeout is None else time.monotonic() + timeout
            # The last event seen: every read starts one before it and checks it is still
            # there, unchanged. A reset channel whose new seqs already passed ours is noticed
            # too (its seq ``last`` is now another event), not only one whose seqs went back.
            anchor: Event | None = None
            if last:
                found = self.store.read_events(channel, after=last - 1, limit=1)
                anchor = found[0] if found and found[0].seq == last else None

            def read() -> list[Event]:
                """What is new after ``last``; after a reset, everything from the start."""
                nonlocal last, anchor
                if not last:
                    return self.store.read_events(channel, after=0)
                fresh = self.store.read_events(channel, after=last - 1)
                if fresh and fresh[0].seq == last and (anchor is None or _same(fresh[0], anchor)):
                    return fresh[1:]
                if not fresh and anchor is None and self.store.last_seq(channel) >= last:
                    return []  # ``since`` pointed past what exists: nothing new yet
                if on_reset is not None:
                    on_reset(last, self.store.last_seq(channel))
                if consumer is not None:
                    self.store.reset_cursor(channel, consumer, 0)
                last, anchor = 0, None
                return self.store.read_events(channel, after=0)

            while True:
                polled = time.monotonic()
                for event in read():
                    last, anchor = event.seq, event
                    yield event
                    if timeout is not None:
                        deadline = time.monotonic() + timeout
                for batch in hints:
                    if _concerns(batch, channel) or time.monotonic() - polled >= SAFETY_POLL:
                        polled = time.monotonic()
                        for event in read():
                            last, anchor = event.seq, event
                            yield event
                            if timeout is not None:
                                deadline = time.monotonic() + timeout
                    if deadline is not None and time.monotonic() >= deadline:
                        return
                # The feed went quiet for a slice: poll once (above), and watch again.
                if deadline is not None and time.monotonic() >= deadline:
                    return
                _close(hints)
                hints = self.store.watch(timeout=self._slice(timeout, deadline))
        finally:
            _close(hints)

    @staticmethod
    def _slice(timeout: float | None, deadline: float | None) -> float:
        if deadline is not None:
            return max(0.0, min(SAFETY_POLL, deadline - time.monotonic()))
        return SAFETY_POLL if timeout is None else min(SAFETY_POLL, timeout)


def _same(a: Event, b: Event) -> bool:
    """The same event (events never change once written): seq, type, time and fields."""
    return (a.seq, a.type, a.time, a.fields) == (b.seq, b.type, b.time, b.fields)


def _concerns(batch: list[Change], channel: str) -> bool:
    # "store" hints (a Redis reconnect) mean "anything may have changed".
    return any((c.kind == "event" and c.key == channel) or c.kind == "store" for c in batch)


def _close(it: object) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        close()
