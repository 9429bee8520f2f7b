"""``coord setup TOOL``: write an agent tool's project config (SPEC section 12; the work is
:mod:`agentcoord.ops.setup`).

``--json``: ``{"tool", "root", "dry_run", "remove", "files": [{"path", "action", "diff",
"note"}]}`` where ``action`` is ``create``, ``update``, ``delete`` or ``unchanged`` and ``diff``
a unified diff (empty when unchanged). Exit codes: 2 an unknown tool or bad option (``git``:
not in a git repository, or git's hooks directory outside it), 4 an existing ``coord`` MCP
server with different content (``--force`` replaces it), or a pre-commit hook that is not a
shell script, 5 a file that cannot be written, 6 a config that does not parse or a symbolic link
at a target (nothing is written).

``coord setup git`` writes into the hooks directory git names (``git rev-parse --git-path
hooks``: ``core.hooksPath`` honoured, shared by every linked worktree), relative to the main
worktree's top, where its manifest is kept too."""

from __future__ import annotations

import contextlib
import os

from ..errors import InvalidInput
from .base import new_parser, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from .main import Globals

DESCRIPTION = """\
Write an agent tool's project config (MCP server entry, hooks, workflow notes), merging into
what is there, never clobbering. A second run changes nothing. What was there before is kept
in .claude/.coordination-setup.json (0600): --remove restores a file byte for byte when it did
not change since, and otherwise takes out only coord's entries. 'coord setup git' installs the
pre-commit guard (a commit touching another agent's exclusive reservation is refused) into the
hooks directory git names (core.hooksPath honoured; shared by linked worktrees), keeping an
existing pre-commit script.

tools and the files they get:
"""


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    from ..ops.setup import TOOLS

    width = max(map(len, TOOLS))
    listing = "\n".join(
        f"  {name.ljust(width)}  {', '.join(p.path for p in tool.parts)}"
        for name, tool in TOOLS.items()
    )
    parser = new_parser("setup", DESCRIPTION + listing)
    parser.add_argument("tool", metavar="TOOL", help=f"one of: {', '.join(TOOLS)}")
    parser.add_argument(
        "--dry-run", action="store_true", help="write nothing; show the diff of each file"
    )
    parser.add_argument(
        "--remove",
        action="store_true",
        help="take coord's entries out again (restoring the file as it was when unchanged)",
    )
    parser.add_argument(
        "--root",
        metavar="DIR",
        help="the project directory (default: the git top level of the current directory, "
        "else the current directory)",
    )
    parser.add_argument(
        "--coord",
        metavar="CMD",
        help="the command the configs run (default: coord when it is on PATH, else the "
        "absolute path of this coord)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing 'coord' MCP server entry that differs",
    )
    ns = parse(parser, argv)
    if ns is None:
        return 0
    if ns.tool not in TOOLS:
        raise InvalidInput(
            f"coord setup: unknown tool {ns.tool!r}; choose one of: {', '.join(TOOLS)}",
            tool=ns.tool,
            valid=list(TOOLS),
        )
    return _setup(
        g, ns.tool, ns.root, ns.coord, dry_run=ns.dry_run, remove=ns.remove, force=ns.force
    )


