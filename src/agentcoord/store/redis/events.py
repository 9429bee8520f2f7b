"""Event logs and consumer cursors of the Redis backend, on Redis Streams.

Per channel ``C`` (all under the workspace's hash tag):

- ``events:C:seq``      the channel's sequence counter (a string holding an integer);
- ``events:C:live``     a stream of the newest ``keep`` events;
- ``events:C:archive``  a stream of every older event (rotation moves entries here, never drops);
- ``events:C:cursors``  a hash: consumer name -> the last seq it consumed;
- ``channels``          a set of channel names.

An event with sequence number ``N`` has the stream id ``N-1``, so seq order is stream order in
both streams and ``XRANGE`` from ``{after+1}-0`` finds "everything after ``after``" in O(log n).
The entry holds one field, ``e``: the event's JSON without its seq (the id carries it).

Appending is one Lua script, so seq assignment, ``XADD``, rotation and the change hint are one
atomic step: two writers can never interleave, a reader never sees a seq twice or a gap, and a
rotation never loses an entry. Cursors move forward only, also in a script.
"""

from __future__ import annotations

from ...core.clock import round_ms
from ...core.validate import check_name
from ...errors import CorruptData, InvalidInput
from ..base import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ...core.models import Event
    from .connection import Connection

# KEYS: seq, live, archive, channels, op.  ARGV: keep, channel, op ttl (ms), pub/sub channel,
# hint, then one (seq, json) pair per event; seq "0" means "assign the next one", anything else
# is an explicit seq (imports) that must be larger than every seq stored so far.
# Returns the last seq written, or (with nothing written) -1 if an explicit seq is too small, -2 if
# the counter is not a whole number >= 0.
_APPEND = """
local done = redis.call('GET', KEYS[5])
if done then return tonumber(done) end
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur == nil or cur < 0 then return -2 end
if cur == 0 then
  -- a lost counter must not restart numbering below what the streams already hold
  for _, k in ipairs({KEYS[2], KEYS[3]}) do
    local top = redis.call('XREVRANGE', k, '+', '-', 'COUNT', 1)
    if #top > 0 then
      local s = tonumber(string.match(top[1][1], '^(%d+)-'))
      if s > cur then cur = s end
    end
  end
end
local check = cur
for i = 6, #ARGV, 2 do
  local s = tonumber(ARGV[i])
  if s ~= 0 then
    if s <= check then return -1 end
    check = s
  else
    check = check + 1
  end
end
for i = 6, #ARGV, 2 do
  local s = tonumber(ARGV[i])
  if s == 0 then cur = cur + 1 else cur = s end
  redis.call('XADD', KEYS[2], string.format('%d-1', cur), 'e', ARGV[i + 1])
end
redis.call('SET', KEYS[1], string.format('%d', cur))
local keep = tonumber(ARGV[1])
local len = redis.call('XLEN', KEYS[2])
if len > keep then
  local old = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', len - keep)
  for _, entry in ipairs(old) do
    redis.call('XADD', KEYS[3], entry[1], unpack(entry[2]))
  end
  redis.call('XTRIM', KEYS[2], 'MAXLEN', keep)
end
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('SET', KEYS[5], string.format('%d', cur), 'PX', ARGV[3])
redis.pcall('PUBLISH', ARGV[4], ARGV[5])
return cur
"""

# KEYS: cursors.  ARGV: consumer, seq.  Returns the cursor after the call, -1 if it is corrupt.
_ADVANCE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local cur = 0
if raw then
  cur = tonumber(raw)
  if cur == nil or cur < 0 then return -1 end
end
local new = tonumber(ARGV[2])
if new > cur then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return new
end
return cur
"""

# KEYS: live, archive, op.  ARGV: keep, dry-run flag, op ttl (ms), pub/sub channel, hint.
# Moves all but the newest ``keep`` live entries to the archive; returns how many (would) move.
_ROTATE = """
local done = redis.call('GET', KEYS[3])
if done then return tonumber(done) end
local keep = tonumber(ARGV[1])
local len = redis.call('XLEN', KEYS[1])
if len <= keep then return 0 end
if ARGV[2] == '1' then return len - keep end
local old = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', len - keep)
for _, entry in ipairs(old) do
  redis.call('XADD', KEYS[2], entry[1], unpack(entry[2]))
