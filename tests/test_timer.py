"""The coordination timer (SPEC section 5, seed 004): real detached daemons at 1 s or shorter
intervals, the check-in semantics on hand-written files, and the tick logic on a fake clock.

Every daemon a test starts is stopped by pid in the ``timers`` fixture's teardown (after checking
that the pid is still that timer). Waits have generous upper bounds; nothing asserts wall time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentcoord.api import Coordinator
from agentcoord.cli.main import main
from agentcoord.fs import pid_alive
from agentcoord.timer import control
from agentcoord.timer.check import banner, check
from agentcoord.timer.files import (
    TimerFiles,
    format_checkpoint,
    is_our_timer,
    read_checkpoint,
    read_json,
    read_pidfile,
    timer_names,
)
from agentcoord.timer.tick import Options, Timer
from agentcoord.workspace import Workspace, init_workspace

from .conftest import COORD, FakeClock

WAIT = 30.0  # generous upper bound on any wait for a daemon
STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def wait_for(cond: Callable[[], Any], timeout: float = WAIT, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A project with the default layout: timer files in ``proj/.claude/`` as in the seed."""
    proj = tmp_path / "proj"
    proj.mkdir()
    ws, _ = init_workspace(cwd=str(proj))
    monkeypatch.setenv("COORD_DIR", ws.root)
    monkeypatch.setenv("COORD_FSYNC", "0")
    monkeypatch.delenv("COORD_URL", raising=False)
    return ws


class Runner:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def run(project: Workspace, capsys: pytest.CaptureFixture[str]) -> Runner:
    return Runner(capsys)


