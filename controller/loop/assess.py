"""Assess a production window against the baseline: drift, data quality, performance and,
given the model, the shift of its attributions, gathered in one ``Report``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from controller._errors import PolicyError
from controller._timing import phase
from controller.attribution.explain import Explainer, NotExplainable, unexplained
from controller.attribution.shift import AttributionShift, compare
from controller.loop.estimate import estimate_performance
from controller.policy import Policy
from controller.profiles.baseline import PREDICTION, SCORE, Baseline
from controller.profiles.profile import FeatureProfile, numeric_values
from controller.results.report import Report
from controller.statistics import performance
from controller.statistics.drift import judge
from controller.statistics.multivariate import detect
from controller.statistics.quality import check_infinite, check_schema, check_values


@dataclass(frozen=True)
class Observed:
    """A production window as ``assess`` reads it.

    ``counts`` holds the profiled columns (the features, the predictions) counted over
    every row in the baseline's bins; None when ``sample`` holds every row, which are then
    counted here. ``sample`` holds the rows (all, or a uniform sample) that serve the
    statistics on raw values, the schema checks, attributions and charts, with
    ``sample_labels`` aligned to it. ``outputs`` holds every row's predictions and scores,
    with ``labels`` aligned to it.
    """

    rows: int
    sample: pd.DataFrame
    outputs: pd.DataFrame
    counts: dict[str, FeatureProfile] | None = None
    labels: pd.Series | None = None
    sample_labels: pd.Series | None = None

    @classmethod
    def of_rows(cls, frame: pd.DataFrame, labels: pd.Series | None = None) -> Observed:
        """A window of full rows: they are their own sample."""
        return cls(len(frame), frame, frame, None, labels, labels)


def assess(
    baseline: Baseline,
    window: pd.DataFrame | Observed,
    policy: Policy,
    labels: pd.Series | None = None,
    meta_columns: tuple[str, ...] = (PREDICTION, SCORE),
    model=None,
) -> Report:
    """Compare a production window with the baseline: drift, quality, performance, and,
    given the model, the shift of its SHAP attributions. ``window`` is its full rows (with
    ``labels`` aligned to them) or what was observed of them."""
    if isinstance(window, pd.DataFrame):
        window = Observed.of_rows(window, labels)
    sample, outputs, labels = window.sample, window.outputs, window.labels
    unknown = sorted(set(policy.features) - set(baseline.features))
    if unknown:
        raise PolicyError(
            f"the policy names feature(s) {unknown} that the baseline does not have",
            f"use feature names from the baseline: {list(baseline.features)}",
        )
    schema = check_schema(baseline.features, sample, ignore=meta_columns)
    broken = {q.feature for q in schema}
    profiles = {n: p for n, p in baseline.features.items() if n not in broken}
    # One pass over the window's columns serves the drift statistics and the quality checks.
    with phase("drift and quality"):
        observed = {n: _counted(window, n, p) for n, p in profiles.items()}
        quality = [
            *schema,
            *check_values(profiles, observed, policy.quality),
            *check_infinite(profiles, sample),
        ]
        features = judge(profiles, baseline.reference, sample, policy, observed=observed)

    multivariate = ()
    if policy.multivariate.enabled:
        with phase("multivariate drift"):
            kinds = {n: p.kind for n, p in profiles.items() if not policy.rule(n, p.kind).ignore}
            multivariate = detect(
                baseline.reference,
                sample,
                kinds,
                policy.multivariate,
                policy.false_alarm_rate,
                policy.calibration_resamples,
                policy.seed,
            )

    prediction = None
    if baseline.prediction is not None and PREDICTION in sample.columns:
        ref = baseline.reference[[PREDICTION]]
        kind = baseline.prediction.kind
        rules = {PREDICTION: policy.rule(PREDICTION, kind)}
        counted = {PREDICTION: _counted(window, PREDICTION, baseline.prediction)}
        found = judge(
            {PREDICTION: baseline.prediction}, ref, sample, policy, rules, observed=counted
        )
        prediction = found[0] if found else None

    perf: dict[str, float] = {}
    n_labelled = 0
    known = None
    if labels is not None and baseline.task and PREDICTION in outputs.columns:
        # Rows of a batch the champion could not score have labels but no prediction.
        known = (labels.notna() & outputs[PREDICTION].notna()).to_numpy()
        n_labelled = int(known.sum())
        y, said = labels.to_numpy()[known], outputs[PREDICTION].to_numpy()[known]
        score = outputs[SCORE].to_numpy()[known] if SCORE in outputs.columns else None
        if score is not None and np.isnan(score).any():
            score = None  # batches with and without scores: threshold-free metrics only
        perf = performance.score(baseline.task, y, said, score, baseline.positive_class)
    # A drop beyond the tolerance must also be beyond sampling noise (a bootstrap), and
    # below what the shift of these rows' inputs explains (their estimate): both only then.
    bound, metric = {}, performance.shared(perf, baseline.performance)
    tolerance = policy.retrain.max_performance_drop
    dropped = metric is not None and performance.worse(
        metric, perf[metric], performance.floor(metric, baseline.performance[metric], tolerance)
    )
    if dropped:
        bound[metric] = performance.best_case(
            baseline.task, metric, y, said, score, baseline.positive_class, policy.seed
        )
    attribution, notes = None, []
    if model is not None and not broken:
        try:
            attribution = attribution_shift(baseline, sample, window.sample_labels, model, policy)
        except NotExplainable as exc:  # the rest of the report stands; the note says why
            notes.append(unexplained(exc))
    elif baseline.attribution.get("note"):
        notes.append(baseline.attribution["note"])
    with phase("performance estimate"):
        estimated, why = estimate_performance(baseline, outputs, policy.seed)
        on_labelled = estimated
        if dropped and not known.all():
            on_labelled, _ = estimate_performance(baseline, outputs[known], policy.seed)
    notes.extend([why] if why else [])
    return Report(
        n_rows=window.rows,
        features=tuple(features),
        prediction=prediction,
        quality=tuple(quality),
        performance=perf,
        baseline_performance=dict(baseline.performance),
        n_labelled=n_labelled,
        attribution=attribution,
        notes=tuple(notes) + tuple(n for m in multivariate for n in m.notes),
        estimated=estimated,
        multivariate=multivariate,
        weighted_share_drifted=weighted_share(features, baseline.attribution.get("share")),
        performance_bound=bound,
        estimated_labelled=on_labelled if dropped else {},
    )


def weighted_share(features, shares: dict[str, float] | None) -> float:
    """The share of the baseline's attributions held by the drifted ``features``: a drift
    in features that matter weighs more. Without an attribution share for each feature,
    every feature weighs the same (the share of drifted features)."""
    if not features:
        return 0.0
    names = [f.feature for f in features]
    if shares and all(shares.get(n) is not None for n in names):
        weights = np.array([max(float(shares[n]), 0.0) for n in names])
    else:
        weights = np.ones(len(names))
    total = weights.sum()
    drifted = np.array([f.drifted for f in features], dtype=bool)
    return float(weights[drifted].sum() / total) if total > 0 else float(drifted.mean())


def _counted(window: Observed, name: str, profile: FeatureProfile) -> FeatureProfile:
    """Column ``name`` of the window profiled in ``profile``'s bins."""
    if window.counts is None:
        return profile.observe(window.sample[name])
    return window.counts[name]


