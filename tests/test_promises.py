"""The board's promises (SPEC section 4), each fault kind of issue 14 pinned on every backend:
a claim's lease belongs to that grant, "ready" is exactly what a claim takes, renewals report
exactly what they renewed, and once an operation's own write commits it has succeeded."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from agentcoord import errors
from agentcoord.api import Coordinator
from agentcoord.core.models import (
    BLOCKED,
    CANCELLED,
    COMPLETE,
    FAILED,
    IN_PROGRESS,
    PENDING,
    Task,
)

from .conftest import COORD, MARKDOWN_ONLY, FakeClock, coord_env


# -- 1. a claim's --lease applies to that grant only ----------------------------------------------
def test_a_claims_lease_ends_with_its_grant(coord: Coordinator, clock: FakeClock) -> None:
    coord.tasks.create("job", id="j1", lease_seconds=600)
    first = coord.tasks.claim("j1", agent="a", lease_seconds=2, register=True)
    assert first.lease_expires == clock.now + 2
    clock.advance(1)
    renewed = coord.tasks.progress("j1", agent="a", percent=10)  # renewals keep the grant's 2 s
    assert renewed.lease_expires == clock.now + 2
    released = coord.tasks.release("j1", agent="a")
    assert (released.lease_seconds, released.lease_grant) == (600, None)
    second = coord.tasks.claim("j1", agent="b", register=True)
    assert second.lease_expires == clock.now + 600  # the task's own lease, not a's 2 s
    assert coord.tasks.get("j1").lease_seconds == 600


@pytest.mark.parametrize("ending", ["complete", "fail", "reap", "cancel"])
def test_every_way_a_grant_ends_drops_its_lease_length(
    coord: Coordinator, clock: FakeClock, ending: str
) -> None:
    coord.tasks.create("job", id="j1", lease_seconds=300, max_attempts=5)
    coord.tasks.claim("j1", agent="a", lease_seconds=5, register=True)
    if ending == "complete":
        coord.tasks.complete("j1", agent="a")
    elif ending == "fail":
        coord.tasks.fail("j1", agent="a", error="boom")
    elif ending == "reap":
        clock.advance(6)
        coord.tasks.reap()
    else:
        coord.tasks.cancel("j1")
    task = coord.tasks.get("j1")
    assert (task.lease_expires, task.lease_grant, task.lease_seconds) == (None, None, 300)


def test_a_claim_after_expiry_gets_the_tasks_lease(coord: Coordinator, clock: FakeClock) -> None:
    coord.tasks.create("job", id="j1", lease_seconds=120)
    coord.tasks.claim("j1", agent="a", lease_seconds=1, register=True)
    clock.advance(2)
    taken = coord.tasks.claim(agent="b", register=True)
    assert (taken.id, taken.epoch, taken.lease_expires) == ("j1", 2, clock.now + 120)


# -- 2. "ready" is claimable now ----------------------------------------------------------------
def _board(coord: Coordinator, clock: FakeClock) -> None:
    """One task in every state a ready filter must judge."""
    tasks = coord.tasks
    tasks.create("ready", id="ready")
    tasks.create("dep", id="dep")
    tasks.create("waiting", id="waiting", depends_on=["dep"])
    tasks.create("held", id="held")
    tasks.claim("held", agent="x", lease_seconds=600, register=True)
    tasks.create("expired", id="expired")
    tasks.claim("expired", agent="x", lease_seconds=5, register=True)
    tasks.create("done", id="done")
    tasks.claim("done", agent="x", register=True)
    tasks.complete("done", agent="x")
    tasks.create("broke", id="broke")
    tasks.claim("broke", agent="x", register=True)
    tasks.fail("broke", agent="x", error="e")
    tasks.create("child", id="child", depends_on=["broke"])  # blocked at create
    tasks.create("gone", id="gone")
    tasks.cancel("gone")
    coord.agents.register("bob")
    tasks.create("mine", id="mine", assign="bob")
    tasks.create("after done", id="after-done", depends_on=["done"])
    clock.advance(10)  # "expired" now is


def test_ready_lists_exactly_what_claims_take(coord: Coordinator, clock: FakeClock) -> None:
    _board(coord, clock)
    statuses = {t.id: t.status for t in coord.tasks.list()}
    assert statuses["child"] == BLOCKED and statuses["gone"] == CANCELLED
    ready = {t.id for t in coord.tasks.list(ready=True)}
    assert ready == {"ready", "dep", "expired", "after-done"}
    assert {t.id for t in coord.tasks.list(ready=True, agent="bob")} == ready | {"mine"}
    assert {t.id for t in coord.tasks.list(ready=False)} == {"waiting", "held", "child", "mine"}
    # and the claims of anybody (not bob) take exactly those, nothing more
    taken = set()
    while True:
        try:
            taken.add(coord.tasks.claim(agent="z", register=True).id)
        except errors.NothingToClaim:
            break
    # claiming "dep" makes nothing newly ready (it is in progress, not complete)
    assert taken == ready


def test_cli_ready_and_plain_list_show_readiness(
    coord: Coordinator, clock: FakeClock, run_cli: Any
) -> None:
    _board(coord, clock)
    rows = json.loads(run_cli("--json", "task", "list", "--ready").stdout)
    assert {r["id"] for r in rows} == {"ready", "dep", "expired", "after-done"}
    assert all(r["ready"] for r in rows)
    rows = json.loads(run_cli("--json", "task", "list", "--status", "pending").stdout)
    assert {r["id"]: r["ready"] for r in rows} == {
        "ready": True,
        "dep": True,
        "waiting": False,
        "after-done": True,
    }
    text = run_cli("task", "list", "--status", "pending").stdout
    lines = {line.split()[0]: line.split()[1] for line in text.splitlines()[1:]}
    assert lines == {"ready": "ready", "dep": "ready", "waiting": "waiting", "after-done": "ready"}


# -- 3. a heartbeat reports exactly what it renewed --------------------------------------------
def test_heartbeat_reports_renewed_and_lost_leases(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("a")
    coord.tasks.create("short", id="m")
    coord.tasks.create("long", id="n")
    coord.tasks.create("taken", id="t")
    coord.tasks.claim("m", agent="a", lease_seconds=3, register=True)
    coord.tasks.claim("n", agent="a", lease_seconds=60, register=True)
    coord.tasks.claim("t", agent="a", lease_seconds=3, register=True)
    clock.advance(4.5)
    coord.tasks.claim("t", agent="b", register=True)  # taken over after expiry
    _, renewal = coord.agents.heartbeat("a")
    assert [t.id for t in renewal] == ["n"]
    assert renewal.lost == ["m"] or sorted(renewal.lost) == ["m"]
    assert coord.tasks.get("m").lease_expires is not None  # not revived
    with pytest.raises(errors.LeaseLost):
        coord.tasks.complete("m", agent="a")
    assert [e["id"] for e in coord.agents.get("a").active] == ["n"]


def test_cli_heartbeat_json_names_lost_leases(
    coord: Coordinator, clock: FakeClock, run_cli: Any
) -> None:
    coord.agents.register("a")
    coord.tasks.create("short", id="m")
    coord.tasks.claim("m", agent="a", lease_seconds=3, register=True)
    clock.advance(5)
    out = run_cli("--json", "agent", "heartbeat", "a")
    data = json.loads(out.stdout)
    assert (data["renewed"], data["lost"]) == ([], ["m"])
    text = run_cli("agent", "heartbeat", "a").stdout
    assert "renewed lease" not in text and "lost (expired or taken over): m" in text


# -- 4. the commit point: once the task is written, the command has succeeded -------------------
@pytest.fixture
def broken_views(coord: Coordinator, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every agent-view update fails as a held lock would (exit 5 if it leaked)."""
    calls: list[str] = []

    def stuck(task: Task, previous: str | None, *, progress_only: bool = False) -> None:
        calls.append(task.id)
        raise errors.LockTimeout("timed out after 10s waiting for lock .locks/agent-a1.lock")

    monkeypatch.setattr(coord.agents, "on_task_change", stuck)
    return calls


