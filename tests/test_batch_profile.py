"""Batch profiles: counts, moments and samples that merge as if the rows had been profiled
together.

Oracles: ``FeatureProfile.observe`` and ``np.histogram`` for the counts, numpy for the
moments, the profile of the concatenated rows for every merge, and a chi-square test for
the uniformity of the samples.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import make_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from controller import tracking
from controller._errors import PolicyError
from controller.inputs.batches import BATCH_PATH, PROFILE_PATH, SAMPLE_PATH, log_batch, read_profile
from controller.inputs.model import Predictions
from controller.policy import Batches, Policy
from controller.profiles.baseline import PREDICTION, SCORE
from controller.profiles.batch import KEY, BatchProfile, add_counts, bins, count_frames, merge
from controller.profiles.build import build_baseline

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEATURES = ["x1", "x2", "segment", "flag", "zip"]


def with_predictions(frame: pd.DataFrame) -> Predictions:
    """A stand-in model's predictions: labels and the positive class's probability."""
    score = 1 / (1 + np.exp(-frame["x1"].fillna(0).to_numpy()))
    return Predictions((score > 0.5).astype(int), score, "1")


def rows(n: int, seed: int) -> pd.DataFrame:
    """Production rows as log-batch stores them: missing values, values beyond the
    reference's range, an unseen category, a hashed id-like feature, predictions, scores."""
    rng = np.random.default_rng(seed)
    frame = make_frame(n, seed, shift=0.3)[["x1", "x2", "segment", "flag"]]
    frame["x1"] = frame["x1"].mask(rng.random(n) < 0.1)
    frame["x2"] = frame["x2"] * rng.choice([1.0, 10.0], n, p=[0.9, 0.1])
    frame["segment"] = frame["segment"].mask(rng.random(n) < 0.05, "e").mask(rng.random(n) < 0.05)
    frame["zip"] = rng.integers(0, 5000, n).astype(str)
    preds = with_predictions(frame)
    frame[PREDICTION] = preds.values.astype(str)
    frame[SCORE] = preds.score
    return frame


@pytest.fixture(scope="module")
def baseline():
    rng = np.random.default_rng(0)
    ref = make_frame(2000, 1)[["x1", "x2", "segment", "flag"]]
    ref["zip"] = rng.integers(0, 5000, len(ref)).astype(str)  # > 1,000 values: hashed
    return build_baseline(ref, predictions=with_predictions(ref))


def times(n: int, seed: int) -> pd.Series:
    start = pd.Timestamp("2026-01-01", tz="UTC")
    offsets = np.random.default_rng(seed).integers(0, 10**6, n)
    return pd.Series(start + pd.to_timedelta(offsets, unit="s"))


def profile(baseline, n: int, seed: int, k: int) -> tuple[BatchProfile, pd.DataFrame]:
    """The profile of ``n`` rows drawn with ``seed``, and those rows with their keys and
    event times (carried along, to profile a concatenation with the same keys)."""
    frame, keys, when = rows(n, seed), np.random.default_rng(seed).random(n), times(n, seed)
    built = BatchProfile.build(frame, baseline, sample_size=k, keys=keys, times=when)
    return built, frame.assign(**{KEY: keys, "__time__": when})


def of_concatenation(baseline, parts: list[pd.DataFrame], k: int) -> BatchProfile:
    whole = pd.concat(parts, ignore_index=True)
    return BatchProfile.build(
        whole.drop(columns=[KEY, "__time__"]),
        baseline,
        sample_size=k,
        keys=whole[KEY].to_numpy(),
        times=whole["__time__"],
    )


def assert_same(a: BatchProfile, b: BatchProfile) -> None:
    """Equal profiles: counts, rows, times and samples exactly, sums to float tolerance."""
    for key in ("baseline", "rows", "sample_size", "start", "end"):
        assert getattr(a, key) == getattr(b, key), key
    assert a.columns.keys() == b.columns.keys()
    for name, col in a.columns.items():
        other = b.columns[name]
        assert (col.counts, col.missing) == (other.counts, other.missing), name
        if col.moments is None:
            assert other.moments is None
            continue
        m, o = col.moments, other.moments
        assert (m.n, m.min, m.max) == (o.n, o.min, o.max), name
        assert m.mean == pytest.approx(o.mean, rel=1e-12, abs=1e-12), name
        assert m.m2 == pytest.approx(o.m2, rel=1e-9, abs=1e-12), name
    pd.testing.assert_frame_equal(a.sample, b.sample)


# Each part draws its keys from its own seed: parts with one seed would share keys.
parts_of = st.lists(
    st.tuples(st.integers(0, 80), st.integers(0, 2**32)),
    min_size=1,
    max_size=4,
    unique_by=lambda part: part[1],
)
sample_sizes = st.integers(1, 60)


# Algebra (hypothesis)


