"""Behaviour of the Redis backend against a throw-away redis-server (see redis_server.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from agentcoord.core.models import Agent, ContextDoc, Event, Task
from agentcoord.errors import (
    AlreadyExists,
    BackendUnavailable,
    Conflict,
    CorruptData,
    InvalidInput,
    NotFound,
)
from agentcoord.store.base import Change

try:
    from redis_server import RedisServer, free_port, redis_server_fixture, require_binary
except ImportError:  # tests/ became a package
    from tests.redis_server import RedisServer, free_port, redis_server_fixture, require_binary

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from agentcoord.store.redis.store import RedisStore

pytestmark = pytest.mark.redis

redis_server = redis_server_fixture("redis_server")
unix_redis_server = redis_server_fixture("unix_redis_server", unix=True)
password_redis_server = redis_server_fixture("password_redis_server", password="s3cret-pw")

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


def open_store(url: str, workspace: str | None = None, **options: object) -> RedisStore:
    from agentcoord.store.redis.store import RedisStore

    return RedisStore(url, workspace=workspace or f"t{uuid.uuid4().hex[:12]}", **options)


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    """A fresh workspace on the session's server: tests share the server, never the keys."""
    s = open_store(redis_url)
    yield s
    s.close()


def bump(task: Task) -> Task:
    task.metrics["n"] = task.metrics.get("n", 0) + 1
    return task


# -- tasks -----------------------------------------------------------------------------------
def test_task_crud(store: RedisStore) -> None:
    store.create_task(Task("1", "first", priority=2, logs=[], context_refs=[("p", "d")]))
    store.create_task(Task("2", "second"))
    with pytest.raises(AlreadyExists):
        store.create_task(Task("1", "again"))
    assert store.get_task("1").title == "first"
    assert store.get_task("1").context_refs == [("p", "d")]
    with pytest.raises(NotFound):
        store.get_task("nope")
    with pytest.raises(NotFound):
        store.update_task("nope", bump)
    assert store.update_task("1", lambda t: None).metrics == {}  # None: no change, no write
    assert store.update_task("1", bump).metrics == {"n": 1}
    assert store.get_task("1").metrics == {"n": 1}
    assert [t.id for t in store.list_tasks()] == ["1", "2"]


def test_list_order_matches_file_names(store: RedisStore) -> None:
    for task_id in ["10", "2", "1", "a-b", "a"]:
        store.create_task(Task(task_id, task_id))
    # like sorted("task-{id}.md"): "a-b.md" sorts before "a.md"
    assert [t.id for t in store.list_tasks()] == ["1", "10", "2", "a-b", "a"]


def test_status_index_follows_every_write(store: RedisStore) -> None:
    for i in range(5):
        store.create_task(Task(str(i), f"t{i}"))

    def start(task: Task) -> Task:
        task.status = "in_progress"
        return task

    store.update_task("3", start)
    assert [t.id for t in store.list_tasks(statuses=["in_progress"])] == ["3"]
    assert [t.id for t in store.list_tasks(statuses=["pending"])] == ["0", "1", "2", "4"]
    assert store.list_tasks(statuses=[]) == []
    # listing reads the index, never scans the keyspace: an unindexed key is not seen
    store.c.client.set(store.c.key("task", "ghost"), json.dumps(Task("ghost", "g").to_dict()))
    assert "ghost" not in [t.id for t in store.list_tasks()]
    client = store.c.client
    assert client.smembers(store.c.key("tasks", "status", "in_progress")) == {"3"}
    assert "3" not in client.smembers(store.c.key("tasks", "status", "pending"))
    assert store.archive_task("3", lambda t: True)
    assert client.smembers(store.c.key("tasks", "status", "in_progress")) == set()
    assert "3" not in client.smembers(store.c.key("tasks", "all"))


def test_failed_update_writes_nothing(store: RedisStore) -> None:
    store.create_task(Task("1", "x"))

    def refuse(task: Task) -> Task:
        task.status = "complete"
        raise Conflict("no")

    with pytest.raises(Conflict):
        store.update_task("1", refuse)
    assert store.get_task("1").status == "pending"
    assert [t.id for t in store.list_tasks(statuses=["pending"])] == ["1"]


