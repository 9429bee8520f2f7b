"""Hostile input to the MCP server: strings that are not valid text (lone surrogates) in every
position of a message, the nesting scan on adversarial text (linear, never a regex that
backtracks), methods the server does not serve (-32601), and a hostile --socket path on stderr.
docs/mcp.md "Every request gets an answer" lists the answers; the servers run as ``coord mcp``
processes, stopped by pid."""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcoord.mcp import jsonrpc
from agentcoord.workspace import Workspace

from .conftest import COORD, coord_env

TIMEOUT = 120
SERVED = frozenset({"initialize", "ping", "tools/list", "tools/call"})
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "attacker", "version": "0"},
    },
}
DEEP = '{"a":' + "[" * 300 + "]" * 300 + "}"


def call(rid: str, tool: str, args_text: str) -> bytes:
    return (
        f'{{"jsonrpc":"2.0","id":"{rid}","method":"tools/call",'
        f'"params":{{"name":"{tool}","arguments":{args_text}}}}}'
    ).encode()


#: (name, line, the answers it must get: (id, code) each). A surrogate is written the way a
#: client can send one: as a JSON escape (raw surrogates are not UTF-8, a parse error).
SURROGATES: list[tuple[str, bytes, list[tuple[Any, int]]]] = [
    ("id", b'{"jsonrpc":"2.0","id":"\\ud800","method":"ping"}', [(None, -32600)]),
    ("low id", b'{"jsonrpc":"2.0","id":"a\\udfffb","method":"tools/list"}', [(None, -32600)]),
    ("id, bad jsonrpc", b'{"jsonrpc":"1.0","id":"\\ud800","method":"ping"}', [(None, -32600)]),
    ("id, no method", b'{"jsonrpc":"2.0","id":"\\ud800"}', [(None, -32600)]),
    ("id in a batch", b'[{"jsonrpc":"2.0","id":"\\udfff","method":"ping"}]', [(None, -32600)]),
    (
        "batch of a good id and a bad one",
        b'[{"jsonrpc":"2.0","id":"\\udfff","method":"ping"},'
        b'{"jsonrpc":"2.0","id":"b2","method":"ping"}]',
        [("b2", -32600)],
    ),
    (
        "id of a too-deep message",
        b'{"jsonrpc":"2.0","id":"\\ud800","method":"ping","params":' + DEEP.encode() + b"}",
        [(None, -32602)],
    ),
    (
        "too deep, id last",
        b'{"jsonrpc":"2.0","method":"ping","params":' + DEEP.encode() + b',"id":"\\udbff"}',
        [(None, -32602)],
    ),
    ("method", b'{"jsonrpc":"2.0","id":"m","method":"\\ud800"}', [("m", -32600)]),
    ("jsonrpc", b'{"jsonrpc":"\\ud800","id":"j","method":"ping"}', [("j", -32600)]),
    ("other member", b'{"jsonrpc":"2.0","id":"o","method":"ping","\\ud800":1}', [("o", -32600)]),
    (
        "params",
        b'{"jsonrpc":"2.0","id":"p","method":"ping","params":{"x":"\\ud800"}}',
        [("p", -32602)],
    ),
    ("tool name", call("tn", "\\ud800", "{}"), [("tn", -32602)]),
    ("argument name", call("an", "status", '{"\\ud800":1}'), [("an", -32602)]),
    ("argument", call("av", "create_task", '{"title":"t\\ud800"}'), [("av", -32602)]),
    (
        "nested argument",
        call("na", "emit_event", '{"channel":"c","type":"t","fields":{"k":["\\udc00"]}}'),
        [("na", -32602)],
    ),
    (
        "progress token",
        b'{"jsonrpc":"2.0","id":"pt","method":"tools/call","params":{"name":"status",'
        b'"arguments":{},"_meta":{"progressToken":"\\ud800"}}}',
        [("pt", -32602)],
    ),
    ("notification", b'{"jsonrpc":"2.0","method":"notifications/x","params":{"a":"\\ud800"}}', []),
    ("response", b'{"jsonrpc":"2.0","id":"\\ud800","result":{}}', []),
    ("error response", b'{"jsonrpc":"2.0","id":"r","error":{"code":1,"message":"\\ud800"}}', []),
]


