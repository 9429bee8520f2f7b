"""The store contract where a backend can hold what a caller cannot write through it: files and
keys made by hand (an agent or context file under another record's name, documents under bad
names or with bad data), found by the listings and ``coord doctor``; and the shared helpers of
``store/base.py`` that every backend calls (``json_value``, ``check_task``...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentcoord import errors
from agentcoord.api import Coordinator
from agentcoord.core.models import Agent, ContextDoc, Task
from agentcoord.errors import CorruptData, InvalidInput
from agentcoord.ops import doctor
from agentcoord.store.base import Store
from agentcoord.workspace import Workspace

from .conftest import MARKDOWN_ONLY, FakeClock

#: The backends whose data a person (or another program) can edit outside the store.
EDITABLE = pytest.mark.parametrize("backend", ["markdown", "redis"], indirect=True)


def _plant_document(store: Store, name: str, raw: str) -> str:
    """Write a document's stored form by hand; return where it lives (file or key)."""
    from agentcoord.store.markdown.store import MarkdownStore
    from agentcoord.store.redis.store import RedisStore

    if isinstance(store, MarkdownStore):
        path = Path(store.root) / f"{name}.md"
        body = f"# {name}\n\n## Data\n\n```json\n{raw}\n```\n"
        path.write_text(body)
        return str(path)
    assert isinstance(store, RedisStore)
    key = store.c.key("doc", name)
    store.c.client.set(key, raw)
    return key


# -- documents -----------------------------------------------------------------------------------
@EDITABLE
def test_documents_under_invalid_names_are_reported_never_listed(coord: Coordinator) -> None:
    """Every name ``list_documents`` returns reads back with ``get_document`` (``coord migrate``
    copies them); one no document can have is skipped, and reported when asked."""
    store = coord.store
    store.put_document("metrics-ok", {"a": 1})
    where = _plant_document(store, "metrics-a b", "{}")
    _plant_document(store, "metrics-", "{}")
    assert store.list_documents() == ["metrics-ok"]
    found: list[CorruptData] = []
    assert store.list_documents(errors=found) == ["metrics-ok"]
    assert where in {e.path for e in found}
    assert len(found) == 2
    for name in store.list_documents():
        assert store.get_document(name) == {"a": 1}


@EDITABLE
def test_doctor_reads_documents_and_reports_corrupt_ones(
    coord: Coordinator, clock: FakeClock
) -> None:
    store = coord.store
    store.put_document("metrics-ok", {"a": 1})
    broken = _plant_document(store, "metrics-broken", "{not json")
    badly_named = _plant_document(store, "metrics-a b", "{}")
    found = doctor.check(store, now=clock.now)
    corrupt = [v for v in found if v.kind == "corrupt"]
    assert {v.file for v in corrupt} == {broken, badly_named}
    assert len(corrupt) == 2  # each once, also where the storage's own checks read documents
    assert all(not v.repairable for v in corrupt)
    assert [v.kind for v in found if v.kind != "corrupt"] == []


def test_doctor_is_quiet_about_good_documents(coord: Coordinator, clock: FakeClock) -> None:
    coord.store.put_document("metrics-performance", {"overall": {}, "agents": {}})
    assert doctor.check(coord.store, now=clock.now) == []


# -- live files under another record's name ------------------------------------------------------
@MARKDOWN_ONLY
def test_an_agent_file_must_be_named_after_its_agent(
    coord: Coordinator, workspace: Workspace, clock: FakeClock
) -> None:
    """``agent-b.md`` holding ``# Agent: a`` (copied or renamed by hand) is corrupt data, as a
    task file under another id is: never read as agent a (whose next write would make a second
    file for it), never overwritten."""
    store = coord.store
    store.update_agent("a", lambda _a: Agent("a", notes="mine"))
    root = Path(workspace.root)
    copied = (root / "agent-a.md").read_text()
    (root / "agent-b.md").write_text(copied)
    with pytest.raises(errors.CorruptData, match="file name says agent 'b'"):
        store.get_agent("b")
    with pytest.raises(errors.CorruptData):
        store.update_agent("b", lambda a: Agent("b"))
    assert (root / "agent-b.md").read_text() == copied
    found: list[CorruptData] = []
    assert [a.name for a in store.list_agents(errors=found)] == ["a"]
    assert [Path(e.path).name for e in found] == ["agent-b.md"]
    corrupt = [v for v in doctor.check(store, now=clock.now) if v.kind == "corrupt"]
    assert [v.key for v in corrupt] == ["agent-b.md"]
    assert store.get_agent("a").notes == "mine"


