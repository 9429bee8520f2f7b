"""Messages between agents (SPEC section 14, issue 18): send, inbox, read, ack, thread, counts.

Design: messages are built on the event channels of the store (no new storage interface), so
they inherit what channels already guarantee on every backend: store-assigned sequence numbers
that never repeat (also across rotation), rotation into the archive without loss, reads by seq
that bisect the archive, forward-only consumer cursors, migration, ``doctor`` and ``clear``.

- **The message log** :data:`LOG_CHANNEL` (``msg.log``; markdown: ``events-msg.log.md`` and
  ``archive/events-msg.log-{DATE}.md``) holds every message exactly once, as an event of type
  ``message``. Its seq **is the message id**: one workspace-wide counter, assigned atomically
  with the append, so ids are unique, increasing in send order and consistent with every
  mailbox's order even when many processes send at once. Fields, in this order::

      ## Message: 12                   <- markdown: the message log heads blocks by id
      **Seq**: 12                      <- the message id
      **Time**: 2025-10-12T14:30:00.123Z   <- when it was sent
      **From**: alice
      **To**: bob, carol               <- @all is expanded at send time
      **Subject**: build is red
      **Thread**: build-42             <- only when given; else the thread is the id itself
      **Importance**: high
      **Ack Required**: yes
      **Body**: line one\\nline two      <- escaped by the codec: one line, cannot forge

  (Logs written before the ``## Message:`` heading hold ``## Event: message`` blocks; both
  read.) ``grep -c '^## Message:' events-msg.log.md`` counts the live messages;
  ``grep -A9 '^## Message: 12$' events-msg.log.md`` shows one.
- **A mailbox** is the log filtered by recipient: a message is delivered to each name in its
  ``To`` line, in id order. There is no second copy to get out of step, so "delivered once, in
  order, never lost across rotation" is the log's own guarantee.
- **Read and ack state** is per recipient, in its receipts channel :func:`receipts_channel`
  (``msg.receipts.{agent}``): append-only events ``read`` / ``ack`` with a ``**Message**: ID``
  field. Both are monotonic (nothing is ever unread), so a repeat is harmless. An ack implies
  read.
- **Checkpoints keep reads small.** A message is *settled* for its recipient when it is read
  and, if it asks for one, acked. The recipient's cursor on ``msg.log`` (consumer = the agent's
  name) is a seq below which every message to it is settled; when every message is settled the
  receipts channel's cursor ``settled`` moves to the last receipt read as well. A state read
  then parses only the messages after the first unsettled one and the receipts after the last
  full checkpoint. The receipts are read *before* the log, so every receipt it saw is about a
  message it also saw; the log cursor moves before the receipts cursor, so a crash in between
  only costs a re-read.

Channels whose name starts with :data:`RESERVED_PREFIX` are written only here
(:meth:`~agentcoord.domain.events.Events.emit` refuses them), so ``coord event emit`` cannot
forge a message or a receipt; they can still be read (``coord event tail msg.log --follow``).

Errors: :class:`InvalidInput` (exit 2) for bad names, subjects, bodies, importance and limits;
:class:`NotFound` (exit 3) for an unknown recipient (nothing is sent) or message id;
:class:`Conflict` (exit 4) when an agent reads or acks a message not addressed to it.
"""

from __future__ import annotations

from ..core.models import Event
from ..core.validate import check_name, normalize_block, one_line, whole
from ..errors import Conflict, InvalidInput, NotFound
from .events import RESERVED_PREFIX as _RESERVED
from .events import keep_events

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from ..core.config import Config
    from ..store.base import Store

#: Channels of messages and receipts: refused by ``Events.emit`` (one definition, there).
RESERVED_PREFIX = _RESERVED
#: The channel holding every message once; its seq is the message id.
LOG_CHANNEL = "msg.log"
#: The consumer name of a receipts channel's checkpoint cursor.
SETTLED = "settled"
#: Event types.
MESSAGE_TYPE = "message"
READ_TYPE = "read"
ACK_TYPE = "ack"
#: Importance levels, lowest first.
IMPORTANCE = ("low", "normal", "high")
#: ``--to @all``: every registered, non-retired agent at send time except the sender.
ALL = "@all"
#: Bounds: a body of at most 64 KiB of UTF-8, a one-line subject of at most 200 characters.
MAX_BODY_BYTES = 64 * 1024
MAX_SUBJECT = 200
#: Default number of messages an inbox or thread listing returns.
DEFAULT_LIMIT = 20
#: Messages read per step when looking backwards through the log for the newest ones.
_WINDOW = 200

