"""The ``coord`` command line (SPEC section 6).

Start-up time is a product target (within 3x of ``python -c pass``), so this module imports only
the standard library pieces every command needs. Each command group lives in its own module that
is imported only when that group runs; ``coord --help`` is served from the table below without
importing any of them.
"""

from __future__ import annotations

import os
import sys

from ..errors import CoordError, InvalidInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

#: command -> (module under agentcoord.cli, one-line help). Order is the order of ``--help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("cmd_init", "create a workspace (.claude/coordination/) or record a Redis URL"),
    "status": ("cmd_status", "one-screen summary: agents, tasks by state, alerts"),
    "task": (
        "cmd_task",
        "create, claim, assign, progress, log, complete, fail, release, list, show",
    ),
    "reap": ("cmd_task", "take back expired leases (requeue or fail)"),
    "agent": ("cmd_agent", "register, heartbeat, show, list, retire agents"),
    "monitor": ("cmd_monitor", "classify agents by silence (exit 1 if any is Stuck/Blocked)"),
    "metrics": ("cmd_monitor", "compute per-agent figures and write metrics-performance.md"),
    "event": ("cmd_event", "emit and tail events (cursors, --follow)"),
    "context": ("cmd_context", "put, get, list shared context documents"),
    "msg": ("cmd_msg", "messages between agents: send, inbox, read, ack, thread"),
    "files": ("cmd_files", "reserve, release, list, check file reservations (exit 4: taken)"),
    "watch": ("cmd_event", "NDJSON feed of changes in the workspace"),
    "stale": ("cmd_maint", "list files not updated for a while"),
    "cleanup": ("cmd_maint", "archive finished tasks and silent agents, rotate events"),
    "doctor": ("cmd_maint", "check the workspace's invariants and repair what is safe"),
    "timer": ("cmd_timer", "coordination timer: start, stop, status, check"),
    "hook": ("cmd_timer", "check-in for agent-tool hooks (silent when nothing is new)"),
    "migrate": ("cmd_migrate", "move a workspace between markdown and Redis"),
    "dashboard": ("cmd_dashboard", "live terminal view of agents, tasks, events and the timer"),
    "demo": ("cmd_demo", "run a simulated team on a throw-away workspace"),
    "mcp": ("cmd_mcp", "run the MCP server (stdio) for agent tools"),
    "setup": (
        "cmd_setup",
        "write an agent tool's project config: MCP entry, hooks, workflow notes",
    ),
    "session": (
        "cmd_session",
        "agent-tool session hooks: start (register, prime), beat, guard, end",
    ),
    "whoami": ("cmd_session", "the agent name commands here act as, and where it comes from"),
    "prime": ("cmd_session", "an agent's tasks, ready work and check-in, in ~2 KB"),
}

USAGE = "usage: coord [--dir D | --url U] [--json] [-q] COMMAND ..."
GLOBAL_WITH_VALUE = ("--dir", "--url")
GLOBAL_FLAGS = ("--json", "-q", "--quiet")


class Globals:
    """Options that apply to every command, given before or after it."""

    __slots__ = ("dir", "json", "quiet", "url")

    def __init__(self) -> None:
        self.dir: str | None = None
        self.url: str | None = None
        self.json = False
        self.quiet = False


def split_globals(argv: Sequence[str]) -> tuple[Globals, list[str]]:
    """Pull global options out of ``argv`` (anywhere before a ``--``); return the rest."""
    g = Globals()
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name, eq, value = arg.partition("=")
        if name in GLOBAL_WITH_VALUE:
            if not eq:
                if i + 1 >= len(argv):
                    raise InvalidInput(f"{name} needs a value")
                i += 1
                value = argv[i]
            setattr(g, name[2:], value)
        elif arg == "--json":
            g.json = True
        elif arg in ("-q", "--quiet"):
            g.quiet = True
        else:
            rest.append(arg)
        i += 1
    return g, rest


def _help() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = [USAGE, "", "Coordinate a team of AI coding agents through a shared workspace.", ""]
    lines += ["commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += [
        "",
        "global options (before or after the command):",
        "  --dir D    the coordination directory (default: found like .git, or $COORD_DIR)",
        "  --url U    a Redis URL (redis://, rediss://, unix://; default $COORD_URL);",
        "             '-' reads it from stdin, keeping a password out of the process list",
        "  --json     machine-readable output on stdout; errors as JSON on stderr",
        "  -q         quiet: on success print only what a script needs next - the id of a",
        "             task created or claimed (or edited, retried, reopened, checked), the",
        "             agent assigned, a session token - and nothing for other commands",
        "",
        "exit codes: 0 ok, 1 attention needed, 2 bad input, 3 not found / nothing to claim,",
        "            4 conflict, 5 backend unavailable, 6 corrupt data",
        "",
        "'coord COMMAND --help' for a command's options.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``coord`` and return its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    g = Globals()
    try:
        g, rest = split_globals(args)
        if g.url is not None:
            from .base import url_argument

            g.url = url_argument(g.url, "--url", g.json)
        if not rest or rest[0] in ("-h", "--help", "help"):
            print(_help())
            return 0 if rest or not args else 2
        if rest[0] in ("-V", "--version"):
            from .. import __version__

            print(f"coord (agentcoord) {__version__}")
            return 0
        command = rest[0]
        entry = COMMANDS.get(command)
        if entry is None:
            raise InvalidInput(f"unknown command {command!r}; 'coord --help' lists them")
        name = f"agentcoord.cli.{entry[0]}"
        __import__(name)  # the group's module only: start-up time is a product target
        code: int = sys.modules[name].run(command, rest[1:], g)
        return code
    except CoordError as exc:
        from .output import print_error

        print_error(exc, g.json)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``coord event tail --follow | head``): not an error.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's flush
        except OSError:
            pass
        return 0
