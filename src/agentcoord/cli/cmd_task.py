"""``coord task ...`` and ``coord reap``."""

from __future__ import annotations

from ..core.text import shown
from ..errors import InvalidInput
from ..shapes import SHOW_LOG_CHARS, SHOW_LOG_LINES
from .base import count, dispatch, integer, key_values, real, scalar, seconds, show_record
from .output import parse_fields, select, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

    from ..core.models import Task
    from .base import Context, Parser
    from .main import Globals

DEFAULT_LIMIT = 50
SEARCH_LIMIT = 20


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    if command == "reap":
        return dispatch("reap", argv, g, _build_reap, "Take back expired leases.")
    return dispatch("task", argv, g, _build, "Create, claim and update tasks.")


def _when(value: str) -> float:
    """``--eta``: an ISO timestamp (1970 to 9999), or a duration from now (``90m``, ``2h``; at
    most 100 years)."""
    from ..core.clock import parse_iso
    from ..core.validate import timestamp

    try:
        when = parse_iso(value)
    except ValueError:
        pass
    else:
        try:
            return timestamp(when, "--eta")
        except InvalidInput as exc:
            raise InvalidInput(f"{exc.message} ({value!r})", field="--eta") from None
    try:
        ahead = seconds("--eta")(value)
    except InvalidInput as exc:
        if "not a duration" in exc.message:
            raise InvalidInput(
                f"--eta {value[:40]!r}: give an ISO time or a duration like 90m", field="--eta"
            ) from None
        raise
    import time

    return time.time() + ahead