_FROM, _TO, _SUBJECT, _THREAD = "From", "To", "Subject", "Thread"
_IMPORTANCE, _ACK, _BODY, _MESSAGE = "Importance", "Ack Required", "Body", "Message"


def receipts_channel(agent: str) -> str:
    """The channel of ``agent``'s read and ack receipts: ``msg.receipts.{agent}``, or, for a
    name too long for a channel (64 characters), its first 34 characters and a SHA-1 digest."""
    check_name(agent, "agent name")
    channel = f"{RESERVED_PREFIX}receipts.{agent}"
    if len(channel) <= 64:
        return channel
    import hashlib

    digest = hashlib.sha1(agent.encode()).hexdigest()[:16]
    return f"{RESERVED_PREFIX}receipts.{agent[:34]}.{digest}"


class Message:
    """One message as stored: ``id`` (workspace-wide, from 1), ``sender``, ``to`` (recipient
    names, in the order given), ``subject`` (one line), ``body`` (text, may be empty),
    ``thread`` (a name, or None: the thread is then ``str(id)``), ``importance`` (low | normal |
    high), ``ack_required`` and ``sent`` (POSIX seconds, milliseconds kept)."""

    __slots__ = (
        "ack_required",
        "body",
        "id",
        "importance",
        "sender",
        "sent",
        "subject",
        "thread",
        "to",
    )

    def __init__(
        self,
        id: int,
        sender: str,
        to: list[str],
        subject: str,
        *,
        body: str = "",
        thread: str | None = None,
        importance: str = "normal",
        ack_required: bool = False,
        sent: float = 0.0,
    ) -> None:
        self.id = id
        self.sender = sender
        self.to = to
        self.subject = subject
        self.body = body
        self.thread = thread
        self.importance = importance
        self.ack_required = ack_required
        self.sent = sent

    @property
    def thread_id(self) -> str:
        """The thread this message belongs to: its ``thread``, else its own id."""
        return self.thread if self.thread is not None else str(self.id)

    def fields(self) -> list[tuple[str, str]]:
        """The event fields the message is stored as (see the module docstring)."""
        out = [(_FROM, self.sender), (_TO, ", ".join(self.to)), (_SUBJECT, self.subject)]
        if self.thread is not None:
            out.append((_THREAD, self.thread))
        out += [
            (_IMPORTANCE, self.importance),
            (_ACK, "yes" if self.ack_required else "no"),
            (_BODY, self.body),
        ]
        return out

    @classmethod
    def of(cls, event: Event) -> Message:
        """The message an event of the log holds (the first field of each name counts: the
        renderer writes them first). :class:`InvalidInput` if the event is not a message."""
        got: dict[str, str] = {}
        for key, value in event.fields:
            got.setdefault(key, value)
        if event.type != MESSAGE_TYPE or _FROM not in got or _TO not in got:
            raise InvalidInput(f"event {event.seq} of {LOG_CHANNEL} is not a message")
        to = [name.strip() for name in got[_TO].split(",") if name.strip()]
        return cls(
            event.seq,
            got[_FROM],
            to,
            got.get(_SUBJECT, ""),
            body=got.get(_BODY, ""),
            thread=got.get(_THREAD) or None,
            importance=got.get(_IMPORTANCE, "normal"),
            ack_required=got.get(_ACK, "no").strip().lower() in ("yes", "true", "1"),
            sent=event.time,
        )

    def __repr__(self) -> str:
        return f"Message({self.id}, {self.sender!r} -> {self.to!r}, {self.subject!r})"


class Delivered:
    """A message as one recipient sees it: ``message``, ``read`` and ``acked`` (True when the
    recipient acked it, False when it needs an ack that is missing, None when it needs none)."""

    __slots__ = ("acked", "message", "read")

    def __init__(self, message: Message, read: bool, acked: bool | None) -> None:
        self.message = message
        self.read = read
        self.acked = acked

    def __repr__(self) -> str:
        return f"Delivered({self.message!r}, read={self.read}, acked={self.acked})"


