"""SHAP attributions of a model, in terms of the features the user logs.

``Explainer`` picks how to explain the model: shap's tree explainer for tree ensembles
(scikit-learn forests, gradient boosting, HistGradientBoosting; XGBoost and LightGBM),
exact linear SHAP for linear models, and interventional Shapley values over a background
sample (``shapley``) for anything else. A scikit-learn ``Pipeline`` is explained at its
final estimator, on the preprocessed columns; the attributions of the columns derived
from one input feature (one-hot columns, scaled values, missing indicators) are summed
back to it.

The loss can be explained too (which features raise it, once labels are known): each
row's own loss (log loss for classifiers, squared error for regressors) is explained with
``shapley``, which gives interventional Shapley values for any model. shap's tree explainer
offers ``model_output="log_loss"`` as well, but only for XGBoost and LightGBM objectives;
for scikit-learn's forests and boosting it refuses or returns values that do not add up to
the loss, so driftctl does not use it.

``shapley`` treats each input feature as one player (all the columns derived from it move
together, so a one-hot row is never half one category and half another). With few
features it enumerates every coalition: the values are exact for the background. With many
it walks random antithetic permutations. Either way every model call is batched: a few
calls of many rows, not one call per explained row.

The model (and shap) are code driftctl does not own: whatever they raise when called
becomes ``NotExplainable``, which monitoring turns into a note. An error in driftctl's own
code is not caught: it is a bug, and surfaces.

How the attributions of a window moved against the baseline's is in ``shift``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from controller._errors import DriftctlError
from controller.statistics.performance import as_labels

TREE_MODULES = ("sklearn.ensemble", "sklearn.tree", "xgboost", "lightgbm")
LINEAR_MODULES = ("sklearn.linear_model", "sklearn.svm._classes")


class NotExplainable(DriftctlError):
    """The model cannot be explained; monitoring goes on without attributions."""


def unexplained(exc: NotExplainable) -> str:
    """The note a report carries when the model could not be explained."""
    return f"attributions unavailable: {exc.problem}"


def _from_model(call):
    """``call()``, which runs the model's or shap's code: whatever they raise means the
    model cannot be explained on these rows."""
    try:
        return call()
    except DriftctlError:
        raise
    except Exception as exc:  # code driftctl does not own; its own errors are not caught
        raise NotExplainable(
            f"{type(exc).__name__}: {exc}",
            "monitoring continues without attributions for this model",
        ) from exc


@dataclass(frozen=True)
class Attributions:
    """Per-row attributions (rows x input features) and what they explain."""

    values: np.ndarray
    expected: np.ndarray  # per row: a loss's base value depends on the row's label
    output: np.ndarray  # per row: values.sum(axis=1) + expected
    features: tuple[str, ...]
    explainer: str

    def mean_abs(self) -> np.ndarray:
        return np.abs(self.values).mean(axis=0)


def _kind(estimator) -> str:
    module = type(estimator).__module__
    if module.startswith(TREE_MODULES) and hasattr(estimator, "fit"):
        if type(estimator).__name__.startswith(("Voting", "Stacking", "Bagging", "AdaBoost")):
            return "interventional"
        return "tree"
    if module.startswith(LINEAR_MODULES) and hasattr(estimator, "coef_"):
        return "linear"
    return "interventional"


class Explainer:
    """Explains a fitted model on data with the baseline's feature columns.

    ``background`` (a sample of the baseline's reference rows) is the reference
    distribution of the linear and interventional explainers and of loss attribution.
    """

    def __init__(
        self, model, background: pd.DataFrame, *, seed: int = 0, per_row: int | None = None
    ):
        from sklearn.pipeline import Pipeline

        self.model = model
        self.per_row = per_row
        self.features = tuple(background.columns)
        self.seed = seed
        if isinstance(model, Pipeline) and len(model.steps) > 1:
            self.pre, self.estimator = model[:-1], model[-1]
        else:
            self.pre, self.estimator = None, model
        self.classifier = hasattr(self.estimator, "predict_proba") and hasattr(
            self.estimator, "classes_"
        )
        if self.classifier and len(self.estimator.classes_) != 2:
            raise NotExplainable(
                f"{type(self.estimator).__name__} has {len(self.estimator.classes_)} classes; "
                "attributions cover binary classifiers and regressors",
                "monitoring continues without attributions for this model",
            )
        self.kind = _kind(self.estimator)
        self.background = self._transform(background)
        self.mapping = self._mapping()
        # Each input feature is one player when every derived column comes from one feature.
        self.grouped = bool(np.all(np.isin(self.mapping, (0.0, 1.0))))
        self._shap = self._make()

    # Preprocessing and the map from derived columns back to input features ---------------

    def _transform(self, frame: pd.DataFrame) -> np.ndarray:
        if self.pre is None:
            x = frame[list(self.features)]
        else:
            x = _from_model(lambda: self.pre.transform(frame))
        if hasattr(x, "toarray"):
            x = x.toarray()
        try:
            return np.asarray(x, dtype=float)
        except (TypeError, ValueError) as exc:
            raise NotExplainable(
                f"the model's input has non-numeric columns ({exc})",
                "wrap the model in a scikit-learn Pipeline whose first steps encode the "
                "categorical features, so that driftctl can explain its final estimator",
            ) from exc

    def _mapping(self) -> np.ndarray:
        """Matrix (derived columns x input features) whose rows sum to one."""
        n_out = self.background.shape[1]
        if self.pre is None:
            return np.eye(len(self.features))
        try:
            names = [str(n) for n in self.pre.get_feature_names_out()]
        except Exception as exc:  # any transformer without names defeats the mapping
            raise NotExplainable(
                f"cannot tell which input feature each preprocessed column comes from: {exc}",
                "use transformers that implement get_feature_names_out",
            ) from exc
        if len(names) != n_out:
            raise NotExplainable(
                "the preprocessing's feature names do not match its output",
                "use transformers that implement get_feature_names_out",
            )
        groups = _column_groups(self.pre, self.features)
        m = np.zeros((n_out, len(self.features)))
        index = {f: i for i, f in enumerate(self.features)}
        for row, name in enumerate(names):
            prefix, _, bare = name.rpartition("__")
            candidates = groups.get(prefix, self.features)
            source = _source(bare, candidates)
            for feature in source:
                m[row, index[feature]] = 1.0 / len(source)
        return m

    # Explaining the output ----------------------------------------------------------------

    def _output(self, x: np.ndarray) -> np.ndarray:
        """What is explained: P(positive class), or the prediction (one number a row)."""
        named = self._named(x)
        if self.classifier:
            return _from_model(lambda: self.estimator.predict_proba(named)[:, 1])
        # Any model's output (a pyfunc's frame, class labels) becomes numbers, or says why not.
        return _from_model(
            lambda: np.asarray(self.estimator.predict(named), dtype=float).reshape(len(x))
        )

    def _named(self, x: np.ndarray):
        """Columns named as the estimator saw them in training, where it saw names."""
        names = getattr(self.estimator, "feature_names_in_", None)
        return x if names is None else pd.DataFrame(x, columns=names)

    def _make(self):
        if self.kind == "tree":
            import shap

            try:
                return shap.TreeExplainer(self.estimator)
            except Exception:  # shap does not know every tree model; fall back
                self.kind = "interventional"
        if self.kind == "linear" and np.ndim(self.estimator.coef_) <= 2:
            return None
        self.kind = "interventional"
        return None

    def _players(self) -> list[np.ndarray]:
        """The preprocessed columns of each player: one input feature each when
        ``grouped``, else each derived column on its own."""
        if self.grouped:
            return [np.flatnonzero(self.mapping[:, j]) for j in range(self.mapping.shape[1])]
        return [np.array([c]) for c in range(self.mapping.shape[0])]

    def _shapley(self, x: np.ndarray, value) -> tuple[np.ndarray, str]:
        """Interventional Shapley values of ``value`` (per input feature) for rows ``x``."""
        players = self._players()
        live = [i for i, cols in enumerate(players) if cols.size]
        values, how = shapley(
            value, x, self.background, [players[i] for i in live],
            rng=np.random.default_rng(self.seed), per_row=self.per_row,
        )
        full = np.zeros((len(x), len(players)))
        full[:, live] = values
        return (full if self.grouped else full @ self.mapping), how

    def explain(self, frame: pd.DataFrame) -> Attributions:
        """Attributions of the model's output for each row of ``frame``."""
        x = self._transform(frame)
        if self.kind == "interventional":
            output = self._output(x)
            values, how = self._shapley(x, lambda z, rows: self._output(z))
            return Attributions(values, output - values.sum(axis=1), output, self.features, how)
        if self.kind == "linear":
            # For a linear model (the margin of a classifier) the interventional SHAP value
            # of column j is exactly coef_j * (x_j - background mean_j).
            coef = np.ravel(self.estimator.coef_)
            values = (x - self.background.mean(axis=0)) * coef
            expected = float(self.background.mean(axis=0) @ coef + np.ravel(
                self.estimator.intercept_)[0])
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = _from_model(lambda: self._shap.shap_values(x))
            values, expected = _positive_class(values, self._shap.expected_value)
        base = np.full(len(x), expected)
        output = values.sum(axis=1) + base
        return Attributions(values @ self.mapping, base, output, self.features, self.kind)

    def explain_loss(self, frame: pd.DataFrame, labels) -> Attributions:
        """Attributions of each row's loss: log loss for classifiers, squared error else."""
        x = self._transform(frame)
        y = np.asarray(labels)
        if self.classifier:
            y = (as_labels(y) == as_labels([self.estimator.classes_[1]])[0]).astype(int)
        values, how = self._shapley(x, lambda z, rows: self._loss(z, y[rows]))
        loss = self._loss(x, y)
        return Attributions(values, loss - values.sum(axis=1), loss, self.features, how)

    def _loss(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each row's own loss against its label ``y``."""
        if self.classifier:
            p = np.clip(self._output(z), 1e-15, 1 - 1e-15)
            return -np.log(np.where(y == 1, p, 1 - p))
        return (self._output(z) - y.astype(float)) ** 2


EXACT_PLAYERS = 8  # up to 2**8 coalitions, enumerate them all; beyond, sample
PERMUTATIONS = 3  # antithetic pairs of permutations per row when sampling
BATCH_CELLS = 8_000_000  # values per model call (64 MB): bounds memory, amortises each call


def shapley(
    value,
    x: np.ndarray,
    background: np.ndarray,
    players: list[np.ndarray],
    *,
    rng: np.random.Generator,
    per_row: int | None = None,
    exact_players: int = EXACT_PLAYERS,
    permutations: int = PERMUTATIONS,
) -> tuple[np.ndarray, str]:
    """Interventional Shapley values (rows x players) and "exact" or "sampled".

    The value of a coalition S for row i is the mean over background rows b of
    ``value(z, rows)``, where z takes the columns of the players in S from ``x[i]`` and
    the others from ``b``, and ``rows`` says which row of ``x`` each z stands for.
    ``value`` must accept any number of rows at once. With ``per_row``, each row is
    paired with that many background rows drawn at random instead of all of them: each
    row's values get noisier, their mean over rows stays unbiased. Up to
    ``exact_players`` players, every coalition is evaluated and the values are exact (for
    the background rows used); beyond, each row gets ``permutations`` antithetic pairs of
    random orderings. Both add up exactly: each row's values sum to v(all) - v(none).
    """
    n, p = len(x), len(players)
    if per_row is not None and per_row < len(background):
        pick = np.argsort(rng.random((n, len(background))), axis=1)[:, :per_row]
        background = background[pick]  # (rows, per_row, columns)
    else:
        background = background[None]  # (1, background rows, columns): shared by all
    owner = np.full(x.shape[1], -1)
    for j, cols in enumerate(players):
        owner[cols] = j
    if p <= exact_players:
        coalitions = (np.arange(2**p)[:, None] >> np.arange(p)) & 1  # (2**p, p)
        v = _coalition_values(value, x, background, coalitions.astype(bool), owner)
        size = coalitions.sum(axis=1)
        weight = np.array(
            [math.factorial(k) * math.factorial(p - k - 1) / math.factorial(p) for k in range(p)]
        )
        out = np.empty((n, p))
        for j in range(p):
            without = np.flatnonzero(coalitions[:, j] == 0)
            out[:, j] = (v[:, without | (1 << j)] - v[:, without]) @ weight[size[without]]
        return out, "exact"
    out = np.zeros((n, p))
    for _ in range(permutations):
        order = rng.permuted(np.tile(np.arange(p), (n, 1)), axis=1)
        for walk in (order, order[:, ::-1]):
            position = np.argsort(walk, axis=1)  # position[i, j]: when player j joins
            steps = position[:, None, :] < np.arange(p + 1)[:, None]  # (n, p + 1, p)
            v = _coalition_values(value, x, background, steps, owner)
            np.add.at(out, (np.arange(n)[:, None], walk), np.diff(v, axis=1))
    return out / (2 * permutations), "sampled"


def _coalition_values(value, x, background, coalitions, owner) -> np.ndarray:
    """v (rows x coalitions). ``background`` is (1 | rows, background rows, columns);
    ``coalitions`` is (coalitions x players), shared by every row, or (rows x coalitions x
    players), one set per row. Rows and coalitions go to the model in blocks of at most
    ``BATCH_CELLS`` values."""
    n, b, d = len(x), background.shape[1], x.shape[1]
    shared = coalitions.ndim == 2
    k = coalitions.shape[0] if shared else coalitions.shape[1]
    v = np.empty((n, k))

    def owned(c):  # a column no player owns (all-zero derived columns) keeps the background
        return np.concatenate([c, np.zeros_like(c[..., :1])], axis=-1)[..., owner]

    own = owned(coalitions) if shared else None
    step = max(1, BATCH_CELLS // (b * d))
    for lo in range(0, n, step):
        block = slice(lo, min(lo + step, n))
        m = block.stop - lo
        xb, index = x[block], np.repeat(np.arange(m), b)
        bg = background if background.shape[0] == 1 else background[block]
        ob = own if shared else owned(coalitions[block])
        per_call = max(1, BATCH_CELLS // (m * b * d))
        for first in range(0, k, per_call):
            chunk = slice(first, min(first + per_call, k))
            take = ob[chunk, None] if shared else ob[:, chunk].transpose(1, 0, 2)  # (c, m|1, d)
            z = np.where(take[:, :, None, :], xb[None, :, None, :], bg[None])
            c = z.shape[0]
            out = value(z.reshape(c * m * b, d), np.tile(index + lo, c))
            v[block, chunk] = np.asarray(out, dtype=float).reshape(c, m, b).mean(axis=2).T
    return v


def _positive_class(values, expected) -> tuple[np.ndarray, float]:
    """Binary classifiers' attributions for the positive class only."""
    values = np.asarray(values)
    if isinstance(values, list) or values.ndim == 3:
        values = values[..., 1] if values.shape[-1] == 2 else values
    expected = np.atleast_1d(np.asarray(expected, dtype=float))
    return values, float(expected[-1])


def _column_groups(pre, features) -> dict[str, tuple[str, ...]]:
    """Input columns of each ColumnTransformer branch, keyed by its output prefix."""
    from sklearn.compose import ColumnTransformer

    steps = [s for _, s in pre.steps] if hasattr(pre, "steps") else [pre]
    groups: dict[str, tuple[str, ...]] = {}
    for step in steps:
        if isinstance(step, ColumnTransformer):
            for name, _, cols in step.transformers_:
                if isinstance(cols, (str, int, np.integer)):
                    cols = [cols]
                if isinstance(cols, slice) or any(isinstance(c, (bool, np.bool_)) for c in cols):
                    continue  # a slice or a mask: its columns are matched by name instead
                cols = [features[c] if isinstance(c, (int, np.integer)) else c for c in cols]
                groups[name] = tuple(c for c in cols if c in features)
    return groups


def _source(name: str, candidates: tuple[str, ...]) -> tuple[str, ...]:
    """The input feature(s) a derived column comes from, by its name."""
    if len(candidates) == 1:
        return candidates
    if name in candidates:
        return (name,)
    # One-hot columns are named "<feature>_<category>"; indicators "...<feature>".
    found = [c for c in candidates if name.startswith(f"{c}_") or name.endswith(c)]
    if found:
        return (max(found, key=len),)
    return tuple(candidates)
