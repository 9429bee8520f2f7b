"""The Python API: one entry object, :class:`Coordinator`, opened on a directory or a URL.

    from agentcoord import Coordinator

    with Coordinator.open() as coord:          # finds .claude/coordination/ like git finds .git
        task = coord.tasks.claim(agent="ai-engineer")
        coord.tasks.progress(task.id, agent="ai-engineer", current=3500, total=10000)
        coord.tasks.complete(task.id, agent="ai-engineer", result="saved final.pt")

Every method raises a subclass of :class:`agentcoord.errors.CoordError` whose ``exit_code`` is
the CLI's. The CLI, the MCP server, the dashboard and the timer are thin layers over this object.
Domain areas are loaded on first use so that a CLI call imports only what it needs.
"""

from __future__ import annotations

import os
import time
from functools import cached_property

from .errors import InvalidInput
from .workspace import Config, Workspace, find_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .agents import Agents
    from .contexts import Contexts
    from .events import Events
    from .maintenance import Maintenance
    from .metrics import Metrics
    from .monitor import Monitor
    from .store.base import Store
    from .tasks import TaskBoard

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_store(
    url: str,
    *,
    clock: Callable[[], float] = time.time,
    prefix: str = "coord",
    config: Config | None = None,
) -> Store:
    """A Redis store for ``url`` (the ``[redis]`` extra must be installed), with the lock
    timeout and retry budget of the workspace ``config`` (``lock_timeout``, ``retry_seconds``)."""
    if not url.startswith(REDIS_SCHEMES):
        raise InvalidInput(
            f"unsupported store URL {url!r}: use redis://, rediss:// or unix:// "
            "(or --dir for a markdown workspace)"
        )
    try:
        from .store.redis_store import RedisStore
    except ImportError as exc:  # pragma: no cover - depends on the install
        from .errors import BackendUnavailable

        raise BackendUnavailable(
            f"the Redis backend needs redis-py: pip install 'agentcoord[redis]' ({exc})"
        ) from exc
    settings = config if config is not None else Config()
    return RedisStore(
        url,
        clock=clock,
        prefix=prefix,
        lock_timeout=settings.float("lock_timeout"),
        retry_seconds=settings.float("retry_seconds"),
    )


class Coordinator:
    """A workspace: its store, settings and clock, and the domain areas over them."""

    def __init__(
        self,
        store: Store,
        *,
        config: Config | None = None,
        workspace: Workspace | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.workspace = workspace
        self.config = (
            config
            if config is not None
            else (workspace.config if workspace is not None else Config())
        )
        self.clock = clock

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str] | None = None,
        *,
        url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Coordinator:
        """Open the workspace at ``directory`` (or found from the cwd), or the store at ``url``.

        A Redis URL comes from ``url``, ``$COORD_URL`` or the workspace's ``config.json``. There
        is never a silent fallback from an unreachable Redis to files.
        """
        url = url or os.environ.get("COORD_URL") or None
        workspace: Workspace | None = None
        if url is None or directory is not None:
            try:
                workspace = Workspace(find_root(os.fspath(directory) if directory else None))
            except Exception:
                if url is None:
                    raise
        config = workspace.config if workspace is not None else Config()
        url = url or (config["url"] if config["backend"] == "redis" else None)
        store: Store
        if url:
            store = open_store(url, clock=clock, config=config)
        else:
            assert workspace is not None
            if not os.path.isdir(workspace.root):
                from .errors import NotFound

                raise NotFound(
                    f"workspace directory {workspace.root} does not exist; run 'coord init'"
                )
            from .store.markdown import MarkdownStore

            store = MarkdownStore(
                workspace.root,
                durable=bool(config["durable"]) and os.environ.get("COORD_FSYNC") != "0",
                lock_timeout=config.float("lock_timeout"),
                clock=clock,
            )
        return cls(store, config=config, workspace=workspace, clock=clock)

    def now(self) -> float:
        return self.clock()

    @cached_property
    def tasks(self) -> TaskBoard:
        from .tasks import TaskBoard

        return TaskBoard(self)

    @cached_property
    def agents(self) -> Agents:
        from .agents import Agents

        return Agents(self)

    @cached_property
    def events(self) -> Events:
        from .events import Events

        return Events(self)

    @cached_property
    def contexts(self) -> Contexts:
        from .contexts import Contexts

        return Contexts(self)

    @cached_property
    def monitor(self) -> Monitor:
        from .monitor import Monitor

        return Monitor(self)

    @cached_property
    def metrics(self) -> Metrics:
        from .metrics import Metrics

        return Metrics(self)

    @cached_property
    def maintenance(self) -> Maintenance:
        from .maintenance import Maintenance

        return Maintenance(self)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Coordinator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
