"""Attacks on the background timer (SPEC section 16), each performed for real.

- A planted pid file naming another process (its real pid, start time and a word of its command
  line) must never get that process signalled, nor make ``timer start`` refuse or ``timer
  status`` report "running": only the process that provably holds the timer's lock counts.
- A Redis URL with a password must never appear in the daemon's ``/proc/PID/cmdline``.
- Timer files that are symbolic links (or hard links) to a victim file are never written
  through; a FIFO planted as any timer file never hangs a command.

Every process a test starts is stopped by its pid; waits have generous upper bounds and nothing
asserts wall time (a hang is detected by a subprocess timeout far above any normal run).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentcoord.errors import CorruptData
from agentcoord.fs import pid_alive, proc_start_time
from agentcoord.timer import files as timer_files
from agentcoord.timer.files import (
    TimerFiles,
    acquire_lock,
    append_log,
    holds_lock,
    lock_holder,
    read_pidfile,
    timer_names,
)
from agentcoord.workspace import Workspace, init_workspace, record_backend

from .redis_server import RedisServer, redis_server_fixture
from .test_timer import Runner, _is_daemon, _kill_timer, count, wait_for

#: A command that has not answered after this long is hung (a normal one takes ~1 s).
HANG = 25.0
SECRET = "s3cret-timer-pw-5f1c"
ORIGINAL = "the victim's own contents\n"

secure_redis = redis_server_fixture("secure_redis", password=SECRET)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    proj = tmp_path / "proj"
    proj.mkdir()
    ws, _ = init_workspace(cwd=str(proj))
    monkeypatch.setenv("COORD_DIR", ws.root)
    monkeypatch.setenv("COORD_FSYNC", "0")
    monkeypatch.delenv("COORD_URL", raising=False)
    return ws


@pytest.fixture
def run(project: Workspace, capsys: pytest.CaptureFixture[str]) -> Runner:
    return Runner(capsys)


@pytest.fixture
def timers(project: Workspace) -> Iterator[list[int]]:
    """Pids of daemons the test started (and any daemon found in the workspace's pid files),
    stopped by pid at teardown, only while they are still timer daemons."""
    started: list[int] = []
    yield started
    for name in timer_names(project.timer_dir):
        files = TimerFiles(project.timer_dir, name)
        info = read_pidfile(files.pidfile)
        if info is not None and info.pid > 0 and _is_daemon(info.pid):
            started.append(info.pid)
    for pid in set(started):
        _kill_timer(pid, None)


class Sleeper:
    """A ``sleep 300`` this test owns: its pid, its kernel start time, stopped by pid."""

    def __init__(self, pid: int, proc: subprocess.Popen[bytes] | None = None) -> None:
        self.pid = pid
        self.proc = proc
        wait_for(self._is_sleep, what="sleep to exec")
        start = proc_start_time(pid)
        assert start is not None
        self.start = start

    def _is_sleep(self) -> bool:
        try:
            return Path(f"/proc/{self.pid}/cmdline").read_bytes().startswith(b"sleep\0")
        except OSError:
            return False

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return pid_alive(self.pid) and proc_start_time(self.pid) == self.start

    def stop(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        else:
            wait_for(lambda: not self.alive(), what="the sleep to end")


@pytest.fixture
def sleeper() -> Iterator[Sleeper]:
    proc = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL)
    victim = Sleeper(proc.pid, proc)
    try:
        yield victim
    finally:
        victim.stop()


def plant_pidfile(files: TimerFiles, victim: Sleeper) -> None:
    """Today's identity checks all pass for this pid file: the pid is alive, started at the
    recorded time, and the "token" is a word of its command line."""
    args = Path(f"/proc/{victim.pid}/cmdline").read_bytes().split(b"\0")
    assert proc_start_time(victim.pid) == victim.start and b"sleep" in args
    Path(files.pidfile).write_text(f"{victim.pid}\n{victim.start}\nsleep\n")


# -- 1. the pid file proves nothing; the lock does ------------------------------------------------
def test_stop_leaves_a_planted_pid_alive_and_reports_a_stale_pid_file(
    project: Workspace, run: Runner, sleeper: Sleeper
) -> None:
    files = TimerFiles(project.timer_dir)
    plant_pidfile(files, sleeper)
    code, out, err = run("--json", "timer", "stop")
    assert code == 0, err
    result = json.loads(out)
    assert result["stopped"] is False and result["stale_pidfile_removed"] is True
    assert "stale" in result["note"]
    assert sleeper.alive()
    assert not os.path.lexists(files.pidfile)


def test_status_does_not_report_a_planted_pid_as_running(
    project: Workspace, run: Runner, sleeper: Sleeper
) -> None:
    files = TimerFiles(project.timer_dir)
    plant_pidfile(files, sleeper)
    code, out, err = run("--json", "timer", "status", "--name", "default")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["running"] is False and shown["pid"] is None
    assert sleeper.alive()


def test_start_is_not_refused_by_a_planted_pid_file_and_stop_ends_the_real_timer(
    project: Workspace, run: Runner, timers: list[int], sleeper: Sleeper
) -> None:
    files = TimerFiles(project.timer_dir)
    plant_pidfile(files, sleeper)
    code, out, err = run("--json", "timer", "start", "--interval", "1")
    assert code == 0, err
    status = json.loads(out)
    timers.append(status["pid"])
    assert status["running"] is True and status["pid"] != sleeper.pid
    code, out, err = run("--json", "timer", "stop")
    assert code == 0, err
    result = json.loads(out)
    assert result["stopped"] is True and result["pid"] == status["pid"]
    assert not pid_alive(status["pid"])
    assert sleeper.alive()


def test_a_pid_file_swapped_under_a_running_timer_gets_nobody_else_signalled(
    project: Workspace, run: Runner, timers: list[int], sleeper: Sleeper
) -> None:
    files = TimerFiles(project.timer_dir)
    real = json.loads(run("--json", "timer", "start", "--interval", "1")[1])
    timers.append(real["pid"])
    plant_pidfile(files, sleeper)  # the lock is held, but by the real daemon, not this pid
    code, out, err = run("--json", "timer", "status", "--name", "default")
    shown = json.loads(out)
    assert shown["running"] is False and shown["state"] == "unknown"
    assert f"held by pid {real['pid']}" in shown["warnings"][0]
    plant_pidfile(files, sleeper)  # ``status`` removed it as stale
    code, out, err = run("--json", "timer", "stop")
    assert code == 0, err
    result = json.loads(out)
    assert result["stopped"] is False and f"held by pid {real['pid']}" in result["note"]
    assert sleeper.alive() and pid_alive(real["pid"])


HOLDER = """
import fcntl, os, subprocess, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
child = subprocess.Popen(["sleep", "300"], pass_fds=[fd], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
print(child.pid, flush=True)
os._exit(0)
"""


def test_stop_never_signals_a_process_that_merely_inherited_the_lock(
    project: Workspace, run: Runner
) -> None:
    """The flock is shared across fork: a ``sleep`` that inherited a locked descriptor from a
    process that has exited holds the lock, but did not take it (``/proc/locks`` names the
    taker). That is not our daemon either."""
    files = TimerFiles(project.timer_dir)
    out = subprocess.run(
        [sys.executable, "-c", HOLDER, files.lockfile],
        capture_output=True,
        text=True,
        timeout=HANG,
        check=True,
    )
    victim = Sleeper(int(out.stdout.strip()))
    try:
        probe = os.open(files.lockfile, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):  # the sleep really holds the lock
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(probe)
        plant_pidfile(files, victim)
        code, out2, err = run("--json", "timer", "stop")
        assert code == 0, err
        assert json.loads(out2)["stopped"] is False
        assert victim.alive()
        plant_pidfile(files, victim)  # ``stop`` removed it as stale
        code, out2, _ = run("--json", "timer", "status", "--name", "default")
        assert json.loads(out2)["running"] is False
    finally:
        victim.stop()


@pytest.mark.parametrize("procfs", [True, False])
def test_the_lock_proof_accepts_only_a_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, procfs: bool
) -> None:
    """In-process: this test takes the lock itself. Without procfs (monkeypatched) the proof
    falls back to a non-blocking ``flock``: held or not, never who."""
    if not procfs:
        monkeypatch.setattr(timer_files, "_procfs", lambda: False)
    lock = str(tmp_path / "t.lock")
    assert not holds_lock(os.getpid(), lock)  # no lock file at all
    fd = acquire_lock(lock)
    assert fd is not None
    try:
        assert holds_lock(os.getpid(), lock)
        assert acquire_lock(lock) is None  # a second taker, even in this process, is refused
        if procfs:
            assert lock_holder(lock) == os.getpid()
            assert not holds_lock(os.getppid(), lock)
    finally:
        os.close(fd)
    assert not holds_lock(os.getpid(), lock)


@pytest.mark.parametrize("kind", ["symlink", "fifo", "hardlink"])
def test_the_lock_is_never_taken_on_a_planted_file(tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text(ORIGINAL)
    lock = tmp_path / "t.lock"
    if kind == "symlink":
        lock.symlink_to(victim)
    elif kind == "fifo":
        os.mkfifo(lock)
    else:
        os.link(victim, lock)
    with pytest.raises(CorruptData):
        acquire_lock(str(lock))
    assert not holds_lock(os.getpid(), str(lock))
    assert victim.read_text() == ORIGINAL


# -- 2. credentials never on a command line -------------------------------------------------------
def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


@pytest.mark.parametrize("how", ["flag", "env", "config"])
def test_the_redis_password_never_reaches_the_daemons_command_line(
    project: Workspace,
    run: Runner,
    timers: list[int],
    secure_redis: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    url = secure_redis.url
    assert SECRET in url
    flags: list[str] = []
    if how == "flag":
        flags = ["--url", url]
    elif how == "env":
        monkeypatch.setenv("COORD_URL", url)
    else:
        record_backend(project.root, "redis", url)
    code, out, err = run(*flags, "--json", "timer", "start", "--interval", "0.3")
    assert code == 0, err
    pid = json.loads(out)["pid"]
    timers.append(pid)
    assert SECRET.encode() not in _cmdline(pid)
    assert b"redis://" not in _cmdline(pid)
    environ = os.stat(f"/proc/{pid}/environ")
    assert stat.S_IMODE(environ.st_mode) & 0o077 == 0  # where it may live: owner-only
    wait_for(lambda: count(project) >= 1, what="a tick")
    log = Path(TimerFiles(project.timer_dir).log).read_text()
    side = json.loads(Path(TimerFiles(project.timer_dir).sidecar).read_text())
    assert "reap failed" not in log and not (side["health"] or {}).get("errors"), log
    assert SECRET not in log


# -- 3. symlinks, hard links and FIFOs in the timer's directory ----------------------------------
KINDS: dict[str, Callable[[TimerFiles], str]] = {
    "log": lambda f: f.log,
    "pidfile": lambda f: f.pidfile,
    "lockfile": lambda f: f.lockfile,
    "checkpoint": lambda f: f.checkpoint,
    "sidecar": lambda f: f.sidecar,
    "last_check": lambda f: f.last_check(),
    "last_check_json": lambda f: f.last_check() + ".json",
    "last_check_lock": lambda f: f.last_check() + ".lock",
}


def coord(project: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    """``coord ARGS`` in its own process; a hang is a test failure, never a stuck suite."""
    env = dict(os.environ, COORD_DIR=project.root, COORD_FSYNC="0")
    env.pop("COORD_URL", None)
    try:
        return subprocess.run(
            [sys.executable, "-m", "agentcoord", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=HANG,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"coord {' '.join(args)} hung (no answer within {HANG:g}s)")


def _start(project: Workspace, timers: list[int]) -> subprocess.CompletedProcess[str]:
    proc = coord(project, "--json", "timer", "start", "--interval", "0.3")
    if proc.returncode == 0:
        timers.append(json.loads(proc.stdout)["pid"])
    return proc


def _clear_error(proc: subprocess.CompletedProcess[str]) -> None:
    """Success, a check-in (exit 1), or an error that says what is wrong (exit 2-6)."""
    assert proc.returncode in (0, 1, 3, 4, 5, 6), (proc.returncode, proc.stderr)
    if proc.returncode >= 2:
        message = json.loads(proc.stderr)["error"]["message"]
        assert message


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_timer_files_are_never_written_through_a_symlink(
    project: Workspace, timers: list[int], tmp_path: Path, kind: str
) -> None:
    files = TimerFiles(project.timer_dir)
    victim = tmp_path / "victim"
    victim.write_text(ORIGINAL)
    victim.chmod(0o640)
    os.symlink(victim, KINDS[kind](files))
    started = _start(project, timers)
    _clear_error(started)
    if started.returncode == 0:
        wait_for(lambda: count(project) >= 1, what="a tick")
    for args in (["timer", "check"], ["timer", "status"], ["hook"], ["timer", "stop"]):
        _clear_error(coord(project, "--json", *args))
    assert victim.read_text() == ORIGINAL
    assert stat.S_IMODE(victim.stat().st_mode) == 0o640


def test_the_timer_log_is_never_appended_through_a_hard_link(
    project: Workspace, timers: list[int], tmp_path: Path
) -> None:
    """A root daemon must not append to a file that merely shares the log's name (a hard
    link to it planted where ``fs.protected_hardlinks`` does not stop root)."""
    files = TimerFiles(project.timer_dir)
    victim = tmp_path / "victim"
    victim.write_text(ORIGINAL)
    os.link(victim, files.log)
    started = _start(project, timers)
    _clear_error(started)
    wait_for(lambda: count(project) >= 1, what="a tick")
    _clear_error(coord(project, "timer", "stop"))
    assert victim.read_text() == ORIGINAL


@pytest.mark.parametrize("how", ["symlink", "hardlink"])
def test_log_rotation_never_reads_or_writes_through_a_link(tmp_path: Path, how: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text(ORIGINAL * 100)
    log = tmp_path / "timer.log"
    (os.symlink if how == "symlink" else os.link)(victim, log)
    append_log(str(log), "one more line", max_bytes=64)  # past max_bytes: would rotate
    assert victim.read_text() == ORIGINAL * 100


def test_log_rotation_keeps_the_newest_lines(tmp_path: Path) -> None:
    log = tmp_path / "timer.log"
    for i in range(40):
        append_log(str(log), f"line {i:02d}", max_bytes=200)
    lines = log.read_text().splitlines()
    assert lines[-1] == "line 39" and len(log.read_bytes()) <= 200
    assert all(line.startswith("line ") for line in lines)
    assert not os.path.islink(log)


def test_the_writability_probe_never_uses_a_predictable_name(
    project: Workspace, run: Runner, timers: list[int], tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_text(ORIGINAL)
    os.symlink(victim, os.path.join(project.timer_dir, f".coordination-probe-{os.getpid()}"))
    code, out, err = run("--json", "timer", "start", "--interval", "1")
    assert code == 0, err
    timers.append(json.loads(out)["pid"])
    assert victim.read_text() == ORIGINAL


def _fifo(path: str) -> None:
    """(Re)plant a FIFO at ``path`` unless one is there."""
    if os.path.lexists(path) and not stat.S_ISFIFO(os.lstat(path).st_mode):
        os.unlink(path)
    if not os.path.lexists(path):
        os.mkfifo(path)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_fifo_as_any_timer_file_never_hangs_a_command(
    project: Workspace, timers: list[int], kind: str
) -> None:
    files = TimerFiles(project.timer_dir)
    path = KINDS[kind](files)
    results: dict[str, Any] = {}
    for args in (["timer", "status"], ["timer", "check"], ["hook"], ["timer", "stop"]):
        _fifo(path)
        proc = coord(project, "--json", *args)
        _clear_error(proc)
        results[" ".join(args)] = proc.returncode
    _fifo(path)
    started = _start(project, timers)
    _clear_error(started)
    if kind == "lockfile":
        assert started.returncode != 0 and "FIFO" in json.loads(started.stderr)["error"]["message"]
    else:
        assert started.returncode == 0, started.stderr
        wait_for(lambda: count(project) >= 1, what="a tick")
    for args in (["timer", "status"], ["timer", "check"], ["hook"], ["timer", "stop"]):
        _clear_error(coord(project, "--json", *args))
    if started.returncode == 0:
        pid = json.loads(started.stdout)["pid"]
        wait_for(lambda: not pid_alive(pid), what="the timer to stop")


# -- 4. a lock file renamed or replaced under a running timer (advA item 4) ---------------------
def _proc_status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def _gone(pid: int) -> bool:
    """Exited (a zombie not yet reaped by init counts: it runs nothing)."""
    return not pid_alive(pid) or _proc_status(pid) in ("Z", "X")


def test_stop_never_signals_another_timer_whose_lock_and_pid_file_were_moved_here(
    project: Workspace, run: Runner, timers: list[int]
) -> None:
    """Bob renames timer x's lock to the default timer's lock name and copies x's pid file
    over the default's: the default's pid file now names a process that holds the default's
    lock file. Its command line names timer x, so ``timer stop`` (default) signals nobody."""
    code, out, err = run("--json", "timer", "start", "--name", "x", "--interval", "60")
    assert code == 0, err
    x_pid = json.loads(out)["pid"]
    timers.append(x_pid)
    x, default = TimerFiles(project.timer_dir, "x"), TimerFiles(project.timer_dir)
    os.rename(x.lockfile, default.lockfile)
    Path(default.pidfile).write_bytes(Path(x.pidfile).read_bytes())
    Path(default.checkpoint).touch()
    assert holds_lock(x_pid, default.lockfile)  # the inode proof alone would accept it
    code, out, err = run("--json", "timer", "stop")
    assert code == 0, err
    result = json.loads(out)
    assert result["stopped"] is False and "not timer default's daemon" in result["note"]
    assert pid_alive(x_pid) and not _gone(x_pid)
    code, out, err = run("--json", "timer", "status", "--name", "default")
    shown = json.loads(out)
    assert shown["running"] is False and shown["state"] == "unknown"
    assert pid_alive(x_pid)
    # Timer x's own status: its daemon, by its command line, without its lock: not "dead",
    # and its pid file is kept.
    code, out, err = run("--json", "timer", "status", "--name", "x")
    shown = json.loads(out)
    assert shown["state"] == "unknown" and "stops by itself" in shown["warnings"][0]
    assert os.path.exists(x.pidfile)


@pytest.mark.parametrize("how", ["replaced", "removed"])
def test_a_timer_whose_lock_file_is_replaced_is_never_orphaned(
    project: Workspace, run: Runner, timers: list[int], how: str
) -> None:
    """Bob replaces the lock file under a running timer (``cp lock x && mv x lock``). Status
    never calls the live daemon dead nor removes its pid file; the daemon notices at its next
    tick, logs why and exits, and the state converges to "not running"."""
    code, out, err = run("--json", "timer", "start", "--interval", "60")
    assert code == 0, err
    pid = json.loads(out)["pid"]
    timers.append(pid)
    files = TimerFiles(project.timer_dir)
    copy = files.lockfile + ".copy"
    Path(copy).write_bytes(Path(files.lockfile).read_bytes())
    if how == "replaced":
        os.rename(copy, files.lockfile)
    else:
        os.unlink(copy)
        os.unlink(files.lockfile)
    for _ in range(2):  # status neither removes the pid file nor changes its answer
        code, out, err = run("--json", "timer", "status", "--name", "default")
        assert code == 0, err
        shown = json.loads(out)
        assert shown["state"] == "unknown" and shown["running"] is False, shown
        assert f"process {pid} is timer default's daemon" in shown["warnings"][0]
        assert os.path.exists(files.pidfile) and pid_alive(pid)
    code, out, err = run("--json", "timer", "stop")
    result = json.loads(out)
    assert result["stopped"] is False and "stops by itself" in result["note"]
    assert os.path.exists(files.pidfile) and pid_alive(pid)


def test_the_daemon_exits_when_its_lock_file_is_replaced(
    project: Workspace, run: Runner, timers: list[int]
) -> None:
    code, out, err = run("--json", "timer", "start", "--interval", "0.2")
    assert code == 0, err
    pid = json.loads(out)["pid"]
    timers.append(pid)
    files = TimerFiles(project.timer_dir)
    wait_for(lambda: count(project) >= 1, what="a tick")
    copy = files.lockfile + ".copy"
    Path(copy).write_bytes(Path(files.lockfile).read_bytes())
    os.rename(copy, files.lockfile)
    wait_for(lambda: _gone(pid), what="the daemon to notice and exit")
    assert not os.path.exists(files.pidfile)
    assert "was replaced" in Path(files.log).read_text()
    code, out, err = run("--json", "timer", "status", "--name", "default")
    shown = json.loads(out)
    assert shown["running"] is False and shown["state"] == "stopped"
    assert "was replaced" in shown["stop_reason"]
    code, out, err = run("--json", "timer", "start", "--interval", "60")  # a fresh start works
    assert code == 0, err
    timers.append(json.loads(out)["pid"])


def test_the_command_line_check_names_one_timer(tmp_path: Path) -> None:
    d = str(tmp_path)
    argv = [sys.executable, "-m", "agentcoord.timer.daemon", "--dir", d, "--timer-dir", d]
    cmd = "\0".join([*argv, "--name", "x", "--token", "t", "--on-checkpoint", "--name default"])
    raw = cmd.encode() + b"\0"
    assert timer_files.names_this_timer(raw, TimerFiles(d, "x").lockfile)
    assert not timer_files.names_this_timer(raw, TimerFiles(d).lockfile)
    assert not timer_files.names_this_timer(raw, TimerFiles(d + "/other", "x").lockfile)
    assert not timer_files.names_this_timer(b"sleep\0300\0", TimerFiles(d).lockfile)