def _is_daemon(pid: int) -> bool:
    try:
        return b"agentcoord.timer.daemon" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _kill_timer(pid: int, files: TimerFiles | None) -> None:
    """Stop ``pid`` only while it is still a timer daemon (never a reused pid)."""
    info = read_pidfile(files.pidfile) if files is not None else None
    if (
        files is not None
        and info is not None
        and info.pid == pid
        and not is_our_timer(info, files.lockfile)
    ):
        return
    if not pid_alive(pid) or not _is_daemon(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def timers(project: Workspace) -> Iterator[list[int]]:
    """Pids of daemons started by the test (plus any pid file left in the workspace), stopped
    by pid at teardown."""
    started: list[int] = []
    yield started
    directory = project.timer_dir
    seen = set()
    for name in timer_names(directory):
        files = TimerFiles(directory, name)
        info = read_pidfile(files.pidfile)
        if info is not None and is_our_timer(info, files.lockfile):
            seen.add(info.pid)
            _kill_timer(info.pid, files)
    for pid in started:
        if pid not in seen:
            _kill_timer(pid, None)


def start(project: Workspace, timers: list[int], **kwargs: Any) -> dict[str, Any]:
    status = control.start(project.root, project.timer_dir, **kwargs)
    timers.append(status["pid"])
    return status


def sidecar(project: Workspace, name: str | None = None) -> dict[str, Any]:
    return read_json(TimerFiles(project.timer_dir, name).sidecar) or {}


def count(project: Workspace, name: str | None = None) -> int:
    cp = read_checkpoint(TimerFiles(project.timer_dir, name).checkpoint)
    return cp.count if cp is not None else -1


# -- the daemon, for real ------------------------------------------------------------------------
def test_checkpoints_count_up_in_the_seeds_three_line_format(
    project: Workspace, timers: list[int]
) -> None:
    status = start(project, timers, interval=1.0, max_checks=100)
    assert status["running"] and status["count"] == 0  # "checkpoint file created immediately"
    files = TimerFiles(project.timer_dir)
    assert files.checkpoint == os.path.join(
        os.path.dirname(project.root), ".coordination-checkpoint"
    )
    wait_for(lambda: count(project) >= 3, what="three checkpoints")
    lines = Path(files.checkpoint).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    n = int(lines[0])
    assert n >= 3
    assert STAMP.fullmatch(lines[1])
    assert lines[2] == f"⏰ Coordination checkpoint {n} triggered at {lines[1]}"
    side = sidecar(project)
    assert side["count"] >= n and side["run"] and side["state"] == "running"
    assert side["base_interval"] == 1.0 and side["next_tick"]
    assert {"agents", "tasks", "reclaimed", "commits"} <= side["health"].keys()
    assert side["schedule"]["skipped"] == 0


def test_check_exits_1_with_the_banner_then_0_silently(
    project: Workspace, timers: list[int], run: Runner
) -> None:
    start(project, timers, interval=1.0)
    wait_for(lambda: count(project) >= 1, what="checkpoint 1")
    code, out, _ = run("timer", "check")
    assert code == 1
    assert out.startswith("=" * 60 + "\n🚨 COORDINATION CHECK-IN REQUIRED\n")
    assert "ACTION REQUIRED:\n1. Check agent status: coord monitor" in out
    assert "SUMMARY" in out and "Tasks reclaimed: none" in out
    seen = int(Path(TimerFiles(project.timer_dir).last_check()).read_text())
    assert seen >= 1
    if count(project) == seen:  # a tick may land between the two checks; then fire again
        assert run("timer", "check") == (0, "", "")


def test_stop_ends_the_process_and_leaves_consistent_files(
    project: Workspace, timers: list[int], run: Runner
) -> None:
    status = start(project, timers, interval=1.0)
    pid = status["pid"]
    wait_for(lambda: count(project) >= 1, what="checkpoint 1")
    code, out, _ = run("--json", "timer", "stop")
    assert code == 0
    result = json.loads(out)
    assert result["stopped"] is True and result["pid"] == pid
    assert not pid_alive(pid)
    files = TimerFiles(project.timer_dir)
    assert not os.path.exists(files.pidfile)
    side = sidecar(project)
    assert side["state"] == "stopped" and "SIGTERM" in side["stop_reason"]
    assert side["count"] == count(project)  # sidecar and the seed's file agree
    assert side["next_tick"] is None
    code, out, _ = run("--json", "timer", "status")
    assert json.loads(out)[0]["running"] is False
    # stopping again is not an error: it says so
    code, out, _ = run("timer", "stop")
    assert code == 0 and "not running" in out


def test_second_start_of_the_same_name_is_refused(
    project: Workspace, timers: list[int], run: Runner
) -> None:
    first = start(project, timers, interval=1.0)
    code, _, err = run("--json", "timer", "start", "--interval", "1")
    assert code == 4
    assert json.loads(err)["error"]["code"] == "already_running"
    files = TimerFiles(project.timer_dir)
    assert is_our_timer(read_pidfile(files.pidfile), files.lockfile)
    assert read_pidfile(TimerFiles(project.timer_dir).pidfile).pid == first["pid"]  # type: ignore[union-attr]


def test_the_daemon_itself_refuses_a_second_instance(project: Workspace, timers: list[int]) -> None:
    """Even past the CLI's pid-file check (a race), the flock lets only one daemon run."""
    start(project, timers, interval=1.0)
    argv = [sys.executable, "-m", "agentcoord.timer.daemon", "--dir", project.root]
    proc = subprocess.run(
        [*argv, "--token", "x" * 16, "--interval", "1"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert proc.returncode == 4
    assert json.loads(proc.stdout)["code"] == "already_running"


def test_until_done_stops_by_itself_when_the_last_task_completes(
    project: Workspace, timers: list[int]
) -> None:
    with Coordinator.open(project.root) as coord:
        coord.tasks.create("only job", id="t1")
        coord.tasks.claim("t1", agent="eng-a", register=True)
        status = start(project, timers, interval=1.0, until_done=True)
        wait_for(lambda: count(project) >= 1, what="a checkpoint while work is open")
        assert pid_alive(status["pid"])
        coord.tasks.complete("t1", agent="eng-a")
    wait_for(lambda: not pid_alive(status["pid"]), what="the timer to exit")
    side = sidecar(project)
    assert side["state"] == "done"
    assert "no task is pending" in side["stop_reason"]
    assert not os.path.exists(TimerFiles(project.timer_dir).pidfile)
    assert side["count"] == count(project)


def test_a_dead_holders_task_is_reclaimed_by_a_tick(project: Workspace, timers: list[int]) -> None:
    env = dict(os.environ, COORD_DIR=project.root)
    subprocess.run([*COORD, "task", "create", "job", "--id", "j1"], env=env, check=True)
    # the holder claims with a 1 s lease and exits: nobody will renew it or reap for it
    subprocess.run(
        [*COORD, "task", "claim", "j1", "--agent", "ghost", "--lease", "1", "--register"],
        env=env,
        check=True,
    )
    start(project, timers, interval=1.0)

    def reclaimed() -> bool:
        with Coordinator.open(project.root) as coord:
            task = coord.tasks.get("j1")
        return task.status == "pending" and task.attempts == 1

    wait_for(reclaimed, what="the tick to reclaim j1")
    wait_for(lambda: sidecar(project)["reaped_history"], what="the sidecar record")
    history = sidecar(project)["reaped_history"]
    assert history[0]["tasks"][0]["id"] == "j1"
    assert history[0]["tasks"][0]["status"] == "pending"
    log = Path(TimerFiles(project.timer_dir).log).read_text()
    assert "reaped 1 expired lease(s): j1 -> pending" in log


def test_named_timers_run_side_by_side_and_stop_all(
    project: Workspace, timers: list[int], run: Runner
) -> None:
    fast = start(project, timers, name="fast", interval=0.3)
    slow = start(project, timers, name="slow", interval=1.0)
    assert fast["pid"] != slow["pid"]
    assert fast["checkpoint_file"].endswith(".coordination-checkpoint-fast")
    wait_for(lambda: count(project, "fast") >= 2 and count(project, "slow") >= 1, what="ticks")
    code, out, _ = run("--json", "timer", "status")
    names = {s["name"]: s for s in json.loads(out)}
    assert set(names) == {"fast", "slow"} and all(s["running"] for s in names.values())
    code, out, _ = run("timer", "check", "--name", "fast")
    assert code == 1 and "Timer: fast" in out
    code, out, _ = run("--json", "timer", "stop", "--all")
    assert code == 0 and {r["name"] for r in json.loads(out)} == {"fast", "slow"}
    assert not pid_alive(fast["pid"]) and not pid_alive(slow["pid"])


def test_adaptive_backs_off_while_healthy_and_snaps_back_on_trouble(
    project: Workspace, timers: list[int]
) -> None:
    start(project, timers, interval=0.2, adaptive=True, max_interval=0.8)
    wait_for(lambda: sidecar(project).get("interval") == 0.8, what="the back-off to 0.8 s")
    # an agent that holds work and whose last sign of life was 10 minutes ago: Blocked
    past = FakeClock(time.time() - 600)
    with Coordinator.open(project.root, clock=past) as coord:
        coord.agents.register("sleepy")
        coord.tasks.create("job", id="j1")
        coord.tasks.claim("j1", agent="sleepy", lease_seconds=86400)
    wait_for(lambda: sidecar(project).get("interval") == 0.2, what="the snap back")
    side = sidecar(project)
    assert side["health"]["agents"]["trouble"] is True
    assert side["health"]["agents"]["stuck"] == ["sleepy"]


def test_on_checkpoint_runs_with_the_checkpoint_in_its_environment(
    project: Workspace, timers: list[int], tmp_path: Path
) -> None:
    out = tmp_path / "seen.txt"
    cmd = f'echo "$COORD_CHECKPOINT|$COORD_CHECKPOINT_TIME|$COORD_CHECKPOINT_FILE" >> {out}'
    start(project, timers, interval=0.3, on_checkpoint=cmd)
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 2, what="two runs")
    first = out.read_text().splitlines()[0].split("|")
    assert first[0] == "1"
    assert STAMP.fullmatch(first[1])
    assert first[2] == TimerFiles(project.timer_dir).checkpoint


def test_on_checkpoint_failures_and_timeouts_never_stop_the_timer(
    project: Workspace, timers: list[int]
) -> None:
    status = start(
        project, timers, interval=0.3, on_checkpoint="echo boom; sleep 5", on_checkpoint_timeout=0.2
    )
    wait_for(lambda: count(project) >= 3, what="ticks despite the command")
    assert pid_alive(status["pid"])
    last = sidecar(project)["on_checkpoint_last"]
    assert last["timed_out"] is True and "boom" in last["output"]
    assert "on-checkpoint failed: timed out" in Path(TimerFiles(project.timer_dir).log).read_text()


def test_a_killed_daemon_leaves_a_stale_pid_file_that_is_cleaned(
    project: Workspace, timers: list[int], run: Runner
) -> None:
    status = start(project, timers, interval=1.0)
    os.kill(status["pid"], signal.SIGKILL)
    wait_for(lambda: not pid_alive(status["pid"]), what="the kill")
    code, out, _ = run("--json", "timer", "status", "--name", "default")
    shown = json.loads(out)
    assert code == 0 and shown["running"] is False and shown["state"] == "dead"
    assert not os.path.exists(TimerFiles(project.timer_dir).pidfile)
    again = start(project, timers, interval=1.0)  # the lock died with the process
    assert again["running"]


def test_stop_with_ends_the_timer_with_its_watched_process(
    project: Workspace, timers: list[int]
) -> None:
    session = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        status = start(project, timers, interval=0.3, stop_with=session.pid)
        wait_for(lambda: count(project) >= 1, what="a tick")
    finally:
        session.kill()
        session.wait()
    wait_for(lambda: not pid_alive(status["pid"]), what="the timer to follow its session")
    assert "--stop-with" in sidecar(project)["stop_reason"]


def test_timer_exits_when_its_directory_is_removed(tmp_path: Path) -> None:
    ws, _ = init_workspace(str(tmp_path / "ws"))
    status = control.start(ws.root, ws.timer_dir, interval=0.3)
    try:
        import shutil

        shutil.rmtree(ws.root)
        wait_for(lambda: not pid_alive(status["pid"]), what="the orphaned timer to exit")
    finally:
        _kill_timer(status["pid"], None)


def test_stop_never_signals_a_pid_that_is_not_our_timer(project: Workspace, run: Runner) -> None:
    """A pid file naming a live process that is not the timer (here: this test process)."""
    files = TimerFiles(project.timer_dir)
    Path(files.checkpoint).write_text(format_checkpoint(2, time.time()))
    Path(files.pidfile).write_text(f"{os.getpid()}\n12345\nnot-our-token\n")
    code, out, _ = run("--json", "timer", "stop")
    assert code == 0
    result = json.loads(out)
    assert result["stopped"] is False and result["stale_pidfile_removed"] is True
    assert not os.path.exists(files.pidfile)


def test_status_reports_running_count_next_tick_and_interval(
    project: Workspace, timers: list[int], run: Runner
) -> None:
    start(project, timers, interval=1.0, max_checks=50)
    code, out, _ = run("--json", "timer", "status", "--name", "default")
    s = json.loads(out)
    assert code == 0 and s["running"] and s["pid"] and s["interval"] == 1.0
    assert s["next_tick"] and s["max_checks"] == 50 and s["count"] >= 0
    code, out, _ = run("timer", "status")
    assert out.startswith("default: running (pid ")


def test_status_reports_the_monotonic_next_tick_after_the_wall_clock_steps(
    project: Workspace, timers: list[int]
) -> None:
    """Issue 14 item 8: the daemon sleeps on the monotonic clock, so after the wall clock
    steps back 2 h the next tick is still one interval away, not "in 2h"."""
    from agentcoord.core.clock import parse_iso

    start(project, timers, interval=5.0, max_checks=50)
    wait_for(lambda: sidecar(project).get("next_tick_monotonic"), what="the sidecar")
    files = TimerFiles(project.timer_dir, None)
    for step in (-7200.0, 0.0, 7200.0):
        now = time.time() + step  # what the wall clock says after stepping
        s = control.status(files, now=now)
        assert s["running"]
        assert 0 <= parse_iso(s["next_tick"]) - now <= 5.0 + 1.0, (step, s["next_tick"])


def test_restarted_timer_fires_although_its_count_is_lower(
    project: Workspace, timers: list[int], run: Runner
) -> None:
    """The seed's check stays silent until a new run passes the old count; ours does not."""
    files = TimerFiles(project.timer_dir)
    Path(files.checkpoint).write_text(format_checkpoint(40, time.time()))
    Path(files.last_check()).write_text("40\n")
    start(project, timers, interval=0.3)
    wait_for(lambda: count(project) >= 1, what="checkpoint 1 of the new run")
    assert run("timer", "check")[0] == 1


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--interval", "0"], "--interval must be more than 0"),
        (["--interval", "-1"], "--interval must be more than 0"),
        (["--interval", "soon"], "not a duration"),
        (["--interval", "0.001"], "--interval must be between"),
        (["--max-checks", "0"], "--max-checks must be at least 1"),
        (["--max-checks", "many"], "not a whole number"),
        (["--name", "../evil"], "invalid timer name"),
        (["--name", "a.json"], "invalid timer name"),
        (["--interval", "5", "--max-interval", "1"], "--max-interval must be at least"),
    ],
)
def test_bad_start_input_is_exit_2(run: Runner, args: list[str], needle: str) -> None:
    code, out, err = run("--json", "timer", "start", *args)
    assert code == 2, err
    assert out == ""
    assert needle in json.loads(err)["error"]["message"]


