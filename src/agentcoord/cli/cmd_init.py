"""``coord init``: create the workspace (idempotent), optionally recording a Redis URL and
sharing it with a Unix group (``--shared-group G``, SPEC section 16).

``--json``: ``{"root", "backend", "shared_group": gid or null, "actions": [text]}``. Exit 2 for a
group that does not exist (nothing is written), 5 when the tree cannot be given the group."""

from __future__ import annotations

from .base import dispatch

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from .base import Context, Parser
    from .main import Globals


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    return dispatch("init", argv, g, _build, "Create .claude/coordination/ (or --dir) here.")


def _build(parser: Parser) -> None:
    parser.add_argument(
        "--url",
        dest="init_url",
        help="record this Redis URL as the backend ('-': read it from stdin, so a password "
        "stays out of the process list; config.json holding one is 0600)",
    )
    parser.add_argument(
        "--shared-group",
        metavar="G",
        help="let Unix group G (a name or a gid) share the workspace: directories setgid and "
        "group-writable (2775), files 664, lock files 660, a config.json holding a password "
        "640, never world-writable; every later write keeps it. Converts an existing workspace",
    )
    parser.add_argument(
        "--here",
        action="store_true",
        help="in a linked git worktree, make a board of this worktree's own (by default "
        "worktrees share the main worktree's board, and init there is refused: exit 4)",
    )
    parser.set_defaults(handler=_init)


def _init(ctx: Context, ns: argparse.Namespace) -> int:
    from ..workspace import init_workspace

    url = ctx.g.url
    if ns.init_url is not None:
        from .base import url_argument

        url = url_argument(ns.init_url, "--url", ctx.json)
    if url is not None:
        from ..api import open_store

        # Refuse to record a URL that does not answer: no silent split-brain later.
        store = open_store(url)
        try:
            store.list_channels()
        finally:
            store.close()
    group = ns.shared_group
    if group is not None:
        from ..workspace import resolve_group

        resolve_group(group)  # exit 2 before anything is checked or written
    ws, actions = init_workspace(ctx.g.dir, url=url, shared_group=group, here=ns.here)
    data = {
        "root": ws.root,
        "backend": ws.config["backend"],
        "shared_group": None if group is None else resolve_group(group),
        "actions": actions,
    }
    text = (
        "\n".join([*actions, f"workspace ready: {ws.root}"])
        if actions
        else (f"workspace already initialised: {ws.root}")
    )
    ctx.emit(data, text)
    return 0
