"""``coord mcp``: serve the workspace to MCP-capable agent tools (docs/mcp.md).

The MCP SDK (``pip install 'agentcoord[mcp]'``) is imported here, inside the handler, and nowhere
else in the CLI: no other command pays for it.

Over HTTP (``--http`` or ``--socket``) every request needs the bearer token and an allowed Host
and Origin (SPEC 16; :mod:`agentcoord.httpaccess`). The options are checked, the token read or
made and the socket bound before the SDK is loaded, so a refusal is quick and exact: exit 2 for
contradictory options, ``--no-auth`` off loopback, a socket path that is not a stale socket;
exit 6 for a token file that is a symlink, not ours, readable by others or empty; exit 4 when a
server already listens on the socket.
"""

from __future__ import annotations

import os

from .base import dispatch

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from ..workspace import Workspace
    from .base import Context, Parser
    from .main import Globals

DESCRIPTION = """Run an MCP server over stdio (or streamable HTTP with --http / --socket).

Claude Code:  claude mcp add coord -- coord mcp --agent NAME
stdout carries only protocol messages; logs go to stderr. See docs/mcp.md.

HTTP needs "Authorization: Bearer <token>" on every request. The token is made into
<timer dir>/.coordination-token (.claude/ by default, mode 0600) and reused; the start-up
message on stderr says where it is and how to configure a client."""


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
    parser.add_argument(
        "--socket",
        metavar="PATH",
        help="serve streamable HTTP on a Unix socket (mode 0600) instead of a TCP port",
    )
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help="read the bearer token from PATH (a 0600 file of yours) instead of "
        "<timer dir>/.coordination-token",
    )
    parser.add_argument(
        "--allow-host",
        metavar="NAME",
        action="append",
        default=[],
        help="also accept this Host (NAME or NAME:PORT), e.g. the machine's name on a LAN "
        "bind; repeatable. Loopback names are always accepted",
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="serve HTTP without the bearer token: loopback or --socket only (for tests)",
    )
    parser.set_defaults(handler=_serve)


def _serve(ctx: Context, ns: argparse.Namespace) -> int:
    from ..core.validate import check_name
    from ..errors import BackendUnavailable

    if ns.agent is not None:
        check_name(ns.agent, "agent name")
    address = parse_address(ns.http) if ns.http else None
    hosts = _check_http_options(ns, address)
    coord = ctx.coord  # open (and check) the workspace before the SDK is loaded
    token, token_file = _token(ns, coord.workspace)
    sock, inode = (None, 0)
    if ns.socket is not None:
        from ..httpaccess import bind_unix_socket

        sock, inode = bind_unix_socket(ns.socket)
    elif address is not None:  # bound before "serving ..." is said: a taken port is exit 4
        from ..httpaccess import bind_tcp

        sock = bind_tcp(*address)
    try:
        try:
            from ..mcp import server as mcp_server
        except ImportError as exc:
            raise BackendUnavailable(
                f"coord mcp needs the MCP SDK: pip install 'agentcoord[mcp]' ({exc})"
            ) from exc
        try:
            if address is None and sock is None:
                mcp_server.serve_stdio(coord, agent=ns.agent)
            else:
                _announce(ns, address, token_file)
                host, port = address if address is not None else ("127.0.0.1", 0)
                mcp_server.serve_http(
                    coord,
                    agent=ns.agent,
                    token=token,
                    hosts=hosts,
                    host=host,
                    port=port,
                    sock=sock,
                )
        except KeyboardInterrupt:
            pass
    finally:
        if sock is not None:
            sock.close()
        if ns.socket is not None:
            from ..httpaccess import remove_unix_socket

            remove_unix_socket(ns.socket, inode)
    return 0


