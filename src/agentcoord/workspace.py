"""Finding and creating a workspace (SPEC section 2), and its configuration.

A workspace is a coordination directory (by default ``.claude/coordination/``) found the way git
finds ``.git``: ``--dir``, else ``$COORD_DIR``, else the nearest ancestor of the working directory
that has ``.claude/coordination/``. Its ``config.json`` records the backend (so every agent of a
Redis workspace uses the same URL) and tunables such as lease length and monitor thresholds.
"""

from __future__ import annotations

import json
import os

from .errors import InvalidInput, NotFound
from .store.fsutil import atomic_write, ensure_dir, read_text

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

README_TEXT = """# Coordination Directory

This directory contains ephemeral coordination files used by AI coding agents (agentcoord).

Files are created/updated during agent execution and cleaned up periodically (`coord cleanup`).
Read them freely; prefer `coord` commands for changes while agents are running, because every
write takes a lock in `.locks/` and replaces files atomically.
"""

#: Defaults for every tunable; ``config.json`` overrides any of them.
DEFAULTS: dict[str, Any] = {
    "backend": "markdown",
    "url": None,
    "lease_seconds": 600,
    "max_attempts": 3,
    "keep_events": 100,
    "durable": True,
    "lock_timeout": 10.0,
    # Redis: how long transient connection errors are retried before exit 5.
    "retry_seconds": 2.0,
    "breaker_threshold": 3,
    "breaker_cooldown": 300,
    # Monitor classes (timer seed, "Monitoring Thresholds"): silence below each bound.
    "monitor": {"normal": 60, "acceptable": 120, "concerning": 180, "stuck": 300},
    "context_max_bytes": 256 * 1024,
}


class Config:
    """The workspace's settings: :data:`DEFAULTS` overlaid with ``config.json``."""

    __slots__ = ("values",)

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        merged = dict(DEFAULTS)
        merged["monitor"] = dict(DEFAULTS["monitor"])
        for key, value in (values or {}).items():
            if key == "monitor" and isinstance(value, dict):
                merged["monitor"].update(value)
            else:
                merged[key] = value
        self.values = merged

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def float(self, key: str) -> float:
        value = self.values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"config {key!r} must be a number, not {value!r}")
        return float(value)


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
    for path in (root, os.path.join(root, "archive")):
        if not os.path.isdir(path):
            ensure_dir(path)
            actions.append(f"created {path}/")
    readme = os.path.join(root, "README.md")
    if not os.path.exists(readme):
        atomic_write(readme, README_TEXT)
        actions.append(f"wrote {readme}")
    keep = os.path.join(root, ".gitkeep")
    if not os.path.exists(keep):
        atomic_write(keep, "")
        actions.append(f"wrote {keep}")
    config_path = os.path.join(root, CONFIG_FILE)
    config = load_config(root)
    if url is not None:
        values = dict(_raw_config(config_path))
        values.update({"backend": "redis", "url": url})
        atomic_write(config_path, json.dumps(values, indent=2) + "\n")
        actions.append(f"recorded backend redis in {config_path}")
        config = Config(values)
    if project is not None:
        actions.extend(ensure_gitignore(os.path.join(project, ".gitignore")))
    return Workspace(root, config), actions


def _raw_config(path: str) -> dict[str, Any]:
    text = read_text(path)
    if not text:
        return {}
    data = json.loads(text)
    return data if isinstance(data, dict) else {}


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
