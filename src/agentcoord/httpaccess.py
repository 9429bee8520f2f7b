"""Who may talk to coord's local HTTP servers (``coord mcp --http``, and ``coord web``): SPEC 16.

Three checks, shared by every server coord runs over HTTP, so this module imports no web
framework and no MCP SDK (the guard is plain ASGI):

- **The bearer token** (RFC 6750 section 2.1): every request carries
  ``Authorization: Bearer <token>``, compared in constant time (:func:`hmac.compare_digest`);
  anything else is ``401`` with a ``WWW-Authenticate: Bearer`` challenge (section 3; with
  ``error="invalid_token"`` when a token was sent but is wrong). By default the token is made by
  :func:`secrets.token_urlsafe` into ``<timer dir>/.coordination-token`` (:data:`TOKEN_NAME`;
  ``.claude/`` in the default layout, which the project's ``.gitignore`` covers), mode 0600,
  written without following a symlink, and reused on the next start so configured clients keep
  working. ``--token-file PATH`` names another file; either is refused when it is not a regular
  file of ours that only we can read (:func:`read_token_file`).
- **Host and Origin**, on every bind (MCP 2025-06-18, "Security Warning" of the Streamable HTTP
  transport: DNS rebinding): the ``Host`` header must be one of :func:`allowed_hosts` (the
  loopback names with the port, the bound address when it is a specific one, ``--allow-host``
  names), and an ``Origin``, when sent, must be ``http(s)://`` one of them. Otherwise ``403``.
- **A Unix socket** as an alternative to a TCP port (:func:`bind_unix_socket`): created 0600,
  never over a file that is not a stale socket.

Refusals have a JSON body ``{"jsonrpc": "2.0", "id": null, "error": {"code", "message"}}``,
which MCP clients understand and any other client can read.
"""

from __future__ import annotations

import errno
import os
import re
import stat

from .errors import AlreadyRunning, BackendUnavailable, CorruptData, InvalidInput
from .fs import open_stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Awaitable, Callable, Collection, Iterable, MutableMapping
    from typing import Any

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The default token file's name, in the workspace's timer directory.
TOKEN_NAME = ".coordination-token"
#: A token file is a line of text; anything much larger is not one.
MAX_TOKEN_FILE = 4096
#: RFC 6750 section 2.1 ``b64token``: what a bearer token may contain.
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: A ``--allow-host`` name: a DNS name or an IPv4 address, or a bracketed IPv6 one; a port.
HOST_NAME = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])")
#: Host names that are this machine (``--no-auth`` is allowed only there).
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
REALM = "agentcoord"

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


# -- the token file ----------------------------------------------------------------------------
def token_path(timer_dir: str) -> str:
    """Where the default token lives: ``<timer dir>/.coordination-token``."""
    return os.path.join(timer_dir, TOKEN_NAME)


def read_token_file(path: str, what: str = "token file") -> str | None:
    """The token in the file at ``path``, or None when there is no file.

    Opened with ``O_NOFOLLOW | O_NONBLOCK`` (a symlink is never followed, a FIFO never waited
    on). :class:`CorruptData` (exit 6) when it is not a regular file, is not owned by this user,
    is readable or writable by the group or others, is empty, or is not one RFC 6750 token.
    The message names ``what`` and the path, never the file's content."""
    try:
        fd, st = open_stat(path, what=what)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BackendUnavailable(f"cannot read {what} {path}: {exc.strerror}", path=path) from exc
    try:
        if st.st_uid != os.geteuid():
            raise CorruptData(path, 1, f"{what} belongs to uid {st.st_uid}, not to this user")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise CorruptData(
                path,
                1,
                f"{what} has mode {mode:04o}: others could read or change the token; "
                f"chmod 600 it (or delete it to have a new one made)",
            )
        if st.st_size > MAX_TOKEN_FILE:
            raise CorruptData(path, 1, f"{what} is {st.st_size:,} bytes; a token is one line")
        raw = os.read(fd, MAX_TOKEN_FILE + 1)
    except OSError as exc:
        raise BackendUnavailable(f"cannot read {what} {path}: {exc.strerror}", path=path) from exc
    finally:
        os.close(fd)
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        token = "\0"
    if not token:
        raise CorruptData(path, 1, f"{what} is empty")
    if len(raw) > MAX_TOKEN_FILE or not B64TOKEN.fullmatch(token):
        raise CorruptData(
            path, 1, f"{what} does not hold one bearer token (letters, digits, -._~+/ then =)"
        )
    return token


