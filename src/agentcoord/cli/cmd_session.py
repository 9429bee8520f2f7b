"""``coord session start|beat|end``, ``coord whoami`` and ``coord prime`` (SPEC section 12).

``coord session ...`` are the hooks ``coord setup`` installs in an agent tool. Each reads the
hook's JSON input from stdin (``session_id``, ``cwd``, ``hook_event_name``) and:

- ``start`` (Claude Code ``SessionStart``): registers the session's agent (name and token from
  the session id unless ``COORD_AGENT`` names it), leaves a session link for the tool's process
  (so its Bash commands and MCP server act as the same agent, :mod:`agentcoord.sessions`),
  exports ``COORD_AGENT`` through ``$CLAUDE_ENV_FILE`` when Claude Code provides one, and prints
  ``coord prime`` as the hook's ``additionalContext``;
- ``beat`` (``PostToolUse``, after every tool call): a heartbeat that renews the agent's leases,
  at most every ``session_beat_seconds`` (30) and at least every quarter of ``lease_seconds``;
  between those it reads one agent record and returns. A lease found lost is told to the model;
- ``end`` (``SessionEnd``): the agent goes offline and, unless ``release_on_session_end`` is
  false, gives back the tasks it holds;
- ``guard`` (``PreToolUse`` on ``Edit|Write|MultiEdit|NotebookEdit``): the edit's file
  (``tool_input.file_path``, or ``notebook_path``), taken relative to the repository root of
  the hook's ``cwd`` (a linked worktree's own root), is checked against the other agents' live
  exclusive reservations (SPEC section 13). On a conflict it prints Claude Code's deny
  decision, exit 0::

      {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny",
       "permissionDecisionReason": "src/a.py is reserved by B (pattern 'src/**', ...): ..."}}

  Otherwise it prints nothing. It runs before every edit, so it is cheap: the root is found by
  walking up for ``.git`` (no git process), and with no other agent's exclusive reservation
  the check is one read of the reservation table.

Hooks never get in the agent's way: any failure is one line on stderr and exit 0 (Claude Code
treats exit 2 as "block"). ``whoami`` and ``prime`` are ordinary commands.

JSON shapes: ``whoami``: ``{"agent", "source", "tool", "session_id", "token", "tool_pid",
"registered", "status"}`` (exit 3 when nothing names an agent); ``prime``: the shape of
:func:`agentcoord.ops.prime.gather` plus ``"source"``.
"""

from __future__ import annotations

from .base import count, dispatch

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

    from ..api import Coordinator
    from ..domain.reservations import PathConflict
    from ..sessions import Identity
    from .base import Context, Parser
    from .main import Globals

SOURCES = {
    "--agent": "from --agent",
    "COORD_AGENT": "from COORD_AGENT",
    "session": "this tool session's name",
    "linked": "this tool session's name",
}


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    if command == "whoami":
        return dispatch("whoami", argv, g, _build_whoami, _WHOAMI_HELP)
    if command == "prime":
        return dispatch("prime", argv, g, _build_prime, _PRIME_HELP)
    return dispatch("session", argv, g, _build, _SESSION_HELP)


_SESSION_HELP = (
    "Agent-tool session hooks (installed by 'coord setup'): start registers the session's agent\n"
    "and prints 'coord prime'; beat renews its leases after tool calls; end releases its work;\n"
    "guard denies an edit of a file another agent has reserved (Claude Code's PreToolUse).\n"
    "They read the hook's JSON input from stdin and, once their options parse, exit 0 whatever\n"
    "happens. See docs/agent-tools.md."
)
_WHOAMI_HELP = (
    "Show the agent name commands here act as: --agent, else COORD_AGENT, else the agent tool\n"
    "session's own name (from its session id, or the link its session-start hook left).\n"
    "Exit 3 when nothing names one."
)
_PRIME_HELP = (
    "What an agent needs at the start of a session: its tasks and leases, ready work, the board\n"
    "and the check-in, in at most --max-chars characters (default 2048)."
)


def _tool_option(p: Any) -> None:
    from ..core.identity import DEFAULT_TOOL, TOOLS

    p.add_argument(
        "--tool",
        choices=list(TOOLS),
        default=DEFAULT_TOOL,
        help=f"the agent tool whose session this is (default {DEFAULT_TOOL}); it names the "
        "session's agent (claude-, codex-, gemini-, cursor-)",
    )


