"""The change feed of the Redis backend: pub/sub hints on one channel per workspace.

Every write publishes ``"{kind} {action} {key}"`` on ``{prefix}:{{ws}}:changes`` inside its own
transaction or script, so a hint goes out only for a write that committed, and only after it did.
Hints are wake-ups, not data: pub/sub drops messages while a subscriber is disconnected, so after
a reconnect :meth:`RedisWatch.watch` yields ``Change("store", "*", "reconnected")`` and the
reader re-reads whatever it follows (a cursor-based reader loses nothing either way).

``watch()`` subscribes before it returns, so a caller that subscribes, then reads the state,
then iterates misses no change in between.
"""

from __future__ import annotations

import time

from ..base import Change

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Generator
    from typing import Any

    from .connection import Connection

    PubSub = Any  # redis.client.PubSub, untyped in redis-py

#: The longest single wait on the socket; bounds how long a silent, dead peer goes unnoticed
#: (redis-py sends a health-check PING on the next read after 30 s idle).
_MAX_WAIT = 30.0


class ChangeFeed:
    """The change feed of one workspace (:class:`~.store.RedisStore`), over its
    :class:`~.connection.Connection`; :meth:`close` ends every watch it started."""

    def __init__(self, conn: Connection) -> None:
        self.c = conn
        self._pubsubs: list[PubSub] = []

    def watch(self, *, timeout: float | None = None) -> Generator[list[Change], None, None]:
        pubsub = self.c.client.pubsub()
        self._pubsubs.append(pubsub)
        try:
            self.c.call(lambda: self._subscribe(pubsub))
        except BaseException:
            self._drop(pubsub)
            raise
        return self._follow(pubsub, timeout)

    def _subscribe(self, pubsub: PubSub) -> None:
        pubsub.subscribe(self.c.changes)
        # Wait for the server's confirmation: from then on every publish reaches us.
        deadline = time.monotonic() + self.c.socket_timeout
        while time.monotonic() < deadline:
            msg = pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if msg is not None and msg.get("type") == "subscribe":
                return
        from redis.exceptions import TimeoutError

        raise TimeoutError("no confirmation of SUBSCRIBE")

    def _resubscribe(self, pubsub: PubSub) -> None:
        conn = pubsub.connection
        if conn is None:
            self._subscribe(pubsub)
            return
        conn.disconnect()
        conn.connect()  # redis-py's connect callback re-sends SUBSCRIBE

    def _follow(self, pubsub: PubSub, timeout: float | None) -> Generator[list[Change], None, None]:
        from redis.exceptions import ConnectionError, TimeoutError

        try:
            while True:
                try:
                    batch = self._next_batch(pubsub, timeout)
                except (ConnectionError, TimeoutError):
                    # Raises BackendUnavailable once the retry budget is spent.
                    self.c.call(lambda: self._resubscribe(pubsub))
                    batch = [Change("store", "*", "reconnected")]
                if batch is None:
                    return
                yield batch
        finally:
            self._drop(pubsub)

    def _next_batch(self, pubsub: PubSub, timeout: float | None) -> list[Change] | None:
        """The next hints (all that are already waiting), or None after ``timeout`` of silence."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = _MAX_WAIT
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return None
            change = self._parse(pubsub.get_message(timeout=wait))
            if change is None:
                continue
            seen = {(change.kind, change.key, change.action): change}
            while True:  # drain what already arrived: one batch per burst of writes
                msg = pubsub.get_message(timeout=0)
                if msg is None:
                    break
                more = self._parse(msg)
                if more is not None:
                    seen.setdefault((more.kind, more.key, more.action), more)
            return list(seen.values())

    @staticmethod
    def _parse(msg: dict[str, Any] | None) -> Change | None:
        if msg is None or msg.get("type") != "message":
            return None
        data = msg.get("data")
        if not isinstance(data, str):
            return None
        parts = data.split(" ", 2)
        if len(parts) != 3:
            return None
        kind, action, key = parts
        return Change(kind, key, action)

    def _drop(self, pubsub: PubSub) -> None:
        if pubsub in self._pubsubs:
            self._pubsubs.remove(pubsub)
        try:
            pubsub.close()
        except Exception:  # closing a broken connection must not mask the real error
            pass

    def close(self) -> None:
        for pubsub in list(self._pubsubs):
            self._drop(pubsub)
