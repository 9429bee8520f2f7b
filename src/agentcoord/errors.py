"""One exception hierarchy for every interface.

Each class carries the CLI exit code (SPEC section 6) and a stable machine-readable ``code``
that the CLI prints under ``--json`` and the MCP server returns in tool errors. Callers catch by
class; tools and agents match on ``code``. :class:`LockTimeout` is also the builtin
``TimeoutError`` (as ``filelock.Timeout`` is), so generic timeout handling catches a lock wait.
Every error survives pickling (a worker process can send one back whole, details included).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class CoordError(Exception):
    """Base of everything agentcoord raises on purpose."""

    exit_code = 1
    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message, "exit": self.exit_code}
        out.update({k: v for k, v in self.details.items() if v is not None})
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.message, dict(self.details)))


def _restore(cls: type[CoordError], message: str, details: dict[str, Any]) -> CoordError:
    """Rebuild a pickled error (``message`` and ``details``, whatever its ``__init__`` takes)."""
    exc = cls.__new__(cls)
    CoordError.__init__(exc, message, **details)
    return exc


# exit 2: the caller asked for something malformed -------------------------------------------
class InvalidInput(CoordError):
    exit_code = 2
    code = "invalid_input"


class InvalidName(InvalidInput):
    code = "invalid_name"


# exit 3: the thing is not there --------------------------------------------------------------
class NotFound(CoordError):
    exit_code = 3
    code = "not_found"


class NothingToClaim(NotFound):
    code = "nothing_to_claim"


# exit 4: someone else holds it, or the state moved on ----------------------------------------
class Conflict(CoordError):
    exit_code = 4
    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class LeaseLost(Conflict):
    """The caller no longer holds the task's lease (expired, reclaimed or never held)."""

    code = "lease_lost"


class StaleEpoch(Conflict):
    code = "stale_epoch"


class BreakerOpen(Conflict):
    code = "breaker_open"


class AlreadyRunning(Conflict):
    code = "already_running"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class DependencyCycle(InvalidInput):
    code = "dependency_cycle"


# exit 5: the store cannot be reached or locked -----------------------------------------------
class BackendUnavailable(CoordError):
    exit_code = 5
    code = "backend_unavailable"


class LockTimeout(BackendUnavailable, TimeoutError):
    """A lock (or an optimistic write under contention) was not had within ``lock_timeout``."""

    code = "lock_timeout"


# exit 6: a file or record is unreadable; it is reported, never overwritten -------------------
class CorruptData(CoordError):
    """A record that does not parse: ``path`` (a file, or a Redis key), ``line`` (1-based) and
    ``reason``; ``message`` is ``path:line: reason``."""

    exit_code = 6
    code = "corrupt"

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}", path=path, line=line, reason=reason)
        self.path = path
        self.line = line
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.line, self.reason))


EXIT_OK = 0
EXIT_ATTENTION = 1
