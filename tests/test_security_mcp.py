"""Attacks on ``coord mcp`` (SPEC section 16), each performed for real against a ``coord mcp``
process: HTTP without (or with a wrong) bearer token, DNS rebinding and foreign origins even on
a wildcard bind, the Unix socket, the token file's mode, symlinks and other users; over stdio
and HTTP, messages that are not JSON, batches, and nesting too deep for the SDK, each of which
must get a JSON-RPC error for its id instead of leaving the client waiting."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import agentcoord
from agentcoord.mcp.tools import DESCRIPTIONS
from agentcoord.workspace import Workspace, init_workspace

from .conftest import COORD, coord_env

TIMEOUT = 120


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


TOKEN_NAME = ".coordination-token"
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "attacker", "version": "0"},
    },
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def token_path(ws: Workspace) -> Path:
    return Path(ws.timer_dir) / TOKEN_NAME


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def deep_text(depth: int) -> str:
    """A JSON value ``depth`` arrays deep, as text (json.dumps would overflow first)."""
    return "[" * depth + "1" + "]" * depth


class Server:
    """A ``coord mcp --http``/``--socket`` process, its stderr in a file; stopped by pid."""

    def __init__(self, proc: subprocess.Popen[bytes], stderr: Path, url: str) -> None:
        self.proc, self.stderr_path, self.url = proc, stderr, url

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def serve(
    ws: Workspace, tmp_path: Path, *args: str, port: int | None = None, sock: Path | None = None
) -> Iterator[Server]:
    """Start ``coord mcp`` with ``args`` (``--http PORT`` added unless ``sock`` is given) and
    wait until it accepts connections."""
    argv = [*COORD, "--dir", ws.root, "mcp", *args]
    if sock is not None:
        argv += ["--socket", str(sock)]
        url = "http://localhost/mcp"
    else:
        port = port or _free_port()
        if not any(a.startswith("--http") for a in args):
            argv += ["--http", str(port)]
        url = f"http://127.0.0.1:{port}/mcp"
    errpath = tmp_path / f"stderr-{time.monotonic_ns()}.txt"
    with open(errpath, "wb") as err:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env=coord_env(ws.root),
        )
    server = Server(proc, errpath, url)
    try:
        _wait_listening(server, port, sock)
        yield server
    finally:
        proc.terminate()  # by pid
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        assert out == b"", out  # stdout stays clean under HTTP too
    # no 500 (the SDK's answer to a body its parser cannot take) and no recursion overflow
    assert "Error handling POST request" not in server.stderr, server.stderr
    assert "RecursionError" not in server.stderr, server.stderr


def _wait_listening(server: Server, port: int | None, sock: Path | None) -> None:
    for _ in range(int(TIMEOUT / 0.05)):
        assert server.proc.poll() is None, server.stderr
        try:
            if sock is not None:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(sock))
            else:
                assert port is not None
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    pass
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"the server did not listen; stderr: {server.stderr}")


def run_coord(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    """``coord --json ARGS`` for a command that must refuse before serving."""
    return subprocess.run(
        [*COORD, "--json", "--dir", ws.root, *args],
        check=False,
        env=coord_env(ws.root),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT,
    )


def refused(out: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert out.stdout == ""
    error: dict[str, Any] = json.loads(out.stderr.strip().splitlines()[-1])["error"]
    return error


def body_of(response: httpx.Response) -> Any:
    """The JSON-RPC message in a plain JSON or a server-sent-events response."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                return json.loads(line[5:])
        return None
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {**ACCEPT, "Authorization": f"Bearer {token}"}


