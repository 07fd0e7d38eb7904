"""Build a challenger from the champion, test it on the same recent rows, register it.

The challenger is a fresh clone of the champion's scikit-learn estimator or pipeline (same
hyper-parameters) refitted on the policy's training window, or whatever the user's MLflow
project entry point trains on it (``[retrain] entry_point``): ``sliding`` takes the labelled
rows of the last ``window_batches`` batches, ``expanding`` adds the baseline's reference
rows. With ``start_at_change`` the window starts instead at the latest significant change
in the champion's per-row loss (``latest_change``), once ``min_rows_after_change`` labelled
rows follow it: after an abrupt change of concept, rows of the old concept only teach the
challenger what no longer holds. The most recent ``holdout_share`` of the rows used is held
out (a time-based split) and never trained on; both models are scored on exactly those rows
and the gate of ``controller.statistics.comparison`` decides. A challenger that passes while another
waits for approval must also beat that one, with the same test on the same rows (or as
``replace_challenger`` says). The challenger is logged as an MLflow model with its own
baseline and its lineage; one that passes is registered by ``controller.loop.registry``.
The rows come from ``controller.loop.window``, the MLflow project run and the model's
logging from ``controller.tracking.projects``; the result's text and Markdown are rendered
by ``controller.results.challenger``.

An entry point receives two parameters, ``training_data`` (a parquet file of the features
and the target) and ``target`` (the target's column), and logs the trained model with
``log_model(model, name="model")`` in its run.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from controller import tracking
from controller._errors import InputError, ModelLoadError, NotEnoughDataError
from controller._failpoints import failpoint
from controller.inputs.model import predict
from controller.loop import registry
from controller.loop.window import Window, load_window
from controller.policy import MIN_SEGMENT, Policy
from controller.results import challenger as words
from controller.results.challenger import RetrainResult
from controller.statistics import performance
from controller.statistics.comparison import METRICS, Decision, Threshold, compare, gate
from controller.statistics.performance import as_labels
from controller.tracking import projects

COMPARISON = "driftctl/comparison.json"
MIN_ROWS = 20


@dataclass(frozen=True)
class Shift:
    """A change in the mean of a series: the first row of the new segment, the means on
    either side (back to the previous change found, if any) and its permutation p-value."""

    at: int
    before: float
    after: float
    p_value: float
    significant: bool


def latest_change(
    series,
    *,
    level: float,
    seed: int = 0,
    min_size: int = MIN_SEGMENT,
    resamples: int = 499,
    max_points: int = 20_000,
) -> Shift | None:
    """The latest significant change in the mean of ``series`` (values in time order).

    Each step splits the series where the likelihood ratio of a shift in the mean is
    largest (for Gaussian rows, ``k (n - k) / n`` times the squared difference of the two
    means: the standardised CUSUM) and tests that split by permutation: any order of the
    rows is as likely as the observed one when nothing changed, so the p-value is the share
    of ``resamples`` random orders whose best split is at least as strong. A significant
    split is searched again to its right (binary segmentation towards the present), so the
    latest of several changes is the one returned. Without a significant change, the
    strongest split is returned with ``significant`` false; None when the series is too
    short to split. Long series are averaged in consecutive blocks (``max_points`` at most),
    which locates a change to within one block.
    """
    x = np.asarray(series, float)
    if len(x) < 2 * min_size:
        return None
    size = math.ceil(len(x) / max_points)
    starts = np.arange(0, len(x), size)
    points = np.add.reduceat(x, starts) / np.diff(np.append(starts, len(x)))
    m = math.ceil(min_size / size)
    rng = np.random.default_rng(seed)
    found, start = None, 0
    while len(points) - start >= 2 * m:
        part = points[start:]
        (k,), (strongest,) = _best_split(part[None, :], m)
        exceeded = 0
        for done in range(0, resamples, 50):  # 50 orders at a time: memory stays flat
            orders = rng.permuted(np.tile(part, (min(50, resamples - done), 1)), axis=1)
            exceeded += int((_best_split(orders, m)[1] >= strongest * (1 - 1e-12)).sum())
        p = (1 + exceeded) / (1 + resamples)
        at = min((start + int(k)) * size, len(x))
        shift = Shift(at, float(x[start * size : at].mean()), float(x[at:].mean()), p, p <= level)
        if not shift.significant:
            return found or shift
        found, start = shift, start + int(k)
    return found


def _best_split(rows: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``rows``: where a split into two segments of at least ``m`` values
    explains the most (the first index of the second segment), and how much."""
    n = rows.shape[1]
    k = np.arange(m, n - m + 1)
    sums = np.cumsum(rows, axis=1)
    left = sums[:, k - 1]
    stat = (left - k * sums[:, -1:] / n) ** 2 * n / (k * (n - k))
    return k[stat.argmax(axis=1)], stat.max(axis=1)