def test_archive_and_reuse_of_an_id(store: RedisStore) -> None:
    store.create_task(Task("1", "first"))
    assert not store.archive_task("1", lambda t: False)
    assert not store.archive_task("missing", lambda t: True)
    assert store.archive_task("1", lambda t: True)
    with pytest.raises(NotFound):
        store.get_task("1")
    store.create_task(Task("1", "second"))
    assert store.archive_task("1", lambda t: True)
    assert store.list_tasks() == []
    assert sorted(t.title for _, t in store.list_archived_tasks()) == ["first", "second"]


def test_next_id_never_repeats(store: RedisStore) -> None:
    assert [store.next_id("task") for _ in range(3)] == [1, 2, 3]
    assert store.next_id("other") == 1


def test_corrupt_record_is_reported_not_overwritten(store: RedisStore) -> None:
    store.create_task(Task("good", "fine"))
    key = store.c.key("task", "bad")
    store.c.client.set(key, "{not json")
    store.c.client.sadd(store.c.key("tasks", "all"), "bad")
    with pytest.raises(CorruptData) as info:
        store.get_task("bad")
    assert info.value.path == key
    errors: list[CorruptData] = []
    assert [t.id for t in store.list_tasks(errors=errors)] == ["good"]
    assert [e.path for e in errors] == [key]
    with pytest.raises(CorruptData):
        store.update_task("bad", bump)
    with pytest.raises(CorruptData):
        store.create_task(Task("bad", "replacement"))
    assert store.c.client.get(key) == "{not json"


# -- agents, context, documents --------------------------------------------------------------
def test_agents(store: RedisStore) -> None:
    seen: list[Agent | None] = []

    def register(agent: Agent | None) -> Agent | None:
        seen.append(agent)
        return Agent("bob", capabilities=["py"]) if agent is None else None

    assert store.update_agent("bob", register) == Agent("bob", capabilities=["py"])
    assert store.update_agent("bob", register) == Agent("bob", capabilities=["py"])
    assert seen[0] is None
    assert seen[1] is not None
    assert store.update_agent("ghost", lambda a: None) is None
    with pytest.raises(NotFound):
        store.get_agent("ghost")
    assert [a.name for a in store.list_agents()] == ["bob"]
    assert store.archive_agent("bob", lambda a: True)
    assert store.list_agents() == []
    assert [a.name for _, a in store.list_archived_agents()] == ["bob"]


def test_context_and_documents(store: RedisStore) -> None:
    doc = ContextDoc("proj", "api", data={"k": [1, 2]}, text="free text")
    store.put_context(doc)
    store.put_context(doc)
    assert store.get_context("proj", "api") == doc
    assert store.list_contexts() == [doc]
    with pytest.raises(NotFound):
        store.get_context("proj", "other")
    store.put_context(ContextDoc("proj", "api-x"))
    with pytest.raises(Conflict):  # both would be context-proj-api-x.md in the file backend
        store.put_context(ContextDoc("proj-api", "x"))
    assert store.get_document("metrics-performance") is None
    store.put_document("metrics-performance", {"overall": {"finished": 1}})
    assert store.get_document("metrics-performance") == {"overall": {"finished": 1}}


