"""The MCP server behind ``coord mcp``: the workspace as tools for MCP-capable agent tools.

Built on the SDK's FastMCP (``mcp>=1.2,<2``): each tool is a typed method of
:class:`~agentcoord.mcp.tools.Tools`, so the SDK validates arguments against the Python signature.
On top of it this module

- advertises compact schemas (no pydantic titles, no ``anyOf [X, null]``): the tool list is paid
  for by every agent on every turn (docs/mcp.md gives the measured cost);
- refuses unknown arguments (a misspelt ``task_id`` must not make ``claim`` take the next task);
- runs each call in a worker thread, one at a time per server, so a store lock wait never stalls
  the event loop (several HTTP sessions stay responsive);
- returns results as compact JSON text and every failure as a tool error whose text is
  ``{"code", "message", ...}`` with the CLI's stable codes: ``CoordError.to_dict()`` for domain
  errors, ``invalid_input`` for arguments the schema refuses, ``error`` for anything unexpected
  (logged with its traceback on stderr). No exception reaches the transport.

Over stdio nothing but protocol messages reaches stdout: the protocol gets its own duplicate of
file descriptor 1, and fd 1 and ``sys.stdout`` are pointed at stderr before any tool runs.
Imported only by ``coord mcp`` (``cli/cmd_mcp.py``); the rest of agentcoord never loads the SDK.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from typing import Any

import anyio
import anyio.to_thread
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.fastmcp.tools import Tool
from mcp.types import CallToolResult, TextContent
from pydantic import ValidationError

from ..errors import CoordError, InvalidInput
from .tools import ACTING, DESCRIPTIONS, Tools, unknown_arguments

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..api import Coordinator

log = logging.getLogger("agentcoord.mcp")

SERVER_NAME = "agentcoord"
INSTRUCTIONS = (
    "Shared task board of a team of agents. Claim a task, report progress, finish it. "
    'Errors are JSON {"code","message"}.'
)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


# -- errors ------------------------------------------------------------------------------------
def error_data(exc: BaseException) -> dict[str, Any]:
    """The tool-error payload for ``exc``: always a ``code`` and a ``message``."""
    if isinstance(exc, CoordError):
        data = exc.to_dict()
        data.pop("exit", None)
        return data
    if isinstance(exc, ValidationError):
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in err["loc"]) or "arguments"
            problems.append(f"{where}: {err['msg']}")
        return {"code": InvalidInput.code, "message": "; ".join(problems)}
    log.error("unexpected error in a tool call", exc_info=exc)
    return {"code": CoordError.code, "message": f"internal error: {type(exc).__name__}: {exc}"}


def error_result(exc: BaseException) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=dumps(error_data(exc)))], isError=True
    )


# -- schemas -----------------------------------------------------------------------------------
def compact_schema(schema: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The pydantic argument schema without what costs tokens and tells a model nothing:
    titles, ``anyOf [X, null]`` (an optional argument is simply not ``required``), ``default:
    null``. Validation still runs against the full model, so this changes nothing accepted."""
    props = {
        name: _compact(prop)
        for name, prop in schema.get("properties", {}).items()
        if name not in drop
    }
    out: dict[str, Any] = {"type": "object", "properties": props}
    required = [r for r in schema.get("required", []) if r not in drop]
    if required:
        out["required"] = required
    return out


def _compact(prop: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in prop.items() if k not in ("title", "anyOf")}
    options = [o for o in prop.get("anyOf", []) if o != {"type": "null"}]
    if len(options) == 1:
        out.update(_compact(options[0]))
    elif options:
        out["anyOf"] = [_compact(o) for o in options]
    if "default" in out and out["default"] is None:
        del out["default"]
    if isinstance(out.get("items"), dict):
        out["items"] = _compact(out["items"])
    if out.get("additionalProperties") is True:
        del out["additionalProperties"]
    return out


