"""One action at a time: registry hints from webhooks and scheduled cycles, in one thread.

An approval and a scheduled cycle never overlap in this process, and a burst of hints
collapses into one pending action of each kind: an action re-reads the registry, so two
queued promotes do no more than one. A promote that fails (MLflow briefly down, say) is
tried again after 10 s, then after twice as long each time, up to 10 minutes, until a
promote or a cycle succeeds: without ``--every`` no cycle would make it good.

Each action is bounded by the policy's ``[tracking] deadline``, as a command is. Past it,
``/health`` answers 503 so that an orchestrator restarts the service; past a grace after
it too (half the deadline, at most a minute), the service ends with one error: a thread
waiting on a hung tracking server cannot be cancelled, and a supervisor without a probe
(systemd's ``Restart=on-failure``) restarts only a process that exits. The runs and claims
an action makes carry its lease (``tracking.action_lease``), the moment the service ends
at the latest, so that a ``cycle`` beside the service sweeps only what no process holds.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections import deque
from datetime import UTC, datetime, timedelta

from controller import tracking
from controller._errors import DriftctlError
from controller.loop import cycle as loop
from controller.policy import Policy

PROMOTE, CYCLE = "promote", "cycle"
RETRY_FIRST, RETRY_MAX = 10.0, 600.0  # seconds before a failed promote is tried again
GRACE_MAX = 60.0  # seconds an action may overrun its deadline before the service ends
EXIT_OVERRUN = 2  # as a command its watchdog ends (``controller.cli``)


def log(line: str) -> None:
    """One line to stderr, time-stamped; what a service's journal keeps."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    # One write per line: handler threads logging at once do not interleave.
    sys.stderr.write(f"{stamp} driftctl serve: {line}\n")
    sys.stderr.flush()


