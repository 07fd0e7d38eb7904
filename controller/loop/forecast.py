"""The cycle's forecast of when to retrain: the series of earlier cycles, read from the drift
history run, and their forecasts against the policy's floors.

Two series, each over the cycles of the version monitored (those since the latest cycle of
another version: a promotion starts a new series) plus this one:

- ``performance``: the primary metric measured on labelled rows (``performance.<metric>``;
  cycles without labels have none), else the one estimated before labels arrive
  (``performance.estimated.<metric>``). Its floor is the baseline's value worsened by
  ``[retrain] max_performance_drop``, relatively (``performance.floor``): the point drop
  beyond which a cycle calls for retraining, when sampling noise does not explain it.
- ``drift_share``: the importance-weighted share of drifted features
  (``drift.weighted_share_drifted``), whose floor is ``[retrain] forecast_drift_share``.

The maths is ``controller.statistics.forecast``; this module only reads and names.
"""

from __future__ import annotations

from datetime import UTC, datetime

from controller import tracking
from controller.policy import Retrain
from controller.results.report import Report
from controller.statistics import performance
from controller.statistics.forecast import Forecast, forecast

DRIFT_SHARE = "drift.weighted_share_drifted"


def outlook(
    name: str, version, recent: list, report: Report, rules: Retrain
) -> tuple[list[tuple[str, float]], tuple[Forecast, ...]]:
    """The measured primary metric over every earlier cycle, as (window end, value) for the
    report's chart, and this cycle's forecasts. ``recent`` are the latest monitor runs,
    newest first (their tag names the drift history run; runs of earlier releases were
    nested under it)."""
    tags = recent[0].data.tags if recent else {}
    history = tags.get(tracking.HISTORY_RUN) or tags.get(tracking.PARENT_RUN)
    measured = performance.primary(report.performance)
    if measured:
        key, metric, now = f"performance.{measured}", measured, report.performance[measured]
    else:
        metric = performance.primary(report.estimated)
        key, now = f"performance.estimated.{metric}", (report.estimated.get(metric) or [None])[0]
    read = {k: tracking.metric_history(history, k) if history else [] for k in (key, DRIFT_SHARE)}
    chart = sorted(
        (datetime.fromtimestamp(m.timestamp / 1000, UTC).isoformat(), m.value)
        for m in (read[key] if measured else [])
    )
    since = _since(name, version) if history else None
    out = []
    base = report.baseline_performance.get(metric) if metric else None
    if metric and base and now is not None:
        out.append(
            forecast(
                [*_series(read[key], since), now],
                performance.floor(metric, base, rules.max_performance_drop),
                worse_below=performance.greater_is_better(metric),
                series="performance",
                horizon=rules.forecast_horizon,
                measure=metric if measured else f"{metric} estimated",
            )
        )
    if report.weighted_share_drifted is not None:
        out.append(
            forecast(
                [*_series(read[DRIFT_SHARE], since), report.weighted_share_drifted],
                rules.forecast_drift_share,
                worse_below=False,
                series="drift_share",
                horizon=rules.forecast_horizon,
                measure="importance-weighted share of drifted features",
            )
        )
    return chart, tuple(out)


def _since(name: str, version) -> int | None:
    """The end (ms) of the window of the latest cycle of another version than ``version``:
    the series of ``version`` starts after it."""
    other = tracking.latest_runs(name, "monitor", 1, f"tags.`{tracking.VERSION}` != '{version}'")
    if not other:
        return None
    end = other[0].data.tags.get(tracking.TAG + "window_end")
    return int(datetime.fromisoformat(end).timestamp() * 1000) if end else None


def _series(metrics, since: int | None) -> list[float]:
    """The values, in the order the cycles were logged, of those after ``since``."""
    kept = [m for m in metrics if since is None or m.timestamp > since]
    return [m.value for m in sorted(kept, key=lambda m: (m.step, m.timestamp))]
