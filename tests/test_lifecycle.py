"""The whole task lifecycle (SPEC section 11, issue 16 items 1, 2 and 4), on every backend:
retry, reopen, cancel, edit, check, search, labels, parents, required capabilities, archived
tasks, and the repairs of ``doctor --fix`` and the rule of ``cleanup`` that go with them."""

from __future__ import annotations

import pytest

from agentcoord import errors
from agentcoord.api import Coordinator
from agentcoord.core.models import (
    ASSIGNED,
    BLOCKED,
    CANCELLED,
    COMPLETE,
    FAILED,
    IN_PROGRESS,
    PENDING,
)

from .conftest import FakeClock

HOUR = 3600.0


def team(coord: Coordinator, *names: str, capabilities: list[str] | None = None) -> None:
    for name in names:
        coord.agents.register(name, capabilities=capabilities)


def ci_board(coord: Coordinator) -> None:
    """Issue 16 item 1: ci, and two tasks that wait for it."""
    team(coord, "devops", "qa")
    coord.tasks.create("CI pipeline", id="ci")
    coord.tasks.create("Deploy to staging", id="deploy-staging", depends_on=["ci"])
    coord.tasks.create("Load tests", id="load-tests", depends_on=["ci"])


def states(coord: Coordinator) -> dict[str, str]:
    return {t.id: t.status for t in coord.tasks.list()}


# -- issue 16 item 1: a failure can be undone ---------------------------------------------------
def test_fail_retry_complete_then_dependents_run(coord: Coordinator) -> None:
    ci_board(coord)
    coord.tasks.claim("ci", agent="devops")
    coord.tasks.fail("ci", agent="devops", error="runner quota")
    assert states(coord) == {"ci": FAILED, "deploy-staging": BLOCKED, "load-tests": BLOCKED}
    with pytest.raises(errors.InvalidTransition):  # a failed task is not claimable ...
        coord.tasks.claim("ci", agent="devops")

    retried = coord.tasks.retry("ci", reason="quota raised")  # ... until it is retried
    assert (retried.status, retried.agent, retried.error, retried.attempts) == (
        PENDING,
        None,
        None,
        0,
    )
    assert "retried (quota raised); was failed: runner quota" in retried.logs[-1].message
    # Its dependents are unblocked: pending again, waiting for it.
    assert states(coord) == {"ci": PENDING, "deploy-staging": PENDING, "load-tests": PENDING}
    assert coord.tasks.get("deploy-staging").blocked_reason is None
    assert [t.id for t in coord.tasks.list(ready=True)] == ["ci"]

    assert coord.tasks.claim(agent="devops").id == "ci"
    coord.tasks.complete("ci", agent="devops")
    ran = {coord.tasks.claim(agent="qa").id, coord.tasks.claim(agent="devops").id}
    assert ran == {"deploy-staging", "load-tests"}
    for task in coord.tasks.list(status=IN_PROGRESS):
        coord.tasks.complete(task.id, agent=str(task.agent))
    assert set(states(coord).values()) == {COMPLETE}
    assert coord.doctor.check() == []


def test_retry_keeps_attempts_and_adds_one_when_they_are_used_up(
    coord: Coordinator, clock: FakeClock
) -> None:
    team(coord, "a")
    coord.tasks.create("flaky", id="t", max_attempts=2, lease_seconds=10)
    for _ in range(2):
        coord.tasks.claim("t", agent="a")
        clock.advance(11)
        coord.tasks.reap()
    task = coord.tasks.get("t")
    assert (task.status, task.attempts) == (FAILED, 2)
    task = coord.tasks.retry("t")
    assert (task.status, task.attempts, task.max_attempts) == (PENDING, 2, 3)
    assert "max attempts raised to 3" in task.logs[-1].message
    assert coord.doctor.check() == []  # attempts <= max_attempts still holds