# -- A: the bearer token -----------------------------------------------------------------------
def test_http_requires_the_bearer_token(workspace: Workspace, tmp_path: Path) -> None:
    with serve(workspace, tmp_path) as server, httpx.Client(timeout=TIMEOUT) as client:
        token = token_path(workspace).read_text().strip()
        # no token, a wrong one, another scheme, an empty one: 401 with a Bearer challenge
        for headers in (
            ACCEPT,
            bearer("wrong-" + token),
            bearer(token[:-1]),
            {**ACCEPT, "Authorization": "Bearer"},
            {**ACCEPT, "Authorization": f"Basic {token}"},
            {**ACCEPT, "Authorization": token},
        ):
            r = client.post(server.url, json=INIT, headers=headers)
            assert r.status_code == 401, (headers, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer"), r.headers
            assert token not in r.text
        assert (
            'error="invalid_token"'
            in client.post(server.url, json=INIT, headers=bearer("x")).headers["www-authenticate"]
        )
        # every request, not only the MCP endpoint
        for method, path in (("GET", "/mcp"), ("DELETE", "/mcp"), ("GET", "/"), ("GET", "/x")):
            r = client.request(method, server.url.replace("/mcp", path), headers=ACCEPT)
            assert r.status_code == 401, (method, path, r.status_code)
        # the right token (the scheme is case-insensitive, RFC 7235)
        r = client.post(server.url, json=INIT, headers=bearer(token))
        assert r.status_code == 200, r.text
        assert body_of(r)["result"]["serverInfo"]["name"] == "agentcoord"
        r = client.post(
            server.url, json=INIT, headers={**ACCEPT, "Authorization": f"bearer {token}"}
        )
        assert r.status_code == 200, r.text
    assert token not in server.stderr  # the token is never printed
    assert str(token_path(workspace)) in server.stderr
    assert "Authorization: Bearer" in server.stderr  # how to configure a client


@pytest.mark.anyio
async def test_sdk_client_with_the_token(workspace: Workspace, tmp_path: Path) -> None:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    with serve(workspace, tmp_path, "--agent", "a1") as server:
        token = token_path(workspace).read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        with anyio.fail_after(TIMEOUT):
            async with (
                httpx.AsyncClient(headers=headers, timeout=TIMEOUT) as http,
                streamable_http_client(server.url, http_client=http) as (read, write, _),
                ClientSession(read, write) as s,
            ):
                await s.initialize()
                result = await s.call_tool("create_task", {"title": "t", "id": "t1"})
                assert not result.isError, result


def test_token_file_is_private_and_reused(workspace: Workspace, tmp_path: Path) -> None:
    path = token_path(workspace)
    assert not path.exists()
    with serve(workspace, tmp_path):
        st = path.lstat()
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_uid == os.geteuid()
        first = path.read_text().strip()
        assert len(first) >= 43  # secrets.token_urlsafe(32)
    with serve(workspace, tmp_path):
        assert path.read_text().strip() == first  # reused: configured clients keep working
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(f"{TOKEN_NAME}.")]
    assert leftovers == []


def test_token_file_is_in_the_ignored_timer_dir(tmp_path: Path) -> None:
    """The default layout puts it in ``.claude/``, which the project's .gitignore covers."""
    ws, _ = init_workspace(str(tmp_path / "proj" / ".claude" / "coordination"))
    assert token_path(ws) == tmp_path / "proj" / ".claude" / TOKEN_NAME
    gitignore = (Path(__file__).parent.parent / ".gitignore").read_text().splitlines()
    assert ".claude/.coordination-*" in gitignore


def test_default_token_file_is_never_followed_through_a_symlink(
    workspace: Workspace, tmp_path: Path
) -> None:
    target = tmp_path / "victim"
    target.write_text("precious\n")
    path = token_path(workspace)
    for link_to in (target, tmp_path / "dangling"):
        path.unlink(missing_ok=True)
        path.symlink_to(link_to)
        out = run_coord(workspace, "mcp", "--http", str(_free_port()))
        assert out.returncode == 6, out.stderr
        assert refused(out)["code"] == "corrupt"
        assert target.read_text() == "precious\n"
        assert not (tmp_path / "dangling").exists()
        assert path.is_symlink()


