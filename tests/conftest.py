"""Shared fixtures. ``coord`` is parametrized over every backend: the behavioural tests written
against it are the conformance suite (SPEC section 10)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests._shim  # noqa  TEMP
from agentcoord.api import Coordinator
from agentcoord.workspace import Config, Workspace, init_workspace

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


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


BACKENDS = ["markdown"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws, _ = init_workspace(str(tmp_path / "coord"))
    return ws


@pytest.fixture
def coord(backend: str, workspace: Workspace, clock: FakeClock) -> Iterator[Coordinator]:
    """A Coordinator on a fresh workspace of each backend, driven by a fake clock."""
    from agentcoord.store.markdown import MarkdownStore

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
