"""Crashes: writers, claimers, event emitters, cleaners, ``coord cleanup`` and the timer daemon
killed with SIGKILL at random points, repeatedly. Afterwards every file parses, no lock stays
held, ``doctor.check`` finds only what is safe to repair, ``doctor.fix`` repairs it, and the
leases of the dead are reclaimed (by a claim, then by the reaper).

Extends ``tests/test_concurrency.py::test_kill_9_mid_write_leaves_parseable_files_and_no_lock``
(one churning writer) to every kind of writer and to the doctor.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from agentcoord.api import Coordinator
from agentcoord.timer.files import TimerFiles, is_our_timer, read_checkpoint, read_pidfile
from agentcoord.workspace import Workspace

from ..conftest import COORD
from .invariants import (
    frozen,
    held_locks,
    open_coord,
    parse_every_file,
    report,
    spawn,
    target,
    temp_files,
    worker_env,
    write_config,
)

ROUNDS = int(os.environ.get("COORD_CRASH_ROUNDS", "5"))
ROLES = ("writer", "writer", "claimer", "emitter", "cleaner")
#: What a crash may leave behind, all safe to repair.
REPAIRABLE = {"expired_lease", "agent_view", "unblocked", "temp_file", "index"}


def wait_ready(proc: subprocess.Popen[str], timeout: float = 120) -> None:
    """Until the victim printed ``ready`` (its first write is on disk)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([proc.stdout], [], [], 0.5)
        if readable:
            line = proc.stdout.readline()
            if line.strip() == "ready":
                return
        if proc.poll() is not None:
            raise AssertionError(f"victim exited early: {proc.communicate()}")
    proc.kill()
    raise AssertionError("victim never got ready")


