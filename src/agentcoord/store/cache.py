"""A cache of decoded records keyed by their exact stored bytes, shared by the backends.

A store that reads a record it read (or wrote) moments ago gets the same bytes back; decoding them
again is wasted work on the hottest paths (a claim reads the agent for the breaker, then updates
it). :class:`RecordCache` keeps, per record, the bytes and the record decoded from them, and hands
back a copy when the bytes are equal: the comparison is of the content itself, so a hit is never
stale. Only records whose decoding the bytes fully determine may be put (what a parse returned, or
what a lossless encoding such as JSON was made from).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: How many decoded records a process keeps (the ones it touched last).
CACHE_SIZE = 256


class RecordCache:
    """Decoded records by name (a file name, a Redis key), each with the exact bytes it was
    decoded from; at most :data:`CACHE_SIZE`, the least recently stored dropped first.
    :meth:`get` returns a copy (callers mutate what they get) or None."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[str, tuple[bytes, Any]] = {}

    def get(self, name: str, raw: bytes) -> Any:
        found = self._entries.get(name)
        if found is None or found[0] != raw:
            return None
        return found[1].copy()

    def put(self, name: str, raw: bytes, record: Any) -> None:
        entries = self._entries
        entries.pop(name, None)
        if len(entries) >= CACHE_SIZE:
            del entries[next(iter(entries))]
        entries[name] = (raw, record.copy())

    def drop(self, name: str) -> None:
        self._entries.pop(name, None)

    def clear(self) -> None:
        self._entries.clear()