@pytest.mark.parametrize("cmd", ["stop", "check", "status"])
def test_unknown_timer_name_is_exit_3(run: Runner, cmd: str) -> None:
    code, _, err = run("--json", "timer", cmd, "--name", "nope")
    assert code == 3
    assert json.loads(err)["error"]["code"] == "not_found"


def test_check_with_no_timer_at_all_is_exit_3(run: Runner) -> None:
    assert run("timer", "check")[0] == 3


def _unwritable_dir(tmp_path: Path) -> str:
    if os.geteuid() != 0:
        path = tmp_path / "ro"
        path.mkdir()
        path.chmod(0o555)
        return str(path)
    # root ignores permission bits; sysfs still refuses new files
    try:
        open("/sys/kernel/.coord-probe", "w").close()
    except OSError:
        return "/sys/kernel"
    os.unlink("/sys/kernel/.coord-probe")
    pytest.skip("no unwritable directory available to this user")


def test_unwritable_timer_directory_is_exit_5_with_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _unwritable_dir(tmp_path)
    code = main(["--json", "--dir", directory, "timer", "start", "--interval", "1"])
    err = json.loads(capsys.readouterr().err)["error"]
    assert code == 5
    assert directory in err["message"] and err["path"] == directory


# -- check semantics on hand-written files (no daemon) -----------------------------------------
def test_check_semantics_and_json_shape(project: Workspace, run: Runner) -> None:
    files = TimerFiles(project.timer_dir)
    Path(files.checkpoint).write_text(format_checkpoint(0, time.time()))
    assert run("timer", "check") == (0, "", "")  # checkpoint 0 is the start, not a tick
    Path(files.checkpoint).write_text(format_checkpoint(3, time.time()))
    code, out, _ = run("--json", "timer", "check")
    data = json.loads(out)
    assert code == 1 and data["new"] is True and data["checkpoint"] == 3
    assert data["message"] == "⏰ Coordination checkpoint 3 triggered"
    assert data["actions"][2] == "Check git activity: git log -5 --oneline"
    assert {"agents", "tasks", "reclaimed", "commits"} <= data["summary"].keys()
    code, out, _ = run("--json", "timer", "check")
    assert code == 0 and json.loads(out) == {
        "new": False,
        "name": "default",
        "checkpoint": 3,
        "previous": 3,
    }
    # the seed's reset recipe still works: echo "0" > .coordination-last-check
    Path(files.last_check()).write_text("0\n")
    assert run("timer", "check")[0] == 1


