"""The MCP server behind ``coord mcp``: the workspace as tools for MCP-capable agent tools.

Built on the SDK's FastMCP (``mcp>=1.29.1,<2``): each tool is a typed method of
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

Every message is checked by :mod:`agentcoord.mcp.jsonrpc` before the SDK sees it, on stdio
(:func:`stdio_transport`, which replaces the SDK's reader) and over HTTP (:class:`CheckedBodies`):
text that is not JSON, batches, messages nested too deep, methods the server does not serve and
strings that are not valid text (a lone surrogate) get a JSON-RPC error for their id instead of
a log line, a crash, or a client that waits forever (SPEC 16). Nothing written back can fail to
encode: error responses are ASCII JSON, tool results are checked (:func:`dumps`), and the stdio
writer falls back to ASCII JSON. Over HTTP the app sits behind
:class:`agentcoord.httpaccess.Guard` (bearer token, Host and Origin on every bind).
Imported only by ``coord mcp`` (``cli/cmd_mcp.py``); the rest of agentcoord never loads the SDK.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import typing
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.fastmcp.tools import Tool
from mcp.types import CallToolResult, TextContent
from pydantic import ValidationError

from .. import __version__
from ..errors import CoordError, InvalidInput
from . import jsonrpc
from .tools import ACTING, DESCRIPTIONS, Tools, unknown_arguments

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import AsyncIterator, Callable, Collection
    from typing import BinaryIO, TextIO

    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
    from mcp.shared.message import SessionMessage

    from ..api import Coordinator
    from ..httpaccess import ASGIApp, Message, Receive, Scope, Send
    from ..sessions import Identity

    Streams = tuple[
        MemoryObjectReceiveStream[SessionMessage | Exception],
        MemoryObjectSendStream[SessionMessage],
    ]

log = logging.getLogger("agentcoord.mcp")

SERVER_NAME = "agentcoord"
INSTRUCTIONS = (
    "Shared task board of a team of agents. Claim a task, report progress, finish it. "
    'Errors are JSON {"code","message"}.'
)
#: The largest HTTP request body read (the SDK's own limit, DEFAULT_MAX_REQUEST_BODY_SIZE).
MAX_BODY = 4 * 1024 * 1024
#: Messages longer than this are checked in a worker thread, not on the event loop (the check
#: is linear, ~10 ms per MiB for most text; parsing a body of 4 MiB of tiny arrays takes ~1 s).
CHECK_INLINE = 64 * 1024


def dumps(data: Any) -> str:
    """Compact JSON text of a tool result, always encodable as UTF-8: a lone surrogate (from a
    store written around agentcoord, say) comes out as its ``\\uXXXX`` escape, not as an
    exception in the SDK's writer (which would leave the request unanswered)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return jsonrpc.serialized(data)
    return text


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
        drop = ("agent",) if tools.has_default else ()
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
        # serverInfo.version in the initialize result: ours, not the SDK's (the default)
        self._mcp_server.version = __version__

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


def build_server(
    coord: Coordinator,
    *,
    agent: str | None = None,
    resolver: Callable[[], Identity] | None = None,
    **settings: Any,
) -> CoordMCP:
    """The MCP server for ``coord``; ``agent`` is the default for tools that act as an agent
    (their ``agent`` argument is then not advertised), else ``resolver`` finds it at the first
    such call (:func:`agentcoord.mcp.tools.session_identity`)."""
    return CoordMCP(Tools(coord, agent, resolver=resolver), **settings)


def served_methods(server: CoordMCP) -> frozenset[str]:
    """The request methods ``server`` answers: ``initialize`` (the session's own) and one per
    request handler. The SDK answers any other method with ``-32602`` "Invalid request
    parameters" (its request union does not validate), where JSON-RPC says ``-32601``
    "Method not found": :func:`agentcoord.mcp.jsonrpc.check` answers those instead."""
    methods = {"initialize"}
    for kind in server._mcp_server.request_handlers:
        field = getattr(kind, "model_fields", {}).get("method")
        if field is not None:
            methods.update(a for a in typing.get_args(field.annotation) if isinstance(a, str))
    return frozenset(methods)


