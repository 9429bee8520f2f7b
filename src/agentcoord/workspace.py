"""Finding and creating a workspace (SPEC section 2), and its configuration.

A workspace is a coordination directory (by default ``.claude/coordination/``) found the way git
finds ``.git``: ``--dir``, else ``$COORD_DIR``, else the nearest ancestor of the working directory
that has ``.claude/coordination/``. Its ``config.json`` records the backend (so every agent of a
Redis workspace uses the same URL) and tunables such as lease length and monitor thresholds.
"""

from __future__ import annotations

import json
import os

from .core.config import Config, ConfigProblem, check
from .errors import CorruptData, NotFound
from .fs import atomic_write, read_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

SUBDIR = os.path.join(".claude", "coordination")
CONFIG_FILE = "config.json"

# The seed's ignore lines, with one fix: git cannot re-include a file whose parent directory is
# excluded, so the seed's ".claude/coordination/" would also hide README.md and .gitkeep. Ignoring
# the directory's *contents* ("/*") keeps the seed's intent working.
GITIGNORE_BLOCK = (
    "# Coordination files (ephemeral state)",
    ".claude/coordination/*",
    "!.claude/coordination/README.md",
    "!.claude/coordination/.gitkeep",
    ".claude/.coordination-*",
)


class Workspace:
    """A coordination directory on disk (also present for Redis workspaces: it holds config).

    ``config`` is read (and checked: :class:`CorruptData` for a bad ``config.json``) on first
    use, so that finding a workspace never fails on its settings and a caller that goes on to
    use them always sees the error."""

    __slots__ = ("_config", "root")

    def __init__(self, root: str, config: Config | None = None) -> None:
        self.root = os.path.abspath(root)
        self._config = config

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.root)
        return self._config

    @config.setter
    def config(self, value: Config) -> None:
        self._config = value

    @property
    def timer_dir(self) -> str:
        """Where the timer's files live: next to the coordination directory, as in the seeds
        (``.claude/.coordination-checkpoint``), or inside a directory given with ``--dir`` that
        is not named ``coordination`` (so two such workspaces never share timer files)."""
        if os.path.basename(self.root) == "coordination":
            return os.path.dirname(self.root)
        return self.root

    @property
    def project_root(self) -> str:
        """The project the workspace belongs to (for git activity): two levels above the
        default layout, else the coordination directory's parent."""
        parent = os.path.dirname(self.root)
        if os.path.basename(self.root) == "coordination" and os.path.basename(parent) == ".claude":
            return os.path.dirname(parent)
        return parent


def load_config(root: str) -> Config:
    """The workspace's settings: ``config.json`` over the defaults. :class:`CorruptData` (exit
    6, ``path:line: reason``) when the file is not a JSON object, or has an unknown key, a value
    of the wrong type or out of range, or a ``backend`` and ``url`` that do not go together
    (:func:`agentcoord.core.config.check`): a setting is never silently ignored."""
    path = os.path.join(root, CONFIG_FILE)
    text = read_text(path)
    if text is None:
        return Config()
    data = _parse(path, text)
    _check(path, text, data)
    return Config(data)


def _parse(path: str, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptData(path, exc.lineno, f"config is not valid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit number, nesting too deep
        raise CorruptData(path, 1, f"config is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CorruptData(path, 1, "config must be a JSON object")
    return data


def _check(path: str, text: str, data: Mapping[str, Any]) -> None:
    try:
        check(data)
    except ConfigProblem as exc:
        raise CorruptData(path, _line_of(text, exc.key), exc.message) from None


def _line_of(text: str, key: str) -> int:
    """The line of ``key`` (``monitor.normal``: ``normal`` inside ``monitor``) in the JSON
    ``text``; 1 when it is not spelt plainly there."""
    import re

    pos = 0
    for part in key.split("."):
        found = re.compile(rf'"{re.escape(part)}"\s*:').search(text, pos)
        if found is None:
            break
        pos = found.start()
    return text.count("\n", 0, pos) + 1


def find_root(directory: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    """The coordination directory to use, or :class:`NotFound` with a hint to run ``coord init``."""
    if directory:
        return os.path.abspath(directory)
    environ = os.environ if env is None else env
    from_env = environ.get("COORD_DIR")
    if from_env:
        return os.path.abspath(from_env)
    here = os.getcwd()
    while True:
        candidate = os.path.join(here, SUBDIR)
        if os.path.isdir(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    raise NotFound(
        "no coordination workspace found (looked for .claude/coordination/ in this directory "
        "and its parents); run 'coord init' or pass --dir",
        hint="coord init",
    )


def _git_root(cwd: str) -> str | None:
    import subprocess  # only ``coord init`` needs it; keep it off the start-up path

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def init_workspace(
    directory: str | None = None, *, url: str | None = None, cwd: str | None = None
) -> tuple[Workspace, list[str]]:
    """Create (or complete) a workspace; idempotent. Returns it and the actions taken."""
    actions: list[str] = []
    base = cwd or os.getcwd()
    if directory:
        root = os.path.abspath(directory)
        project = None
    else:
        project = _git_root(base) or base
        root = os.path.join(project, SUBDIR)
    from .store.markdown.directory import Directory

    actions += Directory(root).prepare()  # the layout: README.md, .gitkeep, archive/
    if url is None:
        config = load_config(root)
    else:  # may repair a backend/url mismatch; any other bad setting is still reported
        config = record_backend(root, "redis", url)
        actions.append(f"recorded backend redis in {os.path.join(root, CONFIG_FILE)}")
    if project is not None:
        actions.extend(ensure_gitignore(os.path.join(project, ".gitignore")))
    return Workspace(root, config), actions


def record_backend(root: str, backend: str, url: str | None = None) -> Config:
    """Point ``config.json`` at ``backend`` (``redis`` with ``url``, or ``markdown``), keeping
    every other setting; returns the new config. :class:`CorruptData` if the file is not a JSON
    object or another of its settings is bad (it is never overwritten then)."""
    path = os.path.join(root, CONFIG_FILE)
    text = read_text(path) or ""
    values = _parse(path, text) if text.strip() else {}
    values["backend"] = backend
    if url is None:
        values.pop("url", None)
    else:
        values["url"] = url
    # The other settings must be good: a bad one is reported, never rewritten (and so hidden).
    _check(path, text, values)
    atomic_write(path, json.dumps(values, indent=2) + "\n")
    return Config(values)


def ensure_gitignore(path: str) -> list[str]:
    """Add the missing lines of :data:`GITIGNORE_BLOCK` to ``path`` (idempotent)."""
    text = read_text(path) or ""
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in GITIGNORE_BLOCK if line not in present]
    if not missing:
        return []
    prefix = "" if not text or text.endswith("\n") else "\n"
    if text:
        prefix += "\n"
    atomic_write(path, text + prefix + "\n".join(missing) + "\n")
    return [f"added {len(missing)} line(s) to {path}"]
