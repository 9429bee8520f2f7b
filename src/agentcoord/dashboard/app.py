"""``coord dashboard``: a live, full-screen terminal view of a workspace (SPEC section 7).

Two halves. :func:`gather` reads one :class:`Snapshot` from a :class:`~agentcoord.api.Coordinator`
(agents with their monitor class and unread messages, a bounded list of tasks with the most
relevant first, the live file reservations, the newest events of every channel, timer status and
the alerts of ``coord status``);
:func:`agentcoord.dashboard.view.render` turns a snapshot into a rich renderable of a given size,
a pure function the tests render into a fixed-size recording console.

:func:`run` is the live loop. It re-reads the store when the change feed (``store.watch()``, run
in a background thread that feeds a queue) says something changed, at most every
:data:`MIN_GAP` seconds however busy the feed, and re-renders every :data:`TICK` second so that
countdowns (lease time left, the timer's next checkpoint, silences) move. It does not poll the
store: besides change hints it re-reads only every :data:`REREAD` seconds (monitor classes drift
with time alone) and when a timer's checkpoint is due. ``q`` quits; keys are read in cbreak mode
and the terminal is restored on exit, also on Ctrl-C.

Only the dashboard and demo commands import this module (and with it ``rich``).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from contextlib import contextmanager

from ..core.models import ASSIGNED, BLOCKED, CANCELLED, COMPLETE, FAILED, IN_PROGRESS, PENDING
from ..errors import CoordError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from rich.console import Console

    from ..api import Coordinator
    from ..core.models import Agent, Event, Task

#: Bounds on what one snapshot holds: the view shows what fits of these.
MAX_TASKS = 60
MAX_EVENTS = 30
MAX_RESERVATIONS = 30
#: Least seconds between two reads of the store, however busy the change feed is.
MIN_GAP = 0.25
#: Seconds between re-renders with the clock moved (countdowns).
TICK = 1.0
#: Seconds between re-reads without any change hint (monitor classes change with time alone).
REREAD = 5.0
#: Seconds one ``store.watch()`` call may stay silent before the feed thread checks for stop.
WATCH_SLICE = 1.0


class Snapshot:
    """Everything one frame shows, read at ``now`` (see :func:`gather`)."""

    __slots__ = (
        "agents", "alerts", "counts", "error", "events", "location", "notes", "now", "ready",
        "reservations", "reservations_total", "tasks", "timers", "title", "total_tasks",
    )  # fmt: skip

    def __init__(self, now: float, *, location: str = "", title: str = "agentcoord") -> None:
        self.now = now
        self.location = location
        self.title = title
        #: ``coord monitor --json`` rows (``class`` None for agents the monitor skips: offline
        #: with no task, retired) plus ``breaker_failures``, ``breaker_threshold`` and ``tasks``
        #: (``[{"id", "percent"}]`` of the tasks the agent holds) and ``unread`` (messages the
        #: agent has not read; None when its mailbox could not be read).
        self.agents: list[dict[str, Any]] = []
        #: The live file reservations, oldest first, at most :data:`MAX_RESERVATIONS`
        #: (:func:`agentcoord.shapes.reservation_row` each), and how many there are.
        self.reservations: list[dict[str, Any]] = []
        self.reservations_total = 0
        #: The most relevant tasks first (in progress, ready, waiting, failed, blocked, complete).
        self.tasks: list[Task] = []
        #: Ids of pending/assigned tasks whose dependencies are all complete.
        self.ready: set[str] = set()
        self.counts: dict[str, int] = {}
        self.total_tasks = 0
        #: The newest events of all channels, oldest first.
        self.events: list[Event] = []
        #: ``coord timer status --json`` objects, running timers first.
        self.timers: list[dict[str, Any]] = []
        #: ``coord status --json`` alerts, most urgent first.
        self.alerts: list[dict[str, Any]] = []
        #: Lines from the caller (the demo's narration); the newest is shown.
        self.notes: list[str] = []
        #: Set when the store could not be read (the frame says so and the loop retries).
        self.error: str | None = None


# -- reading a snapshot --------------------------------------------------------------------------
def task_rank(task: Task, ready: set[str], now: float) -> tuple[Any, ...]:
    """Most relevant first: in progress (least lease left first), ready, waiting, failed,
    blocked, complete (newest first), cancelled."""
    from ..core.deps import order_key

    if task.status == IN_PROGRESS:
        left = (task.lease_expires - now) if task.lease_expires is not None else float("inf")
        return (0, left, order_key(task))
    if task.status in (PENDING, ASSIGNED):
        return (1 if task.id in ready else 2, 0.0, order_key(task))
    finished = -(task.completed_at or task.updated_at or 0.0)
    group = {FAILED: 3, BLOCKED: 4, COMPLETE: 5, CANCELLED: 6}.get(task.status, 7)
    return (group, finished, order_key(task))


def gather(
    coord: Coordinator,
    *,
    now: float | None = None,
    max_tasks: int = MAX_TASKS,
    max_events: int = MAX_EVENTS,
) -> Snapshot:
    """Read one snapshot of the workspace (raises :class:`CoordError` if the store fails)."""
    from ..core import deps
    from ..domain.tasks import open_parents

    when = coord.now() if now is None else now
    read = coord.monitor.snapshot(when)  # read the workspace once per refresh
    data = coord.reports.status(now=when, snap=read)
    tasks = list(read.tasks)  # unreadable ones are already in the summary's alerts
    records = {a.name: a for a in read.agents}
    states = {t.id: t.status for t in tasks}
    parents = open_parents(tasks)  # a task with an open child is not ready (SPEC 4, 11)
    ready = {
        t.id
        for t in tasks
        if t.status in (PENDING, ASSIGNED) and t.id not in parents and not deps.unmet(t, states)
    }
    held: dict[str, list[Any]] = {}
    for task in sorted(tasks, key=lambda t: t.started_at or 0.0):
        if task.status == IN_PROGRESS and task.agent:
            pct = task.progress_percent()
            held.setdefault(task.agent, []).append({"id": task.id, "percent": pct})
    tasks.sort(key=lambda t: task_rank(t, ready, when))
    snap = Snapshot(when, location=coord.store.location)
    snap.agents = _agent_rows(data["agents"], records, held)
    snap.tasks, snap.ready = tasks[:max_tasks], ready
    snap.counts = {k: v for k, v in data["tasks"].items() if v}
    snap.total_tasks = int(data["total_tasks"])
    snap.events = latest_events(coord, max_events)
    snap.timers = timer_status(coord, when)
    snap.alerts = list(data["alerts"])
    _unread(coord, snap.agents)
    _reservations(coord, snap, when)
    return snap


def _unread(coord: Coordinator, rows: list[dict[str, Any]]) -> None:
    """Each row's ``unread`` message count (None when the mailbox cannot be read)."""
    for row in rows:
        try:
            row["unread"] = coord.messages.counts(str(row["agent"]))["unread"]
        except CoordError:
            row["unread"] = None


