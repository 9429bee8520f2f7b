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
from .errors import (
    BackendUnavailable,
    Conflict,
    CoordError,
    CorruptData,
    InvalidInput,
    NotFound,
)
from .fs import atomic_write, forget_modes, private_mode, read_text, refuse_planted_link

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from .store.base import Violation

SUBDIR = os.path.join(".claude", "coordination")
#: In a linked git worktree's board directory: ``coord init --here`` made it a board of the
#: worktree's own (:func:`find_root`). Not tracked: the directory's .gitignore lines keep only
#: README.md and .gitkeep.
WORKTREE_BOARD = ".worktree-board"
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
    use them always sees the error.

    :class:`CorruptData` (exit 6) when the directory, or the timer directory holding it
    (``.claude/``), is a symbolic link in a directory others can write
    (:func:`agentcoord.fs.refuse_planted_link`): every command opens its workspace here."""

    __slots__ = ("_config", "root")

    def __init__(self, root: str, config: Config | None = None) -> None:
        self.root = os.path.abspath(root)
        self._config = config
        check_links(self.root)

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


def check_links(root: str) -> None:
    """Refuse a workspace directory ``root``, or the timer directory it sits in (``.claude/``
    of ``.claude/coordination``), that is a symbolic link someone else may have planted
    (:func:`agentcoord.fs.refuse_planted_link`; SPEC section 16)."""
    refuse_planted_link(root)
    if os.path.basename(root) == "coordination":
        refuse_planted_link(os.path.dirname(root))


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


def find_root(
    directory: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    start: str | None = None,
) -> str:
    """The coordination directory to use, or :class:`NotFound` with a hint to run ``coord init``.

    ``--dir``, else ``$COORD_DIR``, else the nearest ``.claude/coordination/`` at or above the
    current directory, except that in a linked git worktree the main worktree's board wins over
    the worktree's own directory unless ``coord init --here`` made that one (it holds
    :data:`WORKTREE_BOARD`): the directory's README.md and .gitkeep are committed, so every
    checkout of the branch has one (SPEC section 2). ``start``: look from there instead of the
    current directory (a hook's ``cwd``)."""
    if directory:
        return os.path.abspath(directory)
    environ = os.environ if env is None else env
    from_env = environ.get("COORD_DIR")
    if from_env:
        return os.path.abspath(from_env)
    here = os.path.abspath(start) if start is not None else os.getcwd()
    while True:
        candidate = os.path.join(here, SUBDIR)
        found = os.path.isdir(candidate)
        if found and os.path.isdir(os.path.join(here, ".git")):
            return candidate  # the usual case: a main worktree's board, no more to read
        main = worktree_main(here)  # a linked git worktree shares its main worktree's board
        shared = os.path.join(main, SUBDIR) if main is not None else None
        if found and (
            shared is None
            or not os.path.isdir(shared)
            or os.path.exists(os.path.join(candidate, WORKTREE_BOARD))
        ):
            return candidate
        if shared is not None and os.path.isdir(shared):
            # A board directory checked out with the branch (its README.md and .gitkeep are
            # committed) is not a board of this worktree's own: that takes 'init --here'.
            return shared
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    raise NotFound(
        "no coordination workspace found (looked for .claude/coordination/ in this directory "
        "and its parents, and in the main worktree of a git worktree); run 'coord init' or "
        "pass --dir",
        hint="coord init",
    )


def worktree_main(directory: str) -> str | None:
    """The top of the main worktree when ``directory`` is the top of a *linked* git worktree
    (``git worktree add``), else None (SPEC section 2: worktrees share one board).

    A linked worktree's ``.git`` is a file ``gitdir: <repo>/.git/worktrees/NAME`` whose
    directory holds ``commondir`` (the repository's own ``.git``, relative to it): the answer
    of ``git rev-parse --git-common-dir``, read without starting git (this runs on every
    command's start-up). A submodule's ``.git`` file has no ``commondir``, and a bare
    repository has no main worktree: both are None. Unreadable or odd files are None too
    (discovery goes on as if there were no worktree)."""
    dotgit = os.path.join(directory, ".git")
    try:
        if not stat.S_ISREG(os.lstat(dotgit).st_mode):
            return None  # a directory: a main worktree (or no repository)
        text = read_text(dotgit, limit=4096) or ""
        first = text.strip().splitlines()[0] if text.strip() else ""
        if not first.startswith("gitdir:"):
            return None
        gitdir = os.path.normpath(os.path.join(directory, first[len("gitdir:") :].strip()))
        common = read_text(os.path.join(gitdir, "commondir"), limit=4096)
    except (OSError, CoordError):
        return None
    if not common or not common.strip():
        return None
    common_dir = os.path.normpath(os.path.join(gitdir, common.strip()))
    if os.path.basename(common_dir) != ".git":
        return None
    return os.path.dirname(common_dir)


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
    here: bool = False,
) -> tuple[Workspace, list[str]]:
    """Create (or complete) a workspace; idempotent. Returns it and the actions taken.
    ``shared_group`` (a group name or gid; :class:`InvalidInput` before anything is written
    when there is no such group) makes it, new or existing, one that group can share
    (:func:`share_with_group`). In a linked git worktree, without ``directory`` or ``here``,
    :class:`Conflict` (exit 4): the worktrees of a repository share the main worktree's board
    (SPEC section 2), and a second one would split the team silently."""
    gid = None if shared_group is None else resolve_group(shared_group)
    actions: list[str] = []
    base = cwd or os.getcwd()
    if directory:
        root = os.path.abspath(directory)
        project = None
    else:
        project = _git_root(base) or base
        main = None if here else worktree_main(project)
        if main is not None:
            board = os.path.join(main, SUBDIR)
            state = "is" if os.path.isdir(board) else "would be"
            raise Conflict(
                f"{project} is a linked git worktree of {main}: the team's board {state} "
                f"{board}, which coord finds from every worktree; run 'coord init' in {main}, "
                "or pass --here for a separate board of this worktree's own",
                worktree=project,
                main=main,
            )
        root = os.path.join(project, SUBDIR)
    check_links(root)  # before anything is written through a planted link
    from .store.markdown.directory import Directory

    actions += Directory(root).prepare()  # the layout: README.md, .gitkeep, archive/
    if here and project is not None and worktree_main(project) is not None:
        marker = os.path.join(root, WORKTREE_BOARD)
        if not os.path.exists(marker):
            atomic_write(marker, "made by 'coord init --here': this worktree's own board\n")
            actions.append(f"wrote {marker} (this worktree has a board of its own)")
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


