"""Build a challenger from the champion, test it on the same recent rows, register it.

The challenger is a fresh clone of the champion's scikit-learn estimator or pipeline (same
hyper-parameters) refitted on the policy's training window, or whatever the user's MLflow
project entry point trains on it (``[retrain] entry_point``): ``sliding`` takes the labelled
rows of the last ``window_batches`` batches, ``expanding`` adds the baseline's reference
rows. The most recent ``holdout_share`` of the labelled rows is held out (a time-based
split) and never trained on; both models are scored on exactly those rows and the gate of
``controller.evaluate`` decides. The challenger is logged as an MLflow model with its own
baseline and its lineage; one that passes is registered by ``controller.registry``.

An entry point receives two parameters, ``training_data`` (a parquet file of the features
and the target) and ``target`` (the target's column), and logs the trained model with
``log_model(model, name="model")`` in its run.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from controller import performance, registry, tracking
from controller._errors import InputError, NotEnoughDataError
from controller._failpoints import failpoint
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
    version: str | None = None  # the registered version, when the challenger passed
    registry: tuple[str, ...] = ()  # what happened in the registry, in words
    reused: bool = False  # an earlier run for the same trigger or data was found

    def table(self) -> list[str]:
        """The comparison as Markdown table rows."""
        rows = [
            "| metric | champion | challenger | better by | interval | method |",
            "|---|---:|---:|---:|---|---|",
        ]
        for c in self.comparisons:
            rows.append(
                f"| {c.metric} | {c.champion:.4f} | {c.challenger:.4f} | {c.improvement:+.4f} "
                f"| [{c.ci_low:+.4f}, {c.ci_high:+.4f}] | {c.method} |"
            )
        return rows

    def markdown(self) -> str:
        """The comparison for the version's description in the MLflow UI."""
        verdict = "passed" if self.decision.passed else "failed"
        return "\n".join(
            [
                f"**Challenger of version {self.champion_version}** trained by driftctl on "
                f"{self.n_train} rows, compared with the champion on the same "
                f"{self.n_holdout} most recent labelled rows, held out from training "
                f"(digest `{self.holdout_digest[:12]}`).",
                "",
                *self.table(),
                "",
                f"Gate on **{self.metric}**: {verdict}.",
                *(f"- {r}" for r in self.decision.reasons),
                "",
                f"Run: `{self.run_id}`. Approve by setting the tag `approval` to `approved` "
                "(or `rejected`) on this version.",
            ]
        )

    def render(self) -> str:
        lines = [
            f"challenger of version {self.champion_version}: trained on {self.n_train} "
            f"rows, compared on {self.n_holdout} held-out rows"
            + (" (found from an earlier run)" if self.reused else ""),
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
        lines.extend(self.registry)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "passed": self.decision.passed,
            "reasons": list(self.decision.reasons),
            "comparisons": [c.__dict__ for c in self.comparisons],
            "champion_version": self.champion_version,
            "n_train": self.n_train,
            "n_holdout": self.n_holdout,
            "holdout_digest": self.holdout_digest,
        }

    @classmethod
    def from_run(cls, run_id: str) -> RetrainResult:
        d = json.loads(tracking.read_text_artifact(run_id, COMPARISON))
        return cls(
            run_id,
            d["champion_version"],
            d["metric"],
            tuple(Comparison(**c) for c in d["comparisons"]),
            Decision(d["passed"], tuple(d["reasons"])),
            d["n_train"],
            d["n_holdout"],
            d["holdout_digest"],
            reused=True,
        )


