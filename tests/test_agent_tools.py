"""The agent-tool integration end to end (SPEC section 12; issue 17; docs/agent-tools.md).

``coord setup claude-code`` writes the project config; a stand-in for Claude Code then does
what Claude Code does with it: runs the configured hook commands through ``sh -c`` with the
hook's JSON input, and starts the MCP server from ``.mcp.json`` as its own child. The hooks and
the MCP server must act as one agent, the session's own, and the docs' snippets must be what
setup writes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentcoord.core.identity import session_agent

from .conftest import COORD

ROOT = Path(__file__).resolve().parent.parent
COORD_BIN = str(Path(sys.executable).with_name("coord"))

#: Claude Code, reduced to what it does with a project's config: hooks by ``sh -c`` with the
#: JSON input on stdin, the MCP server as a child speaking JSON-RPC lines on stdio.
TOOL = r"""
import json, subprocess, sys
sid = sys.argv[1]
settings = json.load(open(".claude/settings.json"))
server = json.load(open(".mcp.json"))["mcpServers"]["coord"]
out = {}

def hooks(event, **extra):
    results = []
    for group in settings["hooks"].get(event, []):
        for h in group["hooks"]:
            payload = {"session_id": sid, "hook_event_name": event, "cwd": ".", **extra}
            p = subprocess.run(["sh", "-c", h["command"]], input=json.dumps(payload),
                               capture_output=True, text=True)
            results.append({"command": h["command"], "rc": p.returncode, "out": p.stdout,
                            "err": p.stderr})
    return results

out["start"] = hooks("SessionStart", source="startup")
mcp = subprocess.Popen([server["command"], *server["args"]], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, text=True)

def rpc(message):
    mcp.stdin.write(json.dumps(message) + "\n")
    mcp.stdin.flush()
    if "id" in message:
        return json.loads(mcp.stdout.readline())

rpc({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "claude-code", "version": "2"}}})
rpc({"jsonrpc": "2.0", "method": "notifications/initialized"})
listed = rpc({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
out["claim_schema"] = [t["inputSchema"] for t in listed["result"]["tools"]
                       if t["name"] == "claim"][0]
out["claim"] = rpc({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": "claim", "arguments": {}}})
out["guard"] = hooks("PreToolUse", tool_name="Edit",
                     tool_input={"file_path": "notes.txt", "old_string": "a", "new_string": "b"})
out["beat"] = hooks("PostToolUse", tool_name="mcp__coord__claim")
out["prompt"] = hooks("UserPromptSubmit", prompt="go on")
mcp.stdin.close()
mcp.wait(timeout=30)
out["end"] = hooks("SessionEnd", reason="prompt_input_exit")
print(json.dumps(out))
"""


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COORD_DIR", "COORD_URL")}
    return subprocess.run(
        [*COORD, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    assert run(root, "init").returncode == 0
    for title in ("first", "second"):
        assert run(root, "task", "create", title).returncode == 0
    return root


def test_a_session_set_up_by_coord_setup_is_one_agent_from_hooks_to_mcp(project: Path) -> None:
    done = run(project, "setup", "claude-code", "--root", str(project), "--coord", COORD_BIN)
    assert done.returncode == 0, done.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("COORD_DIR", "COORD_URL")}
    tool = subprocess.run(
        [sys.executable, "-c", TOOL, "sess-42"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out: dict[str, Any] = json.loads(tool.stdout)
    name = session_agent("claude-code", "sess-42")
    for event in ("start", "guard", "beat", "prompt", "end"):
        for hook in out[event]:
            assert hook["rc"] == 0, hook
            assert hook["err"] == "", hook
    assert [h["out"] for h in out["guard"]] == [""]  # nothing reserved: the edit goes ahead
    context = json.loads(out["start"][0]["out"])["hookSpecificOutput"]["additionalContext"]
    assert f"you are agent {name}" in context
    # The MCP server acts as the session's agent: no agent argument is advertised or needed.
    assert "agent" not in out["claim_schema"].get("properties", {})
    claimed = json.loads(out["claim"]["result"]["content"][0]["text"])
    assert claimed["agent"] == name
    agent = json.loads(run(project, "--json", "agent", "show", name).stdout)
    assert agent["generation"] == 1  # hooks and server registered as one session
    # SessionEnd gave the task back and took the agent offline.
    assert agent["status"] == "offline"
    task = json.loads(run(project, "--json", "task", "show", claimed["id"]).stdout)
    assert task["status"] == "pending"


# -- docs/agent-tools.md: every snippet is what the code does ----------------------------------
DOC = ROOT / "docs" / "agent-tools.md"


def _snippets() -> list[tuple[str, str, str]]:
    """(tool, file, JSON or TOML text) of each ``<!-- setup TOOL FILE -->`` snippet."""
    text = DOC.read_text()
    found = re.findall(r"<!-- setup (\S+) (\S+) -->\n```\w*\n(.*?)```", text, re.S)
    return [(tool, path, body) for tool, path, body in found]


def test_the_docs_show_every_file_setup_writes() -> None:
    from agentcoord.ops.setup import TOOLS

    shown = {(tool, path) for tool, path, _ in _snippets()}
    wanted = {
        (tool, part.path)
        for tool, spec in TOOLS.items()
        for part in spec.parts
        if part.kind in ("json", "toml")
    }
    assert shown == wanted


@pytest.mark.parametrize(("tool", "path", "body"), _snippets())
def test_each_config_snippet_is_what_setup_writes(
    tmp_path: Path, tool: str, path: str, body: str
) -> None:
    done = run(tmp_path, "setup", tool, "--root", str(tmp_path), "--coord", "coord")
    assert done.returncode == 0, done.stderr
    written = (tmp_path / path).read_text()
    if path.endswith(".toml"):
        import tomlkit

        assert tomlkit.loads(written).unwrap() == tomlkit.loads(body).unwrap()
    else:
        assert json.loads(written) == json.loads(body)


def test_the_docs_workflow_section_is_the_one_setup_writes() -> None:
    from agentcoord.ops.setup import WORKFLOW

    assert WORKFLOW.strip() in DOC.read_text()


def test_the_docs_pre_commit_block_is_the_one_setup_writes() -> None:
    from agentcoord.ops.setup import git_block

    assert "#!/bin/sh\n" + git_block("coord") + "\n" in DOC.read_text()
