"""The ``coord agent``, ``monitor``, ``metrics`` and ``status`` CLI: JSON shapes, exit codes,
hand edits, the seed's shell recipes."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from agentcoord.cli.main import main
from agentcoord.core.clock import iso
from agentcoord.workspace import Workspace

from .conftest import COORD, coord_env


@pytest.fixture
def run(workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``coord`` in-process against the test workspace; returns (code, stdout, stderr)."""
    monkeypatch.setenv("COORD_DIR", workspace.root)
    monkeypatch.delenv("COORD_URL", raising=False)

    def _run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def agent_file(workspace: Workspace, name: str) -> Path:
    return Path(workspace.root) / f"agent-{name}.md"


def test_register_heartbeat_show_list_retire_json(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("--json", "agent", "register", "ai-engineer", "--capability", "train")
    assert code == 0
    data = json.loads(out)
    assert {"name", "status", "workload", "last_seen", "capabilities", "active", "breaker"} <= set(
        data
    )
    assert (data["name"], data["status"], data["capabilities"]) == (
        "ai-engineer",
        "idle",
        ["train"],
    )
    run("task", "create", "Train", "--id", "t1")
    run("task", "claim", "t1", "--agent", "ai-engineer")
    code, out, _ = run(
        "--json", "agent", "heartbeat", "ai-engineer", "--status", "busy", "--workload", "85%"
    )
    data = json.loads(out)
    assert (code, data["status"], data["workload"], data["renewed"]) == (0, "busy", 85, ["t1"])
    code, out, _ = run("--json", "agent", "show", "ai-engineer")
    shown = json.loads(out)
    assert shown["active"][0]["id"] == "t1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", shown["last_seen"])
    code, out, _ = run("agent", "show", "ai-engineer")
    assert out.startswith("# Agent: ai-engineer\n\n**Status**: BUSY\n")
    assert "- **Task ID**: t1" in out
    code, out, _ = run("--json", "agent", "list", "--fields", "name,workload")
    assert json.loads(out) == [{"name": "ai-engineer", "workload": 85}]
    code, out, _ = run("--json", "agent", "retire", "ai-engineer")
    assert json.loads(out)["status"] == "retired"
    assert json.loads(run("--json", "agent", "list")[1]) == []
    assert len(json.loads(run("--json", "agent", "list", "--all")[1])) == 1


def test_list_filters_limit_and_text(run) -> None:  # type: ignore[no-untyped-def]
    run("agent", "register", "low", "--workload", "10")
    run("agent", "register", "high", "--workload", "90")
    run("agent", "register", "mid", "--workload", "50")
    run("agent", "heartbeat", "mid", "--status", "busy")
    _, out, _ = run("--json", "agent", "list", "--min-workload", "50", "--fields", "name")
    assert json.loads(out) == [{"name": "high"}, {"name": "mid"}]
    _, out, _ = run("--json", "agent", "list", "--status", "busy", "--fields", "name")
    assert json.loads(out) == [{"name": "mid"}]
    code, out, err = run("--json", "agent", "list", "--limit", "1", "--fields", "name")
    assert (code, json.loads(out)) == (0, [{"name": "high"}])
    assert "showing 1 of 3" in err
    _, out, _ = run("agent", "list")
    assert out.splitlines()[0].split()[:3] == ["NAME", "STATUS", "WORKLOAD"]