def _build(parser: Parser) -> None:
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name, text in (
        ("start", "SessionStart: register the session's agent, print coord prime"),
        ("beat", "PostToolUse: renew the agent's leases (throttled)"),
        ("end", "SessionEnd: the agent goes offline and gives back its tasks"),
    ):
        p = sub.add_parser(name, help=text)
        _tool_option(p)
        p.add_argument(
            "--session-id", metavar="ID", help="the tool's session id (default: from the input)"
        )
        p.add_argument(
            "--format",
            choices=("auto", "text"),
            default="auto",
            help="auto: the tool's hook JSON (additionalContext); text: plain text",
        )
        if name == "start":
            p.add_argument(
                "--max-chars",
                type=count("--max-chars", minimum=200),
                default=2048,
                help="bound on the prime text (default 2048)",
            )
        p.set_defaults(handler=_hook, action=name)
    p = sub.add_parser(
        "guard", help="PreToolUse: deny an edit of a file another agent has reserved"
    )
    _tool_option(p)
    p.add_argument(
        "--session-id", metavar="ID", help="the tool's session id (default: from the input)"
    )
    p.set_defaults(handler=_guard, action="guard")


def _build_whoami(parser: Parser) -> None:
    _tool_option(parser)
    parser.add_argument("--agent", metavar="NAME", help="an explicit name (shown as resolved)")
    parser.add_argument("--session-id", metavar="ID", help="derive from this tool session id")
    parser.set_defaults(handler=_whoami)


def _build_prime(parser: Parser) -> None:
    parser.add_argument("--agent", metavar="NAME", help="default: 'coord whoami'")
    parser.add_argument(
        "--max-chars",
        type=count("--max-chars", minimum=200),
        default=2048,
        help="bound on the text (default 2048)",
    )
    parser.set_defaults(handler=_prime)


# -- whoami and prime ------------------------------------------------------------------------
def _describe(ident: Identity) -> str:
    from ..core.text import shown

    what = SOURCES.get(ident.source, ident.source)
    if ident.tool and ident.source in ("session", "linked"):
        what = f"the {ident.tool} session's own name"
    if ident.source == "linked" and ident.tool_pid:
        what += f", linked to process {ident.tool_pid}"
    return f"{shown(ident.name)}: {what}"


def _whoami(ctx: Context, ns: argparse.Namespace) -> int:
    from ..errors import CoordError, NotFound
    from ..sessions import NO_AGENT, resolve

    ident = resolve(ns.agent, session_id=ns.session_id, tool=ns.tool)
    if ident is None:
        raise NotFound(NO_AGENT)
    data = ident.as_dict()
    data["registered"], data["status"] = False, None
    try:
        agent = ctx.coord.agents.get(ident.name)
        data["registered"], data["status"] = True, agent.status
    except NotFound:
        pass
    except CoordError as exc:  # no workspace here: the name is still the answer
        data["workspace_error"] = exc.message
    state = f"registered, {data['status']}" if data["registered"] else "not registered"
    ctx.emit(data, f"{_describe(ident)} ({state})", brief=ident.name)
    return 0


def _checkin(ctx: Context) -> list[str]:
    from ..ops.prime import checkin_lines
    from ..timer.control import status_all

    try:
        workspace = ctx.coord.workspace
        return checkin_lines(status_all(workspace.timer_dir)) if workspace is not None else []
    except Exception:
        return []


def _prime_text(
    ctx: Context, coord: Coordinator, ident: Identity, max_chars: int
) -> tuple[dict[str, Any], str]:
    from ..ops.prime import gather, render

    data = gather(
        coord.tasks,
        coord.agents,
        ident.name,
        coord.now(),
        checkin=_checkin(ctx),
        messages=coord.messages,
        reservations=coord.reservations,
    )
    source = SOURCES.get(ident.source, ident.source)
    return data, render(data, max_chars=max_chars, source=source)


def _prime(ctx: Context, ns: argparse.Namespace) -> int:
    from ..sessions import require

    ident = require(ns.agent)
    data, text = _prime_text(ctx, ctx.coord, ident, ns.max_chars)
    data["source"] = ident.source
    ctx.emit(data, text)
    return 0


