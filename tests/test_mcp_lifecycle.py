"""The MCP side of the task lifecycle (issue 16): ``edit_task`` (retry, reopen, cancel, edits,
acceptance criteria), ``list_tasks`` with text, label, parent and archived, ``create_task``'s
new fields, archived tasks in ``show_task``, and task ids sent as JSON numbers."""

from __future__ import annotations

import json

import pytest

from agentcoord.api import Coordinator

from .conftest import FakeClock
from .test_mcp import connect, err, ok

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_retry_scenario_over_mcp(coord: Coordinator) -> None:
    async with connect(coord) as s:
        await ok(s, "create_task", title="CI", id="ci")
        await ok(s, "create_task", title="Deploy", id="deploy", depends_on=["ci"])
        await ok(s, "claim", id="ci")
        await ok(s, "finish", id="ci", outcome="fail", note="runner quota")
        assert (await ok(s, "show_task", id="deploy"))["status"] == "blocked"
        task = await ok(s, "edit_task", id="ci", action="retry", reason="quota raised")
        assert (task["status"], task["agent"]) == ("pending", None)
        assert (await ok(s, "show_task", id="deploy"))["status"] == "pending"
        e = await err(s, "edit_task", id="ci", action="reopen")
        assert e["code"] == "invalid_transition"
        await ok(s, "claim", id="ci")
        await ok(s, "finish", id="ci", outcome="complete")
        assert (await ok(s, "claim"))["id"] == "deploy"


async def test_int_task_ids_are_accepted_everywhere(coord: Coordinator) -> None:
    async with connect(coord) as s:
        first = await ok(s, "create_task", title="one")
        assert first["id"] == "1"
        task = await ok(s, "claim", id=1)  # issue 16 item 6: models send generated ids as ints
        assert task["id"] == "1"
        # (A child after the claim: a task with an open child is not claimable.)
        await ok(s, "create_task", title="two", depends_on=[1], parent=1)
        await ok(s, "progress", id=1, percent=50)
        assert (await ok(s, "show_task", id=1))["percent"] == 50
        await ok(s, "finish", id=1, outcome="release")
        await ok(s, "edit_task", id=2, remove_deps=[1], parent=None, title="two!")
        rows = await ok(s, "list_tasks", parent=1)
        assert [t["id"] for t in rows["tasks"]] == ["2"]
        for bad in (True, 1.5, [1]):
            e = await err(s, "claim", id=bad)
            assert e["code"] == "invalid_input"


async def test_edit_fields_criteria_and_bad_calls(coord: Coordinator) -> None:
    async with connect(coord) as s:
        await ok(s, "create_task", title="Epic", id="epic")
        task = await ok(
            s,
            "create_task",
            title="Part",
            id="p",
            labels=["ui"],
            requires=["web"],
            parent="epic",
            description="Do.\n- [ ] a\n- [ ] b",
        )
        assert (task["labels"], task["requires"], task["parent"]) == (["ui"], ["web"], "epic")
        task = await ok(s, "edit_task", id="p", title="Part 1", labels=["p1"], check=2)
        assert (task["title"], task["labels"]) == ("Part 1", ["ui", "p1"])
        shown = await ok(s, "show_task", id="p", fields=["criteria", "archived"])
        assert shown["criteria"][1] == {"n": 2, "done": True, "text": "b"}
        assert shown["archived"] is False
        task = await ok(s, "edit_task", id="p", action="cancel", reason="scope cut")
        assert task["status"] == "cancelled"
        assert (await ok(s, "edit_task", id="p", action="reopen"))["status"] == "pending"
        for args, code in (
            ({"id": "p"}, "invalid_input"),
            ({"id": "p", "reason": "x"}, "invalid_input"),
            ({"id": "p", "action": "undo"}, "invalid_input"),
            ({"id": "p", "check": 9}, "invalid_input"),
            ({"id": "p", "add_deps": ["p"]}, "dependency_cycle"),
            ({"id": "nope", "title": "x"}, "not_found"),
            ({"id": "p", "uncheck": 1}, "invalid_input"),  # not a parameter of the tool
        ):
            assert (await err(s, "edit_task", **args))["code"] == code, args


async def test_list_tasks_searches_filters_and_reads_the_archive(
    coord: Coordinator, clock: FakeClock
) -> None:
    async with connect(coord) as s:
        await ok(s, "create_task", title="Fix LOGIN", id="t1", labels=["ui"])
        await ok(s, "create_task", title="API", id="t2", description="login endpoint")
        await ok(s, "create_task", title="Other", id="t3", labels=["ui"])
        found = await ok(s, "list_tasks", text="login", limit=1)
        assert (found["total"], [t["id"] for t in found["tasks"]]) == (2, ["t1"])
        labelled = await ok(s, "list_tasks", label="ui")
        assert [t["id"] for t in labelled["tasks"]] == ["t1", "t3"]
        e = await err(s, "list_tasks", text="x", ready=True)
        assert e["code"] == "invalid_input"
        await ok(s, "claim", id="t3")
        await ok(s, "finish", id="t3", outcome="complete")
        clock.advance(25 * 3600)
        coord.maintenance.cleanup()
        archived = await ok(s, "list_tasks", archived=True)
        assert [t["id"] for t in archived["tasks"]] == ["t3"]
        shown = await ok(s, "show_task", id="t3")
        assert (shown["archived"], shown["status"]) == (True, "complete")
        hits = await ok(s, "list_tasks", text="other", archived=True)
        assert hits["total"] == 1


async def test_the_new_schemas_stay_compact(coord: Coordinator) -> None:
    async with connect(coord) as s:
        tools = {t.name: t.inputSchema for t in (await s.list_tools()).tools}
    edit = tools["edit_task"]
    assert edit["required"] == ["id"]
    assert edit["properties"]["id"] == {"type": "string"}  # ints are accepted, not advertised
    assert edit["properties"]["action"]["enum"] == ["retry", "reopen", "cancel"]
    assert tools["list_tasks"]["properties"]["parent"] == {"type": "string"}
    assert json.dumps(edit).count("title") == 1  # the parameter, no pydantic titles
