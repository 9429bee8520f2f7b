"""``coord hook``: silent when nothing is new, Claude Code's hook JSON otherwise, never in the way.

The checkpoint files are written by hand (no daemon needed): the hook only reads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from agentcoord.timer.files import TimerFiles, format_checkpoint
from agentcoord.timer.hooks import clip, render, session_consumer
from agentcoord.workspace import Workspace, init_workspace

from .conftest import COORD


@pytest.fixture
def project(tmp_path: Path) -> Workspace:
    proj = tmp_path / "proj"
    proj.mkdir()
    ws, _ = init_workspace(cwd=str(proj))
    return ws


def tick(ws: Workspace, n: int, name: str | None = None) -> None:
    Path(TimerFiles(ws.timer_dir, name).checkpoint).write_text(format_checkpoint(n, time.time()))


def hook(
    ws: Workspace | None,
    payload: object = None,
    *args: str,
    cwd: str | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COORD_DIR", "COORD_URL")}
    env["COORD_FSYNC"] = "0"
    if ws is not None:
        env["COORD_DIR"] = ws.root
    stdin = json.dumps(payload) if payload is not None else ""
    return subprocess.run(
        [*COORD, "hook", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_post_tool_use_gets_additional_context_once(project: Workspace) -> None:
    tick(project, 1)
    payload = {"hook_event_name": "PostToolUse", "session_id": "s1", "tool_name": "Bash"}
    first = hook(project, payload)
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    specific = out["hookSpecificOutput"]
    assert specific["hookEventName"] == "PostToolUse"
    assert "🚨 COORDINATION CHECK-IN REQUIRED" in specific["additionalContext"]
    assert "Checkpoint: 1" in specific["additionalContext"]
    assert "SUMMARY" in specific["additionalContext"]
    again = hook(project, payload)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")


def test_user_prompt_submit_event_from_the_flag(project: Workspace) -> None:
    tick(project, 2)
    result = hook(project, None, "--event", "UserPromptSubmit")
    assert result.returncode == 0
    assert json.loads(result.stdout)["hookSpecificOutput"]["hookEventName"] == "UserPromptSubmit"


def test_other_events_and_text_format_get_plain_text(project: Workspace) -> None:
    tick(project, 1)
    result = hook(project, {"hook_event_name": "Stop"})
    assert result.returncode == 0
    assert result.stdout.startswith("=" * 60 + "\n🚨 COORDINATION CHECK-IN REQUIRED")
    tick(project, 2)
    result = hook(project, {"hook_event_name": "PostToolUse"}, "--format", "text")
    assert result.stdout.startswith("=" * 60)


def test_silent_without_a_timer_or_a_workspace(project: Workspace, tmp_path: Path) -> None:
    assert hook(project, {"hook_event_name": "PostToolUse"}).stdout == ""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = hook(None, {"hook_event_name": "PostToolUse"}, cwd=str(elsewhere))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_workspace_found_from_the_hook_input_cwd(project: Workspace, tmp_path: Path) -> None:
    tick(project, 1)
    proj = os.path.dirname(os.path.dirname(project.root))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = hook(None, {"hook_event_name": "PostToolUse", "cwd": proj}, cwd=str(elsewhere))
    assert result.returncode == 0 and "hookSpecificOutput" in result.stdout


def test_per_session_consumers_each_get_the_check_in(project: Workspace) -> None:
    tick(project, 1)
    for session in ("aaa-111", "bbb-222"):
        payload = {"hook_event_name": "PostToolUse", "session_id": session}
        assert hook(project, payload, "--per-session").stdout
        assert hook(project, payload, "--per-session").stdout == ""
    assert os.path.exists(TimerFiles(project.timer_dir).last_check("s-aaa-111"))


def test_named_timer(project: Workspace) -> None:
    tick(project, 1, "quality")
    assert hook(project, {"hook_event_name": "PostToolUse"}).stdout == ""
    result = hook(project, {"hook_event_name": "PostToolUse"}, "--name", "quality")
    assert "Timer: quality" in json.loads(result.stdout)["hookSpecificOutput"]["additionalContext"]


def test_errors_never_block_the_tool(project: Workspace) -> None:
    Path(TimerFiles(project.timer_dir).checkpoint).write_text("garbage\n")
    result = hook(project, {"hook_event_name": "PostToolUse"})
    assert result.returncode == 0 and result.stdout == ""
    assert "checkpoint count is not a whole number" in result.stderr
    result = hook(project, {"hook_event_name": "PostToolUse"}, "--name", "../x")
    assert result.returncode == 0 and "invalid timer name" in result.stderr


def test_malformed_input_is_ignored(project: Workspace) -> None:
    tick(project, 1)
    env = dict(os.environ, COORD_DIR=project.root)
    result = subprocess.run(
        [*COORD, "hook"],
        input="{not json",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.startswith("=" * 60)


def test_output_is_bounded(project: Workspace) -> None:
    tick(project, 1)
    result = hook(project, {"hook_event_name": "PostToolUse"}, "--max-chars", "300")
    context = json.loads(result.stdout)["hookSpecificOutput"]["additionalContext"]
    assert len(context) <= 300 and context.endswith("(truncated; run coord timer check)")


def test_render_and_helpers() -> None:
    assert json.loads(render("SessionStart", "x")) == {
        "hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": "x"}
    }
    assert render(None, "x") == "x"
    assert render("PostToolUse", "x", "text") == "x"
    assert clip("abc", 10) == "abc"
    assert session_consumer("ab/../c d") == "s-ab----c-d"
    assert session_consumer(None) is None
    assert session_consumer("///") is None