def test_a_fired_check_is_reported_even_if_the_store_is_unreachable(
    project: Workspace, run: Runner
) -> None:
    Path(TimerFiles(project.timer_dir).checkpoint).write_text(format_checkpoint(1, time.time()))
    code, out, _ = run("--url", "redis://127.0.0.1:1", "timer", "check")
    assert code == 1
    assert "🚨 COORDINATION CHECK-IN REQUIRED" in out and "Warning:" in out
    assert run("timer", "check") == (0, "", "")  # it was recorded as seen


def test_banner_is_the_seeds(project: Workspace) -> None:
    files = TimerFiles(project.timer_dir)
    Path(files.checkpoint).write_text(
        "3\n2026-01-10 14:45:00\n⏰ Coordination checkpoint 3 triggered at 2026-01-10 14:45:00\n"
    )
    cp = read_checkpoint(files.checkpoint)
    assert cp is not None
    assert banner(cp).splitlines()[:7] == [
        "=" * 60,
        "🚨 COORDINATION CHECK-IN REQUIRED",
        "=" * 60,
        "Checkpoint: 3",
        "Timestamp: 2026-01-10 14:45:00",
        "Message: ⏰ Coordination checkpoint 3 triggered",
        "",
    ]
    assert banner(cp).splitlines()[-1] == "=" * 60