def _build(parser: Parser) -> None:
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("create", help="create a task")
    p.add_argument("title")
    p.add_argument("--id", help="task id (default: the next number)")
    p.add_argument("--project", help="the project it belongs to (a name)")
    p.add_argument(
        "--priority",
        type=integer("--priority"),
        default=0,
        help="higher is claimed first (default 0)",
    )
    p.add_argument(
        "--depends-on",
        action="append",
        default=[],
        metavar="ID",
        help="a task it waits for; repeatable, or comma-separated (a,b)",
    )
    p.add_argument("--assign", metavar="AGENT", help="reserve it for one (registered) agent")
    p.add_argument("--total", type=real("--total"), help="total steps (for --current progress)")
    p.add_argument("--unit", default="steps", help="progress unit (default steps)")
    p.add_argument("--eta", type=_when, help="ISO time or a duration from now")
    p.add_argument("--ref", action="append", default=[], metavar="LABEL=PATH", help="context ref")
    p.add_argument("--next-step", action="append", default=[], metavar="TEXT", help="repeatable")
    p.add_argument(
        "--max-attempts",
        type=count("--max-attempts", minimum=1),
        metavar="N",
        help="expired leases before it fails (default 3): attempts count leases that ran "
        "out; a 'task fail' by the holder fails it at once and counts none",
    )
    p.add_argument(
        "--lease",
        type=seconds("--lease", positive=True),
        metavar="SECONDS",
        help="lease length per claim",
    )
    p.add_argument("--by", metavar="AGENT", help="who created it")
    _described(p)
    p.set_defaults(handler=_create)

    p = sub.add_parser("claim", help="claim a task (by id, or the next ready one)")
    p.add_argument("id", nargs="?")
    p.add_argument("--agent", help="the claiming agent (registered; default: coord whoami)")
    p.add_argument(
        "--lease",
        type=seconds("--lease", positive=True),
        metavar="SECONDS",
        help="default from the task (600)",
    )
    p.add_argument("--project", help="only claim from this project")
    p.add_argument("--register", action="store_true", help="register the agent if it never was")
    p.set_defaults(handler=_claim)

    p = sub.add_parser("assign", help="reserve a task for an agent (or --auto)")
    p.add_argument("id")
    p.add_argument("agent", nargs="?")
    p.add_argument("--auto", action="store_true", help="pick the healthy, least-loaded agent")
    p.add_argument("--capability", help="with --auto: only agents that declared it")
    p.add_argument(
        "--force", action="store_true", help="reassign a task already assigned to another agent"
    )
    p.add_argument("--register", action="store_true", help="register the agent if it never was")
    p.set_defaults(handler=_assign)

    p = sub.add_parser("progress", help="report progress (renews the lease)")
    p.add_argument("id")
    p.add_argument("--agent", help="the lease holder (default: coord whoami)")
    p.add_argument("--current", type=real("--current"), help="steps done (with the total)")
    p.add_argument("--total", type=real("--total"), help="total steps (default: the task's)")
    p.add_argument("--percent", type=real("--percent"), help="0-100, instead of --current")
    p.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="merged into the task's metrics; repeatable",
    )
    p.add_argument("--message", "-m", help="a line for the task's log")
    p.add_argument("--eta", type=_when, help="ISO time or a duration from now")
    p.add_argument("--epoch", type=count("--epoch"), help="refuse if the grant is not this epoch")
    p.set_defaults(handler=_progress)

    p = sub.add_parser("log", help="append a line to the task's log")
    p.add_argument("id")
    p.add_argument("message")
    p.add_argument("--agent", help="the lease holder (default: coord whoami)")
    p.add_argument("--epoch", type=count("--epoch"), help="refuse if the grant is not this epoch")
    p.set_defaults(handler=_log)

    for name, text in (
        ("complete", "mark done"),
        ("fail", "mark failed"),
        ("release", "give back"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("id")
        p.add_argument("--agent", help="the lease holder (default: coord whoami)")
        p.add_argument(
            "--epoch", type=count("--epoch"), help="refuse if the grant is not this epoch"
        )
        if name == "complete":
            p.add_argument("--result", help="what it produced (text)")
        elif name == "fail":
            p.add_argument("--error", required=True, help="why it failed (text)")
        else:
            p.add_argument("--reason", help="why it is given back (text)")
        p.set_defaults(handler=_finish, action=name)

    p = sub.add_parser("cancel", help="withdraw an unfinished task")
    p.add_argument("id")
    p.add_argument("--reason", help="why (text)")
    p.set_defaults(handler=_cancel)

    _build_lifecycle(sub)

    p = sub.add_parser("list", help="list tasks (claim order)")
    p.add_argument("--status", action="append", help="state, or 'open' (repeatable)")
    p.add_argument("--agent", help="only tasks this agent holds or is assigned")
    p.add_argument("--project", help="only tasks of this project")
    p.add_argument(
        "--ready",
        action="store_true",
        help="only tasks a claim would take now (with --agent: that agent's claim)",
    )
    p.add_argument("--label", help="only tasks with this label")
    p.add_argument("--parent", metavar="ID", help="only the children of this task")
    p.add_argument(
        "--archived", action="store_true", help="the archived tasks instead of the live ones"
    )
    p.add_argument(
        "--limit", type=count("--limit"), default=DEFAULT_LIMIT, help=f"default {DEFAULT_LIMIT}"
    )
    p.add_argument("--fields", help="comma-separated fields to show")
    p.set_defaults(handler=_list)

    p = sub.add_parser("show", help="show one task (the newest log lines; --full for all)")
    p.add_argument("id")
    p.add_argument("--fields", help="comma-separated fields to show")
    p.add_argument(
        "--log",
        type=count("--log"),
        default=SHOW_LOG_LINES,
        metavar="N",
        help=f"newest log lines to show (default {SHOW_LOG_LINES}, each cut to "
        f"{SHOW_LOG_CHARS} characters)",
    )
    p.add_argument("--full", action="store_true", help="every log line, uncut")
    p.set_defaults(handler=_show)


def _described(p: Parser) -> None:
    """The options ``task create`` and ``task edit`` share (SPEC section 11)."""
    p.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="L",
        help="a label (a name); repeatable, or comma-separated",
    )
    p.add_argument(
        "--requires",
        action="append",
        default=[],
        metavar="CAP",
        help="a capability its claimer must have registered; repeatable, or comma-separated",
    )
    p.add_argument(
        "--parent",
        metavar="ID",
        help="its parent task: not ready (no claim takes it) and cannot complete while a "
        "child is open",
    )
    p.add_argument(
        "--description",
        metavar="TEXT",
        help="markdown ('-': read stdin); '- [ ]' items are acceptance criteria",
    )


def _build_lifecycle(sub: Any) -> None:
    """``retry``, ``reopen``, ``edit``, ``check`` and ``search`` (SPEC section 11)."""
    p = sub.add_parser("retry", help="a failed or blocked task back to pending")
    p.add_argument("id")
    p.add_argument("--reason", help="why (text, logged)")
    p.set_defaults(handler=_retry, action="retry")

    p = sub.add_parser("reopen", help="a complete or cancelled task back to pending")
    p.add_argument("id")
    p.add_argument("--reason", help="why (text, logged)")
    p.set_defaults(handler=_retry, action="reopen")

    p = sub.add_parser("edit", help="change a task's fields (its holder keeps its lease)")
    p.add_argument("id")
    p.add_argument("--title", help="a new title (one line)")
    p.add_argument("--priority", type=integer("--priority"), help="higher is claimed first")
    p.add_argument(
        "--lease",
        type=seconds("--lease", positive=True),
        metavar="SECONDS",
        help="lease length of the next grants",
    )
    p.add_argument(
        "--max-attempts",
        type=count("--max-attempts", minimum=1),
        metavar="N",
        help="expired leases before it fails (attempts count leases that ran out)",
    )
    p.add_argument("--add-dep", action="append", default=[], metavar="ID", help="a new dependency")
    p.add_argument(
        "--remove-dep", action="append", default=[], metavar="ID", help="drop a dependency"
    )
    p.add_argument("--unlabel", action="append", default=[], metavar="L", help="drop a label")
    p.add_argument(
        "--unrequire", action="append", default=[], metavar="CAP", help="drop a capability"
    )
    p.add_argument("--no-parent", action="store_true", help="it has no parent any more")
    _described(p)
    p.set_defaults(handler=_edit)

    p = sub.add_parser("check", help="tick acceptance criterion N of the description")
    p.add_argument("id")
    p.add_argument("n", type=count("N", minimum=1), metavar="N", help="1 is the first '- [ ]'")
    p.add_argument("--uncheck", action="store_true", help="clear it instead")
    p.set_defaults(handler=_check)

    p = sub.add_parser("search", help="find tasks by text (id, title, description, labels)")
    p.add_argument("text")
    p.add_argument("--label", help="only tasks with this label")
    p.add_argument("--status", action="append", help="state, or 'open' (repeatable)")
    p.add_argument("--archived", action="store_true", help="search the archived tasks")
    p.add_argument(
        "--limit", type=count("--limit"), default=SEARCH_LIMIT, help=f"default {SEARCH_LIMIT}"
    )
    p.add_argument("--fields", help="comma-separated fields to show")
    p.set_defaults(handler=_search)


def _build_reap(parser: Parser) -> None:
    parser.set_defaults(handler=_reap)


# -- output shapes ---------------------------------------------------------------------------
def _summary(ctx: Context, task: Task) -> dict[str, Any]:
    from ..shapes import task_summary

    return task_summary(task, ctx.coord.now())


def _line(task: Task, verb: str) -> str:
    """One line about ``task``: its values :func:`~agentcoord.core.text.shown` (SPEC 16)."""
    holder = f" by {shown(task.agent)}" if task.agent else ""
    return (
        f"{verb} task {shown(task.id)} ({shown(task.status)}{holder}, epoch {task.epoch}): "
        f"{shown(task.title)}"
    )


# -- handlers ----------------------------------------------------------------------------------
def _create(ctx: Context, ns: argparse.Namespace) -> int:
    refs = key_values(ns.ref, "--ref LABEL=PATH")
    task = ctx.coord.tasks.create(
        ns.title,
        id=ns.id,
        project=ns.project,
        priority=ns.priority,
        depends_on=[d for item in ns.depends_on for d in item.split(",")],
        assign=ns.assign,
        total=ns.total,
        unit=ns.unit,
        eta=ns.eta,
        context_refs=refs,
        next_steps=ns.next_step,
        max_attempts=ns.max_attempts,
        lease_seconds=ns.lease,
        created_by=ns.by,
        labels=_split(ns.label),
        requires=_split(ns.requires),
        parent=ns.parent,
        description=_stdin_or(ns.description),
    )
    ctx.emit(_summary(ctx, task), _line(task, "created"), brief=task.id)
    return 0


def _split(items: list[str]) -> list[str]:
    """A repeatable option's values, each maybe comma-separated (``--label a,b``)."""
    return [v.strip() for item in items for v in item.split(",") if v.strip()]


def _stdin_or(value: str | None) -> str | None:
    """``-`` reads the text from stdin (a description of many lines)."""
    if value != "-":
        return value
    import sys

    return sys.stdin.read()


def _retry(ctx: Context, ns: argparse.Namespace) -> int:
    board = ctx.coord.tasks
    if ns.action == "retry":
        task = board.retry(ns.id, reason=ns.reason)
    else:
        task = board.reopen(ns.id, reason=ns.reason)
    verb = "retried" if ns.action == "retry" else "reopened"
    ctx.emit(_summary(ctx, task), _line(task, verb), brief=task.id)
    return 0


def _edit(ctx: Context, ns: argparse.Namespace) -> int:
    if ns.no_parent and ns.parent is not None:
        raise InvalidInput("coord task edit: give --parent ID or --no-parent, not both")
    task = ctx.coord.tasks.edit(
        ns.id,
        title=ns.title,
        priority=ns.priority,
        lease_seconds=ns.lease,
        max_attempts=ns.max_attempts,
        add_deps=_split(ns.add_dep),
        remove_deps=_split(ns.remove_dep),
        labels=_split(ns.label),
        unlabel=_split(ns.unlabel),
        requires=_split(ns.requires),
        unrequire=_split(ns.unrequire),
        parent="" if ns.no_parent else ns.parent,
        description=_stdin_or(ns.description),
    )
    ctx.emit(_summary(ctx, task), _line(task, "edited"), brief=task.id)
    return 0


def _check(ctx: Context, ns: argparse.Namespace) -> int:
    from ..core.checklist import items

    task = ctx.coord.tasks.check(ns.id, ns.n, checked=not ns.uncheck)
    found = items(task.description)
    done, what = found[ns.n - 1]
    row = _summary(ctx, task)
    row["criterion"] = {"n": ns.n, "done": done, "text": what}
    row["criteria_done"] = sum(1 for d, _ in found if d)
    row["criteria_total"] = len(found)
    mark = "x" if done else " "
    text = (
        f"task {shown(task.id)}: [{mark}] {ns.n}. {shown(what)} "
        f"({row['criteria_done']}/{len(found)} done)"
    )
    ctx.emit(row, text, brief=task.id)
    return 0


def _row(
    ctx: Context, task: Task, fields: list[str] | None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A listing's row of ``task`` (``task list``, ``task search``): its summary, ``extra``,
    and any ``--fields`` the summary lacks, taken from what ``task show`` has."""
    row = {**_summary(ctx, task), **(extra or {})}
    if fields and any(f not in row for f in fields):
        _add_shown(row, task, fields, ctx.coord.now())
    return row


def _search(ctx: Context, ns: argparse.Namespace) -> int:
    found, total = ctx.coord.tasks.search(
        ns.text, label=ns.label, status=ns.status, archived=ns.archived, limit=ns.limit or None
    )
    if len(found) < total:
        ctx.warn(f"showing {len(found)} of {total} matches; use --limit to see more")
    fields = parse_fields(ns.fields, _list_fields())
    rows = select([_row(ctx, task, fields) for task in found], fields)

    def text() -> str:
        if not rows:
            return "no tasks match"
        return table(rows, fields or ["id", "status", "agent", "priority", "title"])

    ctx.emit(rows, text)
    return 0


def _me(ctx: Context, ns: argparse.Namespace) -> str:
    """The acting agent: ``--agent``, else ``COORD_AGENT``, else the tool session's own name
    (:mod:`agentcoord.sessions`); exit 2 when nothing names one. Inside an agent tool's session
    (its token known) a name another live session holds is exit 4, not shared."""
    from ..core.validate import check_name
    from ..sessions import require

    if ns.agent is not None:
        return check_name(ns.agent, "agent name")
    ident = require()
    if ident.token is not None:
        ctx.coord.agents.check_session(ident.name, ident.token)
    return ident.name


def _claim(ctx: Context, ns: argparse.Namespace) -> int:
    task = ctx.coord.tasks.claim(
        ns.id, agent=_me(ctx, ns), lease_seconds=ns.lease, project=ns.project, register=ns.register
    )
    ctx.emit(_summary(ctx, task), _line(task, "claimed"), brief=task.id)
    return 0


def _assign(ctx: Context, ns: argparse.Namespace) -> int:
    if ns.auto == (ns.agent is not None):
        raise InvalidInput("coord task assign: give an AGENT or --auto (not both)")
    if ns.capability and not ns.auto:
        raise InvalidInput("coord task assign: --capability only applies with --auto")
    if ns.register and ns.auto:
        raise InvalidInput(
            "coord task assign: --register goes with an AGENT (--auto picks a registered one)"
        )
    if ns.auto:
        task = ctx.coord.tasks.assign_auto(ns.id, capability=ns.capability, force=ns.force)
    else:
        task = ctx.coord.tasks.assign(ns.id, ns.agent, register=ns.register, force=ns.force)
    text = (
        f"assigned task {shown(task.id)} to {shown(task.agent or '-')} (epoch {task.epoch}): "
        f"{shown(task.title)}"
    )
    ctx.emit(_summary(ctx, task), text, brief=task.agent)
    return 0


def _progress(ctx: Context, ns: argparse.Namespace) -> int:
    metrics = {k: scalar(v) for k, v in key_values(ns.metric, "--metric")}
    task = ctx.coord.tasks.progress(
        ns.id,
        agent=_me(ctx, ns),
        current=ns.current,
        total=ns.total,
        percent=ns.percent,
        metrics=metrics or None,
        message=ns.message,
        eta=ns.eta,
        epoch=ns.epoch,
    )
    pct = task.progress_percent()
    pct_text = f"{pct:.0f}%" if pct is not None else "-"
    ctx.emit(_summary(ctx, task), f"task {shown(task.id)}: {pct_text}")
    return 0


def _log(ctx: Context, ns: argparse.Namespace) -> int:
    task = ctx.coord.tasks.log(ns.id, ns.message, agent=_me(ctx, ns), epoch=ns.epoch)
    ctx.emit(_summary(ctx, task), f"task {shown(task.id)}: logged")
    return 0


def _finish(ctx: Context, ns: argparse.Namespace) -> int:
    tasks = ctx.coord.tasks
    me = _me(ctx, ns)
    if ns.action == "complete":
        task = tasks.complete(ns.id, agent=me, result=ns.result, epoch=ns.epoch)
    elif ns.action == "fail":
        task = tasks.fail(ns.id, agent=me, error=ns.error, epoch=ns.epoch)
    else:
        task = tasks.release(ns.id, agent=me, reason=ns.reason, epoch=ns.epoch)
    verb = {"complete": "completed", "fail": "failed", "release": "released"}[ns.action]
    ctx.emit(_summary(ctx, task), _line(task, verb))
    return 0


def _cancel(ctx: Context, ns: argparse.Namespace) -> int:
    task = ctx.coord.tasks.cancel(ns.id, reason=ns.reason)
    ctx.emit(_summary(ctx, task), _line(task, "cancelled"))
    return 0


def _list(ctx: Context, ns: argparse.Namespace) -> int:
    from ..errors import CorruptData

    errors: list[CorruptData] = []
    board = ctx.coord.tasks
    if ns.archived:
        if ns.ready:
            raise InvalidInput("coord task list: --ready does not apply to --archived tasks")
        every = board.archived(
            status=ns.status,
            agent=ns.agent,
            project=ns.project,
            label=ns.label,
            parent=ns.parent,
            errors=errors,
        )
        heads: list[Any] = every
        selected: list[Any] = every[: ns.limit] if ns.limit else every
        loaded = selected
    else:
        heads = board.heads(
            status=ns.status,
            agent=ns.agent,
            project=ns.project,
            ready=True if ns.ready else None,
            errors=errors,
            label=ns.label,
            parent=ns.parent,
        )
        selected = heads[: ns.limit] if ns.limit else heads
        loaded = board.load(selected, errors=errors)
    for err in errors:
        ctx.warn(f"skipped unreadable file: {err.message}")
    if len(selected) < len(heads):
        ctx.warn(f"showing {len(selected)} of {len(heads)} tasks; use --limit to see more")
    fields = parse_fields(ns.fields, _list_fields())
    if ns.archived:
        ready: dict[str, bool] = {}
    elif ns.ready:
        ready = {h.id: True for h in selected}
    else:
        ready = board.readiness(selected, agent=ns.agent)
    full = []
    for task in loaded:
        extra: dict[str, Any] = {"archived": True} if ns.archived else {}
        if task.id in ready:
            extra["ready"] = ready[task.id]
        full.append(_row(ctx, task, fields, extra))
    rows = select(full, fields)

    def text() -> str:
        if not rows:
            return "no tasks"
        cols = fields or ["id", "status", "agent", "priority", "percent", "title"]
        shown_rows = [
            {**r, "status": _state(r)} if "status" in r and "ready" in r else r for r in rows
        ]
        return table(shown_rows, cols)

    ctx.emit(rows, text)
    return 0


def _list_fields() -> list[str]:
    """What ``task list --fields`` may name: the summary's keys, ``ready``, and every field of
    ``task show`` (the same value there and here)."""
    from ..core.models import Task
    from ..shapes import TASK_SUMMARY_FIELDS, task_full

    return [*TASK_SUMMARY_FIELDS, "ready", "archived", *task_full(Task("x", "x"), 0.0)]


def _add_shown(row: dict[str, Any], task: Task, fields: list[str], now: float) -> None:
    """Fill ``row`` with the ``fields`` the summary leaves out, as ``task show`` has them."""
    from ..shapes import task_full

    full = task_full(task, now)
    for f in fields:
        if f not in row and f in full:
            row[f] = full[f]


def _state(row: dict[str, Any]) -> str:
    """A pending task as the dashboard shows it: ready (a claim takes it now) or waiting."""
    if row["status"] == "pending":
        return "ready" if row["ready"] else "waiting"
    return str(row["status"])


def _show(ctx: Context, ns: argparse.Namespace) -> int:
    from ..shapes import Bounded, task_shown
    from ..store.markdown.codec.task import render_task

    task, archive = ctx.coord.tasks.show(ns.id)
    if archive is not None:
        ctx.warn(f"task {shown(task.id)} is archived (as {shown(archive)}); it is read only")
    now = ctx.coord.now()
    if ns.full:
        bounded = Bounded(task, lines=None, chars=None)
    else:
        bounded = Bounded(task, lines=ns.log, chars=SHOW_LOG_CHARS)

    def text() -> str:
        out = render_task(bounded.task, now)
        note = bounded.note()
        return out + (f"\n_({note}; --full shows everything)_" if note else "")

    data = task_shown(bounded, now)
    data["archived"] = archive is not None
    return show_record(ctx, data, ns.fields, text)


def _reap(ctx: Context, ns: argparse.Namespace) -> int:
    changed = ctx.coord.tasks.reap()
    rows = [_summary(ctx, t) for t in changed]

    def text() -> str:
        if not rows:
            return "no expired leases"
        return "\n".join(
            f"task {t.id}: lease expired -> {t.status} (attempt {t.attempts}/{t.max_attempts})"
            for t in changed
        )

    ctx.emit(rows, text)
    return 0