def test_seed_workload_recipe_reads_agent_files(run, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    run("agent", "register", "ai-engineer", "--workload", "85", "--note", "Workload: 99")
    run("agent", "register", "data-engineer", "--workload", "40")
    run("agent", "heartbeat", "data-engineer", "--note", "**Workload**: 100%")
    run("task", "create", "Workload: 77", "--id", "t1")
    run("task", "claim", "t1", "--agent", "data-engineer")
    script = r"""
for agent in agent-*.md; do
  workload=$(grep -oP 'Workload.*:\s*\K\d+' "$agent")
  if [ "$workload" -gt 70 ]; then
    echo "High load: $(basename $agent .md | sed 's/agent-//'): ${workload}%"
  fi
done
grep -oP '^\*\*Status\*\*:\s*\K\w+' agent-ai-engineer.md
grep -oP '^\*\*Workload\*\*:\s*\K\d+' agent-data-engineer.md
"""
    out = subprocess.run(
        ["bash", "-c", script],
        cwd=workspace.root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.splitlines() == ["High load: ai-engineer: 85%", "IDLE", "40"]


def test_hand_edited_last_updated_makes_monitor_report_stuck(workspace: Workspace) -> None:
    from agentcoord.api import Coordinator

    from .conftest import FakeClock

    env = coord_env(workspace.root)
    subprocess.run([*COORD, "agent", "register", "steady"], env=env, check=True)
    # quiet holds work (claimed 250 s ago), so the seed classes judge its silence (SPEC 4).
    with Coordinator.open(workspace.root, clock=FakeClock(time.time() - 250)) as c:
        c.agents.register("quiet")
        c.tasks.create("job", id="t1")
        c.tasks.claim("t1", agent="quiet", lease_seconds=86400)
    path = agent_file(workspace, "quiet")
    text = path.read_text()
    # A person sets the heartbeat 200 s back (Stuck spans 180-300 s, so test latency is harmless).
    edited = re.sub(
        r"\*\*Last Updated\*\*: \S+", f"**Last Updated**: {iso(time.time() - 200)}", text
    )
    assert edited != text
    path.write_text(edited)
    proc = subprocess.run([*COORD, "monitor"], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    rows = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines()[1:3]}
    assert rows == {"quiet": "Stuck", "steady": "Idle"}
    assert "quiet: Stuck - Intervene" in proc.stdout
    proc = subprocess.run(
        [*COORD, "--json", "monitor"], env=env, capture_output=True, text=True, check=False
    )
    data = json.loads(proc.stdout)
    assert (proc.returncode, data["attention"]) == (1, True)
    assert data["thresholds"] == {
        "normal": 60,
        "acceptable": 120,
        "concerning": 180,
        "stuck": 300,
        "gone": 86400,
    }
    quiet = next(r for r in data["agents"] if r["agent"] == "quiet")
    assert (quiet["class"], quiet["action"], quiet["source"]) == ("Stuck", "Intervene", "heartbeat")
    assert 200 <= quiet["silence"] < 300
    # A heartbeat brings it back.
    subprocess.run([*COORD, "agent", "heartbeat", "quiet"], env=env, check=True)
    assert subprocess.run([*COORD, "-q", "monitor"], env=env, check=False).returncode == 0


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (["agent", "heartbeat", "ghost"], 3, "not_found"),
        (["agent", "show", "ghost"], 3, "not_found"),
        (["agent", "retire", "ghost"], 3, "not_found"),
        (["agent", "heartbeat", "known", "--workload", "150"], 2, "invalid_input"),
        (["agent", "heartbeat", "known", "--workload", "abc"], 2, "invalid_input"),
        (["agent", "heartbeat", "known", "--workload", "-5"], 2, "invalid_input"),
        (["agent", "register", "new", "--workload", "101"], 2, "invalid_input"),
        (["agent", "heartbeat", "known", "--status", "napping"], 2, "invalid_input"),
        (["agent", "list", "--min-workload", "abc"], 2, "invalid_input"),
        (["agent", "list", "--status", "napping"], 2, "invalid_input"),
        (["agent", "list", "--limit", "-1"], 2, "invalid_input"),
        (["agent", "register", "../x"], 2, "invalid_name"),
        (["agent", "register", "a b"], 2, "invalid_name"),
        (["agent", "register"], 2, "invalid_input"),
        (["agent"], 2, "invalid_input"),
        (["monitor", "--interval", "soon"], 2, "invalid_input"),
        (["metrics", "--window", "0"], 2, "invalid_input"),
        (["metrics", "--window", "yesterday"], 2, "invalid_input"),
        (["status", "--limit", "-3"], 2, "invalid_input"),
        (["task", "assign", "t1", "--auto"], 3, "not_found"),
    ],
)
def test_bad_input_exit_codes(run, args: list[str], code: int, error: str) -> None:  # type: ignore[no-untyped-def]
    run("agent", "register", "known")
    got, out, err = run("--json", *args)
    assert got == code
    assert out == ""
    payload = json.loads(err.strip().splitlines()[-1])
    assert (payload["error"]["code"], payload["error"]["exit"]) == (error, code)
    assert run("--json", "agent", "show", "known")[0] == 0


