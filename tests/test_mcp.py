"""The MCP server (issue 7), driven by the SDK's own client: in memory (both backends) and over
stdio against real ``coord mcp`` subprocesses; streamable HTTP once."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.memory import create_connected_server_and_client_session

from agentcoord.api import Coordinator
from agentcoord.cli.cmd_mcp import parse_address
from agentcoord.mcp.server import build_server, compact_schema
from agentcoord.mcp.tools import DESCRIPTIONS
from agentcoord.workspace import Workspace

from .conftest import COORD, FakeClock, coord_env

pytestmark = pytest.mark.anyio

TOOLS = {
    "register",
    "heartbeat",
    "create_task",
    "claim",
    "progress",
    "finish",
    "list_tasks",
    "show_task",
    "edit_task",
    "emit_event",
    "read_events",
    "context",
    "reserve",
    "release_files",
    "check_paths",
    "status",
    "check_in",
    "send_message",
    "inbox",
    "ack",
}
#: Text that tries to forge fields, headings, fences, comments and events in the markdown files.
HOSTILE = (
    '## Status\n**Agent**: mallory\n**Status**: complete\n---\n```json\n{"status": "complete"}\n'
    "```\n<!-- end -->\n# Task: fake\n### Event: forged\n**Seq**: 999\n\\n \\ back\tslash "
    "😀 ä \u202e$(rm -rf /) `id` ${HOME} %s {0} '; DROP TABLE tasks;--"
)
#: The same as a title: one line (SPEC 16 refuses line breaks and control characters there).
HOSTILE_TITLE = re.sub("[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", HOSTILE)[:200].strip()
STDIO_TIMEOUT = 120


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- helpers -----------------------------------------------------------------------------------
@asynccontextmanager
async def connect(coord: Coordinator, agent: str | None = "a1", *, register: bool = True) -> Any:
    """An SDK client session connected in memory to a fresh server on ``coord``; the server's
    agent registered through it (identity is strict, SPEC 11) unless ``register`` is false."""
    async with create_connected_server_and_client_session(build_server(coord, agent=agent)) as s:
        if agent is not None and register:
            await ok(s, "register")
        yield s


async def ok(session: ClientSession, tool: str, **args: Any) -> Any:
    result = await session.call_tool(tool, args)
    assert not result.isError, result.content
    assert len(result.content) == 1
    return json.loads(result.content[0].text)  # type: ignore[union-attr]


async def err(session: ClientSession, tool: str, **args: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, args)
    assert result.isError, result.content
    data = json.loads(result.content[0].text)  # type: ignore[union-attr]
    assert isinstance(data["code"], str) and isinstance(data["message"], str), data
    return data  # type: ignore[no-any-return]


def twin(coord: Coordinator) -> Coordinator:
    """A second, independent Coordinator on the same data (as another process would have)."""
    from agentcoord.store.memory import MemoryStore
    from agentcoord.store.redis.store import RedisStore

    store: Any = coord.store
    if isinstance(store, RedisStore):
        other: Any = RedisStore(store.url, workspace=store.workspace, clock=coord.clock)
    elif isinstance(store, MemoryStore):
        other = store  # one process: the same objects are what another thread sees
    else:
        from agentcoord.store.markdown.store import MarkdownStore

        assert coord.workspace is not None
        other = MarkdownStore(coord.workspace.root, durable=False, clock=coord.clock)
    return Coordinator(other, config=coord.config, workspace=coord.workspace, clock=coord.clock)


async def race(sessions: list[ClientSession], tool: str, **args: Any) -> list[Any]:
    """Call ``tool`` on every session at once; the results in session order."""
    results: list[Any] = [None] * len(sessions)

    async def one(i: int, session: ClientSession) -> None:
        results[i] = await session.call_tool(tool, args)

    async with anyio.create_task_group() as tg:
        for i, s in enumerate(sessions):
            tg.start_soon(one, i, s)
    return results


def outcome(results: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    wins = [json.loads(r.content[0].text) for r in results if not r.isError]
    losses = [json.loads(r.content[0].text) for r in results if r.isError]
    return wins, losses


# -- tool list ---------------------------------------------------------------------------------
async def test_list_tools_small_and_typed(coord: Coordinator) -> None:
    async with connect(coord) as s:
        tools = (await s.list_tools()).tools
    assert {t.name for t in tools} == TOOLS == set(DESCRIPTIONS)
    for tool in tools:
        assert tool.description and len(tool.description) <= 120, tool.name
        assert tool.outputSchema is None
        schema = tool.inputSchema
        assert schema["type"] == "object"
        for prop in schema["properties"].values():  # compact: no pydantic titles, no nulls
            assert "title" not in prop and "anyOf" not in prop, (tool.name, prop)
        # --agent given: the acting agent is implied, so it is not advertised
        if tool.name != "list_tasks":
            assert "agent" not in schema["properties"], tool.name
    by_name = {t.name: t.inputSchema for t in tools}
    assert by_name["claim"]["properties"]["id"] == {"type": "string"}
    assert by_name["finish"]["properties"]["outcome"]["enum"] == ["complete", "fail", "release"]
    assert by_name["finish"]["required"] == ["id", "outcome"]
    assert by_name["list_tasks"]["properties"]["limit"] == {"default": 20, "type": "integer"}
    assert by_name["progress"]["properties"]["metrics"] == {"type": "object"}


async def test_without_default_agent_the_agent_is_an_argument(coord: Coordinator) -> None:
    async with connect(coord, agent=None) as s:
        tools = {t.name: t.inputSchema for t in (await s.list_tools()).tools}
        assert tools["claim"]["properties"]["agent"] == {"type": "string"}
        await ok(s, "create_task", title="x", id="t1")
        e = await err(s, "claim")
        assert e["code"] == "invalid_input" and "--agent" in e["message"]
        assert (await err(s, "claim", agent="b7"))["code"] == "not_found"  # never registered
        await ok(s, "register", agent="b7")
        task = await ok(s, "claim", agent="b7")
        assert (task["id"], task["agent"]) == ("t1", "b7")


def test_compact_schema_keeps_what_validation_needs() -> None:
    raw = {
        "properties": {
            "id": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None, "title": "Id"},
            "n": {"default": 20, "title": "N", "type": "integer"},
            "tags": {
                "anyOf": [{"items": {"type": "string"}, "type": "array"}, {"type": "null"}],
                "default": None,
                "title": "Tags",
            },
            "v": {"anyOf": [{"type": "string"}, {"type": "integer"}], "title": "V"},
            "agent": {"type": "string", "title": "Agent"},
        },
        "required": ["v", "agent"],
        "title": "fnArguments",
        "type": "object",
    }
    assert compact_schema(raw, drop=("agent",)) == {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "n": {"default": 20, "type": "integer"},
            "tags": {"items": {"type": "string"}, "type": "array"},
            "v": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "required": ["v"],
    }


# -- the full cycle ----------------------------------------------------------------------------
async def test_claim_progress_complete_cycle(coord: Coordinator, clock: FakeClock) -> None:
    async with connect(coord) as s:
        me = await ok(s, "register", capabilities=["python", "training"], note="GPU box")
        assert (me["name"], me["capabilities"]) == ("a1", ["python", "training"])
        created = await ok(s, "create_task", title="Train model", id="t1", total=100, priority=5)
        assert (created["id"], created["status"], created["epoch"]) == ("t1", "pending", 0)
        task = await ok(s, "claim")
        assert (task["id"], task["status"], task["agent"], task["epoch"]) == (
            "t1",
            "in_progress",
            "a1",
            1,
        )
        assert task["lease_left"] == 600.0
        clock.advance(100)
        task = await ok(s, "progress", id="t1", current=35, metrics={"loss": 0.42, "note": "w"})
        assert task["percent"] == 35.0 and task["lease_left"] == 600.0  # renewed
        await ok(s, "progress", id="t1", message="halfway there")
        beat = await ok(s, "heartbeat", status="busy", workload=80)
        assert beat["renewed"] == ["t1"] and beat["status"] == "busy"
        done = await ok(s, "finish", id="t1", outcome="complete", note="saved final.pt")
        assert (done["status"], done["percent"]) == ("complete", 100.0)
        shown = await ok(s, "show_task", id="t1")
        assert shown["result"] == "saved final.pt"
        assert shown["metrics"]["loss"] == 0.42
        assert "halfway there" in [line["message"] for line in shown["logs"]]
        listed = await ok(s, "list_tasks", status="complete", fields=["id", "status"])
        assert listed == {"tasks": [{"id": "t1", "status": "complete"}], "total": 1}
        status = await ok(s, "status")
        assert status["tasks"] == {"complete": 1} and status["total_tasks"] == 1
    assert coord.tasks.get("t1").status == "complete"  # the store agrees


async def test_fail_and_release_and_claim_by_id(coord: Coordinator) -> None:
    async with connect(coord) as s:
        for i in (1, 2, 3):
            await ok(s, "create_task", title=f"job {i}", id=f"j{i}")
        assert (await ok(s, "claim", id="j3"))["id"] == "j3"
        released = await ok(s, "finish", id="j3", outcome="release", note="not mine")
        assert (released["status"], released["agent"]) == ("pending", None)
        await ok(s, "claim", id="j2")
        e = await err(s, "finish", id="j2", outcome="fail")
        assert e["code"] == "invalid_input"  # fail needs the error text
        failed = await ok(s, "finish", id="j2", outcome="fail", note="CUDA OOM")
        assert (failed["status"], failed["error"]) == ("failed", "CUDA OOM")


async def test_list_is_bounded(coord: Coordinator) -> None:
    for i in range(25):
        coord.tasks.create(f"task {i}", id=f"t{i}")
    async with connect(coord) as s:
        page = await ok(s, "list_tasks")
        assert len(page["tasks"]) == 20 and page["total"] == 25
        assert set(page["tasks"][0]) >= {"id", "title", "status", "agent", "epoch"}
        assert len((await ok(s, "list_tasks", limit=3))["tasks"]) == 3
        assert (await err(s, "list_tasks", limit=0))["code"] == "invalid_input"
        assert (await err(s, "list_tasks", limit=1000))["code"] == "invalid_input"
        assert (await err(s, "list_tasks", status="sleeping"))["code"] == "invalid_input"


# -- races -------------------------------------------------------------------------------------
async def test_two_clients_race_for_one_task(coord: Coordinator) -> None:
    other = twin(coord)
    try:
        coord.tasks.create("the only task", id="t1")
        async with connect(coord, "a1") as s1, connect(other, "a2") as s2:
            wins, losses = outcome(await race([s1, s2], "claim", id="t1"))
            assert len(wins) == 1 and len(losses) == 1
            assert losses[0]["code"] == "conflict"
            assert losses[0]["holder"] == wins[0]["agent"]
            # and for "the next task": one gets it, the other is told there is nothing left
            coord.tasks.create("the next task", id="t2")
            wins, losses = outcome(await race([s1, s2], "claim"))
            assert [w["id"] for w in wins] == ["t2"]
            assert losses[0]["code"] == "nothing_to_claim"
    finally:
        other.close()
    assert coord.tasks.get("t1").epoch == 1  # granted exactly once


# -- bad input ---------------------------------------------------------------------------------
async def test_wrong_types_are_tool_errors(coord: Coordinator) -> None:
    async with connect(coord, register=False) as s:
        await ok(s, "create_task", title="x", id="t1")
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("show_task", {"id": 1.5}, "id"),  # a whole number is an id (issue 16), 1.5 is not
            ("show_task", {}, "id"),
            ("create_task", {"title": "y", "priority": "high"}, "priority"),
            ("create_task", {"title": ["a"]}, "title"),
            ("create_task", {"title": "y", "depends_on": "t1,t2,{"}, "depends_on"),
            ("list_tasks", {"limit": "many"}, "limit"),
            ("list_tasks", {"fields": 7}, "fields"),
            ("progress", {"id": "t1", "metrics": [1, 2]}, "metrics"),
            ("progress", {"id": "t1", "current": "lots"}, "current"),
            ("finish", {"id": "t1", "outcome": "maybe"}, "outcome"),
            ("heartbeat", {"status": "asleep"}, "status"),
            ("emit_event", {"channel": "c", "type": "t", "fields": "k=v"}, "fields"),
            ("context", {"project": "p", "domain": "d", "data": [1]}, "data"),
            ("read_events", {"channel": "c", "peek": "perhaps"}, "peek"),
        ]
        for tool, args, field in cases:
            e = await err(s, tool, **args)
            assert e["code"] == "invalid_input", (tool, args, e)
            assert field in e["message"], (tool, args, e)
        # values of the right type that the API refuses keep the API's code
        assert (await err(s, "create_task", title="  "))["code"] == "invalid_input"
        assert (await err(s, "create_task", title="y", total=-1))["code"] == "invalid_input"
        assert (await err(s, "heartbeat", workload=50))["code"] == "not_found"  # unregistered
        await ok(s, "register")
        assert (await err(s, "heartbeat", workload=500))["code"] == "invalid_input"
        await ok(s, "create_task", title="held", id="t2", total=10)
        await ok(s, "claim", id="t2")
        for bad in ({"current": 11}, {"percent": 101}, {"metrics": {"m": {"nested": 1}}}, {}):
            e = await err(s, "progress", id="t2", **bad)
            assert e["code"] == "invalid_input", (bad, e)
        # a misspelt argument is refused, not ignored: this must not claim the next task
        e = await err(s, "claim", task_id="t1")
        assert e["code"] == "invalid_input" and "task_id" in e["message"]
        assert coord.tasks.get("t1").status == "pending"
        e = await err(s, "no_such_tool")
        assert e["code"] == "invalid_input"
        assert len((await s.list_tools()).tools) == len(TOOLS)  # still serving


async def test_unknown_and_unsafe_ids(coord: Coordinator) -> None:
    async with connect(coord) as s:
        for tool, args in [
            ("show_task", {"id": "nope"}),
            ("claim", {"id": "nope"}),
            ("progress", {"id": "nope", "percent": 5}),
            ("finish", {"id": "nope", "outcome": "complete"}),
            ("context", {"project": "p", "domain": "none"}),
            ("create_task", {"title": "x", "depends_on": ["ghost"]}),
        ]:
            e = await err(s, tool, **args)
            assert e["code"] == "not_found", (tool, e)
        for tool, args in [
            ("show_task", {"id": "../../etc/passwd"}),
            ("claim", {"id": "a/b"}),
            ("create_task", {"title": "x", "id": ".hidden"}),
            ("emit_event", {"channel": "../x", "type": "t"}),
            ("read_events", {"channel": "c\n", "peek": True}),
            ("context", {"project": "p", "domain": "a b"}),
            ("list_tasks", {"agent": "x" * 100}),
        ]:
            e = await err(s, tool, **args)
            assert e["code"] == "invalid_name", (tool, e)
        assert await ok(s, "list_tasks") == {"tasks": [], "total": 0}


async def test_holder_rules_keep_their_codes(coord: Coordinator, clock: FakeClock) -> None:
    other = twin(coord)
    try:
        async with connect(coord, "a1") as s1, connect(other, "a2") as s2:
            await ok(s1, "create_task", title="x", id="t1")
            await ok(s1, "claim", id="t1")
            assert (await err(s2, "progress", id="t1", percent=50))["code"] == "lease_lost"
            assert (await err(s2, "finish", id="t1", outcome="complete"))["code"] == "lease_lost"
            await ok(s1, "finish", id="t1", outcome="complete")
            assert (await err(s2, "claim", id="t1"))["code"] == "invalid_transition"
            await ok(s1, "create_task", title="y", id="t2")
            await ok(s1, "claim", id="t2", lease_seconds=10)
            clock.advance(11)
            assert (await err(s1, "progress", id="t2", message="late"))["code"] == "lease_lost"
            assert (await ok(s2, "claim", id="t2"))["agent"] == "a2"  # reclaimed
    finally:
        other.close()


async def test_unexpected_exceptions_become_tool_errors(
    coord: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    async with connect(coord) as s:
        monkeypatch.setattr(coord.tasks, "get", boom)
        e = await err(s, "show_task", id="t1")
        assert e == {"code": "error", "message": "internal error: RuntimeError: disk on fire"}
        monkeypatch.undo()
        await ok(s, "create_task", title="x", id="t1")  # still serving
        assert (await ok(s, "show_task", id="t1"))["title"] == "x"


async def test_hostile_text_round_trips(coord: Coordinator) -> None:
    async with connect(coord) as s:
        await ok(s, "create_task", title=HOSTILE_TITLE, id="t1")
        await ok(s, "claim", id="t1")
        await ok(s, "progress", id="t1", message=HOSTILE, metrics={"note": HOSTILE})
        await ok(s, "finish", id="t1", outcome="complete", note=HOSTILE)
        shown = await ok(s, "show_task", id="t1")
        assert shown["title"] == HOSTILE_TITLE
        assert shown["result"] == HOSTILE
        assert shown["metrics"]["note"] == HOSTILE
        assert HOSTILE in [line["message"] for line in shown["logs"]]
        sent = await ok(s, "emit_event", channel="c", type="note", fields={"text": HOSTILE})
        got = await ok(s, "read_events", channel="c")
        assert got["events"][0]["fields"]["text"] == HOSTILE == sent["fields"]["text"]
        await ok(s, "context", project="p", domain="d", data={"k": HOSTILE}, text=HOSTILE)
        doc = await ok(s, "context", project="p", domain="d")
        assert (doc["data"], doc["text"]) == ({"k": HOSTILE}, HOSTILE)
        assert (await ok(s, "list_tasks"))["total"] == 1  # nothing forged a second task


# -- events, context, status, check-in ---------------------------------------------------------
async def test_events_with_a_cursor(coord: Coordinator) -> None:
    other = twin(coord)
    try:
        async with connect(coord, "a1") as s1, connect(other, "a2") as s2:
            for i in range(3):
                event = await ok(s1, "emit_event", channel="build", type="step", fields={"i": i})
                assert event["seq"] == i + 1
            assert event["fields"] == {"Agent": "a1", "i": "2"}
            first = await ok(s2, "read_events", channel="build", limit=2)
            assert [e["seq"] for e in first["events"]] == [1, 2]
            rest = await ok(s2, "read_events", channel="build")
            assert [e["seq"] for e in rest["events"]] == [3]
            assert await ok(s2, "read_events", channel="build") == {"events": []}
            # another agent has its own cursor; peek moves none
            assert len((await ok(s1, "read_events", channel="build", peek=True))["events"]) == 3
            assert len((await ok(s1, "read_events", channel="build"))["events"]) == 3
            assert (await ok(s1, "read_events", channel="build", peek=True, limit=1))["events"][0][
                "seq"
            ] == 3
    finally:
        other.close()


async def test_messages_send_inbox_ack(coord: Coordinator) -> None:
    other = twin(coord)
    try:
        async with connect(coord, "a1") as s1, connect(other, "a2") as s2:
            sent = await ok(
                s1, "send_message", to="a2", subject="review", body="x" * 600, ack_required=True
            )
            assert (sent["id"], sent["from"], sent["to"]) == (1, "a1", ["a2"])
            assert "body" not in sent
            box = await ok(s2, "inbox")
            assert (box["unread"], box["ack_required"]) == (1, 1)
            [row] = box["messages"]
            assert row["truncated"] == 100 and row["read"] is False
            full = await ok(s2, "inbox", id=1)  # one in full, marked read
            assert full["body"] == "x" * 600 and full["read"] is True
            assert (await ok(s2, "inbox"))["messages"] == []  # unread only by default
            assert len((await ok(s2, "inbox", unread=False))["messages"]) == 1
            acked = await ok(s2, "ack", id=1)
            assert acked["acked"] is True and "body" not in acked
            assert (await ok(s2, "inbox", unread=False))["ack_required"] == 0
            assert (await err(s1, "ack", id=1))["code"] == "conflict"  # not addressed to a1
            assert (await err(s1, "send_message", to=["nobody"], subject="x"))[
                "code"
            ] == "not_found"
            everyone = await ok(s2, "send_message", to="@all", subject="hi", thread="1")
            assert everyone["to"] == ["a1"] and everyone["thread"] == "1"
    finally:
        other.close()


async def test_context_put_get(coord: Coordinator) -> None:
    async with connect(coord) as s:
        row = await ok(s, "context", project="ml", domain="data", data={"rows": 10}, title="DS")
        assert (row["project"], row["domain"], row["keys"]) == ("ml", "data", 1)
        assert "data" not in row  # a put does not echo the document back
        doc = await ok(s, "context", project="ml", domain="data")
        assert (doc["data"], doc["title"], doc["created_by"]) == ({"rows": 10}, "DS", "a1")
        e = await err(s, "context", project="ml", domain="data", title="only a title")
        assert e["code"] == "invalid_input"


async def test_status_summary(coord: Coordinator) -> None:
    async with connect(coord) as s:
        await ok(s, "register")
        await ok(s, "create_task", title="x")
        data = await ok(s, "status", limit=1)
        assert data["tasks"] == {"pending": 1}
        assert [a["agent"] for a in data["agents"]] == ["a1"]
        assert {"time", "attention", "alerts", "total_tasks"} <= data.keys()


async def test_check_in(coord: Coordinator) -> None:
    from agentcoord.timer.files import TimerFiles, format_checkpoint

    assert coord.workspace is not None
    files = TimerFiles(coord.workspace.timer_dir)
    async with connect(coord) as s:
        assert (await err(s, "check_in"))["code"] == "not_found"  # no timer yet
        Path(files.checkpoint).write_text(format_checkpoint(1, time.time()), encoding="utf-8")
        fired = await ok(s, "check_in")
        assert fired["new"] is True and fired["checkpoint"] == 1
        assert await ok(s, "check_in") == {
            "new": False,
            "name": "default",
            "checkpoint": 1,
            "previous": 1,
        }
    # one last-check per agent: other agents still get the checkpoint (any valid agent name)
    for name in ("b.2", "x" * 64):
        async with connect(coord, name) as s2:
            assert (await ok(s2, "check_in"))["new"] is True


# -- over stdio, against real `coord mcp` processes --------------------------------------------
def server_params(root: str, *extra: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "agentcoord", "--dir", root, "mcp", *extra],
        env=coord_env(root),
    )


@asynccontextmanager
async def stdio_session(root: str, errlog: Any, *extra: str) -> Any:
    async with (
        stdio_client(server_params(root, *extra), errlog=errlog) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def test_stdio_cycle_and_bad_input(workspace: Workspace, tmp_path: Path) -> None:
    with (
        open(tmp_path / "stderr.txt", "w", encoding="utf-8") as errlog,
        anyio.fail_after(STDIO_TIMEOUT),
    ):
        async with stdio_session(workspace.root, errlog, "--agent", "a1") as s:
            assert {t.name for t in (await s.list_tools()).tools} == TOOLS
            await ok(s, "register")
            await ok(s, "create_task", title=HOSTILE_TITLE, id="t1", total=10)
            task = await ok(s, "claim")
            assert (task["id"], task["agent"], task["status"]) == ("t1", "a1", "in_progress")
            assert (await ok(s, "progress", id="t1", current=4, message=HOSTILE))["percent"] == 40
            done = await ok(s, "finish", id="t1", outcome="complete", note=HOSTILE)
            assert done["status"] == "complete"
            shown = await ok(s, "show_task", id="t1")
            assert (shown["title"], shown["result"]) == (HOSTILE_TITLE, HOSTILE)
            assert (await err(s, "show_task", id=4.2))["code"] == "invalid_input"
            assert (await err(s, "show_task", id=42))["code"] == "not_found"  # task "42"
            assert (await err(s, "show_task", id="ghost"))["code"] == "not_found"
            assert (await err(s, "claim", id="../x"))["code"] == "invalid_name"
            assert (await err(s, "finish", id="t1", outcome=None))["code"] == "invalid_input"
            assert (await ok(s, "list_tasks", fields=["id"]))["tasks"] == [{"id": "t1"}]
    # the workspace files are what the CLI reads
    out = subprocess.run(
        [*COORD, "--json", "task", "show", "t1"],
        env=coord_env(workspace.root),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["result"] == HOSTILE


async def test_stdio_two_servers_race_for_one_task(workspace: Workspace, tmp_path: Path) -> None:
    with Coordinator.open(workspace.root) as coord:
        coord.tasks.create("contested", id="t1")
    with (
        open(tmp_path / "stderr.txt", "w", encoding="utf-8") as errlog,
        anyio.fail_after(STDIO_TIMEOUT),
    ):
        async with (
            stdio_session(workspace.root, errlog, "--agent", "a1") as s1,
            stdio_session(workspace.root, errlog, "--agent", "a2") as s2,
        ):
            await ok(s1, "register")
            await ok(s2, "register")
            wins, losses = outcome(await race([s1, s2], "claim", id="t1"))
            assert len(wins) == 1 and len(losses) == 1
            assert losses[0]["code"] == "conflict" and losses[0]["holder"] == wins[0]["agent"]
            # both keep serving
            assert (await ok(s1, "show_task", id="t1", fields=["epoch"])) == {"epoch": 1}
            assert (await ok(s2, "list_tasks"))["total"] == 1


def _send(proc: subprocess.Popen[bytes], line: bytes) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line)
    proc.stdin.flush()


def _rpc(proc: subprocess.Popen[bytes], message: dict[str, Any]) -> Any:
    """Send one message; for a request, read stdout up to its response and return it. Every
    line read must be a JSON-RPC message."""
    _send(proc, (json.dumps(message) + "\n").encode())
    if "id" not in message:
        return None
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        assert line, "server closed stdout"
        msg = json.loads(line)
        assert msg["jsonrpc"] == "2.0", line
        if msg.get("id") == message["id"]:
            return msg["result"]


def test_stdout_carries_only_protocol_messages(workspace: Workspace) -> None:
    proc = subprocess.Popen(
        [*COORD, "--dir", workspace.root, "mcp", "--agent", "a1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=coord_env(workspace.root),
    )
    try:
        init = {"protocolVersion": "2025-06-18", "capabilities": {}}
        init["clientInfo"] = {"name": "raw", "version": "0"}
        assert _rpc(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
        _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _send(proc, b"this is not json\n")  # a broken client line: logged, not fatal
        calls = [
            ("create_task", {"title": HOSTILE_TITLE, "id": "t1"}, False),
            ("register", {}, False),
            ("claim", {"id": "t1"}, False),
            ("show_task", {"id": 5}, True),
            ("finish", {"id": "t1", "outcome": "complete"}, False),
        ]
        for i, (tool, args, is_error) in enumerate(calls, start=2):
            params = {"name": tool, "arguments": args}
            result = _rpc(
                proc, {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}
            )
            assert result["isError"] is is_error, result
        listed = _rpc(proc, {"jsonrpc": "2.0", "id": 99, "method": "tools/list"})
        assert len(listed["tools"]) == len(TOOLS)
    finally:
        try:
            rest, _ = proc.communicate(timeout=30)  # closes stdin: the server must exit
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for line in rest.splitlines():  # whatever came after: protocol messages too
        assert json.loads(line)["jsonrpc"] == "2.0"
    assert proc.returncode == 0


def test_stray_writes_go_to_stderr() -> None:
    """Prints and fd-1 writes by anything in the server process land on stderr."""
    code = (
        "import os, sys\n"
        "from agentcoord.mcp.server import _protect_stdout\n"
        "fd = _protect_stdout()\n"
        "print('stray print'); sys.stdout.flush()\n"
        "os.write(1, b'raw fd write\\n')\n"
        "os.system('echo child process')\n"
        "os.write(fd, b'protocol\\n')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "protocol\n"
    assert "stray print" in out.stderr and "raw fd write" in out.stderr
    assert "child process" in out.stderr


# -- streamable HTTP ---------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_streamable_http(workspace: Workspace) -> None:
    from mcp.client.streamable_http import streamable_http_client

    port = _free_port()
    proc = subprocess.Popen(
        [*COORD, "--dir", workspace.root, "mcp", "--http", str(port), "--agent", "a1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=coord_env(workspace.root),
    )
    try:
        with anyio.fail_after(STDIO_TIMEOUT):
            while True:  # wait until it listens
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    await anyio.sleep(0.05)
            url = f"http://127.0.0.1:{port}/mcp"
            # the bearer token the server made (SPEC 16; tests/test_security_mcp.py attacks it)
            token = (Path(workspace.timer_dir) / ".coordination-token").read_text().strip()
            async with (
                httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
                streamable_http_client(url, http_client=http) as (read, write, _),
                ClientSession(read, write) as s,
            ):
                await s.initialize()
                assert {t.name for t in (await s.list_tools()).tools} == TOOLS
                await ok(s, "create_task", title="over http", id="h1")
                await ok(s, "register")
                assert (await ok(s, "claim"))["agent"] == "a1"
                assert (await err(s, "claim", id="h2"))["code"] == "not_found"
    finally:
        proc.terminate()  # by pid
        try:
            stdout, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    assert stdout == b""  # logs (uvicorn's too) go to stderr


# -- the command -------------------------------------------------------------------------------
def test_parse_address() -> None:
    assert parse_address("8765") == ("127.0.0.1", 8765)
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    assert parse_address(":9000") == ("127.0.0.1", 9000)


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (["mcp", "--agent", "../evil"], 2, "invalid_name"),
        (["mcp", "--http", "localhost:http"], 2, "invalid_input"),
        (["mcp", "--http", "99999"], 2, "invalid_input"),
        (["mcp", "--bogus"], 2, "invalid_input"),
    ],
)
def test_cli_bad_input(workspace: Workspace, args: list[str], code: int, error: str) -> None:
    out = subprocess.run(
        [*COORD, "--json", *args],
        check=False,
        env=coord_env(workspace.root),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert out.returncode == code, out.stderr
    assert out.stdout == ""
    assert json.loads(out.stderr.strip().splitlines()[-1])["error"]["code"] == error


def test_cli_missing_workspace(tmp_path: Path) -> None:
    env = coord_env(str(tmp_path / "nowhere"))
    out = subprocess.run(
        [*COORD, "--json", "--dir", str(tmp_path / "nowhere"), "mcp"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert out.returncode == 3 and out.stdout == ""
    assert json.loads(out.stderr)["error"]["code"] == "not_found"


def test_other_commands_never_import_the_sdk(workspace: Workspace) -> None:
    code = (
        "import sys\n"
        "from agentcoord.cli.main import main\n"
        "main(['task', 'list'])\n"
        "main(['mcp', '--help'])\n"
        "sys.stderr.write(repr(sorted(m for m in sys.modules if m.split('.')[0] == 'mcp')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=coord_env(workspace.root),
        capture_output=True,
        text=True,
        check=True,
        cwd=os.getcwd(),
    )
    assert out.stderr.strip().endswith("[]")


# -- file reservations (SPEC section 13) -------------------------------------------------------
async def test_reservation_tools(
    coord: Coordinator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no git here: paths are relative to the workspace's project
    coord.agents.register("b2")
    async with connect(coord) as s:
        row = await ok(s, "reserve", paths=["src/**"], reason="API", ttl=60)
        assert (row["agent"], row["patterns"], row["mode"]) == ("a1", ["src/**"], "exclusive")
        assert (await ok(s, "check_paths", paths=["src/a.py"]))["ok"] is True  # its own
        e = await err(s, "reserve", paths=["../x"])
        assert e["code"] == "invalid_input"
    async with connect(coord, agent="b2", register=False) as s:
        e = await err(s, "reserve", paths=["src/api/x.py"])
        assert e["code"] == "conflict" and "a1" in e["message"] and "API" in e["message"]
        found = await ok(s, "check_paths", paths=["src/api/x.py", "docs/a.md"])
        assert found["ok"] is False
        assert [(c["path"], c["holder"]) for c in found["conflicts"]] == [("src/api/x.py", "a1")]
    async with connect(coord, register=False) as s:
        gone = await ok(s, "release_files", all=True)
        assert [r["patterns"] for r in gone["released"]] == [["src/**"]]
        assert (await ok(s, "release_files", paths=["src/**"]))["released"] == []
