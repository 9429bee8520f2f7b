"""Shared pieces of the benchmarks: result rows, percentiles, timing of whole processes, worker
processes, scratch workspaces and a throw-away Redis. (The machine description is in
:mod:`benchmarks.machine`, profiles of targets not met in :mod:`benchmarks.profiling`.)

Every figure is compared with a baseline timed in the same run on the same machine: the machines
here are shared and noisy, so absolute figures mean little and ratios carry the verdict.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any

    Row = dict[str, Any]

#: Every result row has exactly these keys.
ROW_KEYS = ("name", "value", "unit", "baseline", "ratio", "target", "met", "note")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Scratch workspaces live on the project's file system (like a real .claude/coordination/),
#: in a git-ignored directory, unless COORD_BENCH_DIR says otherwise.
DEFAULT_WORK = os.path.join(REPO, "benchmarks", ".out")


# -- rows ------------------------------------------------------------------------------------
def row(
    name: str,
    value: float | None,
    unit: str,
    *,
    baseline: float | None = None,
    ratio: float | None = None,
    target: str = "",
    met: bool | None = None,
    note: str = "",
) -> Row:
    """One result. ``ratio`` defaults to value / baseline when both are known."""
    if ratio is None and value is not None and baseline:
        ratio = value / baseline
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "met": met,
        "note": note,
    }


def unavailable(name: str, reason: str, *, unit: str = "", target: str = "") -> Row:
    """A scenario whose feature (or tool) is missing: reported, never a crash."""
    return row(name, None, unit, target=target, note=f"not available: {reason}")


def error_row(name: str, exc: BaseException) -> Row:
    text = f"{type(exc).__name__}: {exc}".strip().replace("\n", " ")
    return row(name, None, "", note=f"error: {text[:300]}")


# -- statistics ------------------------------------------------------------------------------
def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of nothing")
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * pct / 100.0
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)


def ms(seconds: float) -> float:
    return seconds * 1000.0


# -- timing ----------------------------------------------------------------------------------
class CommandFailed(RuntimeError):
    def __init__(self, argv: Sequence[str], code: int, stderr: str) -> None:
        tail = stderr.strip().splitlines()[-1:] or [""]
        super().__init__(f"{' '.join(argv[-6:])!s} exited {code}: {tail[0][:200]}")
        self.code = code
        self.stderr = stderr


def run_measured(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    ok: Sequence[int] = (0,),
) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one whole process, in seconds;
    :class:`CommandFailed` on an exit code not in ``ok``. CPU time is far less sensitive than
    wall time to other work on a busy machine."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        raise CommandFailed(argv, proc.returncode, err.decode("utf-8", "replace"))
    return elapsed, usage.ru_utime + usage.ru_stime


def run_once(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    ok: Sequence[int] = (0,),
) -> float:
    """Wall time of one whole process, in seconds (see :func:`run_measured`)."""
    return run_measured(argv, env=env, cwd=cwd, ok=ok)[0]


def time_command(
    argv: Sequence[str],
    n: int,
    *,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    warmup: int = 1,
) -> tuple[float, list[float]]:
    """Run ``argv`` ``warmup`` + ``n`` times; return the median wall time and the samples."""
    for _ in range(warmup):
        run_once(argv, env=env, cwd=cwd)
    samples = [run_once(argv, env=env, cwd=cwd) for _ in range(n)]
    return median(samples), samples


def time_call(fn: Callable[[], object], n: int, *, warmup: int = 1) -> tuple[float, list[float]]:
    """The median wall time of ``fn()`` over ``n`` calls (after ``warmup`` calls)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return median(samples), samples


# -- the project's commands ------------------------------------------------------------------
def python() -> str:
    """The interpreter running the benchmarks: the project's venv under ``make bench``."""
    return sys.executable


def coord_argv() -> list[str]:
    """How to run ``coord`` as a user of the venv does: its console script."""
    script = os.path.join(os.path.dirname(sys.executable), "coord")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "agentcoord"]


#: Variables that would make children behave unlike a user's ``coord``: another workspace or
#: backend, or no bytecode cache (some sandboxes set PYTHONDONTWRITEBYTECODE, which makes every
#: start compile the package from source: ~40 ms that no installed copy pays).
_DROP = ("COORD_DIR", "COORD_URL", "PYTHONDONTWRITEBYTECODE")


