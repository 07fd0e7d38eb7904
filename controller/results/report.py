"""One monitoring cycle's findings (``Report``) and their plain views: MLflow metrics, a
long table, JSON and the text people read. ``loop.assess`` computes them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from controller.attribution.shift import AttributionShift
from controller.results.naming import metric_safe
from controller.statistics.drift import FeatureDrift
from controller.statistics.forecast import Forecast
from controller.statistics.multivariate import TOP_FEATURES, MultivariateDrift
from controller.statistics.performance import floor, relative_drop, shared, worse
from controller.statistics.quality import QualityCheck


@dataclass(frozen=True)
class RetrainDecision:
    """Whether a cycle's results call for retraining, and whether it was triggered."""

    triggered: bool
    reasons: tuple[str, ...]  # why the results call for retraining; empty when they do not
    held_back: str = ""  # why a called-for retrain was not triggered

    @property
    def called(self) -> bool:
        return bool(self.reasons)


ADVICE = {
    "ok": "Nothing to do: the model's inputs and results look as they did when it was trained.",
    "data_quality": "The data feeding the model is broken (a pipeline or system fault), not "
    "the world changing: ask the data team to fix it, and do not retrain on it.",
    "emerging": "Something changed in the model's inputs this cycle. It may be a one-off: "
    "we watch it, and there is nothing to do yet.",
    "transient": "Last cycle's change did not last: it was a one-off, and there is nothing "
    "to do.",
    "covariate_shift": "The model's inputs have changed for several cycles in a row: it now "
    "sees cases unlike those it learned from. Retrain it if the changed inputs matter to "
    "its decisions.",
    "concept_drift": "The model's results got worse although its inputs did not change (or "
    "worse than their change explains): what it learned no longer holds. Retrain it on "
    "recent outcomes.",
}


@dataclass(frozen=True)
class Triage:
    """What kind of problem a cycle found (``controller.loop.triage``), and why."""

    kind: str  # one of ADVICE's keys
    evidence: tuple[str, ...]

    @property
    def advice(self) -> str:
        return ADVICE[self.kind]


