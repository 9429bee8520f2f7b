"""Agents (SPEC section 4, Agents): registration, heartbeats, the agent file's task views, the
circuit breaker and routing. Run against every backend."""

from __future__ import annotations

import pytest

from agentcoord import errors
from agentcoord.api import Coordinator
from agentcoord.core.models import IN_PROGRESS, PENDING, Agent
from agentcoord.domain.routing import candidates, pick_agent

from .conftest import FakeClock


def active_ids(coord: Coordinator, name: str) -> list[str]:
    return [e["id"] for e in coord.agents.get(name).active]


def recent(coord: Coordinator, name: str) -> list[tuple[str, bool | None]]:
    return [(r["id"], r["success"]) for r in coord.agents.get(name).recent]


# -- register / heartbeat / retire ------------------------------------------------------------
def test_register_is_idempotent_and_keeps_fields(coord: Coordinator, clock: FakeClock) -> None:
    a = coord.agents.register("ai-engineer", capabilities=["train"], note="hi", workload="85%")
    assert (a.status, a.workload, a.capabilities, a.notes) == ("idle", 85, ["train"], "hi")
    assert a.registered_at == a.last_seen == clock.now
    clock.advance(10)
    again = coord.agents.register("ai-engineer", session=a.session)  # the same session
    assert again.registered_at == a.registered_at
    assert again.last_seen == clock.now
    assert (again.workload, again.capabilities, again.notes) == (85, ["train"], "hi")
    assert (again.session, again.generation) == (a.session, a.generation) == (a.session, 1)


def test_heartbeat_sets_status_workload_note_and_renews_leases(
    coord: Coordinator, clock: FakeClock
) -> None:
    coord.agents.register("a1")
    coord.tasks.create("t", id="t1", total=100)
    coord.tasks.claim("t1", agent="a1", lease_seconds=60)
    clock.advance(50)
    agent, renewed = coord.agents.heartbeat("a1", status="BUSY", workload=70, note="training")
    assert (agent.status, agent.workload, agent.notes, agent.last_seen) == (
        "busy",
        70,
        "training",
        clock.now,
    )
    assert [t.id for t in renewed] == ["t1"]
    assert coord.tasks.get("t1").lease_expires == clock.now + 60
    clock.advance(50)  # 100 s after the claim: alive thanks to the heartbeat
    assert coord.tasks.progress("t1", agent="a1", current=40).status == IN_PROGRESS


def test_heartbeat_refreshes_progress_in_the_view(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("a1")
    coord.tasks.create("t", id="t1", total=100)
    coord.tasks.claim("t1", agent="a1")
    coord.tasks.progress("t1", agent="a1", current=10)
    coord.tasks.progress("t1", agent="a1", current=20)  # may be skipped by the view throttle
    coord.agents.heartbeat("a1")
    (entry,) = coord.agents.get("a1").active
    assert entry["current"] == 20


def test_heartbeat_of_unknown_agent_is_not_found(coord: Coordinator) -> None:
    with pytest.raises(errors.NotFound) as info:
        coord.agents.heartbeat("ghost")
    assert info.value.exit_code == 3
    assert "coord agent register ghost" in info.value.message
    with pytest.raises(errors.NotFound):
        coord.agents.retire("ghost")
    with pytest.raises(errors.NotFound):
        coord.agents.get("ghost")


@pytest.mark.parametrize("bad", [150, -1, "abc", "150%", "", True, 1e9])
def test_workload_outside_0_100_or_not_numeric_is_invalid(coord: Coordinator, bad: object) -> None:
    coord.agents.register("a1")
    with pytest.raises(errors.InvalidInput) as info:
        coord.agents.heartbeat("a1", workload=bad)
    assert info.value.exit_code == 2
    with pytest.raises(errors.InvalidInput):
        coord.agents.register("a2", workload=bad)
    assert coord.agents.get("a1").workload == 0
    with pytest.raises(errors.NotFound):
        coord.agents.get("a2")


def test_bad_status_and_names(coord: Coordinator) -> None:
    coord.agents.register("a1")
    with pytest.raises(errors.InvalidInput):
        coord.agents.heartbeat("a1", status="sleeping")
    with pytest.raises(errors.InvalidName):
        coord.agents.register("../evil")
    with pytest.raises(errors.InvalidName):
        coord.agents.register("a3", capabilities=["no spaces"])


def test_list_filters(coord: Coordinator) -> None:
    coord.agents.register("low", workload=10)
    coord.agents.register("high", workload=90)
    coord.agents.heartbeat("high", status="busy")
    coord.agents.register("gone")
    coord.agents.retire("gone")
    assert [a.name for a in coord.agents.list()] == ["high", "low"]
    assert [a.name for a in coord.agents.list(include_retired=True)] == ["gone", "high", "low"]
    assert [a.name for a in coord.agents.list(status="busy")] == ["high"]
    assert [a.name for a in coord.agents.list(status="retired")] == ["gone"]
    assert [a.name for a in coord.agents.list(min_workload=70)] == ["high"]
    assert [a.name for a in coord.agents.list(min_workload="10")] == ["high", "low"]
    with pytest.raises(errors.InvalidInput):
        coord.agents.list(min_workload="lots")


def test_retire_gives_back_tasks_without_using_an_attempt(coord: Coordinator) -> None:
    coord.agents.register("a1")
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="a1")
    agent = coord.agents.retire("a1")
    assert (agent.status, agent.workload, agent.active) == ("retired", 0, [])
    task = coord.tasks.get("t1")
    assert (task.status, task.agent, task.attempts) == (PENDING, None, 0)
    assert coord.agents.register("a1").status == "idle"


