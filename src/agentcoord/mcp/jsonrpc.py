"""Every incoming MCP message is checked here before the SDK sees it (SPEC 16: "the MCP server
answers every request, malformed or too deep, with a JSON-RPC error").

The SDK, given a line it cannot parse or validate, only logs it: the client's request is never
answered and the client waits forever. That happens to text that is not JSON, to JSON-RPC
batches (an array; MCP 2025-06-18 removed batching), to envelopes that are not JSON-RPC 2.0,
and to anything nested deeper than pydantic goes (200 levels when parsing JSON, about 255 when
serializing). :func:`check` decides each message before that, with no SDK involved:

- not UTF-8, not JSON: ``-32700`` parse error, ``id`` null (JSON-RPC 2.0 section 5.1);
- nested deeper than :data:`MAX_DEPTH` (counted on the text, so a 50,000-deep value costs no
  recursion): ``-32602`` invalid params with the request's own ``id``, found by a scan of the
  top level (:func:`top_level_id`);
- an array: ``-32600`` invalid request for each element that is a request (its ``id``), or one
  with ``id`` null when none is;
- not an object, no ``"jsonrpc": "2.0"``, a ``method`` that is not a string, an ``id`` that is not
  a string or an integer (MCP), neither a request nor a response: ``-32600``, with the ``id``
  when there is a usable one.

Notifications and responses that are malformed are not answered (JSON-RPC never answers
those); a request always is. Imports nothing but the standard library: testable without the
SDK, shared by the stdio and HTTP transports.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Union

    RequestId = Union[str, int, None]

#: The deepest message accepted, counted in ``[``/``{`` levels of the whole message (the
#: ``tools/call`` envelope takes 3: a tool argument may nest about 196 levels). The SDK's
#: JSON parser stops at 200 and its serializer at about 255; the same limit on stdio and HTTP.
MAX_DEPTH = 200

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_DELTA = {"[": 1, "{": 1, "]": -1, "}": -1}
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[\[\]{}:,]|[^\s\[\]{}:,"]+)', re.DOTALL)


class Checked:
    """What :func:`check` made of one message: ``message`` (a JSON-RPC object for the SDK) or
    ``errors`` (JSON-RPC error responses to send back, possibly none), and a ``reason`` to log.
    """

    __slots__ = ("errors", "message", "reason")

    def __init__(
        self,
        message: dict[str, Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
        reason: str = "",
    ) -> None:
        self.message = message
        self.errors = errors or []
        self.reason = reason


def error(rid: RequestId, code: int, message: str) -> dict[str, Any]:
    """A JSON-RPC 2.0 error response."""
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}


def depth(text: str) -> int:
    """How deeply ``[``/``{`` nest in JSON ``text`` (brackets inside strings do not count).
    Linear, no recursion; meaningful for valid JSON, a harmless number for anything else."""
    bare = _STRING.sub("", text)
    steps = [_DELTA[b] for b in _BRACKETS.findall(bare)]
    return max(accumulate(steps), default=0)


def top_level_id(text: str) -> RequestId:
    """The ``id`` member of the top-level JSON object in ``text``, found without parsing the
    rest (which may be too deep to parse): a string or an integer, else None."""
    level = 0
    key: str | None = None
    expect_key = False
    for match in _TOKEN.finditer(text):
        tok = match.group(1)
        if tok in "[{":
            level += 1
            expect_key = level == 1 and tok == "{"
        elif tok in "]}":
            level -= 1
            if level <= 0:
                return None
        elif level != 1:
            continue
        elif tok == ",":
            expect_key = True
        elif tok == ":":
            expect_key = False
        elif expect_key:
            key = _loads_scalar(tok)
            expect_key = False
        elif key == "id":
            return _usable_id(_loads_scalar(tok))
    return None


def _loads_scalar(tok: str) -> Any:
    try:
        return json.loads(tok)
    except ValueError:
        return None


def _usable_id(value: Any) -> RequestId:
    """A request id MCP allows (a string or an integer, not a boolean), else None."""
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    return None


def check(raw: bytes | str) -> Checked:
    """Decide one message (a stdio line or an HTTP body); see the module's docstring."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        return Checked(errors=[error(None, PARSE_ERROR, "Parse error: not UTF-8")], reason=str(exc))
    text = text.strip()
    if not text:
        return Checked(reason="empty message")
    levels = depth(text)
    if levels > MAX_DEPTH:
        return _too_deep(text, levels)
    try:
        data = json.loads(text)
    except RecursionError:
        return _too_deep(text, levels)
    except ValueError as exc:
        return Checked(errors=[error(None, PARSE_ERROR, f"Parse error: {exc}")], reason=str(exc))
    if isinstance(data, list):
        return _batch(data)
    return envelope(data)


def envelope(data: Any) -> Checked:
    """Check a parsed message is a JSON-RPC 2.0 request, notification or response."""
    if not isinstance(data, dict):
        kind = type(data).__name__
        return Checked(
            errors=[error(None, INVALID_REQUEST, f"Invalid request: a {kind}, not an object")],
            reason=f"not an object: {kind}",
        )
    has_id = "id" in data
    rid = _usable_id(data.get("id"))
    is_request = "method" in data and has_id
    problem = None
    if data.get("jsonrpc") != "2.0":
        problem = 'Invalid request: "jsonrpc" must be "2.0"'
    elif "method" in data:
        if not isinstance(data["method"], str):
            problem = 'Invalid request: "method" must be a string'
        elif has_id and rid is None:
            problem = 'Invalid request: "id" must be a string or an integer'
        elif "params" in data and not isinstance(data["params"], dict):
            problem = 'Invalid request: "params" must be an object'
    elif not has_id or ("result" not in data and "error" not in data):
        problem = 'Invalid request: no "method"'
    if problem is None:
        return Checked(message=data)
    if is_request or ("method" not in data and not ("result" in data or "error" in data)):
        # a request (or something that is neither request, notification nor response) is
        # answered; a broken notification or response never is (JSON-RPC 2.0 section 4.1)
        return Checked(errors=[error(rid, INVALID_REQUEST, problem)], reason=problem)
    return Checked(reason=problem)


def _batch(items: list[Any]) -> Checked:
    message = "Invalid request: batches are not supported (MCP 2025-06-18); send one message"
    ids = [
        _usable_id(item["id"])
        for item in items
        if isinstance(item, dict) and "method" in item and "id" in item
    ]
    answered = [rid for rid in ids if rid is not None]
    if not answered:
        return Checked(errors=[error(None, INVALID_REQUEST, message)], reason="a batch")
    return Checked(
        errors=[error(rid, INVALID_REQUEST, message) for rid in answered], reason="a batch"
    )


def _too_deep(text: str, levels: int) -> Checked:
    message = f"Invalid params: the message nests {levels} levels deep; the limit is {MAX_DEPTH}"
    if text.startswith("["):
        return _batch([])
    return Checked(errors=[error(top_level_id(text), INVALID_PARAMS, message)], reason=message)