# -- the hooks -------------------------------------------------------------------------------
def _hook(ctx: Context, ns: argparse.Namespace) -> int:
    import sys

    from ..core.text import scrub

    ns.event_name = None
    try:
        text = _run_hook(ctx, ns)
        if text:
            from ..core.text import json_safe
            from ..timer import hooks

            # The tool's own event name (Gemini CLI: AfterTool), else Claude Code's.
            event = ns.event_name or {"start": "SessionStart", "beat": "PostToolUse"}[ns.action]
            sys.stdout.write(json_safe(hooks.render(event, text, ns.format)) + "\n")
    except Exception as exc:  # never block the agent's tool
        message = scrub(f"coord session {ns.action}: {type(exc).__name__}: {exc}")
        sys.stderr.write(message + "\n")
        if ns.action == "start":  # the model should know it has no agent in this session
            from ..core.text import json_safe
            from ..timer import hooks

            text = f"agentcoord: the session could not be set up ({message})."
            event = ns.event_name or "SessionStart"
            sys.stdout.write(json_safe(hooks.render(event, text, ns.format)) + "\n")
    return 0


def _run_hook(ctx: Context, ns: argparse.Namespace) -> str | None:
    from ..core.identity import check_session_id
    from ..errors import Conflict, InvalidInput
    from ..sessions import resolve
    from ..timer import hooks
    from .cmd_timer import _hook_workspace

    payload = hooks.read_payload()
    event = payload.get("hook_event_name")
    ns.event_name = event if isinstance(event, str) and event.isalnum() else None
    session_id = ns.session_id if ns.session_id is not None else payload.get("session_id")
    if session_id is not None:
        try:
            session_id = check_session_id(session_id)
        except InvalidInput:
            session_id = None
    if _hook_workspace(ctx, payload) is None:
        return None  # no board here: nothing to do, and nothing to say
    ident = resolve(None, session_id=session_id, tool=ns.tool)
    if ident is None:
        return None  # no session and no COORD_AGENT: nobody to act for, nothing to say
    coord = ctx.coord
    if ns.action == "start":
        return _start(ctx, ns, coord, ident)
    if ns.action == "beat":
        try:
            return _beat(coord, ident)
        except Conflict as exc:
            return f"agentcoord: {exc.message}"
    _end(coord, ident)
    return None


def _register(coord: Coordinator, ident: Identity) -> str | None:
    """Register ``ident`` (its tool session's token when known); a problem is returned as a
    text for the model instead of raised."""
    from ..core.identity import session_agent
    from ..errors import Conflict

    try:
        if ident.token is not None:
            coord.agents.register(ident.name, as_session=ident.token)
        else:
            coord.agents.register(ident.name)
    except Conflict as exc:
        own = ""
        if ident.session_id is not None and ident.tool is not None:
            mine = session_agent(ident.tool, ident.session_id)
            own = f" (unset it to use this session's own, {mine})"
        return (
            f"WARNING from agentcoord: {exc.message}. This session has no agent: the name "
            f"{ident.name} belongs to another live session, and coord commands here that act "
            f"as it are refused (exit 4). Set COORD_AGENT to a name of this session's own{own}."
        )
    return None


def _start(ctx: Context, ns: argparse.Namespace, coord: Coordinator, ident: Identity) -> str:
    import os

    from ..sessions import tool_process, write_link

    problem = _register(coord, ident)
    if problem is not None:
        return problem
    pid = tool_process()
    if pid is not None:
        ident.tool_pid = pid
        write_link(ident, pid)
    env_file = os.environ.get("CLAUDE_ENV_FILE")
    if env_file and ident.source == "session":
        # Claude Code sources this file before each Bash command: the agent's own commands then
        # act as the session's agent even where no session link can be read.
        _export(env_file, f"export COORD_AGENT={ident.name}\n")
    _, text = _prime_text(ctx, coord, ident, ns.max_chars)
    return text


def _export(path: str, line: str) -> None:
    """Append ``line`` to the tool's environment file unless it is there already: a regular
    file only, never through a symbolic link, never blocking on a FIFO (SPEC section 16)."""
    import os

    from ..fs import open_regular

    try:
        fd = open_regular(
            path, os.O_RDWR | os.O_APPEND | os.O_CREAT, what="CLAUDE_ENV_FILE", mode=0o600
        )
    except Exception:
        return
    try:
        with os.fdopen(fd, "r+", encoding="utf-8", errors="replace") as fh:
            if line.strip() not in (x.strip() for x in fh.read(1 << 20).splitlines()):
                fh.write(line)
    except OSError:
        pass