FRAME_COLUMNS = (
    "section", "feature", "statistic", "value", "baseline", "threshold", "alert",
    "p_value", "q_value", "ci_low", "ci_high",
)


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
    triage: Triage | None = None
    context: dict[str, str] = field(default_factory=dict)
    # Performance estimated from the scores before labels arrive (CBPE): metric ->
    # (estimate, low, high), the band at 95%.
    estimated: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    multivariate: tuple[MultivariateDrift, ...] = ()
    # The share of the baseline's attributions held by the drifted features (every feature
    # weighing the same without attributions); None when not computed.
    weighted_share_drifted: float | None = None
    # When the primary metric and the weighted drift share are forecast to cross their
    # floors (``controller.statistics.forecast``): set by a monitoring cycle.
    forecasts: tuple[Forecast, ...] = ()
    # The one-sided 95% confidence bound, on the better side, of the primary metric on the
    # labelled rows (``performance.best_case``): computed only when its value dropped
    # beyond the policy's tolerance, so quiet cycles pay nothing.
    performance_bound: dict[str, float] = field(default_factory=dict)
    # The estimate (as ``estimated``) on the labelled rows alone, to which their measured
    # performance compares: computed, as the bound, only for a drop. Not logged.
    estimated_labelled: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted) / len(self.features) if self.features else 0.0

    @property
    def multivariate_drifted(self) -> list[str]:
        """The multivariate detectors that raised an alarm: drift no single feature shows
        is drift all the same."""
        return [m.method for m in self.multivariate if m.drifted]

    @property
    def drift(self) -> bool:
        return (
            bool(self.drifted)
            or bool(self.prediction and self.prediction.drifted)
            or bool(self.multivariate_drifted)
        )

    @property
    def primary_metric(self) -> str | None:
        """The primary metric of those measured and known at the baseline."""
        return shared(self.performance, self.baseline_performance)

    def performance_drop(self, tolerance: float) -> str | None:
        """What says the model got worse, or None: its primary metric dropped beyond
        ``tolerance`` (relatively) from the baseline's value, and significantly so (the
        baseline's value is worse than the metric's one-sided 95% bound on the better side,
        from a bootstrap over the labelled rows). Without that bound, no drop is shown."""
        metric = self.primary_metric
        if metric is None:
            return None
        now, base = self.performance[metric], self.baseline_performance[metric]
        bound = self.performance_bound.get(metric)
        if not worse(metric, now, floor(metric, base, tolerance)):
            return None
        if bound is None or not math.isfinite(bound) or not worse(metric, bound, base):
            return None
        return (
            f"{metric} worse by {relative_drop(metric, now, base):.1%} than at the "
            f"baseline ({now:.4f} against {base:.4f}, on {self.n_labelled} labelled rows; "
            f"at best {bound:.4f} at 95% confidence)"
        )

    @property
    def quality_alerts(self) -> list[QualityCheck]:
        return [q for q in self.quality if q.alert]

    @property
    def verdict(self) -> str:
        """ "drift", "quality" (data-quality alerts but no drift) or "ok"."""
        return "drift" if self.drift else "quality" if self.quality_alerts else "ok"

    @property
    def expected_false_alarms(self) -> float:
        """Expected number of alarms when nothing drifted (an upper bound): the features'
        false-alarm rates plus the multivariate detectors'."""
        rates = [f.false_alarm_rate for f in self.features]
        rates += [m.false_alarm_rate for m in self.multivariate]
        return float(sum(r for r in rates if math.isfinite(r)))

    def metrics(self) -> dict[str, float]:
        """Flat MLflow metrics under the documented names."""
        out: dict[str, float] = {
            "drift.share_drifted": self.share_drifted,
            "drift.n_drifted": float(len(self.drifted)),
            "drift.expected_false_alarms": self.expected_false_alarms,
            "window.rows": float(self.n_rows),
            "window.labelled_rows": float(self.n_labelled),
        }
        if self.weighted_share_drifted is not None:
            out["drift.weighted_share_drifted"] = self.weighted_share_drifted
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
        for m in self.multivariate:
            out[f"multivariate.{m.method}.value"] = m.value
            out[f"multivariate.{m.method}.threshold"] = m.threshold
            out[f"multivariate.{m.method}.verdict"] = float(m.drifted)
            # Only for an alarm: the top features of a quiet window change every cycle, and
            # keys that come and go break the charts' lines.
            for feature, drop in list(m.importance.items())[:TOP_FEATURES]:
                if m.drifted and drop > 0:
                    out[f"multivariate.{m.method}.importance.{metric_safe(feature)}"] = drop
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
        for name, (value, low, high) in self.estimated.items():
            out[f"performance.estimated.{name}"] = value
            out[f"performance.estimated.{name}.low"] = low
            out[f"performance.estimated.{name}.high"] = high
        for f in self.forecasts:
            if f.available:  # inf (not within the horizon) is left out with the NaNs
                # Crossing times: low is the soonest (the pessimistic bound), high the latest.
                out[f"forecast.{f.series}.cycles_to_floor"] = f.cycles_to_floor
                out[f"forecast.{f.series}.low"] = f.low
                out[f"forecast.{f.series}.high"] = f.high
        # MLflow stores NaN, but the UI plots it poorly: leave undefined values out.
        return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}

    def to_frame(self) -> pd.DataFrame:
        """The findings as one long table, as NannyML gives its results: a row per feature
        (or metric) and statistic, in the columns of ``FRAME_COLUMNS``.

        ``section`` is drift, prediction, quality, multivariate, attribution, performance,
        estimated (performance estimated without labels, with its band in
        ``ci_low``/``ci_high``) or forecast (``feature`` the series, statistic
        ``cycles_to_floor`` with its interval in ``ci_low``/``ci_high``, ``threshold`` the
        floor, ``alert`` whether the floor is crossed within the horizon; inf when not);
        ``feature`` is missing for a metric of the whole window (a multivariate detector's
        value; its rows per feature hold what the domain classifier
        relied on, as ``importance``, the drop in AUC when the feature is shuffled). A drift
        verdict is drawn from one statistic: its row holds the threshold, the alert and the
        p- and q-values of the test, the other statistics' rows only their values.
        ``baseline`` is the value at the baseline (without drift, for a multivariate
        detector) and ``ci_low``/``ci_high`` the bootstrap interval of a change in
        attribution share or the band of an estimate.
        """
        rows: list[dict] = []
        drifts = [("drift", f) for f in self.features]
        if self.prediction:
            drifts.append(("prediction", self.prediction))
        for section, f in drifts:
            for stat, value in {**f.statistics, f.statistic: f.value}.items():
                verdict = (
                    {"threshold": f.threshold, "alert": f.drifted, "p_value": f.p_value,
                     "q_value": f.q_value}
                    if stat == f.statistic
                    else {}
                )
                rows.append(_row(section, f.feature, stat, value, **verdict))
        for q in self.quality:
            rows.append(_row("quality", q.feature, q.check, q.value, threshold=q.threshold,
                             alert=q.alert))
        for m in self.multivariate:
            rows.append(_row("multivariate", None, m.method, m.value, baseline=m.baseline,
                             threshold=m.threshold, alert=m.drifted))
            for feature, drop in m.importance.items():
                rows.append(_row("multivariate", feature, f"{m.method}.importance", drop))
        if self.attribution:
            a = self.attribution
            rows.append(_row("attribution", None, "total_shift", a.total_shift))
            rows.append(_row("attribution", None, "spearman", a.spearman))
            rows.append(_row("attribution", None, "ndcg", a.ndcg, alert=a.ndcg_alert))
            for f in a.features:
                rows.append(_row("attribution", f.feature, "mean_abs", f.mean_abs,
                                 baseline=f.baseline_mean_abs))
                rows.append(_row("attribution", f.feature, "share_change", f.share_change,
                                 alert=f.shifted, ci_low=f.ci_low, ci_high=f.ci_high))
                if f.loss_change is not None:
                    rows.append(_row("attribution", f.feature, "loss_change", f.loss_change))
        for name, value in self.performance.items():
            rows.append(_row("performance", None, name, value,
                             baseline=self.baseline_performance.get(name)))
        for name, (value, low, high) in self.estimated.items():
            rows.append(_row("estimated", None, name, value, ci_low=low, ci_high=high,
                             baseline=self.baseline_performance.get(name)))
        for f in self.forecasts:
            if f.available:
                rows.append(_row("forecast", f.series, "cycles_to_floor", f.cycles_to_floor,
                                 threshold=f.floor, alert=bool(math.isfinite(f.cycles_to_floor)),
                                 ci_low=f.low, ci_high=f.high))
        frame = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
        numbers = ["value", "baseline", "threshold", "p_value", "q_value", "ci_low", "ci_high"]
        return frame.astype({**dict.fromkeys(numbers, float), "alert": "boolean"})

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
            "multivariate": [_clean(asdict(m)) for m in self.multivariate],
            "multivariate_drifted": self.multivariate_drifted,
            "performance": self.performance,
            "baseline_performance": self.baseline_performance,
            "estimated": {
                k: dict(zip(("value", "low", "high"), v, strict=True))
                for k, v in self.estimated.items()
            },
            "weighted_share_drifted": self.weighted_share_drifted,
            "forecasts": [_forecast_dict(f) for f in self.forecasts],
            "attribution": _clean_attribution(self.attribution),
            "notes": list(self.notes),
            "retrain": asdict(self.retrain) if self.retrain else None,
            "triage": {
                "kind": self.triage.kind,
                "evidence": list(self.triage.evidence),
                "advice": self.triage.advice,
            }
            if self.triage
            else None,
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
        for m in self.multivariate:
            if math.isfinite(m.value):
                lines.append(
                    f"multivariate {m.method}: {m.value:.4f} (threshold {m.threshold:.4f}, "
                    f"without drift {m.baseline:.4f}) {'DRIFT' if m.drifted else 'ok'}"
                    + (f"; it relied on {describe(m)}" if m.importance and m.drifted else "")
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
        if self.triage:
            t = self.triage
            lines.append(
                f"triage: {t.kind.upper()}"
                + (f" ({'; '.join(t.evidence)})" if t.evidence else "")
                + f". {t.advice}"
            )
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
        for name, (value, low, high) in self.estimated.items():
            real = self.performance.get(name)
            lines.append(
                f"performance {name} estimated without labels: {value:.4f} "
                f"[{low:.4f}, {high:.4f}]" + (f" (realised {real:.4f})" if real is not None else "")
            )
        lines.extend(f"forecast: {f.describe()}" for f in self.forecasts)
        lines.append(
            f"verdict: {self.verdict.upper()}: {len(self.drifted)} of {len(self.features)} "
            f"features drifted over {self.n_rows} rows; expected false alarms "
            f"{self.expected_false_alarms:.3f}"
            + (
                f"; multivariate drift: {', '.join(self.multivariate_drifted)}"
                if self.multivariate_drifted
                else ""
            )
        )
        if "run_id" in self.context:
            lines.append(f"logged to MLflow run {self.context['run_id']}")
        return "\n".join(lines)


def describe(m: MultivariateDrift, top: int = 3) -> str:
    """The features a domain classifier relied on most, with the drop in AUC each caused."""
    best = [(f, d) for f, d in list(m.importance.items())[:top] if d > 0]
    return ", ".join(f"{f} (AUC {d:.3f} lower shuffled)" for f, d in best) or "no single feature"


def _row(section, feature, statistic, value, **more) -> dict:
    return {"section": section, "feature": feature, "statistic": statistic, "value": value,
            **more}


def _forecast_dict(f: Forecast) -> dict:
    """A forecast for JSON: a crossing beyond the horizon (inf) as None, as NaN is."""
    out = _clean(asdict(f))
    return {**out, "available": f.available, "description": f.describe()}


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