# -- events ----------------------------------------------------------------------------------
def test_event_seqs_rotation_and_reads(store: RedisStore) -> None:
    fields = [("step", "1"), ("step", "2"), ("note", "a b")]
    for batch in range(7):
        events = [Event("build", "tick", time=1000.0 + i, fields=fields) for i in range(3)]
        out = store.append_events("build", events, keep=5)
        assert [e.seq for e in out] == [3 * batch + 1, 3 * batch + 2, 3 * batch + 3]
    assert store.last_seq("build") == 21
    assert store.c.client.xlen(store.c.key("events", "build", "live")) == 5
    assert store.c.client.xlen(store.c.key("events", "build", "archive")) == 16
    every = store.read_events("build")
    assert [e.seq for e in every] == list(range(1, 22))
    assert every[0].fields == fields
    assert every[0].time == 1000.0
    assert [e.seq for e in store.read_events("build", after=14, limit=4)] == [15, 16, 17, 18]
    assert [e.seq for e in store.read_events("build", after=20)] == [21]
    assert store.read_events("build", after=21) == []
    assert store.read_events("build", limit=0) == []
    assert store.list_channels() == ["build"]
    assert store.last_seq("empty") == 0
    assert store.read_events("empty") == []
    with pytest.raises(InvalidInput):
        store.append_events("build", [Event("build", "x")], keep=-1)


def test_rotation_to_zero_keeps_everything(store: RedisStore) -> None:
    store.append_events("c", [Event("c", "x") for _ in range(4)], keep=0)
    assert store.c.client.xlen(store.c.key("events", "c", "live")) == 0
    assert [e.seq for e in store.read_events("c")] == [1, 2, 3, 4]
    assert [e.seq for e in store.append_events("c", [Event("c", "y")], keep=10)] == [5]


def test_cursor_moves_forward_only(store: RedisStore) -> None:
    assert store.get_cursor("c", "me") == 0
    assert store.advance_cursor("c", "me", 5) == 5
    assert store.advance_cursor("c", "me", 3) == 5
    assert store.get_cursor("c", "me") == 5
    assert store.get_cursor("c", "other") == 0
    store.c.client.hset(store.c.key("events", "c", "cursors"), "me", "junk")
    with pytest.raises(CorruptData):
        store.advance_cursor("c", "me", 9)


def test_import_events_keeps_seqs(store: RedisStore) -> None:
    events = [Event("m", "x", seq=s) for s in (3, 4, 9)]
    assert [e.seq for e in store.import_events("m", events, keep=2)] == [3, 4, 9]
    with pytest.raises(InvalidInput):
        store.import_events("m", [Event("m", "x", seq=9)], keep=2)
    assert [e.seq for e in store.append_events("m", [Event("m", "y")], keep=2)] == [10]
    assert [e.seq for e in store.read_events("m")] == [3, 4, 9, 10]


def _keys(store: RedisStore) -> list[str]:
    """Every key of the workspace but the short-lived operation markers."""
    pattern = store.c.glob(store.c.key("")) + "*"
    return sorted(k for k in store.c.client.scan_iter(match=pattern) if ":op:" not in k)


def test_no_op_writes_create_nothing(store: RedisStore) -> None:
    """A write that changes nothing stores nothing: raising a last seq to 0 does not make a
    channel (list_channels, record_names and the key space are unchanged), nor does a cursor
    advanced to 0, a counter set to 0, a rotation or an empty append."""
    store.create_task(Task("t", "x"))
    store.append_events("c", [Event("c", "x")], keep=5)
    before = (store.record_names(), store.list_channels(), store.list_cursors(), _keys(store))
    assert store.raise_last_seq("quiet", 0) == 0
    assert store.raise_last_seq("c", 0) == 1
    assert store.raise_last_seq("c", 1) == 1
    assert store.advance_cursor("quiet", "me", 0) == 0
    assert store.advance_cursor("c", "me", 0) == 0
    store.set_counter("task", 0)
    assert store.rotate_events("quiet", keep=0) == 0
    assert store.rotate_events("c", keep=5) == 0
    assert store.rotate_events("c", keep=0, dry_run=True) == 1
    assert store.append_events("quiet", [], keep=5) == []
    assert store.import_events("quiet", [], keep=5) == []
    assert store.update_task("t", lambda t: None).title == "x"
    assert store.update_agent("nobody", lambda a: None) is None
    assert not store.archive_task("t", lambda t: False)
    assert store.last_seq("quiet") == 0
    after = (store.record_names(), store.list_channels(), store.list_cursors(), _keys(store))
    assert after == before
    assert store.list_channels() == ["c"]