def retrain(name: str, *, policy: Policy | None = None, trigger_run: str = "") -> RetrainResult:
    """Build a challenger of ``name``'s champion, compare, log and register it.

    Once per trigger: with ``trigger_run`` (the monitor run that called for it), or else for
    the same champion, data and policy, an earlier complete run is reused, not repeated. A
    challenger that passes is registered with the alias ``challenger``; with
    ``promotion = "auto"`` it is promoted at once.
    """
    policy = policy or Policy()
    rules = policy.retrain
    # Decisions made in the registry first: the challenger is built against today's champion.
    said = registry.reconcile(name, rules.promotion)
    mv = tracking.resolve_version(name)
    baseline, _ = tracking.load_baseline(mv)
    model = tracking.load_model(mv)
    if not baseline.target or not (rules.entry_point or _refittable(model)):
        raise InputError(
            f"model {name!r} version {mv.version} cannot be refitted by driftctl: "
            + (
                "its baseline has no target"
                if not baseline.target
                else "it is not a scikit-learn estimator"
            ),
            "log the baseline with --target; for a model that is not a scikit-learn "
            "estimator, name your training entry point in [retrain] entry_point",
        )
    train, hold, batches = _split(name, baseline, model, rules)
    key = hashlib.sha256(
        repr(
            ("trigger", trigger_run)
            if trigger_run
            # How it is promoted does not change the challenger.
            else (mv.version, _digest(train), _digest(hold), replace(rules, promotion=""))
        ).encode()
    ).hexdigest()
    earlier = [
        r for r in registry.complete_retrains(name) if r.data.tags.get(registry.RETRAIN_KEY) == key
    ]
    if earlier:
        result = RetrainResult.from_run(earlier[-1].info.run_id)
    else:
        lineage = {"trigger_run": trigger_run, "batches": ",".join(batches)[:4000]}
        result = _build(name, mv, baseline, model, train, hold, policy, lineage, key)
        failpoint("after-candidate")
    if not result.decision.passed:
        return replace(result, registry=tuple(said))
    version, registered = registry.register(name, result.run_id)
    if version is None:
        return replace(result, registry=(*said, registered))
    return replace(
        result,
        run_id=version.run_id,
        version=str(version.version),
        registry=(*said, registered, *registry.reconcile(name, rules.promotion)),
    )


def _refittable(model) -> bool:
    from sklearn.base import BaseEstimator

    return isinstance(model, BaseEstimator)


def _split(name, baseline, model, rules):
    """(training rows, held-out rows, batch runs): rows with the target column, the most
    recent ``holdout_share`` of the window's labelled rows held out."""
    last = rules.window_batches if rules.window == "sliding" else 10**9
    window = load_window(name, baseline, last=last)
    known = window.labels.notna().to_numpy() if window.labels is not None else None
    if known is None or known.sum() < MIN_ROWS:
        raise NotEnoughDataError(
            f"only {0 if known is None else int(known.sum())} labelled production rows in the "
            f"training window of model {name!r}; at least {MIN_ROWS} are needed",
            "log labels with driftctl log-labels, or widen [retrain] window_batches",
        )
    features, target = list(baseline.features), baseline.target
    labels = window.labels[known].to_numpy()
    if baseline.task == "classification" and hasattr(model, "classes_"):
        # Labels as the champion knew them: 1.0 from a CSV with gaps is still class 1.
        known_classes = dict(zip(as_labels(model.classes_), model.classes_, strict=True))
        labels = np.array([known_classes.get(v, v) for v in as_labels(labels)], dtype=object)
        labels = pd.Series(labels).infer_objects().to_numpy()
    rows = window.frame.loc[known, features].assign(**{target: labels}).reset_index(drop=True)
    cut = round(len(rows) * (1 - rules.holdout_share))
    train, hold = rows.iloc[:cut], rows.iloc[cut:].reset_index(drop=True)
    if rules.window == "expanding":
        train = pd.concat([baseline.reference[[*features, target]], train], ignore_index=True)
    return train, hold, window.run_ids


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy()).hexdigest()