# -- views ---------------------------------------------------------------------------------------
def test_views_follow_claim_complete_and_fail(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("a1")
    coord.tasks.create("good", id="t1")
    coord.tasks.create("bad", id="t2")
    coord.tasks.claim("t1", agent="a1")
    coord.tasks.claim("t2", agent="a1")
    assert active_ids(coord, "a1") == ["t1", "t2"]
    assert coord.agents.get("a1").status == "busy"
    clock.advance(120)
    coord.tasks.complete("t1", agent="a1")
    coord.tasks.fail("t2", agent="a1", error="boom")
    agent = coord.agents.get("a1")
    assert agent.active == []
    assert agent.status == "idle"
    assert recent(coord, "a1") == [("t2", False), ("t1", True)]
    assert agent.stats["finished"] == 2
    assert agent.stats["success_rate"] == 50.0
    assert agent.stats["average_duration"] == 120.0


def test_dead_agent_task_reclaimed_with_views_on_both_sides(
    coord: Coordinator, clock: FakeClock
) -> None:
    coord.agents.register("dead")
    coord.agents.register("alive")
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="dead", lease_seconds=60)
    assert active_ids(coord, "dead") == ["t1"]
    clock.advance(61)  # no heartbeat past the lease
    coord.agents.heartbeat("alive")
    task = coord.tasks.claim(agent="alive")
    assert (task.id, task.agent, task.attempts, task.epoch) == ("t1", "alive", 1, 2)
    assert active_ids(coord, "dead") == []
    assert active_ids(coord, "alive") == ["t1"]
    # The late heartbeat of the dead agent does not revive its lease.
    _, renewed = coord.agents.heartbeat("dead")
    assert renewed == []
    with pytest.raises(errors.LeaseLost):
        coord.tasks.progress("t1", agent="dead", percent=5)