def test_raise_last_seq_never_goes_below_the_streams(store: RedisStore) -> None:
    """A lost counter (a key deleted by hand) is restored from the streams, never lowered."""
    store.append_events("c", [Event("c", "x") for _ in range(3)], keep=1)
    store.c.client.delete(store.c.key("events", "c", "seq"))
    assert store.raise_last_seq("c", 2) == 3
    assert store.last_seq("c") == 3
    assert store.raise_last_seq("c", 7) == 7
    store.c.client.set(store.c.key("events", "c", "seq"), "-4")
    with pytest.raises(CorruptData):
        store.raise_last_seq("c", 9)
    with pytest.raises(CorruptData):
        store.last_seq("c")
    with pytest.raises(CorruptData):
        store.append_events("c", [Event("c", "x")], keep=1)


def test_record_names_are_names_and_clear_leaves_no_key(store: RedisStore) -> None:
    """Record names are the canonical names (never Redis keys; the comparison with the
    reference store is ``test_store_conformance.py``); ``clear`` leaves no key behind, markers
    of committed operations included."""
    store.create_task(Task("t1", "live"))
    store.update_agent("ann", lambda _a: Agent("ann"))
    store.append_events("main", [Event("main", "x")], keep=0)
    store.reset_cursor("other", "r2", 0)
    store.put_context(ContextDoc("proj", "api"))
    names = store.record_names()
    assert "task-t1" in names and "events-main" in names
    assert all(isinstance(n, str) and "{" not in n for n in names)
    assert store.clear() == len(names)
    assert store.record_names() == []
    assert _keys(store) == []


# -- change feed -----------------------------------------------------------------------------
def test_watch_delivers_hints(store: RedisStore, redis_url: str) -> None:
    feed = store.watch(timeout=10)  # subscribed on return: nothing written after it is missed
    writer = open_store(redis_url, store.workspace)
    try:
        writer.create_task(Task("7", "x"))
        first = next(feed)
        assert first[0].to_dict() == {"kind": "task", "key": "7", "action": "created"}
        writer.append_events("ch", [Event("ch", "x")], keep=5)
        got: list[Change] = []
        while not any(c.kind == "event" for c in got):
            got += next(feed)
        assert ("event", "ch", "created") in [(c.kind, c.key, c.action) for c in got]
    finally:
        writer.close()
    assert list(store.watch(timeout=0.05)) == []  # silence ends a watch with a timeout


def test_workspaces_are_isolated_under_one_hash_tag(redis_url: str) -> None:
    a, b = open_store(redis_url, "ws-a"), open_store(redis_url, "ws-b")
    try:
        a.create_task(Task("1", "a's"))
        a.append_events("c", [Event("c", "x")], keep=1)
        assert b.list_tasks() == []
        assert b.last_seq("c") == 0
        keys = a.c.client.keys("coord:{ws-a}:*")
        assert keys
        assert all(k.split("{", 1)[1].startswith("ws-a}") for k in keys)
    finally:
        a.close()
        b.close()


# -- multi-process races ---------------------------------------------------------------------
WORKER = textwrap.dedent(
    """
    import json, random, sys
    from agentcoord.errors import Conflict
    from agentcoord.core.models import Event
    from agentcoord.store.redis.store import RedisStore

    url, ws, mode, me, n = sys.argv[1:6]
    store = RedisStore(url, workspace=ws)
    client = store.c.client
    client.incr("test:" + ws + ":ready")
    client.blpop(["test:" + ws + ":go"], timeout=60)  # all start together
    out = []
    if mode == "incr":
        def bump(t):
            t.metrics["n"] = t.metrics.get("n", 0) + 1
            return t
        for _ in range(int(n)):
            store.update_task("counter", bump)
    elif mode == "claim":
        def claim(t):
            if t.status != "pending":
                raise Conflict("taken")
            t.status, t.agent, t.epoch = "in_progress", me, t.epoch + 1
            return t
        while True:
            pending = store.list_tasks(statuses=["pending"])
            if not pending:
                break
            try:
                out.append(store.update_task(random.choice(pending).id, claim).id)
            except Conflict:
                pass
    elif mode == "emit":
        for i in range(int(n)):
            got = store.append_events("race", [Event("race", me), Event("race", me)], keep=7)
            out += [e.seq for e in got]
    store.close()
    print(json.dumps(out))
    """
)