@dataclass(frozen=True)
class TrainingRows:
    """The rows a challenger is trained and compared on, and why those."""

    train: pd.DataFrame
    hold: pd.DataFrame
    batches: tuple[str, ...]  # the batch runs whose rows were used
    why: str  # in words, for the run and the comparison
    shift: Shift | None  # the change in the champion's loss the window starts at, if cut
    start: str  # where the rows used start: batch run and event time


def retrain(name: str, *, policy: Policy | None = None, trigger_run: str = "") -> RetrainResult:
    """Build a challenger of ``name``'s champion, compare, log and register it.

    Once per trigger: with ``trigger_run`` (the monitor run that called for it), or else for
    the same champion, data and policy, an earlier complete run is reused, not repeated. A
    challenger that passes is registered with the alias ``challenger`` (in place of one
    waiting for approval only when it beats that one too, or as ``replace_challenger``
    says); with ``promotion = "auto"`` it is promoted at once.
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
    rows = training_rows(_window(name, baseline, rules), baseline, model, rules, policy.seed)
    key = hashlib.sha256(
        repr(
            ("trigger", trigger_run)
            if trigger_run
            # How it is promoted does not change the challenger.
            else (
                mv.version,
                _digest(rows.train),
                _digest(rows.hold),
                replace(rules, promotion=""),
            )
        ).encode()
    ).hexdigest()
    earlier = registry.complete_retrains(name, f"tags.`{registry.RETRAIN_KEY}` = '{key}'", 1)
    if earlier:
        result = RetrainResult.from_dict(
            earlier[0].info.run_id,
            json.loads(tracking.read_text_artifact(earlier[0].info.run_id, COMPARISON)),
        )
    else:
        lineage = {"trigger_run": trigger_run, "batches": ",".join(rows.batches)[:4000]}
        result = _build(name, mv, baseline, model, rows, policy, lineage, key)
        failpoint("after-candidate")
    if not result.decision.passed:
        return replace(result, registry=tuple(said))
    if result.keeps_waiting:
        return replace(result, registry=(*said, words.rival_words(result)))
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


def _window(name, baseline, rules) -> Window:
    """The policy's training window, with enough labelled rows to train on."""
    last = rules.window_batches if rules.window == "sliding" else 10**9
    window = load_window(name, baseline, last=last)
    known = 0 if window.labels is None else int(window.labels.notna().sum())
    if known < MIN_ROWS:
        raise NotEnoughDataError(
            f"only {known} labelled production rows in the training window of model "
            f"{name!r}; at least {MIN_ROWS} are needed",
            "log labels with driftctl log-labels, or widen [retrain] window_batches",
        )
    return window


def training_rows(window: Window, baseline, model, rules, seed: int = 0) -> TrainingRows:
    """The labelled rows of ``window`` in time order (batch by batch, each by its event
    time), cut at the latest change in the champion's loss when the policy says so, with
    the most recent ``holdout_share`` of the rows used held out."""
    features, target = list(baseline.features), baseline.target
    batch = window.row_batch.cat.codes.to_numpy()
    # A batch without event times (NaT throughout) keeps the order its rows were logged
    # in: lexsort is stable.
    when = window.row_time.to_numpy("datetime64[ns]")
    order = np.lexsort((when, batch))
    order = order[window.labels.notna().to_numpy()[order]]
    labels = window.labels.to_numpy()[order]
    if baseline.task == "classification" and hasattr(model, "classes_"):
        # Labels as the champion knew them: 1.0 from a CSV with gaps is still class 1.
        known_classes = dict(zip(as_labels(model.classes_), model.classes_, strict=True))
        labels = np.array([known_classes.get(v, v) for v in as_labels(labels)], dtype=object)
        labels = pd.Series(labels).infer_objects().to_numpy()
    rows = window.frame.iloc[order][features].assign(**{target: labels}).reset_index(drop=True)
    batch, when = batch[order], when[order]
    shift, why = _cut(rows, model, baseline, rules, seed)
    first = shift.at if shift is not None else 0
    used = rows.iloc[first:].reset_index(drop=True)
    cut = round(len(used) * (1 - rules.holdout_share))
    train, hold = used.iloc[:cut], used.iloc[cut:].reset_index(drop=True)
    if rules.window == "expanding" and shift is None:
        train = pd.concat([baseline.reference[[*features, target]], train], ignore_index=True)
    batches = tuple(window.run_ids[i] for i in sorted(set(batch[first:].tolist())))
    start = f"batch {window.run_ids[batch[first]]}"
    if not np.isnat(when[first]):
        start += f", event time {pd.Timestamp(when[first], tz='UTC').isoformat()}"
    why += (
        f"; trained on {len(train)} rows"
        + (" (with the baseline's reference rows)" if len(train) > cut else "")
        + f", the latest {len(hold)} held out"
    )
    return TrainingRows(train, hold, batches, why, shift, start)


