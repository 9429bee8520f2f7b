"""``coord timer start|stop|status|check`` and ``coord hook`` (SPEC section 5, seed 004).

JSON shapes (``--json``):

- ``timer start`` / ``timer status --name N``: a status object ``{"name", "running", "pid",
  "state", "stop_reason", "count", "last_tick", "next_tick", "next_in", "interval",
  "base_interval", "adaptive", "until_done", "max_checks", "started", "checkpoint_file", "log"}``;
  ``timer status`` without ``--name``: a list of them (every timer in the workspace).
- ``timer stop``: ``{"name", "stopped", "pid", "note"?, "killed"?, "stale_pidfile_removed"?}``
  (a list with ``--all``).
- ``timer check``: ``{"new": false, "name", "checkpoint", "previous"}`` (exit 0), or with
  ``"new": true`` also ``"timestamp", "message", "missed", "actions", "summary"`` (exit 1).

Exit codes: 1 a new checkpoint (check), 2 bad input, 3 no such timer, 4 already running,
5 timer directory not writable (the message names it), 6 unreadable checkpoint file, or a lock
file that is a symbolic link or not a regular file.
Timer commands never open the store except to summarise a check-in that fired.

SPEC section 16: "running" (``status``, ``start``'s exit 4) and the one process ``stop`` signals
are proven by the timer's lock, never by the pid file alone (:mod:`agentcoord.timer.control`);
``--url`` reaches the daemon as ``$COORD_URL``, never on its command line.
"""

from __future__ import annotations

from ..errors import InvalidInput
from .base import count, dispatch, seconds

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

    from ..workspace import Workspace
    from .base import Context, Parser
    from .main import Globals


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    if command == "hook":
        return dispatch("hook", argv, g, _build_hook, _HOOK_HELP)
    return dispatch("timer", argv, g, _build, "The coordination timer: start, stop, status, check.")


_HOOK_HELP = (
    "Check-in for agent-tool hooks: silent (exit 0) when no new checkpoint arrived, else the\n"
    "check-in as the hook protocol expects (Claude Code: hookSpecificOutput.additionalContext).\n"
    "Reads the hook's JSON input from stdin when there is one. Always exits 0. See docs/timer.md."
)


def _pid(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"--stop-with: {value!r} is not a process id") from None


def _build(parser: Parser) -> None:
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("start", help="start a detached timer")
    p.add_argument("--name", help="run several timers side by side (default: default)")
    p.add_argument(
        "--interval",
        type=seconds("--interval", positive=True),
        default=30.0,
        metavar="S",
        help="default 30",
    )
    p.add_argument(
        "--max-checks",
        type=count("--max-checks", minimum=1),
        default=1200,
        metavar="N",
        help="default 1200",
    )
    p.add_argument(
        "--until-done", action="store_true", help="stop once no task is pending/assigned/running"
    )
    p.add_argument(
        "--adaptive", action="store_true", help="back off while healthy, snap back on trouble"
    )
    p.add_argument(
        "--max-interval",
        type=seconds("--max-interval", positive=True),
        metavar="S",
        help="--adaptive: longest gap (default 8x interval, at most 10m)",
    )
    p.add_argument("--on-checkpoint", metavar="CMD", help="shell command to run each checkpoint")
    p.add_argument(
        "--on-checkpoint-timeout",
        type=seconds("--on-checkpoint-timeout", positive=True),
        default=60.0,
        metavar="S",
        help="kill the command after this long (default 60)",
    )
    p.add_argument(
        "--stop-with", type=_pid, metavar="PID", help="stop when this process ends (e.g. $PPID)"
    )
    p.set_defaults(handler=_start)

    p = sub.add_parser("stop", help="stop a timer (exactly the recorded process)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--name", help="the timer to stop (default: default)")
    group.add_argument("--all", action="store_true", help="every timer of this workspace")
    p.add_argument(
        "--timeout",
        type=seconds("--timeout", positive=True),
        default=10.0,
        metavar="S",
        help="how long to wait for it to end (default 10)",
    )
    p.set_defaults(handler=_stop)

    p = sub.add_parser("status", help="running or not, count, next tick, interval")
    p.add_argument("--name", help="one timer (default: all of them)")
    p.set_defaults(handler=_status)

    p = sub.add_parser("check", help="exit 1 with the check-in when a new checkpoint arrived")
    p.add_argument("--name", help="timer name (default: default)")
    p.add_argument("--consumer", help="keep a separate last-check (one per coordinator)")
    p.set_defaults(handler=_check)


def _build_hook(parser: Parser) -> None:
    parser.add_argument(
        "--event",
        help="hook event (default: hook_event_name from the input): UserPromptSubmit, "
        "PostToolUse and SessionStart get Claude Code's JSON; others get text",
    )
    parser.add_argument("--name", help="timer name (default: default)")
    parser.add_argument("--consumer", help="separate last-check for this consumer")
    parser.add_argument(
        "--per-session",
        action="store_true",
        help="one consumer per agent session (session_id from the input)",
    )
    parser.add_argument(
        "--format",
        choices=("auto", "text"),
        default="auto",
        help="auto: as the event wants it (JSON for Claude Code's); text: always plain text",
    )
    parser.add_argument(
        "--max-chars", type=count("--max-chars"), default=4000, help="bound on the output"
    )
    parser.set_defaults(handler=_hook)


# -- helpers ---------------------------------------------------------------------------------
def _workspace(ctx: Context, *, check_config: bool = True) -> Workspace:
    """The workspace (for its timer directory) without opening the store. Its ``config.json``
    is read and checked (exit 6 for a bad setting, as every command does), except for ``timer
    stop``: stopping a timer must work whatever the settings say."""
    from ..workspace import Workspace, find_root

    ws = Workspace(find_root(ctx.g.dir))
    if check_config:
        ws.config  # noqa: B018 - read now: a bad config.json is reported, not ignored
    return ws


