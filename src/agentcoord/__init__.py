"""agentcoord: coordination for teams of AI coding agents.

The public API is :class:`Coordinator` (open a workspace on a directory or a Redis URL) and the
exceptions in :mod:`agentcoord.errors`. Attributes are imported lazily so that ``import
agentcoord`` stays cheap for the CLI.
"""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .api import Coordinator
    from .errors import CoordError

__all__ = ["CoordError", "Coordinator", "__version__"]


def __getattr__(name: str) -> object:
    if name == "Coordinator":
        from .api import Coordinator

        return Coordinator
    if name == "CoordError":
        from .errors import CoordError

        return CoordError
    raise AttributeError(f"module 'agentcoord' has no attribute {name!r}")
