"""agentcoord: coordination for teams of AI coding agents.

The public API: :class:`Coordinator` (open a workspace on a directory or a Redis URL), the
records it returns (:class:`Task`, :class:`Agent`, :class:`Event`, :class:`ContextDoc`,
:class:`TaskHead`, :class:`LogLine`), the storage interface a backend implements
(:class:`Store`, :class:`Change`) with its reference implementation (:class:`MemoryStore`), and
the exceptions, one hierarchy under :class:`CoordError` whose classes map to the CLI's exit
codes. ``__all__`` is pinned by a test.

Names are imported lazily (on first attribute access), so ``import agentcoord`` stays cheap for
the CLI, whose start-up time is a product target.
"""

from __future__ import annotations

__version__ = "0.2.0.dev0"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .api import Coordinator
    from .core.models import Agent, ContextDoc, Event, LogLine, Task, TaskHead
    from .errors import (
        AlreadyExists,
        AlreadyRunning,
        BackendUnavailable,
        BreakerOpen,
        Conflict,
        CoordError,
        CorruptData,
        DependencyCycle,
        InvalidInput,
        InvalidName,
        InvalidTransition,
        LeaseLost,
        LockTimeout,
        NotFound,
        NothingToClaim,
        StaleEpoch,
    )
    from .store.base import Change, Store
    from .store.memory import MemoryStore

#: public name -> the module that defines it
_WHERE = {
    "Coordinator": "api",
    "Agent": "core.models",
    "ContextDoc": "core.models",
    "Event": "core.models",
    "LogLine": "core.models",
    "Task": "core.models",
    "TaskHead": "core.models",
    "Change": "store.base",
    "Store": "store.base",
    "MemoryStore": "store.memory",
    **dict.fromkeys(
        (
            "AlreadyExists",
            "AlreadyRunning",
            "BackendUnavailable",
            "BreakerOpen",
            "Conflict",
            "CoordError",
            "CorruptData",
            "DependencyCycle",
            "InvalidInput",
            "InvalidName",
            "InvalidTransition",
            "LeaseLost",
            "LockTimeout",
            "NotFound",
            "NothingToClaim",
            "StaleEpoch",
        ),
        "errors",
    ),
}

__all__ = [
    "Agent",
    "AlreadyExists",
    "AlreadyRunning",
    "BackendUnavailable",
    "BreakerOpen",
    "Change",
    "Conflict",
    "ContextDoc",
    "CoordError",
    "Coordinator",
    "CorruptData",
    "DependencyCycle",
    "Event",
    "InvalidInput",
    "InvalidName",
    "InvalidTransition",
    "LeaseLost",
    "LockTimeout",
    "LogLine",
    "MemoryStore",
    "NotFound",
    "NothingToClaim",
    "StaleEpoch",
    "Store",
    "Task",
    "TaskHead",
    "__version__",
]


def __getattr__(name: str) -> object:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'agentcoord' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{where}", __name__), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
