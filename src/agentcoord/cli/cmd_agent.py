"""``coord agent register|heartbeat|show|list|retire``.

``--json`` shapes:

- ``register``, ``heartbeat``, ``retire`` and each ``list`` row:
  :func:`agentcoord.shapes.agent_summary`; ``register`` adds ``"session"`` (this session's token:
  ``-q`` prints only it) and, when ``--capability`` changed an existing agent's capabilities,
  ``"capabilities_changed": {"added": [...], "removed": [...]}``; ``heartbeat`` adds
  ``"renewed"`` (task ids whose lease it renewed) and ``"lost"`` (task ids it held but no longer
  does: expired or taken over).
- ``show``: :func:`agentcoord.shapes.agent_full`.

Exit codes: 2 bad input (name, status, workload outside 0-100 or not a number, a bad session
token, an unknown ``--fields`` name), 3 unknown agent, 4 (SPEC section 11) ``register`` of a name
another live session holds without ``--takeover``, ``heartbeat`` of a retired agent or of a
session that was replaced, 6 the agent's file does not parse (``agent list`` skips it with a
warning and lists the others).
"""

from __future__ import annotations

from ..shapes import agent_full, agent_summary
from .base import count, dispatch, show_record
from .output import parse_fields, plain, select, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from ..core.models import Agent
    from .base import Context, Parser
    from .main import Globals

DEFAULT_LIMIT = 50


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    return dispatch("agent", argv, g, _build, "Register agents, record heartbeats, list them.")


def _build(parser: Parser) -> None:
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser(
        "register", help="register a session of an agent (or bring a retired one back)"
    )
    p.add_argument("name", nargs="?", help="default: coord whoami (with its session)")
    p.add_argument(
        "--capability",
        action="append",
        default=[],
        metavar="C",
        help="what it can do (tasks may --requires it); repeatable, or comma-separated; "
        "given, it replaces the agent's capabilities (the output says what changed); "
        "left out, a registered agent keeps the ones it has",
    )
    p.add_argument("--note", help="free text for the Notes section")
    p.add_argument("--workload", metavar="PCT", help="0-100")
    p.add_argument(
        "--takeover",
        action="store_true",
        help="replace a live session that holds the name (its epochs are fenced out)",
    )
    p.add_argument(
        "--session",
        metavar="TOKEN",
        help="the token an earlier register of this session printed: repeating is safe",
    )
    p.set_defaults(handler=_register)

    p = sub.add_parser("heartbeat", help="sign of life; renews the leases the agent holds")
    p.add_argument("name", nargs="?", help="default: coord whoami (with its session)")
    p.add_argument("--status", help="idle, busy, blocked, offline")
    p.add_argument("--workload", metavar="PCT", help="0-100")
    p.add_argument("--note", metavar="TEXT", help="free text for the Notes section")
    p.add_argument(
        "--session",
        metavar="TOKEN",
        help="this session's token from register: exit 4 if another session replaced it",
    )
    p.set_defaults(handler=_heartbeat)

    p = sub.add_parser("show", help="show one agent (its markdown file, or --json)")
    p.add_argument("name")
    p.add_argument("--fields", help="comma-separated fields to show")
    p.set_defaults(handler=_show)

    p = sub.add_parser("list", help="list agents")
    p.add_argument("--status", help="only agents in this status")
    p.add_argument("--min-workload", metavar="PCT", help="only agents at or above this workload")
    p.add_argument("--all", action="store_true", help="include retired agents")
    p.add_argument(
        "--limit", type=count("--limit"), default=DEFAULT_LIMIT, help=f"default {DEFAULT_LIMIT}"
    )
    p.add_argument("--fields", help="comma-separated fields to show")
    p.set_defaults(handler=_list)

    p = sub.add_parser("retire", help="retire an agent and give back the tasks it holds")
    p.add_argument("name")
    p.set_defaults(handler=_retire)


