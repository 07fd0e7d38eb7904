"""Benchmark of monitor's computation: driftctl ``assess`` against a plain per-column scipy loop.

What it measures
----------------
Two seeded synthetic frames (reference and production, ``--rows`` x ``--features``; by default
1,000,000 x 100: 80 float64 columns of mixed distributions, a few with NaNs and some shifted in
production, and 20 categorical columns of 5-50 categories stored as pandas ``category``) are
compared in three phases:

1. ``build_baseline(reference)``: timed and reported on its own, not part of the comparison;
2. ``assess(baseline, production, Policy())``: driftctl, "monitor's computation";
3. plain scipy: per numeric column ``ks_2samp`` and ``wasserstein_distance`` on the full
   columns, ``np.histogram`` on the reference deciles then PSI, ``jensenshannon``, ``entropy``
   (KL) and Hellinger; per categorical column value counts aligned over the union of categories,
   ``chi2_contingency``, PSI, JS, KL and Hellinger; then ``false_discovery_control`` (BH).

Time is wall-clock (``time.perf_counter``) around the phase's call only.

Peak memory: every phase runs in a fresh ``spawn``-ed child process that first reads the frames
from a temporary parquet file written once. With the frames in memory the child collects garbage,
returns freed heap to the OS (``malloc_trim``, arrow ``release_unused``), reads its resident set
size (VmRSS), then resets the kernel's high-water mark (``echo 5 > /proc/self/clear_refs``). After
the phase it reads VmHWM. Peak = VmHWM - VmRSS before: the largest resident-memory increase
the phase caused, counting every allocator (numpy, pandas, arrow, Python), not only those
``tracemalloc`` sees.

Run
---
    python benchmarks/bench_monitor.py [--rows N] [--features F] [--repeat R] [--seed S]

Then, unless ``--no-command``, the whole ``driftctl monitor`` process is timed on a sqlite
store (``bench_store``: a logistic-regression champion with its baseline built from the
reference frame, the production frame logged as one batch with ``driftctl log-batch``),
next to the same cycle's computation alone (the batch's profile and sample made into what
``assess`` reads, then ``assess`` with the model, in the process).

``--rows 20000`` smoke-runs in about two minutes; the default (1,000,000 rows) takes about
ten minutes on 2 cores, and each child process peaks near 3 GB of RAM. Linux only (reads
/proc for the CPU model and the memory figures).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import platform
import re
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from machine import cpu_name
from scipy.spatial.distance import jensenshannon
from scipy.stats import (
    chi2_contingency,
    entropy,
    false_discovery_control,
    ks_2samp,
    wasserstein_distance,
)

FLOOR = 1e-4  # empty-bin floor for PSI and KL, as in driftctl
TARGET_SPEEDUP = 5.0
TARGET_MEMORY = 3.0


# ---------------------------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------------------------


def _layout(n_features: int) -> tuple[list[str], list[str]]:
    n_cat = n_features // 5
    n_num = n_features - n_cat
    return [f"num_{i:02d}" for i in range(n_num)], [f"cat_{i:02d}" for i in range(n_cat)]


def _numeric(rng: np.random.Generator, i: int, n: int, shift: float, scale: float) -> np.ndarray:
    """Column ``i``'s distribution (8 families), moved by ``shift`` sd and ``scale``."""
    family = i % 8
    if family == 0:
        x, sd = rng.normal(10.0, 2.0, n), 2.0
    elif family == 1:
        x, sd = rng.lognormal(0.0, 0.75, n), 0.85
    elif family == 2:
        x, sd = rng.exponential(3.0, n), 3.0
    elif family == 3:
        x, sd = rng.uniform(-1.0, 1.0, n), 0.58
    elif family == 4:
        x, sd = rng.standard_t(3, n), 1.7
    elif family == 5:
        x, sd = rng.gamma(2.0, 1.5, n), 2.1
    elif family == 6:  # bimodal mixture
        x = np.where(rng.random(n) < 0.3, rng.normal(-2.0, 0.5, n), rng.normal(1.5, 1.0, n))
        sd = 1.8
    else:  # integer-valued: many ties
        x, sd = rng.poisson(4.0, n).astype(np.float64), 2.0
    if scale != 1.0:
        x = x.mean() + (x - x.mean()) * scale
    return x + shift * sd


