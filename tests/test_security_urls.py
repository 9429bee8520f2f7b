"""A Redis password never reaches a message, a status line or a dashboard header (SPEC 16).

Attacks from the advA review, each performed for real through the CLI: odd URL forms whose
password an URL parser does not see as one (a wrongly cased or unknown scheme, ``redis:/``, an
unencoded ``#``, ``/`` or ``?`` in the password, a ``?ssl_password=``-like parameter), a bad
IPv6 host (was a traceback), ``migrate --to -`` (recorded the literal ``-``), and the doctor's
message for a shared workspace's 0640 config. :func:`agentcoord.core.urls.mask_url` is checked
by property tests: whatever printable characters a password holds, the masked URL never
contains it.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import string
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from agentcoord import workspace
from agentcoord.cli.main import main
from agentcoord.core.urls import SECRET_WORDS, credentials_in, mask_url, scrub
from agentcoord.store.redis.connection import Connection

from .redis_server import RedisServer, redis_server_fixture
from .test_security_files import GID, needs_root, run_as, shared_tmp

SECRET = "Pw5ecret-url-9d2e"
url_redis = redis_server_fixture("url_redis", password=SECRET)

#: Printable, no whitespace: every character a password may hold, the URL's own delimiters too.
PASSWORD_CHARS = "".join(c for c in string.printable if not c.isspace())
SCHEMES = ["redis", "rediss", "unix", "REDIS", "Redis", "redis+tls", "valkey", "x"]
SECRET_PARAMS = ["password", "ssl_password", "PASSWORD", "token", "auth", "api_key", "Secret"]
TEMPLATES = [
    "{scheme}://:{pw}@127.0.0.1:6379/0",
    "{scheme}://user:{pw}@127.0.0.1:6379/0?workspace=w",
    "{scheme}://{pw}@host",
    "{scheme}:/:{pw}@h",
    "{scheme}:{pw}@h:1",
    "{scheme}://:{pw}@[::1:16399/0",
    "{scheme}://h:6379/0?{param}={pw}",
    "{scheme}://h/0?db=1&{param}={pw}&workspace=w#frag",
    "{scheme}://:{pw}@h/0?{param}={pw}",
]


def _odd_urls(password: str, port: int) -> list[str]:
    host = f"127.0.0.1:{port}"
    return [
        f"REDIS://:{password}@{host}/0",
        f"Redis://:{password}@{host}/0",
        f"redis:/:{password}@{host}/0",
        f"redis+tls://:{password}@{host}/0",
        f"valkey://:{password}@{host}/0",
        f"redis://:{password[:5]}#{password[5:]}@{host}/0",
        f"redis://:{password[:5]}/{password[5:]}@{host}/0",
        f"redis://:{password[:5]}?{password[5:]}@{host}/0",
        f"rediss://{host}/0?ssl_password={password}",
        f"redis://{host}/0?token={password}",
        f"redis://:{password}@[::1:{port}/0",
    ]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _coord(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> tuple[int, str]:
    """``coord ARGS`` in its own process: exit code and stdout + stderr."""
    full = {k: v for k, v in os.environ.items() if k not in ("COORD_URL", "COORD_DIR")}
    full.update(COORD_FSYNC="0", **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-m", "agentcoord", *args],
        input=stdin,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


# -- the masker ---------------------------------------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(
    password=st.text(alphabet=PASSWORD_CHARS, min_size=4, max_size=40),
    scheme=st.sampled_from(SCHEMES),
    param=st.sampled_from(SECRET_PARAMS),
    template=st.sampled_from(TEMPLATES),
)
def test_a_masked_url_never_contains_its_password(
    password: str, scheme: str, param: str, template: str
) -> None:
    url = template.format(scheme=scheme, param=param, pw=password)
    # Only a password that is not also spelt by the rest of the URL can be looked for.
    assume(password not in template.format(scheme=scheme, param=param, pw="***"))
    assert password not in mask_url(url), url
    assert password not in scrub(f"error: {password!r} is wrong", url), url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://user:pw@h:1/0?workspace=w", "redis://***@h:1/0?workspace=w"),
        ("redis://pw@h", "redis://***@h"),
        ("REDIS://:pw@h", "REDIS://:***@h"),
        ("redis:/:pw@h", "redis:/:***@h"),
        ("redis://:a#b/c?d@h/0", "redis://:***@h/0"),
        ("rediss://h/0?ssl_password=pw", "rediss://h/0?ssl_password=***"),
        (
            "rediss://h/0?workspace=w&Ssl_Password=pw&x=1",
            "rediss://h/0?workspace=w&Ssl_Password=***",
        ),
        ("unix:///run/redis.sock?db=0", "unix:///run/redis.sock?db=0"),
        ("redis://h o/0", "redis://***"),
        ("redis://h/\x1b]0;x", "redis://***"),
        ("/a/plain/directory", "/a/plain/directory"),
        ("no scheme:pw@h", "***"),
    ],
)
def test_the_masker_keeps_what_is_safe_to_show(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_has_credential_follows_the_maskers_rule() -> None:
    assert SECRET_WORDS
    assert workspace.has_credential("redis://:p#w@h:1/0")  # an unencoded "#" in the password
    assert not workspace.has_credential("redis://h:1/0?workspace=team")
    for param in SECRET_PARAMS:
        url = f"rediss://h/0?{param}=v"
        assert workspace.has_credential(url) and mask_url(url).endswith("=***")
        assert "v" in credentials_in(url)


def test_the_store_location_masks_every_secret_parameter() -> None:
    """``location`` is what status, the dashboard header, doctor and migrate show."""
    url = f"rediss://127.0.0.1:1/0?ssl_password={SECRET}&ssl_keyfile=/k"
    conn = Connection(url, client=object())  # type: ignore[arg-type]
    assert SECRET not in conn.location and "ssl_password=***" in conn.location


# -- through the CLI ------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["stdin", "argument", "env"])
def test_odd_url_forms_never_print_the_password(tmp_path: Path, how: str) -> None:
    port = _closed_port()
    for url in _odd_urls(SECRET, port):
        if how == "stdin":
            runs = [
                _coord("--url", "-", "--json", "status", stdin=url + "\n"),
                _coord("--dir", str(tmp_path / "a"), "init", "--url", "-", stdin=url + "\n"),
            ]
        elif how == "argument":
            runs = [
                _coord("--url", url, "status"),
                _coord("--dir", str(tmp_path / "b"), "--json", "init", "--url", url),
            ]
        else:
            runs = [_coord("--dir", str(tmp_path / "c"), "status", env={"COORD_URL": url})]
        for code, out in runs:
            assert SECRET not in out and SECRET[5:] not in out, (url, out)
            assert "Traceback" not in out, (url, out)
            assert code in (2, 5), (url, code, out)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_bad_ipv6_host_is_exit_2_not_a_traceback() -> None:
    code, out = _coord("--url", "-", "--json", "status", stdin=f"redis://:{SECRET}@[::1:1/0\n")
    assert code == 2, out
    error = json.loads(out.strip().splitlines()[-1])["error"]
    assert error["code"] == "invalid_input" and "Invalid IPv6 URL" in error["message"]
    assert SECRET not in out


def test_an_unencoded_hash_in_the_password_says_how_to_write_it() -> None:
    url = f"redis://:{SECRET[:5]}#{SECRET[5:]}@127.0.0.1:1/0"
    code, out = _coord("--url", "-", "status", stdin=url + "\n")
    assert code == 2 and "%23" in out and SECRET[5:] not in out, out


def test_an_unknown_query_parameter_is_exit_2_not_a_traceback() -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0?tokn={SECRET}"
    code, out = _coord("--url", "-", "status", stdin=url + "\n")
    assert code == 2 and "Traceback" not in out and SECRET not in out, out


def test_status_and_the_dashboard_never_show_a_secret_parameter(
    tmp_path: Path, url_redis: RedisServer
) -> None:
    """A working URL with the password in a query parameter (``password=``): every line that
    names the store shows it masked."""
    url = (
        f"redis://127.0.0.1:{url_redis.port}/0?password={SECRET}&workspace=w{uuid.uuid4().hex[:6]}"
    )
    for args in (["status"], ["--json", "status"], ["doctor"], ["dashboard", "--once"]):
        _, out = _coord("--url", "-", *args, stdin=url + "\n")
        assert SECRET not in out, (args, out)
        assert "Traceback" not in out, (args, out)


# -- migrate --to - -------------------------------------------------------------------------------
def test_migrate_to_stdin_records_the_url_it_read(tmp_path: Path, url_redis: RedisServer) -> None:
    root = tmp_path / "ws"
    assert main(["--dir", str(root), "-q", "init"]) == 0
    assert main(["--dir", str(root), "-q", "task", "create", "moved", "--id", "m1"]) == 0
    url = f"{url_redis.url}?workspace=mig{uuid.uuid4().hex[:8]}"
    code, out = _coord("--dir", str(root), "--json", "migrate", "--to", "-", stdin=url + "\n")
    assert code == 0, out
    assert SECRET not in out
    config = root / "config.json"
    assert json.loads(config.read_text())["url"] == url
    assert json.loads(config.read_text())["backend"] == "redis"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    code, out = _coord("--dir", str(root), "--json", "task", "show", "m1")
    assert code == 0 and json.loads(out)["id"] == "m1", out


def test_migrate_never_takes_a_mistyped_url_for_a_directory(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert main(["--dir", str(root), "-q", "init"]) == 0
    for to in (f"redis:/:{SECRET}@127.0.0.1:1/0", f"REDIS://:{SECRET}@127.0.0.1:1/0"):
        code, out = _coord("--dir", str(root), "migrate", "--to", "-", stdin=to + "\n")
        assert code == 2 and "unsupported target" in out and SECRET not in out, out
    assert not any(SECRET in str(p) for p in tmp_path.rglob("*"))


# -- doctor's message in a shared workspace ------------------------------------------------------
@needs_root
def test_doctor_fix_says_which_readers_the_mode_it_sets_allows(url_redis: RedisServer) -> None:
    with shared_tmp() as base:
        root = base / "ws"
        made = run_as(None, root, "init", "--shared-group", str(GID), "--url", url_redis.url)
        assert made.returncode == 0, made.stderr
        config = root / "config.json"
        os.chmod(config, 0o644)
        fixed = run_as(None, root, "doctor", "--fix")
        assert stat.S_IMODE(config.stat().st_mode) == 0o640
        text = fixed.stdout + fixed.stderr
        assert "owner only" not in text and "its owner and group only (mode 640)" in text, text