def test_retry_of_a_blocked_task(coord: Coordinator) -> None:
    ci_board(coord)
    coord.tasks.claim("ci", agent="devops")
    coord.tasks.fail("ci", agent="devops", error="boom")
    with pytest.raises(errors.InvalidTransition) as info:  # its dependency is still failed
        coord.tasks.retry("deploy-staging")
    assert info.value.exit_code == 4 and "retry or reopen ci first" in info.value.message
    coord.tasks.edit("deploy-staging", remove_deps=["ci"])  # no failed dependency any more
    assert coord.tasks.get("deploy-staging").status == PENDING
    with pytest.raises(errors.InvalidTransition) as info:
        coord.tasks.retry("deploy-staging")  # pending: nothing to retry
    assert info.value.exit_code == 4


def test_retry_and_reopen_refuse_other_states(coord: Coordinator) -> None:
    team(coord, "a")
    coord.tasks.create("t", id="t")
    with pytest.raises(errors.InvalidTransition, match="only failed or blocked"):
        coord.tasks.retry("t")
    with pytest.raises(errors.InvalidTransition, match="only complete or cancelled"):
        coord.tasks.reopen("t")
    coord.tasks.claim("t", agent="a")
    coord.tasks.fail("t", agent="a", error="x")
    with pytest.raises(errors.InvalidTransition, match="'task retry' retries it"):
        coord.tasks.reopen("t")
    with pytest.raises(errors.NotFound):
        coord.tasks.retry("nope")
    with pytest.raises(errors.InvalidName):
        coord.tasks.retry("../x")


def test_a_blocked_reservation_stays_reserved(coord: Coordinator) -> None:
    team(coord, "devops", "bob")
    coord.tasks.create("ci", id="ci")
    coord.tasks.create("deploy", id="deploy", depends_on=["ci"], assign="bob")
    coord.tasks.claim("ci", agent="devops")
    coord.tasks.fail("ci", agent="devops", error="x")
    assert coord.tasks.get("deploy").status == BLOCKED
    coord.tasks.retry("ci")
    deploy = coord.tasks.get("deploy")
    assert (deploy.status, deploy.agent) == (ASSIGNED, "bob")


def test_retry_unblocks_transitive_dependents_in_order(coord: Coordinator) -> None:
    team(coord, "a")
    coord.tasks.create("a", id="a")
    coord.tasks.create("b", id="b", depends_on=["a"])
    coord.tasks.create("c", id="c", depends_on=["b", "a"])
    coord.tasks.create("other", id="o")
    coord.tasks.create("d", id="d", depends_on=["c", "o"])
    coord.tasks.claim("a", agent="a")
    coord.tasks.fail("a", agent="a", error="x")
    assert {k for k, v in states(coord).items() if v == BLOCKED} == {"b", "c", "d"}
    coord.tasks.retry("a")
    assert states(coord) == dict.fromkeys("abcod", PENDING)


def test_a_dependent_blocked_by_another_failure_stays_blocked(coord: Coordinator) -> None:
    team(coord, "a")
    coord.tasks.create("x", id="x")
    coord.tasks.create("y", id="y")
    coord.tasks.create("z", id="z", depends_on=["x", "y"])
    for tid in ("x", "y"):
        coord.tasks.claim(tid, agent="a")
        coord.tasks.fail(tid, agent="a", error="x")
    coord.tasks.retry("x")
    assert coord.tasks.get("z").status == BLOCKED  # y is still failed
    coord.tasks.retry("y")
    assert coord.tasks.get("z").status == PENDING


# -- reopen and cancel --------------------------------------------------------------------------
def test_reopen_a_complete_task(coord: Coordinator) -> None:
    team(coord, "a", "b")
    coord.tasks.create("build", id="build")
    coord.tasks.create("test", id="test", depends_on=["build"])
    coord.tasks.create("docs", id="docs", depends_on=["build"])
    coord.tasks.claim("build", agent="a")
    coord.tasks.complete("build", agent="a", result="built v1")
    coord.tasks.claim("test", agent="b")  # already running on the build as it was
    task = coord.tasks.reopen("build", reason="wrong flags")
    assert (task.status, task.agent, task.result, task.completed_at) == (PENDING, None, None, None)
    assert task.epoch == 1 and "reopened (wrong flags); was complete: built v1" in (
        task.logs[-1].message
    )
    # Documented choice: a pending dependent waits for it again; one that already started (or
    # finished) is left as it is.
    assert states(coord) == {"build": PENDING, "test": IN_PROGRESS, "docs": PENDING}
    assert [t.id for t in coord.tasks.list(ready=True)] == ["build"]
    assert coord.tasks.claim("build", agent="a").epoch == 2


