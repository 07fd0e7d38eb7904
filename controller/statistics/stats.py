"""Drift statistics as pure functions over numpy arrays.

Binned statistics take bin counts of shape ``(..., k)``: the last axis holds the bins, every
leading axis is a batch (features, resamples), so one call scores every feature at once.
Exact statistics take 2-D samples ``(rows, features)`` with NaN for missing values.

Conventions (documented in the README, checked against scipy in the tests):

* PSI = sum (cur - ref) * ln(cur / ref) over bin shares, empty bins floored at 1e-4.
* KL = D(cur || ref) in nats, same floor, floored shares renormalised.
* Jensen-Shannon is the distance (square root of the divergence), natural log, as
  ``scipy.spatial.distance.jensenshannon``.
* Hellinger distance = sqrt(1 - sum sqrt(p q)), in [0, 1].
* Wasserstein-1 between the samples, divided by the reference standard deviation.
* Chi-square on the 2 x k contingency table of counts, without continuity correction.
* KS two-sample statistic; p-value from Smirnov's asymptotic distribution as
  ``scipy.stats.ks_2samp(method="asymp")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from scipy import special

FLOOR = 1e-4


def shares(counts: np.ndarray) -> np.ndarray:
    """Counts to shares along the last axis; an all-zero row stays zero."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def _floored(counts: np.ndarray, floor: float) -> np.ndarray:
    p = shares(counts)
    return np.where(p == 0, floor, p)


def psi(ref: np.ndarray, cur: np.ndarray, floor: float = FLOOR) -> np.ndarray:
    """Population stability index between two binned distributions."""
    p, q = _floored(ref, floor), _floored(cur, floor)
    return np.sum((q - p) * np.log(q / p), axis=-1)


def kl_divergence(ref: np.ndarray, cur: np.ndarray, floor: float = FLOOR) -> np.ndarray:
    """Kullback-Leibler divergence D(cur || ref) in nats.

    Floored shares are renormalised (as ``scipy.stats.entropy`` does), so the result is a
    true divergence: never negative.
    """
    p, q = shares(_floored(ref, floor)), shares(_floored(cur, floor))
    return np.sum(special.rel_entr(q, p), axis=-1)


def jensen_shannon(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (natural log): 0 for equal, ln(2) ** 0.5 at most."""
    p, q = shares(ref), shares(cur)
    m = (p + q) / 2
    js = (np.sum(special.rel_entr(p, m), axis=-1) + np.sum(special.rel_entr(q, m), axis=-1)) / 2
    return np.sqrt(np.maximum(js, 0.0))


def hellinger(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Hellinger distance in [0, 1]."""
    # The sum of squared differences stays exact near zero, where 1 - sum sqrt(pq) does not.
    p, q = shares(ref), shares(cur)
    return np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2, axis=-1) / 2)


