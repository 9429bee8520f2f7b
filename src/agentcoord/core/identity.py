"""Per-session agent identity (SPEC section 12): the agent name and session token an agent
tool's session gets when ``COORD_AGENT`` does not name it.

Pure derivation, no I/O: :mod:`agentcoord.sessions` finds the session id (a hook's input, the
link a session-start hook left for the tool's process) and the environment.

- The name is the tool's prefix and the first 8 hex digits of SHA-256 of the session id
  (``claude-3f9a0c1e``): stable for the session (a resumed session is the same agent), different
  for two sessions, and a valid agent name (SPEC section 3) whatever the id holds.
- The session token (SPEC section 11) is 16 hex digits of SHA-256 of a domain-separated form of
  the id, so the hooks and the MCP server of one tool session register as the *same* session of
  the name, and a second tool session never silently takes it over.
"""

from __future__ import annotations

import hashlib

from ..errors import InvalidInput

#: Tool -> the prefix of its sessions' agent names. ``coord setup`` and ``--tool`` take these.
TOOLS: dict[str, str] = {
    "claude-code": "claude",
    "codex": "codex",
    "gemini-cli": "gemini",
    "cursor": "cursor",
}
DEFAULT_TOOL = "claude-code"
#: Longest session id accepted (Claude Code's are UUIDs: 36 characters).
MAX_SESSION_ID = 256


def check_tool(tool: object) -> str:
    """``tool`` if it is one of :data:`TOOLS`, else :class:`InvalidInput` (exit 2)."""
    if not isinstance(tool, str) or tool not in TOOLS:
        raise InvalidInput(f"unknown agent tool {tool!r}: use one of {', '.join(TOOLS)}")
    return tool


def check_session_id(session_id: object) -> str:
    """A session id as a tool gives it: a string of 1-256 printable characters, no spaces at the
    ends; :class:`InvalidInput` (exit 2) otherwise."""
    if (
        not isinstance(session_id, str)
        or not 0 < len(session_id) <= MAX_SESSION_ID
        or not session_id.isprintable()
        or session_id != session_id.strip()
    ):
        shown = repr(session_id)[:60] if isinstance(session_id, str) else type(session_id).__name__
        raise InvalidInput(
            f"invalid session id {shown}: 1-{MAX_SESSION_ID} printable characters expected"
        )
    return session_id


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def session_agent(tool: str, session_id: str) -> str:
    """The agent name of ``tool``'s session ``session_id``: ``<prefix>-<8 hex>``."""
    prefix = TOOLS[check_tool(tool)]
    return f"{prefix}-{_digest(check_session_id(session_id))[:8]}"


def session_token(session_id: str) -> str:
    """The registration token (16 hex digits) of the session ``session_id``."""
    return _digest("agentcoord-session\0" + check_session_id(session_id))[:16]