def test_cancel_blocks_and_reopen_unblocks(coord: Coordinator) -> None:
    team(coord, "a")
    coord.tasks.create("x", id="x")
    coord.tasks.create("y", id="y", depends_on=["x"])
    task = coord.tasks.cancel("x", reason="not now")
    assert (task.status, task.error) == (CANCELLED, "not now")
    assert coord.tasks.get("y").status == BLOCKED
    with pytest.raises(errors.InvalidTransition):
        coord.tasks.cancel("x")
    coord.tasks.reopen("x")
    assert states(coord) == {"x": PENDING, "y": PENDING}


# -- edit -----------------------------------------------------------------------------------------
def test_edit_a_held_task_keeps_its_lease_and_epoch(coord: Coordinator, clock: FakeClock) -> None:
    team(coord, "a", capabilities=["web"])
    coord.tasks.create("t", id="t", lease_seconds=100)
    held = coord.tasks.claim("t", agent="a")
    task = coord.tasks.edit(
        "t",
        title="A better title",
        priority=7,
        lease_seconds=1000,
        max_attempts=5,
        labels=["ui", "p1"],
        requires=["web"],
        description="Do it.\n- [ ] works",
    )
    assert (task.status, task.agent, task.epoch, task.lease_expires) == (
        IN_PROGRESS,
        "a",
        held.epoch,
        held.lease_expires,
    )
    assert (task.title, task.priority, task.lease_seconds, task.max_attempts) == (
        "A better title",
        7,
        1000,
        5,
    )
    assert task.labels == ["ui", "p1"] and task.requires == ["web"]
    assert task.logs[-1].message.startswith("edited: title; priority 7; lease 1000s")
    # The holder's current grant keeps its length; the next grant gets the new one.
    clock.advance(50)
    renewed = coord.tasks.progress("t", agent="a", percent=10, epoch=held.epoch)
    assert renewed.lease_expires == clock.now + 100
    coord.tasks.complete("t", agent="a", epoch=held.epoch)
    coord.tasks.reopen("t")
    assert coord.tasks.claim("t", agent="a").lease_expires == clock.now + 1000


def test_edit_dependencies(coord: Coordinator) -> None:
    team(coord, "a")
    for tid in ("a", "b", "c"):
        coord.tasks.create(tid, id=tid)
    coord.tasks.edit("b", add_deps=["a"])
    with pytest.raises(errors.DependencyCycle) as info:
        coord.tasks.edit("a", add_deps=["b"])
    assert info.value.exit_code == 2 and "a -> b -> a" in info.value.message
    with pytest.raises(errors.DependencyCycle):
        coord.tasks.edit("a", add_deps=["a"])
    with pytest.raises(errors.NotFound) as missing:
        coord.tasks.edit("a", add_deps=["nope"])
    assert missing.value.exit_code == 3
    coord.tasks.claim("c", agent="a")
    coord.tasks.fail("c", agent="a", error="x")
    task = coord.tasks.edit("b", add_deps=["c"])  # a failed dependency blocks it at once
    assert (task.status, task.depends_on) == (BLOCKED, ["a", "c"])
    task = coord.tasks.edit("b", remove_deps=["c"])
    assert (task.status, task.depends_on, task.blocked_reason) == (PENDING, ["a"], None)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, "nothing to change"),
        ({"title": "two\nlines"}, "title"),
        ({"title": "  "}, "title"),
        ({"priority": 1.5}, "priority"),
        ({"lease_seconds": 0}, "lease"),
        ({"max_attempts": 0}, "max attempts"),
        ({"labels": ["a b"]}, "label"),
        ({"requires": ["../x"]}, "capability"),
        ({"labels": ["x"], "unlabel": ["x"]}, "both added and removed"),
        ({"description": "x" * 20_001}, "at most"),
        ({"description": "\udcff"}, "not valid text"),
    ],
)
def test_edit_bad_input(coord: Coordinator, kwargs: dict[str, object], error: str) -> None:
    coord.tasks.create("t", id="t")
    with pytest.raises(errors.InvalidInput, match=error) as info:
        coord.tasks.edit("t", **kwargs)  # type: ignore[arg-type]
    assert info.value.exit_code == 2
    assert coord.tasks.get("t").logs == []


