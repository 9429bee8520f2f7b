"""``coord msg send|inbox|read|ack|thread``: messages between agents (SPEC section 14).

- ``send [--from A] --to B[,C|@all] --subject S [--body TEXT | --body -] [--thread T]
  [--ack-required] [--importance low|normal|high]``: ``--from`` defaults to the acting agent
  (``COORD_AGENT``, the tool session's name: :mod:`agentcoord.sessions`); ``--body -`` reads
  stdin; ``--to`` may repeat; ``@all`` is every registered, non-retired agent but the sender.
  ``-q`` prints only the new message's id.
- ``inbox [A] [--unread] [--limit N] [--full]``: the newest N (default 20) messages to A (the
  acting agent when omitted), oldest first; with ``--unread`` the oldest N unread ones. Bodies
  are cut to 500 characters with ``... [truncated, N more characters: coord msg read ID]``
  unless ``--full``. Listing marks nothing read.
- ``read ID [--agent A]``: the whole message; marks it read for A.
- ``ack ID [--agent A]``: acknowledge it (implies read; idempotent, also when no ack is asked).
- ``thread T [--limit N] [--full]``: the newest N messages of thread T, oldest first (a message
  sent without ``--thread`` starts the thread named by its id).

``--json`` shapes (:mod:`agentcoord.shapes`): ``send``, ``read``, ``ack`` print one
:func:`~agentcoord.shapes.message_row` ``{"id", "from", "to", "subject", "thread",
"importance", "ack_required", "sent", "body"}`` (``read`` and ``ack`` add ``"read"`` and
``"acked"``); ``inbox`` prints :func:`~agentcoord.shapes.inbox_view` ``{"agent", "unread",
"ack_required", "messages", "more"}``; ``thread`` prints ``{"thread", "messages"}``. A cut body
carries ``"truncated": N``.

Exit codes: 2 bad input (names, a subject that is empty or more than one line, a body over
64 KiB or not UTF-8, importance, limits, no acting agent), 3 an unknown sender or recipient
(nothing is sent), an unknown message, or a reader that is not a registered agent, 4 reading
or acking a message that is not addressed to the agent.
"""

from __future__ import annotations

import sys

from ..errors import InvalidInput
from .base import count, dispatch

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

    from ..domain.messages import Delivered, Message
    from .base import Context, Parser
    from .main import Globals

DEFAULT_LIMIT = 20


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    return dispatch("msg", argv, g, _build, "Send and read messages between agents.")