def _frame(seed: int, rows: int, n_features: int, production: bool) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng([seed, int(production)])
    numeric, categorical = _layout(n_features)
    cols: dict[str, object] = {}
    planted: dict[str, str] = {}
    shifts = (0.05, 0.2, 0.5)
    for i, name in enumerate(numeric):
        shift, scale = 0.0, 1.0
        if production and i % 5 == 4:
            k = i // 5
            if k % 4 == 3:
                scale = 1.3
                planted[name] = "scale x1.3"
            else:
                shift = shifts[k % 4]
                planted[name] = f"shift {shift} sd"
        x = _numeric(rng, i, rows, shift, scale)
        if i % 9 == 0:  # a few columns with missing values, more of them in production
            x[rng.random(rows) < (0.04 if production else 0.02)] = np.nan
        cols[name] = x
    for j, name in enumerate(categorical):
        k = 5 + (j * 45) // max(len(categorical) - 1, 1)  # 5 .. 50 categories
        p = np.random.default_rng([seed, 1000 + j]).dirichlet(np.full(k, 2.0))
        if production and j % 4 == 1:
            mix = 0.1 if (j // 4) % 2 == 0 else 0.3
            p = (1 - mix) * p + mix * rng.dirichlet(np.full(k, 2.0))
            planted[name] = f"category mix {mix}"
        codes = rng.choice(k, size=rows, p=p).astype(np.int8)
        cols[name] = pd.Categorical.from_codes(codes, [f"c{c:02d}" for c in range(k)])
    return pd.DataFrame(cols), planted


def _make_data(folder: str, seed: int, rows: int, n_features: int) -> dict:
    """Child process: generate both frames, write them to parquet, report what was planted."""
    planted = {}
    for which in ("reference", "production"):
        frame, planted_here = _frame(seed, rows, n_features, which == "production")
        planted.update(planted_here)
        frame.to_parquet(Path(folder) / f"{which}.parquet", index=False)
        del frame
    return planted


# ---------------------------------------------------------------------------------------------
# Memory measurement (inside the child processes)
# ---------------------------------------------------------------------------------------------


def _status(field: str) -> int:
    """A /proc/self/status field in bytes."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) * 1024


def _settle() -> int:
    """Free what can be freed, reset the high-water mark; returns RSS now."""
    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    rss = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    return rss


def _measured(fn, *args):
    rss0 = _settle()
    start = time.perf_counter()
    result = fn(*args)
    seconds = time.perf_counter() - start
    return result, seconds, _status("VmHWM") - rss0, rss0


def _read(folder: str, which: str) -> pd.DataFrame:
    return pd.read_parquet(Path(folder) / f"{which}.parquet")


def _nbytes(frame: pd.DataFrame) -> int:
    return int(frame.memory_usage(deep=True, index=True).sum())


# ---------------------------------------------------------------------------------------------
# Phases (each runs in its own child process)
# ---------------------------------------------------------------------------------------------


def _phase_baseline(folder: str) -> dict:
    from controller.profiles import storage
    from controller.profiles.build import build_baseline

    reference = _read(folder, "reference")
    baseline, seconds, peak, rss0 = _measured(build_baseline, reference)
    storage.save(baseline, Path(folder) / "baseline")
    return dict(seconds=seconds, peak=peak, rss0=rss0, frame_bytes=_nbytes(reference))


def _phase_driftctl(folder: str) -> dict:
    from controller.loop.assess import assess
    from controller.policy import Policy
    from controller.profiles import storage

    baseline = storage.load(Path(folder) / "baseline")
    reference = _read(folder, "reference")  # loaded so both phases start from the same state
    production = _read(folder, "production")
    policy = Policy()
    report, seconds, peak, rss0 = _measured(assess, baseline, production, policy)
    results = {
        f.feature: dict(f.statistics, p=f.p_value, q=f.q_value, drifted=f.drifted)
        for f in report.features
    }
    return dict(
        _comparison_phase(reference, production, results, seconds, peak, rss0),
        n_drifted=len(report.drifted),
    )


def _comparison_phase(reference, production, results, seconds, peak, rss0) -> dict:
    """What each side of the comparison reports: timing, memory, frame size, results."""
    return dict(
        seconds=seconds,
        peak=peak,
        rss0=rss0,
        frame_bytes=_nbytes(reference) + _nbytes(production),
        results=results,
    )


def _binned(ref_counts: np.ndarray, cur_counts: np.ndarray) -> dict:
    p = ref_counts / ref_counts.sum()
    q = cur_counts / cur_counts.sum()
    pf = np.where(p == 0, FLOOR, p)
    qf = np.where(q == 0, FLOOR, q)
    return dict(
        psi=float(np.sum((qf - pf) * np.log(qf / pf))),
        jensen_shannon=float(jensenshannon(p, q)),
        kl=float(entropy(qf, pf)),
        hellinger=float(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2) / 2)),
    )


def plain_scipy(reference: pd.DataFrame, production: pd.DataFrame) -> dict:
    """The straightforward per-column scipy version of the same statistics."""
    out: dict[str, dict] = {}
    for name in reference.columns:
        ref, cur = reference[name], production[name]
        if pd.api.types.is_numeric_dtype(ref.dtype):
            r = ref.to_numpy(dtype=float)
            c = cur.to_numpy(dtype=float)
            r, c = r[~np.isnan(r)], c[~np.isnan(c)]
            ks = ks_2samp(r, c)
            wasserstein = wasserstein_distance(r, c) / r.std()
            deciles = np.quantile(r, np.linspace(0.0, 1.0, 11))
            edges = np.concatenate([[-np.inf], deciles[1:-1], [np.inf]])
            ref_counts, _ = np.histogram(r, bins=edges)
            cur_counts, _ = np.histogram(c, bins=edges)
            out[name] = dict(
                ks=float(ks.statistic),
                wasserstein=float(wasserstein),
                **_binned(ref_counts, cur_counts),
                p=float(ks.pvalue),
            )
        else:
            rv, cv = ref.value_counts(), cur.value_counts()
            union = rv.index.union(cv.index)
            ref_counts = rv.reindex(union, fill_value=0).to_numpy()
            cur_counts = cv.reindex(union, fill_value=0).to_numpy()
            seen = (ref_counts + cur_counts) > 0
            chi2 = chi2_contingency(np.vstack([ref_counts[seen], cur_counts[seen]]))
            out[name] = dict(
                chi2=float(chi2.statistic), **_binned(ref_counts, cur_counts), p=float(chi2.pvalue)
            )
    q = false_discovery_control([v["p"] for v in out.values()])
    for v, qv in zip(out.values(), q, strict=True):
        v["q"] = float(qv)
    return out


def _phase_scipy(folder: str) -> dict:
    reference = _read(folder, "reference")
    production = _read(folder, "production")
    results, seconds, peak, rss0 = _measured(plain_scipy, reference, production)
    return _comparison_phase(reference, production, results, seconds, peak, rss0)


def _phase_command(folder: str) -> dict:
    """The whole ``driftctl monitor`` process on a sqlite store holding the champion (a
    logistic-regression pipeline), its baseline built from the reference frame, and the
    production frame logged as one batch; then, in this process, the same cycle's
    computation alone (its window's profile made into what ``assess`` reads, and ``assess``
    with the model, as ``monitor`` calls them)."""
    from bench_store import MODEL, driftctl, make_store, timed

    from controller import tracking
    from controller.loop.assess import assess
    from controller.loop.window import load_profiled_window
    from controller.policy import Policy
    from controller.profiles.baseline import PREDICTION, SCORE

    store = Path(folder) / "store"
    store.mkdir()
    env = make_store(store, 0, reference=_read(folder, "reference"))
    seconds, proc = timed(
        driftctl("log-batch", "--model", MODEL, "--data", str(Path(folder) / "production.parquet")),
        env,
        store,
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    before = os.getloadavg()[0]
    whole, proc = timed(driftctl("monitor", "--model", MODEL, "--last", "1"), env, store)
    if proc.returncode not in (0, 1, 4):
        raise RuntimeError(proc.stderr)

    import mlflow

    os.chdir(store)
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    mv = tracking.resolve_version(MODEL)
    baseline, _ = tracking.load_baseline(mv)
    window = load_profiled_window(MODEL, baseline, mv.version, last=1)
    model = tracking.load_model(mv)
    start = time.perf_counter()
    observed = window.observe(baseline, Policy())
    meta = tuple(c for c in observed.sample.columns if c not in baseline.features)
    assess(baseline, observed, Policy(), meta_columns=meta, model=model)
    compute = time.perf_counter() - start
    assert PREDICTION in meta and SCORE in meta
    return dict(
        log_batch=seconds, whole=whole, compute=compute, load=(before, os.getloadavg()[0])
    )


def _in_child(fn, *args):
    """Run ``fn(*args)`` in a fresh spawned process (clean heap, own high-water mark)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _machine() -> list[str]:
    import scipy

    cpu = cpu_name()
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return [
        f"CPU      {cpu}, {os.cpu_count()} logical cores ({len(os.sched_getaffinity(0))} usable)",
        f"RAM      {ram / 2**30:.1f} GiB",
        f"OS       {platform.platform()}",
        f"Python   {platform.python_version()} ({sys.executable})",
        f"numpy {np.__version__}, scipy {scipy.__version__}, pandas {pd.__version__}",
    ]


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def _agreement(ours: dict, plain: dict, planted: dict) -> list[str]:
    lines = []
    kinds = {
        "categorical": [n for n in ours if n.startswith("cat_")],
        "numeric": [n for n in ours if n.startswith("num_")],
    }
    for kind, names in kinds.items():
        if kind == "numeric":  # shifted columns put mass in driftctl's open outer bins
            names = [n for n in names if n not in planted]
        if not names:
            continue
        stats = ["psi", "jensen_shannon", "kl", "hellinger"]
        stats += ["chi2"] if kind == "categorical" else ["ks", "wasserstein"]
        diffs = [f"{s} {max(abs(ours[n][s] - plain[n][s]) for n in names):.2g}" for s in stats]
        which = "all categorical" if kind == "categorical" else "unchanged numeric"
        lines.append(f"  max |driftctl - scipy| over {which} features: " + ", ".join(diffs))
    apart = sorted(n for n in ours if abs(ours[n]["psi"] - plain[n]["psi"]) > 0.05)
    if apart:
        lines.append(
            "  PSI differs by > 0.05 on "
            + ", ".join(f"{n} ({ours[n]['psi']:.2f} vs {plain[n]['psi']:.2f})" for n in apart)
            + ": production values beyond the reference min/max fall in driftctl's empty "
            "outer bins (floored at 1e-4), in scipy's outer deciles; or bins differ on ties"
        )
    flagged_ours = sorted(n for n, v in ours.items() if v["q"] <= 0.05)
    flagged_plain = sorted(n for n, v in plain.items() if v["q"] <= 0.05)
    drifted = sorted(n for n, v in ours.items() if v["drifted"])
    lines += [
        f"  planted changes ({len(planted)}): "
        + ", ".join(f"{n} {planted[n]}" for n in sorted(planted)),
        f"  BH q <= 0.05: driftctl {len(flagged_ours)}, scipy {len(flagged_plain)} "
        f"(both: {len(set(flagged_ours) & set(flagged_plain))})",
        f"  driftctl verdict DRIFT (effect > threshold and q <= fdr): {len(drifted)}: "
        + ", ".join(drifted),
    ]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per frame")
    parser.add_argument("--features", type=int, default=100, help="features (1/5 categorical)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each timed phase")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-command",
        action="store_true",
        help="skip the whole-process `driftctl monitor` on a sqlite store",
    )
    args = parser.parse_args(argv)
    numeric, categorical = _layout(args.features)

    print("driftctl monitor benchmark: assess() vs a plain per-column scipy loop")
    print("=" * 78)
    for line in _machine():
        print(line)
    print(
        f"data     2 frames x {args.rows:,} rows x {args.features} features: "
        f"{len(numeric)} float64 (8 distribution families, NaNs in every 9th, every 5th "
        f"shifted/scaled in production), {len(categorical)} categorical with 5-50 categories "
        f"stored as pandas 'category' dtype to keep memory reasonable (int8 codes, 1 byte a "
        f"value; object strings count ~60 bytes a value in memory_usage(deep=True)); "
        f"seed {args.seed}"
    )
    print(
        "memory   each phase in a fresh spawned child that reads the frames from parquet; "
        "peak = VmHWM after the phase - VmRSS before it (high-water mark reset via "
        "/proc/self/clear_refs after gc + malloc_trim), i.e. peak resident-set increase "
        "over the RSS with the frames loaded, all allocators included"
    )
    print("time     wall clock around the phase call only (no imports, no parquet reading)")
    print(flush=True)

    with tempfile.TemporaryDirectory(prefix="bench_monitor_") as folder:
        start = time.perf_counter()
        planted = _in_child(_make_data, folder, args.seed, args.rows, args.features)
        print(f"generated and wrote the frames in {time.perf_counter() - start:.1f} s", flush=True)

        runs: dict[str, list[dict]] = {"baseline": [], "driftctl": [], "scipy": []}
        phases = {"baseline": _phase_baseline, "driftctl": _phase_driftctl, "scipy": _phase_scipy}
        for _ in range(args.repeat):
            for key, phase in phases.items():
                before = os.getloadavg()[0]
                run = _in_child(phase, folder)
                run["load"] = (before, os.getloadavg()[0])
                runs[key].append(run)
                print(
                    f"  {key:<9} {run['seconds']:8.2f} s   (1-min load average "
                    f"{before:.1f} before, {run['load'][1]:.1f} after)",
                    flush=True,
                )
        command = None
        if not args.no_command:
            command = _in_child(_phase_command, folder)
            print(
                f"  command   {command['whole']:8.2f} s   (1-min load average "
                f"{command['load'][0]:.1f} before, {command['load'][1]:.1f} after)",
                flush=True,
            )

    best = {k: min(r["seconds"] for r in v) for k, v in runs.items()}
    peak = {k: max(r["peak"] for r in v) for k, v in runs.items()}
    rss0 = {k: v[0]["rss0"] for k, v in runs.items()}
    ref_bytes = runs["baseline"][0]["frame_bytes"]
    both = runs["driftctl"][0]["frame_bytes"]
    speedup = best["scipy"] / best["driftctl"]
    mem_ratio = peak["driftctl"] / both

    print()
    print(
        f"frames in memory (memory_usage(deep=True)): reference {_mb(ref_bytes)}, both {_mb(both)}"
    )
    print(f"times are the best of {args.repeat} run(s); peaks the largest")
    print()
    header = f"{'phase':<34} {'time':>10} {'RSS before':>12} {'peak increase':>14} {'/ frames':>9}"
    print(header)
    print("-" * len(header))
    rows = [
        ("build_baseline(reference) [apart]", "baseline", ref_bytes, "reference"),
        ("driftctl assess(...)", "driftctl", both, "both"),
        ("plain scipy per column", "scipy", both, "both"),
    ]
    for label, key, size, which in rows:
        print(
            f"{label:<34} {best[key]:>8.2f} s {_mb(rss0[key]):>12} {_mb(peak[key]):>14} "
            f"{peak[key] / size:>7.2f}x  (of {which})"
        )
    loads = [x for v in runs.values() for r in v for x in r["load"]]
    busy = max(loads) > (os.cpu_count() or 1)
    print(
        f"1-min load average during the phases: {min(loads):.1f} to {max(loads):.1f} on "
        f"{os.cpu_count()} cores"
        + (": other processes competed for the CPU, times are inflated and noisy" if busy else "")
    )
    print()
    ok_speed = speedup >= TARGET_SPEEDUP
    ok_mem = mem_ratio < TARGET_MEMORY
    print(
        f"speed-up scipy / driftctl: {speedup:.2f}x   target >= {TARGET_SPEEDUP:g}x   "
        f"{'MET' if ok_speed else 'MISSED'}"
    )
    print(
        f"driftctl peak / both frames: {mem_ratio:.2f}x   target < {TARGET_MEMORY:g}x   "
        f"{'MET' if ok_mem else 'MISSED'}"
    )
    if command:
        ratio = command["whole"] / command["compute"]
        print()
        print(
            f"whole-process `driftctl monitor` (sqlite store, champion loaded, cycle logged): "
            f"{command['whole']:.1f} s"
        )
        print(
            f"  its computation alone (assess with the model: drift, quality, prediction "
            f"drift, attribution): {command['compute']:.1f} s; whole / computation "
            f"{ratio:.1f}x   target <= 3x   {'MET' if ratio <= 3 else 'MISSED'}"
        )
        print(
            f"  plain per-column scipy (computation only, no I/O): {best['scipy']:.1f} s; "
            f"`driftctl log-batch` of the production frame took {command['log_batch']:.1f} s"
        )
    print()
    print("caveats: the two sides do not do identical work")
    print(
        "  - driftctl computes KS and Wasserstein on its 10,000-row reference sample vs a "
        "10,000-row production sample (Policy.sample_size); scipy on the full columns"
    )
    print(
        "  - driftctl also runs the data-quality checks and calibrates every threshold (1,000 "
        "multinomial resamples of the bins per categorical feature, 200 bootstrap resamples of "
        "the reference sample per numeric one); the scipy loop does neither"
    )
    print(
        "  - numeric bins: driftctl has 12 bins (decile edges incl. min and max, plus open "
        "outer bins); the scipy loop uses 10 (-inf, interior deciles, +inf)"
    )
    print(
        "  - categorical bins: driftctl adds an '__other__' bin (empty here, floored at 1e-4 and "
        "renormalised for KL), so its KL differs from scipy's by ~1e-4"
    )
    print()
    print("agreement of the results:")
    for line in _agreement(runs["driftctl"][0]["results"], runs["scipy"][0]["results"], planted):
        print(line)


if __name__ == "__main__":
    main()
