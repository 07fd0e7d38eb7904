"""One monitoring cycle's findings: computed from plain objects, viewed as a table or metrics."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from controller._errors import PolicyError
from controller._timing import phase
from controller.attribution.explain import AttributionShift, Explainer, compare, unexplained
from controller.policy import Policy
from controller.profiles.baseline import PREDICTION, SCORE, Baseline
from controller.results.naming import metric_safe
from controller.statistics import performance
from controller.statistics.drift import FeatureDrift, judge
from controller.statistics.quality import QualityCheck, check_schema, check_values

if TYPE_CHECKING:
    from controller.loop.decide import RetrainDecision


@dataclass(frozen=True)
class Report:
    """Everything one cycle found about a production window."""

    n_rows: int
    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None
    quality: tuple[QualityCheck, ...]
    performance: dict[str, float]
    baseline_performance: dict[str, float]
    n_labelled: int = 0
    attribution: AttributionShift | None = None
    notes: tuple[str, ...] = ()
    retrain: RetrainDecision | None = None
    context: dict[str, str] = field(default_factory=dict)

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted) / len(self.features) if self.features else 0.0

    @property
    def drift(self) -> bool:
        return bool(self.drifted) or bool(self.prediction and self.prediction.drifted)

    @property
    def quality_alerts(self) -> list[QualityCheck]:
        return [q for q in self.quality if q.alert]

    @property
    def verdict(self) -> str:
        """ "drift", "quality" (data-quality alerts but no drift) or "ok"."""
        return "drift" if self.drift else "quality" if self.quality_alerts else "ok"

    @property
    def expected_false_alarms(self) -> float:
        """Expected number of features flagged when nothing drifted (an upper bound)."""
        return float(sum(f.false_alarm_rate for f in self.features))

    def metrics(self) -> dict[str, float]:
        """Flat MLflow metrics under the documented names."""
        out: dict[str, float] = {
            "drift.share_drifted": self.share_drifted,
            "drift.n_drifted": float(len(self.drifted)),
            "drift.expected_false_alarms": self.expected_false_alarms,
            "window.rows": float(self.n_rows),
            "window.labelled_rows": float(self.n_labelled),
        }
        for f in self.features:
            key = metric_safe(f.feature)
            for stat, value in f.statistics.items():
                out[f"drift.{stat}.{key}"] = value
            out[f"drift.threshold.{key}"] = f.threshold
            out[f"drift.p_value.{key}"] = f.p_value
            out[f"drift.q_value.{key}"] = f.q_value
            out[f"drift.verdict.{key}"] = float(f.drifted)
        if self.prediction:
            for stat, value in self.prediction.statistics.items():
                out[f"prediction.{stat}"] = value
            out["prediction.threshold"] = self.prediction.threshold
            out["prediction.p_value"] = self.prediction.p_value
            out["prediction.verdict"] = float(self.prediction.drifted)
        for q in self.quality:
            out[f"quality.{q.check}.{metric_safe(q.feature)}"] = q.value
        if self.attribution:
            a = self.attribution
            out.update(
                {
                    "attribution.total_shift": a.total_shift,
                    "attribution.spearman": a.spearman,
                    "attribution.ndcg": a.ndcg,
                    "attribution.n_shifted": float(len(a.shifted)),
                }
            )
            for f in a.features:
                key = metric_safe(f.feature)
                out[f"attribution.baseline_mean_abs.{key}"] = f.baseline_mean_abs
                out[f"attribution.mean_abs.{key}"] = f.mean_abs
                out[f"attribution.share_change.{key}"] = f.share_change
                out[f"attribution.share_change_low.{key}"] = f.ci_low
                out[f"attribution.share_change_high.{key}"] = f.ci_high
                out[f"attribution.verdict.{key}"] = float(f.shifted)
                if f.loss_change is not None:
                    out[f"attribution.loss_change.{key}"] = f.loss_change
        if self.retrain:
            out["retrain.called"] = float(self.retrain.called)
            out["retrain.triggered"] = float(self.retrain.triggered)
        for name, value in self.performance.items():
            out[f"performance.{name}"] = value
            if name in self.baseline_performance:
                out[f"performance.{name}.change"] = value - self.baseline_performance[name]
        # MLflow stores NaN, but the UI plots it poorly: leave undefined values out.
        return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "context": self.context,
            "n_rows": self.n_rows,
            "n_labelled": self.n_labelled,
            "share_drifted": self.share_drifted,
            "drifted_features": self.drifted,
            "expected_false_alarms": self.expected_false_alarms,
            "features": [_clean(asdict(f)) for f in self.features],
            "prediction": _clean(asdict(self.prediction)) if self.prediction else None,
            "quality": [_clean(asdict(q)) for q in self.quality],
            "quality_alerts": [f"{q.check}: {q.feature}" for q in self.quality_alerts],
            "performance": self.performance,
            "baseline_performance": self.baseline_performance,
            "attribution": _clean_attribution(self.attribution),
            "notes": list(self.notes),
            "retrain": asdict(self.retrain) if self.retrain else None,
        }

    def render(self) -> str:
        """The table people read: one line per feature, then quality and performance."""
        rows = [*self.features, *([self.prediction] if self.prediction else [])]
        names = ["(prediction)" if f is self.prediction else f.feature for f in rows]
        w = max([7, *map(len, names)])
        lines = [
            f"{'feature':<{w}} {'statistic':<15} {'value':>9} {'threshold':>9} {'p (BH)':>8}  "
            "verdict"
        ]
        for name, f in zip(names, rows, strict=True):
            lines.append(
                f"{name:<{w}} {f.statistic:<15} {f.value:>9.4f} {f.threshold:>9.4f} "
                f"{f.q_value:>8.2g}  {'DRIFT' if f.drifted else 'ok'}"
            )
        for q in self.quality_alerts:
            lines.append(
                f"quality alert: {q.check} on {q.feature!r} = {q.value:.4g}"
                + (f" (limit {q.threshold:g})" if q.threshold is not None else "")
            )
        if self.attribution:
            a = self.attribution
            lines.append(
                f"attribution ({a.explainer}, {a.n_rows} rows): nDCG {a.ndcg:.3f}, total shift "
                f"{a.total_shift:.3f}, Spearman {a.spearman:.2f}; shifted: "
                f"{', '.join(a.shifted) or 'none'}"
            )
            movers = sorted(
                (f for f in a.features if f.loss_change is not None),
                key=lambda f: -f.loss_change,
            )[:3]
            if movers:
                lines.append(
                    "loss attribution rose most for: "
                    + ", ".join(f"{f.feature} ({f.loss_change:+.3f})" for f in movers)
                )
        lines.extend(self.notes)
        if self.retrain and self.retrain.called:
            state = (
                "TRIGGERED" if self.retrain.triggered else f"held back: {self.retrain.held_back}"
            )
            lines.append(f"retrain {state}; because: {'; '.join(self.retrain.reasons)}")
        for name, value in self.performance.items():
            base = self.baseline_performance.get(name)
            lines.append(
                f"performance {name}: {value:.4f}"
                + (f" (baseline {base:.4f})" if base is not None else "")
            )
        lines.append(
            f"verdict: {self.verdict.upper()}: {len(self.drifted)} of {len(self.features)} "
            f"features drifted over {self.n_rows} rows; expected false alarms "
            f"{self.expected_false_alarms:.3f}"
        )
        if "run_id" in self.context:
            lines.append(f"logged to MLflow run {self.context['run_id']}")
        return "\n".join(lines)


def _clean_attribution(a: AttributionShift | None) -> dict | None:
    if a is None:
        return None
    out = _clean({k: v for k, v in asdict(a).items() if k != "features"})
    return {**out, "shifted": a.shifted, "features": [_clean(asdict(f)) for f in a.features]}


def _clean(d: dict) -> dict:
    """NaN to None so the JSON is valid."""
    return {
        k: (
            None
            if isinstance(v, float) and not math.isfinite(v)
            else _clean(v)
            if isinstance(v, dict)
            else v
        )
        for k, v in d.items()
    }


def assess(
    baseline: Baseline,
    window: pd.DataFrame,
    policy: Policy,
    labels: pd.Series | None = None,
    meta_columns: tuple[str, ...] = (PREDICTION, SCORE),
    model=None,
) -> Report:
    """Compare a production window with the baseline: drift, quality, performance, and,
    given the model, the shift of its SHAP attributions."""
    unknown = sorted(set(policy.features) - set(baseline.features))
    if unknown:
        raise PolicyError(
            f"the policy names feature(s) {unknown} that the baseline does not have",
            f"use feature names from the baseline: {list(baseline.features)}",
        )
    schema = check_schema(baseline.features, window, ignore=meta_columns)
    broken = {q.feature for q in schema}
    profiles = {n: p for n, p in baseline.features.items() if n not in broken}
    # One pass over the window's columns serves the drift statistics and the quality checks.
    with phase("drift and quality"):
        observed = {n: p.observe(window[n]) for n, p in profiles.items()}
        quality = schema + check_values(profiles, observed, policy.quality)
        features = judge(profiles, baseline.reference, window, policy, observed=observed)

    prediction = None
    if baseline.prediction is not None and PREDICTION in window.columns:
        ref = baseline.reference[[PREDICTION]]
        kind = baseline.prediction.kind
        rules = {PREDICTION: policy.rule(PREDICTION, kind)}
        found = judge({PREDICTION: baseline.prediction}, ref, window, policy, rules)
        prediction = found[0] if found else None

    perf: dict[str, float] = {}
    n_labelled = 0
    if labels is not None and baseline.task and PREDICTION in window.columns:
        known = labels.notna().to_numpy()
        n_labelled = int(known.sum())
        score = window[SCORE].to_numpy()[known] if SCORE in window.columns else None
        if score is not None and np.isnan(score).any():
            score = None  # batches with and without scores: threshold-free metrics only
        perf = performance.score(
            baseline.task,
            labels.to_numpy()[known],
            window[PREDICTION].to_numpy()[known],
            score,
            baseline.positive_class,
        )
    attribution, notes = None, []
    if model is not None and not broken:
        try:
            attribution = attribution_shift(baseline, window, labels, model, policy)
        except Exception as exc:  # the cycle logs everything else, saying why
            notes.append(unexplained(exc))
    elif baseline.attribution.get("note"):
        notes.append(baseline.attribution["note"])
    return Report(
        n_rows=len(window),
        features=tuple(features),
        prediction=prediction,
        quality=tuple(quality),
        performance=perf,
        baseline_performance=dict(baseline.performance),
        n_labelled=n_labelled,
        attribution=attribution,
        notes=tuple(notes),
    )


def attribution_shift(
    baseline: Baseline,
    window: pd.DataFrame,
    labels: pd.Series | None,
    model,
    policy: Policy,
) -> AttributionShift:
    """How the model's attributions moved, on a bounded sample of the window."""
    limits = policy.attribution
    names = list(baseline.features)
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
