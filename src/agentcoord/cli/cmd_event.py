"""``coord event emit|tail|ack|channels`` and ``coord watch``.

``--json`` shapes (streams are NDJSON: one object per line, flushed as soon as it is written):

- an event: ``{"seq", "type", "time" (ISO 8601 UTC, ms when present), "channel", "fields"}``;
  ``emit`` prints the event it appended, ``tail`` one line per event.
- ``event channels``: ``[{"channel", "last_seq"}]``; ``event ack``: ``{"channel", "consumer",
  "cursor"}``.
- ``watch``: one line per change hint, ``{"kind", "key", "action", "time"}`` (kind: task, agent,
  event, context, metrics, or ``store`` for "re-read everything", e.g. after a reconnect).

Plain text: ``[seq] time type key=value ...`` per event.

``tail --consumer NAME`` prints the events after NAME's cursor and acknowledges them *after*
printing (so a crash before the ack delivers them again: at-least-once); ``--no-ack`` leaves
the cursor for an explicit ``event ack CHANNEL NAME SEQ`` once the reader has handled them.

Exit codes: 0 ok (also on Ctrl-C and when ``--timeout`` ends a ``--follow``/``watch``); 2 bad
input (channel/type names, malformed KEY=VALUE, oversized fields); 6 an event file does not
parse (reported with ``path:line``; it is never rewritten).
"""

from __future__ import annotations

import sys

from ..core.text import scrub, shown
from ..core.validate import check_name
from ..errors import InvalidInput
from .base import count, dispatch, key_values, seconds
from .output import dumps

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterable, Sequence

    from ..core.models import Event
    from .base import Context, Parser
    from .main import Globals

DEFAULT_N = 20
WATCH_KINDS = ("task", "agent", "event", "context", "metrics")


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    if command == "watch":
        return dispatch(
            "watch", argv, g, _build_watch, "Print changes in the workspace as they happen."
        )
    if argv and argv[0] == "emit":
        argv = _fields_last(argv)
    return dispatch("event", argv, g, _build, "Emit, read and follow events on channels.")


#: Options of ``event emit`` that take a value (so their value is not mistaken for a field).
_EMIT_VALUED = ("--agent",)


def _fields_last(argv: Sequence[str]) -> list[str]:
    """``event emit CH TYPE --agent A k=v`` as argparse needs it: KEY=VALUE arguments after
    every option (argparse does not take positionals again once options followed them)."""
    options: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in _EMIT_VALUED and i + 1 < len(argv):
            options += [arg, argv[i + 1]]
            i += 2
            continue
        (options if arg.startswith("-") else rest).append(arg)
        i += 1
    return [rest[0], *options, *rest[1:]] if rest else options


def _build(parser: Parser) -> None:
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("emit", help="append an event to a channel")
    p.add_argument("channel")
    p.add_argument("type")
    p.add_argument("fields", nargs="*", metavar="KEY=VALUE")
    p.add_argument("--agent", metavar="NAME", help="record the emitting agent")
    p.set_defaults(handler=_emit)

    p = sub.add_parser("tail", help="print recent events, a consumer's new ones, or follow")
    p.add_argument("channel")
    p.add_argument(
        "-n",
        type=count("-n"),
        metavar="N",
        help=f"how many (default {DEFAULT_N}; with --since/--consumer: at most N)",
    )
    p.add_argument("--since", type=count("--since"), metavar="SEQ", help="events after this seq")
    p.add_argument("--consumer", metavar="NAME", help="events after NAME's saved cursor")
    p.add_argument("--no-ack", action="store_true", help="with --consumer: do not move the cursor")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    p.add_argument(
        "--timeout", type=seconds("--timeout"), metavar="S", help="--follow: stop after S idle"
    )
    p.set_defaults(handler=_tail)

    p = sub.add_parser("ack", help="move a consumer's cursor forward to SEQ")
    p.add_argument("channel")
    p.add_argument("consumer")
    p.add_argument("seq", type=count("SEQ"))
    p.set_defaults(handler=_ack)

    p = sub.add_parser("channels", help="list channels and their last seq")
    p.add_argument("--limit", type=count("--limit"), default=50, help="default 50 (0: all)")
    p.set_defaults(handler=_channels)


def _build_watch(parser: Parser) -> None:
    parser.add_argument(
        "--kinds", metavar="K,K", help=f"only these kinds ({','.join(WATCH_KINDS)})"
    )
    parser.add_argument(
        "--timeout", type=seconds("--timeout"), metavar="S", help="stop after S idle"
    )
    parser.set_defaults(handler=_watch)


# -- output ------------------------------------------------------------------------------------
def _value(text: str) -> str:
    if text and text.isprintable() and " " not in text and '"' not in text:
        return text
    return dumps(text)


def line(event: Event) -> str:
    from ..core.clock import iso_ms

    parts = [f"[{event.seq}]", iso_ms(event.time), shown(event.type)]
    parts += [f"{_value(k)}={_value(v)}" for k, v in event.fields]
    return " ".join(parts)


def _print_events(ctx: Context, events: Iterable[Event]) -> int:
    """Write events, one per line, flushing each; returns the last seq written (0 if none)."""
    from ..shapes import event_row

    last = 0
    out = sys.stdout
    for event in events:
        if ctx.json:
            out.write(dumps(event_row(event)) + "\n")
        elif not ctx.quiet:
            out.write(scrub(line(event)) + "\n")
        out.flush()
        last = event.seq
    return last