@SETTINGS
@given(parts=parts_of, k=sample_sizes)
def test_profile_of_a_concatenation_is_the_merge_of_the_parts(baseline, parts, k):
    built = [profile(baseline, n, seed, k) for n, seed in parts]
    assert_same(merge(p for p, _ in built), of_concatenation(baseline, [f for _, f in built], k))


@SETTINGS
@given(parts=parts_of.filter(lambda p: len(p) >= 3), k=sample_sizes)
def test_merging_is_commutative_and_associative(baseline, parts, k):
    x, y, z = (profile(baseline, n, seed, k)[0] for n, seed in parts[:3])
    assert (x + y).columns == (y + x).columns  # to the last bit
    assert_same(x + y, y + x)
    assert_same((x + y) + z, x + (y + z))
    assert_same((x + y) + z, (z + x) + y)


@SETTINGS
@given(n=st.integers(0, 80), seed=st.integers(0, 2**32), k=sample_sizes)
def test_a_profile_survives_json(baseline, n, seed, k):
    built, _ = profile(baseline, n, seed, k)
    text = json.dumps(built.to_dict(), allow_nan=False)  # strict JSON
    assert_same(BatchProfile.from_dict(json.loads(text), built.sample), built)


def test_samples_of_different_sizes_merge_at_the_smaller(baseline):
    """The k smallest keys of a union are known only up to the smaller part's k."""
    (a, fa), (b, fb) = profile(baseline, 300, 1, 50), profile(baseline, 300, 2, 20)
    merged = a + b
    assert merged.sample_size == len(merged.sample) == 20
    assert_same(merged, of_concatenation(baseline, [fa, fb], 20))


def test_a_column_only_some_batches_have_counts_theirs(baseline):
    """Scores exist where the champion predicted, not where predictions were served."""
    a, (b, fb) = profile(baseline, 200, 1, 30)[0], profile(baseline, 300, 2, 30)
    served = BatchProfile.build(
        fb.drop(columns=[SCORE, KEY, "__time__"]),
        baseline,
        sample_size=30,
        keys=fb[KEY].to_numpy(),
        times=fb["__time__"],
    )
    for merged in (a + served, served + a):
        assert merged.rows == 500
        assert merged.columns[SCORE] == a.columns[SCORE]
        assert merged.columns["x1"] == (a + b).columns["x1"]
        assert set(merged.sample[KEY]) == set((a + b).sample[KEY])
    assert (a + served).columns == (served + a).columns


def test_profiles_of_different_baselines_do_not_merge(baseline):
    ref = make_frame(500, 9)[["x1", "x2", "segment", "flag"]]
    other = build_baseline(ref.assign(zip=np.arange(500).astype(str)))
    frame = rows(50, 0)
    a = BatchProfile.build(frame, baseline, sample_size=10, seed=0)
    b = BatchProfile.build(frame, other, sample_size=10, seed=0)
    with pytest.raises(ValueError, match="different baselines"):
        a + b


# Oracles


def test_counts_agree_with_feature_profiles(baseline, global_random_seed):
    frame = rows(3000, global_random_seed)
    built = BatchProfile.build(frame, baseline, sample_size=100, seed=global_random_seed)
    assert list(built.columns) == [*FEATURES, PREDICTION, SCORE]
    assert baseline.features["zip"].buckets  # hashed: the counts are the hash buckets'
    for name, ref in bins(baseline).items():
        seen = ref.observe(frame[name])
        assert built.columns[name].counts == seen.counts, name
        assert built.columns[name].missing == seen.missing, name
    unseen = built.columns["segment"].counts[-1]
    assert unseen == (frame["segment"] == "e").sum() > 0


def test_a_column_reads_as_observe_profiles_it(baseline, global_random_seed):
    """What a window's data-quality checks and drift counts read from a merged profile is
    what ``FeatureProfile.observe`` gives on the rows."""
    frame = rows(3000, global_random_seed)
    halves = merge(
        BatchProfile.build(part, baseline, sample_size=100, seed=i)
        for i, part in enumerate((frame.iloc[:1000], frame.iloc[1000:]))
    )
    for name, ref in bins(baseline).items():
        seen, got = ref.observe(frame[name]), halves.columns[name].observed(ref)
        assert (got.count, got.missing, got.counts) == (seen.count, seen.missing, seen.counts)
        assert got.missing_rate == seen.missing_rate, name
        assert got.outside_share == seen.outside_share or math.isnan(seen.outside_share)
        for key in ("min", "max", "mean", "std"):
            if ref.kind != "numeric":
                assert getattr(got, key) == getattr(seen, key) is None, name
                continue
            assert getattr(got, key) == pytest.approx(getattr(seen, key), rel=1e-9), name