def _setup(
    g: Globals,
    tool: str,
    root: str | None,
    command: str | None,
    *,
    dry_run: bool,
    remove: bool,
    force: bool,
) -> int:
    import sys

    from ..core.text import shown
    from ..ops import setup
    from .output import emit, notice

    if root is None:
        root = find_root()
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise InvalidInput(f"--root {root}: not a directory", field="--root")
    paths: dict[str, str] = {}
    if tool == "git":
        root, hook = git_hook_path(root)
        paths[setup.GIT_HOOK] = hook
    if command is None:
        command, message = default_command(sys.argv[0], sys.executable)
        if message is not None:
            notice("command", message, {"command": command}, g.json)
    from ..workspace import worktree_main

    main = worktree_main(root)
    if main is not None and not remove and tool != "git":
        notice(
            "worktree",
            f"{root} is a linked git worktree of {main}: these files are this branch's; commit "
            "them on the branch every worktree merges from (or run setup in each worktree)",
            {"worktree": root, "main": main},
            g.json,
        )
    with _locked(root, dry_run):  # two setups at once would lose each other's manifest entries
        plan = setup.plan(tool, root, command, remove=remove, force=force, paths=paths)
        if not dry_run:
            setup.apply(plan)
    data = plan.to_dict(dry_run)

    def text() -> str:
        lines = []
        verb = {"create": "created", "update": "updated", "delete": "deleted"}
        if dry_run:
            verb = {"create": "would create", "update": "would update", "delete": "would delete"}
        for f in plan.files:
            action = f.action
            line = f"{verb.get(action, action)} {shown(f.rel)}"
            if action == "unchanged" and not remove:
                line += " (up to date)"
            if f.note:
                line += f" ({f.note})"
            lines.append(line)
            if dry_run and action != "unchanged":
                lines.append(f.diff().rstrip("\n"))
        if not remove and not dry_run:
            lines.append(setup.TOOLS[tool].hint)
        return "\n".join(lines)

    emit(data, text, as_json=g.json, quiet=g.quiet)
    return 0


@contextlib.contextmanager
def _locked(root: str, dry_run: bool) -> Iterator[None]:
    """An exclusive ``flock`` on the project directory itself for a run that writes (no lock
    file is left behind; a run waits for another to finish)."""
    if dry_run:
        yield
        return
    import fcntl

    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _git(cwd: str, *args: str) -> str:
    """``git args`` in ``cwd``: its output, stripped; :class:`InvalidInput` when it fails."""
    import subprocess

    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise InvalidInput(f"coord setup git: cannot run git: {exc}") from None
    if proc.returncode != 0:
        why = proc.stderr.strip().splitlines()[-1:] or ["not a git repository"]
        raise InvalidInput(f"coord setup git: {cwd}: {why[0]}", path=cwd)
    return proc.stdout.strip()


def git_hook_path(directory: str) -> tuple[str, str]:
    """(the main worktree's top, the pre-commit hook's path relative to it) for the repository
    of ``directory``: the hooks directory ``git rev-parse --git-path hooks`` names (it honours
    ``core.hooksPath``, and is the same for every linked worktree). :class:`InvalidInput`
    (exit 2) outside a work tree, and when the hooks directory lies outside the repository (a
    hooks directory shared by several repositories is not setup's to edit)."""
    from ..workspace import worktree_main

    top = os.path.realpath(_git(directory, "rev-parse", "--show-toplevel"))
    main = os.path.realpath(worktree_main(top) or top)
    hooks = os.path.realpath(
        os.path.join(directory, _git(directory, "rev-parse", "--git-path", "hooks"))
    )
    rel = os.path.relpath(hooks, main)
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        raise InvalidInput(
            f"coord setup git: git's hooks directory {hooks} (core.hooksPath) is outside the "
            f"repository {main}; setup edits hooks only inside it. Add the check to your hook "
            "yourself: run 'coord files check --staged' and refuse the commit when it is exit 4 "
            "(docs/agent-tools.md, 'git')",
            path=hooks,
        )
    return main, ("" if rel == "." else rel.replace(os.sep, "/") + "/") + "pre-commit"


def find_root(cwd: str | None = None) -> str:
    """The git top level of ``cwd`` (``git rev-parse --show-toplevel``), else ``cwd``."""
    import subprocess

    here = os.path.abspath(cwd or os.getcwd())
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=here,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return here
    top = proc.stdout.strip()
    return top if proc.returncode == 0 and top and os.path.isdir(top) else here


def default_command(argv0: str, executable: str) -> tuple[str, str | None]:
    """CMD for the configs: ``coord`` when ``coord`` is on PATH, else the absolute path of the
    running coord script (with a notice to show). :class:`InvalidInput` when there is none."""
    import shutil

    if shutil.which("coord"):
        return "coord", None
    candidates = [os.path.abspath(argv0)] if os.path.basename(argv0) == "coord" else []
    candidates.append(os.path.join(os.path.dirname(os.path.abspath(executable)), "coord"))
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path, (
                f"coord is not on PATH; the configs run {path} (--coord CMD chooses another)"
            )
    raise InvalidInput("coord is not on PATH and its script was not found: give --coord CMD")