def has_credential(url: object) -> bool:
    """Whether the Redis ``url`` (``redis://``, ``rediss://``, ``unix://``) carries a
    credential: user information (``:password@``, ``user:password@``, even a bare user) or a
    query parameter named like one (``password=``, ``token=`` ...). An unparsable URL counts."""
    if not isinstance(url, str) or not url:
        return False
    from .core.urls import credentials_in

    # The masker's rule (SPEC 16): user information before the last "@" whatever the scheme,
    # or a parameter named like a secret; an unencoded "#" or "/" in a password included.
    return bool(credentials_in(url))


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
    who = "its owner only" if mode & 0o077 == 0 else "its owner and group only"
    return [f"made {path} readable by {who} (mode {mode:o}): it holds a credential"]


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
    """Make ``ws`` a workspace its Unix group ``gid`` can share (SPEC section 16): the
    workspace directory, its ``archive/``, ``.locks/`` and ``.state/`` (and the timer directory
    ``.claude/`` itself) group ``gid``, mode 02775 (setgid: new entries inherit the group); the
    regular files in them group ``gid``, mode 0664 (0660 for a lock, 0640 for a
    ``config.json`` holding a credential). Returns what it changed (nothing when already so)
    and what it skipped. :class:`BackendUnavailable` (exit 5) when an entry cannot be changed.

    Members of the group can write the tree while this runs (often as root), so the walk never
    uses a path below the workspace directory: each directory is opened ``O_NOFOLLOW`` relative
    to its parent's descriptor and listed through its own; each file is opened the same way
    and changed by ``fchown``/``fchmod``. A symbolic link, a FIFO, a socket, a device, a file
    with several hard links, another file system, or a directory the workspace does not make
    is skipped and reported, never followed or changed (a member swapping ``.state/`` for a
    link to ``/etc`` mid-walk gets nothing changed outside the tree)."""
    from .fs import SHARED_DIR_MODE, SHARED_FILE_MODE, SHARED_PRIVATE_MODE

    credential = bool(config_has_credential(ws.root))
    walk = _ShareWalk(gid, ws.root if credential else None)
    timer = ws.timer_dir
    if timer != ws.root:
        parent = walk.open_dir(None, timer, timer)
        try:
            walk.directory(parent, timer)
            root = walk.open_dir(parent, os.path.basename(ws.root), ws.root)
            try:
                walk.tree(root, ws.root)
            finally:
                os.close(root)
            walk.timer_files(parent, timer)
        finally:
            os.close(parent)
    else:
        root = walk.open_dir(None, ws.root, ws.root)
        try:
            walk.tree(root, ws.root)
        finally:
            os.close(root)
    forget_modes()
    actions = []
    counts = walk.counts
    if counts["dir"] or counts["file"]:
        actions.append(
            f"shared {ws.root} with group {gid}: {counts['dir']} directories set to "
            f"{SHARED_DIR_MODE:o} (setgid, group-writable), {counts['file']} files to "
            f"{SHARED_FILE_MODE:o} (locks 660)"
            + (f" ({CONFIG_FILE} {SHARED_PRIVATE_MODE:o})" if walk.changed_config else "")
        )
    if walk.skipped:
        shown = "; ".join(walk.skipped[:10])
        more = f"; and {len(walk.skipped) - 10} more" if len(walk.skipped) > 10 else ""
        actions.append(f"skipped (never followed or changed): {shown}{more}")
    return actions


