"""The event archive of the markdown backend: append-only files, read by bisection.

Events that rotate out of ``events-{channel}.md`` go to ``archive/events-{channel}-{DATE}.md``
(SPEC section 3): the UTC date of the event, or of the channel's newest archive file when a
clock behind would send an event back to an earlier one, so that each file holds a range of
seqs after the previous file's.

Appending costs what is appended, whatever the archive's size (SPEC section 8: an emit at 100k
archived events within 1.5x of one at 100): a new file is written whole (atomically: header and
its first blocks), an existing one is only appended to (``O_APPEND``, fsynced when durable). A
crash in the middle of an append leaves a torn last block; readers stop at the last complete
block (every block starts ``## Event: <type>``, or ``## Message: <id>`` on the message log, and
ends ``\\n---\\n``, a line escaped text can never form), and the next append
first cuts the torn tail off (the events in it are still in the live log: the archive is written
before the live log is shortened, so a crash duplicates, never loses, and duplicates are
recognised by seq). The bytes cut are kept in ``{file}.torn``, in case a person's edit rather
than a crash left them there.

Reading the events after seq S (a consumer far behind) finds the file that holds S + 1 from the
files' first seqs (``**First Seq**`` in each header), then the block by bisecting the file's
bytes: each probe reads one window and the seq of the block that starts after it. A batch far
behind costs a few small reads, not a parse of the whole archive.
"""

from __future__ import annotations

import os
import re
import stat

from ...core.validate import is_valid_name
from ...errors import BackendUnavailable, CorruptData
from ...fs import (
    _O_CLOEXEC,
    _O_NOFOLLOW,
    _O_NONBLOCK,
    MAX_READ,
    atomic_write,
    decode,
    ensure_dir,
    fix_mode,
    fsync_dir,
    modes,
)
from .directory import ARCHIVE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ...core.models import Event
    from .directory import Directory

#: How many bytes one probe (of a tail, a bisection step) reads.
WINDOW = 64 * 1024
#: How many bytes a bounded read parses at a time (grown for a block longer than this).
CHUNK = WINDOW
#: How many bytes of the window to its right a backwards search keeps (a block's heading and
#: seq lines, cut by a window's edge, are seen whole).
OVERLAP = 4096
#: How many bytes the read of a file's header takes (its title and ``**First Seq**``).
HEAD = 1024
END = b"\n---\n"  # every block, and the header, ends with this line
#: The start of a block: ``## Event: <type>``, or ``## Message: <id>`` on the message log.
MARKS = (b"\n## Event: ", b"\n## Message: ")
_MARK = re.compile(rb"\n## (?:Event|Message): ")
# The seq of a block, whole: the line's end must be in view (a window may cut "15" to "1").
_SEQ = re.compile(rb"\n## (?:Event|Message): [^\n]*\n\*\*Seq\*\*: (\d+)\r?\n")
_FIRST = re.compile(rb"\*\*First Seq\*\*: (\d+)")
_DATE = r"\d{4}-\d{2}-\d{2}"


