"""The monitor (silence classes, signs of life incl. git), status alerts and metrics."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agentcoord import errors
from agentcoord.api import Coordinator
from agentcoord.domain.monitor import ACTIONS, CLASSES, Monitor, thresholds
from agentcoord.domain.reports import DOCUMENT
from agentcoord.store.gitlog import Commit, commits_since, latest_by_agent, parse_log
from agentcoord.workspace import Config

from .conftest import T0, FakeClock


def health(coord: Coordinator, name: str = "a1") -> tuple[str, float | None, str | None]:
    rows = {r.agent: r for r in coord.monitor.classify()}
    row = rows[name]
    return row.health, row.silence, row.source


@pytest.mark.parametrize(
    ("silence", "expected"),
    [
        (0, "Normal"),
        (59, "Normal"),
        (60, "Acceptable"),
        (119, "Acceptable"),
        (120, "Concerning"),
        (179, "Concerning"),
        (180, "Stuck"),
        (299, "Stuck"),
        (300, "Blocked"),
        (86400, "Blocked"),
    ],
)
def test_classes_at_each_threshold(
    coord: Coordinator, clock: FakeClock, silence: float, expected: str
) -> None:
    coord.agents.register("a1")
    coord.tasks.create("t", id="t1", assign="a1")  # work waiting for a1: the classes judge it
    clock.advance(silence)
    (row,) = coord.monitor.classify()
    assert (row.agent, row.health, row.silence, row.source) == (
        "a1",
        expected,
        silence,
        "heartbeat",
    )
    assert row.action == ACTIONS[expected]
    assert row.attention == (expected in ("Stuck", "Blocked"))
    assert row.to_dict()["class"] == expected


def test_seed_actions() -> None:
    assert [ACTIONS[c] for c in CLASSES] == [
        "Monitor only",
        "Check work log",
        "Investigate",
        "Intervene",
        "Immediate action",
    ]


def test_thresholds_are_configurable(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("a1")
    coord.tasks.create("t", id="t1", assign="a1")
    clock.advance(30)
    assert health(coord)[0] == "Normal"
    tight = Config({"monitor": {"normal": 10, "acceptable": 20, "concerning": 25, "stuck": 40}})
    other = Coordinator(coord.store, config=tight, workspace=coord.workspace, clock=clock)
    assert health(other)[0] == "Stuck"
    clock.advance(10)
    assert health(other)[0] == "Blocked"


@pytest.mark.parametrize(
    "table",
    [
        {"normal": "soon"},
        {"stuck": -1},
        {"normal": 100, "acceptable": 50},
        {"concerning": True},
    ],
)
def test_bad_thresholds_are_refused(coord: Coordinator, table: dict[str, object]) -> None:
    config = Config({"monitor": table})
    with pytest.raises(errors.InvalidInput):
        thresholds(config)
    other = Coordinator(coord.store, config=config, workspace=coord.workspace, clock=coord.clock)
    coord.agents.register("a1")
    with pytest.raises(errors.InvalidInput):
        other.monitor.classify()


def test_task_updates_are_signs_of_life(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("a1")
    coord.tasks.create("t", id="t1", total=10)
    clock.advance(250)
    coord.tasks.claim("t1", agent="a1")
    clock.advance(30)
    coord.tasks.progress("t1", agent="a1", current=3)
    clock.advance(5)
    assert health(coord) == ("Normal", 5, "task")
    clock.advance(100)
    coord.tasks.complete("t1", agent="a1")
    clock.advance(61)
    assert health(coord) == ("Idle", 61, "task")  # a finished task still counts; no work now


def test_a_store_recorded_failure_is_not_a_sign_of_life(
    coord: Coordinator, clock: FakeClock
) -> None:
    coord.agents.register("a1")
    coord.tasks.create("t", id="t1", max_attempts=1)
    coord.tasks.claim("t1", agent="a1", lease_seconds=60)
    clock.advance(400)
    (failed,) = coord.tasks.reap()
    assert (failed.status, failed.agent) == ("failed", "a1")
    row = coord.monitor.classify()[0]
    assert (row.health, row.silence, row.pace) == ("Idle", 400, "Blocked")


def test_dead_agent_shows_expired_lease(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("a1")
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="a1", lease_seconds=120)
    clock.advance(130)
    (row,) = coord.monitor.classify()
    assert (row.health, row.active, row.expired) == ("Concerning", ["t1"], ["t1"])
    assert "lease expired on t1" in row.reason


def test_retired_and_offline_idle_agents_are_not_monitored(
    coord: Coordinator, clock: FakeClock
) -> None:
    for name in ("gone", "away", "away-busy", "help"):
        coord.agents.register(name)
    coord.agents.retire("gone")
    coord.agents.heartbeat("away", status="offline")
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="away-busy")
    coord.agents.heartbeat("away-busy", status="offline")
    coord.agents.heartbeat("help", status="blocked")
    rows = {r.agent: r for r in coord.monitor.classify()}
    assert set(rows) == {"away-busy", "help"}
    assert rows["help"].health == "Blocked"
    assert rows["help"].reason.startswith("reports status BLOCKED")
    everyone = coord.monitor.classify(include_inactive=True)
    assert [r.agent for r in everyone] == ["away", "away-busy", "gone", "help"]


# -- git -------------------------------------------------------------------------------------
def git(repo: Path, *args: str, when: float | None = None, author: str = "Some One") -> None:
    env = dict(os.environ)
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME=author,
        GIT_AUTHOR_EMAIL=f"{author.lower().replace(' ', '.')}@example.org",
        GIT_COMMITTER_NAME=author,
        GIT_COMMITTER_EMAIL="ci@example.org",
    )
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{int(when)} +0000"
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def commit(repo: Path, message: str, when: float, author: str = "Some One") -> None:
    (repo / "work.txt").write_text(message)
    git(repo, "add", "work.txt")
    git(repo, "commit", "-q", "-m", message, when=when, author=author)


@pytest.fixture
def repo(coord: Coordinator) -> Path:
    """Make the workspace's project a git repository (as ``coord init`` at a git root does)."""
    assert coord.workspace is not None
    root = Path(coord.workspace.project_root)
    git(root, "init", "-q")
    return root


