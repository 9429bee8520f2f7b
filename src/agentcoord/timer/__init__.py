"""The coordination timer (SPEC section 5, seed 004): a detached daemon that writes a checkpoint
file on an absolute schedule, reaps expired leases on every tick, and the check-in that tells a
coordinator (or an agent tool's hook) when a new checkpoint arrived.

Modules: :mod:`.files` (paths and formats), :mod:`.daemon` (the tick loop, run as
``python -m agentcoord.timer.daemon``), :mod:`.control` (start, stop, status), :mod:`.check` (the
seed's check semantics and banner), :mod:`.health` (the rich data: monitor classes, open tasks,
reclaimed tasks, commits), :mod:`.hooks` (agent-tool hook output). Nothing is imported here, so
the daemon and the CLI load only what they use.
"""

from __future__ import annotations