def _build(parser: Parser) -> None:
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("send", help="send a message to agents (or @all)")
    p.add_argument("--from", dest="sender", metavar="A", help="the sender (default: you)")
    p.add_argument(
        "--to",
        action="append",
        required=True,
        metavar="B[,C]",
        help="recipients: agent names, comma-separated (may repeat), or @all",
    )
    p.add_argument("--subject", "-s", required=True, metavar="S", help="one line")
    p.add_argument("--body", "-b", metavar="TEXT", help="the text ('-': stdin); 64 KiB at most")
    p.add_argument("--thread", "-t", metavar="T", help="the thread (a name, or a message id)")
    p.add_argument("--ack-required", action="store_true", help="ask the recipients to ack it")
    p.add_argument(
        "--importance",
        choices=("low", "normal", "high"),
        default="normal",
        help="default normal",
    )
    p.set_defaults(handler=_send)

    p = sub.add_parser("inbox", help="an agent's messages (newest N, oldest first)")
    p.add_argument("agent", nargs="?", help="whose inbox (default: you)")
    p.add_argument("--unread", action="store_true", help="only messages not read yet")
    _listing(p)
    p.set_defaults(handler=_inbox)

    for name, help_text, handler in (
        ("read", "show a message in full and mark it read", _read),
        ("ack", "acknowledge a message (marks it read)", _ack),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("id", type=count("ID", minimum=1), help="the message id")
        p.add_argument("--agent", metavar="A", help="the recipient (default: you)")
        p.set_defaults(handler=handler)

    p = sub.add_parser("thread", help="the messages of a thread, oldest first")
    p.add_argument("thread", help="the thread name (or the id of its first message)")
    _listing(p)
    p.set_defaults(handler=_thread)


def _me(explicit: str | None) -> str:
    from ..sessions import agent_name

    return agent_name(explicit)


def _body(value: str | None) -> str:
    """``--body``: the text, or stdin for ``-`` (at most 64 KiB of UTF-8, checked here before
    reading more)."""
    from ..domain.messages import MAX_BODY_BYTES

    if value != "-":
        return value or ""
    stdin = sys.stdin
    if stdin is None:
        raise InvalidInput("--body -: no stdin to read the body from", field="body")
    raw = stdin.buffer.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidInput(
            f"--body -: stdin is over {MAX_BODY_BYTES:,} bytes; the limit is "
            f"{MAX_BODY_BYTES:,} bytes",
            field="body",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"--body -: stdin is not UTF-8 (byte {exc.start})") from None


def _send(ctx: Context, ns: argparse.Namespace) -> int:
    from ..core.text import shown
    from ..shapes import message_row

    sender = _me(ns.sender)
    body = _body(ns.body)
    message = ctx.coord.messages.send(
        sender,
        ns.to,
        ns.subject,
        body,
        thread=ns.thread,
        ack_required=ns.ack_required,
        importance=ns.importance,
    )
    ctx.emit(
        message_row(message),
        f"sent message {message.id} to {shown(', '.join(message.to))}",
        brief=str(message.id),
    )
    return 0


def _inbox(ctx: Context, ns: argparse.Namespace) -> int:
    from ..core.text import shown
    from ..shapes import BODY_PREVIEW, inbox_view

    agent = _me(ns.agent)
    inbox = ctx.coord.messages.inbox(agent, unread=ns.unread, limit=ns.limit)
    chars = None if ns.full else BODY_PREVIEW

    def text() -> str:
        head = f"{shown(agent)}: {inbox.unread} unread, {inbox.ack_required} awaiting an ack"
        if not inbox.items:
            return head + ("\nno unread messages" if ns.unread else "\nno messages")
        blocks = [_render(d.message, d, chars) for d in inbox.items]
        if inbox.more:
            blocks.append(f"... {inbox.more} more unread: --limit N to see more")
        return head + "\n\n" + "\n\n".join(blocks)

    ctx.emit(inbox_view(inbox, chars), text)
    return 0


def _read(ctx: Context, ns: argparse.Namespace) -> int:
    from ..shapes import message_row

    item = ctx.coord.messages.read(ns.id, _me(ns.agent))
    ctx.emit(message_row(item.message, delivered=item), lambda: _render(item.message, item, None))
    return 0


def _ack(ctx: Context, ns: argparse.Namespace) -> int:
    from ..core.text import shown
    from ..shapes import message_row

    item = ctx.coord.messages.ack(ns.id, _me(ns.agent))
    message = item.message
    ctx.emit(
        message_row(message, delivered=item),
        f"acknowledged message {message.id} from {shown(message.sender)}: {shown(message.subject)}",
    )
    return 0


def _thread(ctx: Context, ns: argparse.Namespace) -> int:
    from ..core.text import shown
    from ..shapes import BODY_PREVIEW, message_row

    messages = ctx.coord.messages.thread(ns.thread, limit=ns.limit)
    chars = None if ns.full else BODY_PREVIEW
    data: dict[str, Any] = {
        "thread": ns.thread,
        "messages": [message_row(m, chars=chars) for m in messages],
    }

    def text() -> str:
        if not messages:
            return f"no messages in thread {shown(ns.thread)}"
        return "\n\n".join(_render(m, None, chars) for m in messages)

    ctx.emit(data, text)
    return 0


def _render(message: Message, delivered: Delivered | None, chars: int | None) -> str:
    """A message for people: a header line, the subject, the (cut) body indented by four spaces
    (so no line of it can pass for a header). Agent text is shown with control characters
    escaped (SPEC 16); a body keeps its line breaks."""
    from ..core.clock import iso
    from ..core.text import shown, shown_block
    from ..shapes import truncated_body

    marks = []
    if delivered is not None and not delivered.read:
        marks.append("unread")
    if message.ack_required:
        marks.append("acked" if delivered is not None and delivered.acked else "ack required")
    if message.importance != "normal":
        marks.append(message.importance)
    head = (
        f"[{message.id}] {iso(message.sent)} {shown(message.sender)} -> "
        f"{shown(', '.join(message.to))}"
    )
    if marks:
        head += f"  ({', '.join(marks)})"
    lines = [head, f"Subject: {shown(message.subject)}"]
    if message.thread is not None:
        lines.append(f"Thread: {shown(message.thread)}")
    body, _ = truncated_body(message, chars)
    if body:
        lines += ["", *("    " + line for line in shown_block(body).split("\n"))]
    return "\n".join(lines)


def _listing(p: Any) -> None:
    """``--limit`` and ``--full``, as ``inbox`` and ``thread`` take them."""
    p.add_argument(
        "--limit",
        type=count("--limit"),
        default=DEFAULT_LIMIT,
        help=f"default {DEFAULT_LIMIT}; 0: all",
    )
    p.add_argument("--full", action="store_true", help="whole bodies, not the first 500 chars")
