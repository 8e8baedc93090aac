"""The periodic memory work of the watchdog: a full garbage collection after activity, none
while idle (an idle operator at 1,000 resources stays at ~0 % CPU)."""

from __future__ import annotations

import gc
import weakref

from gptoss_operator import memory


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_a_full_collection_runs_after_activity_and_not_while_idle() -> None:
    memory.collect_if_busy()
    assert memory.collect_if_busy() is False  # nothing allocated since: idle
    garbage = _Node()
    freed = weakref.ref(garbage)
    gc.freeze()  # as if it had long been promoted past the young generations
    del garbage
    try:
        kept = [[i] for i in range(20_000)]  # activity: the young generations are collected
        assert freed() is not None  # a frozen cycle survives them
        gc.unfreeze()
        assert memory.collect_if_busy() is True
        assert freed() is None
        assert memory.collect_if_busy() is False
        del kept
    finally:
        gc.unfreeze()
