"""One monitor run per window however many controllers cycle a model: a claim written once.

Two controllers on one model (shards that overlap, a rollout running the old and the new
deployment side by side) would otherwise both log a monitor run for the same window, and
both act on it. MLflow has one compare-and-set: a run's parameter is written once, and a
second write of the key is refused (``tracking.write_param_once``). So a cycle claims the
window in the run it follows (the newest finished monitor run; before the first, the drift
history run): parameter ``driftctl.next.<n>`` = ``"<window key> <lease> <token>"``. The
cycle whose value holds logs the window; any other stands down while the claim's lease
holds. A claim whose command failed is released (``driftctl.next.<n>.released``); one
whose command was killed lapses with its lease, the command's deadline, and the next cycle
claims slot ``n + 1``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from controller import tracking

NEXT = tracking.TAG + "next."


@dataclass(frozen=True)
class Claim:
    run_id: str  # the run it is written in
    slot: str

    def release(self) -> None:
        """Give the window up (the command failed): the next cycle claims it at once."""
        tracking.write_param_once(self.run_id, self.slot + ".released", "true")


class Held(Exception):
    """Another cycle holds the window: it logs the monitor run and acts on it."""

    def __init__(self, until: str):
        super().__init__(until)
        self.until = until


def claim(follows, key: str, horizon: float) -> Claim:
    """Claim window ``key`` in run ``follows`` (with its parameters, as MLflow returns a
    run) for this command: until its watchdog ends it, else for ``horizon`` seconds.
    Raises ``Held`` when another cycle's claim holds."""
    ours = f"{key} {tracking.lease(horizon)} {uuid.uuid4().hex[:12]}"
    params = follows.data.params
    while True:
        n, held = _last(params)
        if held is not None and f"{NEXT}{n}.released" not in params:
            # "<key> <lease> <token>"; a value not written so has lapsed
            lease = [*held.split(" "), "", ""][1]
            if not tracking.lapsed(lease):
                raise Held(lease)
        slot = f"{NEXT}{n + 1}"
        if tracking.write_param_once(follows.info.run_id, slot, ours) == ours:
            return Claim(follows.info.run_id, slot)
        # Another cycle wrote the slot first: read what it holds, and judge that.
        params = tracking.get_run(follows.info.run_id).data.params


@contextlib.contextmanager
def released_on_error(held: Claim | None) -> Iterator[None]:
    """A block that gives ``held`` up if it fails (best effort: with the server gone, the
    claim lapses with its lease)."""
    try:
        yield
    except BaseException:
        if held is not None:
            with contextlib.suppress(Exception):
                held.release()
        raise


def _last(params: dict) -> tuple[int, str | None]:
    """The newest slot written in ``params`` and its value (0 and None: none yet)."""
    slots = [int(k[len(NEXT) :]) for k in params if k.startswith(NEXT) and k[len(NEXT) :].isdigit()]
    if not slots:
        return 0, None
    return max(slots), params[f"{NEXT}{max(slots)}"]
