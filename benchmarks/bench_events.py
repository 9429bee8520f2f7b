"""Event delivery to a ``coord event tail CHANNEL --follow --json`` subscriber in another process.

The benchmark process emits events through the Python API, one every few milliseconds, and reads
the subscriber's NDJSON output; latency is from the moment ``emit`` is called to the moment the
line arrives. SPEC section 8: p99 <= 10 ms on markdown, <= 5 ms on Redis.

Baselines in the same run, measured the same way: the floor of each transport on this machine
right now, i.e. a bare ``watchfiles`` subscriber (same settings as the markdown backend) seeing an
atomic file replace, and a bare redis-py pub/sub subscriber seeing a ``PUBLISH``. A second
markdown run with the emitter's fsync off separates the cost of the durable write from delivery.
Channels are filled first with as many events as the live log keeps (steady state).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import threading
import time

from .common import (
    NotAvailable,
    child_env,
    coord_argv,
    fast_store,
    median,
    ms,
    percentile,
    python,
    redis_server,
    row,
    scratch_dir,
    unavailable,
    with_workspace_param,
    workspace,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Row = dict[str, Any]

NAME = "events"
TITLE = "Event delivery to a --follow subscriber"
CHANNEL = "bench"
MD_TARGET_MS = 10.0
REDIS_TARGET_MS = 5.0


def available() -> str | None:
    """Why the scenario cannot run yet (None when it can)."""
    for module in ("agentcoord.domain.events", "agentcoord.cli.cmd_event"):
        try:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not written yet"
        except ImportError:
            return f"{module} cannot be imported"
    return None


#: The transport floors: subscribers printing the same NDJSON shape as ``coord event tail``.
WATCH_FLOOR = """
import json, os, sys, watchfiles
from agentcoord.store.markdown import watch as md_watch
for changes in watchfiles.watch(sys.argv[1], debounce=md_watch.DEBOUNCE_MS, step=md_watch.STEP_MS,
                                rust_timeout=md_watch.SLICE_MS, yield_on_timeout=True):
    for _, path in sorted(changes, key=lambda c: c[1]):
        name = os.path.basename(path)
        if name.startswith("ev-") and os.path.exists(path):
            print(json.dumps({"fields": {"k": name[3:]}}), flush=True)
"""
PUBSUB_FLOOR = """
import json, sys, redis
pubsub = redis.Redis.from_url(sys.argv[1]).pubsub(ignore_subscribe_messages=True)
pubsub.subscribe("bench-floor")
for message in pubsub.listen():
    print(json.dumps({"fields": {"k": message["data"].decode()}}), flush=True)
