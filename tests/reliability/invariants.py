"""Parent-side helpers of the reliability suite: spawning workers, and the invariants checked
after torture and crashes straight from the files (independently of ``agentcoord.ops.doctor``)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agentcoord.api import Coordinator
from agentcoord.store.markdown.codec.agent import parse_agent
from agentcoord.store.markdown.codec.context import parse_context
from agentcoord.store.markdown.codec.event import parse_events
from agentcoord.store.markdown.codec.task import parse_task

REPO = str(Path(__file__).resolve().parents[2])


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.workers", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("COORD_URL", None)
    env["COORD_FSYNC"] = "0"
    env.update(extra or {})
    return env


def write_config(root: str, **values: Any) -> None:
    path = Path(root) / "config.json"
    config = json.loads(path.read_text()) if path.exists() else {}
    config.update(values)
    path.write_text(json.dumps(config, indent=2) + "\n")


def target(backend: str, request: Any) -> str | None:
    """A Redis URL with a fresh workspace name for ``backend == "redis"`` (the session's own
    redis-server), else None (the markdown directory)."""
    if backend != "redis":
        return None
    import uuid

    server = request.getfixturevalue("redis_server")
    return f"{server.url}?workspace=rel-{uuid.uuid4().hex[:10]}"


def open_coord(root: str, url: str | None) -> Coordinator:
    return Coordinator.open(root, url=url)


def archived(coord: Coordinator, root: str) -> dict[str, list[Any]]:
    """Archived tasks by id (markdown: read from ``archive/task-*.md`` by hand, as a person
    would; other stores: their archive)."""
    found: dict[str, list[Any]] = {}
    if url_backend(coord):
        tasks = [t for _, t in coord.store.list_archived_tasks()]
    else:
        tasks = [parse_task(p.read_text(), str(p)) for p in Path(root).glob("archive/task-*.md")]
    for task in tasks:
        found.setdefault(task.id, []).append(task)
    return found


def url_backend(coord: Coordinator) -> bool:
    return type(coord.store).__name__ != "MarkdownStore"


def frozen(coord: Coordinator, at: float) -> Coordinator:
    """The same store seen at a fixed time (so leases cannot expire between check and fix)."""
    return Coordinator(
        coord.store, config=coord.config, workspace=coord.workspace, clock=lambda: at
    )


def parse_every_file(root: str) -> int:
    """Parse every record file of a markdown workspace (raises CorruptData); returns how many."""
    base = Path(root)
    count = 0
    for path in [*base.glob("*.md"), *base.glob("archive/*.md")]:
        text = path.read_bytes().decode("utf-8", errors="replace")
        name = path.name
        if name.startswith("task-"):
            parse_task(text, str(path))
        elif name.startswith("agent-"):
            parse_agent(text, str(path))
        elif name.startswith("context-"):
            parse_context(text, str(path))
        elif name.startswith("events-"):
            parse_events(text, str(path), "x")
        else:
            continue
        count += 1
    for path in base.glob(".state/*.json"):
        if not path.name.startswith("."):
            json.loads(path.read_text())
            count += 1
    for path in base.glob(".state/counter-*"):
        int(path.read_text().strip())
        count += 1
    return count


def held_locks(root: str) -> list[str]:
    """Lock files some process still holds (flock: only a live process can hold one)."""
    held = []
    for lock in sorted((Path(root) / ".locks").iterdir()):
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held.append(lock.name)
        finally:
            os.close(fd)
    return held


def temp_files(root: str) -> list[str]:
    return sorted(str(p) for p in Path(root).rglob(".*.tmp-*"))


def report(name: str, **counts: Any) -> None:
    """Append the counts of a run to ``$COORD_RELIABILITY_REPORT`` (for the closing note)."""
    target = os.environ.get("COORD_RELIABILITY_REPORT")
    if target:
        with open(target, "a") as fh:
            fh.write(json.dumps({"test": name, **counts}) + "\n")
