"""The safety net against write loops: a budget of writes per child while the spec is unchanged.

Every write the operator makes is meant to be justified by a difference the apiserver sees. If a
bug, an admission webhook or another controller makes the same child differ again after every
write, this budget stops the loop: past `limit` writes of one child within `window` seconds with
no spec change, that child is left alone for a backoff that doubles each time it trips again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

WRITE_LIMIT = 5
WINDOW_SECONDS = 60.0
FIRST_BACKOFF_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 960.0

Child = tuple[str, ...]  # (kind, name, field): what is written again and again


@dataclass
class _History:
    writes: list[float] = field(default_factory=list)
    blocked_until: float = 0.0
    backoff: float = FIRST_BACKOFF_SECONDS


@dataclass
class WriteBudget:
    """Write history of the children of one GptOssDeployment."""

    limit: int = WRITE_LIMIT
    window: float = WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    _children: dict[Child, _History] = field(default_factory=dict)

    def blocked(self, child: Child) -> float:
        """Seconds until `child` may be written again (0 when it may be written now)."""
        history = self._children.get(child)
        return max(0.0, history.blocked_until - self.clock()) if history else 0.0

    def record(self, child: Child) -> float:
        """Count one write of `child`; when it used up the budget, start (or double) the backoff
        and return its length in seconds, else 0."""
        now = self.clock()
        history = self._children.setdefault(child, _History())
        history.writes = [t for t in history.writes if now - t < self.window] + [now]
        if len(history.writes) <= self.limit:
            return 0.0
        delay = history.backoff
        history.blocked_until = now + delay
        history.backoff = min(delay * 2, MAX_BACKOFF_SECONDS)
        history.writes = []
        return delay

    def reset(self) -> None:
        """The spec changed: writes are expected again, and the history no longer applies."""
        self._children.clear()
