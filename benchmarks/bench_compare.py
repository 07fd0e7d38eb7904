"""Cost of the champion-challenger comparison against the number of held-out rows.

Times ``controller.statistics.comparison.compare`` (DeLong for ROC AUC, a 1,000-resample paired
bootstrap for log loss, accuracy and F1) and ``gate`` on 10,000, 100,000 and 1,000,000 held-out rows
of a binary task, and traces the peak memory it allocates. Resamples are drawn in blocks,
so memory should stay flat while time grows with the rows.

    python benchmarks/bench_compare.py [--sizes 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from machine import summary

from controller.statistics.comparison import Threshold, compare, gate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    print(summary())
    rng = np.random.default_rng(0)
    for n in args.sizes:
        y = rng.integers(0, 2, n)
        champion_score = np.clip(0.5 + 0.2 * (y - 0.5) + rng.normal(0, 0.25, n), 0, 1)
        challenger_score = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.25, n), 0, 1)
        champion = ((champion_score > 0.5).astype(int), champion_score)
        challenger = ((challenger_score > 0.5).astype(int), challenger_score)
        data_mb = 5 * y.nbytes / 2**20
        tracemalloc.start()
        start = time.perf_counter()
        comparisons = compare("classification", y, champion, challenger)
        decision = gate(comparisons, Threshold("roc_auc", True), {"log_loss": 0.02})
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        auc = next(c for c in comparisons if c.metric == "roc_auc")
        print(
            f"held out {n:>9,} rows: {seconds:6.2f} s, peak allocation {peak:6.1f} MiB "
            f"(the inputs: {data_mb:.1f} MiB); ROC AUC +{auc.improvement:.4f} "
            f"[{auc.ci_low:+.4f}, {auc.ci_high:+.4f}], gate "
            f"{'passed' if decision.passed else 'failed'}"
        )


if __name__ == "__main__":
    main()