def _reservations(coord: Coordinator, snap: Snapshot, now: float) -> None:
    """The live reservations (bounded); an unreadable table is an alert, not a blank frame."""
    from ..shapes import reservation_row

    try:
        live = coord.reservations.list()
    except CoordError as exc:
        snap.alerts.insert(0, {"kind": "corrupt", "message": exc.message})
        return
    snap.reservations_total = len(live)
    snap.reservations = [reservation_row(r, now) for r in live[:MAX_RESERVATIONS]]


def _agent_rows(
    health: list[dict[str, Any]], records: dict[str, Agent], held: dict[str, list[Any]]
) -> list[dict[str, Any]]:
    rows = []
    for row in health:
        rec = records.pop(row["agent"], None)
        rows.append(row)
        if rec is not None:
            row["breaker_failures"] = rec.breaker_failures
            row["breaker_threshold"] = rec.breaker_threshold
    # Agents the monitor does not watch (offline with no task, retired): offline ones are
    # shown, dimmed, last.
    for name, rec in sorted(records.items()):
        if rec.status != "retired":
            rows.append(
                {"agent": name, "class": None, "silence": None, "status": rec.status,
                 "workload": rec.workload, "breaker": rec.breaker_state,
                 "breaker_failures": rec.breaker_failures,
                 "breaker_threshold": rec.breaker_threshold}
            )  # fmt: skip
    for row in rows:
        row["tasks"] = held.get(row["agent"], [])
    return rows


def latest_events(coord: Coordinator, n: int) -> list[Event]:
    """The newest ``n`` events across all channels, oldest first."""
    if n <= 0:
        return []
    found: list[Event] = []
    for channel in coord.events.channels():
        try:
            found.extend(coord.events.tail(channel, n=n))
        except CoordError:
            continue  # one unreadable channel must not blank the view
    found.sort(key=lambda e: (e.time, e.channel, e.seq))
    return found[-n:]


def timer_status(coord: Coordinator, now: float) -> list[dict[str, Any]]:
    """Status of the workspace's timers (none for a Redis URL without a workspace directory)."""
    ws = coord.workspace
    if ws is None:
        return []
    from ..timer.control import status
    from ..timer.files import TimerFiles, timer_names

    out = []
    for name in timer_names(ws.timer_dir):
        try:
            out.append(status(TimerFiles(ws.timer_dir, name), now=now))
        except CoordError:
            continue
    out.sort(key=lambda s: (not s.get("running"), s.get("name") != "default", s.get("name")))
    return out


def safe_gather(coord: Coordinator, previous: Snapshot | None = None, **kw: Any) -> Snapshot:
    """:func:`gather`, or the previous snapshot marked with the error (the loop retries)."""
    try:
        return gather(coord, **kw)
    except CoordError as exc:
        snap = previous if previous is not None else Snapshot(coord.now())
        snap.error = f"{type(exc).__name__}: {exc.message}"
        return snap


