"""``coord hook``: the check-in for agent tools' hooks (seed 004, "Hook integration").

An agent tool runs ``coord hook`` from a hook (Claude Code: ``UserPromptSubmit``, ``PostToolUse``,
``SessionStart``). It is silent, exit 0, when no new checkpoint arrived; otherwise it prints the
check-in (banner + summary) in the form the tool's hook protocol expects. For Claude Code that
is a JSON object on stdout with exit 0::

    {"hookSpecificOutput": {"hookEventName": "PostToolUse", "additionalContext": "..."}}

which Claude Code adds to the model's context (https://code.claude.com/docs/en/hooks, "Hook
output": ``additionalContext`` for ``UserPromptSubmit``, ``PostToolUse`` and ``SessionStart``).
For any other event, or ``--format text``, the check-in is printed as plain text.

A hook must never get in the agent's way: a missing workspace or timer is silence, and any
error is one line on stderr with exit 0 (exit 2 would block the tool call in Claude Code).
"""

from __future__ import annotations

import json
import os
import re
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

#: Events whose JSON output carries ``hookSpecificOutput.additionalContext``: Claude Code's and
#: Codex's (the same names), and Gemini CLI's AfterTool and BeforeAgent (its PostToolUse and
#: UserPromptSubmit; verified with Gemini CLI 0.61).
CONTEXT_EVENTS = ("UserPromptSubmit", "PostToolUse", "SessionStart", "AfterTool", "BeforeAgent")
#: Claude Code shows a short preview instead of context past ~10,000 characters; stay well below.
MAX_CHARS = 4000
STDIN_LIMIT = 1 << 20
#: The longest a hook waits for its input in all (seconds), however the writer paces it.
TOTAL_WAIT = 2.0


def read_payload(stream: TextIO | None = None, *, timeout: float = 0.5) -> dict[str, Any]:
    """The hook's JSON input from stdin, if any arrives promptly: ``timeout`` seconds between
    reads and :data:`TOTAL_WAIT` in all; never blocks on a terminal. {} for anything that is
    not a JSON object."""
    import select

    stream = sys.stdin if stream is None else stream
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return {}
    if os.isatty(fd):
        return {}
    import time

    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + max(timeout, TOTAL_WAIT)
    while size < STDIN_LIMIT:
        left = min(timeout, deadline - time.monotonic())
        if left <= 0:
            break  # a writer that trickles: the hook never waits longer than TOTAL_WAIT
        try:
            readable, _, _ = select.select([fd], [], [], left)
        except (OSError, ValueError):
            break
        if not readable:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        try:  # a complete object ends the wait even if the writer keeps the pipe open
            data = json.loads(b"".join(chunks))
        except ValueError:
            continue
        return data if isinstance(data, dict) else {}
    try:
        data = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def session_consumer(session_id: object) -> str | None:
    """A consumer name derived from the tool's session id (one check-in stream per session)."""
    if not isinstance(session_id, str):
        return None
    clean = re.sub(r"[^A-Za-z0-9_-]", "-", session_id).strip("-_")[:40]
    return f"s-{clean}" if clean else None


def find_workspace_from(start: str | None) -> str | None:
    """The board for the hook's ``cwd``, found as from that directory (linked git worktrees
    included: :func:`agentcoord.workspace.find_root`), or None."""
    from ..errors import NotFound
    from ..workspace import find_root

    if not start or not isinstance(start, str) or not os.path.isdir(start):
        return None
    try:
        return find_root(env={}, start=start)
    except NotFound:
        return None


def clip(text: str, limit: int = MAX_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 40)].rstrip() + "\n... (truncated; run coord timer check)"


def render(event: str | None, text: str, fmt: str = "auto") -> str:
    """The hook's stdout for a check-in: Claude Code's JSON for context events, else text."""
    if fmt == "text" or event not in CONTEXT_EVENTS:
        return text
    payload = {"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}}
    return json.dumps(payload, ensure_ascii=False)
