"""Shared context documents: a validated JSON object plus optional title and free text.

One document per ``(project, domain)`` (``context-{project}-{domain}.md`` on markdown, the seed's
"Context Sharing File Format"). ``put`` replaces the document atomically. Input is checked before
anything is stored: names, JSON syntax (the error names line and column), that the data is an
object, no ``NaN``/``Infinity`` (not JSON, and ``jq`` rejects them), and a size limit (config
``context_max_bytes``, default 256 KiB) that counts the data, the title and the text.
"""

from __future__ import annotations

import json

from ..core.validate import MAX_TITLE, check_name, encodable, json_data, one_line
from ..errors import InvalidInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..core.config import Config
    from ..core.models import ContextDoc
    from ..errors import CorruptData
    from ..store.base import Store

MAX_CREATOR = 200
#: Raw JSON text longer than this many times the limit is refused before it is parsed
#: (pretty-printed JSON may legitimately be larger than its compact form, but not by this much).
RAW_FACTOR = 4


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str, *, source: str = "input") -> dict[str, Any]:
    """Parse a JSON object; :class:`InvalidInput` names the line and column of a syntax error."""
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"invalid JSON in {source} at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            line=exc.lineno,
            column=exc.colno,
        ) from None
    except ValueError as exc:  # NaN / Infinity
        raise InvalidInput(f"invalid JSON in {source}: {exc}") from None
    except RecursionError:
        raise InvalidInput(f"invalid JSON in {source}: nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"context data must be a JSON object ({{...}}), not {_json_kind(data)}")
    return data


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return "a literal"
    return "a number"


def _one_line(value: str | None, what: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text")
    if not value.strip():
        return ""
    # SPEC 16: one line, no control characters (line breaks, tab, DEL, C1, U+2028/U+2029).
    return one_line(value, what, limit)


class Contexts:
    """The context operations (``coord.contexts``), over a :class:`~agentcoord.store.base.Store`."""

    def __init__(self, store: Store, config: Config, clock: Callable[[], float]) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    @property
    def max_bytes(self) -> int:
        value = self.config.get("context_max_bytes", 256 * 1024)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInput(f"config context_max_bytes must be a whole number >= 1: {value!r}")
        return value

    def _too_big(self, size: int, what: str) -> InvalidInput:
        limit = self.max_bytes
        return InvalidInput(
            f"{what} is {size:,} bytes; the limit is {limit:,} bytes (config context_max_bytes): "
            "store large data in a file and put its path in the context",
            size=size,
            limit=limit,
        )

    def put(
        self,
        project: str,
        domain: str,
        data: dict[str, Any] | str,
        *,
        title: str | None = None,
        text: str | None = None,
        created_by: str | None = None,
        source: str = "input",
    ) -> ContextDoc:
        """Validate and store (replace) the document; returns what was stored."""
        from ..core.models import ContextDoc

        check_name(project, "project")
        check_name(domain, "domain")
        limit = self.max_bytes
        if isinstance(data, str):
            raw = len(data.encode("utf-8", "surrogatepass"))
            if raw > RAW_FACTOR * limit:
                raise self._too_big(raw, f"the JSON in {source}")
            data = parse_json(data, source=source)
        elif not isinstance(data, dict):
            raise InvalidInput("context data must be a JSON object (a dict)")
        compact = json_data(data, "context data")
        clean_title = _one_line(title, "title", MAX_TITLE)
        creator = _one_line(created_by, "created by", MAX_CREATOR) or None
        notes = text or ""
        if not isinstance(notes, str):
            raise InvalidInput("text must be text")
        for value, what in ((clean_title, "title"), (creator, "created by"), (notes, "text")):
            if value:
                encodable(value, what)
        size = sum(len(s.encode("utf-8", "surrogatepass")) for s in (compact, clean_title, notes))
        if size > limit:
            raise self._too_big(size, f"context {project}/{domain}")
        doc = ContextDoc(
            project,
            domain,
            data=data,
            title=clean_title,
            text=notes,
            updated_at=self.clock(),
            created_by=creator,
        )
        self.store.put_context(doc)
        return doc

    def get(self, project: str, domain: str) -> ContextDoc:
        return self.store.get_context(check_name(project, "project"), check_name(domain, "domain"))

    def list(
        self, *, project: str | None = None, errors: list[CorruptData] | None = None
    ) -> list[ContextDoc]:
        """Every document (optionally one project's), by project and domain."""
        if project is not None:
            check_name(project, "project")
        docs = [
            d
            for d in self.store.list_contexts(errors=errors)
            if project is None or d.project == project
        ]
        docs.sort(key=lambda d: (d.project, d.domain))
        return docs