def test_edit_max_attempts_below_attempts_used(coord: Coordinator, clock: FakeClock) -> None:
    team(coord, "a")
    coord.tasks.create("t", id="t", lease_seconds=5)
    for _ in range(2):
        coord.tasks.claim("t", agent="a")
        clock.advance(6)
        coord.tasks.reap()
    with pytest.raises(errors.InvalidInput, match="below the 2 attempt"):
        coord.tasks.edit("t", max_attempts=1)
    assert coord.tasks.edit("t", max_attempts=2).max_attempts == 2


# -- labels, parents, search ------------------------------------------------------------------
def test_labels_and_parents_filter_lists(coord: Coordinator, clock: FakeClock) -> None:
    coord.tasks.create("Epic", id="epic", labels=["ui"])
    clock.advance(1)
    coord.tasks.create("Button", id="button", parent="epic", labels=["ui", "p1"])
    clock.advance(1)
    coord.tasks.create("Menu", id="menu", parent="epic")
    coord.tasks.create("Other", id="other", labels=["p1"])
    assert [t.id for t in coord.tasks.list(label="ui")] == ["epic", "button"]
    assert [t.id for t in coord.tasks.list(parent="epic")] == ["button", "menu"]
    assert [t.id for t in coord.tasks.list(label="p1", parent="epic")] == ["button"]
    heads = {h.id: h for h in coord.tasks.heads()}
    assert (heads["button"].labels, heads["button"].parent) == (["ui", "p1"], "epic")
    assert coord.tasks.edit("other", labels=["ui"], unlabel=["p1"]).labels == ["ui"]
    with pytest.raises(errors.NotFound):
        coord.tasks.create("x", parent="nope")
    with pytest.raises(errors.InvalidName):
        coord.tasks.list(label="a b")


def test_a_parent_cannot_complete_while_a_child_is_open(coord: Coordinator) -> None:
    team(coord, "a")
    coord.tasks.create("Epic", id="epic")
    # Claimed before it had children (a task with open children is not claimable).
    coord.tasks.claim("epic", agent="a")
    coord.tasks.create("one", id="one", parent="epic")
    coord.tasks.create("two", id="two", parent="epic")
    with pytest.raises(errors.Conflict) as info:
        coord.tasks.complete("epic", agent="a")
    assert info.value.exit_code == 4
    assert info.value.details["children"] == ["one", "two"]
    assert "one (pending), two (pending)" in info.value.message
    assert coord.tasks.get("epic").status == IN_PROGRESS  # nothing changed
    coord.tasks.cancel("one")
    coord.tasks.claim("two", agent="a")
    coord.tasks.complete("two", agent="a")
    assert coord.tasks.complete("epic", agent="a").status == COMPLETE
    # A complete parent takes no new open child.
    with pytest.raises(errors.InvalidTransition, match="reopen it first"):
        coord.tasks.create("three", parent="epic")


def test_parent_cycles_are_refused(coord: Coordinator) -> None:
    coord.tasks.create("a", id="a")
    coord.tasks.create("b", id="b", parent="a")
    coord.tasks.create("c", id="c", parent="b")
    with pytest.raises(errors.DependencyCycle) as info:
        coord.tasks.edit("a", parent="c")
    assert info.value.exit_code == 2 and "a -> c -> b -> a" in info.value.message
    with pytest.raises(errors.DependencyCycle):
        coord.tasks.edit("a", parent="a")
    assert coord.tasks.edit("c", parent="").parent is None