def test_claim_complete_and_fail_succeed_when_a_follow_up_fails(
    coord: Coordinator, broken_views: list[str]
) -> None:
    coord.agents.register("a1")
    coord.tasks.create("first", id="t1", priority=2)
    coord.tasks.create("second", id="t2", priority=1)
    coord.tasks.create("dependent", id="d", depends_on=["t2"])
    claimed = coord.tasks.claim(agent="a1", register=True)
    assert (claimed.id, claimed.status, claimed.agent) == ("t1", IN_PROGRESS, "a1")
    assert any("the agent view of task t1" in w for w in coord.warnings)
    assert coord.tasks.complete("t1", agent="a1").status == COMPLETE
    coord.warnings.clear()
    assert coord.tasks.claim(agent="a1", register=True).id == "t2"  # no second grant of t1
    assert coord.tasks.fail("t2", agent="a1", error="broken").status == FAILED
    assert coord.tasks.get("d").status == BLOCKED  # the dependents still follow
    assert broken_views == ["t1", "t1", "t2", "t2"]
    assert all("succeeded" in w for w in coord.warnings)


def test_dependents_left_pending_are_blocked_by_the_next_claim(
    coord: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    coord.tasks.create("parent", id="p")
    coord.tasks.create("child", id="c", depends_on=["p"])
    coord.tasks.claim("p", agent="a", register=True)
    real = coord.tasks._block_dependents_now

    def stuck(failed: Task) -> None:
        raise errors.LockTimeout("timed out waiting for .locks/task-c.lock")

    monkeypatch.setattr(coord.tasks, "_block_dependents_now", stuck)
    assert coord.tasks.fail("p", agent="a", error="e").status == FAILED
    assert coord.tasks.get("c").status == PENDING  # the follow-up failed ...
    assert any("dependents of task p" in w for w in coord.warnings)
    monkeypatch.setattr(coord.tasks, "_block_dependents_now", real)
    with pytest.raises(errors.NothingToClaim):  # ... and the next claim repairs it
        coord.tasks.claim(agent="b", register=True)
    assert coord.tasks.get("c").status == BLOCKED


def test_completing_or_failing_again_is_a_safe_retry(coord: Coordinator) -> None:
    for verb in ("complete", "fail"):
        coord.tasks.create(verb, id=verb)
        task = coord.tasks.claim(verb, agent="a", register=True)
        finish = getattr(coord.tasks, verb)
        args = {"error": "e"} if verb == "fail" else {}
        first = finish(verb, agent="a", epoch=task.epoch, **args)
        again = finish(verb, agent="a", epoch=task.epoch, **args)  # the caller did not see
        assert (again.status, again.epoch, again.completed_at) == (
            first.status,
            first.epoch,
            first.completed_at,
        )
        coord.agents.register("b", takeover=True)
        with pytest.raises(errors.LeaseLost):
            finish(verb, agent="b", **args)  # not the agent's own: still a conflict
        with pytest.raises(errors.Conflict):  # another grant's finish is not this one's
            finish(verb, agent="a", epoch=task.epoch + 1, **args)
    other = coord.tasks.create("x", id="x")
    coord.tasks.claim(other.id, agent="a", register=True)
    coord.tasks.complete("x", agent="a")
    with pytest.raises(errors.LeaseLost):
        coord.tasks.fail("x", agent="a", error="e")  # complete is not fail


# -- the same, for real: a held lock on markdown, a PUBLISH refused by Redis ACLs ---------------
@MARKDOWN_ONLY
def test_a_held_agent_lock_delays_but_never_fails_a_committed_claim(
    coord: Coordinator, tmp_path: Any
) -> None:
    """The agent file's lock is held by another process: the claim's task write lands, so the
    command exits 0 and says on stderr what it could not update (it used to exit 5
    ``lock_timeout``, and a retry claimed a second task)."""
    import fcntl
    import os
    import subprocess

    root = coord.store.location
    with open(os.path.join(root, "config.json"), "w") as fh:
        json.dump({"lock_timeout": 0.3}, fh)
    coord.tasks.create("first", id="t1", priority=1)
    coord.tasks.create("second", id="t2")
    coord.agents.register("a1")  # identity is strict (SPEC 11): the claim reads it, unlocked
    lock = os.path.join(root, ".locks", "agent-a1.lock")
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    script = "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR);"
    script += "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", script, lock], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        out = subprocess.run(
            [*COORD, "--json", "task", "claim", "--agent", "a1"],
            env=coord_env(root),
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["id"] == "t1"
        warning = json.loads(out.stderr.splitlines()[-1])["warning"]
        assert "agent view of task t1" in warning and "succeeded" in warning
        done = subprocess.run(
            [*COORD, "task", "complete", "t1", "--agent", "a1"],
            env=coord_env(root),
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "coord: warning:" in done.stderr
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
        os.close(fd)
    assert coord.tasks.get("t1").status == COMPLETE
    assert coord.tasks.get("t2").status == PENDING  # nothing claimed twice
    real_clock = Coordinator.open(root)  # the commands ran on the real clock
    assert real_clock.doctor.check() == []  # a1's file was never written: nothing to repair
    real_clock.close()


@pytest.mark.redis
def test_a_redis_user_without_publish_rights_still_commits(
    redis_server: Any, clock: FakeClock
) -> None:
    """Change hints are best effort: a server that refuses PUBLISH to this user (ACL
    ``resetchannels``) must not turn committed writes into exit 5."""
    import uuid

    import redis

    from agentcoord.core.models import ContextDoc, Event
    from agentcoord.store.redis.store import RedisStore

    user = f"nopub-{uuid.uuid4().hex[:8]}"
    admin = redis.Redis(host="127.0.0.1", port=redis_server.port)
    admin.execute_command("ACL", "SETUSER", user, "on", ">pw", "~*", "resetchannels", "+@all")
    try:
        url = f"redis://{user}:pw@127.0.0.1:{redis_server.port}/0?workspace=nopub-{user}"
        store = RedisStore(url, clock=clock)
        with pytest.raises(redis.exceptions.NoPermissionError):
            store.c.client.publish("x", "y")  # the premise
        coord = Coordinator(store, clock=clock)
        coord.agents.register("a")
        coord.tasks.create("t", id="t1")
        coord.tasks.create("u", id="t2", depends_on=["t1"])
        assert coord.tasks.claim(agent="a", register=True).id == "t1"
        coord.tasks.progress("t1", agent="a", percent=50)
        coord.tasks.fail("t1", agent="a", error="e")
        assert coord.tasks.get("t2").status == BLOCKED
        store.append_events("c", [Event("c", "x")], keep=1)
        store.append_events("c", [Event("c", "y")], keep=1)
        store.rotate_events("c", keep=0)
        store.put_context(ContextDoc("p", "d", data={"k": 1}))
        store.put_document("metrics-performance", {"overall": {}})
        assert store.archive_task("t1", lambda t: True)
        assert [e.type for e in store.read_events("c")] == ["x", "y"]
        assert coord.warnings == type(coord.warnings)()
        coord.close()
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()


# -- 7. a follower never skips events after its channel is reset ----------------------------------
def test_a_follower_and_a_consumer_notice_a_reset_channel(coord: Coordinator) -> None:
    import threading

    for i in range(3):
        coord.events.emit("ch", "old", {"i": str(i)})
    coord.events.ack("ch", "reader", 3)
    resets: list[tuple[int, int]] = []
    seen: list[tuple[int, str]] = []
    follow = coord.events.follow(
        "ch", since=3, timeout=5, on_reset=lambda a, b: resets.append((a, b))
    )

    def run() -> None:
        for event in follow:
            seen.append((event.seq, event.type))
            if len(seen) == 2:
                break

    reader = threading.Thread(target=run, daemon=True)
    reader.start()
    coord.store.clear()  # the workspace was flushed: seqs start again at 1
    coord.events.emit("ch", "new")
    coord.events.emit("ch", "new")
    reader.join(10)
    assert seen == [(1, "new"), (2, "new")]  # nothing skipped
    assert resets and resets[0][0] == 3 and resets[0][1] < 3
    # a consumer whose cursor is beyond the channel: told, moved back, nothing skipped
    coord.store.advance_cursor("ch", "late", 9)
    told: list[tuple[int, int]] = []
    got = coord.events.consume("ch", "late", on_reset=lambda a, b: told.append((a, b)))
    assert [e.seq for e in got] == [1, 2] and told == [(9, 2)]
    assert coord.events.cursor("ch", "late") == 0


@MARKDOWN_ONLY
def test_cli_follow_says_so_when_the_log_is_deleted(coord: Coordinator) -> None:
    """The issue's case: ``event tail ch --follow -n 0``, then events-ch.md is deleted and new
    events start again at seq 1: the follower says so on stderr and prints them all."""
    import os
    import subprocess
    import time

    root = coord.store.location
    for _ in range(3):
        coord.events.emit("ch", "old")
    proc = subprocess.Popen(
        [*COORD, "--json", "event", "tail", "ch", "--follow", "-n", "0", "--timeout", "4"],
        env=coord_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)  # the follower is up
        os.unlink(os.path.join(root, "events-ch.md"))
        for _ in range(3):
            coord.events.emit("ch", "new")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [1, 2, 3]
    notice = json.loads(err.splitlines()[0])["notice"]
    assert (notice["kind"], notice["channel"], notice["last_seen"]) == ("channel_reset", "ch", 3)


# -- 8. clocks ------------------------------------------------------------------------------------
YEAR = 365 * 86400.0


def _ahead(coord: Coordinator, seconds: float) -> Coordinator:
    """Another machine on the same store whose clock is ``seconds`` ahead."""
    return Coordinator(coord.store, config=coord.config, clock=lambda: coord.clock() + seconds)


def test_a_lease_granted_by_a_clock_a_year_ahead_is_flagged_and_bounded(
    coord: Coordinator, clock: FakeClock
) -> None:
    coord.tasks.create("job", id="j1", lease_seconds=600)
    _ahead(coord, YEAR).tasks.claim("j1", agent="fast", register=True)
    future = {("future_time", "j1"), ("future_time", "fast")}  # the claim's own stamps
    assert {(v.kind, v.key) for v in coord.doctor.check()} == {("future_lease", "j1"), *future}
    alerts = coord.reports.status()["alerts"]
    assert {a.get("task") for a in alerts if a["kind"] == "clock_skew"} == {"j1", None}
    bounded = coord.tasks.reap()
    assert [t.id for t in bounded] == ["j1"]
    task = coord.tasks.get("j1")
    assert (task.status, task.agent) == (IN_PROGRESS, "fast")
    assert task.lease_expires == clock.now + 600  # its length from now, no longer a year
    assert "bounded" in task.logs[-1].message
    assert {(v.kind, v.key) for v in coord.doctor.check()} == future  # reported, not mended
    clock.advance(601)  # and then it expires as any lease does
    assert coord.tasks.claim(agent="slow", register=True).id == "j1"


def test_a_sign_of_life_from_the_future_is_not_believed(
    coord: Coordinator, clock: FakeClock
) -> None:
    _ahead(coord, YEAR).agents.register("time-traveller")
    (row,) = coord.monitor.classify()
    assert row.health == "Idle" and "in the future" in row.reason  # holds no work
    coord.tasks.create("job", id="j1", assign="time-traveller")
    (row,) = coord.monitor.classify()
    assert row.health == "Concerning" and "in the future" in row.reason
    assert [(v.kind, v.key) for v in coord.doctor.check()] == [("future_time", "time-traveller")]
    assert "clock_skew" in [a["kind"] for a in coord.reports.status()["alerts"]]
    coord.agents.heartbeat("time-traveller")  # a sign of life now: believed again
    clock.advance(30)
    (row,) = coord.monitor.classify()
    assert row.health == "Normal"


def test_a_clock_within_the_skew_is_fine(coord: Coordinator) -> None:
    coord.tasks.create("job", id="j1", lease_seconds=600)
    _ahead(coord, 30).tasks.claim("j1", agent="a", register=True)
    _ahead(coord, 30).agents.register("a")
    assert coord.doctor.check() == [] and coord.tasks.reap() == []
    assert coord.monitor.classify()[0].health == "Normal"


# -- 9. bounded outputs -------------------------------------------------------------------------
def test_task_show_is_bounded_by_default_and_says_what_it_left_out(
    coord: Coordinator, run_cli: Any
) -> None:
    coord.tasks.create("job", id="j1")
    task = coord.tasks.claim("j1", agent="a", register=True)
    for i in range(60):
        coord.tasks.log("j1", f"line {i} " + "x" * 3900, agent="a")
    text = run_cli("task", "show", "j1").stdout
    assert len(text) < 12_000
    assert "line 59" in text and "line 38" not in text
    assert "older log line(s) left out" in text and "--full" in text
    full = run_cli("task", "show", "j1", "--full").stdout
    assert len(full) > 150_000 and "line 10 " in full  # the task keeps its newest 50
    data = json.loads(run_cli("--json", "task", "show", "j1", "--log", "3").stdout)
    assert [ln["message"][:7] for ln in data["logs"]] == ["line 57", "line 58", "line 59"]
    assert data["logs_omitted"] == 47 and data["logs_cut"] == 3
    assert data["lease_left"] == pytest.approx(600, abs=1) and data["epoch"] == task.epoch
    fields = run_cli("task", "show", "j1", "--fields", "lease_left,status").stdout
    assert fields.startswith("lease_left: 600") and "status: in_progress" in fields


# -- 10. events at the command line ------------------------------------------------------------
def test_emit_takes_options_anywhere_and_refuses_reserved_fields(
    coord: Coordinator, run_cli: Any
) -> None:
    run_cli("event", "emit", "team", "started", "--agent", "backend", "msg=x")
    run_cli("event", "emit", "team", "done", "msg=y", "--agent", "backend", "n=2")
    rows = [json.loads(x) for x in run_cli("--json", "event", "tail", "team").stdout.splitlines()]
    assert [r["fields"] for r in rows] == [
        {"Agent": "backend", "msg": "x"},
        {"Agent": "backend", "msg": "y", "n": "2"},
    ]
    for field in ("Agent=mallory", "agent=mallory", "SEQ=9", "time=now"):
        out = run_cli("--json", "event", "emit", "team", "x", field, "--agent", "b", code=2)
        assert json.loads(out.stderr)["error"]["code"] == "invalid_input"
    assert len(coord.events.tail("team")) == 2


def test_tail_of_a_channel_that_does_not_exist(coord: Coordinator, run_cli: Any) -> None:
    out = run_cli("--json", "event", "tail", "nosuch", code=3)
    assert json.loads(out.stderr)["error"]["code"] == "not_found"
    consumer = run_cli("event", "tail", "nosuch", "--consumer", "c")
    assert consumer.stdout == "" and "no channel 'nosuch'" in consumer.stderr
