"""Work per operation on the claim path: each record is parsed (decoded) at most once and
rendered and written once, in a fresh process as in a long-lived one (issue 13; SPEC section 8
budgets the time, these tests pin the work, which does not depend on the machine)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from agentcoord.api import Coordinator
from agentcoord.core.config import Config
from agentcoord.store.markdown import store as md_store
from agentcoord.store.markdown.codec import agent as agent_codec
from agentcoord.store.markdown.codec import task as task_codec
from agentcoord.store.markdown.directory import Directory
from agentcoord.store.markdown.store import MarkdownStore
from agentcoord.workspace import Workspace

from .conftest import FakeClock


class Tally:
    """Counts parses, renders and writes per file name."""

    def __init__(self) -> None:
        self.parsed: Counter[str] = Counter()
        self.rendered: Counter[str] = Counter()
        self.written: Counter[str] = Counter()


@pytest.fixture
def tally(monkeypatch: pytest.MonkeyPatch) -> Tally:
    t = Tally()

    def counting(fn: Any, what: str) -> Any:
        def wrapper(text: str, path: str) -> Any:
            t.parsed[path.rsplit("/", 1)[-1]] += 1
            return fn(text, path)

        return wrapper

    def rendering(fn: Any) -> Any:
        def wrapper(record: Any, now: float) -> str:
            key = "task" if hasattr(record, "epoch") else "agent"
            t.rendered[f"{key}-{getattr(record, 'id', getattr(record, 'name', '?'))}.md"] += 1
            out: str = fn(record, now)
            return out

        return wrapper

    real_write = Directory.write

    def write(self: Directory, name: str, data: str | bytes, *, durable: bool = True) -> None:
        assert isinstance(data, bytes), f"{name} written as text: encoded twice"
        t.written[name] += 1
        real_write(self, name, data, durable=durable)

    monkeypatch.setattr(md_store, "_parse_task", counting(md_store._parse_task, "task"))
    monkeypatch.setattr(md_store, "_parse_agent", counting(md_store._parse_agent, "agent"))
    monkeypatch.setattr(task_codec, "render_task", rendering(task_codec.render_task))
    monkeypatch.setattr(agent_codec, "render_agent", rendering(agent_codec.render_agent))
    monkeypatch.setattr(Directory, "write", write)
    return t


def _board(root: str, clock: FakeClock, tasks: int = 20) -> None:
    setup = Coordinator(MarkdownStore(root, durable=False, clock=clock), clock=clock)
    for i in range(tasks):
        setup.tasks.create(f"task {i}", id=f"t{i}", priority=i % 3)
    setup.agents.register("a1")
    setup.store.list_task_heads()  # as any listing does: the index on disk is current


def _fresh(root: str, clock: FakeClock) -> Coordinator:
    """A new process's view of the workspace (nothing cached in memory)."""
    return Coordinator(
        MarkdownStore(root, durable=False, clock=clock), config=Config(), clock=clock
    )


@pytest.mark.parametrize("by_id", [True, False], ids=["by-id", "next-ready"])
def test_a_claim_parses_renders_and_writes_each_record_once(
    workspace: Workspace, clock: FakeClock, tally: Tally, by_id: bool
) -> None:
    _board(workspace.root, clock)
    coord = _fresh(workspace.root, clock)
    tally.parsed.clear()
    tally.rendered.clear()
    tally.written.clear()
    task = coord.tasks.claim("t5" if by_id else None, agent="a1")
    mine = f"task-{task.id}.md"
    assert tally.parsed == Counter({mine: 1, "agent-a1.md": 1}), tally.parsed
    assert tally.rendered == Counter({mine: 1, "agent-a1.md": 1}), tally.rendered
    assert tally.written == Counter({mine: 1, "agent-a1.md": 1}), tally.written
    assert [e["id"] for e in coord.agents.get("a1").active] == [task.id]


def test_a_long_lived_process_parses_only_what_others_changed(
    workspace: Workspace, clock: FakeClock, tally: Tally
) -> None:
    _board(workspace.root, clock)
    coord = _fresh(workspace.root, clock)
    first = coord.tasks.claim(agent="a1")
    coord.tasks.complete(first.id, agent="a1")
    tally.parsed.clear()
    second = coord.tasks.claim(agent="a1")
    # The agent file was written by this process in the last operation: parsed again once (the
    # file keeps times to the second, so what was written is what a parse gives).
    assert tally.parsed == Counter({f"task-{second.id}.md": 1, "agent-a1.md": 1}), tally.parsed


def test_progress_by_the_holder_parses_its_task_once(
    workspace: Workspace, clock: FakeClock, tally: Tally
) -> None:
    _board(workspace.root, clock)
    coord = _fresh(workspace.root, clock)
    task = coord.tasks.claim("t1", agent="a1")
    clock.advance(10)  # past the view refresh: the agent file is refreshed too
    tally.parsed.clear()
    tally.written.clear()
    coord.tasks.progress(task.id, agent="a1", percent=50)
    assert tally.parsed[f"task-{task.id}.md"] == 1
    assert tally.written == Counter({f"task-{task.id}.md": 1, "agent-a1.md": 1})


@pytest.mark.redis
def test_redis_decodes_each_record_once_per_claim(
    redis_server: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    from agentcoord.store.redis.connection import Connection
    from agentcoord.store.redis.store import RedisStore

    ws = f"cost-{uuid.uuid4().hex[:8]}"
    setup = Coordinator(RedisStore(redis_server.url, workspace=ws, clock=clock), clock=clock)
    for i in range(5):
        setup.tasks.create(f"task {i}", id=f"t{i}")
    setup.agents.register("a1")
    setup.close()
    decoded: Counter[str] = Counter()
    real = Connection.decode

    def counting(key: str, raw: str, from_dict: Any) -> Any:
        decoded[key.rsplit(":", 1)[-1]] += 1
        return real(key, raw, from_dict)

    monkeypatch.setattr(Connection, "decode", staticmethod(counting))
    coord = Coordinator(RedisStore(redis_server.url, workspace=ws, clock=clock), clock=clock)
    try:
        task = coord.tasks.claim("t3", agent="a1")
        assert decoded == Counter({"t3": 1, "a1": 1}), decoded
        assert [e["id"] for e in coord.agents.get("a1").active] == [task.id]
    finally:
        coord.close()