# -- handlers ----------------------------------------------------------------------------------
def _emit(ctx: Context, ns: argparse.Namespace) -> int:
    from ..shapes import event_row

    fields = key_values(ns.fields)
    event = ctx.coord.events.emit(ns.channel, ns.type, fields, agent=ns.agent)
    ctx.emit(event_row(event), lambda: line(event))
    return 0


def _tail(ctx: Context, ns: argparse.Namespace) -> int:
    if ns.consumer is not None:
        check_name(ns.consumer, "consumer name")  # "" is a mistake, not "no consumer"
    if ns.since is not None and ns.consumer:
        raise InvalidInput("coord event tail: give --since or --consumer, not both")
    if ns.no_ack and not ns.consumer:
        raise InvalidInput("coord event tail: --no-ack needs --consumer")
    if ns.timeout is not None and not ns.follow:
        raise InvalidInput("coord event tail: --timeout needs --follow")
    events = ctx.coord.events
    n = DEFAULT_N if ns.n is None else ns.n
    ack = bool(ns.consumer) and not ns.no_ack

    def reset(seen: int, last: int) -> None:
        ctx.notice(
            "channel_reset",
            f"channel {ns.channel} was reset (its last seq went from {seen} back to {last}); "
            "reading it again from the start",
            channel=ns.channel,
            last_seen=seen,
            last_seq=last,
        )

    check_name(ns.channel, "channel")
    if not ns.follow and ns.channel not in events.channels():
        missing = f"no channel {ns.channel!r}: no event was ever emitted on it"
        if not ns.consumer:
            from ..errors import NotFound

            raise NotFound(f"{missing}; --follow waits for its first event", channel=ns.channel)
        ctx.warn(f"{missing} (yet)")  # a consumer polls: nothing pending, but say why
    try:
        if ns.consumer and ns.follow:
            # follow() starts with everything after the cursor, then waits for more.
            since = events.cursor(ns.channel, ns.consumer)
        elif ns.consumer:
            _deliver_pending(ctx, ns, n, ack=ack, on_reset=reset)
            return 0
        else:
            start = events.last_seq(ns.channel) if n == 0 and ns.since is None else None
            found = events.tail(ns.channel, n=n, since=ns.since)
            printed = _print_events(ctx, found)
            if not ns.follow:
                return 0
            # Continue right after what was shown (or, with nothing shown, after --since, after
            # "now" for -n 0, and from the start of an empty channel).
            since = printed or (ns.since if ns.since is not None else start or 0)
        consumer = ns.consumer if ack else None  # a reset moves the acknowledged cursor back
        follow = events.follow(
            ns.channel, since=since, consumer=consumer, timeout=ns.timeout, on_reset=reset
        )
        for event in follow:
            _print_events(ctx, (event,))
            if ack:  # after delivery: a crash before this line delivers it again
                events.ack(ns.channel, ns.consumer, event.seq)
    except KeyboardInterrupt:
        return 0
    return 0


def _deliver_pending(
    ctx: Context,
    ns: argparse.Namespace,
    n: int,
    *,
    ack: bool,
    on_reset: Callable[[int, int], None],
) -> None:
    """Print at most ``n`` events after the consumer's cursor, then acknowledge them."""
    events = ctx.coord.events
    batch = events.consume(ns.channel, ns.consumer, limit=n, on_reset=on_reset)
    last = _print_events(ctx, batch)
    if ack and last:
        events.ack(ns.channel, ns.consumer, last)
    if batch and events.last_seq(ns.channel) > last:
        ctx.warn(f"more events pending for {ns.consumer}; run again (or raise -n)")


def _ack(ctx: Context, ns: argparse.Namespace) -> int:
    cursor = ctx.coord.events.ack(ns.channel, ns.consumer, ns.seq)
    data = {"channel": ns.channel, "consumer": ns.consumer, "cursor": cursor}
    ctx.emit(data, f"{ns.consumer} on {ns.channel}: cursor {cursor}")
    return 0


def _channels(ctx: Context, ns: argparse.Namespace) -> int:
    events = ctx.coord.events
    names = events.channels()
    listed = names[: ns.limit] if ns.limit else names
    if len(listed) < len(names):
        ctx.warn(f"showing {len(listed)} of {len(names)} channels; use --limit to see more")
    rows = [{"channel": c, "last_seq": events.last_seq(c)} for c in listed]

    def text() -> str:
        if not rows:
            return "no event channels"
        from .output import table

        return table(rows, ["channel", "last_seq"])

    ctx.emit(rows, text)
    return 0


def _watch(ctx: Context, ns: argparse.Namespace) -> int:
    from ..core.clock import iso_ms

    kinds: set[str] | None = None
    if ns.kinds:
        kinds = {k.strip() for k in ns.kinds.split(",") if k.strip()}
        unknown = sorted(kinds - set(WATCH_KINDS))
        if unknown:
            raise InvalidInput(
                f"coord watch: unknown kind(s) {', '.join(unknown)}; use {','.join(WATCH_KINDS)}"
            )
    import time

    out = sys.stdout
    hints = ctx.coord.store.watch(timeout=ns.timeout)
    try:
        for batch in hints:
            stamp = iso_ms(time.time())
            for change in batch:
                if kinds is not None and change.kind not in kinds and change.kind != "store":
                    continue
                row = change.to_dict()
                row["time"] = stamp
                if ctx.json:
                    out.write(dumps(row) + "\n")
                elif not ctx.quiet:
                    what = " ".join(shown(str(v)) for v in (change.kind, change.key, change.action))
                    out.write(f"{stamp} {what}\n")
            out.flush()
    except KeyboardInterrupt:
        return 0
    finally:
        close = getattr(hints, "close", None)
        if close is not None:
            close()
    return 0
