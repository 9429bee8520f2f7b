"""The Python API: one entry object, :class:`Coordinator`, opened on a directory or a URL.

    from agentcoord import Coordinator

    with Coordinator.open() as coord:          # finds .claude/coordination/ like git finds .git
        task = coord.tasks.claim(agent="ai-engineer")
        coord.tasks.progress(task.id, agent="ai-engineer", current=3500, total=10000)
        coord.tasks.complete(task.id, agent="ai-engineer", result="saved final.pt")

Every method raises a subclass of :class:`agentcoord.errors.CoordError` whose ``exit_code`` is
the CLI's. The CLI, the MCP server, the dashboard and the timer are thin layers over this object.

The Coordinator is the one place that wires the domain areas together (SPEC section 10): each
area is built from ``(store, config, clock)`` and reaches the others only through the hooks
given here (the board asks the agents area for the breaker's consent and reports ownership
changes; the agents area asks the board to renew or give back leases; ``assign --auto`` asks the
router). Areas are built on first use, so a CLI call imports only what it needs.
"""

from __future__ import annotations

import os
import time
from collections import deque
from functools import cached_property

from .errors import CoordError, InvalidInput
from .workspace import Workspace, find_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .core.config import Config
    from .core.leases import Renewal
    from .core.models import Task
    from .domain.agents import Agents
    from .domain.contexts import Contexts
    from .domain.events import Events
    from .domain.housekeeping import Maintenance
    from .domain.messages import Messages
    from .domain.monitor import Monitor
    from .domain.reports import Metrics, Reports
    from .domain.reservations import Reservations
    from .domain.tasks import TaskBoard
    from .ops.doctor import Doctor
    from .store.base import Store

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
#: How many unseen follow-up warnings a Coordinator keeps.
WARNINGS_KEPT = 100


def open_store(
    url: str,
    *,
    clock: Callable[[], float] = time.time,
    prefix: str = "coord",
    config: Config | None = None,
) -> Store:
    """A Redis store for ``url`` (the ``[redis]`` extra must be installed), with the lock
    timeout and retry budget of the workspace ``config`` (``lock_timeout``, ``retry_seconds``).

    Raises :class:`InvalidInput` for a URL of another scheme and :class:`BackendUnavailable`
    when redis-py is not installed."""
    if not url.startswith(REDIS_SCHEMES):
        from .core.urls import mask_url

        raise InvalidInput(
            f"unsupported store URL {mask_url(url)!r}: use redis://, rediss:// or unix:// "
            "(or --dir for a markdown workspace)"
        )
    try:
        from .store.redis.store import RedisStore
    except ImportError as exc:  # pragma: no cover - depends on the install
        from .errors import BackendUnavailable

        raise BackendUnavailable(
            f"the Redis backend needs redis-py: pip install 'agentcoord[redis]' ({exc})"
        ) from exc
    from .core.config import Config

    settings = config if config is not None else Config()
    return RedisStore(
        url,
        clock=clock,
        prefix=prefix,
        lock_timeout=settings.float("lock_timeout"),
        retry_seconds=settings.float("retry_seconds"),
    )


