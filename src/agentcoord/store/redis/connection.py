"""The connection layer of the Redis backend: URLs, the pinned protocol, keys, retries and the
two atomic write loops.

:class:`Connection` holds what every part of :class:`~.store.RedisStore` shares:

- the client, made by :func:`open_client` with RESP2 pinned (``protocol=2``): RESP2 is spoken by
  every Redis since 2.0 and by every managed service and proxy, and its reply shapes (lists of
  pairs for streams, plain messages for pub/sub) do not change with the server version;
- the key layout: every key of a workspace is ``{prefix}:{{{workspace}}}:...``, one hash tag per
  workspace, so the multi-key Lua scripts and ``MULTI`` blocks also run on Redis Cluster;
- :meth:`Connection.call`: transient failures (connection refused or reset, timeouts, a server
  still loading or a replica being promoted) are retried with a bounded, jittered exponential
  backoff, then reported as :class:`BackendUnavailable` with the URL (password hidden) and the
  reason. Nothing ever falls back to files. redis-py's own retries are switched off so this is
  the one place that decides how long a command may take;
- :meth:`Connection.watched`: the ``WATCH`` / ``MULTI`` / ``EXEC`` optimistic loop, and
  :meth:`Connection.compare_and_set`, the faster loop of the hot paths (task and agent updates):
  a record is read (``GET``, or the value this process last wrote or read), changed in Python by
  the domain's pure ``fn``, and written back by a Lua script that writes only if the record still
  has the SHA1 of what was read: two round trips and one script, where ``WATCH`` / ``MULTI`` /
  ``EXEC`` needs three round trips and eight commands. A failed compare returns the current
  value, so the retry needs no extra read. The update scripts start with :data:`COMPARE`.

Writes that are not idempotent carry a one-shot *operation key* (``op:{token}``) set in the
same transaction: when a connection drops after ``EXEC`` was sent, the retry first looks for that
key and, if the write did commit, does not apply it a second time.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

from ...core.urls import mask_url, scrub
from ...errors import BackendUnavailable, CorruptData, InvalidInput, LockTimeout

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    import redis
    from redis.commands.core import Script

    T = TypeVar("T")
    # redis-py annotates results as ``Awaitable[Any] | Any`` (one signature for sync and async
    # clients), which types nothing useful for a sync caller; the client and its pipelines are
    # handled as Any, and results are checked where they are decoded.
    Pipeline = Any
    Writes = Callable[[Pipeline], None] | None
    R = TypeVar("R")
    Step = Callable[[Pipeline], tuple[Writes, R]]

#: The RESP version, pinned: see the module docstring.
PROTOCOL = 2
#: The pub/sub channel suffix that carries change hints.
CHANGES = "changes"
#: The URL query parameter that names the workspace (stripped before redis-py sees the URL).
WORKSPACE_PARAM = "workspace"
DEFAULT_WORKSPACE = "default"

NOT_DONE = object()
#: Error replies that pass by themselves: a long script running (BUSY), a failover in progress.
#: (LOADING and READONLY have their own redis-py exception classes.)
_TRANSIENT_REPLIES = ("BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")


def _join(scheme: str, netloc: str, path: str, query: str, fragment: str) -> str:
    # Not urlunsplit: it would turn "unix:///path" into "unix:/path".
    out = f"{scheme}://{netloc}{path}"
    if query:
        out += "?" + query
    if fragment:
        out += "#" + fragment
    return out


def split_workspace(url: str) -> tuple[str, str | None]:
    """``url`` without a ``workspace=`` query parameter, and that parameter's value.
    :class:`InvalidInput` (exit 2, the URL masked) when it cannot be split (a bad IPv6
    host)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise invalid_url(url, exc) from None
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    found = [v for k, v in pairs if k == WORKSPACE_PARAM]
    if not found:
        return url, None
    rest = urlencode([(k, v) for k, v in pairs if k != WORKSPACE_PARAM])
    return _join(parts.scheme, parts.netloc, parts.path, rest, parts.fragment), found[-1]


