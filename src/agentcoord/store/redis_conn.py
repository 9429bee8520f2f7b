"""The connection layer of the Redis backend: URLs, the pinned protocol, keys and retries.

:class:`RedisBase` holds what every part of :class:`~.redis_store.RedisStore` shares:

- the client, made by :func:`open_client` with RESP2 pinned (``protocol=2``): RESP2 is spoken by
  every Redis since 2.0 and by every managed service and proxy, and its reply shapes (lists of
  pairs for streams, plain messages for pub/sub) do not change with the server version;
- the key layout: every key of a workspace is ``{prefix}:{{{workspace}}}:...``, one hash tag per
  workspace, so the multi-key Lua scripts and ``MULTI`` blocks also run on Redis Cluster;
- :meth:`RedisBase._call`: transient failures (connection refused or reset, timeouts, a server
  still loading or a replica being promoted) are retried with a bounded, jittered exponential
  backoff, then reported as :class:`BackendUnavailable` with the URL (password hidden) and the
  reason. Nothing ever falls back to files. redis-py's own retries are switched off so this is
  the one place that decides how long a command may take;
- :meth:`RedisBase._watched`: the ``WATCH`` / ``MULTI`` / ``EXEC`` optimistic loop (the hot
  paths, task and agent updates, use the compare-and-set loop of :mod:`.redis_cas` instead).

Writes that are not idempotent carry a one-shot *operation key* (``op:{token}``) set in the
same transaction: when a connection drops after ``EXEC`` was sent, the retry first looks for that
key and, if the write did commit, does not apply it a second time.
"""

from __future__ import annotations

import json
import os
import random
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..errors import BackendUnavailable, CorruptData, InvalidInput, LockTimeout

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

