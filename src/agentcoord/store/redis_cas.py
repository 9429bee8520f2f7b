"""The compare-and-set update loop of the Redis backend (task and agent updates).

A record is read (``GET``, or the value this process last wrote or read), changed in Python by the
domain's pure ``fn``, and written back by a Lua script that writes only if the record still has
the SHA1 of what was read: two round trips and one script, where ``WATCH`` / ``MULTI`` / ``EXEC``
needs three round trips and eight commands. A failed compare returns the current value, so the
retry needs no extra read. The update scripts start with :data:`COMPARE`.
"""

from __future__ import annotations

import hashlib
import random
import time

from .redis_conn import RedisBase

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    from .redis_conn import Step

    R = TypeVar("R")

#: Records whose last known value a store remembers (the values it wrote or read last).
_SEEN_MAX = 256
#: Conflicts in a row after which a writer takes the record's turn (fairness, not safety).
_ESCALATE = 3
#: How long a turn lasts at most (a writer that died holding it delays the others this long).
_TURN_MS = 2000

# KEYS: turn.  ARGV: token, ttl (ms).  Take (or keep) the turn; 1 if it is ours.
_TAKE_TURN = """
local t = redis.call('GET', KEYS[1])
if t and t ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: turn.  ARGV: token.  Give the turn back if it is still ours.
_GIVE_TURN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

#: What a one-shot compare-and-set (:class:`Cas` with ``once``) returns when the value changed.
BUSY = object()

# The compare step of the update scripts. KEYS[1] is the record, KEYS[#KEYS] its turn key;
# ARGV[1] is the SHA1 of the value the caller read ("" = absent), ARGV[2] the caller's turn
# token ("" = none). Anything but a write returns the current value ({} = absent), which the
# caller's next attempt starts from. Arguments of the write itself start at ARGV[3].
COMPARE = """
local cur = redis.call('GET', KEYS[1])
local turn = redis.call('GET', KEYS[#KEYS])
if turn and turn ~= ARGV[2] then
  if cur then return {cur} end
  return {}
end
if cur then
  if redis.sha1hex(cur) ~= ARGV[1] then return {cur} end
elseif ARGV[1] ~= '' then
  return {}
end
if turn then redis.call('DEL', KEYS[#KEYS]) end
"""


class Cas:
    """A compare-and-set update of the record at ``key``, for :meth:`RedisCas._watched`.

    ``plan(raw)`` gets the record's JSON (None: absent) and returns ``(keys, args, result)``:
    the ``script``'s keys and arguments (the loop puts the SHA1 of ``raw`` before them; ``args[0]``
    is the new JSON), or ``keys`` None for "nothing to write". The script writes only if the
    record still has that SHA1 and returns 1, else ``[current value]`` (``[]``: absent), which
    the next attempt starts from. With ``once``, a conflict ends with :data:`BUSY`.
    """

    __slots__ = ("key", "once", "plan", "script")

    def __init__(
        self,
        key: str,
        plan: Callable[[str | None], tuple[list[str] | None, list[Any], Any]],
        script: Any,
        *,
        once: bool = False,
    ) -> None:
        self.key, self.plan, self.script, self.once = key, plan, script, once

    def __call__(self, reader: Any) -> tuple[Any, Any]:  # the Step shape, for type checks
        raise TypeError("a Cas runs in RedisCas._compare_and_set")


def sha1(raw: str | None) -> str:
    return "" if raw is None else hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()


class RedisCas(RedisBase):
    """The compare-and-set flavour of :meth:`RedisBase._watched`, for :class:`Cas` steps."""

    _seen: dict[str, str]

    def _watched(self, keys: list[str], step: Step[R]) -> R:
        if isinstance(step, Cas):
            committed: R = self._compare_and_set(keys, step)
            return committed
        return super()._watched(keys, step)

    def _compare_and_set(self, keys: list[str], cas: Cas) -> Any:
        """The compare-and-set loop.

        It starts from the value this store last wrote or read (``_seen``), which saves the
        ``GET`` when this process is the record's only writer (a holder's progress, an agent's
        own view); a stale value only costs one failed attempt, whose reply carries the current
        value. Only what a successful write or a fresh read supports reaches the caller: a
        refusal (``plan`` raising) or "nothing to change" computed from a remembered value is
        re-checked against a fresh read.

        Fairness: optimistic writers are not served in order, and with dozens of processes on
        one record some could lose every race. After a few conflicts in a row a writer takes the
        record's *turn* (``{key}:turn``, a token with a short TTL): while it holds it, the
        update scripts refuse everybody else, so its next attempt succeeds. Correctness never
        depends on the turn (the compare does that); a turn whose holder died expires.
        """
        from ..errors import CoordError

        deadline = time.monotonic() + self.lock_timeout
        backoff = 0.002
        conflicts = 0
        token = ""
        turn_key = cas.key + ":turn"
        raw: str | None = self._seen.get(cas.key)
        fresh = raw is None  # only present records are remembered
        if fresh:
            raw = self._client.get(cas.key)
        try:
            while True:
                script_keys: list[str] | None
                try:
                    script_keys, args, result = cas.plan(raw)
                except CoordError:
                    if fresh:
                        raise
                    raw, fresh = self._client.get(cas.key), True
                    continue
                if script_keys is None:
                    if fresh:
                        self._remember(cas.key, raw)
                        return result
                    raw, fresh = self._client.get(cas.key), True
                    continue
                reply = cas.script(keys=[*script_keys, turn_key], args=[sha1(raw), token, *args])
                if reply == 1:
                    token = ""  # the script gave the turn back
                    self._remember(cas.key, args[0])
                    return result
                current = reply[0] if reply else None
                if fresh:  # a real conflict: someone wrote between our read and our write
                    if cas.once:
                        self._remember(cas.key, current)
                        return BUSY
                    conflicts += 1
                    if time.monotonic() > deadline:
                        raise self._contended(keys)
                    if conflicts >= _ESCALATE:
                        token = token or self._token()
                        self._take_turn(turn_key, token, deadline, keys)
                        current = self._client.get(cas.key)  # nobody else writes now
                    else:
                        time.sleep(random.uniform(0, backoff))
                        backoff = min(backoff * 2, 0.05)
                raw, fresh = current, True
        finally:
            if token:  # not consumed by a write: give it back (it would expire anyway)
                try:
                    self._script("give_turn", _GIVE_TURN)(keys=[turn_key], args=[token])
                except Exception:  # never mask the error that brought us here
                    pass

    def _take_turn(self, turn_key: str, token: str, deadline: float, keys: list[str]) -> None:
        take = self._script("take_turn", _TAKE_TURN)
        while take(keys=[turn_key], args=[token, _TURN_MS]) != 1:
            if time.monotonic() > deadline:
                raise self._contended(keys)
            time.sleep(random.uniform(0.0005, 0.003))

    def _remember(self, key: str, raw: Any) -> None:
        seen = self._seen
        seen.pop(key, None)
        if raw is None:
            return
        if len(seen) >= _SEEN_MAX:
            del seen[next(iter(seen))]
        seen[key] = raw