def child_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: ours, minus anything that would redirect ``coord``
    or disable its bytecode cache, plus the repository on the path (for worker modules)."""
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


# -- scratch workspaces ----------------------------------------------------------------------
def work_root() -> str:
    root = os.environ.get("COORD_BENCH_DIR") or DEFAULT_WORK
    os.makedirs(root, exist_ok=True)
    return root


@contextlib.contextmanager
def scratch_dir(tag: str) -> Iterator[str]:
    path = tempfile.mkdtemp(prefix=f"{tag}-", dir=work_root())
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def workspace(tag: str) -> Iterator[str]:
    """A fresh markdown workspace (``coord init --dir``), removed afterwards."""
    from agentcoord.workspace import init_workspace

    with scratch_dir(tag) as base:
        root = os.path.join(base, "coordination")
        init_workspace(root)
        yield root


def fast_store(root: str) -> Any:
    """A Coordinator on ``root`` without fsync, for setting up boards quickly (never timed)."""
    from agentcoord.api import Coordinator
    from agentcoord.store.markdown.store import MarkdownStore

    return Coordinator(MarkdownStore(root, durable=False))


# -- worker processes ------------------------------------------------------------------------
class Workers:
    """Worker processes (``python -m MODULE ARGS...``) started together and stopped by pid.

    Protocol: each worker prints ``ready`` once set up, waits for a line on stdin, runs, and
    prints one JSON object as its last line of stdout. Stderr goes to a file (never a pipe that
    could fill up and stall a worker).
    """

    def __init__(
        self,
        module: str,
        arg_lists: Sequence[Sequence[str]],
        *,
        timeout: float,
        env: dict[str, str] | None = None,
    ) -> None:
        self.module = module
        self.extra_env = env or {}
        self.arg_lists = [list(a) for a in arg_lists]
        self.timeout = timeout
        self.procs: list[subprocess.Popen[str]] = []
        self._errfiles: list[Any] = []
        self.go_time = 0.0

    def start(self) -> Workers:
        env = child_env(**self.extra_env)
        try:
            for args in self.arg_lists:
                err = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in stop()
                self._errfiles.append(err)
                self.procs.append(
                    subprocess.Popen(
                        [python(), "-m", self.module, *args],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=err,
                        text=True,
                        env=env,
                        cwd=REPO,
                    )
                )
            for i, proc in enumerate(self.procs):
                assert proc.stdout is not None
                line = proc.stdout.readline()
                if line.strip() != "ready":
                    raise RuntimeError(f"worker {i} did not start: {line!r} {self._stderr(i)}")
        except BaseException:
            self.stop()
            raise
        return self

    def _stderr(self, i: int) -> str:
        err = self._errfiles[i]
        err.seek(0)
        return str(err.read())[-600:]

    def run(self) -> list[dict[str, Any]]:
        """Release every worker at once and collect their JSON reports."""
        try:
            self.go_time = time.monotonic()
            for proc in self.procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
                proc.stdin.close()
                proc.stdin = None  # closed: communicate() must not flush it again
            deadline = time.monotonic() + self.timeout
            reports = []
            for i, proc in enumerate(self.procs):
                out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
                lines = out.strip().splitlines()
                if proc.returncode != 0 or not lines:
                    raise RuntimeError(
                        f"worker {i} exited {proc.returncode}: {self._stderr(i)[-300:]}"
                    )
                reports.append(json.loads(lines[-1]))
            return reports
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop exactly the processes this object started."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for err in self._errfiles:
            err.close()
        self._errfiles = []


def worker_handshake() -> None:
    """The worker's side of :class:`Workers`: say ready, wait for the go line."""
    print("ready", flush=True)
    sys.stdin.readline()


def fmt_num(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    mag = abs(value)
    if mag >= 1000:
        return f"{value:,.0f}"
    if mag >= 100:
        return f"{value:.0f}"
    if mag >= 10:
        return f"{value:.1f}"
    if mag >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


# -- Redis -----------------------------------------------------------------------------------
class NotAvailable(Exception):
    """A feature or tool the scenario needs is missing; the scenario reports it and goes on."""


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """The URL of a throw-away ``redis-server`` on a free loopback port (tests/redis_server.py),
    stopped by pid afterwards; :class:`NotAvailable` without redis-py or the binary."""
    try:
        import redis  # noqa: F401
    except ImportError as exc:
        raise NotAvailable(f"redis-py is not installed ({exc})") from None
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    try:
        from tests.redis_server import RedisServer, find_binary
    except ImportError as exc:
        raise NotAvailable(f"tests/redis_server.py cannot be imported ({exc})") from None
    binary = find_binary()
    if binary is None:
        raise NotAvailable("redis-server is not installed")
    server = RedisServer(binary=binary)
    server.start()
    try:
        yield str(server.url)
    finally:
        server.stop()


def with_workspace_param(url: str, name: str) -> str:
    """``url`` naming a separate agentcoord workspace (a fresh key space) on the same server."""
    return url + ("&" if "?" in url else "?") + f"workspace={name}"


def compile_package() -> None:
    """Write the bytecode cache of the package, as ``pip install`` does for a regular install
    (an editable install leaves it to the first run)."""
    import compileall

    import agentcoord

    compileall.compile_dir(os.path.dirname(agentcoord.__file__), quiet=1, force=False)
