"""Rendered documents (``metrics-performance.md``, seed naming "metrics-{type}.md").

A document is JSON data kept as a markdown report for people: seed-style fields and tables on top,
the data itself in a fenced json block under ``## Data``, which is what :func:`parse_document`
reads back (so a person's edit of the prose above it changes nothing). Metrics documents
(``metrics-*``) get the performance layout; any other document just its title and data.
"""

from __future__ import annotations

from ....core.clock import duration
from .text import escape_line, json_block, loads_json, parse_doc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DATA = "Data"


def render_document(name: str, data: dict[str, Any]) -> str:
    """The markdown of document ``name`` holding ``data``."""
    if name.startswith("metrics-") and _is_metrics(data):
        return _render_metrics(data)
    return "\n".join([f"# {escape_line(name)}", "", f"## {DATA}", "", json_block(data), ""])


def parse_document(text: str, path: str) -> dict[str, Any]:
    """The data of a rendered document; :class:`CorruptData` when its ``## Data`` json block is
    missing or not a JSON object."""
    doc = parse_doc(text, path)
    section = doc.section(DATA)
    block = section.fenced("json") if section is not None else None
    if block is None:
        line = section.line if section is not None else max(doc.title_line, 1)
        raise doc.corrupt(line, f"no ```json block under ## {DATA}")
    start, lines = block
    try:
        data = loads_json("\n".join(lines))
    except (ValueError, RecursionError) as exc:
        raise doc.corrupt(start, f"the json block does not parse: {exc}") from None
    if not isinstance(data, dict):
        raise doc.corrupt(start, "the json block must hold a JSON object")
    return data


def _is_metrics(data: dict[str, Any]) -> bool:
    overall = data.get("overall")
    return isinstance(overall, dict) and isinstance(data.get("agents"), dict)


def _rate(fig: dict[str, Any]) -> str:
    rate = fig.get("success_rate")
    shown = f"{rate:g}%" if isinstance(rate, (int, float)) else "N/A"
    return f"{shown} ({fig.get('succeeded', 0)}/{fig.get('finished', 0)})"


def _dur(value: Any) -> str:
    return duration(value) if isinstance(value, (int, float)) else "N/A"


def _render_metrics(data: dict[str, Any]) -> str:
    """Seed-style fields, a table per agent, and the figures as json."""
    overall = data["overall"]
    window = _dur(data.get("window"))
    lines = [
        "# Metrics: performance",
        "",
        f"**Last Updated**: {escape_line(str(data.get('generated', '-')))}",
        f"**Window**: {window} (since {escape_line(str(data.get('since', '-')))})",
        "",
        "## Overall",
        "",
        f"- **Success Rate**: {_rate(overall)}",
        f"- **Average Duration**: {_dur(overall.get('average_duration'))}",
        f"- **Total Tasks ({window})**: {overall.get('finished', 0)}",
        f"- **Failed Tasks**: {overall.get('failed', 0)}",
        f"- **In Progress**: {overall.get('in_progress', 0)}",
        f"- **Pending**: {overall.get('pending', 0)}",
        f"- **Blocked**: {overall.get('blocked', 0)}",
        f"- **Throughput**: {overall.get('throughput_per_hour', 0):g} tasks/h",
        "",
        "## Agents",
        "",
    ]
    if data["agents"]:
        lines.append(
            "| Agent | Finished | Success Rate | Failed | Average Duration | In Progress "
            "| Tasks/h |"
        )
        lines.append("| --- | --- | --- | --- | --- | --- | --- |")
        for name, fig in data["agents"].items():
            cell = escape_line(str(name)).replace("|", "\\x7c")
            lines.append(
                f"| {cell} | {fig.get('finished', 0)} | {_rate(fig)} | {fig.get('failed', 0)} "
                f"| {_dur(fig.get('average_duration'))} | {fig.get('in_progress', 0)} "
                f"| {fig.get('throughput_per_hour', 0):g} |"
            )
    else:
        lines.append("No agents.")
    lines += ["", f"## {DATA}", "", json_block(data), ""]
    return "\n".join(lines)