def test_default_token_file_with_a_loose_mode_is_refused(
    workspace: Workspace, tmp_path: Path
) -> None:
    path = token_path(workspace)
    path.write_text("a-token-others-could-read\n")
    path.chmod(0o644)
    out = run_coord(workspace, "mcp", "--http", str(_free_port()))
    assert out.returncode == 6, out.stderr
    assert "644" in refused(out)["message"] or "readable" in refused(out)["message"]


def _private_dir() -> Path:
    """A directory other users can traverse (pytest's own tmp dir is 0700, which would hide
    the file's mode behind the directory's)."""
    path = Path(tempfile.mkdtemp(prefix="coord-token-"))
    path.chmod(0o755)
    return path


def test_another_user_cannot_read_the_token_file(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to run a child as another user (uid 65534)")
    base = _private_dir()
    try:
        ws, _ = init_workspace(str(base / "coord"))
        os.chmod(ws.root, 0o755)
        with serve(ws, tmp_path):
            path = token_path(ws)
            control = path.with_name("readable-control")
            control.write_text("x\n")
            control.chmod(0o644)
            script = (  # the directory is reachable, the control file readable, the token not
                'test -e "$1" && cat "$2" && '
                'if cat "$1" >/dev/null 2>&1; then echo READ; else echo denied; fi'
            )
            out = subprocess.run(
                ["/bin/sh", "-c", script, "sh", str(path), str(control)],
                capture_output=True,
                text=True,
                check=True,
                timeout=TIMEOUT,
                preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)),
                cwd="/",
            )
            assert out.stdout.split() == ["x", "denied"], out.stderr
    finally:
        shutil.rmtree(base)


def test_token_file_option(workspace: Workspace, tmp_path: Path) -> None:
    mine = tmp_path / "my-token"
    mine.write_text("s3cr3t-token_value.~+/=\n")
    mine.chmod(0o600)
    with serve(workspace, tmp_path, "--token-file", str(mine)) as server, httpx.Client() as c:
        assert c.post(server.url, json=INIT, headers=bearer("s3cr3t-token_value.~+/=")).is_success
        assert c.post(server.url, json=INIT, headers=ACCEPT).status_code == 401
    assert not token_path(workspace).exists()  # the default file is not made
    assert str(mine) in server.stderr


