"""Expected failures (a file that cannot be parsed, a model that cannot predict or be
explained) become input errors or notes; an error in the calling code surfaces."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier

from controller import InputError, Policy, assess, build_baseline
from controller.inputs.model import predict
from controller.inputs.tables import read_table

FEATURES = ["a", "b"]
_GZIPPED = gzip.compress(b"a,b\n" + "".join(f"{i},{i * 7}\n" for i in range(999)).encode())


def _frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    frame["y"] = (frame.a + rng.normal(0, 0.3, n) > 0).astype(int)
    return frame


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(3)
    train = _frame(1000, rng)
    model = RandomForestClassifier(20, max_depth=4, random_state=0).fit(train[FEATURES], train.y)
    return model, build_baseline(_frame(1000, rng), model=model, target="y"), _frame(500, rng)


def _damaged(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "name, data",
    [
        ("batch.parquet", b"PAR1 not really"),
        ("batch.csv.gz", _GZIPPED[: len(_GZIPPED) // 2]),  # truncated
        ("batch.csv.xz", b"not xz at all"),
        ("batch.csv.zip", b"not a zip file"),
    ],
    ids=["parquet", "truncated-gzip", "xz", "zip"],  # more in test_bad_input's catalogue
)
def test_a_file_that_cannot_be_parsed_is_an_input_error(tmp_path, name, data):
    path = _damaged(tmp_path / name, data)
    with pytest.raises(InputError, match="cannot read") as caught:
        read_table(path)
    assert "complete, valid parquet or CSV file" in caught.value.fix


def test_a_callers_mistake_reading_a_table_surfaces(tmp_path):
    path = tmp_path / "batch.csv"
    pd.DataFrame({"a": [1, 2]}).to_csv(path, index=False)
    with pytest.raises(TypeError):  # once reported as "cannot read" the file
        read_table(path, text_columns=5)


def test_a_model_that_cannot_predict_on_the_rows_is_an_input_error(fitted):
    model, _, window = fitted
    with pytest.raises(InputError, match="the model failed to predict on this data: ValueError"):
        predict(model, window[["a"]])


class _LostWeights(ClassifierMixin, BaseEstimator):
    """A classifier whose own code fails when asked for probabilities."""

    classes_ = np.array([0, 1])

    def predict(self, x):
        return np.zeros(len(x), dtype=int)

    def predict_proba(self, x):
        raise RuntimeError("the weights were not found")


def test_a_model_that_fails_to_explain_leaves_a_note(fitted):
    _, baseline, window = fitted
    report = assess(baseline, window[FEATURES], Policy(), model=_LostWeights())
    assert report.attribution is None
    assert report.notes == (
        "attributions unavailable: RuntimeError: the weights were not found",
    )
    assert [f.feature for f in report.features] == FEATURES


def test_an_error_in_the_calling_code_is_not_turned_into_a_note(fitted):
    model, baseline, window = fitted
    # Labels that do not line up with the window are the caller's mistake: they once left
    # an "attributions unavailable" note and a report without attributions.
    misaligned = pd.concat([window.y, window.y], ignore_index=True)
    with pytest.raises(IndexError):
        assess(baseline, window[FEATURES], Policy(), labels=misaligned, model=model)
    report = assess(baseline, window[FEATURES], Policy(), labels=window.y, model=model)
    assert report.attribution is not None and report.attribution.n_loss_rows > 0


def test_a_model_whose_output_is_not_a_number_leaves_a_note(fitted):
    from sklearn.svm import SVC

    _, baseline, window = fitted
    labels = np.where(window.y == 1, "yes", "no")  # class labels, and no probabilities
    model = SVC().fit(window[FEATURES], labels)
    report = assess(baseline, window[FEATURES], Policy(), model=model)
    assert report.attribution is None
    assert report.notes[0].startswith("attributions unavailable: ValueError: could not convert")