def _beat(coord: Coordinator, ident: Identity) -> str | None:
    from ..domain.agents import last_sign
    from ..errors import NotFound

    config = coord.config
    try:
        agent = coord.agents.get(ident.name)
    except NotFound:
        if ident.token is None:
            return None  # not registered, and no session to register: nothing to renew
        _register(coord, ident)
        return None
    if agent.status == "retired":
        return None
    interval = min(float(config["session_beat_seconds"]), float(config["lease_seconds"]) / 4.0)
    if coord.now() - last_sign(agent) < interval and agent.status != "offline":
        if ident.token is not None:  # remember grants made since (one small file)
            from ..sessions import read_held, write_held

            held = read_held(ident.token)
            new = {str(e.get("id")): 0 for e in agent.active if str(e.get("id")) not in held}
            if new:
                write_held(ident.token, {**held, **new})
        return None
    _, renewal = coord.agents.heartbeat(ident.name, session=ident.token)
    lost = list(renewal.lost)
    if ident.token is not None:
        # Leases reaped (or re-granted) since the last beat are gone from the heartbeat's view:
        # what the agent held then, and neither finished nor released, is lost too.
        from ..sessions import read_held, write_held

        held = {t.id: t.epoch for t in renewal}
        before = {k: v for k, v in read_held(ident.token).items() if k not in held}
        lost += [i for i in coord.tasks.taken_back(ident.name, before) if i not in lost]
        write_held(ident.token, held)
    if lost:
        lost_ids = ", ".join(lost)
        return (
            f"agentcoord: you no longer hold {lost_ids} (the lease expired or another agent took "
            "it over): stop working on it; 'coord prime' shows what is yours."
        )
    return None


def _end(coord: Coordinator, ident: Identity) -> None:
    from ..errors import Conflict, NotFound
    from ..sessions import remove_link, tool_process

    if ident.token is None:
        return  # no session to end: never give back what some session holds
    try:
        coord.agents.get(ident.name)  # a read first: nothing is written for an unknown name
        coord.agents.sign_off(
            ident.name,
            session=ident.token,
            release=bool(coord.config["release_on_session_end"]),
        )
    except (NotFound, Conflict):
        pass  # never registered, or another session holds the name now: leave it be
    pid = tool_process()
    if pid is not None:
        remove_link(pid)


# -- the edit guard --------------------------------------------------------------------------
#: The largest hook input the edit guard reads (a Write carries the whole new file).
GUARD_INPUT_LIMIT = 256 << 20
#: The tools whose input names a file they change, and the key that names it.
EDIT_TOOLS = {
    "Edit": "file_path",
    "Write": "file_path",
    "MultiEdit": "file_path",
    "NotebookEdit": "notebook_path",
}
#: Longest deny reason (characters): Claude Code shows it to the model.
MAX_REASON = 1000


def _guard(ctx: Context, ns: argparse.Namespace) -> int:
    """``coord session guard``: Claude Code's ``PreToolUse`` hook. Prints the deny decision
    (:func:`deny_output`) when another agent's live exclusive reservation covers the edited
    file; otherwise nothing. Exit 0 whatever happens: an error is one line on stderr and the
    edit goes ahead (a broken board must not stop an agent from working)."""
    import sys

    from ..core.text import scrub

    try:
        reason = _guard_reason(ctx, ns)
        if reason is not None:
            from ..core.text import json_safe

            sys.stdout.write(json_safe(deny_output(reason)) + "\n")
    except Exception as exc:  # never block the agent's tool on our failure
        sys.stderr.write(scrub(f"coord session guard: {type(exc).__name__}: {exc}") + "\n")
    return 0


def deny_output(reason: str) -> str:
    """Claude Code's documented ``PreToolUse`` deny decision for ``reason`` (one JSON line)."""
    import json

    decision = {
        "hookEventName": "PreToolUse",
        "permissionDecision": "deny",
        "permissionDecisionReason": reason,
    }
    return json.dumps({"hookSpecificOutput": decision}, ensure_ascii=False)