@MARKDOWN_ONLY
def test_archived_agents_keep_their_stamped_names(coord: Coordinator) -> None:
    """Archive entries of a reused name carry a ``-stamp``: only live files must match."""
    store = coord.store
    for _ in range(2):
        store.update_agent("a", lambda _a: Agent("a"))
        assert store.archive_agent("a", lambda a: True)
    entries = store.list_archived_agents()
    assert len(entries) == 2 and {a.name for _, a in entries} == {"a"}


@MARKDOWN_ONLY
def test_a_context_file_must_be_named_after_its_project_and_domain(
    coord: Coordinator, workspace: Workspace
) -> None:
    store = coord.store
    store.put_context(ContextDoc("p", "d", data={"a": 1}))
    root = Path(workspace.root)
    (root / "context-q-e.md").write_text((root / "context-p-d.md").read_text())
    found: list[CorruptData] = []
    assert [(d.project, d.domain) for d in store.list_contexts(errors=found)] == [("p", "d")]
    assert [Path(e.path).name for e in found] == ["context-q-e.md"]
    with pytest.raises(errors.CorruptData, match="file name says context 'q-e'"):
        store.put_context(ContextDoc("q", "e"))


# -- the shared helpers --------------------------------------------------------------------------
def test_json_value_is_one_round_trip_through_json() -> None:
    class Num(int):
        pass

    value: dict[Any, Any] = {"t": (1, (2,)), 3: Num(4), "f": -0.0, "n": None}
    assert Store.json_value(value, "x") == {"t": [1, [2]], "3": 4, "f": -0.0, "n": None}
    assert type(Store.json_value(Num(4), "x")) is int
    for bad in (float("nan"), {1}, object(), {(1,): 1}, "\udcff"):
        with pytest.raises(InvalidInput):
            Store.json_value({"v": bad}, "x")
    with pytest.raises(InvalidInput, match="JSON object"):
        Store.json_object([1], "x")


def test_check_task_normalizes_in_place_and_refuses_what_no_backend_can_store() -> None:
    metrics: dict[str, Any] = {"a": (1,)}
    task = Task("t", "t", metrics=metrics, depends_on=["d"], dep_states={"d": "x", "z": "failed"})
    assert Store.check_task(task) is task
    assert (task.metrics, task.dep_states) == ({"a": [1]}, {})
    assert metrics == {"a": (1,)}  # the caller's own dict is left alone, and not kept
    for bad in (Agent("t"), None, Task("t", "t", created_by="a b"), Task("t", "t", metrics=[])):  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            Store.check_task(bad)
    with pytest.raises(InvalidInput, match="returned task 'u'"):
        Store.updated_task("t", Task("u", "u"))


def test_check_agent_and_check_context() -> None:
    agent = Agent("a", active=[{"id": "t", "metrics": {"p": (1,)}}], stats={"r": _Half(1)})
    assert Store.check_agent(agent).active == [{"id": "t", "metrics": {"p": [1]}}]
    assert type(agent.stats["r"]) is float
    with pytest.raises(InvalidInput):
        Store.check_agent(Agent("a", recent=[{"x": float("inf")}]))
    doc = ContextDoc("p", "d", data={"k": (1,)})
    assert Store.check_context(doc).data == {"k": [1]}
    with pytest.raises(InvalidInput):
        Store.check_context(ContextDoc("p", "d", data={"k": float("nan")}))
    with pytest.raises(InvalidInput):
        Store.check_context(Task("p", "d"))


class _Half(float):
    pass


def test_check_counter_and_check_key() -> None:
    assert Store.check_counter("task", 3) == 3
    assert Store.check_key("task", "t1") == "t1"
    with pytest.raises(InvalidInput, match="task id"):
        Store.check_key("task", "../t")
    with pytest.raises(InvalidInput, match="agent name"):
        Store.check_key("agent", "a b")
    for bad in (1.0, "1", False):
        with pytest.raises(InvalidInput):
            Store.check_counter("task", bad)