def test_search(coord: Coordinator) -> None:
    coord.tasks.create("Fix the LOGIN page", id="t1", labels=["ui"], priority=4)
    coord.tasks.create(
        "Backend", id="t2", description="The login API\n- [ ] rate limit", priority=3
    )
    coord.tasks.create("Docs", id="login-docs", priority=2)
    coord.tasks.create("Other", id="t4", labels=["login-flow"], priority=1)
    found, total = coord.tasks.search("Login")
    assert [t.id for t in found] == ["t1", "t2", "login-docs", "t4"] and total == 4
    found, total = coord.tasks.search("login", limit=2)
    assert (len(found), total) == (2, 4)
    assert [t.id for t in coord.tasks.search("login", label="ui")[0]] == ["t1"]
    assert coord.tasks.search("RATE LIMIT")[0][0].id == "t2"
    assert coord.tasks.search("login", status="complete") == ([], 0)
    for bad in ("", "two\nlines"):
        with pytest.raises(errors.InvalidInput):
            coord.tasks.search(bad)


# -- acceptance criteria ------------------------------------------------------------------------
def test_check_ticks_acceptance_criteria(coord: Coordinator) -> None:
    coord.tasks.create("t", id="t", description="Goal.\n\n- [ ] one\n- [ ] two\n  * [x] two.a")
    task = coord.tasks.check("t", 2)
    assert task.description == "Goal.\n\n- [ ] one\n- [x] two\n  * [x] two.a"
    assert task.logs[-1].message == "criterion 2 checked: two"
    assert coord.tasks.check("t", 3, checked=False).description.endswith("* [ ] two.a")
    before = coord.tasks.get("t")
    assert coord.tasks.check("t", 2) == before  # already so: nothing written
    with pytest.raises(errors.InvalidInput, match="items 1-3"):
        coord.tasks.check("t", 4)
    with pytest.raises(errors.InvalidInput):
        coord.tasks.check("t", 0)
    coord.tasks.create("u", id="u")
    with pytest.raises(errors.InvalidInput, match="no '- \\[ \\]' items"):
        coord.tasks.check("u", 1)


# -- required capabilities (issue 16 item 4) ------------------------------------------------------
def test_required_capabilities_gate_claims(coord: Coordinator) -> None:
    coord.agents.register("reviewer", capabilities=["read"])
    coord.agents.register("dev", capabilities=["read", "write"])
    coord.tasks.create("implement Y", id="impl", priority=5, requires=["write"])
    coord.tasks.create("review X", id="review", priority=1, requires=["read"])
    coord.tasks.create("anything", id="free")
    # Next-ready claim skips what the agent cannot do; a task without requires is anyone's.
    assert coord.tasks.claim(agent="reviewer").id == "review"
    assert coord.tasks.claim(agent="reviewer").id == "free"
    with pytest.raises(errors.NothingToClaim):
        coord.tasks.claim(agent="reviewer")
    with pytest.raises(errors.Conflict) as info:
        coord.tasks.claim("impl", agent="reviewer")
    assert info.value.exit_code == 4 and info.value.details["missing"] == ["write"]
    assert "requires capability write, which reviewer lacks (has: read" in info.value.message
    assert coord.tasks.get("impl").status == PENDING
    ready = [t.id for t in coord.tasks.list(ready=True, agent="reviewer")]
    assert ready == []
    assert [t.id for t in coord.tasks.list(ready=True, agent="dev")] == ["impl"]
    assert coord.tasks.claim(agent="dev").id == "impl"


def test_assign_honours_required_capabilities(coord: Coordinator) -> None:
    coord.agents.register("reviewer", capabilities=["read"])
    coord.agents.register("dev", capabilities=["read", "write"], workload=50)
    coord.tasks.create("implement Y", id="impl", requires=["write", "read"])
    with pytest.raises(errors.Conflict, match="write"):
        coord.tasks.assign("impl", "reviewer")
    assert coord.tasks.assign_auto("impl").agent == "dev"  # reviewer is less loaded, but lacks it