def test_hand_broken_agent_file_exit_6_others_unaffected(run, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    run("agent", "register", "good")
    run("agent", "register", "bad")
    path = agent_file(workspace, "bad")
    text = path.read_text().replace("**Workload**: 0%", "**Workload**: lots")
    path.write_text(text)
    for args in (
        ("agent", "show", "bad"),
        ("agent", "heartbeat", "bad"),
        ("agent", "retire", "bad"),
    ):
        code, _, err = run("--json", *args)
        assert code == 6, args
        payload = json.loads(err)["error"]
        assert payload["code"] == "corrupt"
        assert payload["path"].endswith("agent-bad.md")
        assert payload["line"] == 5
    assert path.read_text() == text  # never overwritten
    code, out, err = run("--json", "agent", "list")
    assert code == 0
    assert [a["name"] for a in json.loads(out)] == ["good"]
    assert "agent-bad.md:5" in err
    assert run("agent", "heartbeat", "good")[0] == 0
    code, out, err = run("--json", "monitor")
    assert code == 0
    assert [r["agent"] for r in json.loads(out)["agents"]] == ["good"]
    assert "agent-bad.md:5" in err
    code, out, _ = run("--json", "status")
    assert code == 0
    assert json.loads(out)["alerts"][0]["kind"] == "corrupt"


def test_breaker_refuses_claim_with_exit_4_and_reason(run) -> None:  # type: ignore[no-untyped-def]
    run("agent", "register", "flaky")
    for i in range(3):
        run("task", "create", f"job {i}", "--id", f"j{i}")
        run("task", "claim", f"j{i}", "--agent", "flaky")
        run("task", "fail", f"j{i}", "--agent", "flaky", "--error", f"disk full {i}")
    run("task", "create", "next", "--id", "n1")
    code, out, err = run("--json", "task", "claim", "--agent", "flaky")
    assert (code, out) == (4, "")
    payload = json.loads(err)["error"]
    assert payload["code"] == "breaker_open"
    assert "3 consecutive failures" in payload["message"]
    assert "disk full 2" in payload["message"]
    assert "retry_at" in payload
    _, out, _ = run("--json", "agent", "show", "flaky")
    assert json.loads(out)["breaker_state"] == "open"


def test_assign_auto_routes_and_explains(run) -> None:  # type: ignore[no-untyped-def]
    run("task", "create", "t", "--id", "t1")
    run("task", "create", "u", "--id", "t2")
    code, _, err = run("task", "assign", "t1", "--auto")
    assert code == 3 and "none is registered" in err
    run("agent", "register", "heavy", "--workload", "90")
    run("agent", "register", "light", "--workload", "20")
    code, out, _ = run("--json", "task", "assign", "t1", "--auto")
    assert (code, json.loads(out)["agent"], json.loads(out)["status"]) == (0, "light", "assigned")
    run("agent", "heartbeat", "light", "--status", "blocked")
    run("agent", "heartbeat", "heavy", "--status", "offline")
    code, out, err = run("--json", "task", "assign", "t2", "--auto")
    assert (code, out) == (3, "")
    payload = json.loads(err)["error"]
    assert payload["rejected"] == {"heavy": "status OFFLINE", "light": "status BLOCKED"}
    assert "heavy: status OFFLINE; light: status BLOCKED" in payload["message"]


def test_metrics_writes_the_document(run, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    run("agent", "register", "a1")
    run("task", "create", "t", "--id", "t1")
    run("task", "claim", "t1", "--agent", "a1")
    run("task", "complete", "t1", "--agent", "a1")
    code, out, _ = run("--json", "metrics", "--window", "2h")
    data = json.loads(out)
    assert (code, data["window"], data["written"]) == (0, 7200.0, "metrics-performance.md")
    assert data["agents"]["a1"]["finished"] == 1
    assert data["overall"]["success_rate"] == 100.0
    doc = (Path(workspace.root) / "metrics-performance.md").read_text()
    assert "**Success Rate**: 100% (1/1)" in doc
    code, out, _ = run("metrics", "--no-write")
    assert code == 0
    assert "(all)" in out and "wrote" not in out


def test_status_one_screen(run) -> None:  # type: ignore[no-untyped-def]
    run("agent", "register", "a1")
    run("task", "create", "one", "--id", "t1")
    run("task", "create", "two", "--id", "t2")
    run("task", "claim", "t1", "--agent", "a1")
    code, out, _ = run("status")
    assert code == 0
    assert "agents (1):" in out
    assert re.search(r"a1\s+Normal", out)
    assert "tasks (2): pending 1, in_progress 1" in out
    assert "alerts: none" in out
    code, out, _ = run("--json", "status")
    data = json.loads(out)
    assert {"time", "agents", "attention", "tasks", "total_tasks", "alerts"} <= set(data)
    assert data["tasks"]["pending"] == 1 and data["total_tasks"] == 2


def test_monitor_watch_stops_after_count(run) -> None:  # type: ignore[no-untyped-def]
    run("agent", "register", "a1")
    code, out, _ = run("--json", "monitor", "--watch", "--count", "1", "--interval", "0.05")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["agents"][0]["agent"] == "a1"
    code, out, _ = run("monitor", "--watch", "--count", "1", "--fields", "agent,class")
    assert code == 0
    assert out.split() == ["AGENT", "CLASS", "a1", "Idle"]  # holds no work


def test_monitor_empty_workspace(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("monitor")
    assert (code, out.strip()) == (0, "no agents to monitor")


def test_monitor_watch_rerenders_and_exits_per_last_state(run, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    from agentcoord.api import Coordinator

    from .conftest import FakeClock

    with Coordinator.open(workspace.root, clock=FakeClock(time.time() - 1000)) as c:
        c.agents.register("a1")  # holds work, silent: Blocked (without work it would be Idle)
        c.tasks.create("job", id="t1")
        c.tasks.claim("t1", agent="a1", lease_seconds=86400)
    path = agent_file(workspace, "a1")
    path.write_text(
        re.sub(
            r"\*\*Last Updated\*\*: \S+",
            f"**Last Updated**: {iso(time.time() - 1000)}",
            path.read_text(),
        )
    )
    code, out, _ = run("--json", "monitor", "--watch", "--count", "2", "--interval", "0.05")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert len(rows) == 2
    assert rows[0]["agents"][0]["class"] == "Blocked"
    assert rows[1]["agents"][0]["silence"] > rows[0]["agents"][0]["silence"]


def test_monitor_watch_redraws_on_a_change(run, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    import threading

    from agentcoord.api import Coordinator

    run("agent", "register", "a1")

    def later() -> None:
        time.sleep(0.3)
        with Coordinator.open(workspace.root) as c:
            c.agents.register("a2")

    thread = threading.Thread(target=later)
    thread.start()
    try:
        # A long interval: the second table comes from the change feed, not the timer.
        code, out, _ = run("--json", "monitor", "--watch", "--count", "2", "--interval", "20")
    finally:
        thread.join()
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [[r["agent"] for r in row["agents"]] for row in rows][-1] == ["a1", "a2"]