def _files(ws: Workspace, name: str | None) -> Any:
    from ..timer.files import TimerFiles

    return TimerFiles(ws.timer_dir, name)


def _status_line(s: dict[str, Any]) -> str:
    from ..core.clock import duration

    every = f"every {s['interval']:g}s" if isinstance(s.get("interval"), (int, float)) else ""
    if s.get("adaptive") and s.get("base_interval") != s.get("interval"):
        every += f" (adaptive, base {s['base_interval']:g}s)"
    if s["running"]:
        nxt = f", next tick in {duration(s['next_in'])}" if s.get("next_in") is not None else ""
        return (
            f"{s['name']}: running (pid {s['pid']}), checkpoint {s['count']} at "
            f"{s['last_tick']} UTC{nxt} ({s['next_tick']}), {every}"
        )
    why = f" ({s['stop_reason']})" if s.get("stop_reason") else ""
    return f"{s['name']}: not running, {s['state']}{why}; last checkpoint {s['count']}"


# -- handlers --------------------------------------------------------------------------------
def _start(ctx: Context, ns: argparse.Namespace) -> int:
    from ..timer import control

    ws = _workspace(ctx)
    status = control.start(
        ws.root,
        ws.timer_dir,
        name=ns.name,
        interval=ns.interval,
        max_checks=ns.max_checks,
        until_done=ns.until_done,
        adaptive=ns.adaptive,
        max_interval=ns.max_interval,
        on_checkpoint=ns.on_checkpoint,
        on_checkpoint_timeout=ns.on_checkpoint_timeout,
        stop_with=ns.stop_with,
        url=ctx.g.url,
    )
    text = (
        f"timer {status['name']} started (pid {status['pid']}), every {ns.interval:g}s, "
        f"up to {ns.max_checks} checkpoints; checkpoint file {status['checkpoint_file']}"
    )
    ctx.emit(status, text)
    return 0


def _stop(ctx: Context, ns: argparse.Namespace) -> int:
    from ..timer import control

    ws = _workspace(ctx, check_config=False)

    def line(r: dict[str, Any]) -> str:
        if r["stopped"]:
            how = " (killed after SIGTERM timed out)" if r.get("killed") else ""
            return f"timer {r['name']} stopped (pid {r['pid']}){how}"
        return f"timer {r['name']}: {r.get('note', 'not running')}"

    if ns.all:
        results = control.stop_all(ws.timer_dir, timeout=ns.timeout)
        ctx.emit(results, "\n".join(line(r) for r in results) or "no timer running")
        return 0
    result = control.stop(_files(ws, ns.name), timeout=ns.timeout)
    ctx.emit(result, line(result))
    return 0


def _status(ctx: Context, ns: argparse.Namespace) -> int:
    from ..timer import control

    ws = _workspace(ctx)
    if ns.name is not None:
        status = control.status(_files(ws, ns.name))
        ctx.emit(status, _status_line(status))
        return 0
    rows = control.status_all(ws.timer_dir)
    ctx.emit(rows, "\n".join(_status_line(s) for s in rows) or "no timers")
    return 0


def _check(ctx: Context, ns: argparse.Namespace) -> int:
    from ..timer.check import check, report_json, report_text, summarize

    ws = _workspace(ctx)
    result = check(_files(ws, ns.name), consumer=ns.consumer)
    if not result.new:
        if ctx.json:
            ctx.emit(report_json(result, None))
        return 0
    summary = summarize(result, *_open(ctx))
    ctx.emit(report_json(result, summary), report_text(result, summary))
    return 1


def _open(ctx: Context) -> tuple[Any, str | None]:
    """The store for the summary; a check that fired is reported even if it cannot be opened."""
    try:
        return ctx.coord, None
    except Exception as exc:
        return None, str(exc)


def _hook(ctx: Context, ns: argparse.Namespace) -> int:
    import sys

    from ..core.text import json_safe, scrub
    from ..timer import hooks

    try:
        payload = hooks.read_payload()
        event = ns.event or payload.get("hook_event_name")
        consumer = ns.consumer
        if ns.per_session:
            consumer = hooks.session_consumer(payload.get("session_id")) or consumer
        ws = _hook_workspace(ctx, payload)
        if ws is None:
            return 0
        from ..timer.check import check, report_text, summarize

        files = _files(ws, ns.name)
        if not files.exists():
            return 0
        result = check(files, consumer=consumer)
        if not result.new:
            return 0
        # Agent-supplied text (titles, event values) may reach the tool's transcript: escaped
        # like every human-facing output (SPEC 16).
        from ..sessions import resolve

        sid = payload.get("session_id")
        try:
            who = resolve(None, session_id=sid if isinstance(sid, str) and sid else None)
        except Exception:
            who = None
        agent = who.name if who is not None else None
        text = scrub(report_text(result, summarize(result, *_open(ctx), agent=agent)))
        sys.stdout.write(
            json_safe(hooks.render(event, hooks.clip(text, ns.max_chars), ns.format)) + "\n"
        )
    except Exception as exc:  # never block the agent's tool call
        sys.stderr.write(scrub(f"coord hook: {type(exc).__name__}: {exc}") + "\n")
    return 0


def _hook_workspace(ctx: Context, payload: dict[str, Any]) -> Workspace | None:
    from ..errors import NotFound
    from ..timer.hooks import find_workspace_from

    try:
        return _workspace(ctx)
    except NotFound:
        root = find_workspace_from(payload.get("cwd"))
        if root is None:
            return None
        ctx.g.dir = root
        return _workspace(ctx)
