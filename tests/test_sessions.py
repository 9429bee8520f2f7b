"""Per-session identity and the session hooks (SPEC section 12; issue 17).

A simulated agent tool is a long-lived process (like ``claude``) that runs the hooks with their
JSON input and the agent's own ``coord`` commands as its children, in its own git worktree. The
hooks and commands find the session's agent through the session link, as in a real session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentcoord.core.identity import (
    TOOLS,
    check_session_id,
    session_agent,
    session_token,
)
from agentcoord.core.validate import is_valid_name
from agentcoord.errors import Conflict, InvalidInput
from agentcoord.ops.prime import gather, render
from agentcoord.sessions import Identity, resolve

from .conftest import COORD, FakeClock
from .gitrepo import repo_with_worktrees

needs_git = pytest.mark.skipif(
    shutil.which("git") is None and os.environ.get("CI") != "true", reason="needs git"
)

#: A stand-in for an agent tool's process: runs steps given as JSON on argv[1] and prints one
#: JSON result per step. Steps: {"hook": "start"|"beat"|"end", "input": {...}} runs
#: ``coord session ...`` with the input on stdin; {"run": [args]} runs ``coord args``;
#: {"sleep": s}.
DRIVER = r"""
import json, subprocess, sys, time
coord = json.loads(sys.argv[2])
out = []
for step in json.loads(sys.argv[1]):
    if "sleep" in step:
        time.sleep(step["sleep"])
        continue
    if "hook" in step:
        args = ["session", step["hook"], *step.get("args", [])]
        data = json.dumps(step["input"])
    else:
        args, data = step["run"], ""
    p = subprocess.run(coord + args, input=data, capture_output=True, text=True)
    out.append({"args": args, "rc": p.returncode, "out": p.stdout, "err": p.stderr})
print(json.dumps(out))
"""


def tool_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COORD_DIR", "COORD_URL")}
    env.update(extra)
    return env


def session(cwd: Path, steps: list[dict[str, Any]], **env: str) -> list[dict[str, Any]]:
    """Run ``steps`` in a fresh simulated tool process whose working directory is ``cwd``."""
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(steps), json.dumps(COORD)],
        cwd=cwd,
        env=tool_env(**env),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def hook(kind: str, sid: str, cwd: Path, **more: Any) -> dict[str, Any]:
    event = {"start": "SessionStart", "beat": "PostToolUse", "end": "SessionEnd"}[kind]
    return {"hook": kind, "input": {"session_id": sid, "hook_event_name": event, "cwd": str(cwd)}}


def coord(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_coord(cwd, list(args), "", **env)


def run_coord(
    cwd: Path, args: list[str], stdin: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COORD, *args],
        cwd=cwd,
        input=stdin,
        env=tool_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def task_json(cwd: Path, task_id: str) -> dict[str, Any]:
    done = coord(cwd, "--json", "task", "show", task_id)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def set_config(root: Path, **settings: Any) -> None:
    config = root / ".claude" / "coordination" / "config.json"
    data = json.loads(config.read_text()) if config.exists() else {}
    data.update(settings)
    config.write_text(json.dumps(data))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with a board (lease 6 s) and two linked worktrees."""
    main = repo_with_worktrees(tmp_path, "frontend", "backend")
    assert coord(main, "init").returncode == 0
    set_config(main, lease_seconds=6)
    for title in ("login form", "api docs", "db schema"):
        assert coord(main, "task", "create", title).returncode == 0
    return main


# -- derivation ----------------------------------------------------------------------------
@given(st.text(min_size=1, max_size=256).filter(lambda s: s.isprintable() and s == s.strip()))
def test_any_session_id_gives_a_valid_stable_name_and_token(sid: str) -> None:
    for tool, prefix in TOOLS.items():
        name = session_agent(tool, sid)
        assert is_valid_name(name)
        assert name.startswith(prefix + "-")
        assert name == session_agent(tool, sid)
    token = session_token(sid)
    assert len(token) == 16
    assert int(token, 16) >= 0