class Coordinator:
    """A workspace: its store, settings and clock, and the domain areas over them.

    ``clock`` is a zero-argument callable returning POSIX seconds (tests pass a fake one)."""

    def __init__(
        self,
        store: Store,
        *,
        config: Config | None = None,
        workspace: Workspace | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from .core.config import Config

        self.store = store
        self.workspace = workspace
        self.config = (
            config
            if config is not None
            else (workspace.config if workspace is not None else Config())
        )
        self.clock = clock
        #: Follow-up effects that failed after an operation's own write committed (the
        #: operation succeeded): interfaces show them and clear it (SPEC section 4). Bounded,
        #: so that a long-lived process that never looks does not grow.
        self.warnings: deque[str] = deque(maxlen=WARNINGS_KEPT)

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
        is never a silent fallback from an unreachable Redis to files. Raises :class:`NotFound`
        (exit 3) when no workspace is found or its directory is gone."""
        url = url or os.environ.get("COORD_URL") or None
        workspace: Workspace | None = None
        if url is None or directory is not None:
            try:
                workspace = Workspace(find_root(os.fspath(directory) if directory else None))
            except Exception:
                if url is None:
                    raise
        from .core.config import Config

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
            from .store.markdown.store import MarkdownStore

            store = MarkdownStore(
                workspace.root,
                durable=bool(config["durable"]) and os.environ.get("COORD_FSYNC") != "0",
                lock_timeout=config.float("lock_timeout"),
                clock=clock,
            )
        return cls(store, config=config, workspace=workspace, clock=clock)

    def now(self) -> float:
        return self.clock()

    # -- the areas, wired ------------------------------------------------------------------
    @cached_property
    def tasks(self) -> TaskBoard:
        from .domain.tasks import BoardHooks, TaskBoard

        def on_change(task: Task, previous: str | None, progress_only: bool) -> None:
            self.agents.on_task_change(task, previous, progress_only=progress_only)
            # A task its holder no longer holds (ended, released, reaped, reclaimed): drop the
            # reservations tied to it. A fresh claim (no previous holder), the claim path's
            # common case, costs no read of the table; liveness on read covers the rest.
            moved = task.status != "in_progress" or previous != task.agent
            if not progress_only and previous is not None and moved:
                self.reservations.on_task_change(task)

        def pick_agent(capability: str | list[str] | None) -> str:
            from .domain.routing import pick_agent

            return pick_agent(self.monitor, capability)

        def before_claim(agent: str, register: bool) -> None:
            self.agents.before_claim(agent, register)

        def identify(agent: str, purpose: str, register: bool) -> None:
            self.agents.require(agent, purpose=purpose, register=register)

        hooks = BoardHooks(
            before_claim=before_claim,
            identify=identify,
            on_change=on_change,
            pick_agent=pick_agent,
            warn=self.warnings.append,
        )
        return TaskBoard(self.store, self.config, self.clock, hooks)

    @cached_property
    def agents(self) -> Agents:
        from .domain.agents import AgentHooks, Agents

        def renew_leases(agent: str) -> Renewal:
            return self.tasks.renew_all(agent)

        def release_all(agent: str, reason: str) -> None:
            self.tasks.release_all(agent, reason=reason)
            try:
                self.reservations.release(agent, all=True)
            except CoordError as exc:  # a follow-up: the agent's own change has landed (SPEC 4)
                self.warnings.append(
                    f"the file reservations of {agent} were not released: {exc.message} "
                    "(they end anyway once the agent is no longer live)"
                )

        hooks = AgentHooks(renew_leases=renew_leases, release_all=release_all)
        return Agents(self.store, self.config, self.clock, hooks)

    @cached_property
    def reservations(self) -> Reservations:
        """File reservations (SPEC section 13): ``reserve``, ``release``, ``list``,
        ``conflicts_for`` (the pre-commit guard's and the edit hook's question)."""
        from .domain.reservations import ReservationHooks, Reservations

        def identify(agent: str) -> None:
            self.agents.require(agent, purpose="act")

        hooks = ReservationHooks(identify=identify)
        return Reservations(self.store, self.config, self.clock, hooks)

    @cached_property
    def events(self) -> Events:
        from .domain.events import Events

        return Events(self.store, self.config, self.clock)

    @cached_property
    def messages(self) -> Messages:
        """Messages between agents (SPEC 14): send, inbox, read, ack, thread, counts."""
        from .domain.messages import Messages

        return Messages(self.store, self.config, self.clock)

    @cached_property
    def contexts(self) -> Contexts:
        from .domain.contexts import Contexts

        return Contexts(self.store, self.config, self.clock)

    @cached_property
    def monitor(self) -> Monitor:
        from .domain.monitor import Monitor

        root = self.workspace.project_root if self.workspace is not None else None
        return Monitor(self.store, self.config, self.clock, git_root=root)

    @cached_property
    def reports(self) -> Reports:
        from .domain.reports import Reports

        return Reports(self.store, self.clock, self.monitor)

    @cached_property
    def metrics(self) -> Metrics:
        """``coord.metrics.compute()`` / ``write()``: the 0.1 names of :attr:`reports`'
        ``metrics()`` / ``write_metrics()``."""
        from .domain.reports import Metrics

        return Metrics(self.reports)

    @cached_property
    def maintenance(self) -> Maintenance:
        from .domain.housekeeping import Maintenance

        return Maintenance(self.store, self.config, self.clock)

    @cached_property
    def doctor(self) -> Doctor:
        """``coord doctor``: ``check()`` the workspace's invariants, ``fix()`` what is safe."""
        from .ops.doctor import Doctor

        return Doctor(
            self.store,
            self.clock,
            self.tasks,
            self.agents,
            files=self.workspace,
            reservations=self.reservations,
        )

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Coordinator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