"""


def coord_subscriber(location: list[str]) -> list[str]:
    """``coord ... --json event tail CHANNEL --follow -n 0`` (only new events)."""
    return [*coord_argv(), *location, "--json", "event", "tail", CHANNEL, "--follow", "-n", "0"]


class Subscriber:
    """A subscriber process whose NDJSON lines a thread timestamps; stopped by pid."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        self.received: dict[str, float] = {}
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.perf_counter()
            try:
                key = str(json.loads(line)["fields"]["k"])
            except (ValueError, KeyError, TypeError):
                continue
            with self.cond:
                self.received[key] = now
                self.cond.notify_all()

    def wait_for(self, key: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while key not in self.received:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return False
                self.cond.wait(min(left, 0.1))
            return True

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err or ""


def measure(
    emit: Callable[[str], object], argv: list[str], n: int, gap: float
) -> tuple[list[float], list[float]]:
    """(latencies, emit durations) in seconds for ``n`` events, one every ``gap`` seconds."""
    sub = Subscriber(argv)
    try:
        # Ready when a warm-up event comes through (the watch is set up before the first read).
        for i in range(100):
            emit(f"w{i}")
            if sub.wait_for(f"w{i}", 0.3):
                break
        else:
            raise RuntimeError(f"the subscriber printed nothing: {sub.stop()[-300:]}")
        sent: dict[str, float] = {}
        durations = []
        for i in range(n):
            key = f"e{i}"
            t0 = time.perf_counter()
            emit(key)
            durations.append(time.perf_counter() - t0)
            sent[key] = t0
            time.sleep(gap)
        missing = [k for k in sent if not sub.wait_for(k, 5.0)]
        if missing:
            raise RuntimeError(f"{len(missing)} of {n} events never reached the subscriber")
        return [sub.received[k] - t for k, t in sent.items()], durations
    finally:
        sub.stop()


def prefill(coord: Any, n: int = 100) -> None:
    """A channel in steady state: as many events as the live log keeps (default 100)."""
    for i in range(n):
        coord.events.emit(CHANNEL, "fill", {"k": f"f{i}", "note": "earlier traffic"})


def emitter(coord: Any) -> Callable[[str], object]:
    return lambda key: coord.events.emit(CHANNEL, "ping", {"k": key})


def file_emitter(directory: str) -> Callable[[str], None]:
    """An atomic replace of a small file (no fsync): what the watch floor sees."""

    def emit(key: str) -> None:
        path = os.path.join(directory, f"ev-{key}")
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            fh.write(key)
        os.replace(path + ".tmp", path)

    return emit


def _row(
    name: str,
    lat: list[float],
    dur: list[float],
    floor: list[float] | None,
    target: float | None,
    note: str = "",
) -> Row:
    p99 = ms(percentile(lat, 99))
    return row(
        name,
        p99,
        "ms",
        baseline=ms(percentile(floor, 99)) if floor else None,
        target=f"p99 <= {target:g} ms" if target else "",
        met=p99 <= target if target else None,
        note=f"p50 {ms(percentile(lat, 50)):.1f} ms, max {ms(max(lat)):.1f} ms over {len(lat)} "
        f"events; emit call median {ms(median(dur)):.1f} ms{note}",
    )


def run(quick: bool = False) -> list[Row]:
    from agentcoord.api import Coordinator

    n, gap = (60, 0.02) if quick else (250, 0.02)
    md_name = "markdown: emit -> --follow subscriber, p99"
    redis_name = "Redis: emit -> --follow subscriber, p99"
    md_target = f"p99 <= {MD_TARGET_MS:g} ms"
    redis_target = f"p99 <= {REDIS_TARGET_MS:g} ms"
    why = available()
    if why:
        return [
            unavailable(md_name, why, unit="ms", target=md_target),
            unavailable(redis_name, why, unit="ms", target=redis_target),
        ]
    rows: list[Row] = []
    py = [python(), "-c"]
    with scratch_dir("watch-floor") as d:
        floor, dur = measure(file_emitter(d), [*py, WATCH_FLOOR, d], n, gap)
    rows.append(
        _row(
            "file-watch floor: atomic replace -> bare watchfiles (baseline)", floor, dur, None, None
        )
    )
    with workspace("events") as root:
        prefill(fast_store(root))
        lat, dur = measure(
            emitter(Coordinator.open(root)), coord_subscriber(["--dir", root]), n, gap
        )
        rows.append(_row(md_name, lat, dur, floor, MD_TARGET_MS, "; emitter durable (fsync on)"))
        lat, dur = measure(emitter(fast_store(root)), coord_subscriber(["--dir", root]), n, gap)
        rows.append(
            _row("markdown, emitter fsync off: emit -> subscriber, p99", lat, dur, floor, None)
        )
    try:
        with redis_server() as url:
            import redis

            client = redis.Redis.from_url(url)
            floor, dur = measure(
                lambda key: client.publish("bench-floor", key), [*py, PUBSUB_FLOOR, url], n, gap
            )
            client.close()
            rows.append(
                _row("pub/sub floor: PUBLISH -> bare redis-py (baseline)", floor, dur, None, None)
            )
            ws = with_workspace_param(url, "events")
            coord = Coordinator.open(url=ws)
            prefill(coord)
            lat, dur = measure(emitter(coord), coord_subscriber(["--url", ws]), n, gap)
            coord.close()
            rows.append(_row(redis_name, lat, dur, floor, REDIS_TARGET_MS))
    except NotAvailable as exc:
        rows.append(unavailable(redis_name, str(exc), unit="ms", target=redis_target))
    return rows