def _guard_reason(ctx: Context, ns: argparse.Namespace) -> str | None:
    """Why the edit in the hook's input must not happen, or None (go ahead). Raises whatever
    goes wrong (the caller lets the edit through)."""
    import os

    from ..timer import hooks

    # A Write carries the whole file: read all of it (an input cut off is said on stderr).
    payload = hooks.read_payload(limit=GUARD_INPUT_LIMIT, strict=True)
    key = EDIT_TOOLS.get(str(payload.get("tool_name")))
    tool_input = payload.get("tool_input")
    if key is None or not isinstance(tool_input, dict):
        return None  # not an edit: nothing to check
    target = tool_input.get(key)
    if not isinstance(target, str) or not target or "\0" in target:
        return None
    cwd = payload.get("cwd")
    if not isinstance(cwd, str) or not os.path.isabs(cwd) or not os.path.isdir(cwd):
        cwd = os.getcwd()
    from .cmd_timer import _hook_workspace

    ws = _hook_workspace(ctx, {**payload, "cwd": cwd})
    if ws is None:
        return None  # no board here: nothing is reserved
    full = os.path.join(cwd, target)
    # As written and as the kernel will resolve it: a symbolic link inside the repository
    # (alias.py -> src/x.py, srclink/x.py, erlink/../../x.py) must not hide a reserved file.
    rels = [
        r
        for r in (
            repo_relative(full, cwd, fallback=ws.project_root),
            repo_relative(os.path.realpath(full), cwd, fallback=ws.project_root),
        )
        if r is not None
    ]
    if not rels:
        return None  # outside the repository: no reservation covers it
    agent = _guard_agent(ns, payload)
    found = ctx.coord.reservations.conflicts_for(list(dict.fromkeys(rels)), agent, literal=True)
    if not found:
        return None
    return _deny_reason(found, agent)


def _guard_agent(ns: argparse.Namespace, payload: dict[str, Any]) -> str | None:
    """The session's agent (None: nobody is named, and every exclusive reservation counts)."""
    from ..core.identity import check_session_id
    from ..errors import InvalidInput
    from ..sessions import resolve

    session_id = ns.session_id if ns.session_id is not None else payload.get("session_id")
    if session_id is not None:
        try:
            session_id = check_session_id(session_id)
        except InvalidInput:
            session_id = None
    ident = resolve(None, session_id=session_id, tool=ns.tool)
    return None if ident is None else ident.name


def _deny_reason(found: list[PathConflict], agent: str | None) -> str:
    from ..core.text import scrub

    first = found[0]
    holder = first.holder
    more = f" (and {len(found) - 1} more reservation(s))" if len(found) > 1 else ""
    text = (
        f"{first.describe()}{more}: another agent is working on it. Do not edit it now; work on "
        f"something else, or ask {holder} to release it (coord msg send --to {holder} "
        f"--subject ...). 'coord files list' shows every reservation."
    )
    if agent is None:
        text += " (No agent is named for this session: every exclusive reservation counts.)"
    text = scrub(text)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def repo_relative(path: str, cwd: str, *, fallback: str | None = None) -> str | None:
    """``path`` (absolute) as a repo-relative POSIX path: relative to the worktree top of
    ``cwd`` (:func:`find_git_root`; without one, ``fallback``, the board's project), or to the
    top of another worktree of the same repository that holds it. None when it lies outside
    (nothing there can be reserved), or is the root itself."""
    import os

    from ..fs import git_top
    from ..workspace import worktree_main

    root = git_top(cwd) or fallback
    if root is None:
        return None
    path = os.path.normpath(path)
    rel = _inside(path, root)
    if rel is None:  # the spelling may differ (a symbolic link on the way): compare real paths
        real = os.path.realpath(path)
        rel = _inside(real, os.path.realpath(root))
        if rel is None:
            other = git_top(os.path.dirname(real))
            mine = worktree_main(root) or root
            if other is not None and (worktree_main(other) or other) == mine:
                rel = _inside(real, other)  # another worktree of this repository
    return rel


def _inside(path: str, root: str) -> str | None:
    import os

    root = os.path.normpath(root)
    if path == root or not path.startswith(root.rstrip(os.sep) + os.sep):
        return None
    return path[len(root.rstrip(os.sep)) + 1 :].replace(os.sep, "/")
