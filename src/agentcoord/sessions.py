"""Who is acting: the agent name of a command, a hook or the MCP server (SPEC section 12).

Resolution order (first that applies):

1. an explicit name (``--agent NAME``, an MCP tool's ``agent`` argument);
2. ``COORD_AGENT`` from the environment;
3. the agent tool's session id given to this process (a hook's JSON input carries
   ``session_id``): the derived name of :mod:`agentcoord.core.identity`;
4. the *session link* a session-start hook left for the agent tool's process: ``coord session
   start`` records ``{agent, tool, session_id, token}`` under the tool's pid (and its start
   time, so a reused pid never matches), and any process below it (the tool's Bash commands, its
   MCP server) finds the nearest one by walking up its own parents. This is how ``coord task
   claim`` in a Claude Code session and the session's MCP server act as the same agent as its
   hooks, and a tool started inside another tool's session acts as its own;
5. a session id in the environment (:data:`ENV_SESSIONS`: Claude Code gives its hooks, commands
   and MCP servers ``CLAUDE_CODE_SESSION_ID``) where no link is found (no ``/proc``, or before
   the session-start hook ran). It comes after the links because children inherit it.

Links are files ``<pid>-<start ticks>.json`` (0600) in a private (0700) directory of the user:
``$COORD_SESSION_DIR``, else ``$XDG_RUNTIME_DIR/agentcoord/sessions``, else
``~/.cache/agentcoord/sessions``. They need ``/proc`` (Linux); elsewhere step 4 finds nothing and
``COORD_AGENT`` (which the session-start hook exports through Claude Code's ``CLAUDE_ENV_FILE``)
carries the name.
"""

from __future__ import annotations

import json
import os

from .core.identity import DEFAULT_TOOL, session_agent, session_token
from .core.validate import check_name
from .errors import InvalidInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

ENV_AGENT = "COORD_AGENT"
#: Session ids agent tools put in the environment of what they run (observed: Claude Code
#: 2.1.197 gives its hooks, Bash commands and MCP servers ``CLAUDE_CODE_SESSION_ID``; Gemini
#: CLI 0.61 its hooks ``GEMINI_SESSION_ID``; Codex 0.171 none).
ENV_SESSIONS = {"CLAUDE_CODE_SESSION_ID": "claude-code", "GEMINI_SESSION_ID": "gemini-cli"}
ENV_SESSION_DIR = "COORD_SESSION_DIR"
#: Programs between an agent tool and the command it runs that are not the tool itself.
WRAPPERS = frozenset(
    {
        "sh", "bash", "dash", "zsh", "fish", "ksh", "mksh", "busybox", "env", "timeout", "nice",
        "nohup", "stdbuf", "setsid", "script", "sudo", "su", "doas", "time", "xargs", "coord",
    }
)  # fmt: skip
#: How far up the process tree a link is looked for.
MAX_DEPTH = 12
MAX_LINK_BYTES = 4096

NO_AGENT = (
    "no agent name: pass --agent NAME, set COORD_AGENT, or run inside an agent-tool session "
    "set up by 'coord setup' (docs/agent-tools.md)"
)


class Identity:
    """An agent name and where it came from.

    ``source``: ``"--agent"``, ``"COORD_AGENT"``, ``"session"`` (a session id given to this
    process) or ``"linked"`` (a session link of a parent process). ``token``: the session token
    to register with (SPEC section 11) when a tool session is known, else None."""

    __slots__ = ("name", "session_id", "source", "token", "tool", "tool_pid")

    def __init__(
        self,
        name: str,
        source: str,
        *,
        tool: str | None = None,
        session_id: str | None = None,
        token: str | None = None,
        tool_pid: int | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.tool = tool
        self.session_id = session_id
        self.token = token
        self.tool_pid = tool_pid

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent": self.name,
            "source": self.source,
            "tool": self.tool,
            "session_id": self.session_id,
            "token": self.token,
            "tool_pid": self.tool_pid,
        }

    def __repr__(self) -> str:
        return f"Identity({self.name!r}, {self.source!r})"


