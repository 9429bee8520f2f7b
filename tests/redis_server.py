"""Throw-away ``redis-server`` processes for tests.

Each :class:`RedisServer` runs its own ``redis-server`` on a free loopback port (or only on a
unix socket), without persistence, in a temporary directory, and is stopped by its pid. The
system's Redis (port 6379) is never used. Other test modules get fixtures from
:func:`redis_server_fixture`::

    from redis_server import redis_server_fixture

    redis_server = redis_server_fixture("redis_server")            # session-scoped
    secure_redis = redis_server_fixture("secure_redis", password="pw")

Without the binary the tests are skipped, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

DEFAULT_BINARY = "/usr/bin/redis-server"
SYSTEM_PORT = 6379


def find_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    return DEFAULT_BINARY if os.access(DEFAULT_BINARY, os.X_OK) else None


def require_binary() -> str:
    """The redis-server binary; skip the test without one (fail under ``CI=true``)."""
    binary = find_binary()
    if binary is None:
        message = "redis-server is not installed (needed by the Redis backend tests)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != SYSTEM_PORT:
            return port


class RedisServer:
    """One redis-server process owned by the test session."""

    def __init__(
        self, *, binary: str | None = None, password: str | None = None, unix: bool = False
    ) -> None:
        self.binary = binary or find_binary() or DEFAULT_BINARY
        self.password = password
        self.unix = unix
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        # Short path under /tmp: unix socket paths are limited to ~107 bytes.
        self.dir = tempfile.mkdtemp(prefix="coord-redis-")
        self.socket_path = os.path.join(self.dir, "redis.sock")

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.unix:
            query = f"?password={self.password}" if self.password else ""
            return f"unix://{self.socket_path}{query}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> RedisServer:
        """Start (or restart, on the same port) and wait until the server answers PING."""
        for _attempt in range(5):
            if not self.port and not self.unix:
                self.port = free_port()
            args = [
                self.binary,
                "--port",
                "0" if self.unix else str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--daemonize",
                "no",
                "--logfile",
                os.path.join(self.dir, "redis.log"),
            ]
            if self.unix:
                args += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
            if self.password:
                args += ["--requirepass", self.password]
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if self._wait_ready(timeout):
                return self
            self.stop(cleanup=False)
            if not self.unix:
                self.port = 0  # probably lost a race for the port: pick another
        raise RuntimeError(f"redis-server did not start; log:\n{self.log()}")

    def _wait_ready(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.ping():
                return True
            time.sleep(0.01)
        return False

    def ping(self) -> bool:
        """Whether the server answers (``NOAUTH`` counts: it is up and wants a password)."""
        try:
            if self.unix:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                address: Any = self.socket_path
            else:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                address = ("127.0.0.1", self.port)
            with sock:
                sock.settimeout(1.0)
                sock.connect(address)
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "redis.log"), encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return "(no log)"

    def stop(self, *, cleanup: bool = True) -> None:
        """Stop exactly this process: terminate, wait, kill if it does not go."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if cleanup:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def redis_server_fixture(
    name: str, *, scope: Any = "session", **options: Any
) -> Callable[[], Iterator[RedisServer]]:
    """A pytest fixture called ``name`` yielding a running :class:`RedisServer`."""

    @pytest.fixture(scope=scope, name=name)
    def _server() -> Iterator[RedisServer]:
        binary = require_binary()
        with RedisServer(binary=binary, **options) as server:
            yield server

    return _server
