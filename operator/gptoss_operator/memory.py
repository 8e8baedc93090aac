"""The process's memory as the operating system sees it (RSS), not only Python's objects.

glibc keeps freed memory for reuse instead of returning it, per thread arena; after the burst of
a start with 1,000 resources (every object listed, parsed and indexed at once) that kept RSS
near its peak for good. Two arenas and a periodic trim give it back. Elsewhere than glibc
(musl, macOS) both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from typing import Any

M_ARENA_MAX = -8  # glibc's mallopt parameter


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


_LIBC = _libc()


def limit_malloc_arenas(arenas: int = 2) -> None:
    """At most `arenas` malloc heaps (glibc's default is 8 per core): memory freed by one
    thread is then reused by the others. Call before threads start."""
    if _LIBC is not None and hasattr(_LIBC, "mallopt"):
        _LIBC.mallopt(M_ARENA_MAX, arenas)


def trim() -> None:
    """Return free heap memory to the operating system (cheap when there is none)."""
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


_collections_seen = -1


def collect_if_busy() -> bool:
    """A full garbage collection when Python allocated since the last call (any collection
    ran), then nothing while idle. Objects in reference cycles (an exception and its frames,
    a finished future and its callbacks) are freed only by a full collection, which Python
    runs rarely once many objects live: after a namespace of 1,000 resources was deleted, their
    cycles held pools that the next 1,000 could not reuse: one of the causes of RSS growing
    with each such churn (the other fixes: docs/benchmarks.md). About 50 ms at 1,000 resources."""
    global _collections_seen
    if _collections() == _collections_seen:
        return False
    gc.collect()
    _collections_seen = _collections()  # counting this one: the next call sees only others
    return True


def _collections() -> int:
    """Collections of every generation so far: each is Python having allocated."""
    return sum(stats["collections"] for stats in gc.get_stats())