class Archive:
    """The archive files of the channels of one coordination directory."""

    def __init__(self, directory: Directory) -> None:
        self.d = directory

    # -- files ----------------------------------------------------------------------------
    def files(self, channel: str) -> list[str]:
        """The channel's archive files (paths), oldest first."""
        pattern = re.compile(rf"events-{re.escape(channel)}-{_DATE}\.md")
        names = [n for n in self.d.names(ARCHIVE, regular=False) if pattern.fullmatch(n)]
        return [os.path.join(self.d.path(ARCHIVE), n) for n in sorted(names)]

    def channels(self) -> set[str]:
        """Channels with an archive file."""
        found = re.compile(rf"events-(.+)-{_DATE}\.md")
        out = set()
        for name in self.d.names(ARCHIVE, regular=False):
            m = found.fullmatch(name)
            if m and is_valid_name(m.group(1)):
                out.add(m.group(1))
        return out

    def name_for(self, channel: str, when: float, newest: str | None = None) -> str:
        """The archive file (relative name) an event of time ``when`` goes to, given the
        channel's newest archive file (a path from :meth:`files`; looked up when omitted): the
        event's UTC date, never before the newest file's, so each file's seqs follow the
        previous one's whatever the clocks did."""
        from .codec.event import day_of

        day = day_of(when)
        if newest is None:
            files = self.files(channel)
            newest = files[-1] if files else ""
        if newest:
            day = max(day, os.path.basename(newest)[len(f"events-{channel}-") : -3])
        return f"{ARCHIVE}/events-{channel}-{day}.md"

    # -- appending ------------------------------------------------------------------------
    def append(self, channel: str, events: list[Event]) -> str:
        """Archive ``events`` (non-empty, in seq order), skipping any a crashed rotation
        already wrote; returns the (relative) name of the file holding the last one. Call under
        the channel's lock.

        Raises :class:`BackendUnavailable` when a file cannot be written and
        :class:`CorruptData` when one is not a regular file."""
        from .codec.event import event_lines

        files = self.files(channel)
        newest = files[-1] if files else ""
        by_file: dict[str, list[Event]] = {}
        for event in events:
            name = self.name_for(channel, event.time, newest)
            newest = self.d.path(name)
            by_file.setdefault(name, []).append(event)
        ensure_dir(self.d.path(ARCHIVE))
        for name, batch in by_file.items():
            path = self.d.path(name)
            if not os.path.lexists(path):
                self._create(channel, name, batch)
                continue
            last = self._repair(path)
            fresh = [e for e in batch if e.seq > last]
            if fresh:
                blob = "".join("\n".join(event_lines(e, channel)) + "\n" for e in fresh)
                self._append(path, blob.encode("utf-8"))
        return name

    def _create(self, channel: str, name: str, batch: list[Event]) -> None:
        from .codec.event import archive_title, event_lines

        day = name[len(f"{ARCHIVE}/events-{channel}-") : -3]
        head = f"# {archive_title(channel, day)}\n\n**First Seq**: {batch[0].seq}\n\n---\n"
        body = "".join("\n".join(event_lines(e, channel)) + "\n" for e in batch)
        atomic_write(self.d.path(name), head + body, durable=self.d.durable)

    def _append(self, path: str, blob: bytes, *, create: bool = False) -> None:
        flags = os.O_WRONLY | os.O_APPEND | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC
        mode = modes(os.path.dirname(path))[0]
        try:
            fd = os.open(path, flags | (os.O_CREAT if create else 0), mode)
        except OSError as exc:
            raise BackendUnavailable(f"cannot append to {path}: {exc.strerror}") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):  # a FIFO planted as the .torn file
                raise CorruptData(path, 1, "is not a regular file")
            if create and st.st_size == 0 and st.st_uid == os.geteuid():
                fix_mode(fd, mode)
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            if self.d.durable:
                os.fsync(fd)
        except OSError as exc:
            raise BackendUnavailable(f"cannot append to {path}: {exc.strerror}") from exc
        finally:
            os.close(fd)

    def _repair(self, path: str) -> int:
        """Cut a torn tail (a block an interrupted append left half-written) and return the
        file's last seq. Call under the channel's lock."""
        complete, size, last = self._tail(path)
        if complete < size:
            self._check_tail(path, complete)  # only a torn append is cut, never other text
            with _open(path) as fd:
                os.lseek(fd, complete, os.SEEK_SET)
                self._append(path + ".torn", _read(fd, size - complete), create=True)
            try:
                fd = os.open(path, os.O_WRONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC)
                try:
                    os.ftruncate(fd, complete)
                    if self.d.durable:
                        os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise BackendUnavailable(f"cannot repair {path}: {exc.strerror}") from exc
            if self.d.durable:
                fsync_dir(os.path.dirname(path))
        return last

    # -- reading --------------------------------------------------------------------------
    def last_seq(self, channel: str) -> int:
        """The largest seq in the channel's archive (0 for none)."""
        files = self.files(channel)
        for path in reversed(files):
            last = self._tail(path)[2]
            if last:
                return last
        return 0

    def read(self, channel: str, after: int, limit: int | None) -> list[Event]:
        """Archived events with ``seq > after``, in order, at most ``limit``."""
        out: list[Event] = []
        files = self.files(channel)
        # The last file whose first seq is <= after + 1 holds after + 1, if any file does
        # (first seqs grow from file to file: see name_for): bisect on them.
        lo, hi = 0, len(files)
        while lo < hi and after:
            mid = (lo + hi) // 2
            if self._first_seq(files[mid]) <= after + 1:
                lo = mid + 1
            else:
                hi = mid
        for path in files[max(lo - 1, 0) :]:
            want = None if limit is None else limit - len(out)
            if want == 0:
                break
            out.extend(self._read_file(channel, path, after, want))
            if out:
                after = max(after, out[-1].seq)
        return out

    def _read_file(self, channel: str, path: str, after: int, limit: int | None) -> list[Event]:
        """The file's events after ``after``: bisect to them, then parse whole blocks a chunk
        at a time until ``limit`` are found (all of them when ``limit`` is None)."""
        complete, size, last = self._tail(path)
        if complete < size:
            self._check_tail(path, complete)
        if last and last <= after:
            return []
        out: list[Event] = []
        with _open(path) as fd:
            pos = self._seek(fd, complete, after) if after else 0
            size = CHUNK
            while pos < complete and (limit is None or len(out) < limit):
                os.lseek(fd, pos, os.SEEK_SET)
                raw = _read(fd, complete - pos if limit is None else min(size, complete - pos))
                if pos + len(raw) < complete:  # whole blocks only
                    cut = raw.rfind(END)
                    if cut < 0:  # one block longer than the chunk
                        size *= 2
                        continue
                    raw = raw[: cut + len(END)]
                out.extend(e for e in self._parse(channel, path, raw, pos) if e.seq > after)
                pos += len(raw)
        return out if limit is None else out[:limit]

    def _seek(self, fd: int, end: int, after: int) -> int:
        """A byte offset at or before the first block with ``seq > after`` (bisection on the
        seqs of the blocks that start after each probe), 0 at worst."""
        # Only ``lo`` matters for correctness: it only ever moves to the start of a block whose
        # seq is <= after, so it stays at or before the first block after ``after``. Every step
        # moves ``lo`` up or ``hi`` down, so the loop ends.
        lo, hi = 0, end
        while hi - lo > WINDOW:
            mid = (lo + hi) // 2
            os.lseek(fd, mid, os.SEEK_SET)
            window = _read(fd, min(WINDOW, end - mid))
            m = _SEQ.search(window)
            start = mid + m.start() if m is not None else hi
            if start >= hi:  # no block starts in view before hi: look left of mid
                hi = mid
            elif m is not None and int(m.group(1)) <= after:
                lo = start  # that block, and all before it, are <= after
            else:
                hi = start
        return lo

    def _parse(self, channel: str, path: str, raw: bytes, offset: int) -> list[Event]:
        """The events in ``raw`` (bytes from ``offset`` of the file), whole blocks only."""
        from .codec.event import parse_events

        cut = 0
        if offset:
            first = _MARK.search(raw)  # start at the first whole block
            if first is None:
                return []
            cut = first.start()
            raw = raw[cut:]
        text = decode(raw, path)
        if offset:
            text = f"# {channel} Events Archive\n\n---\n" + text
        try:
            return parse_events(text, path, channel).events
        except CorruptData as exc:
            if not offset:
                raise
            # Name the line in the file, not in the piece read: the piece starts with the
            # blank line before a block, which is line 4 of the text parsed.
            with _open(path) as fd:
                before = _read(fd, offset + cut).count(b"\n")
            raise CorruptData(path, exc.line - 3 + before, exc.reason) from None

    def _check_tail(self, path: str, complete: int) -> None:
        """Raise :class:`CorruptData` unless the bytes after the last complete block are the
        start of a block (what an interrupted append leaves): anything else is a person's edit
        (a block without its ``---``, CRLF line endings, a cut header) that must not be read
        past or cut off."""
        with _open(path) as fd:
            os.lseek(fd, complete, os.SEEK_SET)
            rest = _read(fd, max(map(len, MARKS)))
            line = _read_line_no(fd, complete)
        if complete and any(mark.startswith(rest[: len(mark)]) for mark in MARKS):
            return
        raise CorruptData(
            path,
            line,
            "text after the last complete event block that is not an interrupted append "
            "(each block ends with a '---' line; CRLF line endings or a cut header?)",
        )

    def _first_seq(self, path: str) -> int:
        """The file's ``**First Seq**`` header, or (a file 0.1 wrote) its first block's seq;
        0 for a file without either."""
        with _open(path) as fd:
            head = _read(fd, HEAD)
            m = _FIRST.search(head) or _SEQ.search(head)
            if m is None:
                head += _read(fd, WINDOW)
                m = _SEQ.search(head)
        return int(m.group(1)) if m else 0

    def _tail(self, path: str) -> tuple[int, int, int]:
        """(length up to the end of the last complete block, the file's size, the seq of the
        last complete block or 0), reading backwards a window at a time: each window is
        searched once (with the start of the one after it, so a line cut by the window's edge
        is seen whole), and at most :data:`~agentcoord.fs.MAX_READ` bytes from the end, so a
        huge file with no block in it (a sparse file planted as a segment) is
        :class:`CorruptData`, never read whole (SPEC section 16)."""
        with _open(path) as fd:
            size = os.fstat(fd).st_size
            complete = -1
            pos = size
            carry = b""  # the first bytes of the window read before (to the right)
            while pos > 0:
                if size - pos > MAX_READ:
                    raise CorruptData(
                        path, 1, f"no complete event block in its last {MAX_READ:,} bytes"
                    )
                start = max(0, pos - WINDOW)
                os.lseek(fd, start, os.SEEK_SET)
                piece = _read(fd, pos - start) + carry
                pos = start
                if complete < 0:
                    at = piece.rfind(END)
                    if at >= 0:
                        complete = start + at + len(END)
                if complete >= 0:
                    seqs = list(_SEQ.finditer(piece, 0, complete - start))
                    if seqs:
                        return complete, size, int(seqs[-1].group(1))
                    if start == 0 and piece.startswith(b"# "):  # the header: no block at all
                        return complete, size, 0
                carry = piece[:OVERLAP]
            return max(complete, 0), size, 0


def _open(path: str) -> _Fd:
    return _Fd(path)


class _Fd:
    """A read-only descriptor of a regular archive file (never through a symlink)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> int:
        try:
            self.fd = os.open(self.path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK)
        except OSError as exc:
            raise CorruptData(self.path, 1, f"cannot be read: {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(self.fd).st_mode):
            os.close(self.fd)
            raise CorruptData(self.path, 1, "is not a regular file")
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _read_line_no(fd: int, offset: int) -> int:
    """The line number (1-based) of byte ``offset`` of the file."""
    os.lseek(fd, 0, os.SEEK_SET)
    return _read(fd, offset).count(b"\n") + 1


def _read(fd: int, count: int) -> bytes:
    chunks = []
    while count > 0:
        chunk = os.read(fd, count)
        if not chunk:
            break
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)
