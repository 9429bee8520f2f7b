"""The per-agent circuit breaker (SPEC section 4).

``closed`` counts consecutive failures; at the threshold (default 3) it opens. An open breaker
refuses claims until the cool-down passes; then the next claim moves it to ``half_open`` and is
let through as a trial. A success closes the breaker; a failure in ``half_open`` opens it again.
These functions mutate an :class:`Agent` inside the store's atomic update.
"""

from __future__ import annotations

from ..errors import BreakerOpen
from .clock import duration, iso
from .models import BREAKER_CLOSED, BREAKER_HALF_OPEN, BREAKER_OPEN, Agent


def check_claim(agent: Agent, now: float, cooldown: float, holds_tasks: bool) -> bool:
    """Raise :class:`BreakerOpen` if ``agent`` may not claim now. Returns True when the
    breaker must move to half-open (the caller persists that)."""
    if agent.breaker_state == BREAKER_CLOSED:
        return False
    if agent.breaker_state == BREAKER_OPEN:
        opened = agent.breaker_opened_at or 0.0
        if now - opened < cooldown:
            reason = f" (last: {agent.last_failure_reason})" if agent.last_failure_reason else ""
            raise BreakerOpen(
                f"circuit breaker of {agent.name} is open after {agent.breaker_failures} "
                f"consecutive failures{reason}; claims resume in "
                f"{duration(cooldown - (now - opened))} (at {iso(opened + cooldown)})",
                agent=agent.name,
                retry_at=iso(opened + cooldown),
            )
        return True
    if holds_tasks:  # half-open allows exactly one trial claim at a time
        raise BreakerOpen(
            f"circuit breaker of {agent.name} is half-open: finish the trial task before "
            "claiming another",
            agent=agent.name,
        )
    return False


def record_failure(agent: Agent, now: float, reason: str | None) -> None:
    agent.breaker_failures += 1
    agent.last_failure = now
    agent.last_failure_reason = reason
    if agent.breaker_state == BREAKER_HALF_OPEN or (
        agent.breaker_failures >= agent.breaker_threshold
    ):
        agent.breaker_state = BREAKER_OPEN
        agent.breaker_opened_at = now


def record_success(agent: Agent) -> None:
    agent.breaker_state = BREAKER_CLOSED
    agent.breaker_failures = 0
    agent.breaker_opened_at = None
