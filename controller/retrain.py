"""Build a challenger from the champion and test it on the same recent rows.

The challenger is a fresh clone of the champion's scikit-learn estimator or pipeline (same
hyper-parameters), refitted on the policy's training window: ``sliding`` takes the labelled
rows of the last ``window_batches`` batches, ``expanding`` adds the baseline's reference rows
to every labelled batch. The most recent ``holdout_share`` of the labelled rows is held out
(a time-based split) and never trained on; both models are scored on exactly those rows and
the gate of ``controller.evaluate`` decides. The challenger is logged as an MLflow model
with its own baseline and its lineage; registering and promoting it come after.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd

from controller import tracking
from controller._errors import InputError
from controller.batches import load_window
from controller.evaluate import METRICS, Comparison, Decision, Threshold, compare, gate
from controller.model import predict
from controller.performance import as_labels
from controller.policy import Policy

COMPARISON = "driftctl/comparison.json"
MIN_ROWS = 20


@dataclass(frozen=True)
class RetrainResult:
    run_id: str
    champion_version: str
    metric: str
    comparisons: tuple[Comparison, ...]
    decision: Decision
    n_train: int
    n_holdout: int
    holdout_digest: str

    def render(self) -> str:
        lines = [
            f"challenger of version {self.champion_version}: trained on {self.n_train} "
            f"rows, compared on {self.n_holdout} held-out rows",
            f"{'metric':<10} {'champion':>9} {'challenger':>10} {'better by':>10}  "
            f"{'interval':<21} method",
        ]
        for c in self.comparisons:
            lines.append(
                f"{c.metric:<10} {c.champion:>9.4f} {c.challenger:>10.4f} "
                f"{c.improvement:>+10.4f}  [{c.ci_low:+.4f}, {c.ci_high:+.4f}]  "
                f"{c.method}"
            )
        verdict = "PASSED" if self.decision.passed else "FAILED"
        lines.append(f"gate on {self.metric}: {verdict}")
        lines.extend(f"  {r}" for r in self.decision.reasons)
        lines.append(f"logged to MLflow run {self.run_id}")
        return "\n".join(lines)


def retrain(name: str, *, policy: Policy | None = None, trigger_run: str = "") -> RetrainResult:
    """Refit a challenger of ``name``'s champion, compare, and log it; returns the result."""
    import sklearn
    from sklearn.base import BaseEstimator, clone

    rules = (policy or Policy()).retrain
    mv = tracking.resolve_version(name)
    baseline, _ = tracking.load_baseline(mv)
    model = tracking.load_model(mv)
    if not baseline.target or not isinstance(model, BaseEstimator):
        raise InputError(
            f"model {name!r} version {mv.version} cannot be refitted by driftctl: "
            + (
                "its baseline has no target"
                if not baseline.target
                else "it is not a scikit-learn estimator"
            ),
            "log the baseline with --target, from a scikit-learn model",
        )
    last = rules.window_batches if rules.window == "sliding" else 10**9
    window = load_window(name, baseline, last=last)
    known = window.labels.notna().to_numpy() if window.labels is not None else None
    if known is None or known.sum() < MIN_ROWS:
        raise InputError(
            f"only {0 if known is None else int(known.sum())} labelled production rows in the "
            f"training window of model {name!r}; at least {MIN_ROWS} are needed",
            "log labels with driftctl log-labels, or widen [retrain] window_batches",
        )
    features = list(baseline.features)
    rows, labels = window.frame[known], window.labels[known]
    cut = round(len(rows) * (1 - rules.holdout_share))
    train_x, train_y = rows.iloc[:cut][features], labels.iloc[:cut]
    if rules.window == "expanding":
        train_x = pd.concat([baseline.reference[features], train_x], ignore_index=True)
        train_y = pd.concat([baseline.reference[baseline.target], train_y], ignore_index=True)
    if baseline.task == "classification" and hasattr(model, "classes_"):
        # Labels as the champion knew them: 1.0 from a CSV with gaps is still class 1.
        known_classes = dict(zip(as_labels(model.classes_), model.classes_, strict=True))
        train_y = pd.Series([known_classes.get(v, v) for v in as_labels(train_y)])
    hold_x, hold_y = rows.iloc[cut:][features], labels.iloc[cut:]
    try:
        challenger = clone(model).fit(train_x, train_y)
    except Exception as exc:  # the estimator's own message says what is wrong with the data
        raise InputError(
            f"refitting the champion's estimator failed: {exc}",
            "check the labelled production rows",
        ) from exc

    task = baseline.task
    y, champ, chall = _scored(task, hold_y, hold_x, model, challenger, baseline.positive_class)
    comparisons = compare(task, y, champ, chall, confidence=rules.confidence)
    metric = rules.metric
    if metric == "auto":
        metric = (
            "rmse" if task == "regression" else ("roc_auc" if champ[1] is not None else "accuracy")
        )
    decision = gate(
        comparisons,
        Threshold(
            metric, METRICS[task][metric], rules.min_absolute_change, rules.min_relative_change
        ),
        {c.metric: rules.guardrail_tolerance for c in comparisons if c.metric != metric},
    )
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(hold_x.assign(__y=hold_y.to_numpy()), index=False).to_numpy()
    ).hexdigest()
    tags = {
        tracking.KIND: "retrain",
        tracking.MODEL: name,
        tracking.TAG + "champion_version": str(mv.version),
        tracking.TAG + "training_window": rules.window,
        tracking.TAG + "batches": ",".join(window.run_ids)[:4000],
        tracking.TAG + "trigger_run": trigger_run,
        tracking.TAG + "holdout_digest": digest,
        tracking.TAG + "gate": "passed" if decision.passed else "failed",
        tracking.TAG + "gate_reasons": "; ".join(decision.reasons)[:4000],
    }
    metrics = {}
    for c in comparisons:
        for key in ("champion", "challenger", "improvement", "ci_low", "ci_high"):
            metrics[f"compare.{c.metric}.{key}"] = getattr(c, key)
    flavor = mlflow.models.get_model_info(f"models:/{name}/{mv.version}").flavors["sklearn"]
    with tracking.atomic_run(
        tracking.experiment_id(name), f"challenger of v{mv.version}", tags
    ) as run:
        mlflow.sklearn.log_model(
            challenger,
            name="model",
            serialization_format=flavor.get("serialization_format"),
            skops_trusted_types=flavor.get("skops_trusted_types"),
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
        tracking.log_baseline(
            pd.concat(
                [train_x, pd.Series(train_y.to_numpy(), name=baseline.target, index=train_x.index)],
                axis=1,
            ),
            model=challenger,
            target=baseline.target,
            run_id=run.info.run_id,
        )
        tracking.log_metrics(run.info.run_id, metrics)
        mlflow.log_dict(
            {
                "metric": metric,
                "passed": decision.passed,
                "reasons": list(decision.reasons),
                "comparisons": [c.__dict__ for c in comparisons],
            },
            COMPARISON,
        )
    return RetrainResult(
        run.info.run_id,
        str(mv.version),
        metric,
        tuple(comparisons),
        decision,
        len(train_x),
        len(hold_x),
        digest,
    )


def _scored(task, hold_y, hold_x, champion, challenger, positive):
    """Labels and each model's (predictions, scores) on the held-out rows, as 0/1 for a
    binary classification."""
    out = []
    for m in (champion, challenger):
        p = predict(m, hold_x)
        if task == "classification":
            out.append(((as_labels(p.values) == positive).astype(int), p.score))
        else:
            out.append((np.asarray(p.values, float), None))
    y = (
        (as_labels(hold_y) == positive).astype(int)
        if task == "classification"
        else (hold_y.to_numpy(dtype=float))
    )
    return y, out[0], out[1]