_NOT_DONE = object()
#: Error replies that pass by themselves: a long script running (BUSY), a failover in progress.
#: (LOADING and READONLY have their own redis-py exception classes.)
_TRANSIENT_REPLIES = ("BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (in the userinfo and in the query)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable Redis URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if sep else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k == "password" else v) for k, v in pairs], safe="*")
    return _join(parts.scheme, netloc, parts.path, query, parts.fragment)


def _join(scheme: str, netloc: str, path: str, query: str, fragment: str) -> str:
    # Not urlunsplit: it would turn "unix:///path" into "unix:/path".
    out = f"{scheme}://{netloc}{path}"
    if query:
        out += "?" + query
    if fragment:
        out += "#" + fragment
    return out


def split_workspace(url: str) -> tuple[str, str | None]:
    """``url`` without a ``workspace=`` query parameter, and that parameter's value."""
    parts = urlsplit(url)
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
        return redis.Redis.from_url(url, **options)
    except ValueError as exc:
        raise InvalidInput(f"invalid Redis URL {mask_url(url)}: {exc}") from None


def check_key_part(value: str, what: str) -> str:
    # A brace would start a second hash tag and scatter the workspace over cluster slots.
    if not value or any(c in value for c in "{}:\r\n ") or len(value) > 128:
        raise InvalidInput(f"invalid Redis {what} {value!r}: no braces, colons or spaces")
    return value


class RedisBase:
    """Client, keys, retries and JSON decoding shared by the parts of the Redis store."""

    location: str
    url: str
    workspace: str
    retry_seconds: float
    lock_timeout: float
    op_ttl_ms: int
    _client: Any  # a redis.Redis (see Pipeline above)
    _base: str
    _changes: str
    _scripts: dict[str, Script]

    def _script(self, name: str, source: str) -> Script:
        script = self._scripts.get(name)
        if script is None:  # registered lazily: EVALSHA first, EVAL on NOSCRIPT (redis-py)
            script = self._scripts[name] = self._client.register_script(source)
        return script

    def _key(self, *parts: str) -> str:
        return ":".join((self._base, *parts))

    @staticmethod
    def _glob(text: str) -> str:
        """``text`` with the glob characters of SCAN MATCH escaped (the hash tag's braces are
        literal there)."""
        return "".join("\\" + c if c in "*?[]\\" else c for c in text)

    @staticmethod
    def _hint(kind: str, action: str, key: str) -> str:
        return f"{kind} {action} {key}"

    @staticmethod
    def _token() -> str:
        return os.urandom(8).hex()

    # -- errors and retries -----------------------------------------------------------------
    def _unavailable(self, exc: BaseException, what: str = "unreachable") -> BackendUnavailable:
        reason = str(exc) or type(exc).__name__
        password = urlsplit(self.url).password if "@" in self.url else None
        if password:  # redis-py does not echo passwords, but never let one reach a message
            reason = reason.replace(password, "***")
        return BackendUnavailable(
            f"Redis at {self.location} {what}: {reason}", url=self.location, reason=reason
        )

    def _call(self, op: Callable[[], T], committed: Callable[[], Any] | None = None) -> T:
        """Run ``op``, retrying transient failures within ``retry_seconds``.

        ``committed`` is asked before each retry whether an earlier attempt's write went through
        after all (its answer is returned then); it returns ``_NOT_DONE`` when it did not.
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
                    if done is not _NOT_DONE:
                        result: T = done
                        return result
                return op()
            except (AuthenticationError, AuthorizationError, NoPermissionError) as exc:
                raise self._unavailable(exc, "refused access (check the password)") from exc
            except (ConnectionError, TimeoutError, ReadOnlyError, ResponseError) as exc:
                if isinstance(exc, OutOfMemoryError):
                    raise self._unavailable(exc, "refused the write") from exc
                if isinstance(exc, ResponseError) and not isinstance(exc, ReadOnlyError):
                    message = str(exc)
                    if message.startswith("WRONGTYPE"):  # a key of ours holds a foreign value
                        raise CorruptData(self.location, 1, message) from exc
                    if not message.startswith(_TRANSIENT_REPLIES):
                        raise self._unavailable(exc, "refused the command") from exc
                if time.monotonic() + delay > deadline:
                    raise self._unavailable(exc) from exc
                time.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 0.5)
                failed = True
            except UnicodeDecodeError as exc:
                raise CorruptData(self.location, 1, f"a value is not UTF-8: {exc}") from exc

    def _watched(self, keys: list[str], step: Step[R]) -> R:
        """The optimistic read-modify-write loop.

        ``step`` reads through the pipeline (which is WATCHing ``keys``) and returns the queued
        writes (or None for "nothing to write") and the result. A concurrent write to a watched
        key makes ``EXEC`` fail; ``step`` then runs again on the new value, with jittered backoff,
        until ``lock_timeout`` passes (:class:`LockTimeout`).
        """
        from redis.exceptions import ConnectionError, TimeoutError, WatchError

        deadline = time.monotonic() + self.lock_timeout
        backoff = 0.002
        with self._client.pipeline(transaction=True) as pipe:
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
                        raise self._contended(keys) from None
                    time.sleep(random.uniform(0, backoff))
                    backoff = min(backoff * 2, 0.05)

    def _contended(self, keys: list[str]) -> LockTimeout:
        return LockTimeout(
            f"Redis at {self.location}: {keys[0]} kept changing under us for "
            f"{self.lock_timeout:g}s",
            key=keys[0],
        )

    def _committed(self, op_key: str, then: Callable[[], Any]) -> Callable[[], Any]:
        def check() -> Any:
            return then() if self._client.exists(op_key) else _NOT_DONE

        return check

    # -- decoding -----------------------------------------------------------------------------
    @staticmethod
    def _int(where: str, raw: Any) -> int:
        if raw is None:
            return 0
        try:
            return int(raw)
        except ValueError:
            raise CorruptData(where, 1, f"not a number: {raw!r}") from None

    @staticmethod
    def _dumps(data: dict[str, Any]) -> str:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @staticmethod
    def _decode(key: str, raw: str, from_dict: Callable[[dict[str, Any]], T]) -> T:
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, found {type(data).__name__}")
            return from_dict(data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if isinstance(exc, KeyError) else str(exc)
            raise CorruptData(key, 1, f"unreadable record: {reason}") from None
