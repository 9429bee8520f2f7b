"""Whole-record helpers of the Redis backend: bulk reads by index, archiving, archive listing.

Records (tasks, agents, contexts) are JSON values under ``B:{kind}:{name}``; each kind has a set
of live names (``B:{kind}s:all``, contexts: ``B:contexts``) and an archive hash
(``B:{kind}s:archive``, name -> JSON). See :mod:`.redis_store` for the whole key layout.
"""

from __future__ import annotations

import time

from ..errors import CorruptData
from .redis_conn import RedisBase

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, TypeVar

    from .redis_conn import Pipeline, Writes

    T = TypeVar("T")

_MGET_CHUNK = 500


def _file_order(name: str) -> str:
    # The markdown backend lists in file-name order ("task-{id}.md"); sort the same way.
    return name + ".md"


class RedisRecords(RedisBase):
    """Bulk reads and archiving shared by tasks, agents and contexts."""

    clock: Callable[[], float]

    def _read_many(
        self,
        kind: str,
        names: Iterable[str],
        from_dict: Callable[[dict[str, Any]], T],
        errors: list[CorruptData] | None,
    ) -> list[T]:
        """The records ``names`` of ``kind`` in file-name order, MGET in chunks, one round trip.

        Not a snapshot across records (neither is a directory scan): each record is read whole.
        """
        ordered = sorted(names, key=_file_order)
        keys = [self._key(kind, name) for name in ordered]
        if not keys:
            return []

        def read() -> list[Any]:
            with self._client.pipeline(transaction=False) as pipe:
                for i in range(0, len(keys), _MGET_CHUNK):
                    pipe.mget(keys[i : i + _MGET_CHUNK])
                chunks: list[list[Any]] = pipe.execute()
            return [raw for chunk in chunks for raw in chunk]

        out: list[T] = []
        for key, raw in zip(keys, self._call(read), strict=True):
            if raw is None:  # archived between the index read and the MGET
                continue
            try:
                out.append(self._decode(key, raw, from_dict))
            except CorruptData as exc:
                if errors is not None:
                    errors.append(exc)
        return out

    def _get_raw(self, key: str) -> Any:
        return self._call(lambda: self._client.get(key))

    def _archive(
        self,
        kind: str,
        name: str,
        from_dict: Callable[[dict[str, Any]], Any],
        check: Callable[[Any], bool],
    ) -> bool:
        key = self._key(kind, name)
        archive = self._key(kind + "s", "archive")
        op_key = self._key("op", self._token())

        def step(pipe: Pipeline) -> tuple[Writes, bool]:
            raw = pipe.get(key)
            if raw is None:
                return None, False
            record = self._decode(key, raw, from_dict)
            if not check(record):
                return None, False
            field = name
            if pipe.hexists(archive, field):  # keep both: an id can be reused after archiving
                stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.clock()))
                field, n = f"{name}-{stamp}", 1
                while pipe.hexists(archive, field):
                    field, n = f"{name}-{stamp}-{n}", n + 1
            status = getattr(record, "status", None) if kind == "task" else None

            def writes(p: Pipeline) -> None:
                p.delete(key)
                p.srem(self._key(kind + "s", "all"), name)
                if status is not None:
                    p.srem(self._key("tasks", "status", status), name)
                p.hset(archive, field, raw)
                p.set(op_key, "1", px=self.op_ttl_ms)
                p.publish(self._changes, self._hint(kind, "archived", name))

            return writes, True

        return self._call(lambda: self._watched([key], step), self._committed(op_key, lambda: True))

    def _list_archived(
        self, kind: str, from_dict: Callable[[dict[str, Any]], T], errors: list[CorruptData] | None
    ) -> list[T]:
        archive = self._key(kind + "s", "archive")
        entries: dict[str, str] = self._call(lambda: self._client.hgetall(archive))
        out: list[T] = []
        for field in sorted(entries, key=_file_order):
            try:
                out.append(self._decode(f"{archive}#{field}", entries[field], from_dict))
            except CorruptData as exc:
                if errors is not None:
                    errors.append(exc)
        return out
