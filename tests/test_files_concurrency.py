"""File reservations are granted exactly once under concurrency (issue 18 "Must show"):
processes race to reserve overlapping patterns on the markdown and Redis backends; exactly one
wins, every other one is told who won."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from agentcoord.api import Coordinator
from agentcoord.workspace import Workspace

REPO = str(Path(__file__).resolve().parent.parent)
WORKERS = 8


def race(target: str, coord: Coordinator, tmp: Path, round_: int) -> list[dict[str, object]]:
    go = str(tmp / f"go-{round_}")
    procs = []
    for i in range(WORKERS):
        patterns = ["src/**"] if i % 2 else [f"src/mod{i}/x.py", "*.md"]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.workers_files", target, f"w{i}", go, *patterns],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp.glob(f"go-{round_}.ready-*"))) < WORKERS:
            assert time.monotonic() < deadline, "workers did not start"
            for p in procs:
                assert p.poll() is None, p.communicate()
            time.sleep(0.01)
        Path(go).touch()
        out = []
        for p in procs:
            stdout, stderr = p.communicate(timeout=240)
            assert p.returncode == 0, stderr
            out.append(json.loads(stdout.strip().splitlines()[-1]))
        return out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def check_rounds(target: str, coord: Coordinator, tmp: Path) -> None:
    for i in range(WORKERS):
        coord.agents.register(f"w{i}")
    # Every pair overlaps: src/** with src/** and with src/mod{i}/x.py; two even workers' files
    # differ, but both ask for *.md.
    for round_ in range(3):
        results = race(target, coord, tmp, round_)
        winners = [r for r in results if r["won"]]
        held = coord.reservations.list()
        assert len(winners) == 1, (round_, results)
        (winner,) = winners
        assert [r.agent for r in held] == [winner["agent"]]
        for loser in results:
            if not loser["won"]:
                assert loser["holder"] == winner["agent"], loser
                assert str(winner["agent"]) in str(loser["message"])
        coord.reservations.release(str(winner["agent"]), all=True)


@pytest.mark.slow
def test_markdown_race_has_exactly_one_winner(workspace: Workspace, tmp_path: Path) -> None:
    coord = Coordinator.open(workspace.root)
    check_rounds(workspace.root, coord, tmp_path)


@pytest.mark.slow
@pytest.mark.redis
def test_redis_race_has_exactly_one_winner(redis_server: object, tmp_path: Path) -> None:
    url = f"{redis_server.url}?workspace=fr-{uuid.uuid4().hex[:10]}"  # type: ignore[attr-defined]
    coord = Coordinator.open(url=url)
    try:
        check_rounds(url, coord, tmp_path)
    finally:
        coord.store.clear()
        coord.close()
