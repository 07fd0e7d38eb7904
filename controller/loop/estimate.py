"""Performance estimated from a window's scores before its labels arrive (CBPE, in
``statistics.estimation``), calibrated on the baseline's labelled reference rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from controller.profiles.baseline import PREDICTION, SCORE, Baseline
from controller.statistics import estimation
from controller.statistics.performance import as_labels

NOT_ESTIMATED = "performance not estimated without labels: "


def estimate_performance(
    baseline: Baseline, outputs: pd.DataFrame, seed: int = 0
) -> tuple[dict[str, tuple[float, float, float]], str | None]:
    """Metric -> (estimate, low, high) for the rows of the window's ``outputs`` that have a
    score, and a note saying how many were left out; or no estimate and a note saying why
    (a baseline or a window without any model output gives neither)."""
    if baseline.task is None or not {PREDICTION, SCORE} & set(outputs.columns):
        return {}, None
    why = _unestimable(baseline, outputs)
    if why:
        return {}, NOT_ESTIMATED + why
    # Rows of a batch the champion could not score have neither: the rest still tell.
    scored = (outputs[SCORE].notna() & outputs[PREDICTION].notna()).to_numpy()
    left_out = int((~scored).sum())
    if left_out:
        outputs = outputs[scored]
    ref = baseline.reference
    positive = str(baseline.positive_class)
    y = (as_labels(ref[baseline.target].to_numpy()) == positive).astype(float)
    ref_score = ref[SCORE].to_numpy(dtype=float)
    calibration = estimation.calibrate(ref_score, y)  # the baseline's, the same every cycle
    said = as_labels(outputs[PREDICTION].to_numpy()) == positive
    found = estimation.estimate(
        calibration,
        outputs[SCORE].to_numpy(dtype=float),
        said,
        reference=(ref_score, y),
        seed=seed,
    )
    note = (
        f"performance estimated on the {len(outputs)} rows with a score; {left_out} of the "
        f"window's {len(outputs) + left_out} rows have none and were left out"
        if left_out
        else None
    )
    return found, note


def _unestimable(baseline: Baseline, outputs: pd.DataFrame) -> str | None:
    """Why CBPE cannot run on this baseline and window, or None."""
    ref = baseline.reference
    if baseline.task != "classification":
        return (
            "CBPE needs a classifier's probabilities; direct loss estimation for regressors "
            "is not implemented"
        )
    if baseline.positive_class is None or SCORE not in ref:
        return "the model gives no probability scores (or is not a binary classifier)"
    if baseline.target is None or baseline.target not in ref:
        return "the baseline has no labels to calibrate the scores on (log it with a target)"
    if len(np.unique(as_labels(ref[baseline.target].to_numpy()))) != 2:
        return "the baseline's labels do not hold both classes"
    if (
        SCORE not in outputs
        or PREDICTION not in outputs
        or not (outputs[SCORE].notna() & outputs[PREDICTION].notna()).any()
    ):
        return "the window has no predictions with scores"
    return None