def _build(name, mv, baseline, model, train, hold, policy, lineage, key) -> RetrainResult:
    """Train the challenger, compare it with the champion, and log it as one complete run."""
    rules = policy.retrain
    features, target, task = list(baseline.features), baseline.target, baseline.task
    experiment = tracking.experiment_id(name)
    project_run = None
    if rules.entry_point:
        project_run = _train_in_project(rules, train, target, experiment)
        challenger = tracking.load_model_uri(f"runs:/{project_run}/model")
    else:
        challenger = _refit(model, train[features], train[target])
    y, champ, chall = _scored(task, hold, model, challenger, baseline)
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
    digest = _digest(hold)
    tags = {
        tracking.KIND: "retrain",
        tracking.MODEL: name,
        registry.RETRAIN_KEY: key,
        tracking.TAG + "champion_version": str(mv.version),
        tracking.TAG + "training_window": rules.window,
        tracking.TAG + "training": rules.entry_point or "clone of the champion",
        **{tracking.TAG + k: v for k, v in lineage.items()},
        tracking.TAG + "holdout_digest": digest,
        tracking.TAG + "gate_reasons": "; ".join(decision.reasons)[:4000],
    }
    metrics = {}
    for c in comparisons:
        for k in ("champion", "challenger", "improvement", "ci_low", "ci_high"):
            metrics[f"compare.{c.metric}.{k}"] = getattr(c, k)
    with tracking.atomic_run(
        experiment, f"challenger of v{mv.version}", tags, run_id=project_run
    ) as run:
        result = RetrainResult(
            run.info.run_id,
            str(mv.version),
            metric,
            tuple(comparisons),
            decision,
            len(train),
            len(hold),
            digest,
        )
        if project_run is None:
            _log_clone(challenger, name, mv.version)
        tracking.save_baseline(
            _baseline(challenger, train, hold, target, task, policy), run.info.run_id
        )
        c, run_id = tracking.client(), run.info.run_id
        tracking.log_metrics(run_id, metrics)
        c.log_dict(run_id, result.to_dict(), COMPARISON)
        c.log_text(run_id, result.markdown(), registry.DESCRIPTION)
        # Last: the run counts as a complete challenger only with its verdict.
        c.set_tag(run_id, registry.GATE, "passed" if decision.passed else "failed")
    return result


def _baseline(challenger, train, hold, target, task, policy):
    """The challenger's baseline: its training rows, with the performance it showed on the
    held-out rows (on its own training rows it would look better than it is, and every
    later cycle would read that as a drop)."""
    from controller.baseline import build_baseline

    baseline = build_baseline(
        train, model=challenger, target=target, attribution=policy.attribution, seed=policy.seed
    )
    p = predict(challenger, hold.drop(columns=target))
    held_out = performance.score(task, hold[target].to_numpy(), p.values, p.score, p.positive)
    return replace(baseline, performance=held_out)


def _refit(model, x, y):
    from sklearn.base import clone

    try:
        return clone(model).fit(x, y)
    except Exception as exc:  # the estimator's own message says what is wrong with the data
        raise InputError(
            f"refitting the champion's estimator failed: {exc}",
            "check the labelled production rows",
        ) from exc


def _log_clone(challenger, name, version) -> None:
    import sklearn

    flavor = mlflow.models.get_model_info(f"models:/{name}/{version}").flavors["sklearn"]
    mlflow.sklearn.log_model(
        challenger,
        name="model",
        serialization_format=flavor.get("serialization_format"),
        skops_trusted_types=flavor.get("skops_trusted_types"),
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )


def _train_in_project(rules, train: pd.DataFrame, target: str, experiment: str) -> str:
    """Run the user's training entry point on the training rows; returns its run."""
    from mlflow.exceptions import ExecutionException

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "training.parquet"
        train.to_parquet(path, index=False)
        try:
            submitted = mlflow.projects.run(
                rules.project,
                rules.entry_point,
                parameters={"training_data": str(path), "target": target},
                experiment_id=experiment,
                env_manager="local",
                synchronous=True,
            )
        except (ExecutionException, MlflowException) as exc:
            raise InputError(
                f"the training entry point {rules.entry_point!r} of the MLflow project "
                f"{rules.project!r} failed: {exc}",
                f"run it by hand to see why: mlflow run {rules.project} -e {rules.entry_point} "
                f"-P training_data=FILE -P target={target} --env-manager local",
            ) from exc
    run_id = submitted.run_id
    if not tracking.has_model(run_id, "model"):
        tracking.client().delete_run(run_id)
        raise InputError(
            f"the training entry point {rules.entry_point!r} logged no model named 'model'",
            "log the trained model in it with mlflow.<flavor>.log_model(model, name='model')",
        )
    return run_id


def _scored(task, hold, champion, challenger, baseline):
    """Labels and each model's (predictions, scores) on the held-out rows, as 0/1 for a
    binary classification."""
    x, y = hold[list(baseline.features)], hold[baseline.target]
    positive = baseline.positive_class
    out = []
    for m in (champion, challenger):
        p = predict(m, x)
        if task == "classification":
            out.append(((p.for_task(task) == positive).astype(int), p.score))
        else:
            out.append((np.asarray(p.values, float), None))
    if task == "classification":
        return (as_labels(y) == positive).astype(int), out[0], out[1]
    return y.to_numpy(dtype=float), out[0], out[1]