def kill9(proc: subprocess.Popen[str]) -> int:
    """SIGKILL ``proc`` (our child, by pid); 1 if it died of the signal, 0 if it had exited."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    return int(proc.returncode == -signal.SIGKILL)


def crash_rounds(
    root: str, env: dict[str, str], rng: random.Random, *, files: bool
) -> Counter[str]:
    kills: Counter[str] = Counter()
    for round_ in range(ROUNDS):
        procs = [
            (
                role,
                spawn(
                    "victim", root, role, f"{role}{round_}{i}", str(rng.randrange(10**9)), env=env
                ),
            )
            for i, role in enumerate(ROLES)
        ]
        try:
            for _, proc in procs:
                wait_ready(proc)
            rng.shuffle(procs)
            for role, proc in procs:
                time.sleep(rng.random() * 0.2)
                kills[role] += kill9(proc)
        finally:  # a failed round must not leave writers running
            for _, proc in procs:
                if proc.poll() is None:
                    kill9(proc)
        # ``coord cleanup`` itself, killed at a random point of its run.
        cli = subprocess.Popen(
            [*COORD, "cleanup", "--stale-hours", "0", "--keep-events", "1"],
            env={**env, "COORD_DIR": root},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.05 + rng.random() * 0.25)  # its start-up is ~0.1 s, its work ~0.2 s
        kills["coord cleanup"] += kill9(cli)
        if files:  # after every round: nothing half-written, no lock left
            parse_every_file(root)
            assert held_locks(root) == []
    return kills


def check_and_repair(coord: Coordinator, victims: set[str]) -> dict[str, object]:
    later = frozen(coord, time.time() + 3600)  # every lease of the dead has expired by now
    held = [t for t in later.tasks.list(status="in_progress") if t.agent in victims]
    assert held, "no claimer died holding a lease"
    # A claim takes a dead agent's expired lease back...
    rescued = later.tasks.claim(held[0].id, agent="rescuer", lease_seconds=86400, register=True)
    assert (rescued.agent, rescued.epoch) == ("rescuer", held[0].epoch + 1)
    # ... and the doctor finds nothing that is not safe to repair, repairs it, and then nothing.
    found = later.doctor.check()
    hard = [v for v in found if v.kind not in REPAIRABLE]
    assert not hard, hard
    assert any(v.kind == "expired_lease" for v in found)
    actions = later.doctor.fix()
    after = later.doctor.check()
    assert after == [], after
    still = [t.id for t in later.tasks.list(status="in_progress") if t.agent in victims]
    assert still == [], f"leases of dead agents not reclaimed: {still}"
    return {
        "repairable_found": len(found),
        "repairable_kinds": dict(Counter(v.kind for v in found)),
        "repairs": len(actions),
        "violations": len(hard) + len(after),
    }


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing(
    workspace: Workspace, backend: str, request: pytest.FixtureRequest
) -> None:
    root = workspace.root
    url = target(backend, request)
    markdown = url is None
    write_config(root, keep_events=3, durable=True)
    coord = open_coord(root, url)
    for i in range(30):
        coord.tasks.create(f"seed {i}")
    env = worker_env({"COORD_FSYNC": "1", **({"COORD_URL": url} if url else {})})
    kills = crash_rounds(root, env, random.Random(20261121), files=markdown)
    assert sum(kills.values()) >= ROUNDS * len(ROLES), kills
    files = parse_every_file(root) if markdown else 0
    victims = {f"{role}{r}{i}" for r in range(ROUNDS) for i, role in enumerate(ROLES)}
    summary = check_and_repair(coord, victims)
    if markdown:
        assert temp_files(root) == []
        assert held_locks(root) == []
    report(
        "crashes",
        backend=backend,
        processes=ROUNDS * (len(ROLES) + 1),
        kills=sum(kills.values()),
        by_role=dict(kills),
        files_parsed=files,
        **summary,
    )


def _kill_timer(files: TimerFiles) -> int:
    """SIGKILL the running timer named in the pid file (only while it is our timer)."""
    info = read_pidfile(files.pidfile)
    assert info is not None and is_our_timer(info), "the timer is not running"
    os.kill(info.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{info.pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # not our child (double fork): init reaps it
    return 1


def _timer(root: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**worker_env(), "COORD_DIR": root}
    return subprocess.run(
        [*COORD, "--json", "timer", *args], env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.slow
def test_sigkill_of_the_timer_daemon_leaves_no_lock_and_it_restarts(workspace: Workspace) -> None:
    import fcntl

    root = workspace.root
    coord = Coordinator.open(root)
    files = TimerFiles(workspace.timer_dir)
    rng = random.Random(4)
    kills = 0
    try:
        for round_ in range(3):
            for i in range(3):  # leases that expire at once: the timer reaps them on its ticks
                task = coord.tasks.create(f"r{round_} {i}")
                coord.tasks.claim(
                    task.id, agent=f"ghost{round_}", lease_seconds=0.001, register=True
                )
            started = _timer(root, "start", "--interval", "0.05")
            assert started.returncode == 0, started.stderr
            time.sleep(0.05 + rng.random() * 0.5)
            kills += _kill_timer(files)
            cp = read_checkpoint(files.checkpoint)  # parses (raises CorruptData otherwise)
            assert cp is not None
        with open(files.lockfile, "rb") as fh:  # the daemon's life-long lock died with it
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        status = _timer(root, "status")
        assert status.returncode == 0, status.stderr
        assert [t["running"] for t in json.loads(status.stdout)] == [False]
        again = _timer(root, "start", "--interval", "0.05")  # the lock is free: it starts
        assert again.returncode == 0, again.stderr
        deadline = time.monotonic() + 60  # the timer takes the ghosts' expired leases back
        while coord.tasks.list(status="in_progress") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert coord.tasks.list(status="in_progress") == []
    finally:
        info = read_pidfile(files.pidfile)
        if info is not None and is_our_timer(info):
            _timer(root, "stop")
    assert read_pidfile(files.pidfile) is None
    found = coord.doctor.check()
    assert [v for v in found if v.kind not in REPAIRABLE] == []
    report("timer_crashes", processes=4, kills=kills, violations=0)