def _check_http_options(ns: argparse.Namespace, address: tuple[str, int] | None) -> list[str]:
    """Refuse contradictory options (exit 2); the Host values the server accepts."""
    from ..errors import InvalidInput
    from ..httpaccess import allowed_hosts, check_allow_host, is_loopback

    http = address is not None or ns.socket is not None
    if address is not None and ns.socket is not None:
        raise InvalidInput("give --http or --socket, not both")
    if not http:
        for flag, given in (
            ("--token-file", ns.token_file is not None),
            ("--allow-host", bool(ns.allow_host)),
            ("--no-auth", ns.no_auth),
        ):
            if given:
                raise InvalidInput(f"{flag} applies to HTTP: add --http [HOST:]PORT or --socket")
    if ns.no_auth and ns.token_file is not None:
        raise InvalidInput("give --no-auth or --token-file, not both")
    if ns.no_auth and address is not None and not is_loopback(address[0]):
        raise InvalidInput(
            f"--no-auth is refused on {address[0]}: anyone who can reach the port could act "
            "as any agent. Use a loopback address (127.0.0.1) or --socket",
            field="no_auth",
        )
    extra = [check_allow_host(name) for name in ns.allow_host]
    if address is not None:
        return sorted(allowed_hosts(address[0], address[1], extra))
    return sorted(allowed_hosts(None, None, extra))


def _token(ns: argparse.Namespace, workspace: Workspace | None) -> tuple[str | None, str | None]:
    """The bearer token and the file it is in; ``(None, None)`` for stdio and ``--no-auth``."""
    from ..core.text import shown
    from ..errors import InvalidInput

    if (ns.http is None and ns.socket is None) or ns.no_auth:
        return None, None
    from ..httpaccess import load_or_create_token, read_token_file, token_path

    if ns.token_file is not None:
        path = os.path.abspath(ns.token_file)
        token = read_token_file(path, f"--token-file {shown(path)}")
        if token is None:
            raise InvalidInput(f"--token-file {shown(path)}: no such file", field="token_file")
        return token, path
    if workspace is None:
        raise InvalidInput(
            "this workspace has no local directory for the token file: give --token-file PATH"
        )
    path = token_path(workspace.timer_dir)
    return load_or_create_token(path), path


def _announce(
    ns: argparse.Namespace, address: tuple[str, int] | None, token_file: str | None
) -> None:
    """Where the server listens and how a client connects, on stderr; never the token. Every
    line is scrubbed: a path or a host name given on the command line may hold escape
    sequences (SPEC 16: text is shown with control characters escaped)."""
    import shlex
    import sys

    from ..core.text import scrub, shown
    from ..httpaccess import is_wildcard

    if address is not None:
        host, port = address
        url = f"http://[{host}]:{port}/mcp" if ":" in host else f"http://{host}:{port}/mcp"
        client_url = f"http://127.0.0.1:{port}/mcp" if is_wildcard(host) else url
        where = f"streamable HTTP on {url}"
    else:
        client_url = "http://localhost/mcp"
        where = f"streamable HTTP on the Unix socket {shown(ns.socket)} ({client_url})"
    lines = [f"coord mcp: serving {where}"]
    if token_file is None:
        lines.append(
            "coord mcp: WARNING: --no-auth: no bearer token; any local process that can "
            "connect can act as any agent"
        )
    else:
        header = f"Authorization: Bearer $(cat {shown(shlex.quote(token_file))})"
        lines.append(
            f"coord mcp: every request needs 'Authorization: Bearer <token>'; the token is in "
            f"{shown(token_file)} (mode 0600)"
        )
        if address is not None:
            lines.append(
                f"coord mcp: Claude Code: claude mcp add --transport http coord {client_url} "
                f'--header "{header}"'
            )
        else:  # a client URL without the socket would send the token to TCP port 80
            lines.append(
                f"coord mcp: the socket serves clients that speak HTTP over a Unix socket "
                f"(curl --unix-socket {shown(shlex.quote(ns.socket))}, httpx); Claude Code, Codex, "
                "Gemini CLI and Cursor need --http or stdio"
            )
    if address is not None and is_wildcard(address[0]) and not ns.allow_host:
        lines.append(
            f"coord mcp: bound to {shown(address[0])}: only loopback Host names are accepted; "
            "add --allow-host NAME for the names clients use to reach this machine"
        )
    sys.stderr.write("".join(scrub(line) + "\n" for line in lines))
    sys.stderr.flush()


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
