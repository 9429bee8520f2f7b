"""``agentcoord.ops.doctor``: each invariant it checks, on both backends where the invariant is
backend-neutral, what ``fix`` repairs, and that a clean workspace stays clean."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from agentcoord.api import Coordinator
from agentcoord.core.models import Event, Task
from agentcoord.store.markdown.store import MarkdownStore

from ..conftest import MARKDOWN_ONLY, FakeClock, dead_pid


def kinds(coord: Coordinator) -> list[tuple[str, str]]:
    return sorted((v.kind, v.key) for v in coord.doctor.check())


def forge(coord: Coordinator, task_id: str, **fields: object) -> None:
    """Write fields straight into the record, around the domain rules (a hand edit)."""

    def fn(task: Task) -> Task:
        for name, value in fields.items():
            setattr(task, name, value)
        return task

    coord.store.update_task(task_id, fn)


def busy_board(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("a1")
    coord.tasks.create("one", id="t1")
    coord.tasks.create("two", id="t2", depends_on=["t1"])
    coord.tasks.claim("t1", agent="a1")
    coord.tasks.progress("t1", agent="a1", percent=50)
    coord.events.emit("ch", "tick")
    coord.events.ack("ch", "me", 1)
    coord.contexts.put("p", "d", {"a": 1})
    clock.advance(10)


def test_a_healthy_workspace_has_no_violation(coord: Coordinator, clock: FakeClock) -> None:
    busy_board(coord, clock)
    assert coord.doctor.check() == []
    assert coord.doctor.fix() == []


def test_violation_to_dict_shape(coord: Coordinator) -> None:
    coord.tasks.create("one", id="t1")
    forge(coord, "t1", attempts=7, max_attempts=3)
    (v,) = coord.doctor.check()
    data = v.to_dict()
    assert set(data) == {"kind", "key", "file", "message", "repairable"}
    assert (data["kind"], data["key"], data["repairable"]) == ("attempts", "t1", False)
    assert "7/3" in data["message"]
    if isinstance(coord.store, MarkdownStore):
        assert data["file"] == coord.store.path("task-t1.md")


def test_expired_lease_is_repaired_by_reaping(coord: Coordinator, clock: FakeClock) -> None:
    busy_board(coord, clock)
    clock.advance(3600)
    assert kinds(coord) == [("expired_lease", "t1")]
    assert coord.doctor.fix() == ["reaped task t1: lease expired, now pending"]
    assert coord.doctor.check() == []
    assert coord.agents.get("a1").active == []


def test_lease_fields_must_match_the_state(coord: Coordinator, clock: FakeClock) -> None:
    busy_board(coord, clock)
    coord.tasks.create("three", id="t3")
    forge(coord, "t1", lease_expires=None)
    forge(coord, "t3", lease_expires=clock.now + 60)
    found = kinds(coord)
    assert ("lease", "t1") in found and ("lease", "t3") in found
    assert not [v for v in coord.doctor.check() if v.kind == "lease" and v.repairable]


def test_epoch_of_a_granted_task(coord: Coordinator, clock: FakeClock) -> None:
    busy_board(coord, clock)
    forge(coord, "t1", epoch=0)
    assert ("epoch", "t1") in kinds(coord)


def test_epoch_below_a_logged_grant(coord: Coordinator, clock: FakeClock) -> None:
    busy_board(coord, clock)
    coord.tasks.release("t1", agent="a1")
    coord.tasks.claim("t1", agent="a1")  # epoch 2, logged
    forge(coord, "t1", epoch=1)  # as if the epoch went back
    assert ("epoch", "t1") in kinds(coord)


def test_missing_dependency_and_cycle(coord: Coordinator) -> None:
    coord.tasks.create("a", id="a")
    coord.tasks.create("b", id="b", depends_on=["a"])
    forge(coord, "a", depends_on=["b"])
    coord.tasks.create("c", id="c")
    forge(coord, "c", depends_on=["ghost"])
    found = coord.doctor.check()
    assert ("dependency", "c") in [(v.kind, v.key) for v in found]
    (cycle,) = [v for v in found if v.kind == "cycle"]
    assert cycle.key == "a" and "a -> b -> a" in cycle.message


def test_archived_dependencies_count_as_present(coord: Coordinator, clock: FakeClock) -> None:
    coord.tasks.create("a", id="a")
    coord.tasks.create("b", id="b", depends_on=["a"])
    coord.agents.register("x")
    coord.tasks.claim("a", agent="x")
    coord.tasks.complete("a", agent="x")
    clock.advance(2 * 86400)
    coord.maintenance.cleanup()
    with pytest.raises(Exception, match="no task"):
        coord.tasks.get("a")
    assert coord.doctor.check() == []


def test_blocked_needs_a_failed_dependency(coord: Coordinator) -> None:
    coord.tasks.create("a", id="a")
    forge(coord, "a", status="blocked", blocked_reason="by hand")
    assert kinds(coord) == [("blocked", "a")]


def test_dependents_of_a_failed_task_are_blocked_by_fix(coord: Coordinator) -> None:
    coord.tasks.create("a", id="a")
    coord.tasks.create("b", id="b", depends_on=["a"])
    coord.tasks.create("c", id="c", depends_on=["b"])
    forge(coord, "a", status="failed")  # failed, but its dependents were never blocked
    assert kinds(coord) == [("unblocked", "b"), ("unblocked", "c")]
    assert coord.doctor.fix() == [
        "blocked task b: dependency a is failed",
        "blocked task c: dependency a is failed",
    ]
    assert coord.doctor.check() == []
    assert coord.tasks.get("c").blocked_reason == "dependency a is failed"


def test_create_on_a_blocked_dependency_blocks_the_new_task(coord: Coordinator) -> None:
    coord.tasks.create("a", id="a")
    coord.tasks.create("b", id="b", depends_on=["a"])
    coord.agents.register("x")
    coord.tasks.claim("a", agent="x")
    coord.tasks.fail("a", agent="x", error="boom")
    assert coord.tasks.get("b").status == "blocked"
    assert coord.tasks.create("c", id="c", depends_on=["b"]).status == "blocked"


def test_agent_views_are_rebuilt_by_fix(coord: Coordinator, clock: FakeClock) -> None:
    busy_board(coord, clock)

    def wrong(agent):  # type: ignore[no-untyped-def]
        agent.active = [{"id": "ghost"}]
        return agent

    coord.store.update_agent("a1", wrong)
    assert kinds(coord) == [("agent_view", "a1")]
    assert coord.doctor.fix() == ["rebuilt the task views of agent a1"]
    assert coord.doctor.check() == []
    assert [e["id"] for e in coord.agents.get("a1").active] == ["t1"]


def test_event_gaps_and_cursor_beyond_the_log(coord: Coordinator) -> None:
    importer = getattr(coord.store, "import_events", None)
    if importer is None:
        pytest.skip("this store cannot import events with their seqs")
    importer("ch", [Event("ch", "t", seq=1, time=1.0), Event("ch", "t", seq=3, time=2.0)], keep=10)
    coord.store.advance_cursor("ch", "me", 7)
    found = {v.kind: v for v in coord.doctor.check()}
    assert set(found) == {"event_seq", "cursor"}
    assert "2..2 missing" in found["event_seq"].message
    assert "cursor of me is 7 > last seq 3" in found["cursor"].message


# -- markdown files ------------------------------------------------------------------------------


@MARKDOWN_ONLY
def test_unreadable_files_are_reported_with_path_and_line(coord: Coordinator) -> None:
    root = Path(coord.store.location)
    coord.tasks.create("ok", id="t1")
    (root / "task-bad.md").write_text("# Task: x\n\n**Task ID**: bad\n**Status**: weird\n")
    (root / "agent-zed.md").write_text("nonsense\n")
    (root / ".state").mkdir(exist_ok=True)
    (root / ".state" / "cursors-ch.json").write_text("{nope")
    (root / ".state" / "counter-task").write_text("many\n")
    found = {v.key: v for v in coord.doctor.check()}
    assert {k: v.kind for k, v in found.items()} == {
        "task-bad.md": "corrupt",
        "agent-zed.md": "corrupt",
        "cursors-ch.json": "corrupt",
        "counter-task": "corrupt",
    }
    assert found["task-bad.md"].message.startswith(f"{root}/task-bad.md:4: unknown status")
    assert not any(v.repairable for v in found.values())
    assert coord.doctor.fix() == []  # never "repaired": a person decides
    assert (root / "task-bad.md").read_text().endswith("weird\n")


@MARKDOWN_ONLY
def test_orphaned_temp_files_are_removed_by_fix(coord: Coordinator) -> None:
    root = Path(coord.store.location)
    coord.tasks.create("ok", id="t1")
    dead = root / f".task-t1.md.tmp-{dead_pid()}-deadbeef"
    live = root / f".task-t2.md.tmp-{os.getpid()}-cafebabe"
    old = root / ".state" / f".counter-task.tmp-{os.getpid()}-0badf00d"
    old.parent.mkdir(exist_ok=True)
    for path in (dead, live, old):
        path.write_text("partial")
    os.utime(old, (1, 1))  # a live pid, but far older than any write takes
    assert kinds(coord) == sorted([("temp_file", dead.name), ("temp_file", old.name)])
    assert sorted(coord.doctor.fix()) == sorted(
        f"removed orphaned temp file {p}" for p in (dead, old)
    )
    assert not dead.exists() and not old.exists() and live.exists()
    live.unlink()
    assert coord.doctor.check() == []


@MARKDOWN_ONLY
def test_a_held_lock_is_reported_with_its_holder(coord: Coordinator) -> None:
    coord.tasks.create("ok", id="t1")
    lock = Path(coord.store.location) / ".locks" / "task-t1.lock"
    with open(lock, "rb") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        found = coord.doctor.check()
    assert [(v.kind, v.key) for v in found] == [("lock_held", "task-t1.lock")]
    assert f"process {os.getpid()}" in found[0].message
    assert coord.doctor.check() == []  # released with the fd


@MARKDOWN_ONLY
def test_a_stale_index_entry_is_reported(coord: Coordinator) -> None:
    """The index is keyed by (mtime, size, inode): a hand edit that keeps all three (here
    forged) would make listings lie; the doctor compares it with the files."""
    import json

    coord.tasks.create("ok", id="t1")
    coord.tasks.list()
    index = Path(coord.store.location) / ".state" / "index-task.json"
    data = json.loads(index.read_text())
    row = data["entries"]["task-t1.md"]
    row[3 + row[3:].index("pending")] = "complete"
    index.write_text(json.dumps(data))
    assert kinds(coord) == [("index", "t1")]
    assert coord.doctor.fix() == ["rebuilt the task index (from the task records)"]
    assert coord.doctor.check() == []
