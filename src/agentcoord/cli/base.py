"""What every command module shares: an argparse parser that reports usage errors as
:class:`InvalidInput` (exit 2, JSON under ``--json``), and the run context."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import InvalidInput
from .output import emit, warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

    from ..api import Coordinator
    from .main import Globals


_WIDTH: dict[str | None, int] = {}  # by $COLUMNS


def _formatter(prog: str) -> argparse.HelpFormatter:
    """argparse builds a formatter on every ``add_argument`` and, without a width, imports
    ``shutil`` to ask for the terminal size: ~3 ms of a ~30 ms start-up budget."""
    env = os.environ.get("COLUMNS")
    width = _WIDTH.get(env)
    if width is None:
        try:
            columns = int(env or os.get_terminal_size(2).columns)
        except (OSError, ValueError):
            columns = 80
        width = _WIDTH[env] = max(columns - 2, 40)
    return argparse.RawDescriptionHelpFormatter(prog, width=width)


class _Skipped:
    """Stands in for the parser of a subcommand that was not invoked: building every
    subcommand's parser costs more start-up time than running the one that was asked for."""

    def __getattr__(self, name: str) -> Callable[..., _Skipped]:
        return lambda *args, **kwargs: self


_SKIPPED = _Skipped()


class _LazySubParsers(argparse._SubParsersAction):  # type: ignore[type-arg]
    wanted: str | None = None

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if self.wanted is None or name == self.wanted:
            return super().add_parser(name, **kwargs)
        if "help" in kwargs:  # still listed in usage and "invalid choice" messages
            self._choices_actions.append(self._ChoicesPseudoAction(name, (), kwargs["help"]))
        self._name_parser_map[name] = _SKIPPED
        return _SKIPPED


class Parser(argparse.ArgumentParser):
    """Usage errors raise :class:`InvalidInput`; subparsers (``add_subparsers`` reuses this
    class) get the same width-aware formatter. Set ``wanted`` to the invoked subcommand so that
    only its parser is built."""

    wanted: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _formatter)
        kwargs.setdefault("exit_on_error", False)
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _LazySubParsers)

    def add_subparsers(self, **kwargs: Any) -> Any:
        action = super().add_subparsers(**kwargs)
        if isinstance(action, _LazySubParsers):
            action.wanted = self.wanted
        return action

    def error(self, message: str) -> NoReturn:
        raise InvalidInput(f"{self.prog}: {message}", usage=self.format_usage().strip())


class HelpShown(Exception):
    """argparse printed help and wants to exit 0."""


def new_parser(prog: str, description: str) -> Parser:
    return Parser(prog=f"coord {prog}", description=description)


def parse(parser: Parser, argv: Sequence[str]) -> argparse.Namespace | None:
    """Parse, returning None when ``--help`` was shown (argparse would otherwise exit)."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:  # --help (code 0); errors are raised by Parser.error
        if exc.code not in (0, None):
            raise InvalidInput(f"{parser.prog}: invalid arguments") from None
        return None
    except argparse.ArgumentError as exc:
        raise InvalidInput(f"{parser.prog}: {exc}") from None


class Context:
    """Global options plus the workspace, opened on first use."""

    def __init__(self, g: Globals) -> None:
        self.g = g
        self.json = g.json
        self.quiet = g.quiet
        self._coord: Coordinator | None = None

    @property
    def coord(self) -> Coordinator:
        if self._coord is None:
            from ..api import Coordinator

            self._coord = Coordinator.open(self.g.dir, url=self.g.url)
        return self._coord

    def emit(
        self, data: Any, text: str | Callable[[], str] | None = None, *, brief: str | None = None
    ) -> None:
        """``data`` under ``--json``, else ``text``; under ``-q`` only ``brief`` (when given):
        the one value a script cannot learn otherwise (the id a claim took, a session token)."""
        emit(data, text, as_json=self.json, quiet=self.quiet, brief=brief)

    def warn(self, message: str) -> None:
        warn(message, self.json)

    def notice(self, kind: str, message: str, **data: Any) -> None:
        from .output import notice

        notice(kind, message, data, self.json)

    def close(self) -> None:
        """Show the follow-ups that failed after a write committed (on stderr: the command
        succeeded), and release the workspace."""
        if self._coord is not None:
            for message in self._coord.warnings:
                self.warn(message)
            self._coord.warnings.clear()
            self._coord.close()


def dispatch(
    prog: str,
    argv: Sequence[str],
    g: Globals,
    build: Callable[[Parser], None],
    description: str,
) -> int:
    """Build the parser with ``build``, parse ``argv`` and call the chosen handler."""
    parser = new_parser(prog, description)
    # The subcommand is the first argument unless help is asked for (then build them all).
    if argv and not argv[0].startswith("-") and "-h" not in argv and "--help" not in argv:
        parser.wanted = argv[0]
    build(parser)
    ns = parse(parser, argv)
    if ns is None:
        return 0
    handler: Callable[[Context, argparse.Namespace], int | None] | None = getattr(
        ns, "handler", None
    )
    if handler is None:
        parser.print_usage(sys.stderr)
        raise InvalidInput(f"coord {prog}: choose a subcommand")
    ctx = Context(g)
    try:
        return handler(ctx, ns) or 0
    finally:
        ctx.close()


def key_values(items: Sequence[str], what: str = "KEY=VALUE") -> list[tuple[str, str]]:
    """Parse ``key=value`` arguments; refuse malformed ones with exit 2."""
    out = []
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise InvalidInput(f"malformed {what} argument {item!r}: expected KEY=VALUE")
        out.append((key.strip(), value))
    return out


def scalar(value: str) -> Any:
    """A metric value as the most specific JSON scalar: int, float, true/false/null, or text."""
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    import math

    return number if math.isfinite(number) else value


def show_record(
    ctx: Context, data: dict[str, Any], fields_arg: str | None, render: Callable[[], str]
) -> int:
    """``show`` commands: the record's dict under ``--json`` (only ``--fields`` if given, each
    one of its keys: exit 2 otherwise), else its markdown as the file holds it (or ``key:
    value`` lines for the selected fields, values as :func:`~agentcoord.cli.output.plain`
    writes them: never a Python repr)."""
    from ..core.text import shown
    from .output import parse_fields, plain, select

    fields = parse_fields(fields_arg, data)
    if fields:
        data = select([data], fields)[0]

    def text() -> str:
        if fields:
            return "\n".join(f"{shown(k)}: {plain(v)}" for k, v in data.items())
        return render()

    ctx.emit(data, text)
    return 0


def count(flag: str, minimum: int = 0, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number from ``minimum`` to ``maximum`` (default and at
    most 2**53 - 1: Redis stream ids and Lua numbers hold no more exactly); exit 2 otherwise."""
    from ..core.validate import MAX_INT

    top = MAX_INT if maximum is None else min(maximum, MAX_INT)

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise InvalidInput(
                f"{flag}: {_clip(value)!r} is not a whole number", field=flag
            ) from None
        if number < minimum:
            raise InvalidInput(f"{flag} must be at least {minimum}, not {_clip(value)}", field=flag)
        if number > top:
            raise InvalidInput(
                f"{flag} must be at most {top}{' (2**53 - 1)' if top == MAX_INT else ''}, "
                f"not {_clip(value)}",
                field=flag,
            )
        return number

    return parse