def chi2_test(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chi-square test of homogeneity on the 2 x k table of counts: (statistic, p-value).

    Bins empty in both rows do not count towards the degrees of freedom.
    """
    table = np.stack([np.asarray(ref, float), np.asarray(cur, float)], axis=-2)
    rows = table.sum(axis=-1, keepdims=True)
    cols = table.sum(axis=-2, keepdims=True)
    total = rows.sum(axis=-2, keepdims=True)
    expected = np.divide(rows * cols, total, out=np.zeros_like(table), where=total > 0)
    terms = np.divide(
        (table - expected) ** 2, expected, out=np.zeros_like(table), where=expected > 0
    )
    stat = terms.sum(axis=(-2, -1))
    dof = np.maximum((cols[..., 0, :] > 0).sum(axis=-1) - 1, 0)
    p = np.where(dof > 0, special.chdtrc(np.maximum(dof, 1), stat), 1.0)
    return stat, p


def ks_wasserstein(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KS statistic and (raw) Wasserstein-1 distance for each column of two samples.

    ``ref`` is ``(n_ref, f)``, ``cur`` is ``(n_cur, f)``; NaN marks a missing value and is
    ignored. One sort of the stacked samples serves every column. Columns with no values on
    either side give NaN.
    """
    ref = np.asarray(ref, dtype=float)
    cur = np.asarray(cur, dtype=float)
    stacked = np.concatenate([ref, cur], axis=0)
    order = np.argsort(stacked, axis=0, kind="stable")  # NaN sort last
    values = np.take_along_axis(stacked, order, axis=0)
    from_ref = order < ref.shape[0]
    valid = ~np.isnan(values)
    n_ref = (~np.isnan(ref)).sum(axis=0)
    n_cur = (~np.isnan(cur)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cdf_ref = np.cumsum(from_ref & valid, axis=0) / n_ref
        cdf_cur = np.cumsum(~from_ref & valid, axis=0) / n_cur
        gap = np.abs(cdf_ref - cdf_cur)
        # Only the last of a run of equal values is a point where both CDFs are complete.
        nxt = np.vstack([values[1:], np.full((1, values.shape[1]), np.nan)])
        step = valid & (values != nxt)
        ks = np.max(np.where(step, gap, 0.0), axis=0)
        widths = np.nan_to_num(nxt - values, nan=0.0)
        wasserstein = np.sum(np.where(valid, gap * widths, 0.0), axis=0)
    empty = (n_ref == 0) | (n_cur == 0)
    ks[empty] = np.nan
    wasserstein[empty] = np.nan
    return ks, wasserstein


def resampled_ks_wasserstein(
    x: np.ndarray,
    n_ref: int,
    n_cur: int,
    resamples: int,
    rng: np.random.Generator,
    block: int = 250_000,
) -> tuple[np.ndarray, np.ndarray]:
    """KS statistic and Wasserstein-1 distance, per column, between ``resamples`` pairs of
    bootstrap resamples of the rows of ``x`` (``(m, f)``, NaN for a missing value): for
    pair ``i``, ``n_ref`` rows and ``n_cur`` rows drawn with replacement, each column's
    missing values left out. Returns two ``(resamples, f)`` arrays.

    Pair ``i`` is exactly the statistics of ``x[ref_idx[i]]`` and ``x[cur_idx[i]]`` for the
    index draws of ``resample_rows``.
    """
    x = np.asarray(x, dtype=float)
    m, f = x.shape
    ks = np.full((resamples, f), np.nan)
    w = np.full((resamples, f), np.nan)
    if m == 0 or n_ref == 0 or n_cur == 0:
        return ks, w
    of_draws, start = ks_wasserstein_of_draws(x), 0
    for ref, cur in resample_rows(m, n_ref, n_cur, resamples, rng, block):
        r = len(ref)
        ks[start : start + r], w[start : start + r] = of_draws(ref, cur)
        start += r
    return ks, w


def resample_rows(
    m: int,
    n_ref: int,
    n_cur: int,
    resamples: int,
    rng: np.random.Generator,
    block: int = 250_000,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``resamples`` pairs of bootstrap resamples of ``m`` rows, of ``n_ref`` and ``n_cur``
    rows, as how often each resample drew each row: ``(r, m)`` int32 arrays, ``r`` pairs at
    a time so that a block holds about ``block`` draws.

    Each block is the index draws ``rng.integers(0, m, (r, n_ref))`` then
    ``rng.integers(0, m, (r, n_cur))``, counted.
    """
    rows = max(1, min(resamples, block // max(n_ref, n_cur, m)))
    for start in range(0, resamples, rows):
        r = min(rows, resamples - start)
        yield _row_counts(rng, m, n_ref, r), _row_counts(rng, m, n_cur, r)


def ks_wasserstein_of_draws(
    x: np.ndarray,
) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """KS statistic and raw Wasserstein-1 distance, per column of ``x`` (``(m, f)``, NaN for
    a missing value), between resamples of its rows: the returned function takes how often
    each resample drew each row (``ref`` and ``cur``, ``(r, m)``, as from ``resample_rows``)
    and returns two ``(r, f)`` arrays; a column with no values gives NaN.

    The columns are sorted once, here. A resample is then counted, not sorted: how often it
    drew each row gives every column's CDF at that column's sorted values, so a pair of
    resamples costs a pass over ``m`` values per column, not a sort.
    """
    x = np.asarray(x, dtype=float)
    m, f = x.shape
    order = np.argsort(x, axis=0, kind="stable")  # NaN sort last
    values = np.take_along_axis(x, order, axis=0)
    present = (~np.isnan(x)).sum(axis=0)

    def of_draws(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = len(ref)
        ks = np.full((r, f), np.nan)
        w = np.full((r, f), np.nan)
        n_ref, n_cur = int(ref[0].sum()), int(cur[0].sum())
        # Columns without missing values share one difference of the CDFs' steps.
        step = ref - cur if n_ref == n_cur else ref * (1 / n_ref) - cur * (1 / n_cur)
        for j in np.flatnonzero(present):
            k = present[j]
            o = order[:k, j]
            if k == m:
                gap = np.cumsum(step[:, o], axis=1, dtype=step.dtype)
                np.abs(gap, out=gap)
                if n_ref == n_cur:
                    gap = gap * (1 / n_ref)
            else:  # each resample's own count of present values
                a, b = ref[:, o], cur[:, o]
                with np.errstate(invalid="ignore", divide="ignore"):
                    a = a / a.sum(axis=1, keepdims=True)
                    b = b / b.sum(axis=1, keepdims=True)
                gap = np.abs(np.cumsum(a - b, axis=1))
            widths = np.diff(values[:k, j])
            # CDFs are complete only at the last of a run of equal values.
            ends = np.append(widths > 0, True)
            ks[:, j] = (gap if ends.all() else gap[:, ends]).max(axis=1)
            w[:, j] = gap @ np.append(widths, 0.0)
        return ks, w

    return of_draws


def _row_counts(rng: np.random.Generator, m: int, n: int, r: int) -> np.ndarray:
    """How often each of m rows was drawn, in r resamples of n rows: ``(r, m)`` int32."""
    idx = rng.integers(0, m, size=(r, n))
    idx += (np.arange(r) * m)[:, None]
    return np.bincount(idx.ravel(), minlength=r * m).reshape(r, m).astype(np.int32)


def ks_pvalue(statistic: np.ndarray, n_ref: np.ndarray, n_cur: np.ndarray) -> np.ndarray:
    """Two-sided p-value of the KS statistic from Smirnov's asymptotic distribution."""
    from scipy.stats import kstwo  # scipy.stats costs half a second; only a cycle needs it

    n_ref = np.asarray(n_ref, dtype=float)
    n_cur = np.asarray(n_cur, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        en = np.round(n_ref * n_cur / (n_ref + n_cur))
        p = kstwo.sf(statistic, np.maximum(en, 1))
    return np.where((n_ref > 0) & (n_cur > 0), p, np.nan)


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN entries stay NaN."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    pv = p[ok]
    order = np.argsort(pv)
    ranked = pv[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(adjusted, 1.0)
    out[ok] = q
    return out


BINNED = {
    "psi": psi,
    "kl": kl_divergence,
    "jensen_shannon": jensen_shannon,
    "hellinger": hellinger,
}
"""Binned statistics by name; each maps (ref counts, cur counts) to a distance. What the
rest of driftctl knows about each is declared in ``controller.statistics.catalog``."""
