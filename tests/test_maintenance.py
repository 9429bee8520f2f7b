"""``cleanup``, ``stale`` and ``doctor``: domain (every backend, fake clock) and CLI."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from agentcoord.api import Coordinator
from agentcoord.cli.main import main
from agentcoord.errors import NotFound
from agentcoord.store.markdown.store import MarkdownStore
from agentcoord.workspace import Workspace

from .conftest import FakeClock, dead_pid

HOUR = 3600.0


def _board(coord: Coordinator, clock: FakeClock) -> None:
    """Old finished tasks, an open one, a silent agent and one that still holds a task."""
    tasks = coord.tasks
    for tid in ("done", "broken", "gone", "open", "holds", "dep-src"):
        tasks.create(f"task {tid}", id=tid)
    tasks.create("waits on dep-src", id="waiter", depends_on=["dep-src"])
    coord.agents.register("old")
    coord.agents.register("busy")
    tasks.claim("done", agent="old")
    tasks.complete("done", agent="old", result="ok")
    tasks.claim("broken", agent="old")
    tasks.fail("broken", agent="old", error="boom")
    tasks.cancel("gone", reason="not needed")
    tasks.claim("dep-src", agent="old")
    tasks.fail("dep-src", agent="old", error="boom")
    # dep-src's failure blocks "waiter"; make it pending again by hand so that archiving
    # dep-src would wrongly read as "dependency complete".
    coord.store.update_task("waiter", _reopen)
    tasks.claim("holds", agent="busy")
    clock.advance(25 * HOUR)
    coord.agents.register("fresh")
    tasks.create("recent", id="recent")
    tasks.claim("recent", agent="fresh")
    tasks.complete("recent", agent="fresh")


def _reopen(task):  # type: ignore[no-untyped-def]
    task.status, task.blocked_reason = "pending", None
    return task


def _keys(actions: list, what: str, kind: str) -> list[str]:  # type: ignore[type-arg]
    return [a.key for a in actions if a.what == what and a.kind == kind]


def test_cleanup_dry_run_lists_and_changes_nothing(coord: Coordinator, clock: FakeClock) -> None:
    _board(coord, clock)
    before_tasks = sorted(t.id for t in coord.store.list_tasks())
    before_agents = sorted(a.name for a in coord.store.list_agents())
    actions = coord.maintenance.cleanup(dry_run=True)
    assert sorted(_keys(actions, "archive", "task")) == ["broken", "done", "gone"]
    assert _keys(actions, "skip", "task") == ["dep-src"]
    assert _keys(actions, "archive", "agent") == ["old"]
    assert _keys(actions, "skip", "agent") == ["busy"]
    assert not any(a.done for a in actions)
    assert all({"kind", "key", "what", "detail", "done"} == a.to_dict().keys() for a in actions)
    assert sorted(t.id for t in coord.store.list_tasks()) == before_tasks
    assert sorted(a.name for a in coord.store.list_agents()) == before_agents


def test_cleanup_archives_old_finished_tasks_and_silent_agents(
    coord: Coordinator, clock: FakeClock
) -> None:
    _board(coord, clock)
    actions = coord.maintenance.cleanup()
    archived = sorted(_keys(actions, "archive", "task"))
    assert archived == ["broken", "done", "gone"]
    assert all(a.done for a in actions if a.what == "archive")
    for tid in archived:
        with pytest.raises(NotFound):
            coord.tasks.get(tid)
    for tid in ("open", "holds", "recent", "dep-src", "waiter"):
        coord.tasks.get(tid)
    assert sorted(a.name for a in coord.store.list_agents()) == ["busy", "fresh"]
    # A second run has nothing left to do but the same skips.
    again = coord.maintenance.cleanup()
    assert [a.what for a in again if a.kind in ("task", "agent")] == ["skip", "skip"]
    # stale_hours bounds what counts as old.
    clock.advance(30 * HOUR)
    later = coord.maintenance.cleanup(dry_run=True, stale_hours=48)
    assert _keys(later, "archive", "task") == []
    assert _keys(coord.maintenance.cleanup(dry_run=True, stale_hours=1), "archive", "task") == [
        "recent"
    ]


def test_cleanup_rechecks_under_the_lock(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("a")
    coord.tasks.create("t", id="t")
    clock.advance(25 * HOUR)
    real = coord.store.archive_agent
    calls: list[str] = []

    def archive_after_heartbeat(name, check):  # type: ignore[no-untyped-def]
        coord.agents.heartbeat(name)  # the agent comes back between scan and archive
        calls.append(name)
        return real(name, check)

    coord.store.archive_agent = archive_after_heartbeat  # type: ignore[method-assign]
    actions = coord.maintenance.cleanup()
    assert calls == ["a"]
    assert _keys(actions, "archive", "agent") == []
    assert [a.name for a in coord.store.list_agents()] == ["a"]


def test_cleanup_validates_arguments(coord: Coordinator) -> None:
    from agentcoord.errors import InvalidInput

    with pytest.raises(InvalidInput):
        coord.maintenance.cleanup(stale_hours=-1)
    with pytest.raises(InvalidInput):
        coord.maintenance.cleanup(keep_events=-5)


def test_cleanup_rotation_and_orphans_go_through_the_store(coord: Coordinator) -> None:
    coord.events.emit("alpha", "x")
    coord.events.emit("beta", "x")
    rotated: list[tuple[str, int, bool]] = []
    swept: list[tuple[float, bool]] = []

    def rotate_events(channel: str, *, keep: int, dry_run: bool = False) -> int:
        rotated.append((channel, keep, dry_run))
        return 3 if channel == "alpha" else 0

    def remove_orphans(*, min_age: float, dry_run: bool = False) -> list[str]:
        swept.append((min_age, dry_run))
        return [".task-1.md.tmp-4242-deadbeef"]

    coord.store.rotate_events = rotate_events  # type: ignore[attr-defined]
    coord.store.remove_orphans = remove_orphans  # type: ignore[attr-defined]
    actions = coord.maintenance.cleanup(dry_run=True, keep_events=10)
    assert rotated == [("alpha", 10, True), ("beta", 10, True)]
    assert swept == [(60.0, True)]
    rows = [a.to_dict() for a in actions if a.kind in ("event", "file")]
    assert rows == [
        {
            "kind": "event",
            "key": "alpha",
            "what": "rotate",
            "detail": "3 event(s) to the archive, keeping the newest 10",
            "done": False,
        },
        {
            "kind": "file",
            "key": ".task-1.md.tmp-4242-deadbeef",
            "what": "remove",
            "detail": "orphaned temp file of a dead writer",
            "done": False,
        },
    ]
    coord.maintenance.cleanup()
    assert rotated[-1] == ("beta", 100, False)
    assert swept[-1] == (60.0, False)


def test_cleanup_rotates_event_logs_for_real(coord: Coordinator) -> None:
    for i in range(12):
        coord.events.emit("ch", "e", [("i", str(i))])
    assert _keys(coord.maintenance.cleanup(dry_run=True, keep_events=5), "rotate", "event") == [
        "ch"
    ]
    assert [e.seq for e in coord.events.tail("ch", n=100)] == list(range(1, 13))
    actions = coord.maintenance.cleanup(keep_events=5)
    assert [a.detail for a in actions if a.what == "rotate"] == [
        "7 event(s) to the archive, keeping the newest 5"
    ]
    assert [e.seq for e in coord.events.tail("ch", since=0)] == list(range(1, 13))
    assert coord.events.emit("ch", "e").seq == 13
    if coord.workspace is not None and isinstance(coord.store, MarkdownStore):
        live = (Path(coord.workspace.root) / "events-ch.md").read_text()
        assert live.count("\n## Event:") == 6


def test_cleanup_removes_orphaned_temp_files(workspace: Workspace, clock: FakeClock) -> None:
    from agentcoord.workspace import Config

    store = MarkdownStore(workspace.root, durable=False)
    coord = Coordinator(store, config=Config(), workspace=workspace, clock=clock)
    root = Path(workspace.root)
    old = time.time() - 3600
    orphan = root / f".task-1.md.tmp-{dead_pid()}-deadbeef"
    live_writer = root / f".task-2.md.tmp-{os.getpid()}-cafebabe"
    young = root / f".task-3.md.tmp-{dead_pid()}-0badf00d"
    for path in (orphan, live_writer, young):
        path.write_text("partial")
    for path in (orphan, live_writer):
        os.utime(path, (old, old))
    planned = [a.key for a in coord.maintenance.cleanup(dry_run=True) if a.kind == "file"]
    assert [os.path.basename(k) for k in planned] == [orphan.name]
    assert orphan.exists()
    done = [a for a in coord.maintenance.cleanup() if a.kind == "file"]
    assert [os.path.basename(a.key) for a in done] == [orphan.name] and done[0].done
    assert not orphan.exists() and live_writer.exists() and young.exists()


# -- stale --------------------------------------------------------------------------------------
def test_stale_lists_old_records_of_every_kind(coord: Coordinator, clock: FakeClock) -> None:
    coord.tasks.create("old open", id="old-open")
    coord.tasks.create("old done", id="old-done")
    coord.agents.register("a1")
    coord.tasks.claim("old-done", agent="a1")
    coord.tasks.complete("old-done", agent="a1")
    coord.agents.register("sleepy")
    coord.events.emit("quiet", "x")
    coord.contexts.put("p", "old", {})
    clock.advance(2 * HOUR)
    coord.tasks.create("new", id="new")
    coord.agents.register("awake")
    coord.events.emit("busy", "x")
    coord.contexts.put("p", "new", {})
    rows = coord.maintenance.stale(HOUR)
    found = {(r.kind, r.key) for r in rows}
    assert found == {
        ("task", "old-open"),
        ("agent", "a1"),
        ("agent", "sleepy"),
        ("event", "quiet"),
        ("context", "p-old"),
    }
    row = next(r.to_dict() for r in rows if r.kind == "task")
    assert row["age"] == 7200 and row["age_text"] == "2h" and row["status"] == "pending"
    assert row["updated"] == "2025-10-09T08:53:20Z"
    assert coord.maintenance.stale(3 * HOUR) == []
    assert len(coord.maintenance.stale(0)) == 9  # 2 open tasks, 3 agents, 2 channels, 2 contexts


# -- doctor -------------------------------------------------------------------------------------
def test_doctor_reports_then_fixes(coord: Coordinator, clock: FakeClock) -> None:

    coord.agents.register("a1")
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="a1", lease_seconds=60)

    def forget(agent):  # type: ignore[no-untyped-def]
        agent.active = []
        return agent

    coord.store.update_agent("a1", forget)  # a view out of step with the task records
    assert [(v.kind, v.key) for v in coord.doctor.check()] == [("agent_view", "a1")]
    assert coord.store.get_agent("a1").active == []
    coord.doctor.fix()
    assert [e["id"] for e in coord.store.get_agent("a1").active] == ["t1"]
    clock.advance(120)
    assert [(v.kind, v.key) for v in coord.doctor.check()] == [("expired_lease", "t1")]
    assert coord.tasks.get("t1").status == "in_progress"
    coord.doctor.fix()
    assert coord.tasks.get("t1").status == "pending"
    assert coord.doctor.check() == []


# -- CLI ----------------------------------------------------------------------------------------
@pytest.fixture
def run(workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COORD_DIR", workspace.root)
    monkeypatch.delenv("COORD_URL", raising=False)

    def _run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def test_cli_cleanup_stale_doctor(run, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("cleanup", "--dry-run")
    assert (code, out.strip()) == (0, "nothing to clean up")
    run("task", "create", "t", "--id", "t1")
    run("event", "emit", "ch", "x")
    code, out, _ = run("--json", "cleanup", "--dry-run", "--stale-hours", "0")
    assert code == 0
    rows = json.loads(out)
    assert all({"kind", "key", "what", "detail", "done"} == r.keys() for r in rows)
    code, out, _ = run("--json", "stale", "--max-age", "0s")
    assert code == 0
    assert {(r["kind"], r["key"]) for r in json.loads(out)} == {("task", "t1"), ("event", "ch")}
    code, out, _ = run("stale")
    assert (code, out.strip()) == (0, "nothing older than 1h")
    code, out, _ = run("--json", "doctor")
    assert (code, json.loads(out)) == (0, {"found": [], "fixed": [], "remaining": []})
    bad = Path(workspace.root) / "task-bad.md"
    bad.write_text("# Task: bad\n\n**Task ID**: bad\n**Status**: exploded\n")
    code, out, _ = run("--json", "doctor", "--fix")
    assert code == 6
    rows = json.loads(out)["remaining"]
    assert rows[0]["kind"] == "corrupt"
    assert "task-bad.md:4" in rows[0]["message"]
    assert bad.exists()
    code, out, _ = run("cleanup")
    assert code == 0 and "task-bad.md" in out


@pytest.mark.parametrize(
    "args",
    [
        ["stale", "--max-age", "soon"],
        ["stale", "--limit", "-1"],
        ["cleanup", "--stale-hours", "-1"],
        ["cleanup", "--stale-hours", "nan"],
        ["cleanup", "--keep-events", "x"],
        ["cleanup", "--bogus"],
        ["doctor", "extra"],
    ],
)
def test_cli_bad_input(run, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run("--json", *args)
    assert (code, out) == (2, "")
    assert json.loads(err)["error"]["code"] == "invalid_input"