@pytest.mark.parametrize(
    "kind", ["world-readable", "group-readable", "empty", "directory", "symlink", "missing", "fifo"]
)
def test_token_file_option_refuses_unsafe_files(
    workspace: Workspace, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "token"
    good = tmp_path / "good"
    good.write_text("tok\n")
    good.chmod(0o600)
    if kind == "world-readable":
        path.write_text("tok\n")
        path.chmod(0o604)
    elif kind == "group-readable":
        path.write_text("tok\n")
        path.chmod(0o640)
    elif kind == "empty":
        path.write_text("\n")
        path.chmod(0o600)
    elif kind == "directory":
        path.mkdir(mode=0o700)
    elif kind == "symlink":
        path.symlink_to(good)
    elif kind == "fifo":
        os.mkfifo(path, 0o600)  # must not block the server
    out = run_coord(workspace, "mcp", "--http", str(_free_port()), "--token-file", str(path))
    assert out.returncode in (2, 6), out.stderr
    error = refused(out)
    assert "--token-file" in error["message"] or str(path) in error["message"], error
    assert "tok" not in out.stderr.replace("token", "")


# -- A: Host and Origin ------------------------------------------------------------------------
def test_dns_rebinding_and_foreign_origins_are_refused_on_a_wildcard_bind(
    workspace: Workspace, tmp_path: Path
) -> None:
    port = _free_port()
    args = ("--http", f"0.0.0.0:{port}", "--allow-host", "coord.lan")
    with serve(workspace, tmp_path, *args, port=port) as server, httpx.Client() as client:
        good = bearer(token_path(workspace).read_text().strip())
        for headers in (
            {**good, "Host": f"evil.example:{port}"},  # DNS rebinding
            {**good, "Host": "evil.example"},
            {**good, "Host": f"127.0.0.1:{port + 1}"},
            {**good, "Host": f"0.0.0.0:{port}"},
            {**good, "Origin": "http://evil.example"},
            {**good, "Origin": f"http://evil.example:{port}"},
            {**good, "Origin": "null"},
            {**good, "Origin": f"http://127.0.0.1:{port}.evil.example"},
            {**good, "Origin": f"ftp://127.0.0.1:{port}"},
            {**ACCEPT, "Host": f"evil.example:{port}"},  # no token either: still refused
        ):
            r = client.post(server.url, json=INIT, headers=headers)
            assert r.status_code == 403, (headers, r.status_code, r.text)
        for headers in (
            good,
            {**good, "Host": f"localhost:{port}"},
            {**good, "Host": f"coord.lan:{port}"},  # --allow-host
            {**good, "Origin": f"http://127.0.0.1:{port}"},
            {**good, "Origin": f"https://localhost:{port}"},
            {**good, "Host": f"coord.lan:{port}", "Origin": f"http://coord.lan:{port}"},
        ):
            r = client.post(server.url, json=INIT, headers=headers)
            assert r.status_code == 200, (headers, r.status_code, r.text)
    assert "--allow-host" in server.stderr or "0.0.0.0" in server.stderr


def test_dns_rebinding_is_refused_on_loopback(workspace: Workspace, tmp_path: Path) -> None:
    with serve(workspace, tmp_path) as server, httpx.Client() as client:
        good = bearer(token_path(workspace).read_text().strip())
        port = server.url.split(":")[2].split("/")[0]
        r = client.post(server.url, json=INIT, headers={**good, "Host": f"evil.example:{port}"})
        assert r.status_code == 403
        r = client.post(server.url, json=INIT, headers={**good, "Origin": "https://evil.example"})
        assert r.status_code == 403
        assert client.post(server.url, json=INIT, headers=good).status_code == 200


def test_no_auth_only_on_loopback(workspace: Workspace, tmp_path: Path) -> None:
    for address in ("0.0.0.0:1", "192.0.2.1:8000", "[::]:8000", "example.com:8000"):
        out = run_coord(workspace, "mcp", "--http", address, "--no-auth")
        assert out.returncode == 2, (address, out.stderr)
        assert "--no-auth" in refused(out)["message"]
    out = run_coord(workspace, "mcp", "--no-auth")  # stdio has no token to turn off
    assert out.returncode == 2, out.stderr
    with serve(workspace, tmp_path, "--no-auth") as server, httpx.Client() as client:
        assert client.post(server.url, json=INIT, headers=ACCEPT).status_code == 200
        r = client.post(server.url, json=INIT, headers={**ACCEPT, "Host": "evil.example"})
        assert r.status_code == 403  # Host and Origin are still checked
    assert "warning" in server.stderr.lower() and "--no-auth" in server.stderr
    assert not token_path(workspace).exists()


# -- A: the Unix socket ------------------------------------------------------------------------
@pytest.mark.anyio
async def test_unix_socket(workspace: Workspace, tmp_path: Path) -> None:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    sock = tmp_path / "mcp.sock"
    with serve(workspace, tmp_path, "--agent", "a1", sock=sock) as server:
        st = sock.lstat()
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077 == 0, oct(st.st_mode)
        token = token_path(workspace).read_text().strip()
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as client:
            assert client.post(server.url, json=INIT, headers=ACCEPT).status_code == 401
            assert client.post(server.url, json=INIT, headers=bearer("nope")).status_code == 401
            r = client.post(
                server.url, json=INIT, headers={**bearer(token), "Host": "evil.example"}
            )
            assert r.status_code == 403
            assert client.post(server.url, json=INIT, headers=bearer(token)).status_code == 200
        with anyio.fail_after(TIMEOUT):
            async with (
                httpx.AsyncClient(
                    transport=httpx.AsyncHTTPTransport(uds=str(sock)),
                    headers={"Authorization": f"Bearer {token}"},
                ) as http,
                streamable_http_client(server.url, http_client=http) as (read, write, _),
                ClientSession(read, write) as s,
            ):
                await s.initialize()
                assert not (await s.call_tool("create_task", {"title": "t"})).isError
    assert str(sock) in server.stderr
    assert not sock.exists()  # removed on exit


@pytest.mark.parametrize("kind", ["file", "symlink", "directory", "live-socket"])
def test_socket_refuses_what_is_not_a_stale_socket(
    workspace: Workspace, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "mcp.sock"
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    listener = None
    if kind == "file":
        path.write_text("precious\n")
    elif kind == "symlink":
        path.symlink_to(victim)
    elif kind == "directory":
        path.mkdir()
    else:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
        listener.listen(1)
    try:
        out = run_coord(workspace, "mcp", "--socket", str(path))
        assert out.returncode in (2, 4), out.stderr
        assert str(path) in refused(out)["message"]
        assert victim.read_text() == "precious\n"
        if kind == "file":
            assert path.read_text() == "precious\n"
        elif kind == "symlink":
            assert path.is_symlink()
        elif kind == "directory":
            assert path.is_dir()
        else:
            assert stat.S_ISSOCK(path.lstat().st_mode)
    finally:
        if listener is not None:
            listener.close()


def test_socket_replaces_a_stale_socket(workspace: Workspace, tmp_path: Path) -> None:
    sock = tmp_path / "mcp.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(sock))  # bound, never listening, then closed: nobody answers
    with (
        serve(workspace, tmp_path, sock=sock),
        httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as client,
    ):
        assert client.post("http://localhost/mcp", json=INIT, headers=ACCEPT).status_code == 401


@pytest.mark.parametrize(
    "args",
    [
        ["--socket", "/tmp/x.sock", "--http", "8765"],
        ["--token-file", "/tmp/t"],  # stdio has no token
        ["--allow-host", "a.example"],
        ["--http", "8765", "--no-auth", "--token-file", "/tmp/t"],
        ["--http", "8765", "--allow-host", "bad host"],
        ["--http", "8765", "--allow-host", "a.example/x"],
    ],
)
def test_cli_bad_security_options(workspace: Workspace, args: list[str]) -> None:
    out = run_coord(workspace, "mcp", *args)
    assert out.returncode == 2, out.stderr
    assert refused(out)["code"] == "invalid_input"


# -- B: every request gets an answer -----------------------------------------------------------
class Stdio:
    """A raw ``coord mcp`` over stdio: lines in, JSON-RPC messages out."""

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

    def send(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.rstrip(b"\n") + b"\n")
        self.proc.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"server closed stdout; stderr: {self.errpath.read_text()}"
        msg: dict[str, Any] = json.loads(line)
        assert msg["jsonrpc"] == "2.0", line
        return msg

    def close(self) -> int:
        try:
            self.proc.communicate(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
        return self.proc.returncode


def _call(i: int, tool: str, args: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": i,
        "method": "tools/call",
        "params": {"name": tool, "arguments": args},
    }


def _is_error_for(msg: dict[str, Any]) -> bool:
    """A JSON-RPC error, or a tool result flagged ``isError``."""
    return "error" in msg or bool(msg.get("result", {}).get("isError"))


def _call_line(i: int, tool: str, args_text: str) -> bytes:
    return (
        f'{{"jsonrpc":"2.0","id":{i},"method":"tools/call",'
        f'"params":{{"name":"{tool}","arguments":{args_text}}}}}'
    ).encode()


ATTACKS: list[tuple[str, bytes, Any, int | None]] = [
    # (name, line, id the answer must carry, JSON-RPC code or None for "any error")
    ("garbage", b"this is not json", None, -32700),
    ("truncated", b'{"jsonrpc":"2.0","id":50,"method":"tools/li', None, -32700),
    ("binary", b"\xff\xfe\x00garbage", None, -32700),
    ("scalar", b"42", None, -32600),
    ("empty-batch", b"[]", None, -32600),
    ("no-method", b'{"jsonrpc":"2.0","id":51}', 51, -32600),
    ("bad-version", b'{"jsonrpc":"1.0","id":52,"method":"tools/list"}', 52, -32600),
    (
        "context-200",
        _call_line(60, "context", json.dumps({"project": "p", "domain": "d", "data": nested(200)})),
        60,
        None,
    ),
    (
        "context-900",
        _call_line(61, "context", json.dumps({"project": "p", "domain": "d", "data": nested(900)})),
        61,
        None,
    ),
    (
        "emit-50000",
        _call_line(
            62, "emit_event", '{"channel":"c","type":"t","fields":{"v":' + deep_text(50_000) + "}}"
        ),
        62,
        None,
    ),
    (
        "deep-id-last",
        b'{"jsonrpc":"2.0","method":"tools/call","params":{"name":"emit_event","arguments":'
        + deep_text(5_000).encode()
        + b'},"id":"last"}',
        "last",
        None,
    ),
]


def _initialize(io: Stdio) -> dict[str, Any]:
    io.send(json.dumps(INIT).encode())
    init = io.read()
    assert init["id"] == 1, init
    io.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    return init


def test_stdio_answers_every_request(workspace: Workspace, tmp_path: Path) -> None:
    io = Stdio(workspace, tmp_path)
    try:
        init = _initialize(io)
        assert init["result"]["serverInfo"] == {
            "name": "agentcoord",
            "version": agentcoord.__version__,
        }
        for name, line, rid, code in ATTACKS:
            io.send(line)
            msg = io.read()  # blocks forever (until the pytest timeout) if nothing answers
            assert msg.get("id") == rid, (name, msg)
            assert _is_error_for(msg), (name, msg)
            if code is not None:
                assert msg["error"]["code"] == code, (name, msg)
            # ...and the server still serves
            io.send(json.dumps({"jsonrpc": "2.0", "id": 99, "method": "ping"}).encode())
            assert io.read() == {"jsonrpc": "2.0", "id": 99, "result": {}}, name
        # a batch: each request in it is answered with its own id, a notification is not
        batch = [
            {"jsonrpc": "2.0", "id": 70, "method": "tools/list"},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            _call(71, "status", {}),
        ]
        io.send(json.dumps(batch).encode())
        answers = [io.read(), io.read()]
        assert sorted(m["id"] for m in answers) == [70, 71]
        assert all(m["error"]["code"] == -32600 for m in answers), answers
        # a context the SDK can carry is stored (nothing is refused for no reason)
        io.send(
            json.dumps(
                _call(80, "context", {"project": "p", "domain": "d", "data": nested(150)})
            ).encode()
        )
        assert not _is_error_for(io.read())
        io.send(json.dumps({"jsonrpc": "2.0", "id": 81, "method": "tools/list"}).encode())
        assert len(io.read()["result"]["tools"]) == len(DESCRIPTIONS)
    finally:
        assert io.close() == 0
    assert "Traceback" not in io.errpath.read_text()


def test_http_answers_malformed_and_deep_messages(workspace: Workspace, tmp_path: Path) -> None:
    with serve(workspace, tmp_path, "--agent", "a1") as server, httpx.Client(timeout=TIMEOUT) as c:
        headers = bearer(token_path(workspace).read_text().strip())
        r = c.post(server.url, json=INIT, headers=headers)
        assert r.status_code == 200
        assert body_of(r)["result"]["serverInfo"]["version"] == agentcoord.__version__
        session = {**headers, "Mcp-Session-Id": r.headers["mcp-session-id"]}
        c.post(
            server.url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers=session,
        )
        for name, line, rid, code in ATTACKS:
            r = c.post(server.url, content=line, headers=session)
            msg = body_of(r)
            assert msg is not None and _is_error_for(msg), (name, r.status_code, r.text)
            if r.status_code != 200:
                assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
            if code is not None:
                assert msg["error"]["code"] == code, (name, msg)
            if rid is not None:
                assert msg["id"] == rid, (name, msg)
        r = c.post(
            server.url,
            json=[{"jsonrpc": "2.0", "id": 70, "method": "tools/list"}],
            headers=session,
        )
        assert r.status_code == 400 and body_of(r)["error"]["code"] == -32600, r.text
        r = c.post(
            server.url, json={"jsonrpc": "2.0", "id": 90, "method": "tools/list"}, headers=session
        )
        assert r.status_code == 200 and len(body_of(r)["result"]["tools"]) == len(DESCRIPTIONS)
    assert "Traceback" not in server.stderr, server.stderr


def test_a_port_in_use_is_exit_4_before_anything_is_announced(workspace: Workspace) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        out = run_coord(workspace, "mcp", "--http", str(port))
    assert out.returncode == 4, out.stderr
    assert "serving" not in out.stderr
    error = refused(out)
    assert "in use" in error["message"]


def test_the_socket_announcement_never_offers_a_tcp_url(
    workspace: Workspace, tmp_path: Path
) -> None:
    """A client URL for a Unix socket would be read as TCP port 80: the token must not be sent
    there, so the socket's start-up lines offer no ``claude mcp add`` command."""
    with serve(workspace, tmp_path, sock=tmp_path / "mcp.sock") as server:
        for _ in range(int(TIMEOUT / 0.05)):  # the socket listens before the lines are written
            if "--unix-socket" in server.stderr:
                break
            time.sleep(0.05)
    assert "claude mcp add" not in server.stderr
    assert "--unix-socket" in server.stderr


# -- advA 7 and 8: another user's stale socket; the 401's message ----------------------------------
@pytest.mark.parametrize("case", ["unprobeable", "unremovable", "unwritable-dir"])
def test_another_users_socket_in_the_way_is_a_clear_error(case: str) -> None:
    """``coord mcp --socket`` as uid 40002 where uid 40001 left a stale socket in a sticky
    ``/tmp``-like directory (its mode 0755: cannot even be probed; 0777: nobody listens, but
    the sticky bit forbids removing it), or in a directory it may not write: exit 2 naming the
    path and why, never a traceback; the other user's socket is left alone."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run coord as other uids (setuid in a child)")
    from .test_security_files import run_as, shared_tmp

    with shared_tmp() as base:
        root = base / "ws"
        init_workspace(str(root))
        subprocess.run(["chown", "-R", "40002:40002", str(root)], check=True)
        sticky = base / "tmp"
        sticky.mkdir()
        sticky.chmod(0o1777)
        path = sticky / "mcp.sock"
        if case == "unwritable-dir":
            path = base / "mcp.sock"  # base: root's, 0755
        else:
            with socket.socket(socket.AF_UNIX) as dead:
                dead.bind(str(path))  # bound, never listening, then closed
            os.chown(path, 40001, 40001)
            path.chmod(0o755 if case == "unprobeable" else 0o777)
        done = run_as(40002, root, "--json", "mcp", "--socket", str(path), gid=40002, groups=())
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""
        error = json.loads(done.stderr.strip().splitlines()[-1])["error"]
        assert error["code"] == "invalid_input" and str(path) in error["message"]
        if case != "unwritable-dir":
            assert "uid 40001" in error["message"]
            assert path.lstat().st_uid == 40001  # left alone
        else:
            assert not path.exists()


def test_a_wrong_token_is_told_apart_from_a_missing_one(
    workspace: Workspace, tmp_path: Path
) -> None:
    with serve(workspace, tmp_path) as server, httpx.Client(timeout=TIMEOUT) as client:
        token = token_path(workspace).read_text().strip()
        missing = client.post(server.url, json=INIT, headers=ACCEPT)
        assert missing.status_code == 401
        assert "required" in missing.json()["error"]["message"]
        assert "error=" not in missing.headers["www-authenticate"]
        for wrong in ("wrong-" + token, token[:-1], "x"):
            r = client.post(server.url, json=INIT, headers=bearer(wrong))
            assert r.status_code == 401
            assert "the bearer token does not match" in r.json()["error"]["message"]
            assert 'error="invalid_token"' in r.headers["www-authenticate"]
            assert wrong not in r.text and token not in r.text