def test_two_sessions_get_two_names() -> None:
    a = "6f1c2b9e-0d55-4c7e-9a57-1d2a3b4c5d6e"
    b = "6f1c2b9e-0d55-4c7e-9a57-1d2a3b4c5d6f"
    assert session_agent("claude-code", a) != session_agent("claude-code", b)
    assert session_token(a) != session_token(b)


@pytest.mark.parametrize("bad", ["", " x", "x ", "a\nb", "a\x1b[31m", "x" * 257, 5, None, ["a"]])
def test_bad_session_ids_are_refused(bad: object) -> None:
    with pytest.raises(InvalidInput):
        check_session_id(bad)


def test_resolution_order(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve(None) is None
    found = resolve(None, session_id="s1", tool="codex")
    assert found is not None
    assert (found.name, found.source, found.token) == (
        session_agent("codex", "s1"),
        "session",
        session_token("s1"),
    )
    monkeypatch.setenv("COORD_AGENT", "reviewer")
    named = resolve(None, session_id="s1")
    assert named is not None
    assert (named.name, named.source, named.token) == (
        "reviewer",
        "COORD_AGENT",
        session_token("s1"),
    )
    explicit = resolve("lead", session_id="s1")
    assert explicit is not None
    assert (explicit.name, explicit.source) == ("lead", "--agent")
    monkeypatch.setenv("COORD_AGENT", "../etc")
    with pytest.raises(InvalidInput):
        resolve(None)


def test_a_session_id_in_the_environment_names_the_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Claude Code gives hooks, Bash commands and MCP servers ``CLAUDE_CODE_SESSION_ID``, the
    id its hooks get on stdin: every part of a session derives the same name and token."""
    monkeypatch.setenv("CLAUDE_CODE_SESSION_ID", "c0ffee")
    found = resolve(None)
    assert found is not None
    assert (found.name, found.token) == (
        session_agent("claude-code", "c0ffee"),
        session_token("c0ffee"),
    )
    monkeypatch.setenv("GEMINI_SESSION_ID", "9e1")
    gemini = resolve(None, tool="gemini-cli")
    assert gemini is not None and gemini.name == session_agent("gemini-cli", "9e1")
    monkeypatch.setenv("CLAUDE_CODE_SESSION_ID", "bad\x07id")
    monkeypatch.delenv("GEMINI_SESSION_ID")
    assert resolve(None) is None  # an invalid id names nobody
    monkeypatch.setenv("COORD_AGENT", "lead")
    lead = resolve(None)
    assert lead is not None and lead.name == "lead"


# -- the must-show: two worktrees, two sessions, one board -------------------------------------
@needs_git
def test_two_sessions_in_two_worktrees_claim_different_tasks_and_beats_keep_leases(
    repo: Path,
) -> None:
    front, back = repo.parent / "proj-frontend", repo.parent / "proj-backend"
    steps_a = [
        hook("start", "session-A", front),
        {"run": ["--json", "whoami"]},
        {"run": ["-q", "task", "claim"]},
    ]
    # Session A beats after every "tool call" for 11 s and more (the lease is 6 s; a beat
    # renews at most every 1.5 s, a quarter of it); B never beats.
    for _ in range(14):
        steps_a += [{"sleep": 0.8}, hook("beat", "session-A", front)]
    steps_a.append({"run": ["-q", "reap"]})
    steps_b = [
        hook("start", "session-B", back),
        {"run": ["--json", "whoami"]},
        {"run": ["-q", "task", "claim"]},
    ]
    a = subprocess.Popen(
        [sys.executable, "-c", DRIVER, json.dumps(steps_a), json.dumps(COORD)],
        cwd=front,
        env=tool_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    b = session(back, steps_b)
    out_a, _ = a.communicate(timeout=120)
    res_a = json.loads(out_a)
    assert a.returncode == 0
    for step in res_a + b:
        assert step["rc"] == 0, step
    who_a, who_b = json.loads(res_a[1]["out"]), json.loads(b[1]["out"])
    assert who_a["agent"] == session_agent("claude-code", "session-A")
    assert who_b["agent"] == session_agent("claude-code", "session-B")
    assert who_a["source"] == who_b["source"] == "linked"
    task_a, task_b = res_a[2]["out"].strip(), b[2]["out"].strip()
    assert task_a and task_b and task_a != task_b
    # The SessionStart context is Claude Code's hook JSON carrying coord prime.
    context = json.loads(res_a[0]["out"])["hookSpecificOutput"]["additionalContext"]
    assert who_a["agent"] in context
    assert len(context) <= 2048
    # After 11 s, A's 6 s lease is still A's (the reap at the end took nothing of it) ...
    held = task_json(repo, task_a)
    assert (held["status"], held["agent"]) == ("in_progress", who_a["agent"])
    # ... while B's, never renewed, has expired and the reap took it back.
    lost = task_json(repo, task_b)
    assert lost["status"] != "in_progress" or lost["agent"] != who_b["agent"]


@needs_git
def test_session_end_releases_and_goes_offline_or_keeps_when_configured(repo: Path) -> None:
    front = repo.parent / "proj-frontend"
    res = session(front, [hook("start", "s-end", front), {"run": ["-q", "task", "claim"]}])
    task_id = res[1]["out"].strip()
    name = session_agent("claude-code", "s-end")
    end = session(front, [hook("end", "s-end", front)])
    assert end[0]["rc"] == 0 and end[0]["out"] == ""
    task = task_json(repo, task_id)
    assert task["status"] == "pending" and not task.get("agent")
    agent = json.loads(coord(repo, "--json", "agent", "show", name).stdout)
    assert agent["status"] == "offline"
    # release_on_session_end false: the lease stays until it runs out.
    set_config(repo, release_on_session_end=False)
    res = session(front, [hook("start", "s-keep", front), {"run": ["-q", "task", "claim"]}])
    kept_id = res[1]["out"].strip()
    session(front, [hook("end", "s-keep", front)])
    assert task_json(repo, kept_id)["status"] == "in_progress"


@needs_git
def test_a_resumed_session_is_the_same_agent_and_session(repo: Path) -> None:
    front = repo.parent / "proj-frontend"
    session(front, [hook("start", "s-res", front)])
    name = session_agent("claude-code", "s-res")
    first = json.loads(coord(repo, "--json", "agent", "show", name).stdout)
    session(front, [hook("start", "s-res", front)])  # resume: SessionStart again, same id
    again = json.loads(coord(repo, "--json", "agent", "show", name).stdout)
    assert again["generation"] == first["generation"]


@needs_git
def test_a_lost_lease_is_told_to_the_model_on_the_next_beat(repo: Path) -> None:
    front = repo.parent / "proj-frontend"
    res = session(
        front,
        [
            hook("start", "s-lost", front),
            {"run": ["-q", "task", "claim"]},
            hook("beat", "s-lost", front),  # the claim's own PostToolUse (throttled)
            {"sleep": 7.5},  # past the 6 s lease, which files keep in whole seconds (+1)
            {"run": ["-q", "reap"]},
            hook("beat", "s-lost", front),
        ],
    )
    task_id = res[1]["out"].strip()
    assert res[2]["out"] == "", res
    assert res[4]["out"], res
    out = json.loads(res[4]["out"])["hookSpecificOutput"]
    assert out["hookEventName"] == "PostToolUse"
    assert task_id in out["additionalContext"]
    assert "no longer hold" in out["additionalContext"]


def test_commands_without_an_agent_say_how_to_name_one(tmp_path: Path) -> None:
    assert coord(tmp_path, "init").returncode == 0
    assert coord(tmp_path, "task", "create", "x").returncode == 0
    done = coord(tmp_path, "task", "claim")
    assert done.returncode == 2
    assert "COORD_AGENT" in done.stderr and "--agent" in done.stderr
    who = coord(tmp_path, "whoami")
    assert who.returncode == 3
    assert coord(tmp_path, "agent", "register", "ada").returncode == 0
    named = coord(tmp_path, "-q", "task", "claim", COORD_AGENT="ada")
    assert named.returncode == 0, named.stderr
    assert task_json(tmp_path, named.stdout.strip())["agent"] == "ada"
    bad = coord(tmp_path, "task", "claim", COORD_AGENT="a/b")
    assert bad.returncode == 2


@pytest.mark.parametrize(
    "stdin",
    ["", "not json", "[1,2]", '{"session_id": 5}', '{"session_id": "a\\nb"}', "{" * 10000],
)
def test_hooks_never_fail_on_bad_input(tmp_path: Path, stdin: str) -> None:
    assert coord(tmp_path, "init").returncode == 0
    for kind in ("start", "beat", "end"):
        done = run_coord(tmp_path, ["session", kind], stdin)
        assert done.returncode == 0
        assert done.stdout == ""


def test_hooks_are_silent_without_a_board(tmp_path: Path) -> None:
    payload = json.dumps({"session_id": "s", "cwd": str(tmp_path)})
    for kind in ("start", "beat", "end"):
        done = run_coord(tmp_path, ["session", kind], payload)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_session_start_exports_the_name_through_claude_env_file(tmp_path: Path) -> None:
    assert coord(tmp_path, "init").returncode == 0
    env_file = tmp_path / "claude-env.sh"
    done = run_coord(
        tmp_path,
        ["session", "start"],
        json.dumps({"session_id": "s-env", "cwd": str(tmp_path)}),
        CLAUDE_ENV_FILE=str(env_file),
    )
    assert done.returncode == 0, done.stderr
    name = session_agent("claude-code", "s-env")
    assert env_file.read_text() == f"export COORD_AGENT={name}\n"


def test_a_name_held_by_another_live_session_is_a_warning_not_a_takeover(tmp_path: Path) -> None:
    assert coord(tmp_path, "init").returncode == 0
    assert coord(tmp_path, "agent", "register", "shared").returncode == 0
    done = run_coord(
        tmp_path,
        ["session", "start"],
        json.dumps({"session_id": "s-x", "cwd": str(tmp_path)}),
        COORD_AGENT="shared",
    )
    assert done.returncode == 0
    context = json.loads(done.stdout)["hookSpecificOutput"]["additionalContext"]
    assert context.startswith("WARNING from agentcoord:") and "shared" in context
    assert "you are agent shared" not in context  # no briefing as another session's agent
    # The session's own commands under that name are refused, not shared (exit 4).
    claim = subprocess.run(
        [*COORD, "task", "claim"],
        cwd=tmp_path,
        env=tool_env(COORD_AGENT="shared", CLAUDE_CODE_SESSION_ID="s-x"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert claim.returncode == 4, claim.stderr
    # Its end gives back nothing of the other session's.
    end = run_coord(
        tmp_path, ["session", "end"], json.dumps({"session_id": "s-x"}), COORD_AGENT="shared"
    )
    assert end.returncode == 0
    assert (
        json.loads(coord(tmp_path, "--json", "agent", "show", "shared").stdout)["status"]
        != "offline"
    )
    agent = json.loads(coord(tmp_path, "--json", "agent", "show", "shared").stdout)
    assert agent["generation"] == 1


# -- in-process: the domain and the prime text -------------------------------------------------
def test_the_mcp_server_and_the_hooks_of_one_session_are_one_session(coord: Any) -> None:
    from agentcoord.mcp.tools import Tools

    sid = "one-session"
    name, token = session_agent("claude-code", sid), session_token(sid)
    coord.agents.register(name, as_session=token)  # what the SessionStart hook did
    coord.tasks.create("t")
    tools = Tools(coord, resolver=lambda: Identity(name, "linked", token=token))
    assert tools.has_default
    claimed = tools.claim()
    assert claimed["agent"] == name
    agent = coord.agents.get(name)
    assert (agent.generation, agent.session) == (1, token)
    # A second tool session under the same name (COORD_AGENT in two sessions) is refused.
    other = Tools(coord, resolver=lambda: Identity(name, "COORD_AGENT", token=session_token("x")))
    with pytest.raises(Conflict):
        other.claim()


def test_sign_off_is_fenced_by_the_session(coord: Any) -> None:
    coord.agents.register("ada", as_session="aa")
    coord.tasks.create("t")
    coord.tasks.claim(agent="ada")
    coord.agents.register("ada", takeover=True)  # another session took the name
    with pytest.raises(Conflict):
        coord.agents.sign_off("ada", session="aa")
    assert coord.tasks.list(status="in_progress")[0].agent == "ada"
    coord.agents.sign_off("ada", release=True)
    assert coord.tasks.list(status="in_progress") == []
    assert coord.agents.get("ada").status == "offline"


def test_prime_is_bounded_and_escapes_titles(coord: Any, clock: FakeClock) -> None:
    coord.agents.register("ada")
    for i in range(60):
        coord.tasks.create(f"task {i} \u202e<b>red</b> # forged heading " + "x" * 200)
    coord.tasks.claim(agent="ada")
    data = gather(coord.tasks, coord.agents, "ada", clock())
    text = render(data)
    assert len(text) <= 2048
    assert "\u202e" not in text
    assert "Your tasks (1):" in text
    assert "more" in text  # the ready list was cut, and says so
    small = render(data, max_chars=300)
    assert len(small) <= 300


def test_a_tool_inside_another_tools_session_acts_as_its_own(tmp_path: Path) -> None:
    """Codex started from a Claude Code session inherits CLAUDE_CODE_SESSION_ID; its own
    session link (nearer in the process tree) names its agent, not the outer session's id."""
    assert coord(tmp_path, "init").returncode == 0
    outer = "outer-claude"
    steps = [
        {"hook": "start", "args": ["--tool", "codex"], "input": {"session_id": "inner-codex"}},
        {"run": ["--json", "whoami"]},
    ]
    res = session(tmp_path, steps, CLAUDE_CODE_SESSION_ID=outer)
    who = json.loads(res[1]["out"])
    assert who["agent"] == session_agent("codex", "inner-codex")
    assert who["source"] == "linked"
    # Without a link, the environment's id is the answer.
    lone = coord(tmp_path, "--json", "whoami", CLAUDE_CODE_SESSION_ID=outer)
    assert json.loads(lone.stdout)["agent"] == session_agent("claude-code", outer)


def test_session_end_without_a_session_gives_back_nothing(tmp_path: Path) -> None:
    assert coord(tmp_path, "init").returncode == 0
    assert coord(tmp_path, "task", "create", "x").returncode == 0
    # Session A's start runs in a tool process of its own (its session link is that process's).
    session(tmp_path, [{"hook": "start", "input": {"session_id": "A-1"}}], COORD_AGENT="alice")
    claim = coord(
        tmp_path, "-q", "task", "claim", COORD_AGENT="alice", CLAUDE_CODE_SESSION_ID="A-1"
    )
    assert claim.returncode == 0, claim.stderr
    for stdin in ("", json.dumps({"session_id": "x" * 300})):
        end = run_coord(tmp_path, ["session", "end"], stdin, COORD_AGENT="alice")
        assert (end.returncode, end.stdout, end.stderr) == (0, "", "")
    task = task_json(tmp_path, claim.stdout.strip())
    assert (task["status"], task["agent"]) == ("in_progress", "alice")
    assert not list((tmp_path / ".claude" / "coordination" / ".locks").glob("agent-claude-*"))
    # A throw-away session's end (what 'claude mcp list' runs) leaves no trace either.
    run_coord(tmp_path, ["session", "end"], json.dumps({"session_id": "throwaway"}))
    assert not list((tmp_path / ".claude" / "coordination").rglob("*claude-*"))


@pytest.mark.parametrize("kind", ["fifo", "symlink", "repeat"])
def test_claude_env_file_is_written_safely_once(tmp_path: Path, kind: str) -> None:
    assert coord(tmp_path, "init").returncode == 0
    env_file = tmp_path / "env.sh"
    victim = tmp_path / "victim"
    victim.write_text("# mine\n")
    if kind == "fifo":
        os.mkfifo(env_file)
    elif kind == "symlink":
        env_file.symlink_to(victim)
    payload = json.dumps({"session_id": "s-env2"})
    for _ in range(2 if kind == "repeat" else 1):
        done = run_coord(tmp_path, ["session", "start"], payload, CLAUDE_ENV_FILE=str(env_file))
        assert done.returncode == 0
        assert "additionalContext" in done.stdout
    assert victim.read_text() == "# mine\n"
    if kind == "repeat":
        name = session_agent("claude-code", "s-env2")
        assert env_file.read_text() == f"export COORD_AGENT={name}\n"


def test_a_hook_never_waits_long_for_a_trickling_writer(tmp_path: Path) -> None:
    """One deadline for the whole input (hooks.TOTAL_WAIT, 2 s), however the writer paces it.
    Checked by what was read, not by timing the process."""
    from agentcoord.timer.hooks import TOTAL_WAIT

    assert coord(tmp_path, "init").returncode == 0
    writer = (
        "import sys, time\n"
        'sys.stdout.write(\'{"session_id": "trickle"\')\n'
        "sys.stdout.flush()\n"
        "for _ in range(40):\n"
        "    time.sleep(0.25); sys.stdout.write(' '); sys.stdout.flush()\n"
    )
    feed = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE)
    try:
        done = subprocess.run(
            [*COORD, "session", "start"],
            cwd=tmp_path,
            stdin=feed.stdout,
            env=tool_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        # The hook gave up on the input while the writer was still writing (10 s in all).
        assert feed.poll() is None
    finally:
        feed.kill()
        feed.wait()
        assert feed.stdout is not None
        feed.stdout.close()
    assert done.returncode == 0 and done.stdout == ""
    assert TOTAL_WAIT <= 2.0


def test_an_mcp_server_of_its_own_session_gives_back_its_work_when_the_client_leaves(
    tmp_path: Path,
) -> None:
    """A tool without session hooks (Cursor): the stdio server is the session; when its client
    closes stdin, its agent signs off like a session end."""
    assert coord(tmp_path, "init").returncode == 0
    assert coord(tmp_path, "task", "create", "x").returncode == 0
    init = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "cursor", "version": "1"},
    }
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "claim", "arguments": {}},
        },
    ]
    proc = subprocess.Popen(
        [*COORD, "mcp"],
        cwd=tmp_path,
        env=tool_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    answers = []
    for message in lines:
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()
        if "id" in message:
            answers.append(json.loads(proc.stdout.readline()))
    claimed = json.loads(answers[1]["result"]["content"][0]["text"])
    assert claimed["agent"].startswith("mcp-")
    assert task_json(tmp_path, claimed["id"])["status"] == "in_progress"
    proc.stdin.close()
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()
    assert task_json(tmp_path, claimed["id"])["status"] == "pending"
    agent = json.loads(coord(tmp_path, "--json", "agent", "show", claimed["agent"]).stdout)
    assert agent["status"] == "offline"


def test_prime_and_the_check_in_count_the_agents_messages(coord: Any, clock: FakeClock) -> None:
    """SPEC 14: ``coord prime`` and the check-in show unread and ack-required counts."""
    from agentcoord.timer.check import summary_lines

    coord.agents.register("ada")
    coord.agents.register("lead")
    coord.messages.send("lead", "ada", "review please", "the diff", ack_required=True)
    coord.messages.send("lead", "ada", "fyi", "nothing to do")
    data = gather(coord.tasks, coord.agents, "ada", clock(), messages=coord.messages)
    assert data["messages"] == {"unread": 2, "ack_required": 1}
    assert "Messages: 2 unread, 1 waiting for your ack" in render(data)
    quiet = gather(coord.tasks, coord.agents, "lead", clock(), messages=coord.messages)
    assert "Messages:" not in render(quiet)
    lines = summary_lines({"messages": {"agent": "ada", "unread": 2, "ack_required": 1}})
    assert any(line.startswith("Messages for ada: 2 unread, 1 waiting") for line in lines)
