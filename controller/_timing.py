"""Wall-clock time spent in each phase of a command, for the benchmarks.

Set ``DRIFTCTL_TIMINGS=FILE`` and a command writes its phases (seconds, JSON) to FILE on
exit. A phase nested in another counts for itself only, so the phases add up; time outside
every phase is the interpreter's start, argument parsing and exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

_spent: dict[str, float] = {}
_open: list[list] = []  # [name, start] of the phases entered, innermost last


def _charge(now: float) -> None:
    if _open:
        name, start = _open[-1]
        _spent[name] = _spent.get(name, 0.0) + now - start


@contextlib.contextmanager
def phase(name: str):
    """Add the time spent in the block, less that of phases nested in it, to ``name``."""
    now = time.perf_counter()
    _charge(now)
    _open.append([name, now])
    try:
        yield
    finally:
        now = time.perf_counter()
        _charge(now)
        _open.pop()
        if _open:
            _open[-1][1] = now


def write() -> None:
    """Write the phases to the file named by ``DRIFTCTL_TIMINGS``, if it is set."""
    path = os.environ.get("DRIFTCTL_TIMINGS")
    if path:
        with open(path, "w") as f:
            json.dump(_spent, f, indent=1)
