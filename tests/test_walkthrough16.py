"""A new user's walkthrough (nu16): waiting assignments are not "held work", parents with open
children are not ready, live dependency states in show, -q documented, failed tasks are alerts,
re-register keeps or reports capabilities, small surprises. Every test runs on every backend."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentcoord import errors
from agentcoord.api import Coordinator
from agentcoord.core.models import ASSIGNED, COMPLETE, IN_PROGRESS, PENDING

from .conftest import FakeClock


def js(result: Any) -> Any:
    return json.loads(result.stdout)


# -- 1. an assignment the agent cannot claim yet is not work it holds ------------------------
def test_a_waiting_assignment_leaves_its_agent_idle(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("builder")
    coord.agents.register("devops")
    coord.tasks.create("deploy staging", id="deploy")
    coord.tasks.create("smoke test", id="t1", depends_on=["deploy"], assign="devops")
    coord.tasks.claim("deploy", agent="builder", lease_seconds=5000)
    with pytest.raises(errors.Conflict, match="not ready"):
        coord.tasks.claim("t1", agent="devops")
    clock.advance(1000)  # far past the stuck bound (300 s)
    coord.agents.heartbeat("builder")
    rows = {r.agent: r for r in coord.monitor.classify()}
    row = rows["devops"]
    assert row.health == "Idle" and not row.attention
    assert row.assigned == ["t1"] and row.waiting == ["t1"]
    assert "assigned t1: not ready yet" in row.reason
    assert row.to_dict()["waiting"] == ["t1"]
    assert not any(a["kind"] == "blocked_agent" for a in coord.reports.status()["alerts"])
    # The dependency completes: now the work is claimable, and the clock starts then.
    coord.tasks.complete("deploy", agent="builder")
    rows = {r.agent: r for r in coord.monitor.classify()}
    assert rows["devops"].health == "Normal" and rows["devops"].waiting == []
    clock.advance(130)
    assert {r.agent: r for r in coord.monitor.classify()}["devops"].health == "Concerning"
    clock.advance(200)
    assert {r.agent: r for r in coord.monitor.classify()}["devops"].health == "Blocked"


def test_an_assigned_parent_with_open_children_is_not_held_work(
    coord: Coordinator, clock: FakeClock
) -> None:
    coord.agents.register("lead")
    coord.tasks.create("epic", id="epic", assign="lead")
    coord.tasks.create("part", id="part", parent="epic")
    clock.advance(1000)
    row = {r.agent: r for r in coord.monitor.classify()}["lead"]
    assert row.health == "Idle" and row.waiting == ["epic"]


def test_monitor_table_shows_assigned_tasks(
    coord: Coordinator, clock: FakeClock, run_cli: Any
) -> None:
    run_cli("agent", "register", "devops")
    run_cli("task", "create", "base", "--id", "base")
    run_cli("task", "create", "ready one", "--id", "t2", "--assign", "devops")
    run_cli("task", "create", "waits", "--id", "t1", "--depends-on", "base", "--assign", "devops")
    clock.advance(1000)
    out = run_cli("monitor", code=1).stdout  # t2 is claimable and ignored: Blocked
    assert "t1 (assigned, not ready)" in out and "t2 (assigned)" in out
    rows = js(run_cli("--json", "monitor", code=1))["agents"]
    assert rows[0]["assigned"] == ["t1", "t2"] and rows[0]["waiting"] == ["t1"]
    run_cli("task", "cancel", "t2")
    out = run_cli("monitor").stdout  # only the waiting one is left: Idle, exit 0
    assert "Idle" in out and "t1 (assigned, not ready)" in out


# -- 2. a task with open children is not ready -----------------------------------------------
def test_a_parent_with_open_children_is_not_ready(coord: Coordinator) -> None:
    coord.agents.register("devops")
    coord.tasks.create("epic", id="auth", priority=5)
    coord.tasks.create("users api", id="api", parent="auth")
    coord.tasks.create("login", id="login", parent="auth")
    ready = [t.id for t in coord.tasks.list(ready=True)]
    assert ready == ["api", "login"]
    assert [t.id for t in coord.tasks.list(ready=False)] == ["auth"]
    assert coord.tasks.readiness(coord.tasks.heads()) == {
        "auth": False,
        "api": True,
        "login": True,
    }
    with pytest.raises(errors.Conflict) as info:
        coord.tasks.claim("auth", agent="devops")
    assert info.value.exit_code == 4
    assert "not ready: it has open children: api (pending), login (pending)" in info.value.message
    assert info.value.details["children"] == ["api", "login"]
    assert coord.tasks.claim(agent="devops").id == "api"  # not the epic, despite its priority
    coord.tasks.complete("api", agent="devops")
    assert coord.tasks.claim(agent="devops").id == "login"
    coord.tasks.fail("login", agent="devops", error="no")  # failed: not open
    assert coord.tasks.claim(agent="devops").id == "auth"
    assert coord.tasks.complete("auth", agent="devops").status == COMPLETE


def test_a_blocked_child_keeps_its_parent_waiting(coord: Coordinator) -> None:
    coord.agents.register("a")
    coord.tasks.create("epic", id="epic")
    coord.tasks.create("base", id="base")
    coord.tasks.create("child", id="child", parent="epic", depends_on=["base"])
    coord.tasks.claim("base", agent="a")
    coord.tasks.fail("base", agent="a", error="broken")
    assert coord.tasks.get("child").status == "blocked"
    with pytest.raises(errors.NothingToClaim):
        coord.tasks.claim(agent="a")
    assert coord.tasks.readiness(coord.tasks.heads())["epic"] is False


def test_cli_and_mcp_agree_on_parent_readiness(coord: Coordinator, run_cli: Any) -> None:
    from agentcoord.mcp.tools import Tools

    run_cli("agent", "register", "devops")
    run_cli("task", "create", "epic", "--id", "auth")
    run_cli("task", "create", "child", "--id", "c1", "--parent", "auth")
    assert [r["id"] for r in js(run_cli("--json", "task", "list", "--ready"))] == ["c1"]
    rows = {r["id"]: r for r in js(run_cli("--json", "task", "list"))}
    assert rows["auth"]["ready"] is False and rows["c1"]["ready"] is True
    assert "waiting" in run_cli("task", "list").stdout
    err = json.loads(run_cli("--json", "task", "claim", "auth", "--agent", "devops", code=4).stderr)
    assert err["error"]["children"] == ["c1"]
    tools = Tools(coord, "devops")
    assert [t["id"] for t in tools.list_tasks(ready=True)["tasks"]] == ["c1"]


# -- 3. task show reads dependency states live -----------------------------------------------
def test_show_reads_dependency_states_live(coord: Coordinator, run_cli: Any) -> None:
    from agentcoord.mcp.tools import Tools

    run_cli("agent", "register", "backend")
    run_cli("task", "create", "Design DB schema", "--id", "schema")
    run_cli("task", "create", "Users API", "--id", "api-users", "--depends-on", "schema")
    run_cli("task", "claim", "schema", "--agent", "backend")
    shown = js(run_cli("--json", "task", "show", "api-users", "--fields", "dep_states"))
    assert shown == {"dep_states": {"schema": IN_PROGRESS}}
    assert "(schema) - IN_PROGRESS" in run_cli("task", "show", "api-users").stdout
    run_cli("task", "complete", "schema", "--agent", "backend")
    shown = js(run_cli("--json", "task", "show", "api-users", "--fields", "dep_states"))
    assert shown == {"dep_states": {"schema": COMPLETE}}
    text = run_cli("task", "show", "api-users").stdout
    assert "(schema) - COMPLETE" in text and "PENDING" not in text.split("Dependencies")[1][:80]
    tools = Tools(coord, "backend")
    assert tools.show_task(id="api-users")["dep_states"] == {"schema": COMPLETE}
    # The stored snapshot is untouched by a show (a read writes nothing).
    assert coord.tasks.get("api-users").status == PENDING


# -- 4. -q is documented as it behaves ---------------------------------------------------------
def test_quiet_help_says_what_it_prints(run_cli: Any) -> None:
    out = run_cli("--help").stdout
    assert "print only what a script needs next" in out and "session token" in out
    assert "print nothing on success" not in out
    run_cli("agent", "register", "a")
    assert run_cli("-q", "task", "create", "x", "--id", "x1").stdout == "x1\n"
    assert run_cli("-q", "task", "list").stdout == ""


# -- 5. failed tasks are status alerts ---------------------------------------------------------
def test_a_failed_task_is_an_alert_naming_its_error_and_what_it_blocks(
    coord: Coordinator, run_cli: Any
) -> None:
    coord.agents.register("devops")
    coord.tasks.create("ci", id="ci")
    coord.tasks.create("deploy", id="deploy", depends_on=["ci"])
    coord.tasks.create("load", id="load", depends_on=["deploy"])
    coord.tasks.create("mon", id="mon", depends_on=["deploy"])
    coord.tasks.claim("ci", agent="devops")
    coord.tasks.fail("ci", agent="devops", error="runner quota")
    data = coord.reports.status()
    failed = [a for a in data["alerts"] if a["kind"] == "failed_task"]
    assert len(failed) == 1
    assert failed[0]["task"] == "ci" and failed[0]["blocks"] == 3
    assert "task ci failed: runner quota (blocks 3 tasks)" in failed[0]["message"]
    assert "coord task retry ci" in failed[0]["message"]
    assert data["attention"] is False  # agents only: monitor exit codes unchanged
    out = run_cli("status").stdout
    assert "alerts (1):" in out and "task ci failed: runner quota" in out
    run_cli("monitor")  # exit 0: the monitor is about agents
    coord.tasks.retry("ci")
    assert not [a for a in coord.reports.status()["alerts"] if a["kind"] == "failed_task"]


# -- 6. re-register keeps capabilities unless given, and says what changed ------------------
def test_reregister_keeps_or_reports_capabilities(coord: Coordinator, run_cli: Any) -> None:
    run_cli("agent", "register", "frontend", "--capability", "js,react", "--capability", "css")
    assert coord.agents.get("frontend").capabilities == ["js", "react", "css"]
    out = run_cli("agent", "register", "frontend", "--takeover").stdout
    assert "capabilities changed" not in out
    assert coord.agents.get("frontend").capabilities == ["js", "react", "css"]
    out = run_cli("agent", "register", "frontend", "--takeover", "--capability", "js,ts").stdout
    assert "capabilities changed: added ts; removed react, css" in out
    data = js(
        run_cli("--json", "agent", "register", "frontend", "--takeover", "--capability", "js")
    )
    assert data["capabilities_changed"] == {"added": [], "removed": ["ts"]}
    assert data["capabilities"] == ["js"]
    run_cli("agent", "register", "frontend", "--takeover", "--capability", "bad name", code=2)


def test_claim_says_when_ready_tasks_need_missing_capabilities(
    coord: Coordinator, run_cli: Any
) -> None:
    run_cli("agent", "register", "frontend", "--capability", "js")
    run_cli("task", "create", "tokens", "--id", "t1", "--requires", "react")
    run_cli("task", "create", "dash", "--id", "t2", "--requires", "react,css")
    out = run_cli("--json", "task", "claim", "--agent", "frontend", code=3)
    err = json.loads(out.stderr)["error"]
    assert err["message"].startswith(
        "no ready task for frontend: 2 ready tasks need capabilities it lacks (css, react)"
    )
    assert err["lacking"] == ["css", "react"] and err["tasks"] == ["t1", "t2"]
    run_cli("task", "cancel", "t1")
    run_cli("task", "cancel", "t2")
    out = run_cli("task", "claim", "--agent", "frontend", code=3)
    assert "no ready task to claim for frontend" in out.stderr


# -- 7. small ones ---------------------------------------------------------------------------
def test_edit_removing_what_is_not_there_warns(coord: Coordinator, run_cli: Any) -> None:
    run_cli("task", "create", "base", "--id", "base")
    run_cli("task", "create", "dash", "--id", "dash", "--label", "ui")
    out = run_cli("task", "edit", "dash", "--remove-dep", "foo", "--unlabel", "nope")
    assert "foo was not a dependency of task dash" in out.stderr
    assert "label nope was not on task dash" in out.stderr
    assert "edited task dash" in out.stdout
    out = run_cli("task", "edit", "dash", "--unrequire", "gpu")
    assert "capability gpu was not required by task dash" in out.stderr
    out = run_cli("task", "edit", "dash", "--add-dep", "base", "--unlabel", "ui")
    assert "warning" not in out.stderr
    out = run_cli("task", "edit", "dash", "--remove-dep", "base")
    assert out.stderr == ""


def test_complete_sets_percent_to_100(coord: Coordinator, run_cli: Any) -> None:
    coord.agents.register("devops")
    coord.tasks.create("ci", id="ci")
    coord.tasks.claim("ci", agent="devops")
    coord.tasks.progress("ci", agent="devops", current=1, total=3)
    coord.tasks.progress("ci", agent="devops", percent=50)
    task = coord.tasks.complete("ci", agent="devops")
    assert task.progress_percent() == 100
    assert (task.progress_current, task.progress_total) == (3, 3)
    rows = js(run_cli("--json", "task", "list", "--status", "complete"))
    assert rows[0]["percent"] == 100


def test_a_fail_by_the_holder_is_not_an_attempt(coord: Coordinator) -> None:
    """SPEC 4: attempts count expired leases; a holder's `task fail` fails it at once."""
    coord.agents.register("a")
    coord.tasks.create("x", id="x")
    coord.tasks.claim("x", agent="a")
    assert coord.tasks.fail("x", agent="a", error="e").attempts == 0
    assert coord.tasks.retry("x").status in (PENDING, ASSIGNED)