def test_consumers_each_get_the_checkpoint_once(project: Workspace) -> None:
    files = TimerFiles(project.timer_dir)
    Path(files.checkpoint).write_text(format_checkpoint(1, time.time()))
    assert check(files, consumer="alice").new
    assert check(files, consumer="bob").new
    assert not check(files, consumer="alice").new
    assert check(files).new  # the seed's own last-check file is a consumer too


def test_concurrent_checks_fire_exactly_once(project: Workspace) -> None:
    files = TimerFiles(project.timer_dir)
    Path(files.checkpoint).write_text(format_checkpoint(5, time.time()))
    env = dict(os.environ, COORD_DIR=project.root)
    procs = [
        subprocess.Popen([*COORD, "timer", "check"], env=env, stdout=subprocess.DEVNULL)
        for _ in range(6)
    ]
    codes = [p.wait(timeout=WAIT) for p in procs]
    assert sorted(codes) == [0, 0, 0, 0, 0, 1]


def test_corrupt_checkpoint_is_exit_6(project: Workspace, run: Runner) -> None:
    Path(TimerFiles(project.timer_dir).checkpoint).write_text("three\n")
    code, _, err = run("timer", "check")
    assert code == 6 and ".coordination-checkpoint:1:" in err


def test_summary_counts_classes_stuck_agents_reclaims_and_commits(
    project: Workspace, run: Runner
) -> None:
    proj = os.path.dirname(os.path.dirname(project.root))
    git = ["git", "-C", proj, "-c", "user.name=eng-a", "-c", "user.email=eng-a@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    files = TimerFiles(project.timer_dir)
    Path(files.checkpoint).write_text(format_checkpoint(1, time.time()))
    assert run("timer", "check")[0] == 1  # the baseline: "since the last check"
    time.sleep(1.1)  # git has whole-second commit times; the commit must be after the check
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "add parser"], check=True)
    now = time.time()
    clock = FakeClock(now - 400)
    with Coordinator.open(project.root, clock=clock) as coord:
        coord.agents.register("gone")  # holds j2, silent 400 s: Blocked
        coord.tasks.create("job", id="j1")
        coord.tasks.create("long job", id="j2")
        coord.tasks.claim("j1", agent="gone", lease_seconds=1)
        coord.tasks.claim("j2", agent="gone", lease_seconds=86400)
        clock.now = now
        coord.agents.register("eng-a")  # fresh, holds no work: Idle
        coord.tasks.reap()  # j1's lease expired long ago
    Path(files.checkpoint).write_text(format_checkpoint(2, time.time()))
    code, out, _ = run("--json", "timer", "check")
    summary = json.loads(out)["summary"]
    assert code == 1
    assert summary["agents"]["by_class"] == {"Blocked": 1, "Idle": 1}
    assert summary["agents"]["stuck"] == ["gone"]
    assert summary["agents"]["idle"] == ["eng-a"]
    assert summary["reclaimed"]["tasks"][0]["id"] == "j1"
    assert summary["commits"]["count"] == 1
    assert summary["commits"]["recent"][0]["subject"] == "add parser"
    Path(files.checkpoint).write_text(format_checkpoint(3, time.time()))
    code, out, _ = run("timer", "check")
    assert "Agents: 2 (Blocked 1, Idle 1)" in out
    assert "Needs attention: gone (Blocked)" in out
    assert "Idle (no work): eng-a" in out
    assert "Git commits: none" in out  # nothing since the previous check