#: The directories a workspace makes (``store/markdown/directory.py``): the only ones
#: :func:`share_with_group` descends into, one level deep.
LAYOUT_DIRS = ("archive", ".locks", ".state")
#: ``httpaccess.TOKEN_NAME`` (a layer above: not importable here).
_TOKEN_NAME = ".coordination-token"
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _O_NOCTTY | os.O_CLOEXEC


class _ShareWalk:
    """:func:`share_with_group`'s walk, by descriptor only (see there)."""

    __slots__ = ("changed_config", "config", "counts", "dev", "gid", "skipped")

    def __init__(self, gid: int, config_root: str | None) -> None:
        self.gid = gid
        #: The workspace whose ``config.json`` holds a credential (0640), if any.
        self.config = None if config_root is None else os.path.join(config_root, CONFIG_FILE)
        self.counts = {"dir": 0, "file": 0}
        self.skipped: list[str] = []
        self.changed_config = False
        self.dev: int | None = None

    def skip(self, path: str, why: str) -> None:
        self.skipped.append(f"{path} ({why})")

    def open_dir(self, parent: int | None, name: str, path: str) -> int:
        """``name`` (a path when ``parent`` is None) opened as a directory, never through a
        link; :class:`CorruptData` for a link or a non-directory (the workspace's own
        directories), :class:`BackendUnavailable` when it cannot be opened."""
        import errno

        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise CorruptData(path, 1, "is a symbolic link; it is never followed") from None
            if exc.errno == errno.ENOTDIR:
                raise CorruptData(path, 1, "is not a directory") from None
            raise BackendUnavailable(f"cannot share {path}: {exc.strerror}", path=path) from exc
        return fd

    def tree(self, root: int, path: str) -> None:
        """The workspace directory, its files and its layout directories' files."""
        self.dev = os.fstat(root).st_dev
        self.directory(root, path)
        for name, is_dir, is_link in self.entries(root, path):
            where = os.path.join(path, name)
            if is_link:
                self.skip(where, "a symbolic link")
            elif not is_dir:
                self.file(root, name, where)
            elif name not in LAYOUT_DIRS:
                self.skip(where, "a directory the workspace does not make")
            else:
                self.layout_dir(root, name, where)

    def layout_dir(self, parent: int, name: str, path: str) -> None:
        import errno

        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # swapped since it was listed
                self.skip(path, "no longer a directory (a symbolic link?)")
                return
            if exc.errno == errno.ENOENT:
                return
            raise BackendUnavailable(f"cannot share {path}: {exc.strerror}", path=path) from exc
        try:
            if os.fstat(fd).st_dev != self.dev:
                self.skip(path, "on another file system")
                return
            self.directory(fd, path)
            for sub, is_dir, is_link in self.entries(fd, path):
                where = os.path.join(path, sub)
                if is_link:
                    self.skip(where, "a symbolic link")
                elif is_dir:
                    self.skip(where, "a directory the workspace does not make")
                else:
                    self.file(fd, sub, where, lock=name == ".locks")
        finally:
            os.close(fd)

    def timer_files(self, parent: int, path: str) -> None:
        """The timer's ``.coordination-*`` files next to the workspace (not the MCP token:
        0600 by design, and ``coord mcp`` refuses a wider one)."""
        for name, is_dir, is_link in self.entries(parent, path):
            if not name.startswith(".coordination-") or name == _TOKEN_NAME:
                continue
            where = os.path.join(path, name)
            if is_link or is_dir:
                self.skip(where, "a symbolic link" if is_link else "a directory")
            else:
                self.file(parent, name, where, lock=name.endswith(".lock"))

    @staticmethod
    def entries(fd: int, path: str) -> list[tuple[str, bool, bool]]:
        """(name, is a directory, is a link) of each entry of the directory open at ``fd``."""
        try:
            with os.scandir(fd) as found:
                return [(e.name, e.is_dir(follow_symlinks=False), e.is_symlink()) for e in found]
        except OSError as exc:
            raise BackendUnavailable(f"cannot read {path}: {exc.strerror}", path=path) from exc

    def directory(self, fd: int, path: str) -> None:
        from .fs import SHARED_DIR_MODE

        self.change(fd, os.fstat(fd), SHARED_DIR_MODE, "dir", path)

    def file(self, parent: int, name: str, path: str, *, lock: bool = False) -> None:
        import errno

        from .fs import SHARED_FILE_MODE, SHARED_LOCK_MODE, SHARED_PRIVATE_MODE, file_kind

        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
                self.skip(path, "not a regular file")
                return
            raise BackendUnavailable(f"cannot share {path}: {exc.strerror}", path=path) from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self.skip(path, file_kind(st.st_mode))
            elif st.st_nlink != 1:
                self.skip(path, f"{st.st_nlink} hard links")
            elif st.st_dev != self.dev and self.dev is not None:
                self.skip(path, "on another file system")
            else:
                private = path == self.config
                mode = SHARED_PRIVATE_MODE if private else SHARED_LOCK_MODE if lock else None
                if self.change(fd, st, mode or SHARED_FILE_MODE, "file", path) and private:
                    self.changed_config = True
        finally:
            os.close(fd)

    def change(self, fd: int, st: os.stat_result, mode: int, kind: str, path: str) -> bool:
        """Give the entry open at ``fd`` group ``gid`` and ``mode``; count it if it changed."""
        changed = False
        try:
            if st.st_gid != self.gid:
                os.fchown(fd, -1, self.gid)
                changed = True
            if stat.S_IMODE(st.st_mode) != mode or changed:  # chown may clear setgid
                os.fchmod(fd, mode)
                changed = changed or stat.S_IMODE(st.st_mode) != mode
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot give {path} group {self.gid} and mode {mode:o}: {exc.strerror}",
                path=path,
            ) from exc
        if changed:
            self.counts[kind] += 1
        return changed


