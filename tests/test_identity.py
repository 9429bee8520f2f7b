"""Strict agent identity (SPEC section 11, issue 16 item 3), on every backend, through the Python
API, the CLI and MCP: unknown agents are refused unless registered (``--register``,
``auto_register``), retired agents take no work, an assignment is never silently replaced, one
name is one live session (``--takeover``), and a claim by the holder's name is a new grant."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentcoord import errors
from agentcoord.api import Coordinator
from agentcoord.core.config import Config, check
from agentcoord.core.models import Agent

from .conftest import MARKDOWN_ONLY, FakeClock


def _open(coord: Coordinator, **config: Any) -> Coordinator:
    """The same store with other settings (as a workspace whose config.json sets them)."""
    return Coordinator(
        coord.store, config=Config(config), workspace=coord.workspace, clock=coord.clock
    )


# -- unknown agents ------------------------------------------------------------------------------
def test_an_unknown_agent_cannot_claim_and_registers_nothing(coord: Coordinator) -> None:
    coord.tasks.create("x", id="t1")
    for call in (
        lambda: coord.tasks.claim("t1", agent="ghost"),
        lambda: coord.tasks.claim(agent="ghost"),
    ):
        with pytest.raises(errors.NotFound) as info:
            call()
        assert info.value.exit_code == 3
        assert "ghost" in info.value.message and "agent register ghost" in info.value.message
    with pytest.raises(errors.NotFound):
        coord.agents.get("ghost")
    assert coord.tasks.get("t1").status == "pending"


def test_register_true_and_auto_register_let_a_new_agent_claim(coord: Coordinator) -> None:
    coord.tasks.create("x", id="t1")
    coord.tasks.create("y", id="t2")
    task = coord.tasks.claim("t1", agent="new", register=True)
    assert (task.agent, task.epoch) == ("new", 1)
    assert coord.agents.get("new").status == "busy"
    auto = _open(coord, auto_register=True)
    assert auto.tasks.claim(agent="other").id == "t2"
    assert auto.agents.get("other").name == "other"
    check({"auto_register": True})
    with pytest.raises(errors.InvalidInput):
        check({"auto_register": "yes"})


def test_an_unknown_agent_cannot_be_assigned(coord: Coordinator) -> None:
    coord.tasks.create("x", id="t1")
    with pytest.raises(errors.NotFound, match="nobody"):
        coord.tasks.assign("t1", "nobody")
    with pytest.raises(errors.NotFound):
        coord.tasks.create("y", id="t2", assign="nobody")
    with pytest.raises(errors.NotFound):
        coord.agents.get("nobody")
    assert coord.tasks.get("t1").status == "pending"
    task = coord.tasks.assign("t1", "nobody", register=True)
    assert (task.status, task.agent) == ("assigned", "nobody")
    assert coord.agents.get("nobody").session == ""  # registered, but by no session


def test_holder_updates_by_an_unknown_agent_are_not_found(coord: Coordinator) -> None:
    coord.agents.register("a1")
    coord.tasks.create("x", id="t1")
    coord.tasks.claim("t1", agent="a1")
    for call in (
        lambda: coord.tasks.progress("t1", agent="ghost", percent=5),
        lambda: coord.tasks.log("t1", "hi", agent="ghost"),
        lambda: coord.tasks.complete("t1", agent="ghost"),
        lambda: coord.tasks.fail("t1", agent="ghost", error="e"),
        lambda: coord.tasks.release("t1", agent="ghost"),
    ):
        with pytest.raises(errors.NotFound, match="ghost"):
            call()
    coord.agents.register("b1")
    with pytest.raises(errors.LeaseLost):  # a registered non-holder keeps its code
        coord.tasks.progress("t1", agent="b1", percent=5)
    with pytest.raises(errors.NotFound):  # a heartbeat never registers either
        coord.agents.heartbeat("ghost")


# -- retired agents ------------------------------------------------------------------------------
def test_a_retired_agent_cannot_claim_be_assigned_or_heartbeat_back(coord: Coordinator) -> None:
    coord.agents.register("r")
    coord.agents.retire("r")
    coord.tasks.create("x", id="t1")
    for call in (
        lambda: coord.tasks.claim("t1", agent="r"),
        lambda: coord.tasks.claim("t1", agent="r", register=True),
        lambda: coord.tasks.assign("t1", "r"),
        lambda: coord.agents.heartbeat("r"),
    ):
        with pytest.raises(errors.Conflict, match="retired") as info:
            call()
        assert info.value.exit_code == 4
    assert coord.agents.get("r").status == "retired"
    coord.agents.register("r")  # an explicit registration brings it back
    assert coord.tasks.claim("t1", agent="r").agent == "r"


def test_a_task_held_by_a_retired_or_unknown_agent_is_an_alert(
    coord: Coordinator, clock: FakeClock
) -> None:
    coord.agents.register("r")
    coord.tasks.create("x", id="t1")
    coord.tasks.claim("t1", agent="r")
    coord.agents.register("gone")
    coord.tasks.create("y", id="t2", assign="gone")

    def retired(agent: Agent | None) -> Agent | None:
        if agent is not None:
            agent.status = "retired"
        return agent

    coord.store.update_agent("r", retired)  # retired while a claim raced it: it still holds t1
    coord.store.archive_agent("gone", lambda a: True)
    alerts = [a for a in coord.reports.status()["alerts"] if a["kind"] == "orphaned_task"]
    assert {(a["task"], a["agent"]) for a in alerts} == {("t1", "r"), ("t2", "gone")}
    why = {a["task"]: a["message"] for a in alerts}
    assert "which is retired" in why["t1"] and "which is not registered" in why["t2"]


# -- assignments -----------------------------------------------------------------------------------
def test_assign_never_silently_replaces_an_assignment(coord: Coordinator) -> None:
    for name in ("a1", "a2"):
        coord.agents.register(name)
    coord.tasks.create("x", id="t1")
    coord.tasks.assign("t1", "a1")
    assert coord.tasks.assign("t1", "a1").agent == "a1"  # the same again: no change
    with pytest.raises(errors.Conflict) as info:
        coord.tasks.assign("t1", "a2")
    assert info.value.details["holder"] == "a1" and "a1" in info.value.message
    assert coord.tasks.get("t1").agent == "a1"
    task = coord.tasks.assign("t1", "a2", force=True)
    assert task.agent == "a2" and task.logs[-1].message == "assigned to a2 (was a1)"


# -- one name, one live session ----------------------------------------------------------------
def test_a_live_name_is_refused_to_a_second_session_unless_takeover(
    coord: Coordinator, clock: FakeClock
) -> None:
    first = coord.agents.register("w")
    assert (len(first.session), first.generation) == (16, 1)
    clock.advance(30)
    with pytest.raises(errors.Conflict, match=r"live \(last seen 30s ago") as info:
        coord.agents.register("w")
    assert info.value.exit_code == 4 and "--takeover" in info.value.message
    same = coord.agents.register("w", session=first.session)  # the first session again
    assert (same.session, same.generation) == (first.session, 1)
    second = coord.agents.register("w", takeover=True)
    assert second.session != first.session and second.generation == 2
    # The replaced session learns it at its next heartbeat; the new one carries on.
    with pytest.raises(errors.Conflict, match="taken over") as beat:
        coord.agents.heartbeat("w", session=first.session)
    assert beat.value.details["replaced"] is True
    coord.agents.heartbeat("w", session=second.session)
    with pytest.raises(errors.InvalidInput):
        coord.agents.heartbeat("w", session="not a token")


def test_a_silent_offline_or_retired_name_is_free(coord: Coordinator, clock: FakeClock) -> None:
    first = coord.agents.register("w")
    clock.advance(300)  # the monitor's stuck bound: no longer live
    assert coord.agents.register("w").generation == 2
    coord.agents.heartbeat("w", status="offline")
    assert coord.agents.register("w").generation == 3
    coord.agents.retire("w")
    back = coord.agents.register("w")
    assert (back.status, back.generation) == ("idle", 4) and back.session != first.session
    # A bound of the workspace's own.
    strict = _open(coord, monitor={"stuck": 1000})
    clock.advance(500)
    with pytest.raises(errors.Conflict):
        strict.agents.register("w")


def test_task_activity_keeps_a_name_live(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("w")
    coord.tasks.create("x", id="t1", total=10)
    coord.tasks.claim("t1", agent="w")
    clock.advance(290)
    coord.tasks.progress("t1", agent="w", current=5)  # refreshes the agent's view
    clock.advance(200)  # 490 s since the registration, 200 s since the progress
    with pytest.raises(errors.Conflict):
        coord.agents.register("w")


def test_a_claim_by_the_holders_name_is_a_new_grant_that_fences_the_old_one(
    coord: Coordinator, clock: FakeClock
) -> None:
    coord.agents.register("w")
    coord.tasks.create("x", id="t1")
    old = coord.tasks.claim("t1", agent="w", lease_seconds=60)
    clock.advance(10)
    coord.agents.register("w", takeover=True)  # a second session under the same name
    new = coord.tasks.claim("t1", agent="w")
    assert new.epoch == old.epoch + 1 and new.attempts == old.attempts
    assert new.lease_grant is None and new.lease_expires == clock.now + 600  # its own grant
    assert "epoch 1 is fenced out" in new.logs[-1].message
    for call in (
        lambda: coord.tasks.complete("t1", agent="w", epoch=old.epoch),
        lambda: coord.tasks.progress("t1", agent="w", percent=5, epoch=old.epoch),
        lambda: coord.tasks.log("t1", "late", agent="w", epoch=old.epoch),
        lambda: coord.tasks.release("t1", agent="w", epoch=old.epoch),
    ):
        with pytest.raises(errors.StaleEpoch):
            call()
    done = coord.tasks.complete("t1", agent="w", epoch=new.epoch)
    assert done.status == "complete"
    # A retry of that completion is still safe (SPEC section 4).
    assert coord.tasks.complete("t1", agent="w", epoch=new.epoch).status == "complete"


def test_the_session_is_kept_by_every_backend(coord: Coordinator, clock: FakeClock) -> None:
    a = coord.agents.register("w")
    clock.advance(1000)
    b = coord.agents.register("w")
    got = coord.agents.get("w")
    assert (got.session, got.generation) == (b.session, 2) and a.session != b.session


@MARKDOWN_ONLY
def test_the_agent_file_shows_the_session(coord: Coordinator) -> None:
    from pathlib import Path

    a = coord.agents.register("w")
    assert coord.workspace is not None
    text = (Path(coord.workspace.root) / "agent-w.md").read_text()
    assert f"**Session**: {a.session} (generation 1)\n" in text


# -- CLI -------------------------------------------------------------------------------------------
def test_cli_identity_rules(run_cli: Any, coord: Coordinator) -> None:
    run_cli("task", "create", "x", "--id", "t1")
    out = run_cli("task", "claim", "t1", "--agent", "ghost", code=3)
    assert "unknown agent 'ghost'" in out.stderr and "coord agent register ghost" in out.stderr
    out = run_cli("--json", "task", "assign", "t1", "nobody", code=3)
    assert json.loads(out.stderr)["error"]["code"] == "not_found"
    run_cli("task", "assign", "t1", "nobody", "--register")
    run_cli("agent", "register", "a2")
    out = run_cli("task", "assign", "t1", "a2", code=4)
    assert "already assigned to nobody" in out.stderr and "--force" in out.stderr
    out = run_cli("task", "assign", "t1", "a2", "--force")
    assert out.stdout.startswith("assigned task t1 to a2 ")
    assert run_cli("-q", "task", "assign", "t1", "a2").stdout == "a2\n"
    run_cli("task", "create", "y", "--id", "t2")
    assert run_cli("-q", "task", "claim", "--agent", "ghost2", "--register").stdout == "t2\n"
    run_cli("agent", "retire", "a2")
    out = run_cli("task", "claim", "t1", "--agent", "a2", code=4)
    assert "retired" in out.stderr
    run_cli("agent", "heartbeat", "a2", code=4)
    with pytest.raises(errors.NotFound):
        coord.agents.get("ghost")


def test_cli_register_takeover_and_session(run_cli: Any, clock: FakeClock) -> None:
    first = json.loads(run_cli("--json", "agent", "register", "w").stdout)
    assert first["generation"] == 1 and len(first["session"]) == 16
    out = run_cli("agent", "register", "w", code=4)
    assert "agent w is live (last seen 0s ago" in out.stderr and "--takeover" in out.stderr
    token = run_cli("-q", "agent", "register", "w", "--session", first["session"]).stdout
    assert token == first["session"] + "\n"
    second = run_cli("-q", "agent", "register", "w", "--takeover").stdout.strip()
    assert second != first["session"]
    out = run_cli("--json", "agent", "heartbeat", "w", "--session", first["session"], code=4)
    error = json.loads(out.stderr)["error"]
    assert (error["code"], error["replaced"], error["generation"]) == ("conflict", True, 2)
    run_cli("agent", "heartbeat", "w", "--session", second)
    run_cli("agent", "heartbeat", "w", "--session", "XYZ", code=2)


def test_cli_reclaim_gets_a_new_epoch_and_the_old_complete_is_refused(run_cli: Any) -> None:
    run_cli("agent", "register", "w")
    run_cli("task", "create", "x", "--id", "t1")
    one = json.loads(run_cli("--json", "task", "claim", "t1", "--agent", "w").stdout)
    two = json.loads(run_cli("--json", "task", "claim", "t1", "--agent", "w").stdout)
    assert two["epoch"] == one["epoch"] + 1
    out = run_cli("--json", "task", "complete", "t1", "--agent", "w", "--epoch", "1", code=4)
    assert json.loads(out.stderr)["error"]["code"] == "stale_epoch"
    run_cli("task", "complete", "t1", "--agent", "w", "--epoch", "2")


def test_cli_auto_register_config(run_cli: Any, coord: Coordinator) -> None:
    coord.config.values["auto_register"] = True
    run_cli("task", "create", "x", "--id", "t1")
    run_cli("task", "claim", "t1", "--agent", "newcomer")
    assert coord.agents.get("newcomer").name == "newcomer"


def test_cli_status_shows_an_orphaned_task(run_cli: Any, coord: Coordinator) -> None:
    run_cli("agent", "register", "a1")
    run_cli("task", "create", "x", "--id", "t1", "--assign", "a1")
    coord.store.archive_agent("a1", lambda a: True)
    data = json.loads(run_cli("--json", "status").stdout)
    assert [a["kind"] for a in data["alerts"]] == ["orphaned_task"]
    assert "not registered" in data["alerts"][0]["message"]


# -- MCP -------------------------------------------------------------------------------------------
@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_mcp_identity(coord: Coordinator, clock: FakeClock) -> None:
    pytest.importorskip("mcp")
    from .test_mcp import connect, err, ok

    coord.tasks.create("x", id="t1")
    async with connect(coord, agent="ghost", register=False) as s:
        error = await err(s, "claim", id="t1")
        assert error["code"] == "not_found" and "register" in error["message"]
        with pytest.raises(errors.NotFound):
            coord.agents.get("ghost")  # a misspelt name never registers
        first = await ok(s, "register")
        assert first["generation"] == 1
        assert (await ok(s, "register"))["generation"] == 1  # the same session: safe to repeat
        claimed = await ok(s, "claim", id="t1")
        async with connect(coord, agent="ghost", register=False) as s2:  # same name
            error = await err(s2, "register")
            assert error["code"] == "conflict" and "live" in error["message"]
            assert (await ok(s2, "register", takeover=True))["generation"] == 2
            again = await ok(s2, "claim", id="t1")
            assert again["epoch"] == claimed["epoch"] + 1
            # The replaced session is told so, and cannot finish the task over the new one.
            assert (await err(s, "heartbeat"))["code"] == "conflict"
            assert (await err(s, "finish", id="t1", outcome="complete"))["code"] == "stale_epoch"
            assert (await err(s, "progress", id="t1", percent=5))["code"] == "stale_epoch"
            assert (await ok(s2, "finish", id="t1", outcome="complete"))["status"] == "complete"
    coord.agents.register("r")
    coord.agents.retire("r")
    coord.tasks.create("y", id="t2")
    async with connect(coord, agent="r", register=False) as s:
        error = await err(s, "claim", id="t2")
        assert error["code"] == "conflict" and "retired" in error["message"]
