"""Shared fixtures. ``coord`` is parametrized over every backend: the behavioural tests written
against it are the conformance suite (SPEC section 10)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from agentcoord.api import Coordinator
from agentcoord.workspace import Config, Workspace, init_workspace

from .redis_server import RedisServer, redis_server_fixture

# Hypothesis deadlines are wall-clock assertions: on shared 2-core machines they only flake.
settings.register_profile("agentcoord", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("agentcoord")

T0 = 1_760_000_000.0  # 2025-10-09T08:53:20Z


class FakeClock:
    """A clock tests move by hand: leases and monitor classes without sleeping."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture(autouse=True)
def _no_ambient_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test starts with no agent named by the environment and a private directory for
    session links (SPEC section 12): nothing a developer's shell or another test left leaks in."""
    monkeypatch.delenv("COORD_AGENT", raising=False)
    for variable in ("CLAUDE_ENV_FILE", "CLAUDE_CODE_SESSION_ID", "GEMINI_SESSION_ID"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("COORD_SESSION_DIR", str(tmp_path / ".coord-sessions"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


#: The conformance suite's backends: the in-memory reference store, markdown files, Redis.
BACKENDS = ["memory", "markdown", "redis"]

#: One throw-away redis-server per test session (per xdist worker); each test gets its own
#: workspace name inside it, so tests never see each other's keys.
redis_server = redis_server_fixture("redis_server")


#: For tests of one backend's specifics: ``@MARKDOWN_ONLY`` on a test that uses ``coord``.
MARKDOWN_ONLY = pytest.mark.parametrize("backend", ["markdown"], indirect=True)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws, _ = init_workspace(str(tmp_path / "coord"))
    return ws


@pytest.fixture
def coord(
    backend: str, workspace: Workspace, clock: FakeClock, request: pytest.FixtureRequest
) -> Iterator[Coordinator]:
    """A Coordinator on a fresh workspace of each backend, driven by a fake clock."""
    from agentcoord.store.base import Store

    store: Store
    if backend == "redis":
        import uuid

        from agentcoord.store.redis.store import RedisStore

        server: RedisServer = request.getfixturevalue("redis_server")
        store = RedisStore(server.url, workspace=f"t-{uuid.uuid4().hex[:12]}", clock=clock)
    elif backend == "memory":
        from agentcoord.store.memory import MemoryStore

        store = MemoryStore(clock=clock)
    else:
        from agentcoord.store.markdown.store import MarkdownStore

        store = MarkdownStore(workspace.root, durable=False, clock=clock)
    c = Coordinator(store, config=Config(), workspace=workspace, clock=clock)
    yield c
    c.close()


def coord_env(root: str) -> dict[str, str]:
    """Environment for running ``coord`` subprocesses against ``root``."""
    env = dict(os.environ)
    env["COORD_DIR"] = root
    env.pop("COORD_URL", None)
    return env


COORD = [sys.executable, "-m", "agentcoord"]


def dead_pid() -> int:
    """A pid no process has right now (for temp files "left by a dead writer")."""
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


class CliResult:
    """What an in-process ``coord`` run printed and returned."""

    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr


@pytest.fixture
def run_cli(
    coord: Coordinator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    """Run ``coord ARGS`` in this process on the ``coord`` fixture's store and fake clock (so
    CLI tests run on every backend and can move time); ``code`` is the expected exit code."""
    from agentcoord.cli.main import main

    class Borrowed(Coordinator):
        def close(self) -> None:  # the fixture owns the store
            return None

    def borrowed(cls: Any, *args: Any, **kwargs: Any) -> Coordinator:
        return Borrowed(
            coord.store, config=coord.config, workspace=coord.workspace, clock=coord.clock
        )

    monkeypatch.setattr(Coordinator, "open", classmethod(borrowed))

    def run(*args: str, code: int = 0) -> CliResult:
        capsys.readouterr()
        got = main(list(args))
        out, err = capsys.readouterr()
        assert got == code, f"coord {' '.join(args)} exited {got}, not {code}: {err}"
        return CliResult(got, out, err)

    return run


def mount_for_test(argv: list[str], mount: Path, what: str) -> Iterator[Path]:
    """Run ``mount ARGV... MOUNT`` (root only: CI runs as root), yield ``mount``, unmount it.
    Skipped without the privilege; under ``CI=true`` a failure to mount fails the test."""
    import subprocess

    if os.geteuid() != 0:
        pytest.skip(f"mounting {what} needs root")
    mount.mkdir(exist_ok=True)
    done = subprocess.run(["mount", *argv, str(mount)], check=False, capture_output=True)
    if done.returncode != 0:
        message = f"cannot mount {what}: {done.stderr.decode().strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)
