"""``coord dashboard``: the snapshot, the frame rendered into fixed-size virtual consoles (80x24
and 160x40) for a known workspace on both backends, the live loop (re-read on change, ``q``,
terminal restored) and the CLI."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from agentcoord.api import Coordinator
from agentcoord.cli.cmd_dashboard import snapshot_json
from agentcoord.cli.main import main
from agentcoord.dashboard import app as dashboard
from agentcoord.dashboard.app import QUIT, Feed, Snapshot, cbreak, gather
from agentcoord.dashboard.view import render
from agentcoord.workspace import Workspace

from .conftest import T0, FakeClock


def screen(snap: Snapshot, width: int, height: int, now: float | None = None) -> list[str]:
    """The frame as the lines a ``width`` x ``height`` terminal would show."""
    console = Console(width=width, height=height, record=True, file=io.StringIO())
    console.print(render(snap, width, height, now=now))
    lines = console.export_text().rstrip("\n").split("\n")
    assert len(lines) == height
    assert all(console.measure(line).maximum <= width for line in lines if line)
    return lines


@pytest.fixture
def known(coord: Coordinator, clock: FakeClock) -> Snapshot:
    for name in ("ai-engineer", "data-engineer", "ml-ops", "qa-engineer"):
        coord.agents.register(name)
    coord.tasks.create("Prepare dataset", id="prep-data", priority=9, total=100)
    coord.tasks.create("Train tokenizer", id="tokenizer", priority=8)
    coord.tasks.create("Download weights", id="weights", priority=1)
    coord.tasks.create("Clean data", id="clean", priority=9)
    coord.tasks.create("GPU augmentation", id="augment", depends_on=["clean"])
    coord.tasks.create("Train on augmented", id="train-aug", depends_on=["augment"])
    coord.tasks.create("Train small", id="train-small", depends_on=["prep-data", "tokenizer"])
    coord.tasks.create("Baseline", id="baseline", priority=3)
    coord.tasks.claim("prep-data", agent="data-engineer", lease_seconds=600)
    coord.tasks.claim("weights", agent="ai-engineer")
    coord.tasks.claim("clean", agent="qa-engineer")
    clock.advance(10)  # T0 + 10
    coord.tasks.claim("tokenizer", agent="ml-ops", lease_seconds=30)
    coord.tasks.progress(
        "prep-data", agent="data-engineer", current=45, metrics={"loss": 0.4321, "sps": 1234.5}
    )
    coord.tasks.complete("weights", agent="ai-engineer", result="ok")
    coord.tasks.complete("clean", agent="qa-engineer", result="ok")
    coord.events.emit("team", "claimed", {"task": "prep-data"}, agent="data-engineer")
    clock.advance(160)  # T0 + 170
    coord.tasks.claim("augment", agent="qa-engineer")
    coord.tasks.fail("augment", agent="qa-engineer", error="CUDA out of memory")
    coord.events.emit("team", "failed", {"task": "augment"}, agent="qa-engineer")
    clock.advance(130)  # T0 + 300
    coord.agents.heartbeat("ai-engineer", workload=10)
    clock.advance(10)  # T0 + 310
    coord.agents.heartbeat("data-engineer", workload=85)  # renews prep-data until T0 + 910
    coord.events.emit("ops", "deploy", {"version": "1.2"}, agent="ai-engineer")
    clock.advance(10)  # T0 + 320
    return gather(coord)


def test_snapshot_reads_agents_tasks_events_and_alerts(known: Snapshot) -> None:
    health = {a["agent"]: a["class"] for a in known.agents}
    assert health == {
        "ai-engineer": "Idle",  # no work held: idle, whatever its silence (SPEC 4)
        "data-engineer": "Normal",
        "qa-engineer": "Idle",
        "ml-ops": "Blocked",
    }
    assert [t.id for t in known.tasks[:2]] == ["tokenizer", "prep-data"]  # least lease first
    order = [t.id for t in known.tasks]
    assert order.index("baseline") < order.index("train-small")  # ready before waiting
    assert order.index("augment") < order.index("train-aug") < order.index("clean")
    assert known.ready == {"baseline"}
    assert known.counts == {
        "in_progress": 2,
        "pending": 2,
        "complete": 2,
        "failed": 1,
        "blocked": 1,
    }
    assert [e.type for e in known.events] == ["claimed", "failed", "deploy"]  # two channels
    kinds = [a["kind"] for a in known.alerts]
    assert "blocked_agent" in kinds
    assert "expired_lease" in kinds
    held = {a["agent"]: a["tasks"] for a in known.agents}
    assert held["data-engineer"] == [{"id": "prep-data", "percent": 45.0}]
    json.dumps(snapshot_json(known))  # the --json shape serializes


def test_80x24_frame_shows_the_known_workspace(known: Snapshot) -> None:
    lines = screen(known, 80, 24)
    text = "\n".join(lines)
    assert lines[0].startswith(" agentcoord ")
    assert "2 running" in lines[0]
    assert "2/8 done" in lines[0]
    assert "1 failed" in lines[0]
    assert "1 blocked" in lines[0]
    assert "timer: none" in lines[0]
    for name in ("ai-engineer", "data-engineer", "ml-ops", "qa-engineer"):
        assert name in text
    for label in ("Normal", "Idle", "Blocked"):
        assert label in text
    row = next(ln for ln in lines if ln.startswith("│prep-data"))
    assert "in_progress" in row
    assert "data-engineer" in row
    assert "█" in row
    assert "45%" in row
    assert "9m 50s" in row  # lease left: renewed at T0 + 310 for 600 s
    tok = next(ln for ln in lines if ln.startswith("│tokenizer"))
    assert "expired" in tok
    assert "ml-ops" in tok
    assert "prep-data 45%" in text  # the agent's current task with its progress
    assert "85%" in text  # data-engineer's workload bar
    assert "closed 1/3" in text  # qa-engineer's breaker counted the failure
    assert "! agent ml-ops is Blocked" in text
    assert "Alerts (" in text
    assert "deploy version=1.2" in text
    assert "q  quit" in lines[-1]


def test_160x40_frame_has_titles_metrics_and_separate_panels(known: Snapshot) -> None:
    lines = screen(known, 160, 40)
    text = "\n".join(lines)
    for title in ("Agents (4)", "Tasks (8)", "Timer", "Alerts (", "Events"):
        assert title in text
    assert "Prepare dataset" in text  # titles have room on a wide screen
    assert "loss=0.432" in "\n".join(screen(known, 200, 50))  # metrics on a wider one
    assert "CUDA out of memory" in text
    assert "⊘ augment failed" in text  # train-aug is blocked by the failure
    assert "after prep-data, tok" in text  # train-small waits for both
    assert "team" in text and "ops" in text  # events of two channels say where they came from
    row = next(ln for ln in lines if "│prep-data" in ln)
    assert "45%" in row
    assert "9m 50s" in row
    assert "2/8 complete" in lines[0]


def test_time_moves_countdowns_between_reads(known: Snapshot) -> None:
    later = screen(known, 160, 40, now=T0 + 330)
    row = next(ln for ln in later if "│prep-data" in ln)
    assert "9m 40s" in row  # the lease countdown moved without a re-read


def test_timer_countdown_in_the_header() -> None:
    snap = Snapshot(T0)
    snap.timers = [
        {"name": "default", "running": True, "count": 4, "next_in": 12.0, "interval": 30}
    ]
    assert "⏰ timer #4 next 12s" in screen(snap, 80, 24)[0]
    assert "next 7s" in screen(snap, 80, 24, now=T0 + 5)[0]
    wide = "\n".join(screen(snap, 160, 40))
    assert "(every 30s)" in wide
    snap.timers[0].update(running=False, state="stopped")
    assert "timer: stopped (#4)" in screen(snap, 80, 24)[0]


@pytest.mark.parametrize(("width", "height"), [(80, 24), (160, 40), (40, 12), (200, 60)])
def test_an_empty_workspace_renders(coord: Coordinator, width: int, height: int) -> None:
    snap = gather(coord)
    text = "\n".join(screen(snap, width, height))
    assert "no agents yet" in text
    assert "no tasks yet" in text
    assert "no events yet" in text


def test_long_lists_are_bounded_and_say_how_many_more(coord: Coordinator) -> None:
    for i in range(30):
        coord.tasks.create(f"Task {i}", id=f"t{i}")
    for i in range(12):
        coord.agents.register(f"agent-{i}")
    snap = gather(coord, max_tasks=20)
    assert len(snap.tasks) == 20
    assert snap.total_tasks == 30
    text = "\n".join(screen(snap, 80, 24))
    assert "more: " in text
    assert "… " in text


def test_live_loop_rereads_on_change_and_stops_when_the_hook_says(coord: Coordinator) -> None:
    """No periodic re-read (reread=60): the second snapshot can only come from the change feed."""
    console = Console(width=80, height=24, file=io.StringIO())
    seen: list[int] = []
    started = time.monotonic()

    def hook(snap: Snapshot) -> bool:
        seen.append(snap.total_tasks)
        if len(seen) == 1:
            threading.Timer(0.3, lambda: coord.tasks.create("late", id="late")).start()
        return snap.total_tasks == 1 or time.monotonic() - started > 30

    how = dashboard.run(coord, console=console, hook=hook, keys=False, reread=60.0)
    assert how == "done"
    assert seen[0] == 0
    assert seen[-1] == 1


def test_q_quits_and_the_terminal_is_restored(
    coord: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pty
    import termios

    master, slave = pty.openpty()
    try:
        before = termios.tcgetattr(slave)
        monkeypatch.setattr(dashboard, "key_fd", lambda: slave)
        threading.Timer(0.5, lambda: os.write(master, b"xq")).start()
        console = Console(width=80, height=24, file=io.StringIO())
        assert dashboard.run(coord, console=console) == "quit"
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_cbreak_restores_the_terminal_on_ctrl_c() -> None:
    import pty
    import termios

    master, slave = pty.openpty()
    try:
        before = termios.tcgetattr(slave)
        with pytest.raises(KeyboardInterrupt), cbreak(slave):
            during = termios.tcgetattr(slave)
            assert not during[3] & termios.ICANON
            assert not during[3] & termios.ECHO
            raise KeyboardInterrupt
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_key_reader_reports_q(coord: Coordinator) -> None:
    r, w = os.pipe()
    feed = Feed(coord).start(key_fd=r)
    try:
        os.write(w, b"aQ")
        deadline = time.monotonic() + 10
        got: set[str] = set()
        while QUIT not in got and time.monotonic() < deadline:
            got |= feed.wait(1.0)
        assert QUIT in got
    finally:
        feed.stop()
        os.close(r)
        os.close(w)


# -- the CLI -------------------------------------------------------------------------------------
@pytest.fixture
def run(workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COORD_DIR", workspace.root)
    monkeypatch.delenv("COORD_URL", raising=False)

    def _run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def test_cli_prints_one_frame_without_a_terminal(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("agent", "register", "ai-engineer")
    run("task", "create", "Train", "--id", "train", "--total", "10")
    run("task", "claim", "train", "--agent", "ai-engineer")
    run("task", "progress", "train", "--agent", "ai-engineer", "--current", "3")
    code, out, _ = run("dashboard", "--width", "80", "--height", "24")
    assert code == 0
    lines = out.rstrip("\n").split("\n")
    assert len(lines) == 24
    assert "ai-engineer" in out
    assert "30%" in out
    assert "\x1b[" not in out  # no colour in a pipe
    svg = tmp_path / "frame.svg"
    code, _, _ = run("dashboard", "--once", "--width", "100", "--height", "30", "--svg", str(svg))
    assert code == 0
    assert "<svg" in svg.read_text()
    code, out, _ = run("--json", "dashboard")
    data = json.loads(out)
    assert {"time", "agents", "tasks", "counts", "events", "timers", "alerts"} <= set(data)
    assert data["tasks"][0]["id"] == "train"
    assert data["tasks"][0]["percent"] == 30.0


@pytest.mark.parametrize(
    "args",
    [
        ["--width", "10"],
        ["--height", "5000"],
        ["--svg", "x.svg"],
        ["--events", "-1"],
        ["--bogus"],
    ],
)
def test_cli_bad_input_is_exit_2(run, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run("dashboard", *args)
    assert code == 2
    assert err


def test_reservations_pane_and_unread_messages(coord: Coordinator, clock: FakeClock) -> None:
    """SPEC 13 and 14: the reservations pane (agent, patterns, mode, until) and each agent's
    unread messages, on a narrow and a wide screen, and in --json."""
    for name in ("ada", "bob", "cy"):
        coord.agents.register(name)
    task = coord.tasks.create("api work", id="api")
    coord.tasks.claim("api", agent="bob", lease_seconds=600)
    coord.reservations.reserve("ada", ["src/ui/**"], ttl=900, reason="new screen")
    coord.reservations.reserve("bob", ["src/api/**", "docs/api.md"], task=task.id)
    coord.reservations.reserve("cy", ["notes/todo.md"], shared=True)
    coord.messages.send("ada", "bob", "hello", "body")
    coord.messages.send("ada", "bob", "again", "body")
    snap = gather(coord)
    assert {a["agent"]: a["unread"] for a in snap.agents} == {"ada": 0, "bob": 2, "cy": 0}
    assert snap.reservations_total == 3
    assert [r["agent"] for r in snap.reservations] == ["ada", "bob", "cy"]
    narrow = "\n".join(screen(snap, 80, 24))
    assert "Reservations (3) · 2 exclusive" in narrow
    assert "src/ui/**" in narrow and "15m" in narrow and "task api" in narrow
    assert "bob ✉" in narrow  # no MAIL column at 80: a mark after the name
    wide = "\n".join(screen(snap, 160, 40))
    assert "MAIL" in wide and "✉2" in wide
    assert "src/api/** docs/api.md" in wide and "excl" in wide and "shared" in wide
    later = "\n".join(screen(snap, 160, 40, now=snap.now + 60))
    assert "14m" in later  # the TTL counts down between reads
    data = snapshot_json(snap)
    assert data["reservations_total"] == 3
    assert data["reservations"][1]["patterns"] == ["src/api/**", "docs/api.md"]
    coord.reservations.release("ada", all=True)
    coord.reservations.release("bob", all=True)
    coord.reservations.release("cy", all=True)
    empty = gather(coord)
    assert "Reservations" not in "\n".join(screen(empty, 80, 24))
