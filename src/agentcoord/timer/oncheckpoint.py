"""``--on-checkpoint CMD``: run a shell command after each checkpoint, bounded by a timeout.

The command runs in the project directory with the checkpoint described in its environment
(``COORD_CHECKPOINT`` and friends, set by :mod:`.tick`), in its own process group so that a timeout
ends everything it started. The group is signalled only while its leader is still our unreaped
child, so its id cannot have been reused.
Its output goes to a temporary file (never a pipe that could fill up and stall it); the tail of
it is logged when it fails. A failure, a crash or a timeout is recorded and never stops the timer.
"""

from __future__ import annotations

import os
import signal
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: How much of a failed command's output is kept for the log.
OUTPUT_TAIL = 400


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_command(
    command: str,
    *,
    env: dict[str, str],
    cwd: str | None,
    timeout: float,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Run ``command`` with ``/bin/sh -c``; return ``exit``, ``seconds``, ``timed_out``,
    ``error`` and (on failure) ``output``. Stops early, killing it, if ``should_stop()``."""
    import subprocess
    import tempfile

    start = time.monotonic()
    result: dict[str, Any] = {"exit": None, "seconds": 0.0, "timed_out": False, "error": None}
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(
                command,
                shell=True,
                cwd=cwd if cwd and os.path.isdir(cwd) else None,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            result["error"] = f"cannot run: {exc.strerror or exc}"
            return result
        deadline = start + timeout
        while True:
            try:
                result["exit"] = proc.wait(timeout=max(0.0, min(0.1, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                stopping = should_stop()
                if not stopping and time.monotonic() < deadline:
                    continue
                result["timed_out"] = not stopping
                result["error"] = (
                    f"timed out after {timeout:g}s; killed" if not stopping else "timer stopping"
                )
                _killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    _killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                result["exit"] = proc.returncode
                break
        result["seconds"] = round(time.monotonic() - start, 3)
        if result["exit"] != 0 or result["error"]:
            out.seek(0, os.SEEK_END)
            size = out.tell()
            out.seek(max(0, size - OUTPUT_TAIL))
            result["output"] = out.read().decode("utf-8", "replace").strip()
    if result["exit"] not in (0, None) and result["error"] is None:
        result["error"] = f"exit {result['exit']}"
    return result