# -- the check, without a server ---------------------------------------------------------------
@pytest.mark.parametrize(("name", "line", "answers"), SURROGATES, ids=[c[0] for c in SURROGATES])
def test_check_refuses_invalid_text_everywhere(
    name: str, line: bytes, answers: list[tuple[Any, int]]
) -> None:
    checked = jsonrpc.check(line, SERVED)
    assert checked.message is None, name  # the SDK never sees it
    assert [(e["id"], e["error"]["code"]) for e in checked.errors] == answers
    for answer in checked.errors:
        text = jsonrpc.serialized(answer)
        assert text.isascii() and json.loads(text) == answer


def test_valid_text_passes() -> None:
    pair = jsonrpc.check(b'{"jsonrpc":"2.0","id":"\\ud83d\\ude00","method":"ping"}', SERVED)
    assert pair.message == {"jsonrpc": "2.0", "id": "\U0001f600", "method": "ping"}
    # an escaped backslash before "ud800" is not a surrogate
    text = b'{"jsonrpc":"2.0","id":"x","method":"ping","params":{"a":"\\\\ud800"}}'
    assert jsonrpc.check(text, SERVED).message is not None
    # a str holding a raw lone surrogate is not UTF-8
    raw = jsonrpc.check('{"jsonrpc":"2.0","id":"\ud800","method":"ping"}')
    assert [e["error"]["code"] for e in raw.errors] == [-32700]


def test_unknown_methods_are_method_not_found() -> None:
    unknown = jsonrpc.check(b'{"jsonrpc":"2.0","id":7,"method":"no/such"}', SERVED)
    assert unknown.errors == [jsonrpc.error(7, -32601, "Method not found")]
    # a notification is never answered; without a list every method passes
    assert jsonrpc.check(b'{"jsonrpc":"2.0","method":"no/such"}', SERVED).errors == []
    assert jsonrpc.check(b'{"jsonrpc":"2.0","id":7,"method":"no/such"}').message is not None


def test_writers_never_fail_to_encode() -> None:
    pytest.importorskip("mcp")
    from mcp import types

    from agentcoord.mcp.server import _line, dumps

    assert json.loads(dumps({"title": "a\ud800é"})) == {"title": "a\ud800é"}
    dumps({"title": "a\ud800"}).encode("utf-8")
    assert dumps({"title": "é"}) == '{"title":"é"}'  # valid text stays as it is
    response = types.JSONRPCResponse(jsonrpc="2.0", id="r", result={"text": "\udfff"})
    line = _line(types.JSONRPCMessage(response))
    line.encode("utf-8")
    assert json.loads(line)["result"] == {"text": "\udfff"}


# -- the nesting scan --------------------------------------------------------------------------
def true_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((true_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((true_depth(v) for v in value), default=0)
    return 0


#: strings made of what the scan must get right: quotes, backslashes, brackets
TRICKY = st.text(alphabet='"\\[]{}:,u0d8 é\n', max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TRICKY | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY, inner, max_size=4),
    max_leaves=40,
)


@settings(max_examples=400)
@given(JSON_VALUES, st.booleans(), st.integers(min_value=0, max_value=3))
def test_depth_agrees_with_the_true_depth(value: Any, ascii_only: bool, wrap: int) -> None:
    for _ in range(wrap):
        value = [value]
    true = true_depth(value)
    for text in (json.dumps(value, ensure_ascii=ascii_only), json.dumps(value, indent=1)):
        assert jsonrpc.depth(text) == true
        assert jsonrpc.deeper_than(text.encode(), true - 1) is (true > 0)
        assert not jsonrpc.deeper_than(text.encode(), true)


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=400), TRICKY, st.sampled_from(["[", "{"]))
def test_deeper_than_the_limit(levels: int, filler: str, kind: str) -> None:
    close = "]" if kind == "[" else "}"
    inner = json.dumps(filler)
    text = (kind + '"k":') * levels if kind == "{" else kind * levels
    text += inner + close * levels
    assert jsonrpc.depth(text) == levels
    assert jsonrpc.deeper_than(text, jsonrpc.MAX_DEPTH) is (levels > jsonrpc.MAX_DEPTH)