async def checked(raw: bytes, methods: frozenset[str] | None) -> jsonrpc.Checked:
    """:func:`jsonrpc.check` of one message; a long one in a worker thread, so that it never
    holds the event loop (and the other sessions) for long."""
    if len(raw) <= CHECK_INLINE:
        return jsonrpc.check(raw, methods)
    return await anyio.to_thread.run_sync(jsonrpc.check, raw, methods)


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
    """Serve MCP over stdin/stdout until the client closes stdin. Without ``agent`` the
    tools act as this session's agent (:func:`agentcoord.mcp.tools.session_identity`: one
    stdio server is one session of the agent tool, SPEC section 12)."""
    import os
    import sys
    from io import TextIOWrapper

    from .tools import session_identity

    server = build_server(coord, agent=agent, resolver=session_identity if agent is None else None)
    methods = served_methods(server)
    protocol_fd = _protect_stdout()
    with os.fdopen(protocol_fd, "wb") as raw:
        # backslashreplace: a lone surrogate can only be inside a JSON string, where "\udXXX"
        # is its JSON escape; the writer must never raise (every line is made safe before)
        out = TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", newline="\n")

        async def main() -> None:
            async with stdio_transport(sys.stdin.buffer, out, methods) as (read, write):
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
            server.coord_tools.end_own_session()


@contextlib.asynccontextmanager
async def stdio_transport(
    stdin: BinaryIO, stdout: TextIO, methods: frozenset[str] | None = None
) -> AsyncIterator[
    tuple[
        MemoryObjectReceiveStream[SessionMessage | Exception],
        MemoryObjectSendStream[SessionMessage],
    ]
]:
    """The SDK's ``stdio_server`` with a reader that checks each line first
    (:func:`agentcoord.mcp.jsonrpc.check`) and answers what it refuses itself: the SDK would
    only log it, and the client would wait forever for a response (SPEC 16). Error responses
    and the SDK's messages share one writer, one line each; ``methods``: the request methods
    served (:func:`served_methods`; None: any)."""
    from mcp import types
    from mcp.shared.message import SessionMessage

    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    lines = anyio.wrap_file(stdin)
    out = anyio.wrap_file(stdout)
    lock = anyio.Lock()

    async def emit(line: str) -> None:
        async with lock:
            await out.write(line + "\n")
            await out.flush()

    async def reader() -> None:
        try:
            async with read_writer:
                async for line in lines:
                    result = await checked(line, methods)
                    if result.reason:
                        log.warning("refused a message: %s", result.reason[:300])
                    for answer in result.errors:
                        await emit(jsonrpc.serialized(answer))
                    if result.message is None:
                        continue
                    try:
                        message = types.JSONRPCMessage.model_validate(result.message)
                    except (
                        ValidationError
                    ) as exc:  # jsonrpc.envelope let through what the SDK won't
                        log.warning("refused a message: %s", exc)
                        if "method" in result.message and "id" in result.message:
                            rid = result.message["id"]
                            answer = jsonrpc.error(rid, jsonrpc.INVALID_REQUEST, str(exc))
                            await emit(jsonrpc.serialized(answer))
                        continue
                    await read_writer.send(SessionMessage(message))
        except anyio.ClosedResourceError:
            await anyio.lowlevel.checkpoint()

    async def writer() -> None:
        try:
            async with write_reader:
                async for session_message in write_reader:
                    await emit(_line(session_message.message))
        except anyio.ClosedResourceError:
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        tg.start_soon(writer)
        yield read_stream, write_stream


def _line(message: Any) -> str:
    """The SDK's message as one line of JSON. Never raises: pydantic refuses to write a lone
    surrogate, and the exception would end the server; such a message goes as ASCII JSON (the
    surrogate as its escape), and one that cannot be written at all as an internal error for
    its request."""
    try:
        line: str = message.model_dump_json(by_alias=True, exclude_none=True)
        return line
    except Exception as exc:
        log.error("could not write a message as UTF-8 JSON: %s", exc)
    try:
        return jsonrpc.serialized(
            message.model_dump(mode="python", by_alias=True, exclude_none=True)
        )
    except Exception as exc:
        log.error("could not write a message: %s", exc)
    rid = getattr(getattr(message, "root", None), "id", None)
    if not isinstance(rid, (str, int)) or not jsonrpc.is_text(rid):
        rid = None
    return jsonrpc.serialized(
        jsonrpc.error(rid, -32603, "Internal error: the answer could not be written")
    )