def test_numeric_counts_agree_with_numpy_histogram(baseline, global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    edges = np.asarray(baseline.features["x1"].edges)
    # Values on the edges themselves (each belongs to the bin it closes), beyond the range
    # on both sides, and missing.
    x = np.concatenate([rng.normal(0, 1.5, 5000), edges[1:], [-50.0, 50.0, np.nan, np.nan]])
    frame = rows(len(x), global_random_seed).assign(x1=rng.permutation(x))
    counts = BatchProfile.build(frame, baseline, sample_size=100, seed=0).columns["x1"].counts

    # Bins (e[i-1], e[i]] are right-closed; numpy's are left-closed, so count -x on -edges.
    present = x[~np.isnan(x)]
    outer = np.concatenate([[present.min() - 1], edges, [present.max() + 1]])
    expected, _ = np.histogram(-present, bins=-outer[::-1])
    assert counts == tuple(expected[::-1])


def test_moments_agree_with_numpy(baseline, global_random_seed):
    frame = rows(5000, global_random_seed)
    frame["x2"] = frame["x2"] + 1e9  # a mean large beside the spread
    whole = BatchProfile.build(frame, baseline, sample_size=100, seed=0)
    halves = merge(
        BatchProfile.build(part, baseline, sample_size=100, seed=i)
        for i, part in enumerate((frame.iloc[:1234], frame.iloc[1234:]))
    )
    for built in (whole, halves):
        for name in ("x1", "x2", SCORE):
            x = frame[name].to_numpy(dtype=float)
            x = x[~np.isnan(x)]
            m = built.columns[name].moments
            assert m.n == x.size
            assert (m.min, m.max) == (x.min(), x.max())
            assert m.mean == pytest.approx(x.mean(), rel=1e-12)
            assert m.sum == pytest.approx(x.sum(), rel=1e-12)
            # Values near 1e9 carry seven decimals: a plain sum of squares would lose all.
            assert m.var == pytest.approx(x.var(), rel=1e-8)
        assert built.columns["segment"].moments is None


def test_time_range_spans_the_event_times(baseline):
    when = times(100, 3)
    built = BatchProfile.build(rows(100, 3), baseline, sample_size=10, seed=0, times=when)
    assert (built.start, built.end) == (when.min(), when.max())
    assert BatchProfile.build(rows(10, 3), baseline, sample_size=10, seed=0).start is None


def test_samples_are_uniform(global_random_seed):
    """Over many seeds each row is kept equally often, in one batch's sample and in the
    merge of unequal batches' samples (parts of 3, 7 and 10 rows, k = 5 of 20); a merge
    that ignores the keys, favouring the small part's rows, is rejected."""
    base = build_baseline(pd.DataFrame({"x": np.arange(50.0)}))
    n, k, trials = 20, 5, 2000
    frame = pd.DataFrame({"x": np.arange(float(n))})
    rng = np.random.default_rng(global_random_seed)
    whole, merged, naive = np.zeros(n), np.zeros(n), np.zeros(n)
    for seeds in rng.integers(0, 2**63, (trials, 4)):
        one = BatchProfile.build(frame, base, sample_size=k, seed=seeds[0])
        whole[one.sample["x"].astype(int)] += 1
        parts = [
            BatchProfile.build(part, base, sample_size=k, seed=seed)
            for part, seed in zip(
                (frame.iloc[:3], frame.iloc[3:10], frame.iloc[10:]), seeds[1:], strict=True
            )
        ]
        merged[merge(parts).sample["x"].astype(int)] += 1
        pooled = pd.concat([p.sample for p in parts])["x"].to_numpy()
        naive[rng.choice(pooled, k, replace=False).astype(int)] += 1

    def p_value(counts):
        # Counts of inclusion in a uniform k-subset have the covariance of multinomial
        # counts times (n - k) / (n - 1): Pearson's statistic is scaled back by it.
        statistic = stats.chisquare(counts).statistic / ((n - k) / (n - 1))
        return stats.chi2.sf(statistic, n - 1)

    # A small level: the test runs for up to a hundred seeds and must pass at each.
    assert p_value(whole) > 1e-4
    assert p_value(merged) > 1e-4
    assert p_value(naive) < 1e-10


# Logged batches


def test_log_batch_logs_a_profile_that_merges(champion):
    baseline, _ = tracking.load_baseline(tracking.resolve_version(champion))
    policy = Policy(batches=Batches(sample_size=150))
    frames = [
        make_frame(400, 7).assign(at=times(400, 7).astype(str)),
        make_frame(300, 8).assign(at=times(300, 8).astype(str)),
    ]
    run_ids = [
        log_batch(champion, f, timestamp_col="at", target="y", policy=policy) for f in frames
    ]
    runs = [tracking.get_run(r) for r in run_ids]
    artifacts = {a.path for a in tracking.client().list_artifacts(run_ids[0], "driftctl")}
    assert artifacts == {BATCH_PATH, PROFILE_PATH, SAMPLE_PATH}

    profiles = [read_profile(r) for r in runs]
    for run, p in zip(runs, profiles, strict=True):
        assert p.rows == int(run.data.tags["driftctl.rows"])
        assert p.sample_size == len(p.sample) == 150
        assert p.start == pd.Timestamp(run.data.tags["driftctl.start"])
        assert p.end == pd.Timestamp(run.data.tags["driftctl.end"])

    # The stored rows, with the keys log-batch drew for them (seeded by their content).
    stored = [tracking.read_table_artifact(r, BATCH_PATH) for r in runs]
    keys = [
        np.random.default_rng(int(tracking.dataset_digest(s, size=64), 16)).random(len(s))
        for s in stored
    ]
    whole = pd.concat(stored, ignore_index=True)
    expected = BatchProfile.build(
        whole,
        baseline,
        sample_size=150,
        keys=np.concatenate(keys),
        times=pd.to_datetime(whole["at"], utc=True),
    )
    assert list(expected.columns) == ["x1", "x2", "segment", "flag", PREDICTION, SCORE]
    assert_same(profiles[0] + profiles[1], expected)


def test_log_batch_keeps_the_whole_batch_when_smaller_than_the_sample(champion):
    run = tracking.get_run(log_batch(champion, make_frame(120, 3).drop(columns="y")))
    p = read_profile(run)
    assert (p.rows, len(p.sample), p.sample_size) == (120, 120, 10_000)
    assert p.start is None and p.end is None  # no event times
    assert p.sample[KEY].is_monotonic_increasing


# The policy key


def test_batch_sample_size_and_rows_are_policy_keys():
    assert Policy().batches.sample_size == 10_000
    assert Policy.from_dict({"batches": {"sample_size": 500}}).batches.sample_size == 500
    for bad in (99, 0, -5, 1000.0, True, "10000"):
        with pytest.raises(PolicyError, match="'sample_size' parameter of \\[batches\\]"):
            Policy.from_dict({"batches": {"sample_size": bad}})
    assert (Policy().batches.rows, Policy().batches.copy_max_rows) == ("auto", 1_000_000)
    assert Policy.from_dict({"batches": {"rows": "pointer"}}).batches.rows == "pointer"
    for key, bad in (("rows", 5), ("rows", "link"), ("copy_max_rows", -1), ("copy_max_rows", 1.5)):
        with pytest.raises(PolicyError, match=f"'{key}' parameter of \\[batches\\]"):
            Policy.from_dict({"batches": {key: bad}})
    with pytest.raises(PolicyError, match="unknown key"):
        Policy.from_dict({"batches": {"copies": 5}})


def test_empty_batches_merge(baseline):
    empty, _ = profile(baseline, 0, 1, 10)
    full, _ = profile(baseline, 30, 2, 10)
    assert_same(empty + full, full + empty)
    assert (empty + full).rows == 30
    assert empty.columns["x1"].moments.n == 0
    assert math.isnan(empty.columns["x1"].moments.var)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cuts=st.lists(st.integers(0, 600), max_size=4), seed=st.integers(0, 10))