# -- the tick logic on a fake clock ------------------------------------------------------------
def _timer(coord: Coordinator, **kwargs: Any) -> Timer:
    assert coord.workspace is not None
    files = TimerFiles(coord.workspace.timer_dir, kwargs.pop("name", None))
    opts = Options(token="t" * 16, **kwargs)
    timer = Timer(coord, files, opts, durable=False)
    timer.begin(coord.now())
    return timer


def test_tick_reaps_and_records_what_it_reaped(coord: Coordinator, clock: FakeClock) -> None:
    coord.tasks.create("job", id="j1")
    coord.tasks.claim("j1", agent="ghost", lease_seconds=5, register=True)
    timer = _timer(coord, interval=1.0)
    clock.advance(10)
    assert timer.on_grid(1, clock.now, 0.0)
    assert coord.tasks.get("j1").status == "pending"
    side = read_json(timer.files.sidecar)
    assert side is not None
    assert side["reaped"] == [{"id": "j1", "status": "pending", "attempts": 1}]
    assert side["health"]["reclaimed"]["tasks"][0]["holder"] == "ghost"
    clock.advance(1)
    timer.on_grid(2, clock.now, 0.0)
    side = read_json(timer.files.sidecar)
    assert side is not None and side["reaped"] == [] and len(side["reaped_history"]) == 1


