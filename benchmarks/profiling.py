"""Profiles attached to the report when a target is not met: cProfile of a call, and
``python -X importtime`` of a command."""

from __future__ import annotations

import subprocess

from .common import python

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_PROFILES: list[tuple[str, str]] = []


def add_profile(title: str, text: str) -> None:
    """Attach a profile (shown in docs/benchmarks.md) explaining a target not met."""
    _PROFILES.append((title, text.rstrip()))


def take_profiles() -> list[tuple[str, str]]:
    out = list(_PROFILES)
    _PROFILES.clear()
    return out


def cprofile_text(fn: Callable[[], object], *, top: int = 18) -> str:
    """cProfile of ``fn()``: the functions with the most own time, then the most cumulative."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    return "\n".join(ln for ln in lines if not ln.startswith(("Ordered by", "   Random")))


def importtime_text(
    argv: Sequence[str], *, env: dict[str, str] | None = None, top: int = 15
) -> str:
    """``python -X importtime`` of a command: total import time and the costliest imports."""
    cmd = list(argv)
    if cmd and cmd[0] != python():
        cmd = [python(), *cmd]  # the console script is a Python file
    cmd[1:1] = ["-X", "importtime"]
    proc = subprocess.run(
        cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3:
            continue
        try:
            self_us, cum_us = int(parts[0]), int(parts[1])
        except ValueError:
            continue
        name = parts[2].rstrip()
        rows.append((cum_us, self_us, name.strip(), len(name) - len(name.lstrip())))
    total_self = sum(r[1] for r in rows)
    top_level = sorted((r for r in rows if r[3] == 1), reverse=True)[:top]
    out = [f"total import time (sum of self): {total_self / 1000:.1f} ms", ""]
    out.append(f"{'cumulative ms':>14} {'self ms':>8}  top-level import")
    out += [f"{c / 1000:14.1f} {s / 1000:8.1f}  {n}" for c, s, n, _ in top_level]
    own = sorted(
        (r for r in rows if r[2].startswith("agentcoord")), key=lambda r: r[1], reverse=True
    )
    if own:
        out += ["", "agentcoord modules imported (self ms):"]
        out += [f"{s / 1000:14.1f}  {n}" for _, s, n, _ in own[:top]]
    return "\n".join(out)
