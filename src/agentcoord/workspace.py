"""Finding and creating a workspace (SPEC section 2), and its configuration.

A workspace is a coordination directory (by default ``.claude/coordination/``) found the way git
finds ``.git``: ``--dir``, else ``$COORD_DIR``, else the nearest ancestor of the working directory
that has ``.claude/coordination/``. Its ``config.json`` records the backend (so every agent of a
Redis workspace uses the same URL) and tunables such as lease length and monitor thresholds.

Permissions (SPEC section 16): a ``config.json`` whose URL holds a credential (a password or
``user:password``, a ``password=``-like query parameter) is written 0600 (0640 in a workspace
shared by a Unix group) from the first byte, and re-tightened on every rewrite; ``coord init
--shared-group G`` (:func:`share_with_group`) makes the tree group-writable with setgid
directories, and :func:`agentcoord.fs.modes` keeps every later write that way.
"""

from __future__ import annotations

import json
import os
import stat

from .core.config import Config, ConfigProblem, check
from .errors import BackendUnavailable, CoordError, CorruptData, InvalidInput, NotFound
from .fs import atomic_write, forget_modes, private_mode, read_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from .store.base import Violation

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

    def check_files(self) -> list[Violation]:
        """``coord doctor``'s findings about the workspace's own files: a ``config.json``
        holding a credential that others can read (kind ``credentials``, repairable)."""
        return check_config_mode(self.root)

    def repair_files(self, found: Sequence[Violation]) -> list[str]:
        """Tighten the files ``found`` (from :meth:`check_files`) names; what was done."""
        actions = []
        for v in found:
            if v.kind == "credentials" and v.file is not None:
                actions += _chmod_private(v.file)
        return actions

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
    directory: str | None = None,
    *,
    url: str | None = None,
    cwd: str | None = None,
    shared_group: str | None = None,
) -> tuple[Workspace, list[str]]:
    """Create (or complete) a workspace; idempotent. Returns it and the actions taken.
    ``shared_group`` (a group name or gid; :class:`InvalidInput` before anything is written
    when there is no such group) makes it, new or existing, one that group can share
    (:func:`share_with_group`)."""
    gid = None if shared_group is None else resolve_group(shared_group)
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
    ws = Workspace(root, config)
    if gid is not None:
        actions += share_with_group(ws, gid)
    if project is not None:
        actions.extend(ensure_gitignore(os.path.join(project, ".gitignore")))
    return ws, actions


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
    # A credential is written 0600 (0640 shared) from the temp file on: never a moment wider.
    mode = private_mode(root) if has_credential(values.get("url")) else None
    atomic_write(path, json.dumps(values, indent=2) + "\n", mode=mode)
    return Config(values)


_SECRET_KEY = ("pass", "secret", "token", "auth", "cred", "key")


def has_credential(url: object) -> bool:
    """Whether the Redis ``url`` (``redis://``, ``rediss://``, ``unix://``) carries a
    credential: user information (``:password@``, ``user:password@``, even a bare user) or a
    query parameter named like one (``password=``, ``token=`` ...). An unparsable URL counts."""
    if not isinstance(url, str) or not url:
        return False
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return True
    if "@" in parts.netloc and parts.netloc.rpartition("@")[0]:
        return True
    return any(word in key.lower() for key, _ in query for word in _SECRET_KEY)


def check_config_mode(root: str) -> list[Violation]:
    """A ``config.json`` holding a credential must be 0600 (0640 in a shared workspace): a
    ``credentials`` finding when its group (one-user workspace) or the world can read it."""
    from .store.base import Violation

    path = os.path.join(root, CONFIG_FILE)
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            return []  # reported by the store's own checks (a link, a FIFO)
        text = read_text(path)
        data = json.loads(text) if text else None
    except (OSError, CoordError, ValueError, RecursionError):
        return []  # gone, or unreadable: the config's own error says so
    if not isinstance(data, dict) or not has_credential(data.get("url")):
        return []
    allowed = private_mode(root)
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o777 & ~allowed:
        return []
    who = "everyone" if mode & 0o007 else "its group"
    return [
        Violation(
            "credentials",
            CONFIG_FILE,
            f"{path} holds a credential (in the Redis URL) and {who} can read it (mode "
            f"{mode:o}; want {allowed:o})",
            file=path,
            repairable=True,
        )
    ]