# -- archived tasks (issue 16 item 2) --------------------------------------------------------------
def test_cleanup_keeps_a_failed_task_its_blocked_dependents_wait_for(
    coord: Coordinator, clock: FakeClock
) -> None:
    ci_board(coord)
    coord.tasks.create("done long ago", id="old")
    coord.tasks.claim("old", agent="qa")
    coord.tasks.complete("old", agent="qa")
    coord.tasks.claim("ci", agent="devops")
    coord.tasks.fail("ci", agent="devops", error="runner quota")
    clock.advance(25 * HOUR)
    actions = coord.maintenance.cleanup()
    by_key = {a.key: a for a in actions if a.kind == "task"}
    assert by_key["ci"].what == "skip" and "depends on it" in by_key["ci"].detail
    assert by_key["old"].what == "archive" and by_key["old"].done
    assert coord.tasks.get("ci").status == FAILED
    coord.tasks.retry("ci")  # so it can still be retried, and its dependents unblock
    assert coord.tasks.get("load-tests").status == PENDING


def test_archived_tasks_stay_readable(coord: Coordinator, clock: FakeClock) -> None:
    team(coord, "a")
    coord.tasks.create("Ship", id="ship", labels=["release"], description="- [x] done")
    coord.tasks.claim("ship", agent="a")
    coord.tasks.complete("ship", agent="a", result="v1")
    clock.advance(25 * HOUR)
    coord.maintenance.cleanup()
    with pytest.raises(errors.NotFound):
        coord.tasks.get("ship")
    task, archive = coord.tasks.find("ship")
    assert (task.result, task.labels, archive) == ("v1", ["release"], "ship")
    assert [t.id for t in coord.tasks.list(archived=True)] == ["ship"]
    assert coord.tasks.list(archived=True, label="other") == []
    assert [t.id for t in coord.tasks.search("SHIP", archived=True)[0]] == ["ship"]
    assert coord.tasks.search("ship") == ([], 0)
    with pytest.raises(errors.NotFound):
        coord.tasks.find("never")
    with pytest.raises(errors.InvalidInput):
        coord.tasks.list(archived=True, ready=True)


# -- doctor (issue 16 item 1: every blocked/unblocked mismatch is repaired) ------------------------
def test_doctor_repairs_blocked_and_unblocked_mismatches(coord: Coordinator) -> None:
    ci_board(coord)
    coord.tasks.claim("ci", agent="devops")
    coord.tasks.fail("ci", agent="devops", error="x")

    def hand_edit(tid: str, status: str) -> None:  # what a person's edit of the file does
        def fn(task: object) -> object:
            task.status = status  # type: ignore[attr-defined]
            return task

        coord.store.update_task(tid, fn)  # type: ignore[arg-type]

    # ci back to complete by hand: its dependents stay blocked with no failed dependency ...
    hand_edit("ci", COMPLETE)
    # ... and a new task left pending behind a failed one (a missed propagation).
    coord.tasks.create("later", id="later")
    coord.tasks.create("after-later", id="after-later", depends_on=["later"])
    hand_edit("later", FAILED)
    found = {(v.kind, v.key): v for v in coord.doctor.check()}
    assert {k for k in found if k[0] in ("blocked", "unblocked")} == {
        ("blocked", "deploy-staging"),
        ("blocked", "load-tests"),
        ("unblocked", "after-later"),
    }
    assert all(v.repairable for v in found.values() if v.kind in ("blocked", "unblocked"))
    actions = coord.doctor.fix()
    assert "unblocked task deploy-staging: no dependency of it failed" in actions
    assert any(a.startswith("blocked task after-later") for a in actions)
    assert not [v for v in coord.doctor.check() if v.kind in ("blocked", "unblocked")]
    assert states(coord)["deploy-staging"] == PENDING
    assert states(coord)["after-later"] == BLOCKED
