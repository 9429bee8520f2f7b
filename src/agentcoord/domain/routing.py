"""Routing: which agent should take the next task (``coord task assign ID --auto``).

An agent qualifies when it is healthy (monitor class Normal or Acceptable; an Idle agent, which
holds no work, when its silence alone would be Normal or Acceptable: ``AgentHealth.pace``), its
status is not ``retired``, ``offline`` or ``blocked``, its circuit breaker is closed, it is below
100 % workload and (when asked) it has the capability. Among those the least-loaded wins
(reported workload, then fewest tasks held, then name). When none qualifies, :class:`NotFound`
(exit 3) says why for each.
"""

from __future__ import annotations

from ..core.models import BREAKER_CLOSED
from ..core.validate import check_name
from ..errors import NotFound
from .monitor import HEALTHY, RESTING, AgentHealth

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..core.models import Agent
    from .monitor import Monitor

UNAVAILABLE = ("retired", "offline", "blocked")


def _needs(capability: str | Sequence[str] | None) -> list[str]:
    """One capability, several (all required: a task's ``requires``) or none."""
    if capability is None:
        return []
    return [capability] if isinstance(capability, str) else list(capability)


def rejection(
    agent: Agent, health: AgentHealth | None, capability: str | Sequence[str] | None = None
) -> str | None:
    """Why ``agent`` cannot take new work, or None if it can. ``capability``: one the agent
    must have, or a list of them (all required)."""
    if agent.status in UNAVAILABLE:
        return f"status {agent.status.upper()}"
    lacking = [c for c in _needs(capability) if c not in agent.capabilities]
    if lacking:
        have = ", ".join(agent.capabilities) or "none"
        return f"lacks capability {', '.join(lacking)} (has: {have})"
    if health is None:
        return "not monitored"
    if health.pace not in HEALTHY:
        # Its silence, whether or not it holds work: an Idle agent must have been seen lately
        # to be handed new work (SPEC section 4, Monitor).
        shown = health.pace if health.pace == health.health else f"{health.health}, {health.pace}"
        return f"{shown}: {health.reason}"
    if health.health not in HEALTHY and health.health not in RESTING:
        return f"{health.health}: {health.reason}"
    if agent.breaker_state != BREAKER_CLOSED:
        failures = f"{agent.breaker_failures}/{agent.breaker_threshold} failures"
        return f"circuit breaker {agent.breaker_state} ({failures})"
    if agent.workload >= 100:
        return "at 100% workload"
    return None


def candidates(
    monitor: Monitor, *, capability: str | Sequence[str] | None = None, now: float | None = None
) -> tuple[list[AgentHealth], dict[str, str]]:
    """The qualifying agents, best first, and the reason for each one rejected."""
    for need in _needs(capability):
        check_name(need, "capability")
    snap = monitor.snapshot(now)
    rows = {h.agent: h for h in monitor.assess(snap, include_inactive=True)}
    rejected: dict[str, str] = {}
    for err in snap.agent_errors:  # named by where the store keeps them
        rejected[err.path] = f"unreadable record ({err.message})"
    good: list[AgentHealth] = []
    for agent in snap.agents:
        health = rows.get(agent.name)
        why = rejection(agent, health, capability)
        if why is not None:
            rejected[agent.name] = why
        elif health is not None:
            good.append(health)
    good.sort(key=lambda h: (h.workload, len(h.active), h.agent))
    return good, rejected


def pick_agent(monitor: Monitor, capability: str | Sequence[str] | None = None) -> str:
    """The name of the healthy, least-loaded agent with a closed breaker, or :class:`NotFound`
    listing every agent and why it was rejected."""
    good, rejected = candidates(monitor, capability=capability)
    if good:
        return good[0].agent
    if not rejected:
        raise NotFound(
            "no agent to assign to: none is registered ('coord agent register NAME')",
            rejected={},
        )
    why = "; ".join(f"{name}: {reason}" for name, reason in sorted(rejected.items()))
    needs = _needs(capability)
    need = f" with capability {', '.join(needs)}" if needs else ""
    raise NotFound(f"no agent{need} qualifies for automatic assignment: {why}", rejected=rejected)
