"""``coord init``: create the workspace (idempotent), optionally recording a Redis URL."""

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
    parser.add_argument("--url", dest="init_url", help="record this Redis URL as the backend")
    parser.set_defaults(handler=_init)


def _init(ctx: Context, ns: argparse.Namespace) -> int:
    from ..workspace import init_workspace

    url = ns.init_url or ctx.g.url
    if url is not None:
        from ..api import open_store

        # Refuse to record a URL that does not answer: no silent split-brain later.
        store = open_store(url)
        try:
            store.list_channels()
        finally:
            store.close()
    ws, actions = init_workspace(ctx.g.dir, url=url)
    data = {"root": ws.root, "backend": ws.config["backend"], "actions": actions}
    text = (
        "\n".join([*actions, f"workspace ready: {ws.root}"])
        if actions
        else (f"workspace already initialised: {ws.root}")
    )
    ctx.emit(data, text)
    return 0