def test_commit_with_coord_agent_trailer_is_a_sign_of_life(
    coord: Coordinator, clock: FakeClock, repo: Path
) -> None:
    coord.agents.register("ai-engineer")
    coord.agents.register("other")
    coord.tasks.create("t", id="t1", assign="ai-engineer")
    coord.tasks.create("u", id="t2", assign="other")
    clock.advance(250)
    commit(repo, "train step\n\nWork on the loop.\n\nCoord-Agent: ai-engineer", when=clock.now - 10)
    commit(repo, "unrelated", when=clock.now - 5)
    assert health(coord, "ai-engineer") == ("Normal", 10, "git")
    assert health(coord, "other")[0] == "Stuck"


def test_commit_author_counts_by_name_or_email_local_part(
    coord: Coordinator, clock: FakeClock, repo: Path
) -> None:
    coord.agents.register("data-engineer")
    coord.agents.register("Reviewer")
    coord.tasks.create("t", id="t1", assign="data-engineer")
    coord.tasks.create("u", id="t2", assign="Reviewer")
    clock.advance(400)
    commit(repo, "by name", when=clock.now - 100, author="data-engineer")
    commit(repo, "by email", when=clock.now - 20, author="reviewer")
    assert health(coord, "data-engineer") == ("Acceptable", 100, "git")
    assert health(coord, "Reviewer") == ("Normal", 20, "git")


def test_git_can_be_switched_off(coord: Coordinator, clock: FakeClock, repo: Path) -> None:
    coord.agents.register("a1")
    coord.tasks.create("t", id="t1", assign="a1")
    clock.advance(400)
    commit(repo, "x\n\nCoord-Agent: a1", when=clock.now - 1)
    off = Config({"monitor": {"git": False}})
    other = Coordinator(coord.store, config=off, workspace=coord.workspace, clock=clock)
    assert other.monitor.git_root is None
    assert health(other)[0] == "Blocked"
    assert health(coord)[0] == "Normal"