@settings(max_examples=200)
@given(
    st.one_of(TRICKY, st.text(), st.integers()),
    st.lists(st.tuples(TRICKY, JSON_VALUES), max_size=4),
    st.integers(min_value=0, max_value=4),
    st.integers(min_value=201, max_value=400),
)
def test_top_level_id_of_a_too_deep_message(
    rid: Any, members: list[tuple[str, Any]], where: int, levels: int
) -> None:
    parts = [f"{json.dumps(k)}:{json.dumps(v)}" for k, v in members]  # no key can be "id"
    parts.insert(min(where, len(parts)), f'"id":{json.dumps(rid)}')
    deep = "[" * levels + '{"id":"inner"}' + "]" * levels
    parts.insert(where % (len(parts) + 1), f'"params":{{"deep":{deep},"id":"no"}}')
    text = '{"jsonrpc":"2.0","method":"ping",' + ",".join(parts) + "}"
    assert jsonrpc.top_level_id(text) == rid
    assert [e["id"] for e in jsonrpc.check(text).errors] == [rid]


#: families of adversarial text, each a function of a size in bytes
ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "unterminated escaped quotes": lambda n: '"' + '\\"' * (n // 2),
    "alternating backslashes": lambda n: '"' + '\\\\\\"' * (n // 4),
    "deep brackets inside a string": lambda n: '["' + "[{" * (n // 2) + '"]',
    "quote, bracket, quote": lambda n: "[" + '"[",[' * (n // 5),
    "dense at the limit": lambda n: "[" * 199 + "[]," * (n // 3) + "]" * 199,
    "deep, with many id keys": lambda n: (
        '{"params":' + "[" * 250 + '{"id":1},' * (n // 9) + "1" + "]" * 250 + ',"id":"last"}'
    ),
    "empty strings": lambda n: "[" + '"",' * (n // 3) + '""]',
}


def cpu(fn: Callable[[], object]) -> float:
    """The least CPU time of the calling thread over three runs of ``fn``: other processes do
    not count, and the least run drops most of the noise."""
    import gc

    best = float("inf")
    gc.collect()
    gc.disable()  # the collector's passes over many new lists grow faster than the input
    try:
        for _ in range(3):
            start = time.thread_time()
            fn()
            best = min(best, time.thread_time() - start)
    finally:
        gc.enable()
    return best


@pytest.mark.parametrize("family", list(ADVERSARIAL))
def test_the_scan_is_linear(family: str) -> None:
    make = ADVERSARIAL[family]
    small, large = make(128 * 1024).encode(), make(8 * 128 * 1024).encode()
    # countable work: the Python loop takes a turn per _SKIP brackets at least, or per window
    for body in (small, large):
        scan = jsonrpc.Scan()
        jsonrpc.deeper_than(body, jsonrpc.MAX_DEPTH, scan)
        assert scan.turns <= scan.brackets // 32 + scan.brackets // 4096 * 2 + 2, family
    # and the C parts: 8x the text costs about 8x (a quadratic scan costs 64x; the old regex
    # took 10 s on 32 KiB of escaped quotes). Not a clock limit: a ratio of CPU times.
    for fn in (jsonrpc.check, jsonrpc.top_level_id):
        ratio = cpu(functools.partial(fn, large)) / max(cpu(functools.partial(fn, small)), 1e-4)
        assert ratio < 30, (family, fn.__name__, ratio)


def test_a_4_mib_worst_case_is_answered() -> None:
    body = ('"' + '\\"' * (2 * 1024 * 1024 - 1)).encode()
    assert [e["error"]["code"] for e in jsonrpc.check(body).errors] == [-32700]
    deep = ("[" * 199 + "[]," * 1_397_900 + "]" * 199).encode()
    assert not jsonrpc.deeper_than(deep, jsonrpc.MAX_DEPTH)
    assert jsonrpc.deeper_than(deep, 199)


# -- over stdio --------------------------------------------------------------------------------
class Stdio:
    """``coord mcp`` over stdio: lines in, JSON-RPC messages out; stderr in a file."""

    def __init__(self, ws: Workspace, tmp_path: Path) -> None:
        self.errpath = tmp_path / "stdio-stderr.txt"
        with open(self.errpath, "wb") as err:
            self.proc = subprocess.Popen(
                [*COORD, "--dir", ws.root, "mcp", "--agent", "a1"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=coord_env(ws.root),
            )
        self.pings = 0

    def send(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"the server closed stdout; stderr: {self.errpath.read_text()}"
        msg: dict[str, Any] = json.loads(line)
        return msg

    def answers_then_ping(self, line: bytes) -> list[dict[str, Any]]:
        """What ``line`` is answered, up to the answer to a ping sent after it: the server
        answers in order, so the ping's answer ends the list, and proves it still serves."""
        self.pings += 1
        ping = f"ping-{self.pings}"
        self.send(line)
        self.send(json.dumps({"jsonrpc": "2.0", "id": ping, "method": "ping"}).encode())
        got = []
        while (msg := self.read()) != {"jsonrpc": "2.0", "id": ping, "result": {}}:
            got.append(msg)
        return got

    def close(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()  # end of input: the server stops
        try:
            self.proc.stdout.read()
            self.proc.stdout.close()
            self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()  # by pid
                self.proc.communicate()
        return self.proc.returncode


def test_stdio_answers_invalid_text_and_keeps_serving(workspace: Workspace, tmp_path: Path) -> None:
    io = Stdio(workspace, tmp_path)
    try:
        io.send(json.dumps(INIT).encode())
        assert io.read()["id"] == 0
        io.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
        for name, line, answers in [
            *SURROGATES,
            ("unknown method", b'{"jsonrpc":"2.0","id":"u","method":"no/such"}', [("u", -32601)]),
            ("escaped quotes", ('"' + '\\"' * 500_000).encode(), [(None, -32700)]),
        ]:
            got = io.answers_then_ping(line)
            assert [(m["id"], m["error"]["code"]) for m in got] == answers, (name, got)
        # what is valid text still works (a tool call may be answered after a later ping)
        io.send(call("ok", "create_task", '{"title":"caf\\u00e9 \\ud83d\\ude00"}'))
        ok = io.read()
        assert ok["id"] == "ok" and not ok["result"].get("isError"), ok
    finally:
        assert io.close() == 0
    stderr = io.errpath.read_text()
    assert "Traceback" not in stderr and "ExceptionGroup" not in stderr, stderr


# -- over HTTP ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def http_server(ws: Workspace, tmp_path: Path, *args: str) -> Iterator[tuple[str, Path]]:
    port = _free_port()
    errpath = tmp_path / f"http-stderr-{time.monotonic_ns()}.txt"
    with open(errpath, "wb") as err:
        proc = subprocess.Popen(
            [*COORD, "--dir", ws.root, "mcp", "--agent", "a1", "--http", str(port), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=coord_env(ws.root),
        )
    try:
        for _ in range(int(TIMEOUT / 0.05)):
            assert proc.poll() is None, errpath.read_text()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp", errpath
    finally:
        proc.terminate()  # by pid
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def body_of(response: httpx.Response) -> Any:
    """The JSON-RPC message of a JSON or server-sent-events response, None when empty."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                return json.loads(line[5:])
        return None
    return response.json() if response.content else None


def test_http_answers_invalid_text_and_keeps_serving(workspace: Workspace, tmp_path: Path) -> None:
    with http_server(workspace, tmp_path) as (url, errpath), httpx.Client(timeout=TIMEOUT) as c:
        token = (Path(workspace.timer_dir) / ".coordination-token").read_text().strip()
        headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
        }
        r = c.post(url, json=INIT, headers=headers)
        assert r.status_code == 200, r.text
        session = {**headers, "Mcp-Session-Id": r.headers["mcp-session-id"]}
        c.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
        ping = {"jsonrpc": "2.0", "id": "ping", "method": "ping"}
        for name, line, answers in [
            *SURROGATES,
            ("unknown method", b'{"jsonrpc":"2.0","id":"u","method":"no/such"}', [("u", -32601)]),
            ("escaped quotes", ('"' + '\\"' * 1_000_000).encode(), [(None, -32700)]),
        ]:
            r = c.post(url, content=line, headers=session)
            assert r.status_code != 500 and r.status_code < 500, (name, r.status_code, r.text)
            msg = body_of(r)
            if answers:
                # over HTTP one body gets one answer (a batch: one with id null, see docs)
                rid, code = answers[0]
                assert r.status_code == 400, (name, r.status_code, r.text)
                assert (msg["id"], msg["error"]["code"]) == (rid, code), (name, msg)
            else:  # a notification or a response: accepted, never answered
                assert r.status_code in (202, 400), (name, r.status_code, r.text)
            assert body_of(c.post(url, json=ping, headers=session)) == {
                "jsonrpc": "2.0",
                "id": "ping",
                "result": {},
            }, name
    stderr = errpath.read_text()
    assert "Traceback" not in stderr and "Exception in ASGI" not in stderr, stderr
    assert "Error in SSE writer" not in stderr, stderr


def test_http_checks_a_slow_body_off_the_event_loop(workspace: Workspace, tmp_path: Path) -> None:
    """A 4 MiB body that takes the check the longest (tiny arrays at the nesting limit) and a
    ping sent while it is checked: both are answered (the old scan never finished)."""
    import threading

    big = ("[" * 199 + "[]," * 1_397_900 + "]" * 199).encode()  # just under 4 MiB
    with http_server(workspace, tmp_path, "--no-auth") as (url, errpath):
        headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        }
        with httpx.Client(timeout=TIMEOUT) as c:
            r = c.post(url, json=INIT, headers=headers)
            session = {**headers, "Mcp-Session-Id": r.headers["mcp-session-id"]}
        results: dict[str, httpx.Response] = {}

        def post(name: str, content: bytes) -> None:
            with httpx.Client(timeout=TIMEOUT) as client:
                results[name] = client.post(url, content=content, headers=session)

        slow = threading.Thread(target=post, args=("big", big))
        slow.start()
        post("ping", b'{"jsonrpc":"2.0","id":"p","method":"ping"}')
        slow.join(TIMEOUT)
        assert body_of(results["ping"]) == {"jsonrpc": "2.0", "id": "p", "result": {}}
        assert results["big"].status_code == 400
        assert body_of(results["big"])["error"]["code"] == -32700  # trailing comma
    assert "Traceback" not in errpath.read_text()


# -- stderr ------------------------------------------------------------------------------------
def test_the_socket_path_is_shown_escaped(workspace: Workspace) -> None:
    short = Path(tempfile.mkdtemp(prefix="cm", dir="/tmp"))
    path = short / "s\x1b]0;PWN\x07\x1b[2J\u202e"
    proc = subprocess.Popen(
        [*COORD, "--dir", workspace.root, "mcp", "--socket", str(path), "--no-auth"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=coord_env(workspace.root),
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline().decode("utf-8")
        assert "serving streamable HTTP on the Unix socket" in first, first
    finally:
        proc.terminate()  # by pid
        _, rest = proc.communicate(timeout=60)
        for leftover in short.iterdir():
            leftover.unlink()
        short.rmdir()
    text = first + rest.decode("utf-8")
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in text, text
    assert "\\x1b]0;PWN\\x07" in text, text
