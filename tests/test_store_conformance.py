"""The Store interface, method by method, on every backend (memory, markdown, Redis): the shared
rules of ``store/base.py`` hold alike everywhere. Behavioural tests through the Coordinator are
the rest of the conformance suite."""

from __future__ import annotations

import time

import pytest

from agentcoord.api import Coordinator
from agentcoord.core.models import Agent, ContextDoc, Event, Task
from agentcoord.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from agentcoord.store.base import Change, Store

from .conftest import FakeClock


@pytest.fixture
def store(coord: Coordinator) -> Store:
    return coord.store


def _stamp(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))


# -- archives ----------------------------------------------------------------------------------
def test_archives_in_the_same_second_never_overwrite_each_other(
    store: Store, clock: FakeClock
) -> None:
    """An id reused after archiving, archived again in the same second, twice: three entries."""
    for title in ("first", "second", "third"):
        store.create_task(Task("t1", title))
        assert store.archive_task("t1", lambda t: True)
    entries = store.list_archived_tasks()
    stamp = _stamp(clock.now)
    assert [name for name, _ in entries] == store.record_order(
        ["t1", f"t1-{stamp}", f"t1-{stamp}-1"]
    )
    assert sorted(t.title for _, t in entries) == ["first", "second", "third"]
    assert store.list_tasks() == []
    with pytest.raises(NotFound):
        store.get_task("t1")


def test_agents_archive_alike(store: Store, clock: FakeClock) -> None:
    for _ in range(2):
        store.update_agent("bob", lambda _a: Agent("bob"))
        assert store.archive_agent("bob", lambda a: True)
    names = ["bob", f"bob-{_stamp(clock.now)}"]
    assert [n for n, _ in store.list_archived_agents()] == store.record_order(names)
    assert store.list_agents() == []


def test_archive_check_decides_under_the_record_and_missing_records_are_false(
    store: Store,
) -> None:
    store.create_task(Task("t1", "keep me", status="pending"))
    assert not store.archive_task("t1", lambda t: t.status == "complete")
    assert store.get_task("t1").title == "keep me"
    assert not store.archive_task("nope", lambda t: True)
    assert not store.archive_agent("nobody", lambda a: True)


def test_import_archived_round_trips_and_refuses_bad_kinds_and_names(store: Store) -> None:
    task = Task("7", "old", status="complete", epoch=2)
    store.import_archived("task", "7-20250101T000000", task)
    store.import_archived("agent", "ann", Agent("ann", status="retired"))
    assert store.list_archived_tasks() == [("7-20250101T000000", task)]
    assert [(n, a.status) for n, a in store.list_archived_agents()] == [("ann", "retired")]
    for kind, name in (("context", "x"), ("task", "../x"), ("task", ""), ("agent", "a b")):
        with pytest.raises(InvalidInput):
            store.import_archived(kind, name, task)


# -- tasks ---------------------------------------------------------------------------------------
def test_lists_are_in_record_order_and_heads_match_tasks(store: Store) -> None:
    for task_id in ("b", "a-b", "a", "10", "9"):
        store.create_task(Task(task_id, task_id))
    assert [t.id for t in store.list_tasks()] == store.record_order(["b", "a-b", "a", "10", "9"])
    assert sorted(h.id for h in store.list_task_heads()) == ["10", "9", "a", "a-b", "b"]
    head = store.get_task_head("a")
    assert (head.id, head.status, head.epoch) == ("a", "pending", 0)
    with pytest.raises(NotFound):
        store.get_task_head("zzz")


def test_get_task_head_follows_updates(store: Store) -> None:
    store.create_task(Task("t", "t"))

    def grant(task: Task) -> Task:
        task.status, task.agent, task.epoch = "in_progress", "a1", task.epoch + 1
        task.lease_expires = 2_000_000_000.0
        return task

    store.update_task("t", grant)
    head = store.get_task_head("t")
    assert (head.status, head.agent, head.epoch) == ("in_progress", "a1", 1)


def test_an_update_must_return_the_same_record(store: Store) -> None:
    store.create_task(Task("t", "t"))
    with pytest.raises(InvalidInput):
        store.update_task("t", lambda task: Task("other", "x"))
    with pytest.raises(InvalidInput):
        store.update_agent("a", lambda agent: Agent("b"))
    assert [t.id for t in store.list_tasks()] == ["t"]
    assert store.list_agents() == []


def test_create_refuses_a_taken_id_and_update_a_missing_one(store: Store) -> None:
    store.create_task(Task("t", "one"))
    with pytest.raises(AlreadyExists):
        store.create_task(Task("t", "two"))
    with pytest.raises(NotFound):
        store.update_task("missing", lambda t: t)
    assert store.get_task("t").title == "one"


def test_records_handed_out_are_copies(store: Store) -> None:
    store.create_task(Task("t", "title", metrics={"loss": [1, 2]}))
    got = store.get_task("t")
    got.title = "changed"
    got.metrics["loss"].append(3)
    assert store.get_task("t").title == "title"
    assert store.get_task("t").metrics == {"loss": [1, 2]}


def test_counters_never_go_back(store: Store) -> None:
    assert store.counters() == {}
    assert [store.next_id("task") for _ in range(3)] == [1, 2, 3]
    store.set_counter("task", 2)
    store.set_counter("other", 5)
    assert store.counters() == {"other": 5, "task": 3}
    assert store.next_id("other") == 6
    with pytest.raises(InvalidInput):
        store.set_counter("bad kind", 1)