def integer(flag: str) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number, negative too, of at most 2**53 - 1 either way."""
    from ..core.validate import MAX_INT

    return count(flag, minimum=-MAX_INT)


def real(flag: str) -> Callable[[str], float]:
    """An argparse ``type`` for a finite number (no ``nan``, ``inf`` or ``1e999``)."""

    def parse(value: str) -> float:
        import math

        try:
            number = float(value)
        except ValueError:
            raise InvalidInput(f"{flag}: {_clip(value)!r} is not a number", field=flag) from None
        if not math.isfinite(number):
            raise InvalidInput(f"{flag} must be a finite number, not {_clip(value)}", field=flag)
        return number

    return parse


def seconds(flag: str, *, positive: bool = False) -> Callable[[str], float]:
    """An argparse ``type`` for a duration: ``30``, ``0.5``, ``90s``, ``10m``, ``1h 30m``; at
    least 0 (more than 0 if ``positive``) and at most 100 years."""

    def parse(value: str) -> float:
        import math

        from ..core.clock import parse_duration
        from ..core.validate import MAX_DURATION, MAX_DURATION_TEXT

        try:
            got = parse_duration(value)
        except ValueError as exc:
            if "finite" not in str(exc):
                raise InvalidInput(
                    f"{flag}: {_clip(value)!r} is not a duration (e.g. 30, 0.5, 90s, 10m, 1h)",
                    field=flag,
                ) from None
            got = math.copysign(math.inf, -1.0 if value.strip().startswith("-") else 1.0)
        if got < 0 or (positive and got == 0):
            bound = "more than 0" if positive else "at least 0"
            raise InvalidInput(f"{flag} must be {bound} seconds, not {_clip(value)}", field=flag)
        if got > MAX_DURATION:
            raise InvalidInput(
                f"{flag} must be at most {MAX_DURATION_TEXT}, not {_clip(value)}", field=flag
            )
        return got

    return parse


def _clip(value: str) -> str:
    """An argument as a message shows it: at most 40 characters."""
    return value if len(value) <= 40 else value[:37] + "..."


def url_argument(value: str, option: str, as_json: bool) -> str:
    """A Redis URL given as ``option`` on the command line, with the credential rule of SPEC
    section 16: ``-`` reads the URL from the first line of stdin, or prompts for it without
    echo on a terminal (so a password never reaches ``/proc/PID/cmdline``); a URL spelt out
    with a credential still works but warns that every local user can read it there, and names
    the ways that keep it private. :class:`InvalidInput` (exit 2) for an empty stdin line."""
    if value == "-":
        if sys.stdin.isatty():  # typed by a person: prompt, and do not echo the password
            import getpass

            line = getpass.getpass(f"{option}: Redis URL (not echoed): ").strip()
        else:
            line = sys.stdin.readline().strip()
        if not line:
            raise InvalidInput(f"{option} -: expected a URL on the first line of stdin")
        return line
    from ..workspace import has_credential

    if has_credential(value):
        warn(
            f"the credential in {option} is visible to every local user in the process list "
            f"(/proc/PID/cmdline); give {option} - and the URL on stdin, or set $COORD_URL "
            "(after 'coord init' it is kept in config.json, mode 0600)",
            as_json,
        )
    return value