def next_due(snap: Snapshot) -> float | None:
    """When (clock time) the soonest running timer writes its next checkpoint."""
    dues = [
        snap.now + float(t["next_in"])
        for t in snap.timers
        if t.get("running") and t.get("next_in") is not None
    ]
    return min(dues) if dues else None


# -- wake-ups: change hints and key presses -------------------------------------------------------
CHANGE, QUIT = "change", "quit"


class Feed:
    """Wake-ups for a live loop: ``"change"`` when the store's change feed reports something
    (a background thread runs ``store.watch()``), ``"quit"`` when ``q`` is pressed (when a key
    reader is started on a terminal)."""

    def __init__(self, coord: Coordinator) -> None:
        self.coord = coord
        self.queue: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, *, key_fd: int | None = None) -> Feed:
        self._spawn(self._watch, "coord-dashboard-watch")
        if key_fd is not None:
            self._spawn(lambda: self._keys(key_fd), "coord-dashboard-keys")
        return self

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _watch(self) -> None:
        while not self._stop.is_set():
            hints: Iterator[Any] | None = None
            try:
                hints = self.coord.store.watch(timeout=WATCH_SLICE)
                for _batch in hints:
                    self.queue.put(CHANGE)
                    if self._stop.is_set():
                        break
            except Exception:  # a broken feed degrades to the periodic re-read
                self.queue.put(CHANGE)
                self._stop.wait(REREAD)
            finally:
                close = getattr(hints, "close", None)
                if close is not None:
                    try:
                        close()
                    except Exception:  # closing a dead connection
                        pass

    def _keys(self, fd: int) -> None:
        import select

        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:
                    continue
                data = os.read(fd, 64)
            except (OSError, ValueError):
                return
            if not data:
                return  # end of input: no more keys, the loop goes on until Ctrl-C
            if b"q" in data.lower():
                self.queue.put(QUIT)

    def wait(self, timeout: float) -> set[str]:
        """Everything that arrived within ``timeout`` seconds (empty: nothing did)."""
        got: set[str] = set()
        try:
            got.add(self.queue.get(timeout=max(0.0, timeout)))
        except queue.Empty:
            return got
        while True:  # coalesce a burst of hints into one re-read
            try:
                got.add(self.queue.get_nowait())
            except queue.Empty:
                return got

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=WATCH_SLICE + 1.0)


@contextmanager
def cbreak(fd: int | None) -> Iterator[None]:
    """Put terminal ``fd`` in cbreak mode (keys arrive one by one, no echo; Ctrl-C still
    signals) and restore it however the block ends."""
    import termios
    import tty

    saved = None
    if fd is not None:
        try:
            saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        except (termios.error, OSError):
            saved = None
    try:
        yield
    finally:
        if saved is not None and fd is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def key_fd() -> int | None:
    """stdin's descriptor when it is a terminal (keys can be read), else None."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if os.isatty(fd) else None


# -- the live loop --------------------------------------------------------------------------------
def run(
    coord: Coordinator,
    *,
    console: Console | None = None,
    hook: Callable[[Snapshot], bool] | None = None,
    hold: float = 0.0,
    reread: float = REREAD,
    keys: bool = True,
) -> str:
    """Show the live dashboard until ``q``, Ctrl-C, or ``hook`` (called with every new
    snapshot; it may add ``notes``) returns True, after which the last frame stays ``hold``
    seconds. Returns ``"quit"``, ``"done"`` or ``"interrupted"``."""
    from rich.console import Console
    from rich.live import Live

    from .view import render

    console = console if console is not None else Console()
    fd = key_fd() if keys else None
    feed = Feed(coord).start(key_fd=fd)
    snap: Snapshot | None = None
    read_at = -1e9
    dirty = True
    done_at: float | None = None
    outcome = "quit"
    try:
        with (
            cbreak(fd),
            Live(
                console=console,
                screen=True,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            ) as live,
        ):
            shown = -1e9
            while True:
                mono = time.monotonic()
                due = next_due(snap) if snap is not None else None
                stale = mono - read_at >= reread or (due is not None and coord.now() >= due)
                fresh = False
                if (dirty and mono - read_at >= MIN_GAP) or stale:
                    snap = safe_gather(coord, snap)
                    read_at, dirty, fresh = mono, False, True
                    if hook is not None and done_at is None and hook(snap):
                        done_at = mono
                assert snap is not None
                if fresh or mono - shown >= TICK * 0.9:
                    width, height = console.size
                    live.update(render(snap, width, height, now=coord.now()), refresh=True)
                    shown = mono
                if done_at is not None and mono - done_at >= hold:
                    outcome = "done"
                    break
                if dirty:  # a re-read is owed: wait out the gap (a busy feed costs one per gap)
                    time.sleep(max(0.0, MIN_GAP - (time.monotonic() - read_at)))
                    continue
                got = feed.wait(TICK - (coord.now() % TICK))
                if QUIT in got:
                    break
                if CHANGE in got:
                    dirty = True
    except KeyboardInterrupt:
        outcome = "interrupted"
    finally:
        feed.stop()
    return outcome
