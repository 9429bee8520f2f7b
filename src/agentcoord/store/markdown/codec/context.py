"""``context-{project}-{domain}.md``: the seed's "Context Sharing File Format".

::

    # Dataset Context: Project 1

    **Project**: proj-1
    **Domain**: dataset
    **Last Updated**: 2025-10-12T09:50:00Z
    **Created By**: data-engineer (task-122)

    ## Data

    ```json
    {"segments_count": 1847}
    ```

    ## Notes

    free text, escaped line by line

The json block is the only place a triple backtick appears: user text (title, creator, notes) has
any run of three backticks written as ``\\x60``, so the seed's recipe
``sed -n '/```json/,/```/p' FILE | sed '1d;$d' | jq`` always extracts exactly the data.
Notes are stored :func:`normalize_block`-ed (no leading or trailing blank lines).

Tolerant of a person's file in the seed's own shape: a missing ``## Data`` section falls back to the
first json block anywhere; other sections are kept, verbatim, at the end of the notes.
"""

from __future__ import annotations

import json
import re

from ....core.clock import iso_ms, parse_iso
from ....core.models import ContextDoc
from ....core.validate import check_name, is_valid_name
from .text import (
    Doc,
    Section,
    escape_block,
    escape_line,
    json_block,
    loads_json,
    normalize_block,
    parse_doc,
    unescape_block,
    unescape_line,
)

NONE = "-"
_RUN = re.compile(r"`(?=``)")
_JSON_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def _defuse(escaped: str) -> str:
    """An escaped line with every run of three backticks broken up (``\\x60``)."""
    if "```" not in escaped:
        return escaped
    if escaped.startswith("\\```"):  # "\x60" cannot start structure: the guard is not needed
        escaped = escaped[1:]
    return _RUN.sub(r"\\x60", escaped)


def _line(value: str) -> str:
    return _defuse(escape_line(value))


def _json(data: object) -> str:
    """:func:`json_block`, with the three line breaks ``str.splitlines`` (and editors) honour
    that JSON leaves raw written as escapes, so no reader sees a string split across lines."""
    return json_block(data).translate(_JSON_BREAKS)


def default_title(project: str, domain: str) -> str:
    return f"Context: {project}/{domain}"


def render_context(doc: ContextDoc) -> str:
    check_name(doc.project, "project")
    check_name(doc.domain, "domain")
    default = default_title(doc.project, doc.domain)
    if not doc.title:
        title = default
    elif doc.title == default:  # written so that it does not read back as "no title"
        title = "\\x43" + doc.title[1:]
    else:
        title = _line(doc.title)
    out = [f"# {title}", ""]
    out.append(f"**Project**: {doc.project}")
    out.append(f"**Domain**: {doc.domain}")
    out.append(f"**Last Updated**: {iso_ms(doc.updated_at)}")
    creator = NONE if doc.created_by is None else _line(doc.created_by)
    out.append(f"**Created By**: {creator}".rstrip())
    out.extend(("", "## Data", "", _json(doc.data)))
    text = normalize_block(doc.text)
    if text:
        out.extend(("", "## Notes", ""))
        out.extend(_defuse(line) for line in escape_block(text).split("\n"))
    out.append("")
    return "\n".join(out)


def parse_context(text: str, path: str) -> ContextDoc:
    """Parse a context file; :class:`CorruptData` names the line it cannot read."""
    doc = parse_doc(text, path)
    project, project_line = doc.field("Project", required=True) or ("", 0)
    project = project.strip()
    if not is_valid_name(project):
        raise doc.corrupt(project_line, f"invalid project name {project!r}")
    domain = _domain(doc, project)
    ctx = ContextDoc(project, domain)
    raw_title = doc.title or ""
    if raw_title != default_title(project, domain):
        ctx.title = unescape_line(raw_title)
    updated = doc.field("Last Updated")
    if updated is not None and updated[0].strip() not in ("", NONE):
        try:
            ctx.updated_at = parse_iso(updated[0])
        except ValueError:
            raise doc.corrupt(
                updated[1], f"**Last Updated** is not a timestamp: {updated[0]!r}"
            ) from None
    creator = doc.field("Created By")
    if creator is not None and creator[0].lstrip() != NONE:
        ctx.created_by = unescape_line(creator[0].lstrip())  # raw blanks are a person's typing
    ctx.data, source = _data(doc)
    notes: list[str] = []
    for section in doc.sections:
        heading = section.heading.lower()
        if heading == "notes":
            notes.insert(0, unescape_block(section.body()))
        elif heading != "data" and section is not source:
            body = "\n".join(section.body())
            notes.append(f"## {section.heading}\n\n{body}" if body else f"## {section.heading}")
    ctx.text = normalize_block("\n\n".join(n for n in notes if n))
    return ctx


def _domain(doc: Doc, project: str) -> str:
    got = doc.field("Domain")
    if got is None:
        # The seed's example has no Domain line: take it from the file name.
        name = doc.path.rsplit("/", 1)[-1]
        prefix = f"context-{project}-"
        if (
            name.startswith(prefix)
            and name.endswith(".md")
            and is_valid_name(name[len(prefix) : -3])
        ):
            return name[len(prefix) : -3]
        raise doc.corrupt(max(doc.title_line, 1), "missing field **Domain**")
    domain = got[0].strip()
    if not is_valid_name(domain):
        raise doc.corrupt(got[1], f"invalid domain name {domain!r}")
    return domain


def _data(doc: Doc) -> tuple[dict[str, object], Section | None]:
    """The json object and, when it came from a section that holds nothing else, that section
    (so the notes do not repeat it)."""
    section = doc.section("Data")
    block = section.fenced("json") if section is not None else None
    source = None
    if section is None:
        for other in doc.sections:
            block = other.fenced("json")
            if block is not None:
                body = other.body()
                if body and body[-1].strip().startswith("```") and len(body) == len(block[1]) + 2:
                    source = other
                break
    if block is None:
        if section is not None:
            raise doc.corrupt(section.line, "## Data has no ```json block")
        return {}, None
    start, lines = block
    try:
        data = loads_json("\n".join(lines)) if any(ln.strip() for ln in lines) else {}
    except json.JSONDecodeError as exc:
        raise doc.corrupt(start + exc.lineno, f"json: {exc.msg}") from None
    except ValueError as exc:
        raise doc.corrupt(start + 1, f"json: {exc}") from None
    except RecursionError:
        raise doc.corrupt(start + 1, "json: nested too deeply") from None
    if not isinstance(data, dict):
        raise doc.corrupt(start + 1, "the json block must hold an object")
    return data, source