class Worker:
    """Runs ``promote`` and ``cycle`` for one model, one at a time, and a cycle every
    ``every`` seconds (none when ``every`` is None)."""

    def __init__(self, model: str, policy: Policy, every: float | None = None):
        self.model = model
        self.policy = policy
        self.every = every
        self.deadline = policy.tracking.deadline_seconds
        self.grace = min(GRACE_MAX, self.deadline / 2)
        self._started: float | None = None  # time.monotonic() when the running action began
        self._pending: deque[tuple[str, str]] = deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._state = {"last_action": None, "last_action_at": None, "last_result": None,
                       "last_error": None, "last_error_at": None, "actions": 0,
                       "running": None, "running_since": None, "promote_retry_at": None}
        self._thread = threading.Thread(target=self._loop, name="driftctl-worker")

    def start(self) -> None:
        self._thread.start()

    def submit(self, kind: str, why: str) -> str:
        """Queue ``kind``: ``queued``, ``already queued`` (the waiting one will read the same
        registry) or ``stopping`` (nothing is queued any more)."""
        with self._wake:
            if self._stopping:
                return "stopping"
            if any(k == kind for k, _ in self._pending):
                return "already queued"
            self._pending.append((kind, why))
            self._wake.notify()
            return "queued"

    def stop(self) -> None:
        """Finish the action in progress (within its deadline and grace, else the service
        ends), drop the waiting ones, and return."""
        with self._wake:
            self._stopping = True
            dropped = len(self._pending)
            self._pending.clear()
            self._wake.notify()
        if dropped:
            log(f"stopping: {dropped} waiting action(s) dropped; the next cycle or promote "
                "reads the registry again")
        if self._thread.is_alive():
            self._thread.join()

    def health(self) -> dict:
        """The state, as ``/health`` shows it; with ``error`` once the running action has
        overrun its deadline (the service is then unhealthy)."""
        with self._wake:
            health = {"model": self.model, **self._state, "queue": len(self._pending),
                      "every_seconds": self.every, "deadline_seconds": self.deadline}
            late = None if self._started is None else (
                time.monotonic() - self._started - self.deadline)
        if late is not None and late > 0:
            health["error"] = (
                f"the {health['running']} running since {health['running_since']} has not "
                f"finished within the policy's deadline of {self.deadline:g} s; the service "
                f"ends in {max(0.0, self.grace - late):.0f} s unless it finishes")
        return health

    def _loop(self) -> None:
        # The first cycle runs at once: deliveries lost while the service was down are
        # made good by reading the registry, not by waiting for the next hint.
        next_cycle = time.monotonic() if self.every is not None else None
        retry_at, backoff = None, 0.0
        while True:
            with self._wake:
                while not self._stopping and not self._pending:
                    now = time.monotonic()
                    if next_cycle is not None and now >= next_cycle:
                        self._pending.append((CYCLE, "scheduled"))
                    elif retry_at is not None and now >= retry_at:
                        self._pending.append((PROMOTE, "retry after a failure"))
                    else:
                        due = [t for t in (next_cycle, retry_at) if t is not None]
                        self._wake.wait(min(due) - now if due else None)
                if self._stopping:
                    return
                kind, why = self._pending.popleft()
                # With the pop: never idle-looking in between.
                self._started = time.monotonic()
                self._state.update(running=kind, running_since=_now())
            failed = self._act(kind, why)
            if kind == CYCLE and self.every is not None:
                next_cycle = time.monotonic() + self.every
            if kind == PROMOTE and failed:
                backoff = min(backoff * 2, RETRY_MAX) if backoff else RETRY_FIRST
                retry_at = time.monotonic() + backoff
                log(f"promote: trying again in {backoff:.0f} s")
            elif not failed:  # a cycle reconciles the registry as a promote does
                retry_at, backoff = None, 0.0
            with self._wake:
                self._state["promote_retry_at"] = None if retry_at is None else (
                    datetime.now(UTC) + timedelta(seconds=retry_at - time.monotonic())
                ).isoformat(timespec="seconds")

    def _act(self, kind: str, why: str) -> bool:
        """Run ``kind`` within its deadline, record and log what it did; True when it
        failed."""
        started = self._started
        bound = self.deadline + self.grace
        overrun = threading.Timer(bound, self._overrun, (kind, why, started))
        overrun.daemon = True
        overrun.start()
        error = None
        try:
            with tracking.action_lease(time.time() + bound), tracking.translated_errors():
                if kind == PROMOTE:
                    said = loop.promote(self.model, self.policy) or ["nothing to do"]
                else:
                    said = _cycle_words(loop.cycle(self.model, policy=self.policy))
            result = "; ".join(said)
        except DriftctlError as exc:
            result = f"{exc.problem} (fix: {exc.fix})"
            # /health answers anyone: the error's kind and first line, never a whole trace.
            error = f"{type(exc).__name__}: {exc.problem.splitlines()[0][:300]}"
        except Exception as exc:  # a bug must not stop the service: report it and go on
            result = f"internal error: {exc!r}"
            error = f"internal error ({type(exc).__name__}); see the service's log"
            print(tracking.redact(traceback.format_exc(), tracking.tracking_uri()), end="",
                  file=sys.stderr, flush=True)
        finally:
            overrun.cancel()
        uri = tracking.tracking_uri()
        result = tracking.redact(result, uri)
        error = error and tracking.redact(error, uri)
        now = _now()
        with self._wake:
            self._started = None
            self._state.update(last_action=kind, last_action_at=now,
                               last_result=error or result, running=None, running_since=None)
            self._state["actions"] += 1
            if error:
                self._state.update(last_error=f"{kind}: {error}", last_error_at=now)
        took = time.monotonic() - started
        log(f"{kind} ({why}) {'FAILED' if error else 'done'} in {took:.1f} s: {result}")
        return error is not None

    def _overrun(self, kind: str, why: str, started: float) -> None:
        """End the service: the action begun at ``started`` overran its deadline and grace."""
        with self._wake:
            if self._started != started:  # it finished as the timer fired
                return
        tracking.overran(
            "serve",
            f"the {kind} ({why})",
            f"the policy's deadline of {self.deadline:g} s, nor {self.grace:g} s after it",
            "; the service ends, as an action in progress cannot be stopped otherwise",
            "; restarted, the service reads the registry again and the next cycle finishes "
            "what this action left",
            EXIT_OVERRUN,
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _cycle_words(result: loop.CycleResult) -> list[str]:
    """A cycle's result on one line: what the registry did, the window, the retrain."""
    said = list(result.registry)
    if result.held_until:
        said.append(f"another cycle is monitoring this window (claim until {result.held_until})")
    elif result.report is None:
        said.append(f"nothing new since monitor run {result.monitor_run}")
    else:
        said.append(f"monitor run {result.monitor_run}: {result.verdict}")
    if result.retrain is not None:
        said.append(result.retrain.render().splitlines()[0])
    if result.waiting:
        said.append(f"retrain waiting: {result.waiting}")
    return said
