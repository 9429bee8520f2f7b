"""The monitor: tell busy from stuck from dead (SPEC section 4, Monitor).

An agent's *silence* is the time since its latest sign of life, the newest of:

- ``heartbeat``: the agent record's ``last_seen`` (``**Last Updated**`` in ``agent-{name}.md``,
  set by ``register``/``heartbeat``; a person's edit of that line counts as written);
- ``task``: an update the agent itself made to a task it holds or finished (claim, progress, log,
  lease renewal, complete, fail). A failure the store recorded because the agent's lease ran out
  is not the agent's doing and does not count;
- ``git``: a commit on any ref of the project's repository whose author name, author e-mail local
  part or ``Coord-Agent:`` trailer is the agent's name (:mod:`agentcoord.store.gitlog`).

The silence falls into one of the timer seed's "Monitoring Thresholds" classes, each with the
seed's action. An agent that itself reports status ``blocked`` is classed Blocked whatever its
silence: it is asking for help. Retired agents are not monitored, nor are agents that reported
``offline`` and hold no task.

Config (``config.json``, key ``monitor``): ``normal`` 60, ``acceptable`` 120, ``concerning`` 180,
``stuck`` 300 (seconds; silence below each bound is that class, at/above ``stuck`` is Blocked),
and ``git`` (true) to read commits.
"""

from __future__ import annotations

from ..core.clock import duration, iso
from ..core.models import BREAKER_OPEN, COMPLETE, FAILED, IN_PROGRESS
from ..errors import InvalidInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..core.config import Config
    from ..core.models import Agent, Task
    from ..errors import CorruptData
    from ..store.base import Store
    from ..store.gitlog import Commit

NORMAL, ACCEPTABLE, CONCERNING, STUCK, BLOCKED = (
    "Normal",
    "Acceptable",
    "Concerning",
    "Stuck",
    "Blocked",
)
CLASSES = (NORMAL, ACCEPTABLE, CONCERNING, STUCK, BLOCKED)
#: The seed table's "Action" column.
ACTIONS = {
    NORMAL: "Monitor only",
    ACCEPTABLE: "Check work log",
    CONCERNING: "Investigate",
    STUCK: "Intervene",
    BLOCKED: "Immediate action",
}
HEALTHY = frozenset({NORMAL, ACCEPTABLE})
ATTENTION = frozenset({STUCK, BLOCKED})
BOUND_KEYS = ("normal", "acceptable", "concerning", "stuck")
#: How far back git is read: older commits cannot change any class.
GIT_WINDOW = 24 * 3600.0


def thresholds(config: Any) -> tuple[float, float, float, float]:
    """The four class bounds from the config's ``monitor`` table, validated (exit 2 if bad)."""
    table = config["monitor"]
    if not isinstance(table, dict):
        raise InvalidInput(f"config 'monitor' must be an object, not {table!r}")
    out = []
    for key in BOUND_KEYS:
        value = table.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise InvalidInput(f"config monitor.{key} must be a number of seconds, not {value!r}")
        out.append(float(value))
    if out != sorted(out):
        shown = ", ".join(f"{k}={v:g}" for k, v in zip(BOUND_KEYS, out, strict=True))
        raise InvalidInput(f"config monitor thresholds must not decrease: {shown}")
    return out[0], out[1], out[2], out[3]


def classify_silence(silence: float | None, bounds: tuple[float, ...]) -> str:
    if silence is None:
        return BLOCKED
    for name, bound in zip(CLASSES, bounds, strict=False):
        if silence < bound:
            return name
    return BLOCKED


def own_update(task: Task, name: str) -> float | None:
    """When ``name`` last changed ``task`` itself (None if it holds or finished nothing here)."""
    if task.agent != name:
        return None
    if task.status == IN_PROGRESS:
        return task.updated_at or task.started_at
    if task.status == COMPLETE:
        return task.completed_at or task.updated_at
    if task.status == FAILED:
        last = task.logs[-1].message if task.logs else ""
        if last.startswith(f"lease of {name} expired"):
            return task.started_at  # the store failed it; the claim was the agent's last act
        return task.completed_at or task.updated_at
    return None


class AgentHealth:
    """One row of the monitor. ``to_dict`` is the ``coord monitor --json`` row shape."""

    __slots__ = (
        "action",
        "active",
        "agent",
        "breaker",
        "breaker_retry",
        "expired",
        "health",
        "last_sign",
        "reason",
        "silence",
        "source",
        "status",
        "workload",
    )

    def __init__(
        self,
        agent: str,
        *,
        health: str,
        silence: float | None,
        last_sign: float | None,
        source: str | None,
        status: str,
        workload: int,
        breaker: str,
        breaker_retry: float | None = None,
        active: list[str] | None = None,
        expired: list[str] | None = None,
        reason: str = "",
    ) -> None:
        self.agent = agent
        self.health = health
        self.action = ACTIONS[health]
        self.silence = silence
        self.last_sign = last_sign
        self.source = source
        self.status = status
        self.workload = workload
        self.breaker = breaker
        self.breaker_retry = breaker_retry
        self.active = active if active is not None else []
        self.expired = expired if expired is not None else []
        self.reason = reason

    @property
    def attention(self) -> bool:
        return self.health in ATTENTION

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "class": self.health,
            "action": self.action,
            "silence": round(self.silence, 1) if self.silence is not None else None,
            "last_sign": iso(self.last_sign) if self.last_sign is not None else None,
            "source": self.source,
            "status": self.status,
            "workload": self.workload,
            "breaker": self.breaker,
            "breaker_retry": iso(self.breaker_retry) if self.breaker_retry is not None else None,
            "active": list(self.active),
            "expired": list(self.expired),
            "reason": self.reason,
        }

    def __repr__(self) -> str:
        return f"AgentHealth({self.agent!r}, {self.health}, silence={self.silence!r})"


