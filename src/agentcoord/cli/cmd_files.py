"""``coord files reserve|release|list|check``: file reservations (SPEC section 13).

Paths and globs are taken relative to the current directory inside its git repository
(``git rev-parse --show-toplevel``; the top of a linked worktree counts as the top, so
``src/x.py`` is the same logical path in every worktree) and normalised to repo-relative POSIX
patterns: ``..`` may not leave the repository, an absolute path must lie inside it, an existing
directory stands for everything below it (``src`` is reserved as ``src/**``; ``newpkg/`` for one
that does not exist yet), a glob without ``/`` matches a basename at any depth (``*.md``), a plain
name without ``/`` is the one at the top, and a pattern ending in ``*`` covers everything below
what it matches (:mod:`agentcoord.core.paths`). ``--agent`` may be left out where the session
names the agent (``COORD_AGENT``, a tool session: :mod:`agentcoord.sessions`).

- ``reserve PATH|GLOB... [--agent A] [--shared] [--ttl S] [--task ID] [--reason T]``:
  exclusive unless ``--shared``; ends after ``--ttl`` (30, 90s, 10m, 1h), with the lease of
  ``--task`` (which the agent must hold), or when the agent retires, signs off or goes Gone.
- ``release [PATH|GLOB...] [--agent A] [--all]``: give back those patterns (as reserved), or all.
- ``list [--agent A]``: the live reservations (of one agent).
- ``check PATH... [--agent A]`` / ``check --staged [--agent A]``: exit 4 when another agent's
  live exclusive reservation covers a path (each conflict on stderr: path, holder, pattern,
  reason, expiry), else exit 0 and nothing on stdout (``-q`` or not). ``--staged`` checks the
  files of ``git diff --cached --name-only``: the pre-commit guard's question. Without an agent
  (no ``--agent``, no session) every exclusive reservation counts.

``--json`` shapes: ``reserve`` prints the reservation ``{"id", "agent", "patterns", "mode",
"task", "epoch", "reason", "created", "expires", "expires_in"}`` (times ISO 8601 UTC,
``expires_in`` seconds; None without a TTL); ``list`` a list of them; ``release``
``{"released": [reservation...]}`` (each with the patterns it gave back); ``check``
``{"ok": bool, "paths": [path...], "conflicts": [{"path", "holder", "pattern", "mode",
"reservation", "reason", "task", "expires"}]}``.

Exit codes: 2 bad input (a path outside the repository, ``..`` past the top, an empty path,
control characters, a bad ``--ttl``), 3 an unknown agent reserving or an unknown task
(release, list and check for a name that holds nothing answer empty, exit 0), 4 a conflict
(another agent's overlapping reservation; the agent is retired or offline; ``--task`` not
held), 5 backend unavailable, 6 the reservation file does not parse.
"""

from __future__ import annotations

import sys

from .base import dispatch, seconds

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from ..api import Coordinator
    from ..domain.reservations import PathConflict
    from ..workspace import RepoPaths
    from .base import Context, Parser
    from .main import Globals


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    return dispatch("files", argv, g, _build, "Reserve files so that agents do not collide.")


