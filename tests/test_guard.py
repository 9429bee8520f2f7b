"""The edit guard (``coord session guard``, Claude Code's ``PreToolUse`` hook; SPEC sections 12
and 13; issue 18): fed Claude Code's documented hook input for an edit of a file another agent
has reserved, it prints the documented deny decision; otherwise nothing, exit 0 always."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from agentcoord.cli.cmd_session import deny_output, repo_relative
from agentcoord.core.identity import session_agent
from agentcoord.fs import git_top

from .conftest import COORD
from .gitrepo import git
from .test_sessions import coord, needs_git, run_coord


def edit_input(sid: str, cwd: Path, path: str, tool: str = "Edit") -> dict[str, Any]:
    """Claude Code's documented ``PreToolUse`` input (https://code.claude.com/docs/en/hooks)."""
    tool_input: dict[str, Any] = {"file_path": path, "old_string": "a", "new_string": "b"}
    if tool == "Write":
        tool_input = {"file_path": path, "content": "x"}
    elif tool == "NotebookEdit":
        tool_input = {"notebook_path": path, "new_source": "x", "cell_id": "c1"}
    elif tool == "MultiEdit":
        tool_input = {"file_path": path, "edits": [{"old_string": "a", "new_string": "b"}]}
    return {
        "session_id": sid,
        "transcript_path": str(cwd / ".transcript.jsonl"),
        "cwd": str(cwd),
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": tool,
        "tool_input": tool_input,
        "tool_use_id": "toolu_01ABC123",
    }


def guard(cwd: Path, payload: Any, **env: str) -> subprocess.CompletedProcess[str]:
    stdin = payload if isinstance(payload, str) else json.dumps(payload)
    return run_coord(cwd, ["session", "guard"], stdin, **env)


@pytest.fixture
def board(tmp_path: Path) -> Path:
    """A git repository with a board, agents ``alice`` and the session ``sess-mine``'s, and
    ``alice`` holding ``src/api/**`` exclusively."""
    root = tmp_path / "proj"
    (root / "src" / "api").mkdir(parents=True)
    (root / "src" / "api" / "x.py").write_text("a\n")
    (root / "src" / "free.py").write_text("a\n")
    git(root, "init", "-q", "-b", "main")
    assert coord(root, "init").returncode == 0
    for name in ("alice", session_agent("claude-code", "sess-mine")):
        assert coord(root, "agent", "register", name).returncode == 0
    done = coord(
        root, "files", "reserve", "src/api", "--reason", "auth refactor", COORD_AGENT="alice"
    )
    assert done.returncode == 0, done.stderr
    return root


@needs_git
@pytest.mark.parametrize("tool", ["Edit", "Write", "MultiEdit", "NotebookEdit"])
def test_an_edit_of_a_reserved_file_is_denied_with_the_reason(board: Path, tool: str) -> None:
    done = guard(board, edit_input("sess-mine", board, str(board / "src/api/x.py"), tool))
    assert done.returncode == 0 and done.stderr == ""
    out = json.loads(done.stdout)
    decision = out["hookSpecificOutput"]
    assert set(decision) == {"hookEventName", "permissionDecision", "permissionDecisionReason"}
    assert decision["hookEventName"] == "PreToolUse"
    assert decision["permissionDecision"] == "deny"
    reason = decision["permissionDecisionReason"]
    assert reason.startswith("src/api/x.py is reserved by alice (pattern 'src/api/**'")
    assert "auth refactor" in reason and "until released" in reason


@needs_git
def test_an_unreserved_file_or_an_own_reservation_is_silent(board: Path) -> None:
    free = guard(board, edit_input("sess-mine", board, str(board / "src/free.py")))
    assert (free.returncode, free.stdout, free.stderr) == (0, "", "")
    new = guard(board, edit_input("sess-mine", board, str(board / "src/new/file.py"), "Write"))
    assert (new.returncode, new.stdout, new.stderr) == (0, "", "")
    mine = session_agent("claude-code", "sess-mine")
    assert coord(board, "files", "reserve", "src/free.py", COORD_AGENT=mine).returncode == 0
    own = guard(board, edit_input("sess-mine", board, str(board / "src/free.py")))
    assert (own.returncode, own.stdout, own.stderr) == (0, "", "")
    # the holder itself (COORD_AGENT names the session's agent) edits its own file
    held = guard(
        board, edit_input("sess-mine", board, str(board / "src/api/x.py")), COORD_AGENT="alice"
    )
    assert (held.returncode, held.stdout) == (0, "")
    # a shared reservation never denies
    assert coord(board, "files", "release", "--all", COORD_AGENT="alice").returncode == 0
    shared = coord(board, "files", "reserve", "src/api", "--shared", COORD_AGENT="alice")
    assert shared.returncode == 0
    read = guard(board, edit_input("sess-mine", board, str(board / "src/api/x.py")))
    assert (read.returncode, read.stdout) == (0, "")