def run_workers(url: str, workspace: str, mode: str, n: int, procs: int = 8) -> list[list[object]]:
    from agentcoord.store.redis.store import RedisStore

    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    args = [url, workspace, mode]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args, f"agent{i}", str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(procs)
    ]
    control = RedisStore(url, workspace=workspace)
    try:
        deadline = time.monotonic() + 120
        while int(control.c.client.get(f"test:{workspace}:ready") or 0) < procs:
            assert time.monotonic() < deadline, "workers did not start"
            assert all(w.poll() is None for w in workers), "a worker died at start-up"
            time.sleep(0.02)
        control.c.client.rpush(f"test:{workspace}:go", *["go"] * procs)
        results = []
        for w in workers:
            stdout, stderr = w.communicate(timeout=240)
            assert w.returncode == 0, stderr
            results.append(json.loads(stdout))
        return results
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.communicate()
        control.close()


@pytest.mark.slow
def test_no_lost_update_with_8_processes(store: RedisStore, redis_url: str) -> None:
    store.create_task(Task("counter", "shared"))
    run_workers(redis_url, store.workspace, "incr", 25)
    assert store.get_task("counter").metrics["n"] == 8 * 25


@pytest.mark.slow
def test_exactly_once_claim_with_8_processes(store: RedisStore, redis_url: str) -> None:
    for i in range(50):
        store.create_task(Task(str(i), f"task {i}"))
    results = run_workers(redis_url, store.workspace, "claim", 0)
    claimed = [task_id for won in results for task_id in won]
    assert sorted(claimed) == sorted(str(i) for i in range(50))  # each exactly once
    for i, won in enumerate(results):
        for task_id in won:
            task = store.get_task(str(task_id))
            assert (task.agent, task.epoch, task.status) == (f"agent{i}", 1, "in_progress")
    assert store.list_tasks(statuses=["pending"]) == []


@pytest.mark.slow
def test_concurrent_appends_get_contiguous_seqs(store: RedisStore, redis_url: str) -> None:
    results = run_workers(redis_url, store.workspace, "emit", 20, procs=4)
    seqs = sorted(s for r in results for s in r)
    assert seqs == list(range(1, 161))
    assert [e.seq for e in store.read_events("race")] == seqs
    assert store.c.client.xlen(store.c.key("events", "race", "live")) == 7


# -- retries that must not apply a write twice -----------------------------------------------
def test_lost_reply_does_not_apply_an_update_twice(store: RedisStore) -> None:
    import redis

    store.create_task(Task("1", "x"))
    real = store.c.watched
    failures: list[int] = []

    def reply_lost(keys: list[str], step: object) -> object:
        result = real(keys, step)
        if not failures:
            failures.append(1)
            raise redis.ConnectionError("connection reset after EXEC")
        return result

    store.c.watched = reply_lost  # type: ignore[method-assign]
    assert store.update_task("1", bump).metrics == {"n": 1}
    assert failures == [1]
    assert store.get_task("1").metrics == {"n": 1}


def test_lost_reply_does_not_append_twice(store: RedisStore) -> None:
    import redis

    store.append_events("c", [Event("c", "x")], keep=5)
    real = store.c.script("append", "")
    failures: list[int] = []

    def reply_lost(**kwargs: object) -> object:
        result = real(**kwargs)
        if not failures:
            failures.append(1)
            raise redis.TimeoutError("reply lost")
        return result

    store.c.scripts["append"] = reply_lost  # type: ignore[assignment]
    assert [e.seq for e in store.append_events("c", [Event("c", "y")], keep=5)] == [2]
    assert [e.type for e in store.read_events("c")] == ["x", "y"]


