"""Finding and creating a workspace (SPEC section 2), and its configuration.

A workspace is a coordination directory (by default ``.claude/coordination/``) found the way git
finds ``.git``: ``--dir``, else ``$COORD_DIR``, else the nearest ancestor of the working directory
that has ``.claude/coordination/``. Its ``config.json`` records the backend (so every agent of a
Redis workspace uses the same URL) and tunables such as lease length and monitor thresholds.
"""

from __future__ import annotations

import json
import os

from .core.config import Config
from .errors import NotFound
from .fs import atomic_write, read_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

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
    """A coordination directory on disk (also present for Redis workspaces: it holds config)."""

    __slots__ = ("config", "root")

    def __init__(self, root: str, config: Config | None = None) -> None:
        self.root = os.path.abspath(root)
        self.config = config if config is not None else load_config(self.root)

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
    path = os.path.join(root, CONFIG_FILE)
    text = read_text(path)
    if text is None:
        return Config()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        from .errors import CorruptData

        raise CorruptData(path, exc.lineno, f"config is not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        from .errors import CorruptData

        raise CorruptData(path, 1, "config must be a JSON object")
    return Config(data)


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
    config = load_config(root)
    if url is not None:
        config = record_backend(root, "redis", url)
        actions.append(f"recorded backend redis in {os.path.join(root, CONFIG_FILE)}")
    if project is not None:
        actions.extend(ensure_gitignore(os.path.join(project, ".gitignore")))
    return Workspace(root, config), actions


def record_backend(root: str, backend: str, url: str | None = None) -> Config:
    """Point ``config.json`` at ``backend`` (``redis`` with ``url``, or ``markdown``), keeping
    every other setting; returns the new config. :class:`CorruptData` if the file is not a JSON
    object (it is never overwritten then)."""
    path = os.path.join(root, CONFIG_FILE)
    text = read_text(path)
    try:
        values = json.loads(text) if text and text.strip() else {}
    except ValueError:
        values = None
    if not isinstance(values, dict):
        from .errors import CorruptData

        raise CorruptData(path, 1, "config must be a JSON object")
    values["backend"] = backend
    if url is None:
        values.pop("url", None)
    else:
        values["url"] = url
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
