"""``coord doctor`` on the Redis backend: what only the key space can get wrong (the derived
structures against the records, values no listing reads), on a real redis-server, and
``doctor --fix`` rebuilding every derived structure from the records."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentcoord.api import Coordinator
from agentcoord.core.models import Agent, ContextDoc, Event, Task
from agentcoord.store.redis.heads import head_json
from agentcoord.store.redis.store import RedisStore

from .conftest import FakeClock

pytestmark = [pytest.mark.redis, pytest.mark.parametrize("backend", ["redis"], indirect=True)]


@pytest.fixture
def store(coord: Coordinator) -> RedisStore:
    s = coord.store
    assert isinstance(s, RedisStore)
    return s


def key(store: RedisStore, *parts: str) -> str:
    return store.c.key(*parts)


def r(store: RedisStore) -> Any:
    return store.c.client


def found(coord: Coordinator) -> list[tuple[str, str, bool]]:
    return sorted((v.kind, v.key, v.repairable) for v in coord.doctor.check())


def messages(coord: Coordinator, kind: str) -> str:
    return "\n".join(v.message for v in coord.doctor.check() if v.kind == kind)


def board(coord: Coordinator, store: RedisStore) -> None:
    """A healthy workspace with a bit of everything."""
    coord.agents.register("a1")
    for i in range(1, 5):
        coord.tasks.create(f"task {i}", id=f"t{i}", priority=i)
    coord.tasks.claim("t2", agent="a1", lease_seconds=600)
    store.create_task(Task("old", "done", status="complete"))
    assert store.archive_task("old", lambda t: True)
    store.put_context(ContextDoc("proj", "api", data={"k": 1}))
    store.put_document("metrics-performance", {"overall": {}})
    store.append_events("main", [Event("main", "hello")], keep=5)
    store.advance_cursor("main", "reader", 1)
    store.next_id("task")


def assert_consistent(store: RedisStore) -> None:
    """Every derived structure is exactly what the records say."""
    client = r(store)
    ids = [t.id for t in store.list_tasks()]
    assert client.smembers(key(store, "tasks", "all")) == set(ids)
    for state in ("pending", "assigned", "in_progress", "complete", "failed", "blocked"):
        members = client.smembers(key(store, "tasks", "status", state))
        tasks = [t for t in store.list_tasks() if t.status == state]
        assert members == {t.id for t in tasks}, state
        heads = client.hgetall(key(store, "tasks", "heads", state))
        assert heads == {t.id: head_json(t) for t in tasks}, state


def test_a_healthy_workspace_is_clean(coord: Coordinator, store: RedisStore) -> None:
    board(coord, store)
    assert coord.doctor.check() == []
    assert coord.doctor.fix() == []
    assert_consistent(store)


# -- the task heads and state sets -------------------------------------------------------------
def test_a_task_in_the_wrong_state_set_is_found_and_fixed(
    coord: Coordinator, store: RedisStore
) -> None:
    board(coord, store)
    client = r(store)
    client.sadd(key(store, "tasks", "status", "in_progress"), "t1")  # also still pending
    assert found(coord) == [("index", "t1", True)]
    assert "wrong state set in_progress (it is pending)" in messages(coord, "index")
    coord.doctor.fix()
    assert coord.doctor.check() == []
    assert_consistent(store)
    # moved wholly (set and head) into the wrong state
    client.smove(
        key(store, "tasks", "status", "pending"), key(store, "tasks", "status", "failed"), "t3"
    )
    head = client.hget(key(store, "tasks", "heads", "pending"), "t3")
    client.hdel(key(store, "tasks", "heads", "pending"), "t3")
    client.hset(key(store, "tasks", "heads", "failed"), "t3", head)
    assert ("index", "t3", True) in found(coord)
    coord.doctor.fix()
    assert coord.doctor.check() == []
    assert_consistent(store)
    assert sorted(t.id for t in coord.tasks.list(status="pending")) == ["t1", "t3", "t4"]


def test_phantom_heads_and_members_are_found_and_dropped(
    coord: Coordinator, store: RedisStore
) -> None:
    board(coord, store)
    client = r(store)
    ghost = head_json(Task("ghost", "g"))
    client.hset(key(store, "tasks", "heads", "pending"), "ghost", ghost)
    client.sadd(key(store, "tasks", "status", "blocked"), "ghost2")
    client.sadd(key(store, "tasks", "all"), "ghost3")
    assert found(coord) == [
        ("index", "ghost", True),
        ("index", "ghost2", True),
        ("index", "ghost3", True),
    ]
    assert "does not exist but is listed in heads of pending" in messages(coord, "index")
    coord.doctor.fix()
    assert coord.doctor.check() == []
    assert_consistent(store)
    assert not client.hexists(key(store, "tasks", "heads", "pending"), "ghost")


def test_every_field_of_a_head_is_compared_with_the_record(
    coord: Coordinator, store: RedisStore
) -> None:
    """Not just the status: a head that claims another priority, holder or epoch misleads
    ``claim`` and ``list`` as much as one in the wrong state."""
    board(coord, store)
    client = r(store)
    heads = key(store, "tasks", "heads", "in_progress")
    row = json.loads(client.hget(heads, "t2"))
    layout = ["agent", "created_at", "depends_on", "epoch", "id", "labels", "lease_expires"]
    layout += ["lease_length", "parent", "priority", "project", "requires", "status", "updated_at"]
    row[layout.index("priority")] = 99
    row[layout.index("agent")] = "mallory"
    row[layout.index("epoch")] = 7
    client.hset(heads, "t2", json.dumps(row))
    assert found(coord) == [("index", "t2", True)]
    text = messages(coord, "index")
    assert "task t2 has a head that disagrees with its record on agent, epoch, priority" in text
    assert store.get_task_head("t2").agent == "a1"  # (the record itself is untouched)
    coord.doctor.fix()
    assert coord.doctor.check() == []
    assert_consistent(store)
    assert [h.agent for h in store.list_task_heads(statuses=["in_progress"])] == ["a1"]
    # a head that is not even JSON (one check: listing heads also repairs it on the way)
    client.hset(key(store, "tasks", "heads", "pending"), "t1", "not json")
    violations = coord.doctor.check()
    assert [(v.kind, v.key) for v in violations] == [("index", "t1")]
    assert "disagrees with its record on every field" in violations[0].message
    coord.doctor.fix()
    assert coord.doctor.check() == []
    assert_consistent(store)


def test_a_missing_head_or_state_membership_is_found(coord: Coordinator, store: RedisStore) -> None:
    board(coord, store)
    client = r(store)
    client.srem(key(store, "tasks", "status", "pending"), "t4")
    client.hdel(key(store, "tasks", "heads", "pending"), "t4")
    assert found(coord) == [("index", "t4", True)]
    assert "missing from state set pending" in messages(coord, "index")
    coord.doctor.fix()
    assert coord.doctor.check() == []
    assert_consistent(store)


def test_a_task_missing_from_the_all_set_is_found_and_restored(
    coord: Coordinator, store: RedisStore
) -> None:
    board(coord, store)
    client = r(store)
    client.srem(key(store, "tasks", "all"), "t1")
    assert "t1" not in [t.id for t in store.list_tasks()]  # invisible to listings
    assert found(coord) == [("index", "t1", True)]
    assert "missing from the all-tasks set" in messages(coord, "index")
    coord.doctor.fix()
    assert coord.doctor.check() == []
    assert "t1" in [t.id for t in store.list_tasks()]
    assert_consistent(store)


def test_an_unreadable_task_outside_every_listing_is_reported(
    coord: Coordinator, store: RedisStore
) -> None:
    board(coord, store)
    client = r(store)
    client.set(key(store, "task", "bad"), "{not json")  # no index entry: no listing sees it
    kinds = found(coord)
    assert ("corrupt", key(store, "task", "bad"), False) in kinds
    assert ("index", "bad", True) in kinds
    coord.doctor.fix()
    # now in the all-set (listings report it) and in no state: corrupt, nothing to rebuild
    assert found(coord) == [("corrupt", key(store, "task", "bad"), False)]
    assert "bad" in client.smembers(key(store, "tasks", "all"))
    assert not any(
        client.sismember(key(store, "tasks", "status", s), "bad") for s in ("pending", "failed")
    )


def test_a_derived_key_of_the_wrong_type_is_rebuilt(coord: Coordinator, store: RedisStore) -> None:
    board(coord, store)
    client = r(store)
    client.delete(key(store, "tasks", "all"))
    client.set(key(store, "tasks", "all"), "oops")
    client.delete(key(store, "tasks", "heads", "pending"))
    client.rpush(key(store, "tasks", "heads", "pending"), "x")
    assert ("index", "tasks:all", True) in found(coord)
    assert ("index", "tasks:heads:pending", True) in found(coord)
    coord.doctor.fix()
    assert coord.doctor.check() == []
    assert_consistent(store)


# -- the other all-sets ----------------------------------------------------------------------------
def test_agents_contexts_and_channels_sets_follow_their_records(
    coord: Coordinator, store: RedisStore
) -> None:
    board(coord, store)
    client = r(store)
    client.srem(key(store, "agents:all"), "a1")
    client.sadd(key(store, "agents:all"), "nobody")
    client.srem(key(store, "contexts"), "proj-api")
    client.sadd(key(store, "contexts"), "gone-doc")
    client.srem(key(store, "channels"), "main")
    client.sadd(key(store, "channels"), "phantom")
    assert found(coord) == [
        ("index", "a1", True),
        ("index", "gone-doc", True),
        ("index", "main", True),
        ("index", "nobody", True),
        ("index", "phantom", True),
        ("index", "proj-api", True),
    ]
    coord.doctor.fix()
    assert coord.doctor.check() == []
    assert client.smembers(key(store, "agents:all")) == {"a1"}
    assert client.smembers(key(store, "contexts")) == {"proj-api"}
    assert store.list_channels() == ["main"]


# -- values no listing reads ---------------------------------------------------------------------
def test_counters_cursors_and_seqs_must_be_whole_numbers(
    coord: Coordinator, store: RedisStore
) -> None:
    board(coord, store)
    client = r(store)
    client.hset(key(store, "counters"), "task", "12abc")
    client.hset(key(store, "counters"), "other", "-3")
    client.hset(key(store, "events", "main", "cursors"), "reader", "-2")
    client.set(key(store, "events", "lost", "seq"), "1_0")  # a channel no listing reaches
    kinds = found(coord)
    assert ("corrupt", f"{key(store, 'counters')}#task", False) in kinds
    assert ("corrupt", f"{key(store, 'counters')}#other", False) in kinds
    assert ("corrupt", f"{key(store, 'events', 'main', 'cursors')}#reader", False) in kinds
    assert ("corrupt", key(store, "events", "lost", "seq"), False) in kinds


def test_documents_contexts_and_archived_agents_that_do_not_decode(
    coord: Coordinator, store: RedisStore
) -> None:
    board(coord, store)
    client = r(store)
    client.set(key(store, "doc", "metrics-performance"), "{broken")
    client.set(key(store, "doc", "metrics-other"), "[1, 2]")  # JSON, but not an object
    client.set(key(store, "context", "lost-ctx"), "nope")  # not in the contexts set either
    client.hset(key(store, "agents:archive"), "old", "{")
    kinds = found(coord)
    for where in (
        key(store, "doc", "metrics-performance"),
        key(store, "doc", "metrics-other"),
        key(store, "context", "lost-ctx"),
        f"{key(store, 'agents:archive')}#old",
    ):
        assert kinds.count(("corrupt", where, False)) == 1, where  # reported once
    assert ("index", "lost-ctx", True) in kinds


def test_fix_leaves_a_record_changed_meanwhile_to_its_own_writer(
    coord: Coordinator, store: RedisStore, clock: FakeClock
) -> None:
    """The rebuild writes a task's entries only if the task is still what the check read: run
    on a live board, it never puts back an old state."""
    from agentcoord.store.redis import checks

    board(coord, store)
    client = r(store)
    client.sadd(key(store, "tasks", "status", "failed"), "t1")
    audit = checks.Audit(store.c, checks.scan(store.c))
    assert [v.id for v, _ in audit.task_fixes] == ["t1"]

    def start(task: Task) -> Task:
        task.title = "changed meanwhile"
        return task

    store.update_task("t1", start)  # a writer between the check and the repair
    view, verdict = audit.task_fixes[0]
    fix = store.c.script("fix_task", checks._FIX_TASK)
    keys = [key(store, "task", "t1"), key(store, "tasks", "all")]
    keys += [key(store, "tasks", "status", "pending"), key(store, "tasks", "heads", "pending")]
    assert fix(keys=keys, args=["t1", view.raw, 1, verdict.head]) == 0
    assert client.hget(key(store, "tasks", "heads", "pending"), "t1") == head_json(
        store.get_task("t1")
    )
    store.rebuild_index()
    assert coord.doctor.check() == []


def test_agents_archive_round_trip_is_clean(coord: Coordinator, store: RedisStore) -> None:
    store.update_agent("gone", lambda _a: Agent("gone"))
    assert store.archive_agent("gone", lambda a: True)
    assert coord.doctor.check() == []


def test_checks_and_rebuilds_on_a_live_board_report_nothing_false(
    coord: Coordinator, store: RedisStore
) -> None:
    """Writers changing, creating and archiving records while the doctor checks and rebuilds:
    nothing is reported that is not wrong, and the rebuild never puts back an old entry."""
    import threading

    for i in range(60):
        store.create_task(Task(f"t{i}", "x"))
    stop = threading.Event()
    states = ["pending", "assigned", "in_progress", "complete", "failed", "blocked"]
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        w = RedisStore(store.url, workspace=store.workspace)
        n = 0
        try:
            while not stop.is_set():

                def move(task: Task, n: int = n) -> Task:
                    task.status, task.priority = states[n % len(states)], n
                    return task

                w.update_task(f"t{(n * 7 + k) % 60}", move)
                if n % 5 == 0:
                    w.create_task(Task(f"n{k}-{n}", "new"))
                    w.archive_task(f"n{k}-{n}", lambda t: True)
                    w.update_agent(f"a{k}-{n}", lambda _a, k=k, n=n: Agent(f"a{k}-{n}"))
                    w.archive_agent(f"a{k}-{n}", lambda a: True)
                n += 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            w.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    try:
        reports = []
        for _ in range(8):
            reports += store.check_storage()
            store.rebuild_index()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert reports == []
    assert store.check_storage() == []
    assert [v for v in coord.doctor.check() if v.kind in ("index", "corrupt")] == []
    assert_consistent(store)