def config_has_credential(root: str) -> bool:
    """Whether the workspace's ``config.json`` records a URL holding a credential."""
    try:
        text = read_text(os.path.join(root, CONFIG_FILE))
        data = json.loads(text) if text else None
    except (CoordError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and has_credential(data.get("url"))


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


# -- repository paths of file reservations (SPEC section 13) --------------------------------
class RepoPaths:
    """Where the caller stands in its git repository: ``root`` (the top of the worktree it is
    in: a linked worktree's own top, so ``src/x.py`` names the same logical path in every
    worktree of one repository) and ``cwd`` (the current directory relative to it, ``""`` at
    the top). Outside a repository both come from ``fallback`` (the workspace's project)."""

    __slots__ = ("cwd", "root")

    def __init__(self, root: str, cwd: str) -> None:
        self.root = root
        self.cwd = cwd

    @classmethod
    def here(cls, directory: str | None = None, *, fallback: str | None = None) -> RepoPaths:
        here = os.path.realpath(directory or os.getcwd())
        top = _git_root(here)
        root = os.path.realpath(top) if top else os.path.realpath(fallback or here)
        rel = os.path.relpath(here, root)
        if rel in (".", os.pardir) or rel.startswith(os.pardir + os.sep):
            rel = ""  # the top, or (without git) a directory outside the project
        return cls(root, rel.replace(os.sep, "/"))

    def patterns(self, values: Sequence[str], *, glob: bool = True) -> list[str]:
        """``values`` (paths or globs as a user typed them) as canonical repo-relative patterns
        (:func:`agentcoord.core.paths.normalize_all`), an existing directory written as
        ``dir/**`` (it stands for its files). :class:`InvalidInput` (exit 2) for a bad one."""
        from .core.paths import is_glob, normalize_all

        out: list[str] = []
        for given in values:
            value = given
            if value.startswith("/") and not is_glob(value) and os.path.lexists(value):
                value = os.path.realpath(value)  # the repository's own spelling of the path
            (pattern,) = normalize_all([value], root=self.root, cwd=self.cwd, glob=glob)
            literal = pattern != "**" and not any(is_glob(s) for s in pattern.split("/"))
            if literal and os.path.isdir(os.path.join(self.root, pattern)):
                pattern += "/**"
            out.append(pattern)
        return list(dict.fromkeys(out))

    def staged(self) -> list[str]:
        """The paths of ``git diff --cached --name-only`` (the files a commit would touch),
        repo-relative; :class:`InvalidInput` outside a git repository."""
        import subprocess

        from .errors import InvalidInput

        try:
            out = subprocess.run(
                # --no-renames: a rename lists the old name too (it is deleted by the commit)
                ["git", "diff", "--cached", "--name-only", "--no-renames", "-z"],
                cwd=self.root,
                capture_output=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise InvalidInput(f"cannot run git: {exc}") from None
        if out.returncode != 0:
            lines = out.stderr.decode("utf-8", "replace").strip().splitlines()
            why = lines[0] if lines else "not a git repository"  # not git's whole usage text
            raise InvalidInput(f"cannot list the staged files: {why}")
        names = out.stdout.decode("utf-8", "surrogateescape").split("\0")
        return [n for n in names if n]