def _cut(rows, model, baseline, rules, seed) -> tuple[Shift | None, str]:
    """Where the training rows start (a significant change in the champion's per-row loss
    with at least ``min_rows_after_change`` rows after it, or None for the whole window),
    and why, in words."""
    if not rules.start_at_change:
        return None, "the whole window (start_at_change = false)"
    loss, what = _losses(rows, model, baseline)
    # Enough random orders that a p-value below the level can be seen at all.
    draws = max(499, math.ceil(5 / rules.change_level))
    shift = latest_change(loss, level=rules.change_level, seed=seed, resamples=draws)
    if shift is None:
        return None, f"the whole window (too few labelled rows to look for a change in {what})"
    said = (
        f"the champion's mean {what} went from {shift.before:.4f} to {shift.after:.4f} at "
        f"labelled row {shift.at} of {len(loss)} (permutation p = {shift.p_value:.4f}, "
        f"level {rules.change_level})"
    )
    if not shift.significant:
        return (
            None,
            f"the whole window, as no change in {what} is significant (the strongest: {said})",
        )
    after = len(loss) - shift.at
    if after < rules.min_rows_after_change:
        return None, (
            f"the whole window: {said}, but only {after} labelled rows follow the change "
            f"(min_rows_after_change = {rules.min_rows_after_change})"
        )
    return shift, f"the {after} labelled rows since a change: {said}"


def _losses(rows, model, baseline) -> tuple[np.ndarray, str]:
    """The champion's loss on each labelled row, and its name: the Brier score of a binary
    classifier's probability, else 0/1 error (classification) or absolute error."""
    x, y = rows[list(baseline.features)], rows[baseline.target]
    p = predict(model, x)
    if baseline.task == "regression":
        return np.abs(y.to_numpy(float) - np.asarray(p.values, float)), "absolute error"
    if p.score is not None and p.positive is not None:
        hit = (as_labels(y) == as_labels([p.positive])[0]).astype(float)
        return (hit - p.score) ** 2, "Brier score"
    return (p.for_task(baseline.task) != as_labels(y)).astype(float), "error rate"


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy()).hexdigest()


