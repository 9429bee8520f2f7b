"""Facts about other processes by pid: is it alive, when did it start.

Used wherever a pid is trusted: the timer's stop (never signal a reused pid), orphaned temp files
(remove only a dead writer's), the demo's own agent processes.
"""

from __future__ import annotations

import os


def proc_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` fields from field 3 (state) on; None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def proc_start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/PID/stat``: when the process started, in clock ticks since boot."""
    fields = proc_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    return int(fields[19])


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` names a live process (a zombie has already exited)."""
    if pid <= 0:
        return False
    fields = proc_fields(pid)
    if fields is not None:
        return fields[0] not in ("Z", "X")
    if os.path.isdir("/proc/self"):
        return False
    try:  # no procfs (not Linux): the best we can do is "a process with this pid exists"
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
