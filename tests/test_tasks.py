"""Task lifecycle semantics (SPEC section 4, Tasks), run against every backend."""

from __future__ import annotations

import pytest

from agentcoord import errors
from agentcoord.api import Coordinator
from agentcoord.core.models import ASSIGNED, BLOCKED, COMPLETE, FAILED, IN_PROGRESS, PENDING

from .conftest import FakeClock

#: The agents these tests name. Identity is strict (SPEC section 11): they are registered first.
AGENTS = ("a", "b", "a1", "a2", "x", "alice", "bob", "dead", "alive")


@pytest.fixture(autouse=True)
def _registered(request: pytest.FixtureRequest) -> None:
    if "coord" in request.fixturenames:
        coord: Coordinator = request.getfixturevalue("coord")
        for name in AGENTS:
            coord.agents.require(name, register=True)  # no session: a test may register again


def test_create_generates_increasing_ids(coord: Coordinator) -> None:
    a = coord.tasks.create("first")
    b = coord.tasks.create("second")
    assert (a.id, b.id) == ("1", "2")
    assert coord.tasks.get("1").title == "first"


def test_create_with_id_refuses_duplicate(coord: Coordinator) -> None:
    coord.tasks.create("x", id="build")
    with pytest.raises(errors.AlreadyExists):
        coord.tasks.create("y", id="build")


def test_claim_grants_lease_and_epoch(coord: Coordinator, clock: FakeClock) -> None:
    coord.tasks.create("t", id="t1")
    task = coord.tasks.claim("t1", agent="a1", lease_seconds=60)
    assert task.status == IN_PROGRESS
    assert task.agent == "a1"
    assert task.epoch == 1
    assert task.lease_expires == clock.now + 60
    with pytest.raises(errors.Conflict):
        coord.tasks.claim("t1", agent="a2")


def test_claim_next_by_priority_then_age(coord: Coordinator, clock: FakeClock) -> None:
    coord.tasks.create("old low", id="a", priority=0)
    clock.advance(1)
    coord.tasks.create("new high", id="b", priority=5)
    clock.advance(1)
    coord.tasks.create("newer high", id="c", priority=5)
    assert coord.tasks.claim(agent="x").id == "b"
    assert coord.tasks.claim(agent="x").id == "c"
    assert coord.tasks.claim(agent="x").id == "a"
    with pytest.raises(errors.NothingToClaim):
        coord.tasks.claim(agent="x")


def test_assigned_task_only_claimable_by_assignee(coord: Coordinator) -> None:
    coord.tasks.create("t", id="t1", assign="bob")
    assert coord.tasks.get("t1").status == ASSIGNED
    with pytest.raises(errors.NothingToClaim):
        coord.tasks.claim(agent="alice")
    with pytest.raises(errors.Conflict):
        coord.tasks.claim("t1", agent="alice")
    assert coord.tasks.claim(agent="bob").id == "t1"


def test_progress_current_total_metrics_and_eta(coord: Coordinator, clock: FakeClock) -> None:
    coord.tasks.create("train", id="t1", total=10000)
    coord.tasks.claim("t1", agent="a1")
    clock.advance(100)
    task = coord.tasks.progress("t1", agent="a1", current=2500, metrics={"loss": 0.42})
    assert task.progress_percent() == 25.0
    assert task.metrics == {"step": 2500, "total_steps": 10000, "loss": 0.42}
    assert task.eta == pytest.approx(clock.now + 300)
    task = coord.tasks.progress("t1", agent="a1", percent=50)
    assert task.progress_percent() == 50.0


def test_progress_renews_lease(coord: Coordinator, clock: FakeClock) -> None:
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="a1", lease_seconds=60)
    clock.advance(50)
    coord.tasks.progress("t1", agent="a1", percent=10)
    clock.advance(50)  # 100 s after the claim, 50 s after the renewal
    assert coord.tasks.progress("t1", agent="a1", percent=20).status == IN_PROGRESS


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"percent": 101}, "percent"),
        ({"percent": -1}, "percent"),
        ({"current": -5}, "current"),
        ({"current": 5}, "no total"),
        ({"current": 5, "percent": 3}, "either"),
        ({}, "give"),
        ({"percent": float("nan")}, "finite"),
    ],
)
def test_progress_bad_input(coord: Coordinator, kwargs: dict[str, float], match: str) -> None:
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="a1")
    with pytest.raises(errors.InvalidInput, match=match):
        coord.tasks.progress("t1", agent="a1", **kwargs)


def test_writes_by_non_holder_refused(coord: Coordinator) -> None:
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="a1")
    for call in (
        lambda: coord.tasks.progress("t1", agent="a2", percent=1),
        lambda: coord.tasks.log("t1", "hi", agent="a2"),
        lambda: coord.tasks.complete("t1", agent="a2"),
        lambda: coord.tasks.fail("t1", agent="a2", error="x"),
        lambda: coord.tasks.release("t1", agent="a2"),
    ):
        with pytest.raises(errors.LeaseLost) as info:
            call()
        assert info.value.exit_code == 4


def test_stale_epoch_refused(coord: Coordinator) -> None:
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="a1")
    with pytest.raises(errors.StaleEpoch):
        coord.tasks.progress("t1", agent="a1", percent=5, epoch=7)
    assert coord.tasks.progress("t1", agent="a1", percent=5, epoch=1).percent == 5


