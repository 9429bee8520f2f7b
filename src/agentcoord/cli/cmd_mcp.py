"""``coord mcp``: serve the workspace to MCP-capable agent tools (docs/mcp.md).

The MCP SDK (``pip install 'agentcoord[mcp]'``) is imported here, inside the handler, and nowhere
else in the CLI: no other command pays for it.
"""

from __future__ import annotations

from .base import dispatch

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from .base import Context, Parser
    from .main import Globals

DESCRIPTION = """Run an MCP server over stdio (or streamable HTTP with --http).

Claude Code:  claude mcp add coord -- coord mcp --agent NAME
stdout carries only protocol messages; logs go to stderr. See docs/mcp.md."""


DEFAULT_HOST = "127.0.0.1"


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    return dispatch("mcp", argv, g, _build, DESCRIPTION)


def _build(parser: Parser) -> None:
    parser.add_argument(
        "--agent", metavar="NAME", help="default agent for the tools (they may then omit it)"
    )
    parser.add_argument(
        "--http",
        metavar="[HOST:]PORT",
        help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio (host: 127.0.0.1)",
    )
    parser.set_defaults(handler=_serve)


def _serve(ctx: Context, ns: argparse.Namespace) -> int:
    from ..core.validate import check_name
    from ..errors import BackendUnavailable

    if ns.agent is not None:
        check_name(ns.agent, "agent name")
    address = parse_address(ns.http) if ns.http else None
    coord = ctx.coord  # open (and check) the workspace before the SDK is loaded
    try:
        from ..mcp import server as mcp_server
    except ImportError as exc:
        raise BackendUnavailable(
            f"coord mcp needs the MCP SDK: pip install 'agentcoord[mcp]' ({exc})"
        ) from exc
    try:
        if address is not None:
            mcp_server.serve_http(coord, *address, agent=ns.agent)
        else:
            mcp_server.serve_stdio(coord, agent=ns.agent)
    except KeyboardInterrupt:
        pass
    return 0


def parse_address(value: str) -> tuple[str, int]:
    """``--http``: ``PORT`` (on loopback), ``HOST:PORT`` or ``[V6]:PORT``."""
    from ..errors import InvalidInput

    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = DEFAULT_HOST, value
    host = host.strip("[]") or DEFAULT_HOST
    try:
        number = int(port)
    except ValueError:
        raise InvalidInput(f"--http {value!r}: give PORT or HOST:PORT") from None
    if not 0 < number < 65536:
        raise InvalidInput(f"--http {value!r}: the port must be 1-65535")
    return host, number
