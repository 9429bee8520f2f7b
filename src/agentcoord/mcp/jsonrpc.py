"""Every incoming MCP message is checked here before the SDK sees it (SPEC 16: "the MCP server
answers every request, malformed or too deep, with a JSON-RPC error").

The SDK, given a line it cannot parse or validate, only logs it: the client's request is never
answered and the client waits forever. That happens to text that is not JSON, to JSON-RPC
batches (an array; MCP 2025-06-18 removed batching), to envelopes that are not JSON-RPC 2.0,
and to anything nested deeper than pydantic goes (200 levels when parsing JSON, about 255 when
serializing). A string that cannot be encoded as UTF-8 (a lone surrogate, which JSON can write
as ``"\\ud800"``) is worse: the SDK accepts it, then fails to write its answer, and the server
dies or answers nothing. :func:`check` decides each message before that, with no SDK involved:

- not UTF-8, not JSON: ``-32700`` parse error, ``id`` null (JSON-RPC 2.0 section 5.1);
- nested deeper than :data:`MAX_DEPTH` (found by :func:`deeper_than` on the bytes, in linear
  time and without recursion): ``-32602`` invalid params with the request's own ``id``, found
  without parsing the rest (:func:`top_level_id`);
- an array: ``-32600`` invalid request for each element that is a request (its ``id``), or one
  with ``id`` null when none is;
- not an object, no ``"jsonrpc": "2.0"``, a ``method`` that is not a string, an ``id`` that is not
  a string or an integer (MCP) or a string that is not valid text, neither a request nor a
  response: ``-32600``, with the ``id`` when there is a usable one;
- a ``method`` the server does not serve (``methods``): ``-32601`` method not found;
- ``params`` holding a string that is not valid text: ``-32602``, with the request's ``id``; such
  a string anywhere else in a request: ``-32600``.

Notifications and responses that are malformed are not answered (JSON-RPC never answers
those); a request always is. Error responses are written with :func:`serialized` (ASCII JSON:
it cannot fail to encode). Imports nothing but the standard library: testable without the
SDK, shared by the stdio and HTTP transports.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate, count
from operator import sub

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection
    from typing import Any, Union

    RequestId = Union[str, int, None]

#: The deepest message accepted, counted in ``[``/``{`` levels of the whole message (the
#: ``tools/call`` envelope takes 3: a tool argument may nest about 196 levels). The SDK's
#: JSON parser stops at 200 and its serializer at about 255; the same limit on stdio and HTTP.
MAX_DEPTH = 200

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602

# -- the nesting scan --------------------------------------------------------------------------
# Every step below is a bytes method (replace, translate, split, join, count) or a C iterator:
# each is linear, nothing backtracks. The only Python loop steps over at least _SKIP brackets
# a turn, or over _WINDOW brackets when the level is within _SKIP of the limit. UTF-8 never
# uses the bytes of ASCII characters inside a multi-byte sequence, so the scan can work on the
# raw bytes.
_SKIP = 32
_WINDOW = 4096
_OPEN, _CLOSE = 2, 0  # a bracket's byte in _marks: its level change plus one
_KEEP = frozenset(b'[]{}"')
_NOT_MARKS = bytes(b for b in range(256) if b not in _KEEP)
_MARK_VALUES = bytes.maketrans(b"[{]}", bytes([_OPEN, _OPEN, _CLOSE, _CLOSE]))
_BLANK_BRACKETS = bytes.maketrans(b"[]{}", b"____")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")

#: the ``"id"`` key, also written with escapes; in text from :func:`_unescaped`
_ID_KEY = re.compile(rb'"(?:i|\\u0069)(?:d|\\u0064)"[ \t\r\n]*:[ \t\r\n]*')
_NUMBER = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
#: a JSON escape that may stand for a surrogate (U+D800-U+DFFF)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _unescaped(raw: bytes) -> bytes:
    """``raw`` with the two escapes that hide a quote or a backslash, ``\\\\`` and ``\\"``, made
    ``__``: every ``"`` left starts or ends a string. Same length (positions stay valid).

    ``replace`` pairs backslashes from the start of each run, as a JSON parser does."""
    if b"\\" not in raw:
        return raw
    return raw.replace(b"\\\\", b"__").replace(b'\\"', b"__")


def _marks(raw: bytes) -> bytes:
    """The brackets of JSON text ``raw`` that are outside strings, in order, as the bytes
    ``_OPEN`` and ``_CLOSE``."""
    marks = _unescaped(raw).translate(None, _NOT_MARKS)
    # Dropping two adjacent quotes leaves every bracket on the same side of a string (the
    # parity of the quotes before it is unchanged); most strings go here, in one pass.
    marks = marks.replace(b'""', b"")
    if b'"' in marks:  # strings holding brackets: keep what is outside them
        marks = b"".join(marks.split(b'"')[::2])
    return marks.translate(_MARK_VALUES)


class Scan:
    """What :func:`deeper_than` did: ``brackets`` looked at and Python ``turns`` taken (the
    work is countable, so tests can assert it is linear without a clock)."""

    __slots__ = ("brackets", "turns")

    def __init__(self) -> None:
        self.brackets = 0
        self.turns = 0


def deeper_than(raw: bytes | str, limit: int = MAX_DEPTH, scan: Scan | None = None) -> bool:
    """Whether ``[``/``{`` nest more than ``limit`` levels in JSON text ``raw`` (brackets inside
    strings do not count). Linear, no recursion, no regular expression; meaningful for valid
    JSON, a harmless answer for anything else (an unterminated string ends the count)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    marks = _marks(raw)
    scan = scan if scan is not None else Scan()
    scan.brackets = end = len(marks)
    level = pos = 0
    while pos < end:
        scan.turns += 1
        room = limit - level  # >= 0: the level never passed the limit so far
        if room >= _SKIP:
            # `room` brackets cannot take the level past the limit: only count them
            stop = min(pos + room, end)
            level += 2 * marks.count(_OPEN, pos, stop) - (stop - pos)
            pos = stop
            continue
        # near the limit: every level in the next window
        window = marks[pos : pos + _WINDOW]
        if level + max(map(sub, accumulate(window), count(1))) > limit:
            return True
        level += 2 * window.count(_OPEN) - len(window)
        pos += len(window)
    return False


def depth(raw: bytes | str) -> int:
    """How deeply ``[``/``{`` nest in JSON text ``raw``: the least ``n`` that
    :func:`deeper_than` says is not exceeded (for tests and tools; :func:`check` asks only
    about :data:`MAX_DEPTH`)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    deepest: int = max(map(sub, accumulate(_marks(raw), initial=0), count(0)))
    return deepest


def top_level_id(raw: bytes | str) -> RequestId:
    """The ``id`` member of the top-level JSON object in ``raw``, found without parsing the
    rest (which may be too deep to parse): a string or an integer, else None. Linear: one
    search for ``"id":`` keys, and the level of each counted from the previous one."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    plain = _unescaped(raw)
    parts = plain.replace(b"\x00", b"_").split(b'"')  # (no NUL left: it joins the strings)
    if len(parts) > 2:  # the brackets inside strings made "_": same length
        parts[1::2] = b"\x00".join(parts[1::2]).translate(_BLANK_BRACKETS).split(b"\x00")
    shape = b'"'.join(parts).translate(_ONE_KIND)
    level = pos = 0
    for match in _ID_KEY.finditer(plain):
        start = match.start()
        level += shape.count(b"[", pos, start) - shape.count(b"]", pos, start)
        pos = start
        if level == 1:
            return _usable_id(_scalar_at(raw, plain, match.end()))
    return None


def _scalar_at(raw: bytes, plain: bytes, pos: int) -> Any:
    """The JSON string or number at ``pos`` of ``raw``, else None."""
    if plain[pos : pos + 1] == b'"':
        close = plain.find(b'"', pos + 1)
        return None if close < 0 else _loads_scalar(raw[pos : close + 1])
    number = _NUMBER.match(raw, pos)
    return None if number is None else _loads_scalar(number.group())


def _loads_scalar(tok: bytes) -> Any:
    try:
        return json.loads(tok)
    except ValueError:
        return None


# -- the messages ------------------------------------------------------------------------------
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


def serialized(message: Any) -> str:
    """``message`` as one line of ASCII JSON: writing it never fails to encode (a lone
    surrogate comes out as its ``\\uXXXX`` escape)."""
    return json.dumps(message, ensure_ascii=True, separators=(",", ":"), default=str)


def is_text(value: Any) -> bool:
    """Whether every string in ``value`` (keys too) can be encoded as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _usable_id(value: Any) -> RequestId:
    """A request id MCP allows (a string of valid text or an integer, not a boolean), else
    None: an id the answer could not carry is no id."""
    if isinstance(value, str):
        return value if value.isascii() or is_text(value) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def check(raw: bytes | str, methods: Collection[str] | None = None) -> Checked:
    """Decide one message (a stdio line or an HTTP body); see the module's docstring.
    ``methods``: the request methods the server serves (None: any)."""
    try:
        if isinstance(raw, str):
            text, body = raw, raw.encode("utf-8")
        else:
            text, body = raw.decode("utf-8"), raw
    except UnicodeError as exc:
        return Checked(errors=[error(None, PARSE_ERROR, "Parse error: not UTF-8")], reason=str(exc))
    text = text.strip()
    if not text:
        return Checked(reason="empty message")
    if deeper_than(body, MAX_DEPTH):
        return _too_deep(text, body)
    try:
        data = json.loads(text)
    except RecursionError:
        return _too_deep(text, body)
    except ValueError as exc:
        return Checked(errors=[error(None, PARSE_ERROR, f"Parse error: {exc}")], reason=str(exc))
    if isinstance(data, list):
        return _batch(data)
    return envelope(data, methods, suspect=_SURROGATE_ESCAPE.search(body) is not None)


def envelope(data: Any, methods: Collection[str] | None = None, *, suspect: bool = True) -> Checked:
    """Check a parsed message is a JSON-RPC 2.0 request, notification or response.
    ``suspect``: whether a string in it may be invalid text (False only when the JSON text
    had no escape that could make one)."""
    if not isinstance(data, dict):
        kind = type(data).__name__
        return Checked(
            errors=[error(None, INVALID_REQUEST, f"Invalid request: a {kind}, not an object")],
            reason=f"not an object: {kind}",
        )
    has_id = "id" in data
    rid = _usable_id(data.get("id"))
    is_request = "method" in data and has_id
    problem, code = _problem(data, rid, methods, suspect)
    if problem is None:
        return Checked(message=data)
    if is_request or ("method" not in data and not ("result" in data or "error" in data)):
        # a request (or something that is neither request, notification nor response) is
        # answered; a broken notification or response never is (JSON-RPC 2.0 section 4.1)
        return Checked(errors=[error(rid, code, problem)], reason=problem)
    return Checked(reason=problem)


def _problem(
    data: dict[str, Any], rid: RequestId, methods: Collection[str] | None, suspect: bool
) -> tuple[str | None, int]:
    """What is wrong with the message ``data`` and the error code for it; (None, 0) if
    nothing is."""
    has_id = "id" in data
    if data.get("jsonrpc") != "2.0":
        return 'Invalid request: "jsonrpc" must be "2.0"', INVALID_REQUEST
    if "method" in data:
        method = data["method"]
        if not isinstance(method, str):
            return 'Invalid request: "method" must be a string', INVALID_REQUEST
        if has_id and rid is None:
            return 'Invalid request: "id" must be a string of valid text or an integer', (
                INVALID_REQUEST
            )
        if suspect and not is_text(method):
            return 'Invalid request: "method" is not valid text (a lone surrogate)', (
                INVALID_REQUEST
            )
        if has_id and methods is not None and method not in methods:
            return "Method not found", METHOD_NOT_FOUND
        if "params" in data and not isinstance(data["params"], dict):
            return 'Invalid request: "params" must be an object', INVALID_REQUEST
    elif not has_id or ("result" not in data and "error" not in data):
        return 'Invalid request: no "method"', INVALID_REQUEST
    if suspect:
        if not is_text({k: v for k, v in data.items() if k != "params"}):
            return "Invalid request: a string in it is not valid text (a lone surrogate)", (
                INVALID_REQUEST
            )
        if not is_text(data.get("params")):
            return "Invalid params: a string in them is not valid text (a lone surrogate)", (
                INVALID_PARAMS
            )
    return None, 0


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


def _too_deep(text: str, body: bytes) -> Checked:
    message = f"Invalid params: the message nests more than {MAX_DEPTH} levels deep"
    if text.startswith("["):
        return _batch([])
    return Checked(errors=[error(top_level_id(body), INVALID_PARAMS, message)], reason=message)