def test_expired_lease_reclaimed_by_next_claimer(coord: Coordinator, clock: FakeClock) -> None:
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="dead", lease_seconds=30)
    clock.advance(31)
    with pytest.raises(errors.LeaseLost):
        coord.tasks.progress("t1", agent="dead", percent=50)
    task = coord.tasks.claim(agent="alive")
    assert (task.id, task.agent, task.attempts, task.epoch) == ("t1", "alive", 1, 2)
    with pytest.raises(errors.LeaseLost):
        coord.tasks.complete("t1", agent="dead")
    assert coord.tasks.complete("t1", agent="alive").status == COMPLETE


def test_reap_requeues_then_fails_after_max_attempts(coord: Coordinator, clock: FakeClock) -> None:
    coord.tasks.create("t", id="t1", max_attempts=2, lease_seconds=10)
    coord.tasks.claim("t1", agent="a")
    clock.advance(11)
    (task,) = coord.tasks.reap()
    assert (task.status, task.attempts, task.agent) == (PENDING, 1, None)
    coord.tasks.claim("t1", agent="b")
    clock.advance(11)
    (task,) = coord.tasks.reap()
    assert task.status == FAILED
    assert "lease expired 2 time(s)" in (task.error or "")
    assert coord.tasks.reap() == []


def test_heartbeat_renews_held_leases(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("a1")
    coord.tasks.create("t", id="t1", lease_seconds=60)
    coord.tasks.claim("t1", agent="a1")
    clock.advance(50)
    _, renewed = coord.agents.heartbeat("a1")
    assert [t.id for t in renewed] == ["t1"]
    clock.advance(50)
    assert coord.tasks.reap() == []


def test_dependencies_readiness_and_blocking(coord: Coordinator) -> None:
    coord.tasks.create("data", id="data")
    coord.tasks.create("train", id="train", depends_on=["data"])
    coord.tasks.create("eval", id="eval", depends_on=["train"])
    assert [t.id for t in coord.tasks.list(ready=True)] == ["data"]
    with pytest.raises(errors.Conflict, match="waiting for data"):
        coord.tasks.claim("train", agent="a")
    assert coord.tasks.claim(agent="a").id == "data"
    coord.tasks.complete("data", agent="a")
    assert coord.tasks.claim(agent="a").id == "train"
    coord.tasks.fail("train", agent="a", error="OOM")
    blocked = coord.tasks.get("eval")
    assert blocked.status == BLOCKED
    assert "train" in (blocked.blocked_reason or "")
    with pytest.raises(errors.NothingToClaim):
        coord.tasks.claim(agent="a")


def test_dependency_cycle_and_unknown_refused(coord: Coordinator) -> None:
    with pytest.raises(errors.DependencyCycle):
        coord.tasks.create("self", id="s", depends_on=["s"])
    with pytest.raises(errors.NotFound):
        coord.tasks.create("x", id="x", depends_on=["nope"])


def test_dependency_cycle_through_hand_edited_task(coord: Coordinator) -> None:
    # A person made "a" depend on "b" before "b" existed; creating b -> a closes the loop.
    coord.tasks.create("b0", id="c")
    coord.tasks.create("a", id="a", depends_on=["c"])

    def edit(task):  # type: ignore[no-untyped-def]
        task.depends_on = ["c", "b"]
        return task

    coord.store.update_task("a", edit)
    with pytest.raises(errors.DependencyCycle, match="b -> a -> b"):
        coord.tasks.create("b", id="b", depends_on=["a"])


def test_release_returns_task_without_attempt(coord: Coordinator) -> None:
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="a")
    task = coord.tasks.release("t1", agent="a", reason="need GPU")
    assert (task.status, task.agent, task.attempts) == (PENDING, None, 0)
    assert coord.tasks.claim(agent="b").epoch == 2


def test_log_is_bounded(coord: Coordinator) -> None:
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="a")
    for i in range(80):
        coord.tasks.log("t1", f"line {i}", agent="a")
    logs = coord.tasks.get("t1").logs
    assert len(logs) == 50
    assert logs[-1].message == "line 79"


def test_list_filters_and_limit(coord: Coordinator) -> None:
    for i in range(5):
        coord.tasks.create(f"t{i}", project="p" if i % 2 else "q")
    coord.tasks.claim("1", agent="a")
    assert [t.id for t in coord.tasks.list(status="in_progress")] == ["1"]
    assert [t.id for t in coord.tasks.list(agent="a")] == ["1"]
    assert [t.id for t in coord.tasks.list(project="p")] == ["2", "4"]
    assert len(coord.tasks.list(limit=2)) == 2
    assert len(coord.tasks.list(status="open")) == 5
    with pytest.raises(errors.InvalidInput):
        coord.tasks.list(status="banana")


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "x" * 200, ".hidden", "a b", "a\nb"])
def test_bad_ids_refused(coord: Coordinator, bad: str) -> None:
    with pytest.raises(errors.InvalidName) as info:
        coord.tasks.create("t", id=bad)
    assert info.value.exit_code == 2
    with pytest.raises(errors.InvalidName):
        coord.tasks.claim(bad, agent="a")
    with pytest.raises(errors.InvalidName):
        coord.tasks.claim("x", agent=bad)


def test_cancel_blocks_dependents(coord: Coordinator) -> None:
    coord.tasks.create("a", id="a")
    coord.tasks.create("b", id="b", depends_on=["a"])
    coord.tasks.cancel("a", reason="not needed")
    assert coord.tasks.get("b").status == BLOCKED
    with pytest.raises(errors.InvalidTransition):
        coord.tasks.cancel("a")