def _client_gone(exc: BaseException) -> bool:
    """Whether ``exc`` (possibly a group) only says the client closed its end: the SDK may still
    try to answer a last message after stdin reached end of file."""
    parts = getattr(exc, "exceptions", None)
    if parts is not None:
        return all(_client_gone(e) for e in parts)
    return isinstance(exc, (anyio.ClosedResourceError, anyio.BrokenResourceError, BrokenPipeError))


class CheckedBodies:
    """ASGI middleware: the body of every POST is checked (:func:`jsonrpc.check`) before the
    SDK sees it. What it refuses is answered ``400`` with a JSON-RPC error (``413`` for a body
    over :data:`MAX_BODY`), not a 500 with a traceback or an error the client cannot match:
    the SDK answers unparseable JSON, but a too-deep body raises in its parser and a batch gets
    an error without the request's id. A body that passes is replayed to the app unchanged."""

    def __init__(self, app: ASGIApp, methods: frozenset[str] | None = None) -> None:
        self.app = app
        self.methods = methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                answer = jsonrpc.error(None, jsonrpc.INVALID_REQUEST, "Request body too large")
                await _json_response(send, 413, answer)
                return
            if not message.get("more_body", False):
                break
        result = await checked(bytes(body), self.methods)
        if result.message is None:
            log.warning("refused a message: %s", result.reason[:300])
            errors = result.errors
            if len(errors) != 1:  # a batch, or a notification the SDK would drop: one answer
                reason = errors[0]["error"]["message"] if errors else result.reason
                errors = [jsonrpc.error(None, jsonrpc.INVALID_REQUEST, reason)]
            await _json_response(send, 400, errors[0])
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _json_response(send: Send, status: int, data: Any) -> None:
    body = jsonrpc.serialized(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def http_app(
    coord: Coordinator, *, agent: str | None, token: str | None, hosts: Collection[str]
) -> ASGIApp:
    """The streamable HTTP app (``/mcp``) behind the access guard and the message checks."""
    from ..httpaccess import Guard

    settings: dict[str, Any] = {}
    try:  # the Guard checks Host and Origin on every bind; the SDK's own check (loopback
        # binds only, any port) would refuse a Unix socket's port-less Host
        from mcp.server.transport_security import TransportSecuritySettings

        settings["transport_security"] = TransportSecuritySettings(
            enable_dns_rebinding_protection=False
        )
    except ImportError:  # pragma: no cover - SDKs before 1.10
        pass
    server = build_server(coord, agent=agent, **settings)
    app: ASGIApp = server.streamable_http_app()
    return Guard(CheckedBodies(app, served_methods(server)), token=token, hosts=hosts)


def serve_http(
    coord: Coordinator,
    *,
    agent: str | None = None,
    token: str | None,
    hosts: Collection[str],
    host: str = "127.0.0.1",
    port: int = 0,
    sock: socket.socket | None = None,
) -> None:
    """Serve MCP over streamable HTTP at ``http://host:port/mcp``, or on the listening socket
    ``sock`` (TCP or Unix, bound by the caller), until interrupted. ``token`` None serves
    without authentication (``--no-auth``); ``hosts`` are the ``Host`` values accepted
    (:mod:`agentcoord.httpaccess`)."""
    import signal
    import sys

    import uvicorn

    app = http_app(coord, agent=agent, token=token, hosts=hosts)
    sys.stdout = sys.stderr  # uvicorn's logs would otherwise go to stdout
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", server_header=False)
    server = uvicorn.Server(config)
    # uvicorn stops gracefully on SIGTERM, then raises the signal again for the handler it
    # found: make that a KeyboardInterrupt, so the caller's clean-up (the socket file) runs
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        anyio.run(functools.partial(server.serve, sockets=None if sock is None else [sock]))
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
