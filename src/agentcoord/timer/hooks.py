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


def read_payload(
    stream: TextIO | None = None,
    *,
    timeout: float = 0.5,
    limit: int = STDIN_LIMIT,
    strict: bool = False,
) -> dict[str, Any]:
    """The hook's JSON input from stdin: waits ``timeout`` seconds for it to start and at most
    :data:`TOTAL_WAIT` in all for the rest (however the writer paces it), reads at most
    ``limit`` bytes; never blocks on a terminal. {} for no input, or for anything that is not a
    JSON object; with ``strict``, input that came but was cut off, too long or not a JSON
    object is :class:`~agentcoord.errors.InvalidInput` instead (a guard must say it could not
    read its question rather than look like an empty one)."""
    import select
    import time

    stream = sys.stdin if stream is None else stream
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return {}
    if os.isatty(fd):
        return {}
    chunks: list[bytes] = []
    size = 0
    ended = False
    deadline = time.monotonic() + max(timeout, TOTAL_WAIT)
    while size <= limit:
        now = time.monotonic()
        left = (deadline - now) if chunks else min(timeout, deadline - now)
        if left <= 0:
            break
        try:
            readable, _, _ = select.select([fd], [], [], left)
        except (OSError, ValueError):
            break
        if not readable:
            break
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            ended = True
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.rstrip().endswith(b"}"):  # maybe complete: the writer may keep the pipe open
            try:
                data = json.loads(b"".join(chunks))
            except ValueError:
                continue
            return _object(data, strict)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        if size > limit:
            raise ValueError(f"more than {limit:,} bytes")
        data = json.loads(raw)
    except ValueError as exc:
        if strict:
            from ..errors import InvalidInput

            how = "it ended" if ended else "it stopped coming"
            raise InvalidInput(
                f"the hook input is not a whole JSON object ({how}: {exc})"
            ) from None
        return {}
    return _object(data, strict)


def _object(data: object, strict: bool) -> dict[str, Any]:
    if isinstance(data, dict):
        return data
    if strict:
        from ..errors import InvalidInput

        raise InvalidInput(f"the hook input is a JSON {type(data).__name__}, not an object")
    return {}


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