# -- connections, URLs, outages ---------------------------------------------------------------
def test_unreachable_url_fails_cleanly_with_password_hidden() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    s = open_store(url, retry_seconds=0.2)
    with pytest.raises(BackendUnavailable) as info:
        s.get_task("1")
    message = str(info.value)
    assert "hunter2" not in message
    assert "redis://:***@127.0.0.1:" in message
    assert "unreachable" in message
    assert info.value.exit_code == 5
    assert "hunter2" not in s.location
    s.close()


def test_rediss_url_reports_connection_failure(redis_server: RedisServer) -> None:
    closed = open_store(f"rediss://:pw@127.0.0.1:{free_port()}/0", retry_seconds=0.2)
    with pytest.raises(BackendUnavailable, match=r"rediss://:\*\*\*@"):
        closed.list_tasks()
    closed.close()
    # TLS against a plain server: the handshake fails or times out, reported the same way
    plain = open_store(
        f"rediss://127.0.0.1:{redis_server.port}/0", retry_seconds=0.2, socket_timeout=0.3
    )
    with pytest.raises(BackendUnavailable):
        plain.list_tasks()
    plain.close()


def test_unix_socket_url(unix_redis_server: RedisServer) -> None:
    assert unix_redis_server.url.startswith("unix:///")
    s = open_store(unix_redis_server.url)
    s.create_task(Task("1", "over a socket"))
    assert s.get_task("1").title == "over a socket"
    assert s.location == unix_redis_server.url
    s.close()


def test_password_url(password_redis_server: RedisServer) -> None:
    good = open_store(password_redis_server.url)
    good.create_task(Task("1", "x"))
    assert good.get_task("1").title == "x"
    assert "s3cret-pw" not in good.location
    good.close()
    for url in (
        password_redis_server.url.replace("s3cret-pw", "wrong"),
        password_redis_server.url.replace(":s3cret-pw@", ""),
    ):
        bad = open_store(url)
        with pytest.raises(BackendUnavailable, match="refused access") as info:
            bad.get_task("1")
        assert "wrong" not in str(info.value)
        bad.close()


def test_bad_urls_and_names_are_refused() -> None:
    with pytest.raises(InvalidInput):
        open_store("redis://127.0.0.1:notaport/0")
    with pytest.raises(InvalidInput):
        open_store("redis://127.0.0.1:1/0", "bad{name}")
    from agentcoord.store.redis.store import RedisStore

    assert RedisStore("redis://h/0?workspace=team").workspace == "team"


def test_outage_then_recovery() -> None:
    require_binary()
    server = RedisServer().start()
    try:
        s = open_store(server.url, retry_seconds=0.2)
        s.create_task(Task("1", "x"))
        follower = open_store(server.url, s.workspace, retry_seconds=10)
        feed = follower.watch(timeout=10)

        def server_dies(task: Task) -> Task:  # between WATCH and EXEC
            server.stop(cleanup=False)
            return bump(task)

        # an outage, not a write conflict: BackendUnavailable after the retry budget, never
        # LockTimeout after the (longer) conflict budget
        with pytest.raises(BackendUnavailable, match="unreachable"):
            s.update_task("1", server_dies)
        with pytest.raises(BackendUnavailable, match="unreachable"):
            s.get_task("1")
        server.start()  # same port, empty (no persistence)
        first = next(feed)  # hints sent while away are lost: the feed says so
        assert [(c.kind, c.action) for c in first] == [("store", "reconnected")]
        s.create_task(Task("2", "after"))
        assert s.get_task("2").title == "after"
        seen: list[tuple[str, str]] = []
        while ("task", "2") not in seen:
            seen += [(c.kind, c.key) for c in next(feed)]
        s.close()
        follower.close()
    finally:
        server.stop()


def test_store_import_does_not_import_redis() -> None:
    code = (
        "import sys, agentcoord.store, agentcoord.store.redis.store; "
        "assert 'redis' not in sys.modules, 'redis imported eagerly'"
    )
    env = dict(os.environ, PYTHONPATH=SRC)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