def resolve(
    explicit: str | None = None,
    *,
    session_id: str | None = None,
    tool: str = DEFAULT_TOOL,
    environ: Mapping[str, str] | None = None,
    linked: bool = True,
) -> Identity | None:
    """The acting agent by the order in the module docstring, or None when nothing names one.

    A name from ``--agent`` or ``COORD_AGENT`` is checked (:class:`InvalidInput`, exit 2, for
    an invalid one). With a session known (given or linked) the identity also carries the
    session's token, even when ``COORD_AGENT`` chose the name."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return Identity(check_name(explicit, "agent name"), "--agent")
    named = env.get(ENV_AGENT, "").strip()
    link = None
    if session_id is None and linked:
        # The nearest tool process's link first: an environment session id may be inherited
        # from an outer tool (Codex started inside a Claude Code session has Claude's).
        link = find_link()
    if session_id is None and link is None:
        session_id, tool = _env_session(env, tool)
    if session_id is not None:
        derived = Identity(
            session_agent(tool, session_id),
            "session",
            tool=tool,
            session_id=session_id,
            token=session_token(session_id),
        )
    elif link is not None:
        derived = link
    else:
        derived = None
    if named:
        found = Identity(check_name(named, f"{ENV_AGENT} agent name"), ENV_AGENT)
        if derived is not None:
            found.tool, found.session_id, found.token = (
                derived.tool,
                derived.session_id,
                derived.token,
            )
        return found
    return derived


def _env_session(env: Mapping[str, str], tool: str) -> tuple[str | None, str]:
    """A session id the agent tool put in the environment (:data:`ENV_SESSIONS`), preferring
    ``tool``'s own; invalid ones are ignored."""
    from .core.identity import check_session_id

    ordered = sorted(ENV_SESSIONS.items(), key=lambda item: item[1] != tool)
    for variable, owner in ordered:
        value = env.get(variable)
        if value:
            try:
                return check_session_id(value), owner
            except InvalidInput:
                continue
    return None, tool


def require(explicit: str | None = None, **kwargs: Any) -> Identity:
    """:func:`resolve`, or :class:`InvalidInput` (exit 2) saying how to name the agent."""
    found = resolve(explicit, **kwargs)
    if found is None:
        raise InvalidInput(NO_AGENT)
    return found


def agent_name(explicit: str | None) -> str:
    """The acting agent's name for a command's ``--agent`` option (see :func:`require`)."""
    if explicit is not None:
        return check_name(explicit, "agent name")
    return require().name


