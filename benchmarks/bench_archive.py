"""Event archives at scale: an emit's cost whatever the archive holds, and a consumer far behind.

SPEC section 8: ``event emit`` with 100k archived events within 1.5x of one with 100 archived
(the baseline, measured in the same run the same way); a consumer 100k events behind gets its
next batch (``coord event tail --consumer``'s default, 20 events) in <= 50 ms.

Both backends: the markdown store appends to ``archive/events-{channel}-{DATE}.md`` and reads by
bisection; Redis keeps the archive in a stream read with ``XRANGE``. Emits are durable (fsync on,
as agents run); the archives are filled beforehand without fsync (not timed).
"""

from __future__ import annotations

from .common import (
    NotAvailable,
    median,
    ms,
    redis_server,
    row,
    time_call,
    unavailable,
    with_workspace_param,
    workspace,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Row = dict[str, Any]

NAME = "archive"
TITLE = "Event archives: emit cost and consumers far behind"
BIG = 100_000
SMALL = 100
KEEP = 100
BATCH = 20  # coord event tail --consumer's default -n
RATIO_TARGET = 1.5
BEHIND_TARGET_MS = 50.0


def fill(store: Any, channel: str, archived: int) -> None:
    """Append ``archived + KEEP`` events, so that ``archived`` of them rotate to the archive."""
    from agentcoord.core.models import Event

    total = archived + KEEP
    for start in range(0, total, 1000):
        batch = [
            Event(channel, "step", fields=[("i", str(i)), ("note", "earlier traffic")])
            for i in range(start, min(start + 1000, total))
        ]
        store.append_events(channel, batch, keep=KEEP)


def measure(coord: Any, setup: Any, backend: str, quick: bool) -> list[Row]:
    """Rows for one backend: ``setup`` is a store to fill, ``coord`` the durable Coordinator."""
    n = 40 if quick else 150
    fill(setup, "small", SMALL)
    fill(setup, "large", BIG)

    def emitter(channel: str) -> Any:
        return lambda: coord.events.emit(channel, "ping", {"k": "x"})

    # Interleaved, so that drift in the machine's load touches both alike.
    small_s: list[float] = []
    large_s: list[float] = []
    for _ in range(5):
        small_s += time_call(emitter("small"), n // 5)[1]
        large_s += time_call(emitter("large"), n // 5)[1]
    small, large = ms(median(small_s)), ms(median(large_s))
    rows = [
        row(f"{backend}: event emit, {SMALL} archived (baseline)", small, "ms"),
        row(
            f"{backend}: event emit, {BIG:,} archived, median",
            large,
            "ms",
            baseline=small,
            target=f"<= {RATIO_TARGET:g}x the baseline",
            met=large <= RATIO_TARGET * small,
            note=f"{n} emits each, interleaved; durable",
        ),
    ]
    last = coord.events.last_seq("large")
    for name, cursor in (("oldest", 0), ("middle", BIG // 2)):
        consumer = f"late-{name}"
        coord.store.reset_cursor("large", consumer, cursor)
        t, _ = time_call(lambda c=consumer: coord.events.consume("large", c, limit=BATCH), n)
        got = coord.events.consume("large", consumer, limit=BATCH)
        assert [e.seq for e in got] == list(range(cursor + 1, cursor + 1 + BATCH)), got
        rows.append(
            row(
                f"{backend}: consumer {last - cursor:,} behind ({name}), next {BATCH} events",
                ms(t),
                "ms",
                target=f"<= {BEHIND_TARGET_MS:g} ms",
                met=ms(t) <= BEHIND_TARGET_MS,
                note=f"median of {n}; Python API (coord event tail adds start-up)",
            )
        )
    return rows


def run(quick: bool = False) -> list[Row]:
    from agentcoord.api import Coordinator
    from agentcoord.store.markdown.store import MarkdownStore

    rows: list[Row] = []
    with workspace("archive") as root:
        coord = Coordinator.open(root)
        rows += measure(coord, MarkdownStore(root, durable=False), "markdown", quick)
        coord.close()
    redis_name = "Redis: event emit, 100,000 archived, median"
    try:
        with redis_server() as url:
            coord = Coordinator.open(url=with_workspace_param(url, "archive"))
            rows += measure(coord, coord.store, "Redis", quick)
            coord.close()
    except NotAvailable as exc:
        rows.append(unavailable(redis_name, str(exc), unit="ms", target="<= 1.5x the baseline"))
    return rows