def load_or_create_token(path: str) -> str:
    """The token in ``path``, made first when there is none: :func:`secrets.token_urlsafe`
    (32 bytes) written to a new temp file (``O_CREAT | O_EXCL | O_NOFOLLOW``, mode 0600),
    then hard-linked to ``path``: a link never replaces an existing name, so a symlink (or a
    token another server made meanwhile) at ``path`` is never followed nor overwritten.
    Raises what :func:`read_token_file` raises, :class:`BackendUnavailable` on I/O errors."""
    import secrets

    token = read_token_file(path)
    if token is not None:
        return token
    head, tail = os.path.split(path)
    tmp = os.path.join(head, f".{tail}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    made = secrets.token_urlsafe(32)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask and a shared group's setgid directory
            os.write(fd, (made + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path, follow_symlinks=False)
        except FileExistsError:
            pass  # a symlink, or another server's token: read (and check) what is there
    except OSError as exc:
        raise BackendUnavailable(
            f"cannot write the token file {path}: {exc.strerror or exc}", path=path
        ) from exc
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    token = read_token_file(path)
    if token is None:  # removed between link and read: only someone else can have done that
        raise BackendUnavailable(f"the token file {path} disappeared as it was made", path=path)
    return token


def bearer_ok(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header value carries ``token`` (RFC 6750 section 2.1; the
    scheme is case-insensitive, RFC 7235 section 2.1). Constant time in the token's content."""
    import hmac

    if header is None:
        return False
    scheme, _, presented = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


# -- Host and Origin ---------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """Whether a bind address is this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host.strip("[]") in ("0.0.0.0", "::", "")


def check_allow_host(name: str) -> str:
    """A ``--allow-host`` value, lowercased: ``NAME`` or ``NAME:PORT`` (IPv6 in brackets).
    :class:`InvalidInput` for anything else (a path, a space, a scheme)."""
    host, port = _split_host(name)
    if not HOST_NAME.fullmatch(host) or (port is not None and not _port_ok(port)):
        raise InvalidInput(
            f"--allow-host {name!r}: give a host name or address, optionally with :PORT",
            field="allow_host",
        )
    return name.lower()


def allowed_hosts(bind: str | None, port: int | None, extra: Iterable[str] = ()) -> frozenset[str]:
    """The ``Host`` header values a server accepts: the loopback names with the port, the
    bound address when it is a specific one, and ``extra`` (``--allow-host``; a name without
    a port gets the server's). ``port`` None is a Unix socket: the names without a port (what
    an HTTP client sends for ``http://localhost/...``). Port 80 also allows the bare names."""
    names = list(LOOPBACK_NAMES)
    if bind is not None and not is_wildcard(bind):
        names.append(f"[{bind}]" if ":" in bind.strip("[]") else bind)
    out: set[str] = set()
    for name in [*names, *extra]:
        host, given = _split_host(name.lower())
        if given is not None:
            out.add(f"{host}:{given}")
        elif port is None or port == 80:
            out.add(host)
        if given is None and port is not None:
            out.add(f"{host}:{port}")
    return frozenset(out)


def origin_ok(origin: str, hosts: Collection[str]) -> bool:
    """Whether an ``Origin`` header names one of ``hosts`` over http or https (MCP 2025-06-18:
    servers must refuse other origins with 403). ``null`` and other schemes are refused."""
    scheme, sep, rest = origin.strip().lower().partition("://")
    return bool(sep) and scheme in ("http", "https") and rest in hosts


def _split_host(value: str) -> tuple[str, str | None]:
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        rest = value[end + 1 :]
        return value[: end + 1], (rest[1:] if rest.startswith(":") else None)
    host, sep, port = value.rpartition(":")
    return (host, port) if sep else (value, None)


def _port_ok(port: str) -> bool:
    return port.isdigit() and 0 < int(port) < 65536


# -- the guard ---------------------------------------------------------------------------------
class Guard:
    """ASGI middleware in front of an app: every HTTP (and websocket) request must have an
    allowed ``Host``, an allowed ``Origin`` when it has one (else 403), and the bearer token
    when ``token`` is not None (else 401 with ``WWW-Authenticate: Bearer``). Lifespan events
    pass through. Host and Origin are checked first, so a rebinding page learns nothing about
    the token."""

    def __init__(self, app: ASGIApp, *, token: str | None, hosts: Collection[str]) -> None:
        self.app = app
        self.token = token
        self.hosts = frozenset(h.lower() for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = self.refusal(scope.get("headers") or [])
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, message, challenge = problem
        headers = [(b"content-type", b"application/json")]
        if challenge is not None:
            headers.append((b"www-authenticate", challenge.encode("ascii")))
        await _respond(scope, send, status, message, headers)

    def refusal(
        self, raw_headers: Iterable[tuple[bytes, bytes]]
    ) -> tuple[int, str, str | None] | None:
        """``(status, message, WWW-Authenticate value)`` for a request to refuse, else None."""
        hosts: list[str] = []
        origins: list[str] = []
        auths: list[str] = []
        for name, value in raw_headers:
            key = name.lower()
            if key == b"host":
                hosts.append(value.decode("latin-1"))
            elif key == b"origin":
                origins.append(value.decode("latin-1"))
            elif key == b"authorization":
                auths.append(value.decode("latin-1"))
        if len(hosts) != 1 or hosts[0].strip().lower() not in self.hosts:
            return 403, "Host not allowed (DNS rebinding protection; see --allow-host)", None
        if len(origins) > 1 or (origins and not origin_ok(origins[0], self.hosts)):
            return 403, "Origin not allowed", None
        if self.token is None:
            return None
        if len(auths) == 1 and bearer_ok(auths[0], self.token):
            return None
        challenge = f'Bearer realm="{REALM}"'
        if auths:  # RFC 6750 section 3.1: say why only when credentials were sent
            challenge += ', error="invalid_token"'
        if len(auths) == 1 and auths[0].strip().partition(" ")[0].lower() == "bearer":
            # Never echo what was sent: it may be a real token of another server.
            return 401, "the bearer token does not match (Authorization: Bearer <token>)", challenge
        return 401, "a bearer token is required (Authorization: Bearer <token>)", challenge


async def _respond(
    scope: Scope, send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]]
) -> None:
    import json

    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}
    ).encode()
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- the sockets -------------------------------------------------------------------------------
def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port``, bound before the server announces itself,
    so a taken port is a clear error instead of a server that said it was serving:
    :class:`AlreadyRunning` (exit 4) when the port is in use, :class:`BackendUnavailable`
    (exit 5) for any other bind error (no such address, a privileged port)."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        raise BackendUnavailable(f"--http {host}:{port}: cannot resolve the host: {exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AlreadyRunning(
                f"--http {host}:{port}: the port is in use (another server listens there); "
                "pick another port",
                port=port,
            ) from None
        raise BackendUnavailable(
            f"--http {host}:{port}: cannot listen there: {exc.strerror or exc}"
        ) from None
    sock.setblocking(False)
    return sock


def bind_unix_socket(path: str) -> tuple[socket.socket, int]:
    """A listening Unix socket at ``path``, mode 0600 (created under a 0177 umask, so it is
    never reachable by others even for a moment). A stale socket (nobody accepts on it) is
    replaced; anything else at ``path`` is refused and left alone: a file, a directory or a
    symlink (:class:`InvalidInput`), a socket a live server listens on (:class:`AlreadyRunning`),
    another user's socket that cannot be probed or removed (a sticky ``/tmp``:
    :class:`InvalidInput` naming its uid). Every ``OSError`` becomes a :class:`~.errors.CoordError`
    (exit 2 for the path's fault, 5 for the system's), never a traceback. Returns the socket
    and the file's inode (for :func:`remove_unix_socket`)."""
    import socket

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise InvalidInput(f"--socket {path}: {exc.strerror or exc}", field="socket") from None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a socket"
            raise InvalidInput(
                f"--socket {path}: the path exists and is {kind}; it is left alone",
                field="socket",
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            pass  # stale: nobody accepts on it
        except OSError as exc:  # EACCES: another user's socket, not ours to probe or replace
            raise InvalidInput(
                f"--socket {path}: {_whose(st)} socket is in the way and cannot be probed "
                f"({exc.strerror or exc}); it is left alone: pick a path in a directory of "
                "your own",
                field="socket",
                path=path,
            ) from None
        else:
            raise AlreadyRunning(f"--socket {path}: a server already listens there", path=path)
        finally:
            probe.close()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:  # EPERM: another user's stale socket in a sticky /tmp
            raise InvalidInput(
                f"--socket {path}: {_whose(st)} stale socket is in the way and cannot be "
                f"removed ({exc.strerror or exc}); pick a path in a directory of your own",
                field="socket",
                path=path,
            ) from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(path)  # bind(2) never follows a symlink: EADDRINUSE if one appeared
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AlreadyRunning(
                f"--socket {path}: something appeared at the path as the socket was made",
                path=path,
            ) from None
        cls = InvalidInput if exc.errno in _BAD_PATH else BackendUnavailable
        raise cls(
            f"--socket {path}: cannot bind: {exc.strerror or exc}", field="socket", path=path
        ) from None
    finally:
        os.umask(old)
    try:
        sock.listen(128)
        sock.setblocking(False)
        inode = os.lstat(path).st_ino
    except OSError as exc:
        sock.close()
        raise BackendUnavailable(
            f"--socket {path}: cannot listen there: {exc.strerror or exc}", path=path
        ) from None
    return sock, inode


#: bind(2) errors that are the path's fault (exit 2); any other is the system's (exit 5).
_BAD_PATH = (
    errno.EACCES,
    errno.EPERM,
    errno.ENOENT,
    errno.ENOTDIR,
    errno.ENAMETOOLONG,
    errno.ELOOP,
    errno.EROFS,
    errno.EINVAL,
)


def _whose(st: os.stat_result) -> str:
    """``uid N's`` for another user's file, ``a`` for ours (for messages)."""
    return "a" if st.st_uid == os.geteuid() else f"uid {st.st_uid}'s"


def remove_unix_socket(path: str, inode: int) -> None:
    """Remove the socket file made by :func:`bind_unix_socket` (its ``inode``), unless
    something else has the name by now."""
    try:
        st = os.lstat(path)
        if stat.S_ISSOCK(st.st_mode) and st.st_ino == inode:
            os.unlink(path)
    except OSError:
        pass