def test_counting_parts_adds_up_to_the_whole(baseline, cuts, seed):
    """What an engine counts part by part (``count_frames`` where each part lives, then
    ``add_counts``) is what counting the whole batch at once gives."""
    frame = rows(600, seed)
    columns = {n: p for n, p in bins(baseline).items() if n in frame.columns}
    edges = sorted({0, *cuts, 600})
    parts = [frame.iloc[a:b] for a, b in itertools.pairwise(edges)]
    texts = [count_frames(iter(parts[: len(parts) // 2]), columns)]
    texts.append(count_frames(iter(parts[len(parts) // 2 :]), columns))
    n, counted, infinite = add_counts(texts, columns)
    whole = BatchProfile.build(frame, baseline, sample_size=10)
    assert n == 600 and not any(infinite.values())
    for name, column in whole.columns.items():
        got = counted[name]
        assert (got.counts, got.missing) == (column.counts, column.missing)
        if column.moments is not None:
            for field in ("n", "mean", "m2", "min", "max"):
                want = getattr(column.moments, field)
                assert getattr(got.moments, field) == pytest.approx(want, rel=1e-9, abs=1e-9)
    empty = add_counts([], columns)[1]
    assert all(sum(c.counts) == 0 for c in empty.values())
    # infinities, which a batch may not hold, are counted so that it can be refused
    frame.loc[frame.index[::7], "x1"] = np.inf
    with np.errstate(invalid="ignore"):
        parts = [frame.iloc[a:b] for a, b in itertools.pairwise(edges)]
        infinite = add_counts([count_frames(iter(parts), columns)], columns)[2]
    assert infinite["x1"] == len(frame.index[::7]) and infinite["x2"] == 0