def attribution_shift(
    baseline: Baseline,
    window: pd.DataFrame,
    labels: pd.Series | None,
    model,
    policy: Policy,
) -> AttributionShift:
    """How the model's attributions moved, on a bounded sample of the window (of its rows
    without infinite values, which no model scores)."""
    limits = policy.attribution
    names = list(baseline.features)
    numeric = [n for n, p in baseline.features.items() if p.kind == "numeric"]
    if numeric:
        infinite = np.isinf(np.column_stack([numeric_values(window[n]) for n in numeric]))
        finite = ~infinite.any(axis=1)
        if not finite.all():
            window = window[finite]
            labels = labels[finite] if labels is not None else None
        if not len(window):
            raise NotExplainable(
                "every row of the window holds an infinite value",
                "monitoring continues without attributions for this window",
            )
    reference = baseline.reference
    stored = baseline.attribution
    rng = np.random.default_rng(policy.seed)
    with phase("attributions"):
        explainer = Explainer(
            model,
            reference[names].iloc[: limits.background_size],
            seed=policy.seed,
            per_row=limits.background_per_row,
        )
        rows = np.sort(rng.choice(len(window), min(limits.sample_size, len(window)), replace=False))
        current = explainer.explain(window.iloc[rows][names])
        # A baseline explained another way (an older release, another explainer) is
        # explained again, so that both sides are the same kind of value.
        if baseline.attribution_values is not None and stored.get("explainer") == current.explainer:
            base = baseline.attribution_values[names].to_numpy()
        else:
            base = explainer.explain(reference[names].iloc[: limits.sample_size]).values
    base_loss = current_loss = None
    if labels is not None and baseline.target and baseline.target in reference:
        known = np.flatnonzero(labels.notna().to_numpy())
        if known.size:
            with phase("loss attribution"):
                pick = np.sort(
                    rng.choice(known, min(limits.loss_sample_size, known.size), replace=False)
                )
                found = explainer.explain_loss(window.iloc[pick][names], labels.iloc[pick])
                current_loss = found.values
                if "loss" in stored and stored.get("loss_explainer") == found.explainer:
                    base_loss = np.array([[stored["loss"][n] for n in names]])
                else:
                    sample = reference.iloc[: limits.loss_sample_size]
                    base_loss = explainer.explain_loss(
                        sample[names], sample[baseline.target]
                    ).values
    return compare(
        base,
        current.values,
        tuple(names),
        explainer=current.explainer,
        limits=limits,
        rng=rng,
        baseline_loss=base_loss,
        current_loss=current_loss,
    )