# -- session links -------------------------------------------------------------------------
def links_dir(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    chosen = env.get(ENV_SESSION_DIR)
    if chosen:
        return chosen
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return os.path.join(runtime, "agentcoord", "sessions")
    home = os.path.expanduser("~")
    return os.path.join(home, ".cache", "agentcoord", "sessions")


def _parent(pid: int) -> tuple[int, str] | None:
    """(parent pid, command name) of ``pid`` from /proc, or None."""
    from .fs import proc_fields

    fields = proc_fields(pid)
    if fields is None or len(fields) < 2:
        return None
    try:
        with open(f"/proc/{pid}/comm", "rb") as fh:
            comm = fh.read().decode("utf-8", "replace").strip()
    except OSError:
        comm = ""
    return int(fields[1]), comm


def _start(pid: int) -> int | None:
    from .fs import proc_start_time

    return proc_start_time(pid)


def tool_process(pid: int | None = None) -> int | None:
    """The agent tool's process for a hook running as ``pid`` (default: this process): the
    nearest ancestor that is not a shell or wrapper (:data:`WRAPPERS`), or None without /proc."""
    current = os.getpid() if pid is None else pid
    found = _parent(current)
    for _ in range(MAX_DEPTH):
        if found is None:
            return None
        ppid, _comm = found
        if ppid <= 1:
            return None
        above = _parent(ppid)
        if above is None:
            return None
        if above[1] not in WRAPPERS:
            return ppid
        found = above
    return None


def _link_path(pid: int, start: int, environ: Mapping[str, str] | None = None) -> str:
    return os.path.join(links_dir(environ), f"{pid}-{start}.json")


def write_link(identity: Identity, pid: int) -> str | None:
    """Record ``identity`` as the session of the tool process ``pid`` (:func:`tool_process`);
    returns the link's path, or None when it cannot be written (no /proc, no home: the hook
    then relies on ``COORD_AGENT``). Links of processes that are gone are removed."""
    from .fs import atomic_write

    start = _start(pid)
    if start is None:
        return None
    directory = links_dir()
    if not _private_dir(directory):
        return None
    record = {
        "agent": identity.name,
        "tool": identity.tool,
        "session_id": identity.session_id,
        "token": identity.token,
        "pid": pid,
    }
    path = _link_path(pid, start)
    try:
        atomic_write(path, json.dumps(record) + "\n", durable=False, mode=0o600)
    except Exception:
        return None
    _prune(directory)
    return path


def _private_dir(directory: str) -> bool:
    """Create ``directory`` (0700) if missing; True when it is a real directory of this user
    that nobody else can write (links planted by others are never trusted)."""
    import stat

    try:
        os.makedirs(directory, 0o700, exist_ok=True)
        own, parent = os.lstat(directory), os.lstat(os.path.dirname(directory))
    except OSError:
        return False
    me = os.geteuid()
    # The parent too (``agentcoord`` under the runtime or cache directory): one that someone
    # else can write could have the links moved away or swapped in between. A sticky directory
    # of root's or ours (``/tmp``) is fine: nobody else can rename what is ours in it.
    parent_ok = (
        stat.S_ISDIR(parent.st_mode)
        and parent.st_uid in (0, me)
        and (not parent.st_mode & 0o022 or bool(parent.st_mode & stat.S_ISVTX))
    )
    return parent_ok and stat.S_ISDIR(own.st_mode) and own.st_uid == me and not own.st_mode & 0o022


def read_held(token: str) -> dict[str, int]:
    """The grants (task id -> epoch) a session's agent held at its last heartbeat hook."""
    from .fs import read_bytes

    try:
        raw = read_bytes(os.path.join(links_dir(), f"held-{token}.json"), limit=MAX_LINK_BYTES * 16)
        data = json.loads(raw) if raw else {}
    except Exception:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        k: v
        for k, v in data.items()
        if isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
    }


def write_held(token: str, grants: Mapping[str, int]) -> None:
    """Remember ``grants`` for the next heartbeat hook of the session ``token`` (best effort)."""
    from .fs import atomic_write

    directory = links_dir()
    if not token.isalnum() or not _private_dir(directory):
        return
    path = os.path.join(directory, f"held-{token}.json")
    try:
        if grants:
            atomic_write(path, json.dumps(dict(grants)), durable=False, mode=0o600)
        else:
            os.unlink(path)
    except Exception:
        pass


def remove_link(pid: int) -> None:
    start = _start(pid)
    if start is None:
        return
    try:
        os.unlink(_link_path(pid, start))
    except OSError:
        pass


def _prune(directory: str) -> None:
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        stem, _, ext = name.partition(".")
        pid_text, _, start_text = stem.partition("-")
        if ext != "json" or not pid_text.isdigit() or not start_text.isdigit():
            continue
        if _start(int(pid_text)) != int(start_text):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


def read_link(pid: int) -> Identity | None:
    """The session link of process ``pid`` (checked against its start time), or None."""
    from .fs import read_bytes

    start = _start(pid)
    if start is None:
        return None
    path = _link_path(pid, start)
    try:
        raw = read_bytes(path, limit=MAX_LINK_BYTES)
    except Exception:
        return None
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        name = check_name(data["agent"], "agent name")
    except (ValueError, KeyError, TypeError, InvalidInput):
        return None
    token = data.get("token")
    session_id = data.get("session_id")
    tool = data.get("tool")
    return Identity(
        name,
        "linked",
        tool=tool if isinstance(tool, str) else None,
        session_id=session_id if isinstance(session_id, str) else None,
        token=token if isinstance(token, str) and token.isalnum() else None,
        tool_pid=pid,
    )


def find_link(pid: int | None = None) -> Identity | None:
    """The nearest session link of an ancestor of ``pid`` (default: this process)."""
    directory = links_dir()
    if not os.path.isdir(directory) or not _private_dir(directory):
        return None
    current = os.getpid() if pid is None else pid
    for _ in range(MAX_DEPTH):
        found = _parent(current)
        if found is None or found[0] <= 1:
            return None
        current = found[0]
        link = read_link(current)
        if link is not None:
            return link
    return None