def test_no_git_repository_is_skipped_silently(coord: Coordinator, tmp_path: Path) -> None:
    coord.agents.register("a1")
    plain = tmp_path / "plain"
    plain.mkdir()
    assert commits_since(str(plain), 0) == []
    assert commits_since(str(tmp_path / "missing"), 0) == []
    assert commits_since(None, 0) == []
    monitor = Monitor(coord.store, coord.config, coord.clock, git_root=str(plain))
    assert [r.health for r in monitor.classify()] == ["Idle"]


def test_commits_since_is_exact_and_newest_first(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    commit(tmp_path, "one\n\nCoord-Agent: a1", when=T0)
    commit(tmp_path, "two\n\nCoord-Agent: a2\nCoord-Agent: a3", when=T0 + 10)
    got = commits_since(str(tmp_path), T0)
    assert [(c.subject, c.time, c.trailers) for c in got] == [("two", T0 + 10, ["a2", "a3"])]
    assert len(commits_since(str(tmp_path), T0 - 1)) == 2
    latest = latest_by_agent(commits_since(str(tmp_path), 0), ["a1", "A3", "zz"])
    assert {k: v.subject for k, v in latest.items()} == {"a1": "one", "A3": "two"}


def test_parse_log_tolerates_junk() -> None:
    text = "abc\x1fnot-a-time\x1fn\x1fe\x1fbody\x1e\nshort\x1e\nsha\x1f5\x1fN\x1fn@x\x1fs\n\n"
    text += "coord-agent:  Bot \x1e"
    (c,) = parse_log(text)
    assert isinstance(c, Commit)
    assert (c.sha, c.time, c.trailers, c.agents()) == ("sha", 5.0, ["Bot"], {"n", "bot"})


# -- status ------------------------------------------------------------------------------------
def test_status_counts_and_alerts(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("dead")
    coord.agents.register("broken")
    coord.tasks.create("held", id="t1")
    coord.tasks.create("old", id="t2")
    coord.tasks.create("done", id="t3")
    coord.tasks.claim("t1", agent="dead", lease_seconds=60)
    fail_three(coord, "broken")
    clock.advance(3700)
    coord.agents.heartbeat("broken")
    data = coord.reports.status()
    assert data["tasks"]["pending"] == 2
    assert data["tasks"]["in_progress"] == 1
    assert data["tasks"]["failed"] == 3
    assert data["total_tasks"] == 6
    kinds = [(a["kind"], a.get("task") or a.get("agent")) for a in data["alerts"]]
    assert kinds == [
        ("blocked_agent", "dead"),
        ("expired_lease", "t1"),
        ("failed_task", "f0"),
        ("failed_task", "f1"),
        ("failed_task", "f2"),
        ("breaker_open", "broken"),
        ("stale_task", "t2"),
        ("stale_task", "t3"),
    ]
    assert data["attention"] is True
    assert json.loads(json.dumps(data)) == data


def fail_three(coord: Coordinator, agent: str) -> None:
    for i in range(3):
        coord.tasks.create("f", id=f"f{i}")
        coord.tasks.claim(f"f{i}", agent=agent)
        coord.tasks.fail(f"f{i}", agent=agent, error="nope")


# -- metrics -----------------------------------------------------------------------------------
def test_metrics_per_agent_and_overall(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("a1")
    coord.agents.register("a2")
    coord.agents.register("idle")
    for tid, agent, secs, ok in (
        ("t1", "a1", 60, True),
        ("t2", "a1", 180, False),
        ("t3", "a2", 30, True),
    ):
        coord.tasks.create(tid, id=tid)
        coord.tasks.claim(tid, agent=agent)
        clock.advance(secs)
        if ok:
            coord.tasks.complete(tid, agent=agent)
        else:
            coord.tasks.fail(tid, agent=agent, error="x")
    coord.tasks.create("running", id="t4")
    coord.tasks.claim("t4", agent="a2")
    data = coord.metrics.compute(window=3600)
    a1, a2, idle = data["agents"]["a1"], data["agents"]["a2"], data["agents"]["idle"]
    assert (a1["finished"], a1["succeeded"], a1["failed"]) == (2, 1, 1)
    assert (a1["success_rate"], a1["average_duration"], a1["in_progress"]) == (50.0, 120.0, 0)
    assert (a2["finished"], a2["in_progress"], a2["throughput_per_hour"]) == (1, 1, 1.0)
    assert (idle["finished"], idle["success_rate"]) == (0, None)
    overall = data["overall"]
    assert (overall["finished"], overall["succeeded"], overall["in_progress"]) == (3, 2, 1)
    assert overall["throughput_per_hour"] == 3.0
    clock.advance(3601)
    assert coord.metrics.compute(window=3600)["overall"]["finished"] == 0
    assert coord.metrics.compute()["overall"]["finished"] == 3
    with pytest.raises(errors.InvalidInput):
        coord.metrics.compute(window=0)


def test_metrics_write_renders_the_document(coord: Coordinator, clock: FakeClock) -> None:
    coord.agents.register("a1")
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="a1")
    clock.advance(90)
    coord.tasks.complete("t1", agent="a1")
    data = coord.metrics.write()
    assert coord.store.get_document(DOCUMENT) == json.loads(json.dumps(data))
    path = coord.store.record_path("metrics", "performance")
    if path is not None:  # markdown: the seed's metrics-performance.md, for people
        text = Path(path).read_text()
        assert text.startswith("# Metrics: performance\n")
        assert "- **Success Rate**: 100% (1/1)" in text
        assert "| a1 | 1 | 100% (1/1) | 0 | 1m 30s | 0 |" in text
        block = text.split("```json\n", 1)[1].split("\n```", 1)[0]
        assert json.loads(block) == json.loads(json.dumps(data))


# -- idle is not stuck (SPEC section 4: the classes judge agents that hold work) -----------------
@pytest.mark.parametrize("silence", [0, 59, 120, 180, 299, 300, 3600, 86399])
def test_an_agent_without_work_is_idle_however_long_it_is_silent(
    coord: Coordinator, clock: FakeClock, silence: float
) -> None:
    coord.agents.register("a1")
    clock.advance(silence)
    (row,) = coord.monitor.classify()
    assert (row.health, row.silence, row.attention) == ("Idle", silence, False)
    assert row.action == ACTIONS["Idle"] and row.reason.startswith("holds no work; ")
    assert (row.active, row.assigned) == ([], [])
    assert row.to_dict()["class"] == "Idle"
    status = coord.reports.status()
    assert status["attention"] is False and status["alerts"] == []


def test_an_agent_without_work_is_gone_past_the_stale_age(
    coord: Coordinator, clock: FakeClock
) -> None:
    coord.agents.register("a1")
    clock.advance(86400)  # monitor.gone: 24 h, as coord cleanup
    (row,) = coord.monitor.classify()
    assert (row.health, row.attention, row.action) == ("Gone", False, ACTIONS["Gone"])
    assert coord.reports.status()["alerts"] == []
    coord.agents.heartbeat("a1")  # back: Idle again
    assert health(coord) == ("Idle", 0, "heartbeat")
    short = Config({"monitor": {"gone": 3600}})
    other = Coordinator(coord.store, config=short, workspace=coord.workspace, clock=clock)
    clock.advance(3599)
    assert health(other)[0] == "Idle"
    clock.advance(1)
    assert health(other)[0] == "Gone"
    assert health(coord)[0] == "Idle"


@pytest.mark.parametrize("value", ["1h", -1, True, None])
def test_a_bad_gone_age_is_refused(coord: Coordinator, value: object) -> None:
    from agentcoord.core.config import ConfigProblem, check

    with pytest.raises(ConfigProblem) as info:
        check({"monitor": {"gone": value}})
    assert info.value.key == "monitor.gone"
    other = Coordinator(
        coord.store, config=Config({"monitor": {"gone": value}}), workspace=coord.workspace
    )
    coord.agents.register("a1")
    with pytest.raises(errors.InvalidInput):
        other.monitor.classify()


def test_a_holder_is_judged_by_the_seed_classes_and_its_idle_colleague_is_not(
    coord: Coordinator, clock: FakeClock
) -> None:
    coord.agents.register("busy")
    coord.agents.register("free")
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="busy", lease_seconds=3600)
    clock.advance(180)
    rows = {r.agent: r for r in coord.monitor.classify()}
    assert (rows["busy"].health, rows["busy"].active, rows["busy"].attention) == (
        "Stuck",
        ["t1"],
        True,
    )
    assert (rows["free"].health, rows["free"].pace) == ("Idle", "Stuck")
    alerts = [(a["kind"], a["agent"]) for a in coord.reports.status()["alerts"]]
    assert alerts == [("stuck_agent", "busy")]
    clock.advance(120)
    assert {r.agent: r.health for r in coord.monitor.classify()} == {
        "busy": "Blocked",
        "free": "Idle",
    }
    coord.tasks.complete("t1", agent="busy")  # done: nothing held, so nothing to judge
    clock.advance(300)
    assert health(coord, "busy") == ("Idle", 300, "task")


def test_assigned_work_is_held_and_judged_from_when_it_arrived(
    coord: Coordinator, clock: FakeClock
) -> None:
    coord.agents.register("a1")
    clock.advance(1000)  # resting: Idle
    assert health(coord)[0] == "Idle"
    coord.tasks.create("t", id="t1", assign="a1")
    (row,) = coord.monitor.classify()
    assert (row.health, row.silence, row.pace, row.assigned) == ("Normal", 1000, "Blocked", ["t1"])
    assert "given work 0s ago" in row.reason and row.to_dict()["assigned"] == ["t1"]
    clock.advance(180)  # the work waits and the agent says nothing: Stuck
    (row,) = coord.monitor.classify()
    assert (row.health, row.attention) == ("Stuck", True)
    coord.tasks.claim("t1", agent="a1")  # it picks the work up: its claim is a sign of life
    assert health(coord) == ("Normal", 0, "task")


def test_an_offline_agent_with_assigned_work_is_still_watched(
    coord: Coordinator, clock: FakeClock
) -> None:
    coord.agents.register("away")
    coord.agents.heartbeat("away", status="offline")
    assert coord.monitor.classify() == []
    coord.tasks.create("t", id="t1", assign="away")
    clock.advance(300)
    assert health(coord, "away")[0] == "Blocked"


def test_a_self_reported_block_without_work_still_asks_for_help(
    coord: Coordinator, clock: FakeClock
) -> None:
    coord.agents.register("help")
    coord.agents.heartbeat("help", status="blocked")
    (row,) = coord.monitor.classify()
    assert (row.health, row.attention) == ("Blocked", True)
    assert row.reason.startswith("reports status BLOCKED; holds no work")


def test_routing_sends_work_to_idle_agents_seen_lately_only(
    coord: Coordinator, clock: FakeClock
) -> None:
    from agentcoord.domain.routing import candidates

    coord.agents.register("sleepy")
    clock.advance(200)
    coord.agents.register("fresh")
    good, rejected = candidates(coord.monitor)
    assert [h.agent for h in good] == ["fresh"]
    assert rejected["sleepy"].startswith("Idle, Stuck: holds no work; last sign of life 3m 20s")
    coord.tasks.create("t", id="t1")
    assert coord.tasks.assign_auto("t1").agent == "fresh"


def test_monitor_and_status_cli_exit_and_alerts_only_for_holders(
    coord: Coordinator, clock: FakeClock, run_cli: Any
) -> None:
    for name in ("a1", "a2"):
        coord.agents.register(name)
    clock.advance(600)
    out = run_cli("--json", "monitor", code=0)
    data = json.loads(out.stdout)
    assert data["attention"] is False
    assert [r["class"] for r in data["agents"]] == ["Idle", "Idle"]
    assert data["thresholds"]["gone"] == 86400
    text = run_cli("monitor", code=0).stdout
    assert "attention" not in text and "Idle" in text and "a1: Idle" not in text
    assert "alerts: none" in run_cli("status").stdout
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="a1", lease_seconds=3600)
    clock.advance(200)
    text = run_cli("monitor", code=1).stdout
    assert "a1: Stuck - Intervene" in text and "a2: Idle" not in text
    assert "attention: an agent is Stuck or Blocked" in text
    watched = run_cli("--json", "monitor", "--watch", "--count", "1", "--interval", "0.01", code=1)
    assert json.loads(watched.stdout.splitlines()[0])["attention"] is True
    status = run_cli("status").stdout
    assert "agent a1 is Stuck" in status and "agent a2" not in status
    coord.tasks.create("u", id="t2", assign="a2")
    assert "t2 (assigned)" in run_cli("status").stdout