def open_client(url: str, *, socket_timeout: float, connect_timeout: float) -> redis.Redis:
    """A redis-py client for ``url`` with RESP2 pinned and redis-py's own retries off."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    options: dict[str, Any] = {
        "protocol": PROTOCOL,
        "decode_responses": True,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        # Pub/sub connections sit idle for long stretches; a periodic PING notices a dead peer.
        "health_check_interval": 30,
        "retry": Retry(NoBackoff(), 0),
    }
    if not url.startswith("unix://"):
        options["socket_keepalive"] = True  # unix sockets reject the option
    try:
        client = redis.Redis.from_url(url, **options)
        pool = client.connection_pool
        # redis-py turns every query parameter into a connection option, and only the first
        # command finds out that one is unknown (a TypeError deep in the pool): try now.
        # Making a connection object opens no socket.
        pool.connection_class(**pool.connection_kwargs)
    except (ValueError, TypeError) as exc:
        raise invalid_url(url, exc) from None
    return client


def invalid_url(url: str, exc: BaseException) -> InvalidInput:
    """Exit 2 for a URL that does not parse: the URL masked, and the parser's reason without
    any piece of the credential (``Port could not be cast ... 's3cret'`` quotes the part of a
    password after an unencoded ``#``)."""
    reason = scrub(str(exc), url)
    if any(c in url.partition("://")[2].rpartition("@")[0] for c in "#/?"):
        reason += " (a '#', '/' or '?' in the password must be percent-encoded: %23, %2F, %3F)"
    # The query is left out: a misspelt parameter's value may be a secret all the same (the
    # reason names the parameter).
    shown = mask_url(url).partition("?")[0]
    return InvalidInput(f"invalid Redis URL {shown}: {reason}")


def check_key_part(value: str, what: str) -> str:
    # A brace would start a second hash tag and scatter the workspace over cluster slots.
    if not value or any(c in value for c in "{}:\r\n ") or len(value) > 128:
        raise InvalidInput(f"invalid Redis {what} {value!r}: no braces, colons or spaces")
    return value


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
    """A compare-and-set update of the record at ``key``, for :meth:`Connection.watched`.

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
        raise TypeError("a Cas runs in Connection.compare_and_set")


def sha1(raw: str | None) -> str:
    return "" if raw is None else hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()


class Connection:
    """One workspace's view of a Redis server: its client, keys, retries and decoding.

    ``url`` may carry ``?workspace=NAME`` (else ``workspace``, else ``default``); every key is
    ``{prefix}:{{workspace}}:...``. ``retry_seconds`` bounds retries of transient failures,
    ``lock_timeout`` the optimistic loops under contention (then :class:`LockTimeout`)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "coord",
        workspace: str | None = None,
        client: redis.Redis | None = None,
        retry_seconds: float = 2.0,
        lock_timeout: float = 10.0,
        socket_timeout: float = 5.0,
        connect_timeout: float = 1.0,
    ) -> None:
        bare_url, url_workspace = split_workspace(url)
        self.url = url
        self.location = mask_url(url)
        self.prefix = check_key_part(prefix, "prefix")
        self.workspace = check_key_part(
            workspace or url_workspace or DEFAULT_WORKSPACE, "workspace"
        )
        self.retry_seconds = retry_seconds
        self.lock_timeout = lock_timeout
        self.socket_timeout = socket_timeout
        # Long enough to outlive every retry of the write it marks.
        self.op_ttl_ms = int((retry_seconds + socket_timeout) * 1000) + 10_000
        self.base = f"{self.prefix}:{{{self.workspace}}}"
        self.changes = self.key(CHANGES)
        self.scripts: dict[str, Script] = {}
        #: The value this process last wrote or read per record (see :meth:`compare_and_set`).
        self.seen: dict[str, str] = {}
        self.own_client = client is None
        self.client: Any = (  # a redis.Redis (see Pipeline above)
            client
            if client is not None
            else open_client(
                bare_url, socket_timeout=socket_timeout, connect_timeout=connect_timeout
            )
        )

    def close(self) -> None:
        if self.own_client:
            self.client.close()

    def script(self, name: str, source: str) -> Script:
        script = self.scripts.get(name)
        if script is None:  # registered lazily: EVALSHA first, EVAL on NOSCRIPT (redis-py)
            script = self.scripts[name] = self.client.register_script(source)
        return script

    def key(self, *parts: str) -> str:
        return ":".join((self.base, *parts))

    @staticmethod
    def glob(text: str) -> str:
        """``text`` with the glob characters of SCAN MATCH escaped (the hash tag's braces are
        literal there)."""
        return "".join("\\" + c if c in "*?[]\\" else c for c in text)

    @staticmethod
    def hint(kind: str, action: str, key: str) -> str:
        return f"{kind} {action} {key}"

    @staticmethod
    def token() -> str:
        return os.urandom(8).hex()

    # -- errors and retries -----------------------------------------------------------------
    def unavailable(self, exc: BaseException, what: str = "unreachable") -> BackendUnavailable:
        reason = str(exc) or type(exc).__name__
        reason = scrub(reason, self.url)  # redis-py does not echo passwords: belt and braces
        return BackendUnavailable(
            f"Redis at {self.location} {what}: {reason}", url=self.location, reason=reason
        )

    def call(self, op: Callable[[], T], committed: Callable[[], Any] | None = None) -> T:
        """Run ``op``, retrying transient failures within ``retry_seconds``.

        ``committed`` is asked before each retry whether an earlier attempt's write went through
        after all (its answer is returned then); it returns ``NOT_DONE`` when it did not.
        """
        from redis.exceptions import (
            AuthenticationError,
            AuthorizationError,
            ConnectionError,
            NoPermissionError,
            OutOfMemoryError,
            ReadOnlyError,
            ResponseError,
            TimeoutError,
        )

        deadline = time.monotonic() + self.retry_seconds
        delay = 0.025
        failed = False
        while True:
            try:
                if failed and committed is not None:
                    done = committed()
                    if done is not NOT_DONE:
                        result: T = done
                        return result
                return op()
            except (AuthenticationError, AuthorizationError, NoPermissionError) as exc:
                raise self.unavailable(exc, "refused access (check the password)") from exc
            except (ConnectionError, TimeoutError, ReadOnlyError, ResponseError) as exc:
                if isinstance(exc, OutOfMemoryError):
                    raise self.unavailable(exc, "refused the write") from exc
                if isinstance(exc, ResponseError) and not isinstance(exc, ReadOnlyError):
                    message = str(exc)
                    if message.startswith("WRONGTYPE"):  # a key of ours holds a foreign value
                        raise CorruptData(self.location, 1, message) from exc
                    if not message.startswith(_TRANSIENT_REPLIES):
                        raise self.unavailable(exc, "refused the command") from exc
                if time.monotonic() + delay > deadline:
                    raise self.unavailable(exc) from exc
                time.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 0.5)
                failed = True
            except UnicodeDecodeError as exc:
                raise CorruptData(self.location, 1, f"a value is not UTF-8: {exc}") from exc

    def read_index(
        self, op: Callable[[], T], where: str, errors: list[CorruptData] | None, empty: T
    ) -> T:
        """Run ``op``, a read of derived index keys (``where``). When one of them holds another
        Redis type, the listing goes on without it (``empty``) and reports it in ``errors``, if
        given (else :class:`CorruptData` is raised): ``coord doctor`` can then run and rebuild
        the index."""
        try:
            return self.call(op)
        except CorruptData as exc:
            if errors is None:
                raise
            errors.append(CorruptData(where, 1, f"{exc.reason} (coord doctor --fix rebuilds it)"))
            return empty

    def watched(self, keys: list[str], step: Step[R] | Cas) -> R:
        """The optimistic read-modify-write loop (a :class:`Cas` step runs the compare-and-set
        loop, :meth:`compare_and_set`, instead).

        ``step`` reads through the pipeline (which is WATCHing ``keys``) and returns the queued
        writes (or None for "nothing to write") and the result. A concurrent write to a watched
        key makes ``EXEC`` fail; ``step`` then runs again on the new value, with jittered backoff,
        until ``lock_timeout`` passes (:class:`LockTimeout`).
        """
        from redis.exceptions import ConnectionError, TimeoutError, WatchError

        if isinstance(step, Cas):
            committed: R = self.compare_and_set(keys, step)
            return committed
        deadline = time.monotonic() + self.lock_timeout
        backoff = 0.002
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(*keys)
                    writes, result = step(pipe)
                    if writes is None:
                        pipe.reset()
                        return result
                    pipe.multi()
                    writes(pipe)
                    pipe.execute()
                    return result
                except WatchError as exc:
                    # redis-py reports a connection lost while WATCHing as a WatchError; that is
                    # an outage for _call to retry, not a conflict.
                    cause = exc.__context__
                    if isinstance(cause, (ConnectionError, TimeoutError)):
                        raise cause from None
                    if time.monotonic() > deadline:
                        raise self.contended(keys) from None
                    time.sleep(random.uniform(0, backoff))
                    backoff = min(backoff * 2, 0.05)

    def notify(self, hint: str) -> None:
        """Publish a change hint after a write committed, best effort: a hint that cannot be
        published (a server that refuses ``PUBLISH`` to this user, a connection just lost) costs
        followers only latency (they re-read every second), so it never fails the write. The
        scripts publish with ``redis.pcall`` for the same reason."""
        from redis.exceptions import RedisError

        try:
            self.client.publish(self.changes, hint)
        except RedisError:
            pass

    def contended(self, keys: list[str]) -> LockTimeout:
        return LockTimeout(
            f"Redis at {self.location}: {keys[0]} kept changing under us for "
            f"{self.lock_timeout:g}s",
            key=keys[0],
        )

    def committed(self, op_key: str, then: Callable[[], Any]) -> Callable[[], Any]:
        def check() -> Any:
            return then() if self.client.exists(op_key) else NOT_DONE

        return check

    # -- decoding -----------------------------------------------------------------------------
    @staticmethod
    def to_int(where: str, raw: Any) -> int:
        """A stored counter, seq or cursor (absent: 0): only plain decimal digits, as Redis and
        the scripts write them (not ``-1``, ``1_000``, `` 7`` or ``1e3``), else corrupt."""
        if raw is None:
            return 0
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if not (text.isascii() and text.isdigit()):
            raise CorruptData(where, 1, f"not a whole number >= 0: {raw!r}")
        return int(text)

    @staticmethod
    def dumps(data: dict[str, Any]) -> str:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @staticmethod
    def decode(key: str, raw: str, from_dict: Callable[[dict[str, Any]], T]) -> T:
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, found {type(data).__name__}")
            return from_dict(data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if isinstance(exc, KeyError) else str(exc)
            raise CorruptData(key, 1, f"unreadable record: {reason}") from None

    def compare_and_set(self, keys: list[str], cas: Cas) -> Any:
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
        from ...errors import CoordError

        deadline = time.monotonic() + self.lock_timeout
        backoff = 0.002
        conflicts = 0
        token = ""
        turn_key = cas.key + ":turn"
        raw: str | None = self.seen.get(cas.key)
        fresh = raw is None  # only present records are remembered
        if fresh:
            raw = self.client.get(cas.key)
        try:
            while True:
                script_keys: list[str] | None
                try:
                    script_keys, args, result = cas.plan(raw)
                except CoordError:
                    if fresh:
                        raise
                    raw, fresh = self.client.get(cas.key), True
                    continue
                if script_keys is None:
                    if fresh:
                        self.remember(cas.key, raw)
                        return result
                    raw, fresh = self.client.get(cas.key), True
                    continue
                reply = cas.script(keys=[*script_keys, turn_key], args=[sha1(raw), token, *args])
                if reply == 1:
                    token = ""  # the script gave the turn back
                    self.remember(cas.key, args[0])
                    return result
                current = reply[0] if reply else None
                if fresh:  # a real conflict: someone wrote between our read and our write
                    if cas.once:
                        self.remember(cas.key, current)
                        return BUSY
                    conflicts += 1
                    if time.monotonic() > deadline:
                        raise self.contended(keys)
                    if conflicts >= _ESCALATE:
                        token = token or self.token()
                        self.take_turn(turn_key, token, deadline, keys)
                        current = self.client.get(cas.key)  # nobody else writes now
                    else:
                        time.sleep(random.uniform(0, backoff))
                        backoff = min(backoff * 2, 0.05)
                raw, fresh = current, True
        finally:
            if token:  # not consumed by a write: give it back (it would expire anyway)
                try:
                    self.script("give_turn", _GIVE_TURN)(keys=[turn_key], args=[token])
                except Exception:  # never mask the error that brought us here
                    pass

    def take_turn(self, turn_key: str, token: str, deadline: float, keys: list[str]) -> None:
        take = self.script("take_turn", _TAKE_TURN)
        while take(keys=[turn_key], args=[token, _TURN_MS]) != 1:
            if time.monotonic() > deadline:
                raise self.contended(keys)
            time.sleep(random.uniform(0.0005, 0.003))

    def remember(self, key: str, raw: Any) -> None:
        seen = self.seen
        seen.pop(key, None)
        if raw is None:
            return
        if len(seen) >= _SEEN_MAX:
            del seen[next(iter(seen))]
        seen[key] = raw