class Snapshot:
    """Everything one monitor pass reads, read once: agents, tasks, recent commits, and the
    records that could not be read (``errors``; those of agents also in ``agent_errors``)."""

    __slots__ = ("agent_errors", "agents", "commits", "errors", "now", "tasks")

    def __init__(
        self,
        now: float,
        agents: list[Agent],
        tasks: list[Task],
        commits: list[Commit],
        errors: list[CorruptData],
        *,
        agent_errors: list[CorruptData] | None = None,
    ) -> None:
        self.now = now
        self.agents = agents
        self.tasks = tasks
        self.commits = commits
        self.errors = errors
        self.agent_errors = agent_errors if agent_errors is not None else []


class Monitor:
    """``coord.monitor``: classify agents by silence, over a :class:`~agentcoord.store.base.Store`.

    ``git_root`` is the repository read for commits (None: no git signs); config ``monitor.git``
    false switches git off whatever is given."""

    def __init__(
        self,
        store: Store,
        config: Config,
        clock: Callable[[], float],
        *,
        git_root: str | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        table = config["monitor"]
        use_git = not (isinstance(table, dict) and table.get("git", True) is False)
        self.git_root = git_root if use_git else None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return thresholds(self.config)

    def snapshot(self, now: float | None = None) -> Snapshot:
        """Read agents (all of them), tasks and recent commits; unreadable records are kept in
        ``errors``."""
        from ..store.gitlog import commits_since

        when = self.clock() if now is None else now
        agent_errors: list[CorruptData] = []
        task_errors: list[CorruptData] = []
        agents = sorted(self.store.list_agents(errors=agent_errors), key=lambda a: a.name)
        tasks = self.store.list_tasks(errors=task_errors)
        commits = commits_since(self.git_root, when - GIT_WINDOW) if self.git_root else []
        errors = agent_errors + task_errors
        return Snapshot(when, agents, tasks, commits, errors, agent_errors=agent_errors)

    def classify(
        self,
        now: float | None = None,
        *,
        errors: list[CorruptData] | None = None,
        include_inactive: bool = False,
    ) -> list[AgentHealth]:
        """One :class:`AgentHealth` per monitored agent, by name. Unreadable agent or task
        records are skipped and appended to ``errors``."""
        snap = self.snapshot(now)
        if errors is not None:
            errors.extend(snap.errors)
        return self.assess(snap, include_inactive=include_inactive)

    def assess(self, snap: Snapshot, *, include_inactive: bool = False) -> list[AgentHealth]:
        from ..store.gitlog import latest_by_agent

        bounds = self.bounds
        names = [a.name for a in snap.agents]
        commits = latest_by_agent(snap.commits, names)
        by_agent: dict[str, list[Task]] = {}
        for task in snap.tasks:
            if task.agent:
                by_agent.setdefault(task.agent, []).append(task)
        out = []
        for agent in snap.agents:
            mine = by_agent.get(agent.name, [])
            held = [t for t in mine if t.status == IN_PROGRESS]
            if not include_inactive and (
                agent.status == "retired" or (agent.status == "offline" and not held)
            ):
                continue
            commit = commits.get(agent.name)
            out.append(self._health(agent, mine, held, commit, snap.now, bounds=bounds))
        return out

    def _health(
        self,
        agent: Agent,
        mine: list[Task],
        held: list[Task],
        commit: Commit | None,
        now: float,
        *,
        bounds: tuple[float, ...],
    ) -> AgentHealth:
        signs: list[tuple[float, str]] = []
        if agent.last_seen:
            signs.append((agent.last_seen, "heartbeat"))
        task_times = [t for t in (own_update(task, agent.name) for task in mine) if t]
        if task_times:
            signs.append((max(task_times), "task"))
        if commit is not None:
            signs.append((commit.time, "git"))
        # A sign of life from the future is a clock's fault, not a sign of life: believing it
        # would keep a dead agent Normal until then (SPEC section 4, Monitor).
        skew = self.config.float("clock_skew")
        future = [s for s in signs if s[0] > now + skew]
        signs = [s for s in signs if s[0] <= now + skew]
        last, source = max(signs) if signs else (None, None)
        silence = max(0.0, now - last) if last is not None else None
        health = classify_silence(silence, bounds)
        if silence is None:
            reason = "no sign of life recorded"
        else:
            reason = f"last sign of life {duration(silence)} ago ({source})"
        if future:
            ahead = max(future)
            reason += (
                f"; ignored a sign of life {duration(ahead[0] - now)} in the future "
                f"({ahead[1]}: a clock ahead?)"
            )
            if silence is None:
                health = CONCERNING
        if agent.status == "blocked":
            health, reason = BLOCKED, f"reports status BLOCKED; {reason}"
        expired = [t.id for t in held if t.lease_expired(now)]
        if expired:
            reason += f"; lease expired on {', '.join(expired)}"
        retry = None
        if agent.breaker_state == BREAKER_OPEN and agent.breaker_opened_at is not None:
            retry = agent.breaker_opened_at + self.config.float("breaker_cooldown")
        return AgentHealth(
            agent.name,
            health=health,
            silence=silence,
            last_sign=last,
            source=source,
            status=agent.status,
            workload=agent.workload,
            breaker=agent.breaker_state,
            breaker_retry=retry,
            active=sorted(t.id for t in held),
            expired=expired,
            reason=reason,
        )


def needs_attention(rows: list[AgentHealth]) -> bool:
    return any(r.attention for r in rows)
