"""The Store interface, method by method, on every backend (memory, markdown, Redis): the shared
rules of ``store/base.py`` hold alike everywhere. Behavioural tests through the Coordinator are
the rest of the conformance suite."""

from __future__ import annotations

import time
from typing import Any

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


# -- what crosses the boundary: JSON data, names, records (store/base.py's check_* rules) ------
class _Int(int):
    """An ``int`` subclass: a caller's value that JSON holds as a plain number."""


class _Dict(dict[str, Any]):
    """A ``dict`` subclass: record copies share it instead of copying it (``_clone``)."""


def _messy() -> dict[Any, Any]:
    """JSON data the way a Python caller may hand it over."""
    return {"pair": (1, 2), "count": _Int(3), 5: "five", "zero": -0.0, "nested": _Dict(a=(1,))}


_CLEAN = {"pair": [1, 2], "count": 3, "5": "five", "zero": -0.0, "nested": {"a": [1]}}


def _exact(value: Any) -> Any:
    """``value`` with the type of every part spelled out: ``==`` alone takes ``_Int(3)`` for
    ``3`` and a dict subclass for a dict."""
    if isinstance(value, dict):
        return (type(value).__name__, {k: _exact(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_exact(v) for v in value])
    return (type(value).__name__, repr(value))


def test_json_data_is_stored_and_returned_as_exactly_its_json_value(store: Store) -> None:
    """Tuples, int and dict subclasses, non-string keys: every backend keeps the JSON value
    (what markdown and Redis read back), never the caller's objects."""
    store.create_task(Task("t", "t", metrics=_messy()))
    assert _exact(store.get_task("t").metrics) == _exact(_CLEAN)

    holder = _Dict(x=1)

    def fn(task: Task) -> Task:
        task.metrics = {**_messy(), "held": holder}
        return task

    returned = store.update_task("t", fn)
    holder["x"] = 2  # the caller's object, changed after the update: never the store's
    want = _exact({**_CLEAN, "held": {"x": 1}})
    assert _exact(returned.metrics) == want
    assert _exact(store.get_task("t").metrics) == want

    store.put_context(ContextDoc("p", "d", data=_messy()))
    assert _exact(store.get_context("p", "d").data) == _exact(_CLEAN)
    assert [_exact(d.data) for d in store.list_contexts()] == [_exact(_CLEAN)]

    store.put_document("metrics-x", _messy())
    assert _exact(store.get_document("metrics-x")) == _exact(_CLEAN)

    entry = {"id": "t", "title": "t", "metrics": {"pair": (1, 2), "count": _Int(3)}}
    store.update_agent("a", lambda _a: Agent("a", active=[entry]))
    metrics = store.get_agent("a").active[0]["metrics"]
    assert _exact(metrics) == _exact({"pair": [1, 2], "count": 3})


@pytest.mark.parametrize(
    "bad",
    [float("nan"), float("inf"), -float("inf"), {1, 2}, object(), {(1, 2): "tuple key"}],
    ids=["nan", "inf", "-inf", "set", "object", "tuple-key"],
)
def test_data_json_cannot_hold_is_refused_everywhere(store: Store, bad: object) -> None:
    """NaN, infinities and non-JSON values: InvalidInput (exit 2) before anything is written,
    on every backend (markdown would write a file it cannot read back)."""
    store.create_task(Task("t", "t"))

    def fn(task: Task) -> Task:
        task.metrics = {"v": bad}
        return task

    for call in (
        lambda: store.create_task(Task("u", "u", metrics={"v": bad})),
        lambda: store.update_task("t", fn),
        lambda: store.put_context(ContextDoc("p", "d", data={"v": bad})),
        lambda: store.put_document("metrics-x", {"v": bad}),
        lambda: store.update_agent("a", lambda _a: Agent("a", stats={"v": bad})),
        lambda: store.import_archived("task", "v", Task("v", "v", metrics={"v": bad})),
    ):
        with pytest.raises(InvalidInput):
            call()
    assert [t.id for t in store.list_tasks()] == ["t"]
    assert store.get_task("t").metrics == {}
    assert store.list_contexts() == []
    assert store.list_documents() == []
    assert store.list_agents() == []
    assert store.list_archived_tasks() == []


def test_documents_must_be_json_objects(store: Store) -> None:
    for bad in (None, [1], "text", 3):
        with pytest.raises(InvalidInput):
            store.put_document("metrics-x", bad)  # type: ignore[arg-type]
    assert store.list_documents() == []


def test_an_update_that_returns_none_changes_nothing_even_if_fn_mutated_its_copy(
    store: Store,
) -> None:
    """None means "no change": the record as stored comes back, whatever fn did to the copy
    it was given (base docstring), on every backend."""
    store.create_task(Task("t", "title", metrics={"a": 1}))

    def meddle(task: Task) -> None:
        task.title = "meddled"
        task.metrics["a"] = 2

    returned = store.update_task("t", meddle)
    assert (returned.title, returned.metrics) == ("title", {"a": 1})
    assert (store.get_task("t").title, store.get_task("t").metrics) == ("title", {"a": 1})
    assert store.try_update_task("t", meddle) in (None, returned)
    assert store.get_task("t").title == "title"

    store.update_agent("a", lambda _a: Agent("a", notes="kept"))

    def meddle_agent(agent: Agent | None) -> None:
        assert agent is not None
        agent.notes = "meddled"

    back = store.update_agent("a", meddle_agent)
    assert back is not None and back.notes == "kept"
    assert store.get_agent("a").notes == "kept"
    assert store.update_agent("nobody", lambda a: None) is None
    assert [a.name for a in store.list_agents()] == ["a"]


def test_cursor_and_counter_writes_that_move_nothing_store_nothing(store: Store) -> None:
    assert store.advance_cursor("c", "me", 0) == 0
    store.set_counter("k", 0)
    store.set_counter("k", -5)
    assert (store.list_cursors(), store.counters(), store.record_names()) == ({}, {}, [])
    store.set_counter("k", 4)
    store.set_counter("k", -1)
    assert store.counters() == {"k": 4}
    assert store.advance_cursor("c", "me", 2) == 2
    assert store.advance_cursor("c", "me", 0) == 2
    assert store.list_cursors() == {"c": {"me": 2}}


@pytest.mark.parametrize("value", ["5", 5.0, True, None])
def test_counter_values_must_be_whole_numbers(store: Store, value: object) -> None:
    with pytest.raises(InvalidInput):
        store.set_counter("k", value)  # type: ignore[arg-type]
    assert store.counters() == {}


def test_counter_values_are_stored_as_plain_ints(store: Store) -> None:
    store.set_counter("k", _Int(7))
    assert [(k, type(v)) for k, v in store.counters().items()] == [("k", int)]
    assert store.next_id("k") == 8


def test_import_archived_refuses_a_record_of_another_kind(store: Store) -> None:
    for kind, record in (
        ("task", Agent("x")),
        ("agent", Task("x", "x")),
        ("task", "x"),
        ("agent", {"name": "x"}),
        ("task", Task("bad id", "x")),
        ("agent", Agent("bad/name")),
    ):
        with pytest.raises(InvalidInput):
            store.import_archived(kind, "x", record)  # type: ignore[arg-type]
    assert (store.list_archived_tasks(), store.list_archived_agents()) == ([], [])
    assert store.record_names() == []


@pytest.mark.parametrize("bad", ["../x", "a b", "", "a/b", "-x", "x" * 65])
def test_every_name_is_checked_before_a_record_is_touched(store: Store, bad: str) -> None:
    """A direct Store caller cannot make (or read) a file or key under a bad name."""
    store.create_task(Task("t", "t"))
    for call in (
        lambda: store.create_task(Task(bad, "x")),
        lambda: store.create_task(Task("u", "x", project=bad)),
        lambda: store.create_task(Task("u", "x", depends_on=[bad])),
        lambda: store.update_task("t", lambda t: Task("t", "x", agent=bad)),
        lambda: store.get_task(bad),
        lambda: store.get_task_head(bad),
        lambda: store.update_task(bad, lambda t: t),
        lambda: store.archive_task(bad, lambda t: True),
        lambda: store.update_agent(bad, lambda a: Agent(bad)),
        lambda: store.get_agent(bad),
        lambda: store.archive_agent(bad, lambda a: True),
        lambda: store.next_id(bad),
        lambda: store.set_counter(bad, 1),
        lambda: store.put_context(ContextDoc(bad, "d")),
        lambda: store.put_context(ContextDoc("p", bad)),
        lambda: store.get_context(bad, "d"),
    ):
        with pytest.raises(InvalidInput):
            call()
    assert [t.id for t in store.list_tasks()] == ["t"]
    assert store.get_task("t").agent is None
    assert (store.list_agents(), store.counters(), store.list_contexts()) == ([], {}, [])


def test_dependency_snapshots_keep_what_a_task_file_holds(store: Store) -> None:
    """``dep_states``/``dep_titles`` are decoration of the task's own Dependencies lines: an
    entry for another task (a transitive cause), a state that is not a task state or an empty
    title is dropped on every backend (markdown has no line to keep it on)."""
    task = Task(
        "t",
        "t",
        depends_on=["d", "e"],
        dep_states={"d": "complete", "e": "COMPLETE", "far": "failed"},
        dep_titles={"d": "Dee", "e": "", "far": "Far"},
    )
    store.create_task(task)
    got = store.get_task("t")
    assert (got.dep_states, got.dep_titles) == ({"d": "complete"}, {"d": "Dee"})

    def block(task: Task) -> Task:
        task.status = "blocked"
        task.dep_states["far"] = "failed"  # what blocking by a transitive cause records
        task.dep_states["e"] = "in_progress"
        return task

    returned = store.update_task("t", block)
    want = {"d": "complete", "e": "in_progress"}
    assert returned.dep_states == want
    assert store.get_task("t").dep_states == want


def test_an_agents_active_entries_keep_their_update_time(store: Store, clock: FakeClock) -> None:
    from agentcoord.domain.agents import active_entry

    store.create_task(Task("t", "t", status="in_progress", agent="a", started_at=clock.now))
    entry = active_entry(store.get_task("t"), clock.now + 60)
    store.update_agent("a", lambda _a: Agent("a", active=[entry]))
    (got,) = store.get_agent("a").active
    assert got["updated"] == clock.now + 60
    assert {k: got[k] for k in entry} == entry


def test_record_names_and_listings_equal_the_reference_stores(store: Store) -> None:
    """The same operations on the in-memory reference store and on this backend give the same
    record names (canonical names: never file names or Redis keys), channels, cursors, counters,
    documents and archives; ``clear`` removes (and counts) the same."""
    from agentcoord.store.memory import MemoryStore

    reference = MemoryStore()

    def run(s: Store) -> None:
        s.create_task(Task("t1", "live"))
        s.create_task(Task("t2", "done", status="complete"))
        assert s.archive_task("t2", lambda t: True)
        s.import_archived("task", "7-20250101T000000", Task("7", "old", status="complete"))
        s.update_agent("ann", lambda _a: Agent("ann"))
        s.update_agent("bob", lambda _a: Agent("bob"))
        assert s.archive_agent("bob", lambda a: True)
        s.append_events("main", [Event("main", "x"), Event("main", "y")], keep=1)
        s.raise_last_seq("raised", 4)
        s.raise_last_seq("quiet", 0)
        s.advance_cursor("main", "reader", 1)
        s.advance_cursor("nowhere", "reader", 0)
        s.put_context(ContextDoc("proj", "api"))
        s.put_document("metrics-performance", {"overall": {}})
        s.next_id("task")
        s.set_counter("msg", 5)
        s.set_counter("zero", 0)

    def seen(s: Store) -> tuple[object, ...]:
        return (
            s.record_names(),
            s.list_channels(),
            s.list_cursors(),
            s.counters(),
            s.list_documents(),
            [n for n, _ in s.list_archived_tasks()],
            [n for n, _ in s.list_archived_agents()],
        )

    assert store.record_names() == reference.record_names() == []
    run(reference)
    run(store)
    assert seen(store) == seen(reference)
    assert "task-t1" in store.record_names()
    assert store.clear() == reference.clear()
    assert store.record_names() == reference.record_names() == []


# -- the lifecycle fields (SPEC section 11, issue 16) -------------------------------------------
def test_lifecycle_fields_round_trip_and_reach_the_heads(store: Store) -> None:
    """Labels, required capabilities, the parent and the description read back alike from every
    backend, and the heads (the index ``list --label/--parent`` and claims use) carry them."""
    description = "Goal.\n\n- [ ] one\n- [x] two\n## not a section\n```\n**Status**: forged"
    task = Task("c1", "child", labels=["ui", "p1"], requires=["gpu"], parent="p")
    task.description = description
    store.create_task(Task("p", "parent"))
    store.create_task(task)
    got = store.get_task("c1")
    assert (got.labels, got.requires, got.parent, got.description) == (
        ["ui", "p1"],
        ["gpu"],
        "p",
        description,
    )
    heads = {h.id: h for h in store.list_task_heads()}
    assert (heads["c1"].labels, heads["c1"].requires, heads["c1"].parent) == (
        ["ui", "p1"],
        ["gpu"],
        "p",
    )

    def relabel(t: Task) -> Task:
        t.labels, t.parent, t.requires = ["p2"], None, []
        return t

    store.update_task("c1", relabel)
    head = store.get_task_head("c1")
    assert (head.labels, head.parent, head.requires) == (["p2"], None, [])
    assert next(h for h in store.list_task_heads() if h.id == "c1").labels == ["p2"]


def test_lifecycle_fields_are_normalized_alike(store: Store) -> None:
    task = Task("t1", "x", labels=["a", "b", "a"], requires=["c", "c"])
    task.description = "\n  \n body\n- [ ] x\n \n"
    store.create_task(task)
    got = store.get_task("t1")
    assert (got.labels, got.requires, got.description) == (["a", "b"], ["c"], " body\n- [ ] x")


@pytest.mark.parametrize(
    "change",
    [
        {"labels": ["not a name"]},
        {"requires": ["../x"]},
        {"parent": "t1"},
        {"parent": "a/b"},
        {"labels": "ui"},
        {"description": 5},
        {"description": "\udcff"},
    ],
)
def test_bad_lifecycle_fields_are_refused_everywhere(store: Store, change: dict[str, Any]) -> None:
    task = Task("t1", "x")
    for key, value in change.items():
        setattr(task, key, value)
    with pytest.raises(InvalidInput):
        store.create_task(task)
    with pytest.raises(NotFound):
        store.get_task("t1")


def test_find_archived_task_names_the_newest_entry(store: Store, clock: FakeClock) -> None:
    assert store.find_archived_task("t1") is None
    for title in ("first", "second"):
        store.create_task(Task("t1", title, updated_at=clock.now))
        assert store.archive_task("t1", lambda t: True)
        clock.advance(5)
    found = store.find_archived_task("t1")
    assert found is not None
    name, task = found
    assert (name, task.title) == (f"t1-{_stamp(clock.now - 5)}", "second")
    store.create_task(Task("t10", "other"))
    assert store.archive_task("t10", lambda t: True)
    assert store.find_archived_task("t1") is not None and store.find_archived_task("t2") is None