def _agent_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--agent", metavar="A", help=f"{what} (default: this session's agent)")


def _build(parser: Parser) -> None:
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("reserve", help="reserve paths or globs (exclusive unless --shared)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="a path or glob (src/**, *.md)")
    _agent_option(p, "the agent reserving")
    p.add_argument("--shared", action="store_true", help="a reader's reservation: may overlap")
    p.add_argument(
        "--ttl", type=seconds("--ttl", positive=True), metavar="S", help="end after S (10m, 1h)"
    )
    p.add_argument("--task", metavar="ID", help="end with this task's lease (the agent holds it)")
    p.add_argument("--reason", metavar="T", help="why, for the others (one line)")
    p.set_defaults(handler=_reserve)

    p = sub.add_parser("release", help="give back reserved paths or globs (or --all)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="a path or glob as reserved")
    _agent_option(p, "the agent releasing")
    p.add_argument("--all", action="store_true", help="every reservation of the agent")
    p.set_defaults(handler=_release)

    p = sub.add_parser("list", help="the live reservations")
    p.add_argument("--agent", metavar="A", help="only this agent's")
    p.set_defaults(handler=_list)

    p = sub.add_parser("check", help="exit 4 if another agent holds one of the paths")
    p.add_argument("paths", nargs="*", metavar="PATH", help="a path (or glob) to check")
    _agent_option(p, "the agent asking (its own reservations never conflict)")
    p.add_argument(
        "--staged", action="store_true", help="check the staged files (git diff --cached)"
    )
    p.set_defaults(handler=_check)


def _here(ctx: Context) -> RepoPaths:
    from ..workspace import RepoPaths

    ws = ctx.coord.workspace
    return RepoPaths.here(fallback=ws.project_root if ws is not None else None)


def _me(ns: argparse.Namespace) -> str:
    from ..sessions import agent_name

    return agent_name(ns.agent)


def _maybe_me(ns: argparse.Namespace) -> str | None:
    """The agent when one is named (``--agent`` or the session), else None."""
    if ns.agent is not None:
        return _me(ns)
    from ..errors import CoordError

    try:
        return _me(ns)
    except CoordError:
        return None


def _reserve(ctx: Context, ns: argparse.Namespace) -> int:
    from ..shapes import reservation_row

    agent = _me(ns)
    patterns = _here(ctx).patterns(ns.paths)
    r = ctx.coord.reservations.reserve(
        agent, patterns, shared=ns.shared, ttl=ns.ttl, task=ns.task, reason=ns.reason
    )
    row = reservation_row(r, ctx.coord.now())
    until = (
        f"until {row['expires']}"
        if r.expires is not None
        else (f"with task {r.task}" if r.task else "until released")
    )
    ctx.emit(
        row,
        f"reserved {', '.join(r.patterns)} for {agent} ({r.mode}, {until}) as {r.id}",
        brief=r.id,
    )
    return 0


def _release(ctx: Context, ns: argparse.Namespace) -> int:
    from ..errors import InvalidInput
    from ..shapes import reservation_row

    agent = _me(ns)
    if ns.all and ns.paths:
        raise InvalidInput("give paths or --all, not both")
    if not ns.all and not ns.paths:
        raise InvalidInput("give the paths or globs to release, or --all")
    patterns = None if ns.all else _here(ctx).patterns(ns.paths)
    gone = ctx.coord.reservations.release(agent, patterns, all=ns.all)
    now = ctx.coord.now()
    given = [p for r in gone for p in r.patterns]
    ctx.emit(
        {"released": [reservation_row(r, now) for r in gone]},
        f"released {', '.join(given)}" if given else f"{agent} held none of these",
    )
    return 0


def _list(ctx: Context, ns: argparse.Namespace) -> int:
    from ..shapes import reservation_row
    from .output import table

    agent = None if ns.agent is None else _me(ns)
    now = ctx.coord.now()
    rows = [reservation_row(r, now) for r in ctx.coord.reservations.list(agent)]

    def text() -> str:
        if not rows:
            return "no reservations"
        shown = [
            {
                "id": r["id"],
                "agent": r["agent"],
                "mode": r["mode"],
                "patterns": " ".join(r["patterns"]),
                "until": r["expires"] or (f"task {r['task']}" if r["task"] else "released by it"),
                "reason": r["reason"] or "",
            }
            for r in rows
        ]
        return table(shown, ["id", "agent", "mode", "patterns", "until", "reason"])

    ctx.emit(rows, text)
    return 0


def conflicts_for(
    coord: Coordinator, paths: Sequence[str], agent: str | None
) -> list[PathConflict]:
    """The conflicts of ``paths`` (as a user typed them, relative to the current directory in
    its repository) for ``agent``: what ``coord files check`` reports, for the pre-commit guard
    and the edit hook. :class:`InvalidInput` (exit 2) for a bad path."""
    from ..workspace import RepoPaths

    ws = coord.workspace
    here = RepoPaths.here(fallback=ws.project_root if ws is not None else None)
    return coord.reservations.conflicts_for(here.patterns(paths, glob=True), agent)


def _check(ctx: Context, ns: argparse.Namespace) -> int:
    from ..core.text import scrub
    from ..errors import InvalidInput

    here = _here(ctx)
    if ns.staged:
        if ns.paths:
            raise InvalidInput("give paths or --staged, not both")
        wanted = here.staged()  # git names them from the top, each a file: taken literally
        if not wanted:
            ctx.emit({"ok": True, "paths": [], "conflicts": []}, None)
            return 0
        agent = _maybe_me(ns)
        found = ctx.coord.reservations.conflicts_for(wanted, agent, literal=True)
    elif not ns.paths:
        raise InvalidInput("give the paths to check, or --staged")
    else:
        agent = _maybe_me(ns)
        wanted = here.patterns(ns.paths)
        found = ctx.coord.reservations.conflicts_for(wanted, agent)
    data = {"ok": not found, "paths": wanted, "conflicts": [c.to_dict() for c in found]}
    if ctx.json:
        ctx.emit(data, None)
    for c in found:
        if not ctx.json:
            sys.stderr.write(f"coord: conflict: {scrub(c.describe())}\n")
    return 4 if found else 0