@needs_git
def test_relative_paths_subdirectories_and_released_files(board: Path) -> None:
    sub = board / "src"
    rel = guard(sub, edit_input("sess-mine", sub, "api/x.py"))
    assert json.loads(rel.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
    dots = guard(sub, edit_input("sess-mine", sub, str(board / "docs/../src/api/x.py")))
    assert "deny" in dots.stdout
    outside = guard(board, edit_input("sess-mine", board, "/etc/hostname"))
    assert (outside.returncode, outside.stdout, outside.stderr) == (0, "", "")
    assert coord(board, "files", "release", "src/api", COORD_AGENT="alice").returncode == 0
    after = guard(board, edit_input("sess-mine", board, str(board / "src/api/x.py")))
    assert (after.returncode, after.stdout) == (0, "")


@needs_git
def test_a_linked_worktree_checks_the_same_logical_path(board: Path, tmp_path: Path) -> None:
    (board / "README").write_text("x\n")
    git(board, "add", "README", "src")
    git(board, "commit", "-q", "-m", "init")
    wt = tmp_path / "proj-wt"
    git(board, "worktree", "add", "-q", str(wt), "-b", "wt")
    done = guard(wt, edit_input("sess-mine", wt, str(wt / "src/api/x.py")))
    assert "deny" in done.stdout, done.stderr
    # a file of the main worktree edited from the linked one counts too
    other = guard(wt, edit_input("sess-mine", wt, str(board / "src/api/x.py")))
    assert "deny" in other.stdout, other.stderr


@pytest.mark.parametrize(
    "stdin",
    [
        "",
        "not json",
        "[1]",
        '{"tool_name": "Edit"}',
        '{"tool_name": "Edit", "tool_input": []}',
        '{"tool_name": "Edit", "tool_input": {"file_path": 5}}',
        '{"tool_name": "Edit", "tool_input": {"file_path": "a\\u0000b"}}',
        '{"tool_name": "Edit", "tool_input": {"file_path": "x\\ny"}, "cwd": 3}',
        '{"tool_name": "Bash", "tool_input": {"command": "rm -rf src"}}',
        '{"tool_name": "Edit", "session_id": "a\\nb", "tool_input": {"file_path": "../../x"}}',
        "{" * 10000,
    ],
)
def test_bad_input_never_fails_the_tool(board: Path, stdin: str) -> None:
    done = guard(board, stdin)
    assert done.returncode == 0
    assert done.stdout == ""


def test_silent_without_a_board_and_allows_when_the_board_is_broken(tmp_path: Path) -> None:
    payload = edit_input("s", tmp_path, str(tmp_path / "a.py"))
    done = guard(tmp_path, payload)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert coord(tmp_path, "init").returncode == 0
    assert coord(tmp_path, "agent", "register", "alice").returncode == 0
    assert coord(tmp_path, "files", "reserve", "a.py", COORD_AGENT="alice").returncode == 0
    denied = guard(tmp_path, payload)
    assert "deny" in denied.stdout  # no git: the board's project is the root
    table = tmp_path / ".claude" / "coordination" / "reservations.md"
    table.unlink()
    table.mkdir()  # unreadable: the guard must let the edit through
    broken = guard(tmp_path, payload)
    assert broken.returncode == 0 and broken.stdout == ""
    assert broken.stderr.startswith("coord session guard: ")


def test_the_guard_is_quick_when_nothing_is_reserved(tmp_path: Path) -> None:
    assert coord(tmp_path, "init").returncode == 0
    payload = edit_input("s", tmp_path, str(tmp_path / "a.py"))
    guard(tmp_path, payload)
    start = time.monotonic()
    for _ in range(3):
        done = guard(tmp_path, payload)
        assert (done.returncode, done.stdout) == (0, "")
    assert (time.monotonic() - start) / 3 < 2.0  # start-up dominated; generous for CI


def test_repo_relative_and_the_root_walk(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "a" / "b").mkdir(parents=True)
    (root / ".git").mkdir()
    assert git_top(str(root / "a" / "b")) == str(root)
    assert git_top("/") is None or os.path.isdir("/.git")
    assert repo_relative(str(root / "a" / "x.py"), str(root / "a")) == "a/x.py"
    assert repo_relative(str(root), str(root)) is None
    assert repo_relative(str(tmp_path / "elsewhere.py"), str(root)) is None
    assert repo_relative(str(tmp_path / "rx" / "y"), str(root)) is None  # a prefix, not inside
    plain = tmp_path / "plain"
    plain.mkdir()
    assert repo_relative(str(plain / "f"), str(plain), fallback=str(plain)) == "f"


def test_deny_output_is_claude_codes_shape() -> None:
    assert json.loads(deny_output("why")) == {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": "why",
        }
    }


