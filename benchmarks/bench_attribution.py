"""Attribution cost against window size: it must stay flat.

Times ``controller.loop.assess.attribution_shift`` (the SHAP part of a monitoring cycle:
explain a bounded sample of the window, bootstrap the share changes) for windows of 10,000, 100,000
and 1,000,000 rows, with a random forest over the credit-scoring features, one-hot encoded
in a scikit-learn pipeline. The number of rows explained comes from the policy
(``[attribution] sample_size``, default 300), so the time should not grow with the window.

    python benchmarks/bench_attribution.py [--sizes 10000 100000 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from machine import summary

from controller import Policy, build_baseline
from controller.demo.scenario import FEATURES, TARGET, credit_data, credit_pipeline
from controller.loop.assess import attribution_shift


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(summary())
    train = credit_data(5000, seed=0)
    model = credit_pipeline().fit(train[FEATURES], train[TARGET])
    baseline = build_baseline(credit_data(5000, seed=1), model=model, target=TARGET)
    policy = Policy()
    print(
        f"model    random forest (100 trees) in a pipeline; explainer "
        f"{baseline.attribution['explainer']}; {policy.attribution.sample_size} rows "
        "explained per cycle"
    )
    shift = None
    for n in args.sizes:
        window = credit_data(n, seed=2, income_shift=0.8)[FEATURES]
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            shift = attribution_shift(baseline, window, None, model, policy)
            times.append(time.perf_counter() - start)
        print(
            f"window {n:>9,} rows: attribution {min(times):6.2f} s (best of {args.repeat}; "
            f"median {np.median(times):.2f} s), rows explained {shift.n_rows}"
        )
    again = attribution_shift(baseline, window, None, model, policy)
    print(f"deterministic for a fixed seed: {again == shift}")
    top = max(shift.features, key=lambda f: abs(f.share_change))
    print(
        f"largest share change: {top.feature} {top.share_change:+.3f} "
        f"[{top.ci_low:+.3f}, {top.ci_high:+.3f}]; nDCG {shift.ndcg:.3f}"
    )


if __name__ == "__main__":
    main()