def _line(agent: Agent, verb: str) -> str:
    from ..core.text import shown

    return f"{verb} agent {shown(agent.name)} ({shown(agent.status.upper())}, {agent.workload}%)"


def _who(ns: argparse.Namespace) -> tuple[str, str | None, str | None]:
    """(name, --session token, tool-session token) for register/heartbeat: the NAME given, else
    ``coord whoami``'s agent with its tool session's token (exit 2 when nothing names one)."""
    if ns.name is not None:
        return ns.name, ns.session, None
    from ..sessions import require

    ident = require()
    if ns.session is not None or ident.token is None:
        return ident.name, ns.session, None
    return ident.name, None, ident.token


def _register(ctx: Context, ns: argparse.Namespace) -> int:
    changed: dict[str, list[str]] = {}
    name, session, tool_session = _who(ns)
    agent = ctx.coord.agents.register(
        name,
        capabilities=[c.strip() for item in ns.capability for c in item.split(",") if c.strip()],
        note=ns.note,
        workload=ns.workload,
        session=session,
        takeover=ns.takeover,
        changed=changed,
        as_session=tool_session,
    )
    data = agent_summary(agent)
    data["session"] = agent.session
    text = f"{_line(agent, 'registered')}; session {agent.session} (generation {agent.generation})"
    if changed:
        data["capabilities_changed"] = changed
        parts = [f"added {', '.join(changed['added'])}"] if changed["added"] else []
        parts += [f"removed {', '.join(changed['removed'])}"] if changed["removed"] else []
        text += f"\ncapabilities changed: {'; '.join(parts)} (now {plain(agent.capabilities)})"
    ctx.emit(data, text, brief=agent.session)
    return 0


def _heartbeat(ctx: Context, ns: argparse.Namespace) -> int:
    name, session, tool_session = _who(ns)
    agent, renewed = ctx.coord.agents.heartbeat(
        name,
        status=ns.status,
        workload=ns.workload,
        note=ns.note,
        session=session if session is not None else tool_session,
    )
    data = agent_summary(agent)
    data["renewed"] = [t.id for t in renewed]
    data["lost"] = list(renewed.lost)
    text = _line(agent, "heartbeat from")
    if renewed:
        text += f"; renewed lease(s): {plain(data['renewed'])}"
    if renewed.lost:
        text += f"; lost (expired or taken over): {plain(list(renewed.lost))}"
    ctx.emit(data, text)
    return 0


def _show(ctx: Context, ns: argparse.Namespace) -> int:
    from ..store.markdown.codec.agent import render_agent

    agent = ctx.coord.agents.get(ns.name)
    now = ctx.coord.now()
    return show_record(ctx, agent_full(agent), ns.fields, lambda: render_agent(agent, now))


def _list(ctx: Context, ns: argparse.Namespace) -> int:
    from ..errors import CorruptData

    errors: list[CorruptData] = []
    agents = ctx.coord.agents.list(
        status=ns.status,
        min_workload=ns.min_workload,
        include_retired=ns.all,
        errors=errors,
    )
    for err in errors:
        ctx.warn(f"skipped unreadable file: {err.message}")
    shown = agents[: ns.limit] if ns.limit else agents
    if len(shown) < len(agents):
        ctx.warn(f"showing {len(shown)} of {len(agents)} agents; use --limit to see more")
    from ..core.models import Agent

    fields = parse_fields(ns.fields, agent_summary(Agent("x")))
    rows = select((agent_summary(a) for a in shown), fields)

    def text() -> str:
        if not rows:
            return "no agents"
        cols = fields or ["name", "status", "workload", "last_seen", "active", "breaker"]
        return table(rows, cols)

    ctx.emit(rows, text)
    return 0


def _retire(ctx: Context, ns: argparse.Namespace) -> int:
    agent = ctx.coord.agents.retire(ns.name)
    ctx.emit(agent_summary(agent), _line(agent, "retired"))
    return 0
