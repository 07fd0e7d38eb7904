"""When a series of cycle values will cross a floor: Holt's linear method as a state-space
model, ETS(A,A,N) (additive errors, additive trend, no season), fitted by maximum
likelihood with statsmodels, and its 90% prediction interval over the next cycles.

Pure: a series in (oldest first, one value per cycle), a ``Forecast`` out. The floor is
crossed when a value is worse than it: below it when ``worse_below`` (a metric where
greater is better), above it otherwise (a drift share, RMSE). Three crossing times are
given, each the first cycle ahead (1 = the next) at which a path is beyond the floor:

- ``cycles_to_floor``: the forecast's mean;
- ``low``: the interval's pessimistic bound (the soonest plausible crossing);
- ``high``: its optimistic bound (the latest), ``inf`` when not within the horizon.

All three are 0 when the latest value is beyond the floor already, and ``inf`` when the
path does not cross within the horizon.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np

MIN_POINTS = 5  # fewer cycles than this give no forecast
MAX_POINTS = 200  # only the latest cycles are fitted, which keeps a fit well under 0.5 s
LEVEL = 0.90  # of the prediction interval


@dataclass(frozen=True)
class Forecast:
    """A series' forecast against its floor; ``why`` says why there is none (then the
    paths are empty and the crossing times NaN)."""

    series: str  # performance or drift_share
    floor: float
    worse_below: bool  # the floor is crossed downwards (else upwards)
    n_points: int  # cycles fitted
    cycles_to_floor: float = math.nan
    low: float = math.nan
    high: float = math.nan
    mean: tuple[float, ...] = ()  # the next cycles' forecast, 1 to the horizon
    lower: tuple[float, ...] = ()  # the interval's bounds
    upper: tuple[float, ...] = ()
    level: float = LEVEL
    why: str = ""
    measure: str = ""  # what the series holds, in words (the metric, say)

    @property
    def available(self) -> bool:
        return not self.why

    def within(self, cycles: int) -> bool:
        """Whether the forecast's mean crosses the floor within ``cycles`` cycles."""
        return self.available and self.cycles_to_floor <= cycles

    def describe(self) -> str:
        """The forecast in words, for the report and the retrain decision."""
        name = f"{self.series} ({self.measure})" if self.measure else self.series
        if not self.available:
            return f"no forecast of {name}: {self.why}"
        horizon, floor = len(self.mean), f"its floor {self.floor:.4g}"
        if self.cycles_to_floor == 0:
            return f"{name} is beyond {floor} already"
        interval = (
            f"{self.level:.0%} interval: {_cycles(self.low, horizon)} to "
            f"{_cycles(self.high, horizon)} cycles; ETS(A,A,N) on {self.n_points} cycles"
        )
        if math.isinf(self.cycles_to_floor):
            return (
                f"{name} not forecast to cross {floor} within {horizon} cycles "
                f"({interval})"
            )
        return (
            f"{name} forecast to cross {floor} in {self.cycles_to_floor:.0f} cycle(s) "
            f"({interval})"
        )


def forecast(
    values,
    floor: float,
    *,
    worse_below: bool,
    series: str,
    horizon: int = 20,
    level: float = LEVEL,
    measure: str = "",
) -> Forecast:
    """Fit ETS(A,A,N) to ``values`` (oldest first; non-finite values are dropped, and only
    the latest ``MAX_POINTS`` kept) and forecast when it crosses ``floor`` within
    ``horizon`` cycles."""
    y = np.asarray(values, dtype=float)
    y = y[np.isfinite(y)][-MAX_POINTS:]
    base = Forecast(series, float(floor), worse_below, len(y), level=level, measure=measure)
    if len(y) < MIN_POINTS:
        return _none(base, f"{len(y)} cycle(s) so far; a forecast needs {MIN_POINTS}")
    if np.ptp(y) == 0:  # no variation to fit: the series stays where it is
        mean = lower = upper = np.full(horizon, y[-1])
    else:
        fitted = _fit(y, horizon, level)
        if fitted is None:
            return _none(base, "the model could not be fitted to the series")
        mean, lower, upper = fitted
    beyond = (lambda v: v < floor) if worse_below else (lambda v: v > floor)
    pessimistic, optimistic = (lower, upper) if worse_below else (upper, lower)
    if beyond(y[-1]):
        times = (0.0, 0.0, 0.0)
    else:
        times = tuple(_first(beyond(p)) for p in (mean, pessimistic, optimistic))
    return Forecast(
        series,
        float(floor),
        worse_below,
        len(y),
        *times,
        mean=tuple(map(float, mean)),
        lower=tuple(map(float, lower)),
        upper=tuple(map(float, upper)),
        level=level,
        measure=measure,
    )


def _fit(y: np.ndarray, horizon: int, level: float):
    """The next ``horizon`` means and interval bounds of ETS(A,A,N) fitted to ``y``, or None
    when the fit gives no finite forecast."""
    import pandas as pd  # statsmodels' ETS predictions need an index
    from statsmodels.tools.sm_exceptions import ConvergenceWarning
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # A short or nearly flat series may end the optimiser early; the fit it reached is
        # still the best estimate there is, and its interval says how unsure it is.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            result = ETSModel(pd.Series(y), error="add", trend="add").fit(disp=False)
            frame = result.get_prediction(start=len(y), end=len(y) + horizon - 1).summary_frame(
                alpha=1 - level
            )
        except (ValueError, np.linalg.LinAlgError):
            return None
    paths = [frame[c].to_numpy(dtype=float) for c in ("mean", "pi_lower", "pi_upper")]
    return paths if all(np.isfinite(p).all() for p in paths) else None


def _first(crossed: np.ndarray) -> float:
    """The first cycle ahead (1-based) at which ``crossed`` holds, or inf."""
    hits = np.flatnonzero(crossed)
    return float(hits[0] + 1) if hits.size else math.inf


def _none(base: Forecast, why: str) -> Forecast:
    return replace(base, why=why)


def _cycles(n: float, horizon: int) -> str:
    return f"more than {horizon}" if math.isinf(n) else f"{n:.0f}"
