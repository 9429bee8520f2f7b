"""Whole-record helpers of the Redis backend: bulk reads by index, archiving, and the
workspace-wide views ``coord migrate`` needs (archive entries, counters, documents, all keys).

Records (tasks, agents, contexts) are JSON values under ``B:{kind}:{name}``; each kind has a set
of live names (``B:{kind}s:all``, contexts: ``B:contexts``) and an archive hash
(``B:{kind}s:archive``, name -> JSON). See :mod:`.redis_store` for the whole key layout.
"""

from __future__ import annotations

import re
import time

from ..errors import CorruptData, InvalidInput
from ..models import Agent, Task
from ..names import check_name
from .redis_conn import RedisBase

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, TypeVar

    from .redis_conn import Pipeline, Writes

    T = TypeVar("T")

_MGET_CHUNK = 500
#: An archive entry's name becomes a file name (``archive/task-{name}.md``) when migrated back.
_ARCHIVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

_FROM_DICT: dict[str, Callable[[dict[str, Any]], Any]] = {
    "task": Task.from_dict,
    "agent": Agent.from_dict,
}


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
                    p.hdel(self._key("tasks", "heads", status), name)
                p.hset(archive, field, raw)
                p.set(op_key, "1", px=self.op_ttl_ms)
                p.publish(self._changes, self._hint(kind, "archived", name))

            return writes, True

        return self._call(lambda: self._watched([key], step), self._committed(op_key, lambda: True))

    def _list_archived(
        self, kind: str, from_dict: Callable[[dict[str, Any]], T], errors: list[CorruptData] | None
    ) -> list[tuple[str, T]]:
        """(archive name, record) pairs in file-name order; the name is the record's own, or
        ``{name}-{stamp}`` for an earlier record of a reused name."""
        archive = self._key(kind + "s", "archive")
        entries: dict[str, str] = self._call(lambda: self._client.hgetall(archive))
        out: list[tuple[str, T]] = []
        for field in sorted(entries, key=_file_order):
            try:
                out.append((field, self._decode(f"{archive}#{field}", entries[field], from_dict)))
            except CorruptData as exc:
                if errors is not None:
                    errors.append(exc)
        return out

    def _import_archived(self, kind: str, name: str, data: dict[str, Any]) -> None:
        """Store an archived record under ``name`` (``coord migrate``); replaces an entry of
        that name."""
        if not _ARCHIVE_NAME.fullmatch(name):
            raise InvalidInput(f"invalid archive entry name {name!r}")
        archive = self._key(kind + "s", "archive")
        raw = self._dumps(data)
        self._call(lambda: self._client.hset(archive, name, raw))

    # -- for coord migrate --------------------------------------------------------------------
    def archived_records(
        self, kind: str, errors: list[CorruptData] | None = None
    ) -> list[tuple[str, Any]]:
        """(archive name, record) of every archived ``kind`` ("task" or "agent")."""
        if kind not in _FROM_DICT:
            raise InvalidInput(f"unknown record kind {kind!r}")
        return self._list_archived(kind, _FROM_DICT[kind], errors)

    def import_archived(self, kind: str, name: str, record: Task | Agent) -> None:
        if kind not in _FROM_DICT:
            raise InvalidInput(f"unknown record kind {kind!r}")
        self._import_archived(kind, name, record.to_dict())

    def counters(self) -> dict[str, int]:
        """Every :meth:`next_id` counter: kind -> the last number handed out."""
        key = self._key("counters")
        raw: dict[str, str] = self._call(lambda: self._client.hgetall(key))
        return {kind: self._int(f"{key}#{kind}", v) for kind, v in sorted(raw.items())}

    def set_counter(self, kind: str, value: int) -> None:
        """Continue :meth:`next_id` for ``kind`` after ``value`` (never lowers the counter)."""
        check_name(kind, "counter")
        key = self._key("counters")

        def step(pipe: Pipeline) -> tuple[Writes, None]:
            if self._int(f"{key}#{kind}", pipe.hget(key, kind)) >= value:
                return None, None
            return (lambda p: p.hset(key, kind, int(value))), None

        self._call(lambda: self._watched([key], step))

    def list_documents(self) -> list[str]:
        """Names of the stored documents (``metrics-performance``)."""
        prefix = self._key("doc", "")
        keys = self._call(lambda: list(self._client.scan_iter(self._glob(prefix) + "*", 1000)))
        return sorted(k[len(prefix) :] for k in keys)

    def workspace_keys(self) -> list[str]:
        """Every key of this workspace except the short-lived operation markers."""
        ops = self._key("op", "")
        pattern = self._glob(self._key("")) + "*"
        keys = self._call(lambda: list(self._client.scan_iter(pattern, 1000)))
        return sorted(k for k in keys if not k.startswith(ops))

    def drop_workspace(self) -> int:
        """Delete every key of this workspace (``coord migrate --force`` onto it); returns how
        many. Other workspaces on the same server are untouched (their hash tag differs)."""
        keys = self.workspace_keys()

        def drop() -> None:
            with self._client.pipeline(transaction=False) as pipe:
                for i in range(0, len(keys), 500):
                    pipe.unlink(*keys[i : i + 500])
                pipe.publish(self._changes, self._hint("store", "removed", "*"))
                pipe.execute()

        self._call(drop)
        return len(keys)

    def identity(self) -> tuple[str, ...]:
        """What makes two stores the same data: the server's run id, database and key base."""
        info: dict[str, Any] = self._call(lambda: self._client.info("server"))
        db = self._client.connection_pool.connection_kwargs.get("db", 0)
        return ("redis", str(info.get("run_id", "")), str(db), self._base)