def test_rebuild_views_repairs_from_the_task_records(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("a1")
    coord.tasks.create("one", id="t1")
    coord.tasks.create("two", id="t2")
    coord.tasks.claim("t1", agent="a1")
    coord.tasks.claim("t2", agent="a1")
    coord.tasks.complete("t2", agent="a1")

    def wipe(agent: Agent | None) -> Agent | None:
        assert agent is not None
        agent.active, agent.recent, agent.stats = [{"id": "zz", "title": "bogus"}], [], {}
        return agent

    coord.store.update_agent("a1", wipe)
    assert coord.agents.rebuild_views() == ["a1"]
    assert active_ids(coord, "a1") == ["t1"]
    assert recent(coord, "a1") == [("t2", True)]
    assert coord.agents.get("a1").stats["finished"] == 1


# -- circuit breaker -----------------------------------------------------------------------------
def fail_n(coord: Coordinator, agent: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        coord.tasks.create(f"job {i}", id=f"f{i}")
        coord.tasks.claim(f"f{i}", agent=agent)
        coord.tasks.fail(f"f{i}", agent=agent, error=f"error {i}")


def test_breaker_opens_refuses_half_opens_and_closes(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("a1")
    fail_n(coord, "a1", 2)
    assert coord.agents.get("a1").breaker_state == "closed"
    fail_n(coord, "a1", 1, start=2)
    agent = coord.agents.get("a1")
    assert (agent.breaker_state, agent.breaker_failures) == ("open", 3)
    assert agent.last_failure == clock.now and agent.last_failure_reason == "error 2"

    coord.tasks.create("next", id="n1")
    coord.tasks.create("after", id="n2")
    with pytest.raises(errors.BreakerOpen) as info:
        coord.tasks.claim(agent="a1")
    assert (info.value.exit_code, info.value.code) == (4, "breaker_open")
    assert "3 consecutive failures" in info.value.message
    assert "error 2" in info.value.message
    assert coord.tasks.get("n1").status == PENDING

    clock.advance(coord.config.float("breaker_cooldown") - 1)
    with pytest.raises(errors.BreakerOpen):
        coord.tasks.claim("n1", agent="a1")
    clock.advance(1)  # cool-down over: one trial claim
    assert coord.tasks.claim("n1", agent="a1").agent == "a1"
    assert coord.agents.get("a1").breaker_state == "half_open"
    with pytest.raises(errors.BreakerOpen) as info:
        coord.tasks.claim("n2", agent="a1")
    assert "half-open" in info.value.message
    coord.tasks.complete("n1", agent="a1")
    agent = coord.agents.get("a1")
    assert (agent.breaker_state, agent.breaker_failures) == ("closed", 0)
    assert coord.tasks.claim("n2", agent="a1").status == IN_PROGRESS


def test_failure_in_half_open_reopens(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("a1")
    fail_n(coord, "a1", 3)
    clock.advance(coord.config.float("breaker_cooldown"))
    fail_n(coord, "a1", 1, start=3)
    agent = coord.agents.get("a1")
    assert agent.breaker_state == "open"
    assert agent.breaker_opened_at == clock.now
    coord.tasks.create("x", id="x1")
    with pytest.raises(errors.BreakerOpen):
        coord.tasks.claim("x1", agent="a1")


def test_success_resets_the_failure_count(coord: Coordinator) -> None:
    coord.agents.register("a1")
    fail_n(coord, "a1", 2)
    coord.tasks.create("ok", id="ok")
    coord.tasks.claim("ok", agent="a1")
    coord.tasks.complete("ok", agent="a1")
    fail_n(coord, "a1", 2, start=2)
    assert coord.agents.get("a1").breaker_state == "closed"


# -- routing ---------------------------------------------------------------------------------
def test_assign_auto_picks_least_loaded_then_fewest_tasks_then_name(
    coord: Coordinator, clock: FakeClock
) -> None:
    coord.agents.register("busy", workload=80)
    coord.agents.register("b-light", workload=10)
    coord.agents.register("a-light", workload=10)
    coord.tasks.create("held", id="h1")
    coord.tasks.claim("h1", agent="a-light")
    coord.tasks.create("new", id="t1")
    task = coord.tasks.assign_auto("t1")
    assert (task.status, task.agent) == ("assigned", "b-light")
    good, rejected = candidates(coord.monitor)
    assert [h.agent for h in good] == ["b-light", "a-light", "busy"]
    assert rejected == {}


def test_assign_auto_skips_unhealthy_open_breaker_and_unavailable(
    coord: Coordinator, clock: FakeClock
) -> None:
    coord.agents.register("silent")
    clock.advance(200)
    coord.agents.register("broken")
    fail_n(coord, "broken", 3)
    coord.agents.register("gone")
    coord.agents.retire("gone")
    coord.agents.register("stuckself")
    coord.agents.heartbeat("stuckself", status="blocked")
    coord.agents.register("full", workload=100)
    coord.agents.register("fine", workload=50)
    assert pick_agent(coord.monitor) == "fine"
    _, rejected = candidates(coord.monitor)
    assert set(rejected) == {"silent", "broken", "gone", "stuckself", "full"}
    assert rejected["silent"].startswith("Idle, Stuck")  # no work, but not seen for 200 s
    assert "breaker open" in rejected["broken"]
    assert rejected["gone"] == "status RETIRED"
    assert rejected["stuckself"] == "status BLOCKED"
    assert "100%" in rejected["full"]


def test_assign_auto_explains_when_no_agent_qualifies(coord: Coordinator, clock: FakeClock) -> None:
    coord.tasks.create("t", id="t1")
    with pytest.raises(errors.NotFound) as info:
        coord.tasks.assign_auto("t1")
    assert "none is registered" in info.value.message
    coord.agents.register("a1")
    fail_n(coord, "a1", 3)
    coord.agents.register("a2")
    clock.advance(400)
    coord.agents.heartbeat("a1")
    with pytest.raises(errors.NotFound) as info:
        coord.tasks.assign_auto("t1")
    msg = info.value.message
    assert info.value.exit_code == 3
    assert "a1: circuit breaker open" in msg
    assert "a2: Idle, Blocked" in msg
    assert set(info.value.details["rejected"]) == {"a1", "a2"}
    assert coord.tasks.get("t1").status == PENDING
    with pytest.raises(errors.NotFound):
        coord.tasks.assign_auto("no-such-task")


def test_pick_agent_by_capability(coord: Coordinator) -> None:
    coord.agents.register("gpu", capabilities=["train", "eval"], workload=90)
    coord.agents.register("cpu", capabilities=["etl"])
    assert pick_agent(coord.monitor) == "cpu"
    assert pick_agent(coord.monitor, "train") == "gpu"
    with pytest.raises(errors.NotFound) as info:
        pick_agent(coord.monitor, "deploy")
    assert "lacks capability deploy" in info.value.message


def test_retire_drops_reservations_and_a_retired_agent_cannot_claim(coord: Coordinator) -> None:
    """A task reserved for an agent that retires goes back to pending for anyone; a retired
    agent takes no work until it registers (or heartbeats) again."""
    from agentcoord.errors import Conflict

    coord.agents.register("ann")
    coord.agents.register("bob")
    coord.tasks.create("reserved", id="r1")
    coord.tasks.create("held", id="h1")
    coord.tasks.assign("r1", "ann")
    coord.tasks.claim("h1", agent="ann")
    coord.agents.retire("ann")
    r1, h1 = coord.tasks.get("r1"), coord.tasks.get("h1")
    assert (r1.status, r1.agent) == ("pending", None)
    assert (h1.status, h1.agent) == ("pending", None)
    assert coord.tasks.claim("r1", agent="bob").agent == "bob"
    with pytest.raises(Conflict, match="retired"):
        coord.tasks.claim(agent="ann")
    coord.agents.register("ann")
    assert coord.tasks.claim("h1", agent="ann").agent == "ann"
