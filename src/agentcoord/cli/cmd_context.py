"""``coord context put|get|list``: shared context documents (a JSON object plus free text).

``put`` reads the JSON from ``--file F`` or, by default, stdin. ``get`` prints only the JSON
object (pretty; one line under ``--json``) so that ``coord context get P D | jq .key`` works;
``get --full`` prints the whole document. ``--json`` shapes: ``put`` and each ``list`` row:
``{"project", "domain", "title", "updated", "created_by", "keys", "bytes"}``.

Exit codes: 2 bad input (names, invalid JSON with its line and column, not an object, over the
size limit, unreadable --file), 3 no such context, 4 the file name is taken by another
project/domain pair (``a-b``/``c`` vs ``a``/``b-c``), 6 the context file does not parse.
"""

from __future__ import annotations

import sys

from ..errors import InvalidInput
from .base import count, dispatch
from .output import dumps, parse_fields, select, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import IO

    from .base import Context, Parser
    from .main import Globals

DEFAULT_LIMIT = 50


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    return dispatch("context", argv, g, _build, "Share structured context between agents.")


def _build(parser: Parser) -> None:
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("put", help="store a JSON object (stdin, or --file) as PROJECT/DOMAIN")
    p.add_argument("project")
    p.add_argument("domain")
    p.add_argument("--file", "-f", metavar="F", help="read the JSON from F ('-': stdin)")
    p.add_argument("--title", metavar="T", help="a one-line title for people")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--text", metavar="T", help="free text (notes) stored with the data")
    group.add_argument("--text-file", metavar="F", help="read the free text from F")
    p.add_argument("--by", metavar="AGENT", help="who created it")
    p.set_defaults(handler=_put)

    p = sub.add_parser("get", help="print the JSON object (for jq)")
    p.add_argument("project")
    p.add_argument("domain")
    p.add_argument("--full", action="store_true", help="the whole document, not only the JSON")
    p.set_defaults(handler=_get)

    p = sub.add_parser("list", help="list context documents")
    p.add_argument("--project", help="only this project's documents")
    p.add_argument(
        "--limit", type=count("--limit"), default=DEFAULT_LIMIT, help=f"default {DEFAULT_LIMIT}"
    )
    p.add_argument("--fields", help="comma-separated fields to show")
    p.set_defaults(handler=_list)


def _read(stream: IO[bytes], cap: int, source: str, limit: int) -> str:
    raw = stream.read(cap + 1)
    if len(raw) > cap:
        raise InvalidInput(
            f"{source} is over {cap:,} bytes; the limit is {limit:,} bytes "
            "(config context_max_bytes)",
            limit=limit,
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{source} is not UTF-8 (byte {exc.start})") from None


def _read_source(path: str | None, cap: int, limit: int, what: str) -> tuple[str, str]:
    """The text of ``path`` (``-`` or None: stdin) and its name for messages."""
    if path is None or path == "-":
        stdin = sys.stdin
        if stdin is None or (path is None and stdin.isatty()):
            raise InvalidInput(f"give the {what} on stdin (a pipe) or with --file F")
        return _read(stdin.buffer, cap, "stdin", limit), "stdin"
    try:
        with open(path, "rb") as fh:
            return _read(fh, cap, path, limit), path
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}", path=path) from None


def _put(ctx: Context, ns: argparse.Namespace) -> int:
    from ..core.validate import encodable
    from ..domain.contexts import RAW_FACTOR
    from ..shapes import context_row

    for value, flag in ((ns.title, "--title"), (ns.text, "--text"), (ns.by, "--by")):
        if value is not None:
            encodable(value, flag)
    contexts = ctx.coord.contexts
    limit = contexts.max_bytes
    cap = RAW_FACTOR * limit
    if ns.file is None and ns.text_file == "-":
        raise InvalidInput("stdin cannot carry both the JSON and --text-file: give --file F")
    text, source = _read_source(ns.file, cap, limit, "JSON")
    notes = ns.text
    if ns.text_file is not None:
        notes, _ = _read_source(ns.text_file, limit, limit, "text")
    doc = contexts.put(
        ns.project,
        ns.domain,
        text,
        title=ns.title,
        text=notes,
        created_by=ns.by,
        source=source,
    )
    row = context_row(doc)
    ctx.emit(row, f"stored context {doc.project}/{doc.domain} ({row['bytes']} bytes)")
    return 0


def _get(ctx: Context, ns: argparse.Namespace) -> int:
    import json

    from ..core.text import json_safe

    doc = ctx.coord.contexts.get(ns.project, ns.domain)
    if ns.full:
        from ..shapes import context_full

        data = context_full(doc)
    else:
        data = doc.data
    if ctx.json:
        sys.stdout.write(dumps(data) + "\n")
    elif not ctx.quiet:
        # Still the exact JSON, with control, bidi and format characters as \\u escapes (SPEC 16).
        sys.stdout.write(json_safe(json.dumps(data, indent=2, ensure_ascii=False)) + "\n")
    return 0


def _list(ctx: Context, ns: argparse.Namespace) -> int:
    from ..errors import CorruptData
    from ..shapes import context_row

    errors: list[CorruptData] = []
    docs = ctx.coord.contexts.list(project=ns.project, errors=errors)
    for err in errors:
        ctx.warn(f"skipped unreadable file: {err.message}")
    shown = docs[: ns.limit] if ns.limit else docs
    if len(shown) < len(docs):
        ctx.warn(f"showing {len(shown)} of {len(docs)} contexts; use --limit to see more")
    from ..core.models import ContextDoc

    fields = parse_fields(ns.fields, context_row(ContextDoc("p", "d")))
    rows = select((context_row(d) for d in shown), fields)

    def text() -> str:
        if not rows:
            return "no context documents"
        return table(rows, fields or ["project", "domain", "keys", "updated", "title"])

    ctx.emit(rows, text)
    return 0