class Inbox:
    """An inbox listing: ``items`` (oldest first), ``unread`` and ``ack_required`` (the agent's
    counts, see :meth:`Messages.counts`), and ``more``: how many further messages matched but
    were left out by the limit (None when the listing did not count them)."""

    __slots__ = ("ack_required", "agent", "items", "more", "unread")

    def __init__(
        self,
        agent: str,
        items: list[Delivered],
        *,
        unread: int,
        ack_required: int,
        more: int | None,
    ) -> None:
        self.agent = agent
        self.items = items
        self.unread = unread
        self.ack_required = ack_required
        self.more = more


class _State:
    """One recipient's receipts after its checkpoint: ``settled`` (every message to it with an
    id up to this is read and, if needed, acked), ``read`` and ``acked`` ids, and the messages
    to it after the checkpoint (``pending``, oldest first) with their states."""

    __slots__ = ("acked", "pending", "read", "settled")

    def __init__(self, settled: int, read: set[int], acked: set[int]) -> None:
        self.settled = settled
        self.read = read
        self.acked = acked
        self.pending: list[Delivered] = []

    def view(self, message: Message) -> Delivered:
        if message.id <= self.settled:
            return Delivered(message, True, True if message.ack_required else None)
        acked = message.id in self.acked
        read = acked or message.id in self.read
        return Delivered(message, read, acked if message.ack_required else None)


def _settled(item: Delivered) -> bool:
    return item.read and item.acked is not False