@needs_git
def test_without_a_named_agent_every_exclusive_reservation_counts(board: Path) -> None:
    payload = edit_input("sess-mine", board, str(board / "src/api/x.py"))
    del payload["session_id"]
    done = guard(board, payload)
    reason = json.loads(done.stdout)["hookSpecificOutput"]["permissionDecisionReason"]
    assert "No agent is named for this session" in reason
    # a session id given on the command line names the agent like the input's does
    own = session_agent("claude-code", "sess-own")
    assert coord(board, "agent", "register", own).returncode == 0
    assert coord(board, "files", "reserve", "lib/**", COORD_AGENT=own).returncode == 0
    lib = edit_input("x", board, str(board / "lib/a.py"))
    del lib["session_id"]
    mine = run_coord(board, ["session", "guard", "--session-id", "sess-own"], json.dumps(lib))
    assert (mine.returncode, mine.stdout) == (0, "")


# -- review findings -----------------------------------------------------------------------------
@needs_git
@pytest.mark.parametrize("spelling", ["alias.py", "srclink/api/x.py", "erlink/../../api/x.py"])
def test_a_symbolic_link_inside_the_repository_does_not_hide_a_reserved_file(
    board: Path, spelling: str
) -> None:
    (board / "alias.py").symlink_to("src/api/x.py")
    (board / "srclink").symlink_to("src")
    (board / "src" / "deep" / "er").mkdir(parents=True)
    (board / "erlink").symlink_to("src/deep/er")
    done = guard(board, edit_input("sess-mine", board, str(board / spelling)))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"


@needs_git
def test_a_write_of_a_large_file_is_still_checked(board: Path) -> None:
    payload = edit_input("sess-mine", board, str(board / "src/api/x.py"), "Write")
    payload["tool_input"]["content"] = "a" * (3 << 20)  # more than other hooks ever read
    done = guard(board, payload)
    assert json.loads(done.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"


@needs_git
def test_input_that_arrives_in_pieces_is_read_whole(board: Path) -> None:
    text = json.dumps(edit_input("sess-mine", board, str(board / "src/api/x.py")))
    writer = (
        "import sys, time\n"
        f"text = {text!r}\n"
        "sys.stdout.write(text[:40]); sys.stdout.flush(); time.sleep(1)\n"
        "sys.stdout.write(text[40:]); sys.stdout.flush()\n"
    )
    import sys

    feed = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE)
    assert feed.stdout is not None
    try:
        done = subprocess.run(
            [*COORD, "session", "guard"],
            cwd=board,
            stdin=feed.stdout,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        feed.wait()
        feed.stdout.close()
    assert json.loads(done.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"


@needs_git
def test_input_cut_off_is_said_on_stderr(board: Path) -> None:
    text = json.dumps(edit_input("sess-mine", board, str(board / "src/api/x.py")))
    done = guard(board, text[: len(text) // 2])
    assert done.returncode == 0 and done.stdout == ""
    assert "not a whole JSON object" in done.stderr
