"""Every drift statistic, declared once.

A declaration (``Statistic``) holds all that the policy, ``judge`` and calibration know
about a statistic:

* ``compute``, and what it ``needs``: the features' bin counts (``"counts"``, shape
  ``(..., k)``, any kind of feature) or the raw values of numeric features (``"values"``);
* ``kinds``: the kinds of feature it is computed and reported for;
* ``null``: how its distribution without drift is sampled to calibrate a threshold:
  ``"multinomial"`` (counts drawn from the baseline's bin shares) or ``"bootstrap"`` (rows
  drawn from the reference sample, which needs ``resampled``). A statistic without one
  is reported but never decides;
* ``p_value``: set when it is also a significance test, usable for ``test_kinds``.

Adding a statistic is one ``declare`` call: the policy accepts it for its kinds, ``judge``
computes, calibrates and reports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

import numpy as np

from controller.profiles.profile import Kind
from controller.statistics import stats

KINDS: tuple[str, ...] = get_args(Kind)
NULLS = ("multinomial", "bootstrap")


@dataclass(frozen=True)
class Statistic:
    """One drift statistic. Signatures, by what it ``needs``:

    * counts: ``compute(ref, cur)`` on bin counts ``(..., k)``, one value per leading index;
    * values: ``compute(ref, cur, spread)`` on samples ``(n, f)`` with NaN for a missing value,
      ``spread`` the baseline's standard deviation of each column (NaN when unknown or 0),
      one value per column; ``resampled(x, spread)`` returns a function that gives the
      values between bootstrap resamples of the rows of ``x`` (``(m, f)``), passed as how
      often each resample drew each row (``ref`` and ``cur``, ``(r, m)``): ``(r, f)``. It is
      called for each block of resamples, so work on ``x`` alone belongs outside it.

    ``p_value(ref, cur, statistic)`` takes the same inputs as ``compute`` (without
    ``spread``) and the statistic's values.
    """

    name: str
    kinds: tuple[str, ...]
    needs: str
    compute: Callable[..., np.ndarray]
    null: str | None = None
    resampled: Callable[..., np.ndarray] | None = None
    p_value: Callable[..., np.ndarray] | None = None
    test_kinds: tuple[str, ...] = ()

    def __post_init__(self):
        if not set(self.kinds) | set(self.test_kinds) <= set(KINDS):
            raise ValueError(f"{self.name}: kinds must be among {KINDS}")
        if self.needs not in ("counts", "values"):
            raise ValueError(f"{self.name}: needs must be 'counts' or 'values'")
        if self.needs == "values" and (set(self.kinds) | set(self.test_kinds)) - {"numeric"}:
            raise ValueError(f"{self.name}: only numeric features have raw values")
        if self.null not in (None, *NULLS):
            raise ValueError(f"{self.name}: null must be None or one of {NULLS}")
        if self.null == "multinomial" and self.needs != "counts":
            raise ValueError(f"{self.name}: a multinomial null resamples counts")
        if self.null == "bootstrap" and (self.needs != "values" or self.resampled is None):
            raise ValueError(f"{self.name}: a bootstrap null resamples values, with resampled")
        if self.test_kinds and self.p_value is None:
            raise ValueError(f"{self.name}: a test needs a p_value")


STATISTICS: dict[str, Statistic] = {}
"""Declared statistics by name, in the order they are reported."""


def declare(statistic: Statistic) -> Statistic:
    """Add a statistic; its name must be new."""
    if statistic.name in STATISTICS:
        raise ValueError(f"a statistic named {statistic.name!r} is declared already")
    STATISTICS[statistic.name] = statistic
    return statistic


def applicable(kind: str) -> tuple[str, ...]:
    """Statistics computed and reported for a kind of feature."""
    return tuple(s.name for s in STATISTICS.values() if kind in s.kinds)


def deciding(kind: str | None = None) -> tuple[str, ...]:
    """Statistics that may decide for a kind (any kind: None): those with a null."""
    return tuple(
        s.name
        for s in STATISTICS.values()
        if s.null is not None and (kind is None or kind in s.kinds)
    )


def tests(kind: str | None = None) -> tuple[str, ...]:
    """Significance tests usable for a kind (any kind: None)."""
    return tuple(
        s.name
        for s in STATISTICS.values()
        if s.test_kinds and (kind is None or kind in s.test_kinds)
    )


def _present(x: np.ndarray) -> np.ndarray:
    return (~np.isnan(x)).sum(axis=0)


def _ks(ref, cur, spread):
    return stats.ks_wasserstein(ref, cur)[0]


def _ks_resampled(x, spread):
    of_draws = stats.ks_wasserstein_of_draws(x)
    return lambda ref, cur: of_draws(ref, cur)[0]


def _ks_p(ref, cur, statistic):
    return stats.ks_pvalue(statistic, _present(ref), _present(cur))


def _wasserstein(ref, cur, spread):
    with np.errstate(invalid="ignore", divide="ignore"):
        return stats.ks_wasserstein(ref, cur)[1] / spread


def _wasserstein_resampled(x, spread):
    of_draws = stats.ks_wasserstein_of_draws(x)

    def resampled(ref, cur):
        with np.errstate(invalid="ignore", divide="ignore"):
            return of_draws(ref, cur)[1] / spread

    return resampled


def _chi2(ref, cur):
    return stats.chi2_test(ref, cur)[0]


def _chi2_p(ref, cur, statistic):
    return stats.chi2_test(ref, cur)[1]


# Declaration order is the order of each feature's reported statistics (and of the MLflow
# metrics logged from them).
declare(
    Statistic(
        "ks",
        kinds=("numeric",),
        needs="values",
        compute=_ks,
        null="bootstrap",
        resampled=_ks_resampled,
        p_value=_ks_p,
        test_kinds=("numeric",),
    )
)
declare(
    Statistic(
        "wasserstein",
        kinds=("numeric",),
        needs="values",
        compute=_wasserstein,
        null="bootstrap",
        resampled=_wasserstein_resampled,
    )
)
# Reported for categories only; as a test it also serves numeric features, on their bins.
# It has no null: it tests, it never decides.
declare(
    Statistic(
        "chi2",
        kinds=("categorical", "boolean"),
        needs="counts",
        compute=_chi2,
        p_value=_chi2_p,
        test_kinds=KINDS,
    )
)
for _name in ("psi", "jensen_shannon", "kl", "hellinger"):
    declare(
        Statistic(
            _name, kinds=KINDS, needs="counts", compute=stats.BINNED[_name], null="multinomial"
        )
    )