# -- contexts and documents ---------------------------------------------------------------------
def test_context_names_that_would_collide_are_refused(store: Store) -> None:
    store.put_context(ContextDoc("proj", "api-x", data={"a": 1}))
    with pytest.raises(Conflict):
        store.put_context(ContextDoc("proj-api", "x"))
    assert store.get_context("proj", "api-x").data == {"a": 1}
    with pytest.raises(NotFound):
        store.get_context("proj-api", "x")
    store.put_context(ContextDoc("proj", "api-x", data={"a": 2}))  # the same pair: a replace
    assert [d.data for d in store.list_contexts()] == [{"a": 2}]


def test_documents_hold_json_objects_under_metrics_names(store: Store) -> None:
    assert store.get_document("metrics-performance") is None
    data = {"overall": {"finished": 1, "success_rate": 100.0}, "agents": {}, "window": 3600}
    store.put_document("metrics-performance", data)
    assert store.get_document("metrics-performance") == data
    assert store.list_documents() == ["metrics-performance"]
    for name, bad in (("metrics-x", "text"), ("report", {}), ("metrics-", {}), ("../x", {})):
        with pytest.raises(InvalidInput):
            store.put_document(name, bad)  # type: ignore[arg-type]


# -- events --------------------------------------------------------------------------------------
def test_channels_cursors_and_live_counts(store: Store) -> None:
    store.append_events("build", [Event("build", "x") for _ in range(5)], keep=2)
    assert store.live_event_count("build") == 2
    assert [e.seq for e in store.read_events("build")] == [1, 2, 3, 4, 5]
    assert store.raise_last_seq("quiet", 7) == 7
    assert store.raise_last_seq("quiet", 3) == 7  # never lowered
    assert store.list_channels() == ["build", "quiet"]
    assert store.append_events("quiet", [Event("quiet", "y")], keep=5)[0].seq == 8
    store.advance_cursor("build", "me", 3)
    store.advance_cursor("build", "you", 1)
    assert store.list_cursors() == {"build": {"me": 3, "you": 1}}


def test_imports_keep_seqs_and_refuse_going_back(store: Store) -> None:
    events = [Event("c", "x", seq=s, time=1_700_000_000.5) for s in (2, 5)]
    assert [e.seq for e in store.import_events("c", events, keep=1)] == [2, 5]
    assert store.live_event_count("c") == 1
    assert store.last_seq("c") == 5
    with pytest.raises(InvalidInput):
        store.import_events("c", [Event("c", "x", seq=5)], keep=5)
    with pytest.raises(InvalidInput):
        store.import_events("c", [Event("c", "x", seq=9), Event("c", "x", seq=8)], keep=5)
    assert [e.seq for e in store.read_events("c")] == [2, 5]
    assert store.read_events("c")[0].time == 1_700_000_000.5


def test_event_arguments_are_checked_alike(store: Store, clock: FakeClock) -> None:
    (event,) = store.append_events("c", [Event("c", "x")], keep=5)  # no time: the store's clock
    assert event.time == clock.now
    for call in (
        lambda: store.read_events("c", after=-1),
        lambda: store.read_events("c", limit=-1),
        lambda: store.append_events("c", [Event("c", "x")], keep=-1),
        lambda: store.append_events("c", [Event("c", "bad type")], keep=5),
        lambda: store.append_events("c", [Event("c", "x", fields=[("", "v")])], keep=5),
        lambda: store.append_events("c", [Event("c", "x", fields=[("  ", "v")])], keep=5),
        lambda: store.append_events("bad/channel", [Event("c", "x")], keep=5),
        lambda: store.read_events("../c"),
        lambda: store.advance_cursor("c", "bad name", 1),
        lambda: store.advance_cursor("c", "me", -1),
    ):
        with pytest.raises(InvalidInput):
            call()
    assert store.last_seq("c") == 1


# -- the workspace as a whole --------------------------------------------------------------------
def test_record_names_and_clear(store: Store) -> None:
    assert store.record_names() == []
    store.create_task(Task("t", "t"))
    store.update_agent("a", lambda _a: Agent("a"))
    store.append_events("c", [Event("c", "x")], keep=5)
    store.put_context(ContextDoc("p", "d"))
    store.put_document("metrics-performance", {"overall": {}})
    assert store.record_names()
    assert store.identity() == store.identity()
    assert store.clear() >= 5
    assert store.record_names() == []
    assert (store.list_tasks(), store.list_agents(), store.list_channels()) == ([], [], [])


def test_storage_checks_are_clean_on_a_fresh_store(store: Store) -> None:
    store.create_task(Task("t", "t"))
    assert store.check_storage() == []
    assert store.repair_storage([]) == []
    assert [h.id for h in store.fresh().list_task_heads()] == ["t"]


def test_the_change_feed_reports_writes_made_after_watch(store: Store) -> None:
    feed = store.watch(timeout=5)
    try:
        store.create_task(Task("t", "t"))
        seen: list[Change] = []
        for batch in feed:
            seen += batch
            if any(c.kind == "task" and c.key == "t" for c in seen):
                break
        assert any(c.kind == "task" and c.key == "t" for c in seen)
    finally:
        feed.close()