class Messages:
    """The message operations (``coord.messages``), over a
    :class:`~agentcoord.store.base.Store`. Built from (store, config, clock)."""

    def __init__(self, store: Store, config: Config, clock: Callable[[], float]) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    @property
    def keep(self) -> int:
        """How many events a live log keeps (config ``keep_events``, default 100)."""
        return keep_events(self.config)

    # -- sending -------------------------------------------------------------------------------
    def recipients(self, to: str | Iterable[str], sender: str) -> list[str]:
        """The recipient names ``to`` stands for: names (comma-separated text or a list) or
        ``@all`` (every registered agent that is not retired, except ``sender``). Each must be
        a registered agent: :class:`NotFound` (exit 3) naming the first that is not;
        :class:`InvalidInput` (exit 2) for an empty list, a bad name, or ``@all`` mixed with
        names."""
        items = [to] if isinstance(to, str) else list(to)
        names: list[str] = []
        for item in items:
            if not isinstance(item, str):
                raise InvalidInput(f"recipients must be agent names, not {item!r}", field="to")
            names += [n.strip() for n in item.split(",") if n.strip()]
        if not names:
            raise InvalidInput("give at least one recipient (--to B[,C] or --to @all)", field="to")
        agents = {a.name: a for a in self.store.list_agents(errors=[])}
        if ALL in names:
            if names != [ALL] * len(names):
                raise InvalidInput("--to @all cannot be combined with names", field="to")
            out = [n for n, a in agents.items() if a.status != "retired" and n != sender]
            if not out:
                raise NotFound("--to @all: no other registered agent to send to", recipient=ALL)
            return out
        out = []
        for name in dict.fromkeys(names):
            check_name(name, "recipient")
            if name not in agents:
                raise NotFound(
                    f"no agent {name!r}: recipients must be registered agents "
                    "('coord agent list'); nothing was sent",
                    recipient=name,
                )
            out.append(name)
        return out

    def send(
        self,
        sender: str,
        to: str | Iterable[str],
        subject: str,
        body: str = "",
        *,
        thread: str | None = None,
        ack_required: bool = False,
        importance: str = "normal",
    ) -> Message:
        """Send one message; returns it with its ``id`` and ``sent`` time. Everything is checked
        before anything is written (exit 2 bad input, exit 3 an unknown sender or recipient:
        strict identity, SPEC section 11)."""
        self._known(sender)
        subject = one_line(subject, "subject", MAX_SUBJECT)
        if not isinstance(body, str):
            raise InvalidInput("the body must be text", field="body")
        body = normalize_block(body, "body")
        size = len(body.encode("utf-8"))
        if size > MAX_BODY_BYTES:
            raise InvalidInput(
                f"the body is {size:,} bytes; the limit is {MAX_BODY_BYTES:,} bytes: put large "
                "content in a file or a context document and send its name",
                field="body",
            )
        if thread is not None:
            check_name(thread, "thread")
        if importance not in IMPORTANCE:
            raise InvalidInput(
                f"importance must be one of {', '.join(IMPORTANCE)}, not {importance!r}",
                field="importance",
            )
        if not isinstance(ack_required, bool):
            raise InvalidInput("ack_required must be true or false", field="ack_required")
        names = self.recipients(to, sender)
        message = Message(
            0,
            sender,
            names,
            subject,
            body=body,
            thread=thread,
            importance=importance,
            ack_required=ack_required,
        )
        event = Event(LOG_CHANNEL, MESSAGE_TYPE, time=self.clock(), fields=message.fields())
        stored = self.store.append_events(LOG_CHANNEL, [event], keep=self.keep)[0]
        return Message.of(stored)

    # -- reading -------------------------------------------------------------------------------
    def get(self, message_id: int) -> Message:
        """The message with id ``message_id``; :class:`NotFound` (exit 3) if there is none."""
        whole(message_id, "message id", minimum=1)
        found = self.store.read_events(LOG_CHANNEL, after=message_id - 1, limit=1)
        if not found or found[0].seq != message_id or found[0].type != MESSAGE_TYPE:
            raise NotFound(f"no message {message_id}", id=message_id)
        return Message.of(found[0])

    def _known(self, agent: str) -> None:
        """Strict identity (SPEC section 11): :class:`NotFound` (exit 3) for a name that is not
        registered (archived agents included: they are gone)."""
        check_name(agent, "agent name")
        try:
            self.store.get_agent(agent)
        except NotFound:
            raise NotFound(
                f"unknown agent {agent!r}: it is not registered; run 'coord agent register "
                f"{agent}' first",
                agent=agent,
            ) from None

    def read(self, message_id: int, agent: str) -> Delivered:
        """Message ``message_id`` for ``agent``, marked read. Its sender may read it too (nothing
        is marked). :class:`NotFound` (exit 3) for an agent that is not registered;
        :class:`Conflict` (exit 4) when it is neither to nor from ``agent``."""
        self._known(agent)
        message = self.get(message_id)
        if agent not in message.to:
            if agent == message.sender:
                return Delivered(message, True, None)
            raise _not_yours(message, agent)
        item = self._state(agent, upto=message_id).view(message)
        if not item.read:
            self._receipt(agent, READ_TYPE, message_id)
            item.read = True
        return item

    def ack(self, message_id: int, agent: str) -> Delivered:
        """Acknowledge message ``message_id`` as ``agent`` (implies read). Idempotent, and fine
        for a message that asks for no ack. :class:`Conflict` (exit 4) unless ``agent`` is a
        recipient (:class:`NotFound`, exit 3, for an agent that is not registered)."""
        self._known(agent)
        message = self.get(message_id)
        if agent not in message.to:
            raise _not_yours(message, agent)
        item = self._state(agent, upto=message_id).view(message)
        if item.acked is not True and not (item.read and not message.ack_required):
            self._receipt(agent, ACK_TYPE, message_id)
        item.read = True
        item.acked = True if message.ack_required else None
        return item

    def counts(self, agent: str) -> dict[str, int]:
        """``{"unread": N, "ack_required": M}``: messages to ``agent`` not yet read, and those
        that ask for an ack and have none yet (read or not). For ``coord prime``, the check-in
        and the dashboard: reads only what follows the agent's checkpoint, and moves the
        checkpoint past what is now settled (a cursor write, only when it moves)."""
        state = self._state(check_name(agent, "agent name"))
        return {
            "unread": sum(1 for d in state.pending if not d.read),
            "ack_required": sum(1 for d in state.pending if d.acked is False),
        }

    def inbox(self, agent: str, *, unread: bool = False, limit: int = DEFAULT_LIMIT) -> Inbox:
        """``agent``'s messages, oldest first: with ``unread``, the oldest ``limit`` it has not
        read (``more``: how many unread ones follow); else the newest ``limit`` messages to it,
        read or not (``more`` is None: older ones are not counted). ``limit`` 0 means all."""
        check_name(agent, "agent name")
        limit = whole(limit, "limit")
        state = self._state(agent)
        counts = {
            "unread": sum(1 for d in state.pending if not d.read),
            "ack_required": sum(1 for d in state.pending if d.acked is False),
        }
        if unread:
            items = [d for d in state.pending if not d.read]
            shown = items[:limit] if limit else items
            return Inbox(agent, shown, **counts, more=len(items) - len(shown))
        messages = self._newest(lambda m: agent in m.to, limit)
        return Inbox(agent, [state.view(m) for m in messages], **counts, more=None)

    def thread(self, thread: str, *, limit: int = DEFAULT_LIMIT) -> list[Message]:
        """The newest ``limit`` messages of ``thread`` (0: all), oldest first. A message sent
        without ``--thread`` starts the thread named by its id, so ``thread("12")`` is message
        12 and the replies sent with ``--thread 12``."""
        check_name(thread, "thread")
        limit = whole(limit, "limit")
        return self._newest(lambda m: m.thread_id == thread, limit)

    # -- internals -----------------------------------------------------------------------------
    def _newest(self, want: Callable[[Message], bool], limit: int) -> list[Message]:
        """The newest ``limit`` messages (all for 0) that ``want`` accepts, oldest first: the log
        is read backwards in growing windows of seqs, so a short answer reads little."""
        top = self.store.last_seq(LOG_CHANNEL)
        found: list[Message] = []
        window = _WINDOW
        while top > 0 and (not limit or len(found) < limit):
            start = max(0, top - window)
            events = self.store.read_events(LOG_CHANNEL, after=start, limit=top - start)
            batch = [m for m in _messages(events) if m.id <= top and want(m)]
            found = batch + found
            top, window = start, window * 2
        return found[-limit:] if limit else found

    def _state(self, agent: str, *, upto: int | None = None) -> _State:
        """The agent's receipts and its pending messages (after its checkpoint; only up to id
        ``upto`` when given, which also leaves the checkpoint where it is)."""
        channel = receipts_channel(agent)
        start = self._cursor(channel, SETTLED)
        # Receipts first, then the log: every receipt read is about a message read below.
        receipts = self.store.read_events(channel, after=start)
        read: set[int] = set()
        acked: set[int] = set()
        for event in receipts:
            target = _message_id(event)
            if target is None:
                continue
            (acked if event.type == ACK_TYPE else read).add(target)
        settled = self._cursor(LOG_CHANNEL, agent)
        state = _State(settled, read, acked)
        if upto is not None:
            if upto <= settled:
                return state
            events = self.store.read_events(LOG_CHANNEL, after=upto - 1, limit=1)
        else:
            events = self.store.read_events(LOG_CHANNEL, after=settled)
        state.pending = [state.view(m) for m in _messages(events) if agent in m.to]
        if upto is None:
            last_log = events[-1].seq if events else settled
            self._checkpoint(agent, channel, state, last_log, receipts)
        return state

    def _checkpoint(
        self, agent: str, channel: str, state: _State, last_log: int, receipts: Sequence[Event]
    ) -> None:
        """Move the agent's checkpoint past every settled message at the front of its pending
        list (and, when nothing is pending, the receipts cursor past every receipt read)."""
        first_open = next((d.message.id for d in state.pending if not _settled(d)), None)
        target = last_log if first_open is None else first_open - 1
        if target > state.settled:
            self.store.advance_cursor(LOG_CHANNEL, agent, target)
        if first_open is None and receipts:
            self.store.advance_cursor(channel, SETTLED, receipts[-1].seq)

    def _cursor(self, channel: str, consumer: str) -> int:
        """A cursor, or 0 when it points past the channel's last seq (the channel was reset:
        its log deleted, the store flushed), which moves it back to 0 too."""
        cursor = self.store.get_cursor(channel, consumer)
        if cursor and cursor > self.store.last_seq(channel):
            self.store.reset_cursor(channel, consumer, 0)
            return 0
        return cursor

    def _receipt(self, agent: str, kind: str, message_id: int) -> None:
        event = Event(
            receipts_channel(agent), kind, time=self.clock(), fields=[(_MESSAGE, str(message_id))]
        )
        self.store.append_events(event.channel, [event], keep=self.keep)


def _messages(events: Iterable[Event]) -> list[Message]:
    """The messages among ``events`` (anything else on the log is skipped)."""
    out = []
    for event in events:
        if event.type == MESSAGE_TYPE:
            try:
                out.append(Message.of(event))
            except InvalidInput:
                continue
    return out


def _message_id(event: Event) -> int | None:
    for key, value in event.fields:
        if key == _MESSAGE:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _not_yours(message: Message, agent: str) -> Conflict:
    return Conflict(
        f"message {message.id} is not addressed to {agent} (it is from {message.sender} to "
        f"{', '.join(message.to)})",
        id=message.id,
        agent=agent,
    )