def _build(name, mv, baseline, model, rows, policy, lineage, key) -> RetrainResult:
    """Train the challenger, compare it with the champion (and with a challenger waiting
    for approval), and log it as one complete run."""
    rules = policy.retrain
    train, hold = rows.train, rows.hold
    features, target, task = list(baseline.features), baseline.target, baseline.task
    experiment = tracking.experiment_id(name)
    project_run = None
    if rules.entry_point:
        project_run = projects.train_in_project(
            rules.project, rules.entry_point, train, target, experiment
        )
        challenger = tracking.load_model_uri(f"runs:/{project_run}/model")
    else:
        challenger = _refit(model, train[features], train[target])
    y, (champ, chall) = _scored(task, hold, [model, challenger], baseline)
    comparisons = compare(task, y, champ, chall, confidence=rules.confidence)
    metric = rules.metric
    if metric == "auto":  # the champion's primary metric
        metric = performance.primary(performance.computable(task, champ[1] is not None))
    threshold = Threshold(
        metric, METRICS[task][metric], rules.min_absolute_change, rules.min_relative_change
    )
    guardrails = {c.metric: rules.guardrail_tolerance for c in comparisons if c.metric != metric}
    decision = gate(comparisons, threshold, guardrails)
    rival, versus, against = "", (), None
    if decision.passed and (waiting := registry.waiting(name)) is not None:
        rival = str(waiting.version)
        versus, against = _against_waiting(
            waiting, y, chall, hold, baseline, rules, threshold, guardrails
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
        tracking.TAG + "training_rows": rows.why[:4000],
        tracking.TAG + "training_start": rows.start,
        tracking.TAG + "training_cut": "change point" if rows.shift else "policy window",
        tracking.TAG + "holdout_digest": digest,
        tracking.TAG + "gate_reasons": "; ".join(decision.reasons)[:4000],
    }
    if rival:
        tags[registry.RIVAL] = rival
        tags[registry.VERSUS] = "passed" if against.passed else "failed"
        tags[registry.VERSUS_REASONS] = "; ".join(against.reasons)[:4000]
    params = {
        tracking.TAG + "train_rows": len(train),
        tracking.TAG + "holdout_rows": len(hold),
        tracking.TAG + "train_batches": len(rows.batches),
        tracking.TAG + "start_at_change": rules.start_at_change,
    }
    if rows.shift is not None:
        params[tracking.TAG + "change_row"] = rows.shift.at
        params[tracking.TAG + "change_p_value"] = round(rows.shift.p_value, 6)
    metrics = {}
    for prefix, found in (("compare", comparisons), ("versus", versus)):
        for c in found:
            for k in ("champion", "challenger", "improvement", "ci_low", "ci_high"):
                metrics[f"{prefix}.{c.metric}.{k}"] = getattr(c, k)
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
            training=rows.why,
            rival=rival,
            rival_comparisons=tuple(versus),
            rival_decision=against,
        )
        if project_run is None:
            projects.log_refitted(challenger, name, mv.version)
        tracking.save_baseline(
            _baseline(challenger, train, hold, target, task, policy), run.info.run_id
        )
        run_id = run.info.run_id
        tracking.log_params(run_id, params)
        tracking.log_metrics(run_id, metrics)
        tracking.log_dict(run_id, result.to_dict(), COMPARISON)
        tracking.log_text(run_id, result.markdown(), registry.DESCRIPTION)
        # Last: the run counts as a complete challenger only with its verdict.
        tracking.set_run_tag(run_id, registry.GATE, "passed" if decision.passed else "failed")
    return result


def _against_waiting(waiting, y, chall, hold, baseline, rules, threshold, guardrails):
    """This challenger against the one waiting for approval, on this one's held-out rows,
    with the gate it passed against the champion; and whether it replaces that one."""
    policy_says = {
        "always": Decision(True, ("replace_challenger = always in the policy",)),
        "never": Decision(False, ("replace_challenger = never in the policy",)),
    }
    try:
        other = tracking.load_model(waiting)
    except ModelLoadError as exc:  # a version whose model is gone cannot be defended
        gone = f"the model of version {waiting.version} no longer loads: {exc.__cause__}"
        return (), policy_says.get(rules.replace_challenger, Decision(True, (gone,)))
    _, (theirs,) = _scored(baseline.task, hold, [other], baseline)
    versus = compare(baseline.task, y, theirs, chall, confidence=rules.confidence)
    if rules.replace_challenger in policy_says:
        return versus, policy_says[rules.replace_challenger]
    decision = gate(versus, threshold, guardrails)
    if not decision.passed:
        return versus, Decision(
            False, (f"not significantly better than it: {'; '.join(decision.reasons)}",)
        )
    c = next(c for c in versus if c.metric == threshold.metric)
    return versus, Decision(
        True,
        (
            f"{c.metric} better by {c.improvement:+.4f} (interval [{c.ci_low:+.4f}, "
            f"{c.ci_high:+.4f}], {c.method}) on the same {len(hold)} held-out rows",
        ),
    )


def _baseline(challenger, train, hold, target, task, policy):
    """The challenger's baseline: its training rows, with the performance it showed on the
    held-out rows (on its own training rows it would look better than it is, and every
    later cycle would read that as a drop)."""
    from controller.profiles.build import build_baseline

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
    # Fitting runs the estimator's own code (scikit-learn's, or a library's such as
    # LightGBM's, whose errors derive from Exception alone): whatever it raises says why the
    # rows cannot be fitted, and only this call is guarded.
    except Exception as exc:
        raise InputError(
            f"refitting the champion's estimator failed: {exc}",
            "check the labelled production rows",
        ) from exc


def _scored(task, hold, models, baseline):
    """Labels and each model's (predictions, scores) on the held-out rows, as 0/1 for a
    binary classification."""
    x, y = hold[list(baseline.features)], hold[baseline.target]
    positive = baseline.positive_class
    out = []
    for m in models:
        p = predict(m, x)
        if task == "classification":
            out.append(((p.for_task(task) == positive).astype(int), p.score))
        else:
            out.append((np.asarray(p.values, float), None))
    if task == "classification":
        return (as_labels(y) == positive).astype(int), out
    return y.to_numpy(dtype=float), out
