"""Block-level edits of a live event log, without parsing every event.

An emit appends one block to a file of up to ``keep`` (100) events, and a ``--follow`` reader
wakes up for one new block: re-parsing and re-rendering the whole log each time cost most of the
latency budget (SPEC section 8: emit -> follower p99 <= 10 ms). The format makes block edits safe:
every event block starts at a line ``## Event: ...`` (``## Message: <id>`` on the message log)
preceded by a blank line, and escaped user text can never start a line with ``#``, so splitting
on ``\\n\\n## `` is exact; a block whose heading is neither word is left to the full parser.

Each block's ``**Seq**`` line is checked on every split (cheap), so a hand-broken sequence number
is still caught; any shape this module does not recognise returns None and the caller falls back
to the full parser, which reports problems as ``path:line: reason``.
"""

from __future__ import annotations

import re
from itertools import pairwise

from ....core.clock import iso_ms
from .event import HEADINGS, event_lines

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ....core.models import Event

MARK = "\n\n## "
_STARTS = tuple(f"{word}: " for word in HEADINGS)
_SEQ_LINE = re.compile(r"[^\n]*\n\*\*Seq\*\*: (\d+)\n")
_LAST_SEQ = re.compile(r"^\*\*Last Seq\*\*:[ \t]*(\d+)[ \t]*$", re.MULTILINE)
_UPDATED = re.compile(r"^Last updated: [^\n]*$", re.MULTILINE)
_FOOTER = "\n\n_Note:"
_CONFLICT = re.compile(r"^(?:<{7}|>{7}|\|{7})(?:\s|$)|^={7}\s*$", re.MULTILINE)


class LiveBlocks:
    """A live log split into its header, raw event blocks (with their seqs) and footer."""

    __slots__ = ("blocks", "footer", "head", "last_seq", "seqs")

    def __init__(
        self, head: str, blocks: list[str], seqs: list[int], footer: str, last_seq: int
    ) -> None:
        self.head = head  # "# Title ... ---"
        self.blocks = blocks  # each "Event: type\n**Seq**: N\n...\n\n---" (or "Message: N")
        self.seqs = seqs
        self.footer = footer  # "" or "\n\n_Note: ..._"
        self.last_seq = last_seq

    @classmethod
    def split(cls, text: str) -> LiveBlocks | None:
        if _CONFLICT.search(text):  # the full parser reports it, with its line
            return None
        body = text[:-1] if text.endswith("\n") else text
        parts = body.split(MARK)
        head, blocks = parts[0], parts[1:]
        m = _LAST_SEQ.search(head)
        if m is None or not head.endswith("\n---"):
            return None
        footer = ""
        if blocks:
            cut = blocks[-1].find(_FOOTER)
            if cut >= 0:
                blocks[-1], footer = blocks[-1][:cut], blocks[-1][cut:]
        seqs = []
        for block in blocks:
            sm = _SEQ_LINE.match(block)
            if sm is None or not block.endswith("\n\n---") or not block.startswith(_STARTS):
                return None
            if block.startswith("Message: ") and block[9 : block.find("\n")] != sm.group(1):
                return None  # a message id that is not its seq: the full parser names the line
            seqs.append(int(sm.group(1)))
        if any(a >= b for a, b in pairwise(seqs)) or (seqs and seqs[-1] > int(m.group(1))):
            return None
        return cls(head, blocks, seqs, footer, int(m.group(1)))

    def mini_log(self, blocks: list[str]) -> str:
        """A file holding only ``blocks`` under this header: what the full parser reads."""
        return self.head + "".join(MARK + b for b in blocks) + "\n"

    def render(
        self, channel: str, new: list[Event], drop: int, updated: float, archive: str | None
    ) -> str:
        """The log of ``channel`` with ``new`` appended, its oldest ``drop`` blocks removed, the
        header's seq and time moved on, and the footer naming the newest archive file."""
        blocks = self.blocks + [_block(channel, e) for e in new]
        blocks = blocks[drop:]
        last = new[-1].seq if new else self.last_seq
        head = _LAST_SEQ.sub(f"**Last Seq**: {last}", self.head, count=1)
        head = _UPDATED.sub(f"Last updated: {iso_ms(updated)}", head, count=1)
        footer = self.footer
        if archive is not None:
            footer = (
                f"{_FOOTER[:2]}_Note: This log contains the last {len(blocks)} events. "
                f"Older events are in `{archive}`_"
            )
        elif footer:
            footer = re.sub(r"the last \d+ events", f"the last {len(blocks)} events", footer)
        return head + "".join(MARK + b for b in blocks) + footer + "\n"


def _block(channel: str, event: Event) -> str:
    # event_lines() starts with the blank line that MARK ("\n\n## ") already carries.
    return "\n".join(event_lines(event, channel)[1:])[len("## ") :]