end
redis.call('XTRIM', KEYS[1], 'MAXLEN', keep)
redis.call('SET', KEYS[3], string.format('%d', len - keep), 'PX', ARGV[3])
redis.pcall('PUBLISH', ARGV[4], ARGV[5])
return len - keep
"""

# KEYS: seq, live, archive, channels.  ARGV: seq, channel.  Raise the counter to ARGV[1] (never
# lower it, nor below what the streams hold if the counter was lost: then it is restored). A
# channel joins the channel set only with a seq: raising to 0 writes nothing (list_channels and
# record_names are unchanged). Returns the last seq after, -1 if the counter is corrupt.
_RAISE_SEQ = """
local raw = redis.call('GET', KEYS[1])
local cur = tonumber(raw or '0')
if cur == nil or cur < 0 then return -1 end
if raw == false then
  for _, k in ipairs({KEYS[2], KEYS[3]}) do
    local top = redis.call('XREVRANGE', k, '+', '-', 'COUNT', 1)
    if #top > 0 then
      local s = tonumber(string.match(top[1][1], '^(%d+)-'))
      if s > cur then cur = s end
    end
  end
end
local new = tonumber(ARGV[1])
if new <= cur then
  if raw == false and cur > 0 then  -- a lost counter: the streams say where it was
    redis.call('SET', KEYS[1], string.format('%d', cur))
    redis.call('SADD', KEYS[4], ARGV[2])
  end
  return cur
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[2])
return new
"""


_count = Store.check_count


class EventStreams:
    """The event logs and cursors of one workspace (the event half of
    :class:`~.store.RedisStore`), over its :class:`~.connection.Connection`."""

    def __init__(self, conn: Connection, clock: Callable[[], float]) -> None:
        self.c = conn
        self.clock = clock

    def _event_key(self, channel: str, part: str) -> str:
        return self.c.key("events", channel, part)

    def append_events(self, channel: str, events: list[Event], *, keep: int) -> list[Event]:
        return self._write_events(channel, events, keep=keep, explicit=False)

    def import_events(self, channel: str, events: list[Event], *, keep: int) -> list[Event]:
        """Append events *keeping their seq* (``coord migrate``): each must be larger than the
        channel's last seq and than the one before it, else :class:`InvalidInput`, nothing
        written. Gaps are allowed; later :meth:`append_events` continue after the largest."""
        return self._write_events(channel, events, keep=keep, explicit=True)

    def _write_events(
        self, channel: str, events: list[Event], *, keep: int, explicit: bool
    ) -> list[Event]:
        Store.check_events(channel, events, keep)
        if not events:
            return []
        now = self.clock()
        # Like the files: no time means the store's clock; times keep milliseconds.
        times = [round_ms(event.time or now) for event in events]
        args: list[Any] = [keep, channel, self.c.op_ttl_ms, self.c.changes]
        args.append(self.c.hint("event", "created", channel))
        for event, stamp in zip(events, times, strict=True):
            data = event.to_dict()
            del data["seq"]  # the stream id carries it
            data["channel"] = channel
            data["time"] = stamp
            data["fields"] = [list(pair) for pair in event.fields]  # keeps order and repeats
            args += [event.seq if explicit else 0, self.c.dumps(data)]
        op_key = self.c.key("op", self.c.token())
        keys = [
            self._event_key(channel, "seq"),
            self._event_key(channel, "live"),
            self._event_key(channel, "archive"),
            self.c.key("channels"),
            op_key,
        ]
        script = self.c.script("append", _APPEND)
        # The op key makes a retry after a lost reply return the first run's result.
        last = int(self.c.call(lambda: script(keys=keys, args=args)))
        if last == -2:
            raise CorruptData(keys[0], 1, "the last seq is not a whole number >= 0")
        if last < 0:
            Store.check_import_seqs(channel, self.last_seq(channel), events)
            raise InvalidInput(f"imported events for channel {channel!r} must increase")
        out: list[Event] = []
        first = last - len(events) + 1
        for i, event in enumerate(events):
            copy: Event = event.copy()
            copy.channel = channel
            copy.seq = event.seq if explicit else first + i
            copy.time = times[i]
            out.append(copy)
        return out

    def read_events(self, channel: str, *, after: int = 0, limit: int | None = None) -> list[Event]:
        check_name(channel, "channel")
        _count(after, "after")
        if limit is not None and _count(limit, "limit") == 0:
            return []
        start = f"{after + 1}-0"
        archive_key = self._event_key(channel, "archive")
        live_key = self._event_key(channel, "live")

        def read() -> list[Any]:
            # One MULTI: a rotation cannot move entries between the two reads.
            with self.c.client.pipeline(transaction=True) as pipe:
                pipe.xrange(archive_key, start, "+", count=limit)
                pipe.xrange(live_key, start, "+", count=limit)
                result: list[Any] = pipe.execute()
                return result

        archived, live = self.c.call(read)
        out: list[Event] = []
        last = after
        for key, entries in ((archive_key, archived), (live_key, live)):
            for entry_id, fields in entries:
                seq = int(entry_id.split("-", 1)[0])
                if seq <= last:  # defensive: never deliver a seq twice
                    continue
                raw = fields.get("e") if isinstance(fields, dict) else None
                if raw is None:
                    raise CorruptData(f"{key}#{entry_id}", 1, "stream entry has no event")
                data = self.c.decode(f"{key}#{entry_id}", raw, dict)
                data["seq"] = seq
                data.setdefault("channel", channel)
                out.append(self._decode_event(f"{key}#{entry_id}", data))
                last = seq
        return out if limit is None else out[:limit]

    def _decode_event(self, where: str, data: dict[str, Any]) -> Event:
        from ...core.models import Event

        try:
            return Event.from_dict(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptData(where, 1, f"unreadable event: {exc!r}") from None

    def last_seq(self, channel: str) -> int:
        check_name(channel, "channel")
        key = self._event_key(channel, "seq")
        raw = self.c.call(lambda: self.c.client.get(key))
        return self.c.to_int(key, raw)

    def list_channels(self) -> list[str]:
        names = self.c.call(lambda: self.c.client.smembers(self.c.key("channels")))
        return sorted(names)

    def get_cursor(self, channel: str, consumer: str) -> int:
        check_name(channel, "channel")
        check_name(consumer, "consumer")
        key = self._event_key(channel, "cursors")
        raw = self.c.call(lambda: self.c.client.hget(key, consumer))
        return self.c.to_int(f"{key}#{consumer}", raw)

    def advance_cursor(self, channel: str, consumer: str, seq: int) -> int:
        check_name(channel, "channel")
        check_name(consumer, "consumer")
        _count(seq, "seq")
        key = self._event_key(channel, "cursors")
        script = self.c.script("advance", _ADVANCE)
        # Idempotent (a maximum), so a retry after a lost reply is harmless.
        cursor = int(self.c.call(lambda: script(keys=[key], args=[consumer, int(seq)])))
        if cursor < 0:
            raise CorruptData(f"{key}#{consumer}", 1, "cursor is not a whole number >= 0")
        return cursor

    # -- maintenance and migration --------------------------------------------------------
    def rotate_events(self, channel: str, *, keep: int, dry_run: bool = False) -> int:
        """Move all but the newest ``keep`` events of ``channel`` to its archive stream (one
        script: readers never miss or see twice an event); return how many moved (or would)."""
        check_name(channel, "channel")
        _count(keep, "keep")
        keys = [
            self._event_key(channel, "live"),
            self._event_key(channel, "archive"),
            self.c.key("op", self.c.token()),
        ]
        args = [keep, "1" if dry_run else "0", self.c.op_ttl_ms, self.c.changes]
        args.append(self.c.hint("event", "changed", channel))
        script = self.c.script("rotate", _ROTATE)
        return int(self.c.call(lambda: script(keys=keys, args=args)))

    def live_event_count(self, channel: str) -> int:
        """How many events sit in the live log (the rest are archived): ``coord migrate``
        keeps the split."""
        key = self._event_key(check_name(channel, "channel"), "live")
        return int(self.c.call(lambda: self.c.client.xlen(key)))

    def raise_last_seq(self, channel: str, seq: int) -> int:
        """Make the channel's next seq at least ``seq + 1`` (``coord migrate`` of a log whose
        newest events were removed by hand); never lowers it."""
        check_name(channel, "channel")
        keys = [
            self._event_key(channel, "seq"),
            self._event_key(channel, "live"),
            self._event_key(channel, "archive"),
            self.c.key("channels"),
        ]
        script = self.c.script("raise_seq", _RAISE_SEQ)
        last = int(self.c.call(lambda: script(keys=keys, args=[_count(seq, "seq"), channel])))
        if last < 0:
            raise CorruptData(keys[0], 1, "the last seq is not a whole number >= 0")
        return last

    def reset_cursor(self, channel: str, consumer: str, seq: int) -> int:
        check_name(channel, "channel")
        check_name(consumer, "consumer")
        _count(seq, "seq")
        key = self._event_key(channel, "cursors")
        self.c.call(lambda: self.c.client.hset(key, consumer, int(seq)))
        return seq

    def list_cursors(self, *, errors: list[CorruptData] | None = None) -> dict[str, dict[str, int]]:
        """Every consumer cursor: channel -> consumer -> seq (``coord migrate``)."""
        prefix = self.c.key("events", "")
        pattern = self.c.glob(prefix) + "*:cursors"

        def read() -> dict[str, dict[str, str]]:
            keys = sorted(self.c.client.scan_iter(match=pattern, count=1000))
            with self.c.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(key)
                values: list[dict[str, str]] = pipe.execute()
            return dict(zip(keys, values, strict=True))

        out: dict[str, dict[str, int]] = {}
        for key, entries in self.c.call(read).items():
            channel = key[len(prefix) : -len(":cursors")]
            try:
                cursors = {c: self.c.to_int(f"{key}#{c}", v) for c, v in sorted(entries.items())}
            except CorruptData as exc:
                if errors is None:
                    raise
                errors.append(exc)
                continue
            if cursors:
                out[channel] = cursors
        return out
