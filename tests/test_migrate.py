"""``coord migrate``: markdown -> Redis -> markdown, losslessly (issue 6 "Must show").

Files that legitimately differ after a round trip are documented in docs/redis.md: the lines
derived from the clock at rendering time (``- **Duration**:``/``- **Remaining**:`` of running
tasks and active agent tasks, ``Last updated:`` of live event logs), plus the files that are not
records (``config.json``, ``.locks/``, the ``.state/index-task.json`` cache).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from agentcoord.api import Coordinator
from agentcoord.core.models import Event, Task
from agentcoord.errors import AlreadyExists, CorruptData, InvalidInput
from agentcoord.ops.migrate import migrate
from agentcoord.store.markdown.store import MarkdownStore
from agentcoord.workspace import Config, init_workspace, load_config

from .conftest import COORD, T0, FakeClock
from .redis_server import RedisServer

pytestmark = pytest.mark.redis

#: Lines rendered from the clock at write time (docs/redis.md, "What a migration changes").
DERIVED = re.compile(r"^(- \*\*(Duration|Remaining)\*\*: .*|Last updated: .*)$")
NOT_RECORDS = ("config.json", ".state/index-task.json")


def tree(root: str) -> dict[str, str]:
    out = {}
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(".locks/") and rel not in NOT_RECORDS:
            out[rel] = path.read_text(encoding="utf-8")
    return out


def assert_same_files(a: str, b: str) -> None:
    left, right = tree(a), tree(b)
    assert sorted(left) == sorted(right)
    for name, text in left.items():
        if text == right[name]:
            continue
        old, new = text.splitlines(), right[name].splitlines()
        assert len(old) == len(new), name
        for x, y in zip(old, new, strict=True):
            assert x == y or (DERIVED.match(x) and DERIVED.match(y)), (name, x, y)


def redis_url(server: RedisServer) -> str:
    return f"{server.url}?workspace=m-{uuid.uuid4().hex[:10]}"


def env(**extra: str) -> dict[str, str]:
    out = dict(os.environ, COORD_FSYNC="0", **extra)
    out.pop("COORD_URL", None)
    out.pop("COORD_DIR", None)
    return out


def coord_cli(*args: str, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*COORD, *args], env=env(), capture_output=True, text=True, check=False)
    if check is not None:
        assert proc.returncode == check, (proc.stdout, proc.stderr)
    return proc


def populate(root: str, clock: FakeClock) -> Coordinator:
    """A workspace with every kind of state: tasks in each state (leases, deps, logs, metrics,
    a hand-added section), agents (one with an open breaker), archived tasks (one id reused),
    an archived agent, rotated events over several days, cursors, context, metrics, counters."""
    store = MarkdownStore(root, durable=False, clock=clock)
    coord = Coordinator(store, config=Config({"keep_events": 5}), clock=clock)
    tasks, agents = coord.tasks, coord.agents
    for name in ("alice", "bob", "carol"):
        agents.register(name)
    first = tasks.create("Train model on Alice dataset", project="proj-1", priority=5)
    tasks.create("Evaluate", id="eval", depends_on=[first.id])
    tasks.create("Reused id", id="reused")
    for i in range(4):
        tasks.create(f"batch {i}", project="proj-2")
    held = tasks.claim(first.id, agent="alice", lease_seconds=900)
    clock.advance(60)
    tasks.progress(held.id, agent="alice", current=3500, total=10000, metrics={"loss": 0.42})
    tasks.log(held.id, "Checkpoint saved at step 3500", agent="alice")
    for _ in range(3):  # bob's breaker opens
        t = tasks.claim(agent="bob")
        tasks.fail(t.id, agent="bob", error="GPU out of memory")
    done = tasks.claim("reused", agent="carol")
    tasks.complete(done.id, agent="carol", result="ok")

    def hand_section(task: Task) -> Task:
        task.extra_sections.append(("Review Notes", "checked by a person"))
        # A title from before SPEC 16 refused newlines (or a hand edit): still migrated exactly.
        task.title = "Evaluate | *checkpoint*\n## not a heading"
        return task

    store.update_task("eval", hand_section)
    for _day in range(3):
        for i in range(4):
            coord.events.emit("training", "training_step", [("Step", str(i)), ("Loss", "0.4")])
            clock.advance(3600)
        clock.advance(86400)
    coord.events.emit("errors", "oom", agent="bob")
    coord.events.ack("training", "dashboard", 7)
    coord.events.ack("errors", "timer", 1)
    coord.contexts.put("proj1", "dataset", {"segments": 1847}, text="Ready for training.")
    coord.metrics.write()
    clock.advance(2 * 86400)
    coord.maintenance.cleanup()  # archives finished tasks (reused), silent agents (carol)
    tasks.create("Reused id, second life", id="reused")
    done = tasks.claim("reused", agent="alice")
    tasks.complete(done.id, agent="alice")
    clock.advance(2 * 86400)
    coord.maintenance.cleanup()  # archive/task-reused-<stamp>.md next to task-reused.md
    clock.advance(600)
    return coord


@pytest.fixture
def source(tmp_path: Path, clock: FakeClock) -> Coordinator:
    ws, _ = init_workspace(str(tmp_path / "src"))
    return populate(ws.root, clock)


def test_populated_workspace_has_every_kind_of_state(source: Coordinator) -> None:
    root = Path(source.store.location)
    archive = sorted(p.name for p in (root / "archive").iterdir())
    assert "task-reused.md" in archive
    assert any(re.fullmatch(r"task-reused-\d{8}T\d{6}\.md", n) for n in archive)
    assert "agent-carol.md" in archive
    assert sum(n.startswith("events-training-") for n in archive) >= 2
    assert (root / "metrics-performance.md").exists()
    assert (root / ".state" / "cursors-training.json").exists()


def test_round_trip_markdown_redis_markdown_gives_identical_files(
    source: Coordinator, redis_server: RedisServer, tmp_path: Path, clock: FakeClock
) -> None:
    from agentcoord.store.redis.store import RedisStore

    redis = RedisStore(redis_url(redis_server), clock=clock)
    back_ws, _ = init_workspace(str(tmp_path / "back"))
    back = MarkdownStore(back_ws.root, durable=False, clock=clock)
    first = migrate(source.store, redis)
    second = migrate(redis, back)
    assert first["counts"] == second["counts"]
    assert first["counts"]["archived_tasks"] >= 2
    assert_same_files(source.store.location, back_ws.root)

    # The records themselves are equal, field by field, on all three stores.
    def by_id(tasks: list[Task]) -> list[Task]:
        return sorted(tasks, key=lambda t: t.id)

    for store in (redis, back):
        assert by_id(store.list_tasks()) == by_id(source.store.list_tasks())
        assert store.list_agents() == source.store.list_agents()
        assert store.list_contexts() == source.store.list_contexts()
        assert store.read_events("training") == source.store.read_events("training")
    for store in (redis, back):
        assert store.list_archived_tasks() == source.store.list_archived_tasks()
        assert store.list_archived_agents() == source.store.list_archived_agents()
    redis.close()


def test_round_trip_through_the_cli_and_config(
    source: Coordinator, redis_server: RedisServer, tmp_path: Path
) -> None:
    src = source.store.location
    url = redis_url(redis_server)
    out = coord_cli("--json", "--dir", src, "migrate", "--to", url)
    report = json.loads(out.stdout)
    assert report["backend"] == "redis"
    assert report["counts"]["tasks"] == len(source.store.list_tasks())
    assert report["config"] == os.path.join(src, "config.json")
    config = load_config(src)
    assert (config["backend"], config["url"]) == ("redis", url)
    # Every agent of the workspace now works on Redis: a new task lands there, not in files.
    created = json.loads(coord_cli("--json", "--dir", src, "task", "create", "after").stdout)
    assert not (Path(src) / f"task-{created['id']}.md").exists()
    coord_cli("--dir", src, "task", "show", created["id"])
    # Back to files, into a new directory: identical to the source plus that one task.
    back = str(tmp_path / "back")
    out = coord_cli("--dir", src, "migrate", "--to", back)
    assert "copied" in out.stdout
    (Path(back) / f"task-{created['id']}.md").unlink()
    counter = Path(src) / ".state" / "counter-task"
    counter.write_text(f"{int(counter.read_text()) + 1}\n")  # the id the new task took
    assert_same_files(src, back)
    assert load_config(src)["backend"] == "redis"  # another directory: config unchanged


def test_migrating_back_into_the_workspace_records_markdown_again(
    source: Coordinator, redis_server: RedisServer
) -> None:
    src = source.store.location
    coord_cli("--dir", src, "migrate", "--to", redis_url(redis_server))
    proc = coord_cli("--json", "--dir", src, "migrate", "--to", src, check=4)
    assert json.loads(proc.stderr.splitlines()[-1])["error"]["code"] == "already_exists"
    coord_cli("--dir", src, "migrate", "--to", src, "--force")
    config = load_config(src)
    assert config["backend"] == "markdown"
    assert config["url"] is None


def test_ids_seqs_and_cursors_continue_where_they_were(
    source: Coordinator, redis_server: RedisServer, clock: FakeClock
) -> None:
    from agentcoord.store.redis.store import RedisStore

    redis = RedisStore(redis_url(redis_server), clock=clock)
    migrate(source.store, redis)
    there = Coordinator(redis, config=Config({"keep_events": 5}), clock=clock)
    counter = int((Path(source.store.location) / ".state" / "counter-task").read_text())
    last = source.store.last_seq("training")
    assert redis.live_event_count("training") == source.store.live_event_count("training")
    for coord in (source, there):  # the same next steps on both give the same results
        assert coord.tasks.create("next").id == str(counter + 1)
        assert coord.events.emit("training", "x").seq == last + 1
        consumed = coord.events.consume("training", "dashboard")
        assert [e.seq for e in consumed] == list(range(8, last + 2))
        assert coord.events.cursor("errors", "timer") == 1
    redis.close()


def test_dry_run_changes_nothing(
    source: Coordinator, redis_server: RedisServer, tmp_path: Path
) -> None:
    from agentcoord.store.redis.store import RedisStore

    src = source.store.location
    before = tree(src)
    url = redis_url(redis_server)
    out = coord_cli("--json", "--dir", src, "migrate", "--to", url, "--dry-run", "--limit", "2")
    report = json.loads(out.stdout)
    assert report["dry_run"] is True
    assert report["config"] is None
    assert report["counts"]["events"] == 13
    assert len(report["names"]["tasks"]) == 2
    text = coord_cli("--dir", src, "migrate", "--to", str(tmp_path / "new"), "--dry-run").stdout
    assert "would copy" in text
    assert "nothing written (--dry-run)" in text
    assert not (tmp_path / "new").exists()
    target = RedisStore(url)
    assert target.record_names() == []
    target.close()
    assert tree(src) == before
    assert load_config(src)["backend"] == "markdown"


def test_non_empty_target_is_refused_without_force(
    source: Coordinator, redis_server: RedisServer
) -> None:
    from agentcoord.store.redis.store import RedisStore

    url = redis_url(redis_server)
    target = RedisStore(url)
    target.create_task(Task("stranger", "already there"))
    proc = coord_cli("--dir", source.store.location, "migrate", "--to", url, check=4)
    assert "not empty" in proc.stderr
    assert "--force" in proc.stderr
    with pytest.raises(AlreadyExists):
        migrate(source.store, target)
    assert [t.id for t in target.list_tasks()] == ["stranger"]
    # --dry-run --force says what it would replace, and replaces nothing.
    args = ("--json", "--dir", source.store.location, "migrate", "--to", url, "--dry-run")
    out = coord_cli(*args, "--force")
    assert json.loads(out.stdout)["replaced"] > 0
    assert [t.id for t in target.list_tasks()] == ["stranger"]
    coord_cli("--dir", source.store.location, "migrate", "--to", url, "--force")
    assert sorted(t.id for t in target.list_tasks()) == sorted(
        t.id for t in source.store.list_tasks()
    )
    target.close()


def test_bad_targets_are_refused(source: Coordinator, tmp_path: Path) -> None:
    src = source.store.location
    for target in (src, src + "/", "ftp://example.org/x"):
        proc = coord_cli("--json", "--dir", src, "migrate", "--to", target, check=2)
        assert json.loads(proc.stderr.splitlines()[-1])["error"]["code"] == "invalid_input"
    coord_cli("--dir", src, "migrate", check=2)  # --to is required
    coord_cli("--dir", src, "migrate", "--to", str(tmp_path / "x"), "--limit", "-1", check=2)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    coord_cli("--dir", src, "migrate", "--to", str(a_file), check=2)
    with pytest.raises(InvalidInput):
        migrate(source.store, source.store)


def test_unreadable_source_record_aborts_before_writing(
    source: Coordinator, redis_server: RedisServer
) -> None:
    from agentcoord.store.redis.store import RedisStore

    src = Path(source.store.location)
    (src / "task-broken.md").write_text("# Task: x\n\n**Status**: sideways\n")
    url = redis_url(redis_server)
    proc = coord_cli("--dir", str(src), "migrate", "--to", url, check=6)
    assert "task-broken.md" in proc.stderr
    target = RedisStore(url)
    assert target.record_names() == []
    target.close()
    with pytest.raises(CorruptData):
        migrate(source.store, target)


def test_large_channel_keeps_its_live_and_archived_split(
    redis_server: RedisServer, tmp_path: Path, clock: FakeClock
) -> None:
    from agentcoord.store.redis.store import RedisStore

    ws, _ = init_workspace(str(tmp_path / "big"))
    store = MarkdownStore(ws.root, durable=False, clock=clock)
    for batch in range(25):  # 2,500 events over several days, 100 in the live log
        events = [Event("ci", "build", time=T0 + 600 * (batch * 100 + i)) for i in range(100)]
        store.append_events("ci", events, keep=100)
    redis = RedisStore(redis_url(redis_server), clock=clock)
    migrate(store, redis)
    assert redis.live_event_count("ci") == 100
    assert redis.last_seq("ci") == 2500
    back_ws, _ = init_workspace(str(tmp_path / "back"))
    migrate(redis, MarkdownStore(back_ws.root, durable=False, clock=clock))
    assert_same_files(ws.root, back_ws.root)
    redis.close()


def test_redis_born_state_migrates_to_files(
    redis_server: RedisServer, tmp_path: Path, clock: FakeClock
) -> None:
    from agentcoord.store.redis.store import RedisStore

    clock.advance(0.25)  # sub-second times: files keep seconds (events: milliseconds)
    redis = RedisStore(redis_url(redis_server), clock=clock)
    coord = Coordinator(redis, config=Config(), clock=clock)
    coord.agents.register("dora")
    task = coord.tasks.create("born in redis")
    coord.tasks.claim(task.id, agent="dora")
    coord.events.emit("ops", "deploy", [("Where", "prod")])
    ws, _ = init_workspace(str(tmp_path / "files"))
    files = MarkdownStore(ws.root, durable=False, clock=clock)
    migrate(redis, files)
    got = files.get_task(task.id)
    assert (got.status, got.agent, got.epoch, got.created_at) == (
        "in_progress",
        "dora",
        1,
        int(T0),
    )
    assert files.read_events("ops") == redis.read_events("ops")
    assert files.next_id("task") == 2
    redis.close()


# -- the Redis side's extra parts -------------------------------------------------------------
def test_redis_data_written_before_the_head_index_is_listed_and_migrated(
    redis_server: RedisServer, tmp_path: Path, clock: FakeClock
) -> None:
    from agentcoord.store.redis.store import RedisStore

    redis = RedisStore(redis_url(redis_server), clock=clock)
    coord = Coordinator(redis, config=Config(), clock=clock)
    for i in range(5):
        coord.tasks.create(f"t{i}", priority=i)
    coord.tasks.claim(agent="a", register=True)  # the highest priority: task 5
    client = redis.c.client
    client.delete(redis.heads.key("pending"))  # as an earlier version left them
    client.hset(redis.heads.key("in_progress"), "5", "[not json")  # and one damaged
    heads = sorted(redis.list_task_heads(statuses=["pending", "in_progress"]), key=lambda h: h.id)
    assert [(h.id, h.status) for h in heads] == [
        ("1", "pending"),
        ("2", "pending"),
        ("3", "pending"),
        ("4", "pending"),
        ("5", "in_progress"),
    ]
    assert client.hlen(redis.heads.key("pending")) == 4  # rebuilt for next time
    assert coord.tasks.claim(agent="b", register=True).id == "4"
    assert sorted(h.id for h in redis.list_task_heads(statuses=["in_progress"])) == ["4", "5"]
    ws, _ = init_workspace(str(tmp_path / "files"))
    migrate(redis, MarkdownStore(ws.root, durable=False, clock=clock))
    assert len(list(Path(ws.root).glob("task-*.md"))) == 5
    redis.close()


@pytest.mark.parametrize("backend", ["markdown", "redis"])
def test_both_backends_check_event_arguments_alike(
    backend: str, redis_server: RedisServer, tmp_path: Path, clock: FakeClock
) -> None:
    """What migrate relies on: the same refusals and the same clock rule on both stores."""
    from agentcoord.store.base import Store
    from agentcoord.store.redis.store import RedisStore

    store: Store = (
        RedisStore(redis_url(redis_server), clock=clock)
        if backend == "redis"
        else MarkdownStore(init_workspace(str(tmp_path / "ws"))[0].root, clock=clock)
    )
    (event,) = store.append_events("c", [Event("c", "x")], keep=5)  # no time: the store's clock
    assert event.time == clock.now
    assert store.read_events("c")[0].time == clock.now
    for call in (
        lambda: store.read_events("c", after=-1),
        lambda: store.read_events("c", limit=-1),
        lambda: store.append_events("c", [Event("c", "x")], keep=-1),
        lambda: store.append_events("c", [Event("c", "bad type")], keep=5),
        lambda: store.append_events("c", [Event("c", "x", fields=[("", "v")])], keep=5),
        lambda: store.append_events("bad/channel", [Event("c", "x")], keep=5),
        lambda: store.read_events("../c"),
        lambda: store.advance_cursor("c", "bad name", 1),
        lambda: store.advance_cursor("c", "me", -1),
        lambda: store.get_cursor("c:x", "me"),
    ):
        with pytest.raises(InvalidInput):
            call()
    assert store.read_events("c", limit=0) == []
    assert store.last_seq("c") == 1
    store.close()


def test_a_target_written_to_during_the_migration_is_reported(
    source: Coordinator, redis_server: RedisServer, clock: FakeClock
) -> None:
    from agentcoord.errors import Conflict
    from agentcoord.store.redis.store import RedisStore

    target = RedisStore(redis_url(redis_server), clock=clock)
    real = target.create_task

    def and_someone_else(task: Task) -> None:  # an agent still writing to the target
        real(task)
        if task.id == "eval":
            real(Task("intruder", "written meanwhile"))

    target.create_task = and_someone_else  # type: ignore[method-assign]
    with pytest.raises(Conflict, match="changed during the migration"):
        migrate(source.store, target)
    target.close()


def test_unreachable_target_fails_with_exit_5_before_writing(source: Coordinator) -> None:
    from .redis_server import free_port

    url = f"redis://:{'pw-x'}@127.0.0.1:{free_port()}/0"
    before = tree(source.store.location)
    proc = coord_cli("--dir", source.store.location, "migrate", "--to", url, check=5)
    assert "redis://:***@127.0.0.1" in proc.stderr
    assert "pw-x" not in proc.stderr
    assert "did not finish" not in proc.stderr  # refused before writing anything
    assert tree(source.store.location) == before
