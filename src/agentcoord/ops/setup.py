"""``coord setup TOOL``: write an agent tool's project config (SPEC section 12).

What each tool gets is the table :data:`TOOLS` below (one place to adjust when a tool's format
changes): the MCP server entry ``coord`` (``{"command": CMD, "args": ["mcp"]}``), the session
hooks, and the workflow section (:data:`WORKFLOW`, between :data:`BEGIN` and :data:`END`) in the
tool's notes file. ``git`` gets the pre-commit guard instead: a shell block (:func:`git_block`,
between :data:`GIT_BEGIN` and :data:`GIT_END`) in the hook file of git's hooks directory, which
the caller finds (``git rev-parse --git-path hooks``) and passes as ``paths``.

The rules, in the order a run applies them:

- **Validate everything first.** Every file the run touches is read (never through a symbolic
  link: :func:`agentcoord.fs.open_stat`) and parsed; one that does not parse, or whose keys have
  the wrong type, is :class:`CorruptData` (exit 6, ``path:line: reason``) and nothing is
  written. An existing ``coord`` server with different content is :class:`Conflict` (exit 4)
  unless ``force``.
- **Merge, never clobber.** Only our entries are added; everything else in a file stays as it
  is. A file that needs no change is not written (a second run is a no-op).
- **Remember what was there.** The manifest ``.claude/.coordination-setup.json`` (0600) records,
  per tool and file, the text before the first change (``before``; null when there was no
  file) and the SHA-256 of what setup last wrote (``after_sha256``). ``remove`` restores
  ``before`` byte for byte when the file is still what setup wrote; otherwise it takes out only
  our entries (those that were not already in ``before``) and says so. When a later run writes
  over a file the user changed since, ``after_sha256`` becomes null: a byte restore would undo
  the user's change, so ``remove`` of that file is structural.
- **Write safely.** The manifest first, then each file by :func:`agentcoord.fs.atomic_write`
  (temp file + ``os.replace``: a link planted meanwhile is replaced, never followed), keeping an
  existing file's permission bits, newline style (LF or CRLF), byte order mark and final
  newline; a new JSON file is 2-space indented with a final newline.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace

from .. import fs
from ..errors import Conflict, CorruptData, InvalidInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


@dataclass(frozen=True)
class Hook:
    """One hook: on ``event`` run ``CMD args`` (``matcher``: the tool-name pattern, if any)."""

    event: str
    args: str
    matcher: str | None = None
    name: str | None = None  # Gemini CLI shows a hook's name in its warnings and /hooks


@dataclass(frozen=True)
class Part:
    """One file a tool reads: ``kind`` is ``json``, ``toml``, ``markdown`` or ``githook`` (a
    shell script git runs: our block goes after its ``#!`` line); ``servers`` the key of its
    MCP server table; ``enable`` a list the server's name must be in; ``hooks`` go under the
    top-level ``hooks`` object, one matcher group each."""

    path: str
    kind: str
    servers: str | None = None
    enable: str | None = None
    hooks: tuple[Hook, ...] = ()


@dataclass(frozen=True)
class Tool:
    parts: tuple[Part, ...]
    hint: str


#: The pre-commit hook's usual place (relative to the main worktree's top).
GIT_HOOK = ".git/hooks/pre-commit"

#: The name of our MCP server, and the arguments after CMD that start it.
SERVER = "coord"
SERVER_ARGS = ("mcp",)

#: What each tool gets: the one table to adjust when a tool's config format changes.
TOOLS: dict[str, Tool] = {
    "claude-code": Tool(
        parts=(
            Part(".mcp.json", "json", servers="mcpServers"),
            Part(
                ".claude/settings.json",
                "json",
                enable="enabledMcpjsonServers",
                hooks=(
                    Hook("SessionStart", "session start"),
                    Hook(
                        "PreToolUse", "session guard", matcher="Edit|Write|MultiEdit|NotebookEdit"
                    ),
                    Hook("PostToolUse", "session beat", matcher="*"),
                    Hook("SessionEnd", "session end"),
                    Hook("UserPromptSubmit", "hook"),
                ),
            ),
            Part("CLAUDE.md", "markdown"),
        ),
        hint="run 'claude mcp list' to see coord connected",
    ),
    "codex": Tool(
        parts=(
            Part(".codex/config.toml", "toml", servers="mcp_servers"),
            # Codex CLI 0.171: Claude Code's hook format in .codex/hooks.json; project hooks
            # run once the project and each hook are trusted (docs/agent-tools.md).
            Part(
                ".codex/hooks.json",
                "json",
                hooks=(
                    Hook("SessionStart", "session start --tool codex"),
                    Hook("PostToolUse", "session beat --tool codex", matcher="*"),
                    Hook("SessionEnd", "session end --tool codex"),
                ),
            ),
            Part("AGENTS.md", "markdown"),
        ),
        hint="trust the project in Codex, then run 'codex mcp list' to see coord configured",
    ),
    "gemini-cli": Tool(
        parts=(
            Part(
                ".gemini/settings.json",
                "json",
                servers="mcpServers",
                hooks=(
                    Hook("SessionStart", "session start --tool gemini-cli", name="coord-start"),
                    Hook(
                        "AfterTool",
                        "session beat --tool gemini-cli",
                        matcher="*",
                        name="coord-beat",
                    ),
                    Hook("SessionEnd", "session end --tool gemini-cli", name="coord-end"),
                ),
            ),
            Part("GEMINI.md", "markdown"),
        ),
        hint="run 'gemini mcp list' to see coord connected",
    ),
    "cursor": Tool(
        parts=(
            Part(".cursor/mcp.json", "json", servers="mcpServers"),
            Part("AGENTS.md", "markdown"),
        ),
        hint="open Cursor's MCP settings to see coord enabled",
    ),
    # The path is where git's hooks directory usually is; the caller passes the one git names
    # (core.hooksPath honoured) as plan(paths=...).
    "git": Tool(
        parts=(Part(GIT_HOOK, "githook"),),
        hint="a commit touching another agent's exclusive reservation is refused now "
        "('git commit --no-verify' skips the check)",
    ),
}

BEGIN = "<!-- agentcoord:begin -->"
END = "<!-- agentcoord:end -->"

#: The workflow section for agents (between :data:`BEGIN` and :data:`END`).
WORKFLOW = """\
## Working with other agents: agentcoord

Agents in this repository coordinate through agentcoord (the `coord` command, or the `coord`
MCP server's tools). Other agents may be working here right now.

- At session start you get `coord prime` output: your tasks, ready work, the latest check-in.
- `coord whoami` shows your agent name (set per session; `COORD_AGENT` overrides it).
- Claim before you work: `coord task claim ID`, or `coord task claim` for the next ready task
  (MCP: `claim`). `coord task list --ready` shows what is free.
- Report progress as you go: `coord task progress ID --percent N --message "..."` (MCP:
  `progress`); it also renews your lease.
- Finish: `coord task complete ID --result "..."` or `coord task fail ID --error "..."`
  (MCP: `finish`).
- Stopping before it is done: `coord task release ID --reason "..."`; never leave a task
  claimed that nobody works on.
- Do not edit, complete or release tasks you do not hold.
- Reserve the files you are about to change: `coord files reserve PATH|GLOB --task ID`
  (MCP: `reserve`). An edit or commit of a file another agent has reserved is refused, naming
  the holder: work on something else, or ask them (`coord msg send --to AGENT`).
- `coord status` shows the board: agents, tasks by state, alerts.
"""

GIT_BEGIN = "# agentcoord:begin (coord setup git)"
GIT_END = "# agentcoord:end"
#: Shells whose script may take our block (the interpreter of the hook's ``#!`` line).
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"})


def git_block(command: str, nl: str = "\n") -> str:
    """The pre-commit guard: runs ``CMD files check --staged`` and refuses the commit (exit 1)
    only when that is exit 4 (another agent's exclusive reservation covers a staged file); any
    other failure is one warning line and the commit goes ahead. Safe under ``set -eu`` and
    leaves the user's script after it to run."""
    import shlex

    cmd = shlex.quote(command)
    text = f"""\
{GIT_BEGIN}
# Refuses a commit touching a file another agent has reserved (SPEC section 13);
# 'git commit --no-verify' skips this check. 'coord setup git --remove' takes it out.
agentcoord_rc=0
agentcoord_out=$({cmd} files check --staged 2>&1) || agentcoord_rc=$?
if [ "$agentcoord_rc" -eq 4 ]; then
  printf '%s\\n' "$agentcoord_out" >&2
  echo "agentcoord: commit refused: another agent has reserved these files (coord files list)." >&2
  echo "agentcoord: git commit --no-verify skips this check." >&2
  exit 1
elif [ "$agentcoord_rc" -ne 0 ]; then
  echo "agentcoord: warning: reservation check skipped (exit $agentcoord_rc:" \\
    "$(printf '%s\\n' "$agentcoord_out" | head -n 1)); committing anyway" >&2
fi
{GIT_END}"""
    return text.replace("\n", nl)


#: Where the manifest lives, relative to the root.
MANIFEST = ".claude/.coordination-setup.json"  # ignored by the lines 'coord init' adds
#: The largest file setup edits (its text goes into the manifest too).
MAX_TARGET = 1 << 20
MANIFEST_MODE = 0o600
#: A pre-commit hook setup creates.
HOOK_MODE = 0o755

CREATE, UPDATE, DELETE, UNCHANGED = "create", "update", "delete", "unchanged"


@dataclass
class FilePlan:
    """What a run does to one file: ``new`` is the text to write (None: delete the file)."""

    rel: str
    path: str
    old: str | None
    new: str | None
    mode: int | None = None
    note: str | None = None
    dirs: list[str] = field(default_factory=list)  # relative directories to create

    @property
    def action(self) -> str:
        if self.old == self.new:
            return UNCHANGED
        if self.old is None:
            return CREATE
        return DELETE if self.new is None else UPDATE

    def diff(self) -> str:
        import difflib

        if self.old == self.new:
            return ""
        out = []
        for line in difflib.unified_diff(
            _lines(self.old), _lines(self.new), f"a/{self.rel}", f"b/{self.rel}"
        ):
            out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
        return "".join(out)


def _lines(text: str | None) -> list[str]:
    return [] if text is None else text.splitlines(keepends=True)


@dataclass
class Plan:
    tool: str
    root: str
    remove: bool
    files: list[FilePlan]
    manifest: dict[str, Any]
    manifest_old: str | None  # the manifest's text now (None: there is none)
    rmdirs: list[str] = field(default_factory=list)  # after a remove: try these, deepest first

    @property
    def manifest_new(self) -> str | None:
        if not self.manifest:
            return None
        return json.dumps(self.manifest, indent=2, ensure_ascii=False) + "\n"

    def to_dict(self, dry_run: bool) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "root": self.root,
            "dry_run": dry_run,
            "remove": self.remove,
            "files": [
                {"path": f.rel, "action": f.action, "diff": f.diff(), "note": f.note}
                for f in self.files
            ],
        }


# -- planning --------------------------------------------------------------------------------
def plan(
    tool: str,
    root: str,
    command: str,
    *,
    remove: bool = False,
    force: bool = False,
    paths: Mapping[str, str] | None = None,
) -> Plan:
    """Everything a run would do, validated; nothing is written (:func:`apply` writes).
    ``root``: an absolute path to an existing directory. ``paths``: where a part's file is
    when not at its path in :data:`TOOLS` (``git``: the hook in the hooks directory git
    names), relative to ``root``, inside it (else :class:`InvalidInput`)."""
    spec = TOOLS.get(tool)
    if spec is None:
        raise InvalidInput(f"unknown tool {tool!r}; choose one of: {', '.join(TOOLS)}", tool=tool)
    if not command.strip():
        raise InvalidInput("--coord must not be empty", field="--coord")
    manifest_dirs = fs.missing_dirs(root, MANIFEST)
    manifest_old, _ = _read(root, MANIFEST)
    manifest = _load_manifest(manifest_old, _join(root, MANIFEST))
    entries: dict[str, Any] = dict(manifest.get(tool, {}))
    #: files another tool's setup also wrote (AGENTS.md: codex and cursor): kept on remove
    shared = {rel: other for other, files in manifest.items() if other != tool for rel in files}
    files: list[FilePlan] = []
    rmdirs: list[str] = []
    for listed in spec.parts:
        part = listed
        where = (paths or {}).get(listed.path, listed.path)
        if where != listed.path:
            if not _safe_rel(where):
                raise InvalidInput(f"{where}: not a path inside {root}", path=where)
            part = replace(listed, path=where)
        path = _join(root, part.path)
        dirs = fs.missing_dirs(root, part.path)
        text, mode = _read(root, part.path)
        entry = entries.get(part.path)
        if text is None and part.kind == "githook":
            mode = HOOK_MODE  # git runs only an executable hook
        fp = FilePlan(part.path, path, text, text, mode)
        files.append(fp)
        if remove:
            if entry is not None:
                rmdirs.extend(entry.get("created_dirs", []))
            if text is None:
                fp.note = "not there"
            entries.pop(part.path, None)
            if part.path in shared:
                _edit(Job(part, path, command, [command], remove=True), text)  # validate
                if text is not None:
                    fp.note = f"kept: coord setup {shared[part.path]} uses it too"
                continue
            _plan_remove(fp, part, entry, command)
            continue
        fp.new = _edit(Job(part, path, command, _commands(entry, command), force=force), text)
        if fp.new != text:
            fp.dirs = dirs
            # a hooks directory setup created stays on remove (git's own, or core.hooksPath's)
            kept = [] if part.kind == "githook" else dirs
            entries[part.path] = _entry(entry, text, fp.new, command, kept)
            if part.kind == "githook" and mode is not None and not mode & 0o100:
                fp.note = "not executable: git does not run it until you chmod +x it"
        elif entry is None and part.path in shared:  # set up by another tool: share its record
            entries[part.path] = dict(manifest[shared[part.path]][part.path])
    new_manifest = {k: v for k, v in manifest.items() if k != tool}
    if entries:
        new_manifest[tool] = entries
    changed = [f for f in files if f.new != f.old]
    if not remove and changed and manifest_old is None and manifest_dirs:
        # the manifest's own directory: taken away (when empty) by the remove of this file
        entry = new_manifest[tool][changed[0].rel]
        entry["created_dirs"] = sorted({*entry.get("created_dirs", []), *manifest_dirs})
    if remove and new_manifest:
        # the manifest stays, and so does its directory: the next remove takes it away
        held = [d for d in rmdirs if MANIFEST.startswith(d + "/")]
        rmdirs = [d for d in rmdirs if d not in held]
        if held:
            first = next(iter(next(iter(new_manifest.values())).values()))
            first["created_dirs"] = sorted({*first.get("created_dirs", []), *held})
    rmdirs = sorted(set(rmdirs), key=lambda d: (-d.count("/"), d))
    return Plan(tool, root, remove, files, new_manifest, manifest_old, rmdirs)


def _commands(entry: dict[str, Any] | None, command: str) -> list[str]:
    """The commands whose entries count as ours: this run's, and the one setup last wrote."""
    out = [command]
    if entry is not None and isinstance(entry.get("command"), str) and entry["command"] != command:
        out.append(entry["command"])
    return out


def _entry(
    entry: dict[str, Any] | None, old: str | None, new: str | None, command: str, dirs: list[str]
) -> dict[str, Any]:
    """The manifest entry after writing ``new`` over ``old``. The first ``before`` is kept; a
    byte restore stays possible only while the file held nothing but what setup wrote."""
    sha = None if new is None else _sha(new)
    if entry is None:
        out: dict[str, Any] = {"before": old, "after_sha256": sha, "command": command}
        if dirs:
            out["created_dirs"] = dirs
        return out
    out = dict(entry)
    ours = old == entry["before"] or (
        entry["after_sha256"] is not None and old is not None and _sha(old) == entry["after_sha256"]
    )
    out["after_sha256"] = sha if ours else None
    out["command"] = command
    if dirs:
        out["created_dirs"] = sorted({*entry.get("created_dirs", []), *dirs})
    return out


def _plan_remove(fp: FilePlan, part: Part, entry: dict[str, Any] | None, command: str) -> None:
    text = fp.old
    if entry is not None and text is not None and entry["after_sha256"] == _sha(text):
        fp.new = entry["before"]
        if fp.new is not None and fp.new != text:
            fp.note = "restored byte for byte as it was before setup"
        return
    if text is None:
        return
    before = entry["before"] if entry is not None else None
    commands = _commands(entry, command)
    fp.new = _edit(Job(part, fp.path, command, commands, remove=True, before=before), text)
    if fp.new != text and entry is not None:
        fp.note = "changed since setup wrote it: took out only coord's entries"
    elif fp.new != text:
        fp.note = "no record of an earlier setup here: took out coord's entries, nothing to restore"


def _join(root: str, rel: str) -> str:
    return root.rstrip("/") + "/" + rel


def _read(root: str, rel: str) -> tuple[str | None, int | None]:
    """The text of ``root/rel`` (a byte order mark kept as U+FEFF) and its permission bits, or
    (None, None). A symbolic link, a FIFO or a directory there is :class:`CorruptData`."""
    path = _join(root, rel)
    limit = fs.MAX_READ if rel == MANIFEST else MAX_TARGET
    got = fs.read_with_mode(path, what="setup target", limit=limit)
    if got is None:
        return None, None
    raw, mode = got
    try:
        return raw.decode("utf-8"), mode
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise CorruptData(path, line, f"invalid UTF-8 (byte {exc.start})") from None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- reading and validating ------------------------------------------------------------------
def _load_manifest(text: str | None, path: str) -> dict[str, Any]:
    if text is None:
        return {}
    data = _parse_json(text.removeprefix("\ufeff"), path)
    for tool, files in data.items():
        if not isinstance(files, dict):
            raise CorruptData(path, 1, f"{tool!r} is not an object")
        for rel, entry in files.items():
            ok = (
                isinstance(entry, dict)
                and isinstance(entry.get("before"), (str, type(None)))
                and isinstance(entry.get("after_sha256"), (str, type(None)))
                and isinstance(entry.get("created_dirs", []), list)
                and all(d in _CREATED_DIRS for d in entry.get("created_dirs", []))
            )
            if not ok or not _safe_rel(rel):
                raise CorruptData(path, 1, f"the entry {tool} / {rel} is not what setup writes")
    return data


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


#: The only directories setup ever creates (so the only ones a remove may take away): those of
#: the files it writes.
_CREATED_DIRS = frozenset(
    d
    for tool in TOOLS.values()
    for part in tool.parts
    if part.kind != "githook"  # git's hooks directory is never taken away
    for d in _parents(part.path)
) | frozenset(_parents(MANIFEST))


def _safe_rel(rel: object) -> bool:
    """A relative path inside the root (the manifest names nothing outside it)."""
    return (
        isinstance(rel, str)
        and bool(rel)
        and not rel.startswith("/")
        and ".." not in rel.split("/")
        and "\0" not in rel
    )


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, max(pos, 0)) + 1


def _key_line(text: str, key: str) -> int:
    pos = text.find(json.dumps(key))
    return _line(text, pos) if pos >= 0 else 1


def _parse_json(body: str, path: str) -> dict[str, Any]:
    """A JSON object; anything else (comments, duplicate keys, a list) is CorruptData."""
    if not body.strip():
        return {}

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise _Duplicate(key)
            out[key] = value
        return out

    try:
        data = json.loads(body, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        if body[exc.pos : exc.pos + 2] in ("//", "/*"):
            reason = f"comments are not allowed in JSON (column {exc.colno})"
        else:
            reason = f"invalid JSON: {exc.msg} (column {exc.colno})"
        raise CorruptData(path, exc.lineno, reason) from None
    except _Duplicate as exc:
        key = exc.args[0]
        found = [m.start() for m in re.finditer(re.escape(json.dumps(key)) + r"\s*:", body)]
        line = _line(body, found[-1]) if found else 1
        raise CorruptData(path, line, f"duplicate key {key!r}: a rewrite would lose one") from None
    except RecursionError:
        raise CorruptData(path, 1, "invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise CorruptData(path, 1, f"the top level is {_kind(data)}, not an object")
    return data


class _Duplicate(ValueError):
    pass


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _check_json(doc: dict[str, Any], part: Part, body: str, path: str) -> None:
    """The keys setup reads have the types it needs (else CorruptData naming the key)."""

    def need(ok: bool, key: str, what: str, value: object) -> None:
        if not ok:
            raise CorruptData(path, _key_line(body, key), f"{what} is {_kind(value)}")

    if part.servers and part.servers in doc:
        value = doc[part.servers]
        need(isinstance(value, dict), part.servers, f"{part.servers} is not an object: it", value)
    if part.enable and part.enable in doc:
        value = doc[part.enable]
        need(isinstance(value, list), part.enable, f"{part.enable} is not a list: it", value)
    if part.hooks and "hooks" in doc:
        hooks = doc["hooks"]
        need(isinstance(hooks, dict), "hooks", "hooks is not an object: it", hooks)
        for event in dict.fromkeys(h.event for h in part.hooks):
            if event not in hooks:
                continue
            groups = hooks[event]
            need(isinstance(groups, list), event, f"hooks.{event} is not a list: it", groups)
            for i, group in enumerate(groups):
                where = f"hooks.{event}[{i}]"
                need(isinstance(group, dict), event, f"{where} is not an object: it", group)
                inner = group.get("hooks", [])
                need(isinstance(inner, list), event, f"{where}.hooks is not a list: it", inner)
                for j, item in enumerate(inner):
                    what = f"{where}.hooks[{j}] is not an object: it"
                    need(isinstance(item, dict), event, what, item)


# -- editing ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One file's edit: add our entries for ``command`` (``commands``: every CMD whose
    entries count as ours), or take them out with ``remove`` (``before``: the file as it was
    before setup, whose entries stay)."""

    part: Part
    path: str
    command: str
    commands: list[str]
    force: bool = False
    remove: bool = False
    before: str | None = None


def _edit(job: Job, text: str | None) -> str | None:
    """``text`` with our entries added or taken out: the same text when nothing changes; None
    when a removal leaves nothing of a file that did not exist before."""
    if text is None and job.remove:
        return None
    bom = "\ufeff" if text is not None and text.startswith("\ufeff") else ""
    body = (text or "")[len(bom) :]
    edit: Callable[[Job, str, bool], str | None] = {
        "json": _edit_json,
        "toml": _edit_toml,
        "markdown": _edit_markdown,
        "githook": _edit_githook,
    }[job.part.kind]
    new = edit(job, body, text is None)
    if new is None:
        return text
    if job.remove and _empty(job.part.kind, new) and job.before is None:
        return None
    return bom + new


def _empty(kind: str, text: str) -> bool:
    stripped = text.strip()
    return (
        not stripped
        or (kind == "json" and stripped == "{}")
        or (kind == "githook" and stripped == "#!/bin/sh")
    )


def _newline(body: str) -> str:
    """The file's line ending: that of its first line (LF for a new or one-line file)."""
    at = body.find("\n")
    return "\r\n" if at > 0 and body[at - 1] == "\r" else "\n"


def _crlf(text: str, nl: str) -> str:
    return re.sub(r"(?<!\r)\n", "\r\n", text) if nl == "\r\n" else text


def _server(command: str) -> dict[str, Any]:
    return {"command": command, "args": list(SERVER_ARGS)}


def _equivalent(current: object, ours: dict[str, Any]) -> bool:
    """Whether an existing server entry starts the same server as ours: what ``claude mcp add
    coord -- coord mcp`` writes (``"type": "stdio"``, ``"env": {}``) is left as it is."""
    if not isinstance(current, dict):
        return False
    rest = {k: v for k, v in current.items() if (k, v) not in (("type", "stdio"), ("env", {}))}
    return rest == ours


def _hook_command(command: str, hook: Hook) -> str:
    import shlex

    return f"{shlex.quote(command)} {hook.args}"


def _has_command(group: Any, command: str) -> bool:
    return isinstance(group, dict) and any(
        isinstance(h, dict) and h.get("command") == command for h in group.get("hooks", [])
    )


def _edit_json(job: Job, body: str, new_file: bool) -> str | None:
    part, path = job.part, job.path
    doc = _parse_json(body, path)
    _check_json(doc, part, body, path)
    if job.remove:
        try:
            was = _parse_json((job.before or "").removeprefix("\ufeff"), path)
        except CorruptData:
            was = {}
        changed = _remove_json(doc, part, job.commands, was)
    else:
        changed = _add_json(doc, job)
    if not changed:
        return None
    return _dump_json(doc, body, new_file)


def _add_json(doc: dict[str, Any], job: Job) -> bool:
    part, path, command, commands = job.part, job.path, job.command, job.commands
    changed = False
    if part.servers:
        servers = doc.setdefault(part.servers, {})
        ours = _server(command)
        current = servers.get(SERVER)
        if current != ours and not _equivalent(current, ours):
            if SERVER in servers and not job.force and current not in map(_server, commands):
                raise Conflict(
                    f"{path}: {part.servers}.{SERVER} already exists with different content "
                    f"({json.dumps(current)[:200]}); --force replaces it",
                    path=path,
                    key=f"{part.servers}.{SERVER}",
                )
            servers[SERVER] = ours
            changed = True
    if part.enable:
        names = doc.setdefault(part.enable, [])
        if SERVER not in names:
            names.append(SERVER)
            changed = True
    if part.hooks:
        hooks = doc.setdefault("hooks", {})
        for hook in part.hooks:
            mine = _hook_command(command, hook)
            groups = hooks.setdefault(hook.event, [])
            if any(_has_command(g, mine) for g in groups):
                continue
            olds = [_hook_command(c, hook) for c in commands[1:]]
            if olds:  # the entries an earlier run wrote with another CMD
                changed |= _drop_hooks(groups, olds)
            group: dict[str, Any] = {} if hook.matcher is None else {"matcher": hook.matcher}
            entry = {"type": "command", "command": mine}
            if hook.name is not None:
                entry = {"name": hook.name, **entry}
            group["hooks"] = [entry]
            groups.append(group)
            changed = True
    return changed


def _drop_hooks(groups: list[Any], commands: list[str]) -> bool:
    """Take hooks running one of ``commands`` out of ``groups`` (a group left empty goes)."""
    changed = False
    for group in list(groups):
        if not any(_has_command(group, c) for c in commands):
            continue
        group["hooks"] = [
            h for h in group["hooks"] if not (isinstance(h, dict) and h.get("command") in commands)
        ]
        if not group["hooks"]:
            groups.remove(group)
        changed = True
    return changed


def _remove_json(doc: dict[str, Any], part: Part, commands: list[str], was: dict[str, Any]) -> bool:
    changed = False
    if part.servers and isinstance(doc.get(part.servers), dict):
        servers = doc[part.servers]
        old = was.get(part.servers)
        old = old if isinstance(old, dict) else {}
        current = servers.get(SERVER)
        if current in map(_server, commands) and old.get(SERVER) != current:
            if SERVER in old:
                servers[SERVER] = old[SERVER]  # what --force replaced
            else:
                del servers[SERVER]
            changed = True
        if not servers and part.servers not in was:
            del doc[part.servers]
            changed = True
    if part.enable and isinstance(doc.get(part.enable), list):
        names = doc[part.enable]
        old_names = was.get(part.enable)
        if SERVER in names and not (isinstance(old_names, list) and SERVER in old_names):
            names.reverse()  # the one we appended: the last
            names.remove(SERVER)
            names.reverse()
            changed = True
        if not names and part.enable not in was:
            del doc[part.enable]
            changed = True
    if part.hooks and isinstance(doc.get("hooks"), dict):
        hooks = doc["hooks"]
        old_hooks = was.get("hooks")
        old_hooks = old_hooks if isinstance(old_hooks, dict) else {}
        for hook in part.hooks:
            groups = hooks.get(hook.event)
            if not isinstance(groups, list):
                continue
            old_groups = old_hooks.get(hook.event)
            old_groups = old_groups if isinstance(old_groups, list) else []
            mine = [
                c
                for c in (_hook_command(cmd, hook) for cmd in commands)
                if not any(_has_command(g, c) for g in old_groups)
            ]
            changed |= _drop_hooks(groups, mine)
            if not groups and hook.event not in old_hooks:
                del hooks[hook.event]
                changed = True
        if not hooks and "hooks" not in was:
            del doc["hooks"]
            changed = True
    return changed


def _dump_json(doc: dict[str, Any], body: str, new_file: bool) -> str:
    """``doc`` in the style of ``body``: its indentation (or one line), separators, newline,
    ASCII escapes and final newline. A new (or empty) file: 2-space indent, final newline."""
    nl = _newline(body)
    stripped = body.strip()
    ascii_only = stripped.isascii() and "\\u" in stripped
    if new_file or not stripped:
        text = json.dumps(doc, indent=2, ensure_ascii=False)
        return text + "\n"
    if "\n" in stripped:
        indent = "  "
        for line in stripped.split("\n")[1:]:
            lead = line[: len(line) - len(line.lstrip(" \t"))]
            if lead and line.strip():
                indent = lead
                break
        key_sep = ": " if re.search(r'"\s*:[ \t]', stripped) or ":" not in stripped else ":"
        text = json.dumps(doc, indent=indent, separators=(",", key_sep), ensure_ascii=ascii_only)
    else:
        item_sep = ", " if re.search(r",[ \t]", stripped) or "," not in stripped else ","
        key_sep = ": " if re.search(r":[ \t]", stripped) or ":" not in stripped else ":"
        text = json.dumps(doc, separators=(item_sep, key_sep), ensure_ascii=ascii_only)
    lead = body[: len(body) - len(body.lstrip())]
    trail = body[len(body.rstrip()) :]
    return lead + _crlf(text, nl) + trail


def _edit_toml(job: Job, body: str, new_file: bool) -> str | None:
    part, path, command, commands = job.part, job.path, job.command, job.commands
    import tomlkit  # only here: CLI start-up time
    from tomlkit.exceptions import ParseError
    from tomlkit.items import AoT, InlineTable, Table

    def parse(text: str) -> Any:
        try:
            return tomlkit.parse(text)
        except ParseError as exc:
            raise CorruptData(path, exc.line, f"invalid TOML: {exc}") from None
        except RecursionError:
            raise CorruptData(path, 1, "invalid TOML: nested too deeply") from None

    doc = parse(body)
    key = part.servers
    assert key is not None
    servers = doc.get(key)
    if servers is not None and not isinstance(servers, (Table, InlineTable)):
        what = "an array of tables" if isinstance(servers, AoT) else "not a table"
        raise CorruptData(path, _toml_line(body, key), f"{key} is {what}")
    ours = _server(command)
    current: Any = servers.get(SERVER) if servers is not None else None
    plain: Any = current.unwrap() if hasattr(current, "unwrap") else current
    known = [_server(c) for c in commands]
    nl = _newline(body)
    if job.remove:
        try:
            was = parse((job.before or "").removeprefix("\ufeff")).unwrap()
        except CorruptData:
            was = {}
        old = was.get(key) if isinstance(was.get(key), dict) else {}
        if servers is None or plain not in known or old.get(SERVER) == plain:
            return None
        if SERVER in old:
            servers[SERVER] = old[SERVER]
        else:
            del servers[SERVER]
        if not servers and key not in was:
            del doc[key]
        text = doc.as_string()
        ends = len(body) - len(body.rstrip("\r\n"))
        if len(text) - len(text.rstrip("\r\n")) > ends:  # the blank lines tomlkit leaves
            text = text.rstrip("\r\n") + (nl if ends else "")
        return _crlf(text, nl)
    if plain == ours:
        return None
    if current is not None and not job.force and plain not in known:
        raise Conflict(
            f"{path}: {key}.{SERVER} already exists with different content "
            f"({json.dumps(plain, default=str)[:200]}); --force replaces it",
            path=path,
            key=f"{key}.{SERVER}",
        )
    if servers is None:  # appended as text: tomlkit would put blank lines around it
        fresh = tomlkit.document()
        table = tomlkit.table(is_super_table=True)
        table[SERVER] = ours
        fresh[key] = table
        sep = "" if not body or body.endswith("\n") else nl
        gap = nl if body.strip() else ""
        return _crlf(body + sep + gap + fresh.as_string(), nl)
    if isinstance(servers, InlineTable):
        item = tomlkit.inline_table()
        item.update(ours)
        servers[SERVER] = item
    else:
        table = tomlkit.table()
        table.update(ours)
        servers[SERVER] = table
    return _crlf(doc.as_string(), nl)


def _toml_line(body: str, key: str) -> int:
    m = re.search(rf"^\s*\[?\s*{re.escape(key)}\b", body, re.M)
    return _line(body, m.start()) if m else 1


def _edit_markdown(job: Job, body: str, new_file: bool) -> str | None:
    path, before = job.path, job.before
    nl = _newline(body)
    span = _find_block(body, path)
    if job.remove:
        if span is None:
            return None
        head, tail = body[: span[0]], body[span[1] :]
        if tail.startswith(nl):
            tail = tail[len(nl) :]
        elif tail.startswith("\n"):
            tail = tail[1:]
        if not tail and head.endswith(nl + nl):  # the blank line setup put before it
            head = head[: -len(nl)]
        if before is not None and _find_block(before.removeprefix("\ufeff"), path) is not None:
            return None  # the section was there before setup
        return head + tail
    block = (BEGIN + "\n" + WORKFLOW + END).replace("\n", nl)
    if span is not None:
        new = body[: span[0]] + block + body[span[1] :]
        return None if new == body else new
    if not body:
        return block + nl
    sep = "" if body.endswith("\n") else nl
    return body + sep + nl + block + nl


def _find_block(body: str, path: str, begin: str = BEGIN, end: str = END) -> tuple[int, int] | None:
    """The span of the marker block (the begin line's start to the end marker's end), None when
    there is none; CorruptData for a marker without its pair, a duplicate, or the wrong order."""
    begins: list[tuple[int, int]] = []  # (line number, offset)
    ends: list[tuple[int, int]] = []
    pos = 0
    for number, line in enumerate(body.splitlines(keepends=True), 1):
        content = line.strip()
        if content == begin:
            begins.append((number, pos))
        elif content == end:
            ends.append((number, pos + len(line.rstrip("\r\n"))))
        pos += len(line)
    if len(begins) > 1:
        raise CorruptData(
            path, begins[1][0], f"a second {begin} (the first is on line {begins[0][0]})"
        )
    if len(ends) > 1:
        raise CorruptData(path, ends[1][0], f"a second {end} (the first is on line {ends[0][0]})")
    if begins and not ends:
        raise CorruptData(path, begins[0][0], f"{begin} without {end}")
    if ends and not begins:
        raise CorruptData(path, ends[0][0], f"{end} without {begin}")
    if not begins:
        return None
    if ends[0][1] < begins[0][1]:
        raise CorruptData(path, ends[0][0], f"{end} comes before {begin}")
    return begins[0][1], ends[0][1]


def _edit_githook(job: Job, body: str, new_file: bool) -> str | None:
    """Our block in a shell hook: after its ``#!`` line (a new file gets ``#!/bin/sh``), or
    taken out again. A hook in another language is :class:`Conflict` (exit 4): a shell block
    cannot go there."""
    path, before = job.path, job.before
    nl = _newline(body)
    span = _find_block(body, path, GIT_BEGIN, GIT_END)
    if job.remove:
        if span is None:
            return None
        was = (before or "").removeprefix("\ufeff")
        if _find_block(was, path, GIT_BEGIN, GIT_END) is not None:
            return None  # the block was there before setup
        head, tail = body[: span[0]], body[span[1] :]
        if tail.startswith(nl):
            tail = tail[len(nl) :]
        elif tail.startswith("\n"):
            tail = tail[1:]
        return head + tail
    block = git_block(job.command, nl)
    if span is not None:
        new = body[: span[0]] + block + body[span[1] :]
        return None if new == body else new
    if not body:
        return "#!/bin/sh" + nl + block + nl
    if not body.startswith("#!"):
        return block + nl + body  # no interpreter line: git runs it as it did
    first, sep, rest = body.partition("\n")
    shell = _interpreter(first)
    if shell not in SHELLS:
        raise Conflict(
            f"{path}: a {shell or 'non-shell'} script, not a shell script: coord cannot add its "
            f"shell block there; make your hook run '{job.command} files check --staged' and "
            "refuse the commit when that is exit 4 (docs/agent-tools.md, 'git')",
            path=path,
        )
    return first + (sep or nl) + block + nl + rest


def _interpreter(shebang: str) -> str:
    """The program a ``#!`` line runs (``env``'s argument for ``#!/usr/bin/env bash``)."""
    words = shebang[2:].strip().split()
    if not words:
        return ""
    name = words[0].rsplit("/", 1)[-1]
    if name == "env":
        rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        name = rest[0].rsplit("/", 1)[-1] if rest else ""
    return name


# -- writing ---------------------------------------------------------------------------------
def apply(p: Plan) -> None:
    """Write what ``p`` plans: the manifest first when setting up (so ``before`` is on disk
    before anything changes), last when removing."""
    manifest_new = p.manifest_new
    if not p.remove and manifest_new != p.manifest_old:
        _write_manifest(p, manifest_new)
    for f in p.files:
        if f.new == f.old:
            continue
        if f.new is None:
            fs.remove_file(f.path)
            continue
        for rel in f.dirs:
            fs.ensure_dir(_join(p.root, rel))
        fs.atomic_write(f.path, f.new.encode("utf-8"), mode=f.mode)
    if p.remove and manifest_new != p.manifest_old:
        _write_manifest(p, manifest_new)
    for rel in p.rmdirs:  # those left with the user's files (or another tool's) stay
        fs.remove_empty_dir(_join(p.root, rel))


def _write_manifest(p: Plan, text: str | None) -> None:
    path = _join(p.root, MANIFEST)
    if text is None:
        fs.remove_file(path)
        return
    for rel in fs.missing_dirs(p.root, MANIFEST):
        fs.ensure_dir(_join(p.root, rel))
    fs.atomic_write(path, text, mode=MANIFEST_MODE)
