"""``coord migrate --to URL|DIR [--dry-run] [--force]``: move a workspace between backends.

Copies everything from the current workspace's store (markdown directory or Redis) to the target:
a Redis URL (``redis://``, ``rediss://``, ``unix://``, ``?workspace=NAME`` to pick a workspace on
a shared server) or a directory, which becomes a markdown workspace. The source is never changed.
After a migration to Redis, the workspace's ``config.json`` records the new URL so every agent of
the workspace uses it; after a migration back into the workspace's own directory it records the
markdown backend again.

``--json``: ``{"source", "target", "backend", "dry_run", "counts": {kind: n}, "names": {kind:
[first --limit names]}, "replaced", "config"}`` (``config``: the config file that now names the
target, or null). Exit codes: 0 ok; 2 bad input (unknown URL scheme, the target is the source);
4 ``already_exists`` (target not empty, no ``--force``); 5 a store unreachable; 6 a source record
unreadable (nothing written).
"""

from __future__ import annotations

import os

from ..errors import InvalidInput
from .base import count, dispatch

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

    from ..store.base import Store
    from .base import Context, Parser
    from .main import Globals

DEFAULT_LIMIT = 10
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    return dispatch(
        "migrate",
        argv,
        g,
        _build,
        "Copy this workspace (tasks, agents, archives, events, cursors, context, counters) to "
        "a Redis URL or a markdown directory.",
    )


def _build(parser: Parser) -> None:
    parser.add_argument(
        "--to",
        required=True,
        metavar="URL|DIR",
        help="Redis URL ('-': read it from stdin) or directory",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be copied")
    parser.add_argument(
        "--force", action="store_true", help="replace the target's records if it is not empty"
    )
    parser.add_argument(
        "--limit",
        type=count("--limit"),
        default=DEFAULT_LIMIT,
        help=f"names shown per kind (default {DEFAULT_LIMIT})",
    )
    parser.set_defaults(handler=_migrate)


def open_target(to: str) -> tuple[Store, str]:
    """The target store and its backend name. Anything that starts like a URL (``scheme:``)
    and is not an existing directory is taken as one: ``redis:/:pw@host`` is a mistyped URL,
    not a directory to create (whose name would show the password)."""
    import re

    if to.startswith(REDIS_SCHEMES):
        from ..api import open_store

        return open_store(to), "redis"
    if "://" in to or (re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", to) and not os.path.isdir(to)):
        from ..core.urls import mask_url

        raise InvalidInput(
            f"unsupported target {mask_url(to)}: use redis://, rediss://, unix:// or a directory"
        )
    if not to.strip():
        raise InvalidInput("--to needs a Redis URL or a directory")
    from ..store.markdown.store import MarkdownStore

    durable = os.environ.get("COORD_FSYNC") != "0"
    return MarkdownStore(os.path.abspath(to), durable=durable), "markdown"


def _migrate(ctx: Context, ns: argparse.Namespace) -> int:
    from ..ops.migrate import plan

    if ns.limit < 0:
        raise InvalidInput(f"--limit must be >= 0, not {ns.limit}")
    source = ctx.coord.store
    from .base import url_argument

    to = url_argument(ns.to, "--to", ctx.json)  # resolved once ('-' reads stdin): used below
    target, backend = open_target(to)
    try:
        checked = plan(source, target, force=ns.force)  # reads and checks, writes nothing
        if not ns.dry_run:
            try:
                checked.execute()
            except Exception:
                ctx.warn(
                    f"migration to {target.location} did not finish; the source is unchanged. "
                    "Fix the cause and rerun with --force to replace what was written"
                )
                raise
        report = checked.report(dry_run=ns.dry_run)
    finally:
        target.close()
    report["backend"] = backend
    report["config"] = None if ns.dry_run else _record(ctx, to, backend, target.location)
    report["names"] = {k: v[: ns.limit] for k, v in report["names"].items()}
    ctx.emit(report, lambda: render(report, ns.limit))
    return 0


def _record(ctx: Context, to: str, backend: str, location: str) -> str | None:
    """Point the workspace's config at the target when it should: a Redis target always, a
    directory only when it is the workspace's own directory. Returns the config path."""
    ws = ctx.coord.workspace
    if ws is None:
        return None
    if backend == "redis":
        from ..workspace import init_workspace

        init_workspace(ws.root, url=to)
    elif os.path.realpath(location) == os.path.realpath(ws.root):
        from ..workspace import record_backend

        record_backend(ws.root, "markdown")
    else:
        return None
    return os.path.join(ws.root, "config.json")


def render(report: dict[str, Any], limit: int) -> str:
    verb = "would copy" if report["dry_run"] else "copied"
    out = [f"{verb} {report['source']} -> {report['target']} ({report['backend']})"]
    counts = report["counts"]
    for kind, names in report["names"].items():
        total = counts[kind]
        if not total:
            continue
        shown = ", ".join(names[:limit])
        more = f" (+{total - len(names[:limit])} more)" if total > len(names[:limit]) else ""
        extra = f", {counts['events']} events" if kind == "channels" else ""
        out.append(f"  {kind.replace('_', ' ')}: {total}{extra}  {shown}{more}")
    if len(out) == 1:
        out.append("  (the source is empty)")
    if report["replaced"]:
        what = "would replace" if report["dry_run"] else "replaced"
        out.append(f"{what} {report['replaced']} record(s) already in the target (--force)")
    if report["dry_run"]:
        out.append("nothing written (--dry-run)")
    elif report["config"]:
        out.append(
            f"recorded backend {report['backend']} in {report['config']}: every agent of this "
            "workspace now uses the target (restart long-running ones: timer, mcp, dashboard)"
        )
    else:
        out.append(
            "this workspace's config is unchanged; point agents at the target with "
            + ("--url / COORD_URL" if report["backend"] == "redis" else "--dir / COORD_DIR")
        )
    return "\n".join(out)