def test_tick_adaptive_factor_doubles_to_the_bound_and_snaps_back(
    coord: Coordinator, clock: FakeClock
) -> None:
    timer = _timer(coord, interval=1.0, adaptive=True, max_interval=4.0)
    emitted = []
    for k in range(1, 16):
        clock.advance(1)
        before = timer.count
        timer.on_grid(k, clock.now, 0.0)
        if timer.count > before:
            emitted.append(k)
    assert emitted == [1, 3, 7, 11, 15]  # gaps 2, 4, 4, 4: doubling, bounded by max_interval
    coord.tasks.create("job", id="j1")
    coord.tasks.claim("j1", agent="ghost", lease_seconds=0.5, register=True)
    clock.advance(1)
    timer.on_grid(16, clock.now, 0.0)  # not due, but a reaped lease is trouble: emit now
    assert timer.count == 6 and timer.factor == 1 and timer.next_emit == 17


def test_tick_adaptive_backs_off_while_every_agent_is_idle(
    coord: Coordinator, clock: FakeClock
) -> None:
    """Issue 16 item 5: agents without work never held the timer at its base interval."""
    for name in ("eng-a", "eng-b"):
        coord.agents.register(name)
    coord.tasks.create("later", id="j1")  # open, but nobody holds it
    timer = _timer(coord, interval=1.0, adaptive=True, max_interval=8.0)
    emitted = []
    for k in range(1, 601):  # 10 minutes of silence: Idle, not Stuck then Blocked
        clock.advance(1)
        before = timer.count
        timer.on_grid(k, clock.now, 0.0)
        if timer.count > before:
            emitted.append(k)
    assert emitted[:5] == [1, 3, 7, 15, 23]  # gaps 2, 4, 8, 8 ...
    assert len(emitted) == 77 and timer.factor == 8  # not 600 checkpoints
    health = timer.health
    assert health is not None
    agents = health["agents"]
    assert (agents["by_class"], agents["trouble"]) == ({"Idle": 2}, False)
    coord.tasks.claim("j1", agent="eng-a", lease_seconds=3600)  # now eng-a holds work ...
    for k in range(601, 721):
        clock.advance(1)
        timer.on_grid(k, clock.now, 0.0)
    # ... and went silent for 2 minutes with it: Concerning, trouble, back to every interval
    assert timer.factor == 1 and timer.next_emit == 721
    health = timer.health
    assert health is not None
    assert health["agents"]["by_class"] == {"Concerning": 1, "Idle": 1}


def test_tick_until_done_and_max_checks(coord: Coordinator, clock: FakeClock) -> None:
    timer = _timer(coord, interval=1.0, until_done=True, max_checks=10)
    clock.advance(1)
    assert timer.on_grid(1, clock.now, 0.0)  # an empty board is not "done": work not planned
    coord.tasks.create("job", id="j1")
    coord.tasks.cancel("j1")
    clock.advance(1)
    assert not timer.on_grid(2, clock.now, 0.0)
    assert timer.state == "done"
    other = _timer(coord, interval=1.0, max_checks=2, name="short")
    assert other.on_grid(1, clock.now, 0.0)
    assert not other.on_grid(2, clock.now, 0.0)
    assert other.state == "finished"