def _chmod_private(path: str) -> list[str]:
    """Give ``path`` (a config holding a credential) its private mode, never through a link."""
    mode = private_mode(os.path.dirname(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) == mode:
            return []
        os.fchmod(fd, mode)
    except OSError as exc:
        raise BackendUnavailable(f"cannot change the mode of {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    return [f"made {path} readable by its owner only (mode {mode:o}): it holds a credential"]


def resolve_group(group: str) -> int:
    """The gid of ``group`` (a group name, or a number: it need not have a name).
    :class:`InvalidInput` (exit 2) for a name with no group or a number out of range."""
    text = group.strip()
    if text.isdigit():
        gid = int(text)
        if gid >= 2**32 - 1:
            raise InvalidInput(f"--shared-group {group!r}: a gid must be below 4294967295")
        return gid
    import grp  # only ``coord init --shared-group`` needs it

    try:
        return grp.getgrnam(text).gr_gid
    except (KeyError, ValueError):
        raise InvalidInput(
            f"--shared-group {group!r}: no such group (give a group name from /etc/group "
            "or a numeric gid)",
            group=group,
        ) from None


def share_with_group(ws: Workspace, gid: int) -> list[str]:
    """Make ``ws`` a workspace its Unix group ``gid`` can share (SPEC section 16): every
    directory of the tree (and the timer directory ``.claude/`` itself) group ``gid``, mode
    02775 (setgid: new entries inherit the group); every file group ``gid``, mode 0664, or 0640
    for a ``config.json`` holding a credential. Never through a symbolic link; nothing becomes
    world-writable. Returns what it changed (nothing when already so).
    :class:`BackendUnavailable` (exit 5) when an entry cannot be changed."""
    from .fs import SHARED_DIR_MODE, SHARED_FILE_MODE, SHARED_PRIVATE_MODE

    credential = bool(config_has_credential(ws.root))
    counts = {"dir": 0, "file": 0}
    pending = [ws.root]
    extra: list[str] = []
    timer = ws.timer_dir
    if timer != ws.root:
        extra.append(timer)
        try:
            with os.scandir(timer) as entries:
                extra += [e.path for e in entries if e.name.startswith(".coordination-")]
        except OSError:
            pass
    changed_config = False
    while pending:
        directory = pending.pop()
        _share(directory, gid, SHARED_DIR_MODE, counts, "dir")
        try:
            with os.scandir(directory) as entries:
                found = list(entries)
        except OSError as exc:
            raise BackendUnavailable(f"cannot read {directory}: {exc.strerror}") from exc
        for entry in found:
            if entry.is_symlink():
                continue  # never followed; ``doctor`` reports it
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                private = credential and entry.path == os.path.join(ws.root, CONFIG_FILE)
                mode = SHARED_PRIVATE_MODE if private else SHARED_FILE_MODE
                if _share(entry.path, gid, mode, counts, "file") and private:
                    changed_config = True
    for path in extra:
        kind = "dir" if path == timer else "file"
        _share(path, gid, SHARED_DIR_MODE if kind == "dir" else SHARED_FILE_MODE, counts, kind)
    forget_modes()
    actions = []
    if counts["dir"] or counts["file"]:
        actions.append(
            f"shared {ws.root} with group {gid}: {counts['dir']} directories set to "
            f"{SHARED_DIR_MODE:o} (setgid, group-writable), {counts['file']} files to "
            f"{SHARED_FILE_MODE:o}"
            + (f" ({CONFIG_FILE} {SHARED_PRIVATE_MODE:o})" if changed_config else "")
        )
    return actions


def config_has_credential(root: str) -> bool:
    """Whether the workspace's ``config.json`` records a URL holding a credential."""
    try:
        text = read_text(os.path.join(root, CONFIG_FILE))
        data = json.loads(text) if text else None
    except (CoordError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and has_credential(data.get("url"))


def _share(path: str, gid: int, mode: int, counts: dict[str, int], kind: str) -> bool:
    """Give ``path`` group ``gid`` and ``mode`` (by descriptor: never through a link, never
    waiting on a FIFO); count it when something changed."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | (os.O_DIRECTORY if kind == "dir" else 0))
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise BackendUnavailable(f"cannot share {path}: {exc.strerror}", path=path) from exc
    try:
        st = os.fstat(fd)
        if kind == "file" and not stat.S_ISREG(st.st_mode):
            return False
        changed = False
        if st.st_gid != gid:
            os.fchown(fd, -1, gid)
            changed = True
        if stat.S_IMODE(st.st_mode) != mode or changed:  # chown may clear setgid
            os.fchmod(fd, mode)
            changed = changed or stat.S_IMODE(st.st_mode) != mode
    except OSError as exc:
        raise BackendUnavailable(
            f"cannot give {path} group {gid} and mode {mode:o}: {exc.strerror}", path=path
        ) from exc
    finally:
        os.close(fd)
    if changed:
        counts[kind] += 1
    return changed


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
