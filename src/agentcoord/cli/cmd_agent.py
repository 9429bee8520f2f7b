"""``coord agent register|heartbeat|show|list|retire``.

``--json`` shapes:

- ``register``, ``heartbeat``, ``retire`` and each ``list`` row: the agent summary
  ``{"name", "status", "workload", "last_seen" (ISO), "capabilities", "active" (task ids),
  "breaker", "breaker_failures"}``; ``heartbeat`` adds ``"renewed"`` (task ids whose lease it
  renewed).
- ``show``: every field of the agent record (``Agent.to_dict``) with timestamps as ISO strings.

Exit codes: 2 bad input (name, status, workload outside 0-100 or not a number), 3 unknown agent,
6 the agent's file does not parse (``agent list`` skips it with a warning and lists the others).
"""

from __future__ import annotations

from ..errors import InvalidInput
from .base import dispatch, show_record
from .output import parse_fields, select, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

    from ..models import Agent
    from . import Globals
    from .base import Context, Parser

DEFAULT_LIMIT = 50


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    return dispatch("agent", argv, g, _build, "Register agents, record heartbeats, list them.")


def _build(parser: Parser) -> None:
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("register", help="register an agent (or bring a retired one back)")
    p.add_argument("name")
    p.add_argument("--capability", action="append", default=[], metavar="C")
    p.add_argument("--note", help="free text for the Notes section")
    p.add_argument("--workload", metavar="PCT", help="0-100")
    p.set_defaults(handler=_register)

    p = sub.add_parser("heartbeat", help="sign of life; renews the leases the agent holds")
    p.add_argument("name")
    p.add_argument("--status", help="idle, busy, blocked, offline")
    p.add_argument("--workload", metavar="PCT", help="0-100")
    p.add_argument("--note", metavar="TEXT")
    p.set_defaults(handler=_heartbeat)

    p = sub.add_parser("show", help="show one agent (its markdown file, or --json)")
    p.add_argument("name")
    p.add_argument("--fields", help="comma-separated fields to show")
    p.set_defaults(handler=_show)

    p = sub.add_parser("list", help="list agents")
    p.add_argument("--status", help="only agents in this status")
    p.add_argument("--min-workload", metavar="PCT", help="only agents at or above this workload")
    p.add_argument("--all", action="store_true", help="include retired agents")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help=f"default {DEFAULT_LIMIT}")
    p.add_argument("--fields", help="comma-separated fields to show")
    p.set_defaults(handler=_list)

    p = sub.add_parser("retire", help="retire an agent and give back the tasks it holds")
    p.add_argument("name")
    p.set_defaults(handler=_retire)


def summary(agent: Agent) -> dict[str, Any]:
    from ..clock import iso

    return {
        "name": agent.name,
        "status": agent.status,
        "workload": agent.workload,
        "last_seen": iso(agent.last_seen) if agent.last_seen else None,
        "capabilities": list(agent.capabilities),
        "active": [str(e.get("id")) for e in agent.active],
        "breaker": agent.breaker_state,
        "breaker_failures": agent.breaker_failures,
    }


def full(agent: Agent) -> dict[str, Any]:
    from ..clock import iso

    data = agent.to_dict()
    for key in ("last_seen", "registered_at", "breaker_opened_at", "last_failure"):
        value = data.get(key)
        data[key] = iso(value) if value else None
    return data


def _line(agent: Agent, verb: str) -> str:
    return f"{verb} agent {agent.name} ({agent.status.upper()}, {agent.workload}%)"


def _register(ctx: Context, ns: argparse.Namespace) -> int:
    agent = ctx.coord.agents.register(
        ns.name, capabilities=ns.capability, note=ns.note, workload=ns.workload
    )
    ctx.emit(summary(agent), _line(agent, "registered"))
    return 0


def _heartbeat(ctx: Context, ns: argparse.Namespace) -> int:
    agent, renewed = ctx.coord.agents.heartbeat(
        ns.name, status=ns.status, workload=ns.workload, note=ns.note
    )
    data = summary(agent)
    data["renewed"] = [t.id for t in renewed]
    text = _line(agent, "heartbeat from")
    if renewed:
        text += f"; renewed lease(s): {', '.join(data['renewed'])}"
    ctx.emit(data, text)
    return 0


def _show(ctx: Context, ns: argparse.Namespace) -> int:
    from ..codec.agent import render_agent

    agent = ctx.coord.agents.get(ns.name)
    return show_record(ctx, full(agent), ns.fields, lambda: render_agent(agent, ctx.coord.now()))


def _list(ctx: Context, ns: argparse.Namespace) -> int:
    from ..errors import CorruptData

    if ns.limit < 0:
        raise InvalidInput("--limit must be >= 0")
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
    fields = parse_fields(ns.fields)
    rows = select((summary(a) for a in shown), fields)

    def text() -> str:
        if not rows:
            return "no agents"
        cols = fields or ["name", "status", "workload", "last_seen", "active", "breaker"]
        return table(rows, cols)

    ctx.emit(rows, text)
    return 0


def _retire(ctx: Context, ns: argparse.Namespace) -> int:
    agent = ctx.coord.agents.retire(ns.name)
    ctx.emit(summary(agent), _line(agent, "retired"))
    return 0
