"""Cost of the forecast of when to retrain against the length of the series.

Times ``controller.statistics.forecast.forecast`` (an ETS(A,A,N) fit by maximum likelihood
and its 90% prediction interval, 20 cycles ahead) on a noisy declining series of 5 to 200
cycles (a longer history is cut to its latest 200), after one call that pays for importing
statsmodels, which is timed on its own.

    python benchmarks/bench_forecast.py [--lengths 5 20 50 100 200] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from machine import summary

from controller.statistics.forecast import forecast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[5, 20, 50, 100, 200])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(summary())
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    forecast(0.9 - 0.004 * np.arange(10) + rng.normal(0, 0.004, 10), 0.8, worse_below=True,
             series="performance")
    print(f"first call (imports statsmodels): {time.perf_counter() - start:.3f} s")
    for n in args.lengths:
        times = []
        for _ in range(args.repeat):
            y = 0.9 - 0.002 * np.arange(n) + rng.normal(0, 0.004, n)
            start = time.perf_counter()
            forecast(y, 0.5, worse_below=True, series="performance")
            times.append(time.perf_counter() - start)
        print(f"{n:>4} cycles: median {statistics.median(times):.3f} s, "
              f"max {max(times):.3f} s over {args.repeat}")


if __name__ == "__main__":
    main()