# -- the server --------------------------------------------------------------------------------
class CoordMCP(FastMCP[Any]):
    """FastMCP with agentcoord's tools, error mapping and compact schemas."""

    def __init__(self, tools: Tools, **settings: Any) -> None:
        self.coord_tools = tools
        self._call_lock = threading.Lock()
        self._by_name: dict[str, Tool] = {}
        drop = ("agent",) if tools.default_agent is not None else ()
        for name, description in DESCRIPTIONS.items():
            tool = Tool.from_function(
                self._threaded(getattr(tools, name)),
                name=name,
                description=description,
                structured_output=False,
            )
            tool.parameters = compact_schema(tool.parameters, drop if name in ACTING else ())
            self._by_name[name] = tool
        super().__init__(
            SERVER_NAME,
            instructions=INSTRUCTIONS,
            tools=list(self._by_name.values()),
            log_level="WARNING",
            **settings,
        )

    def _threaded(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """An async tool function with ``fn``'s signature that runs ``fn`` in a worker thread
        (one call at a time) and returns its result as compact JSON text."""

        def locked(kwargs: dict[str, Any]) -> str:
            with self._call_lock:
                warnings = self.coord_tools.coord.warnings
                warnings.clear()
                result = fn(**kwargs)
                if warnings and isinstance(result, dict):
                    # The call succeeded; a follow-up failed after its write committed.
                    result["warnings"] = list(warnings)
                warnings.clear()
                return dumps(result)

        @functools.wraps(fn)
        async def call(**kwargs: Any) -> str:
            return await anyio.to_thread.run_sync(locked, kwargs)

        return call

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        """Every outcome is a result: failures become tool errors with a stable ``code``."""
        try:
            tool = self._by_name.get(name)
            if tool is None:
                raise InvalidInput(f"unknown tool {name!r}; tools/list names them")
            unknown_arguments(name, arguments, set(tool.fn_metadata.arg_model.model_fields))
            return await super().call_tool(name, arguments)
        except ToolError as exc:  # the SDK wraps what the call raised
            return error_result(exc.__cause__ if exc.__cause__ is not None else exc)
        except Exception as exc:
            return error_result(exc)


def build_server(coord: Coordinator, *, agent: str | None = None, **settings: Any) -> CoordMCP:
    """The MCP server for ``coord``; ``agent`` is the default for tools that act as an agent
    (their ``agent`` argument is then not advertised)."""
    return CoordMCP(Tools(coord, agent), **settings)


# -- transports --------------------------------------------------------------------------------
def _protect_stdout() -> int:
    """Give the protocol a private duplicate of fd 1 and send everything else written to
    stdout (prints, C extensions, child processes) to stderr. Returns the protocol's fd."""
    import os
    import sys

    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol_fd


def serve_stdio(coord: Coordinator, *, agent: str | None = None) -> None:
    """Serve MCP over stdin/stdout until the client closes stdin."""
    import os
    from io import TextIOWrapper

    from mcp.server.stdio import stdio_server

    server = build_server(coord, agent=agent)
    protocol_fd = _protect_stdout()
    with os.fdopen(protocol_fd, "wb") as raw:
        out = TextIOWrapper(raw, encoding="utf-8", newline="\n")

        async def main() -> None:
            async with stdio_server(stdout=anyio.wrap_file(out)) as (read, write):
                await server._mcp_server.run(
                    read, write, server._mcp_server.create_initialization_options()
                )

        try:
            anyio.run(main)
        except Exception as exc:
            if not _client_gone(exc):
                raise
            log.debug("client went away during shutdown: %r", exc)
        finally:
            try:
                out.flush()
                out.detach()
            except (OSError, ValueError):
                pass


def _client_gone(exc: BaseException) -> bool:
    """Whether ``exc`` (possibly a group) only says the client closed its end: the SDK may still
    try to answer a last message after stdin reached end of file."""
    parts = getattr(exc, "exceptions", None)
    if parts is not None:
        return all(_client_gone(e) for e in parts)
    return isinstance(exc, (anyio.ClosedResourceError, anyio.BrokenResourceError, BrokenPipeError))


def serve_http(coord: Coordinator, host: str, port: int, *, agent: str | None = None) -> None:
    """Serve MCP over streamable HTTP at ``http://host:port/mcp`` until interrupted."""
    import sys

    if host not in LOOPBACK:
        log.warning("serving MCP on %s: the endpoint has no authentication", host)
    server = build_server(coord, agent=agent, host=host, port=port)
    sys.stdout = sys.stderr  # uvicorn's access log would otherwise go to stdout
    shown = f"[{host}]" if ":" in host else host
    sys.stderr.write(f"coord mcp: serving streamable HTTP on http://{shown}:{port}/mcp\n")
    anyio.run(server.run_streamable_http_async)
