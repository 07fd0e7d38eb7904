"""The catalogue of bad input: every case gives exit status 2, one message that says what
is wrong and how to fix it, no traceback, and leaves MLflow exactly as it was.

Each case is one row of ``CASES``: an id, a setup that writes the files it needs and returns
the command line, and words the message must hold. The cases share one store (built once),
which holds every registry state they need; none may change it.

Not in the catalogue, because they are accepted on purpose (README, "What an alarm means:
triage"): a production batch with an entirely missing column, infinite values, unseen
categories or values the champion cannot score is logged, and its cycle triages the fault.
So is a 10 MB string in a categorical feature (an unseen category) and a CSV row with fewer
fields than the header (missing values).
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_frame, register, run_cli
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from controller import InputError, tracking
from controller.cli import main
from controller.profiles.build import build_baseline

BATCH = make_frame(300, 9).drop(columns="y")
LABELS = pd.DataFrame({"id": [1, 2, 3], "y": [0, 1, 0]})


@pytest.fixture(scope="module")
def store(tmp_path_factory, template_db):
    """One store holding every registry state the cases need:

    * ``credit``: champion version 1 with its baseline, and one batch (ids in ``id``);
    * ``bare``: a champion without a baseline;
    * ``lost``: a champion whose baseline's files were deleted;
    * ``gone``: its champion alias pointed at version 2, which was then deleted;
    * ``other``: a champion linked to the baseline of ``credit``;
    * ``quiet``: a champion with a baseline (its training run's) and no batch.
    """
    root = tmp_path_factory.mktemp("bad-input")
    db = root / "mlflow.db"
    shutil.copy(template_db, db)
    uri = f"sqlite:///{db}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        c = MlflowClient()
        register("credit")
        assert main(["log-batch", "--model", "credit", "--id-col", "id", "--data",
                     _write(root, BATCH.assign(id=range(len(BATCH))))]) == 0
        register("bare", baseline=False)
        source = c.get_model_version("credit", "1")

        def version(name, run_id=None, **tags):
            if not c.search_registered_models(f"name = '{name}'"):
                c.create_registered_model(name)
            mv = c.create_model_version(name, source.source, run_id=run_id, tags=tags)
            c.set_registered_model_alias(name, "champion", mv.version)
            return mv

        with mlflow.start_run(experiment_id=tracking.experiment_id("lost")) as run:
            tracking.log_baseline(BATCH, run_id=run.info.run_id)
        version("lost", **{tracking.BASELINE_RUN: run.info.run_id})
        shutil.rmtree(mlflow.get_run(run.info.run_id).info.artifact_uri.removeprefix("file://"))
        version("gone")
        version("gone")
        c.delete_model_version("gone", "2")
        # What `driftctl baseline --model credit` leaves: a run naming its model.
        with mlflow.start_run(experiment_id=tracking.experiment_id("credit"),
                              tags={tracking.MODEL: "credit"}) as run:
            tracking.log_baseline(BATCH, run_id=run.info.run_id)
        version("other", **{tracking.BASELINE_RUN: run.info.run_id})
        version("quiet", run_id=source.run_id)
        yield root
        mlflow.set_tracking_uri(None)
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


def _write(folder: Path, frame: pd.DataFrame, name: str = "batch.parquet") -> str:
    path = folder / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return str(path)


def _file(name: str, content: bytes | str):
    """A setup writing ``content`` to ``name``; returns its path."""

    def setup(tmp: Path) -> str:
        path = tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return str(path)

    return setup


def _batch(frame_or_setup, name: str = "batch.parquet", *more: str):
    """A ``log-batch`` of credit: a frame (written as ``name``) or a file setup."""

    def setup(tmp: Path) -> list[str]:
        if callable(frame_or_setup):
            path = frame_or_setup(tmp)
        else:
            path = _write(tmp, frame_or_setup, name)
        return ["log-batch", "--model", "credit", "--data", path, *more]

    return setup


def _cmd(*args: str):
    return lambda tmp: list(args)


def _policy(text: str | bytes, command: str = "monitor"):
    """``command`` on credit with a policy file holding ``text``."""

    def setup(tmp: Path) -> list[str]:
        path = _file("policy.toml", text)(tmp)
        return [command, "--model", "credit", "--policy", path]

    return setup


def _labels(frame: pd.DataFrame, *more: str):
    def setup(tmp: Path) -> list[str]:
        return ["log-labels", "--model", "credit", "--data", _write(tmp, frame, "labels.csv"),
                *more]

    return setup


def _baseline(frame: pd.DataFrame, *more: str):
    def setup(tmp: Path) -> list[str]:
        return ["baseline", "--model", "bare", "--version", "1", "--data",
                _write(tmp, frame, "train.csv"), *more]

    return setup


def _parquet(table: pa.Table):
    def setup(tmp: Path) -> str:
        path = tmp / "batch.parquet"
        pq.write_table(table, path)
        return str(path)

    return setup


def _truncated_parquet(tmp: Path) -> str:
    path = Path(_write(tmp, BATCH))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return str(path)


def _nested(tmp: Path) -> str:
    frame = BATCH.assign(x1=[{"a": float(v), "b": 1} for v in BATCH.x1])
    return _write(tmp, frame)


def _wide(tmp: Path) -> str:
    rows = BATCH.head(10)
    extra = pd.DataFrame(np.zeros((len(rows), 10_000)), columns=[f"c{i}" for i in range(10_000)])
    return _write(tmp, pd.concat([rows, extra], axis=1), "batch.csv")


def _directory(tmp: Path) -> str:
    (tmp / "batch.parquet").mkdir()
    return str(tmp / "batch.parquet")


def _csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


UNKNOWN_COMMAND = "monitr"
_GZIPPED = gzip.compress(_csv_text(BATCH).encode())
_HUGE = "x" * 10_000_000
_NOT_DATES = BATCH.assign(ts=["soon"] * len(BATCH))
_DUP_IDS = BATCH.assign(id=[1] * len(BATCH))
_STRUCT = pa.table({**{c: pa.array(BATCH[c]) for c in BATCH}, "x1": pa.array(
    [{"a": float(v)} for v in BATCH.x1])})

# One row per bad input: (id, setup(tmp) -> command line, words the message must hold).
CASES = [
    # Files
    ("file-no-extension", _batch(_file("batch", "x1\n1\n")), ["cannot tell the format"]),
    ("file-absent", _cmd("log-batch", "--model", "credit", "--data", "/nonexistent/b.csv"),
     ["does not exist"]),
    ("file-directory", _batch(_directory), ["is a directory"]),
    ("file-empty-csv", _batch(_file("batch.csv", b"")), ["is empty"]),
    ("file-empty-parquet", _batch(_file("batch.parquet", b"")), ["is empty"]),
    ("file-not-parquet", _batch(_file("batch.parquet", b"PAR1 not really")), ["cannot read"]),
    ("file-truncated-parquet", _batch(_truncated_parquet), ["cannot read"]),
    ("file-truncated-gzip", _batch(_file("batch.csv.gz", _GZIPPED[: len(_GZIPPED) // 2])),
     ["cannot read"]),
    ("file-unknown-extension", _batch(_file("batch.xlsx", "x")), ["*.parquet or *.csv"]),
    ("file-latin1-csv", _batch(_file("batch.csv", _csv_text(BATCH.head(20)).replace(
        "a", "é", 3).encode("latin-1"))), ["not UTF-8", "save it as UTF-8"]),
    ("file-utf16-csv", _batch(_file("batch.csv", _csv_text(BATCH.head(20)).encode("utf-16"))),
     ["not UTF-8"]),
    ("file-ragged-csv", _batch(_file("batch.csv", "x1,x2,segment,flag\n1,2,a,True\n"
                                     "1,2,a,True,5,6\n")), ["cannot read", "line 3"]),
    ("file-header-only-csv", _batch(_file("batch.csv", "x1,x2,segment,flag\n")),
     ["holds no rows"]),
    ("file-zero-rows-parquet", _batch(BATCH.iloc[:0]), ["holds no rows"]),
    ("file-duplicate-columns-csv", _batch(_file("batch.csv", "x1,x2,segment,flag,x1\n"
                                                "1,2,a,True,1\n")),
     ["duplicate column names ['x1']"]),
    ("file-duplicate-columns-parquet", _batch(_parquet(pa.table(
        [pa.array([1.0]), pa.array([2.0]), pa.array(["a"]), pa.array([True]), pa.array([1.0])],
        names=["x1", "x2", "segment", "flag", "x1"]))), ["duplicate column names ['x1']"]),
    ("file-struct-column", _batch(_parquet(_STRUCT)), ["'x1'", "nested"]),
    ("file-mixed-types", _batch(_file("batch.csv", "x1,x2,segment,flag\n1.5,2,a,True\n"
                                      "abc,2,b,False\n")),
     ["'x1' is numeric in the baseline but categorical", "cast the column"]),
    ("file-huge-cell", _batch(BATCH.assign(x1=[_HUGE] + ["1.0"] * (len(BATCH) - 1))),
     ["'x1' is numeric in the baseline", "xxx..."]),
    ("file-huge-column-name", _batch(BATCH.assign(**{_HUGE[:100_000]: 1.0})),
     ["unexpected column(s)", "xxx..."]),
    ("file-10000-columns", _batch(_wide), ["unexpected column(s) ['c0'", "and 9995 more"]),
    ("batch-missing-column", _batch(BATCH.drop(columns="x2")),
     ["missing feature column(s) ['x2']"]),
    ("batch-extra-column", _batch(BATCH.assign(extra=1)),
     ["unexpected column(s) ['extra']", "--id-col"]),
    ("batch-wrong-dtype", _batch(BATCH.assign(x1="abc")),
     ["'x1' is numeric in the baseline but categorical", "cast the column"]),
    ("batch-undeclared-timestamp", _batch(BATCH.assign(ts=pd.Timestamp("2026-01-01"))),
     ["unexpected column(s) ['ts']"]),
    ("batch-missing-id-column", _batch(BATCH, "batch.parquet", "--id-col", "key"),
     ["column 'key' named on the command line is not in the batch"]),
    ("batch-duplicate-ids", _batch(_DUP_IDS, "batch.parquet", "--id-col", "id"),
     ["id column 'id' has duplicate values"]),
    ("batch-unparsable-timestamps", _batch(_NOT_DATES, "batch.csv", "--timestamp-col", "ts"),
     ["time-stamp column 'ts' cannot be read as dates"]),
    ("batch-numeric-timestamps", _batch(BATCH.assign(ts=range(len(BATCH))), "batch.parquet",
                                        "--timestamp-col", "ts"), ["holds numbers"]),
    ("batch-missing-timestamps", _batch(BATCH.assign(ts=[None] + ["2026-01-01"] * (
        len(BATCH) - 1)), "batch.csv", "--timestamp-col", "ts"), ["has missing values"]),
    ("batch-missing-predictions", _batch(BATCH.assign(p=[np.nan] + [1] * (len(BATCH) - 1)),
                                         "batch.parquet", "--prediction-col", "p"),
     ["prediction column 'p' has 1 missing value(s)"]),
    ("labels-no-id-column", _labels(LABELS, "--id-col", "key", "--target", "y"),
     ["column 'key' (--id-col) is not in the labels file"]),
    ("labels-no-target-column", _labels(LABELS, "--id-col", "id", "--target", "outcome"),
     ["column 'outcome' (--target) is not in the labels"]),
    ("labels-duplicate-ids", _labels(LABELS.assign(id=1), "--id-col", "id", "--target", "y"),
     ["repeats ids"]),
    ("labels-all-missing", _labels(LABELS.assign(y=np.nan), "--id-col", "id", "--target", "y"),
     ["no row with both an id and a label"]),
    ("baseline-constant-column", _baseline(make_frame(200, 0).assign(c=5.0), "--target", "y"),
     ["'c' is constant"]),
    ("baseline-no-target", _baseline(make_frame(200, 0), "--target", "label"),
     ["target column 'label' is not in the data"]),
    ("baseline-no-prediction-column", _baseline(make_frame(200, 0), "--prediction-col", "p"),
     ["--prediction-col 'p' is not in the data"]),
    ("baseline-infinite-values", _baseline(make_frame(200, 0).assign(x1=np.inf),
                                           "--target", "y"), ["infinite"]),
    # Registry states
    ("registry-no-model", _cmd("monitor", "--model", "nope"),
     ["no registered model named 'nope'", "credit"]),
    ("registry-no-alias", _cmd("monitor", "--model", "credit", "--alias", "gold"),
     ["has no alias 'gold'", "champion"]),
    ("registry-no-version", _cmd("monitor", "--model", "credit", "--version", "7"),
     ["has no version '7'", "versions: 1"]),
    ("registry-no-baseline", _cmd("monitor", "--model", "bare"),
     ["has no driftctl baseline", "driftctl baseline --model bare --version 1"]),
    ("registry-no-baseline-log-batch",
     lambda tmp: ["log-batch", "--model", "bare", "--data", _write(tmp, BATCH)],
     ["has no driftctl baseline"]),
    ("registry-deleted-baseline-files", _cmd("monitor", "--model", "lost"),
     ["baseline", "files"]),
    ("registry-alias-to-deleted-version", _cmd("monitor", "--model", "gone"),
     ["has no alias 'champion'"]),
    ("registry-baseline-of-another-model", _cmd("monitor", "--model", "other"),
     ["baseline of model 'credit'"]),
    ("registry-no-batches", _cmd("monitor", "--model", "quiet"),
     ["no production batches for model 'quiet' at all", "driftctl log-batch"]),
    ("window-empty", _cmd("monitor", "--model", "credit", "--since", "2031-01-01"),
     ["no production batches for model 'credit' between 2031-01-01"]),
    # Policies
    ("policy-missing", _cmd("monitor", "--model", "credit", "--policy", "/nonexistent.toml"),
     ["does not exist"]),
    ("policy-directory", lambda tmp: ["monitor", "--model", "credit", "--policy", str(tmp)],
     ["not valid TOML"]),
    ("policy-bad-toml", _policy("[drift\n"), ["not valid TOML"]),
    ("policy-not-utf8", _policy(b"[drift]\nfdr = 0.05 # \xff\n"), ["not valid TOML"]),
    ("policy-unknown-section", _policy("[drfit]\nfdr = 0.1\n"), ["unknown key(s) ['drfit']"]),
    ("policy-unknown-key", _policy("[drift.numeric]\nstatistc = 'psi'\n"),
     ["unknown key(s) ['statistc']"]),
    ("policy-wrong-type", _policy("[drift]\nfdr = '0.05'\n"), ["'fdr'", "Got '0.05'"]),
    ("policy-section-not-table", _policy("drift = 3\n"), ["must be a table"]),
    ("policy-fdr-above-1", _policy("[drift]\nfdr = 2\n"),
     ["'fdr' parameter of [drift] must be a number in the range (0, 1). Got 2 instead"]),
    ("policy-fdr-zero", _policy("[drift]\nfdr = 0\n"), ["'fdr'", "(0, 1)"]),
    ("policy-negative-min-effect", _policy("[drift.numeric]\nmin_effect = -0.1\n"),
     ["'min_effect'", ">= 0"]),
    ("policy-nan-threshold", _policy("[drift.numeric]\nthreshold = nan\n"), ["'threshold'"]),
    ("policy-share-above-1", _policy("[quality]\nmax_unseen_share = 1.5\n"),
     ["'max_unseen_share'", "[0, 1]"]),
    ("policy-unknown-feature", _policy("[features.age]\nmin_effect = 0.3\n"),
     ["feature(s) ['age'] that the baseline does not have"]),
    ("policy-statistic-for-wrong-kind", _policy("[features.segment]\nstatistic = 'ks'\n"),
     ["'statistic'", "categorical"]),
    ("policy-bad-batches", lambda tmp: [*_policy("[batches]\nsample_size = 5\n", "log-batch")(
        tmp), "--data", _write(tmp, BATCH)],
     ["'sample_size' parameter of [batches]"]),
    # Command-line arguments
    ("cli-last-0", _cmd("monitor", "--model", "credit", "--last", "0"),
     ["--last must be at least 1"]),
    ("cli-cycle-last-negative", _cmd("cycle", "--model", "credit", "--last", "-2"),
     ["--last must be at least 1"]),
    ("cli-since-not-a-date", _cmd("monitor", "--model", "credit", "--since", "yesterday-ish"),
     ["--since 'yesterday-ish' is not a date"]),
    ("cli-until-not-a-date", _cmd("monitor", "--model", "credit", "--until", "2026-13-45"),
     ["--until '2026-13-45' is not a date"]),
    ("cli-until-before-since", _cmd("monitor", "--model", "credit", "--since", "2026-02-01",
                                    "--until", "2026-01-01"),
     ["--until 2026-01-01 is not after --since 2026-02-01"]),
    ("cli-last-and-until", _cmd("monitor", "--model", "credit", "--last", "2", "--until",
                                "2026-01-01"), ["--last cannot be combined with --until"]),
    ("cli-spark-with-csv", _batch(BATCH, "batch.csv", "--engine", "spark"),
     ["Spark engine", "parquet"]),
    ("cli-table-without-spark", _cmd("log-batch", "--model", "credit", "--table", "t"),
     ["only the Spark engine reads", "--engine spark"]),
    ("cli-sample-size-0", _baseline(make_frame(200, 0), "--sample-size", "0"),
     ["--sample-size must be at least"]),
    ("cli-port-out-of-range", _cmd("serve", "--model", "credit", "--port", "70000"),
     ["--port must be"]),
    ("cli-every-not-a-duration", _cmd("serve", "--model", "credit", "--every", "soon"),
     ["--every"]),
    ("cli-demo-no-weeks", _cmd("demo", "--weeks", "0"), ["--weeks must be at least"]),
    # Command lines argparse refuses, in the same shape, without its usage block
    ("cli-last-not-a-number", _cmd("monitor", "--model", "credit", "--last", "abc"),
     ["invalid int value: 'abc'", "pass a whole number to --last", "`driftctl monitor --help`"]),
    ("cli-last-without-value", _cmd("monitor", "--model", "credit", "--last"),
     ["--last: expected one argument", "give --last a value"]),
    ("cli-port-not-a-number", _cmd("serve", "--model", "credit", "--port", "http"),
     ["--port: invalid int value", "`driftctl serve --help`"]),
    ("cli-unknown-option", _cmd("monitor", "--model", "credit", "--lats", "2"),
     ["unrecognized arguments: --lats 2", "did you mean '--last'?", "driftctl monitor --help"]),
    ("cli-unknown-option-before-command", _cmd("--verbose", "cycle", "--model", "credit"),
     ["unrecognized arguments: --verbose", "`driftctl cycle --help`"]),
    ("cli-stray-argument", _cmd("monitor", "--model", "credit", "now"),
     ["unrecognized arguments: now", "`driftctl monitor --help`"]),
    ("cli-missing-required", _cmd("log-labels", "--model", "credit", "--data", "l.csv"),
     ["required: --id-col, --target", "pass --id-col, --target"]),
    ("cli-missing-data-or-table", _cmd("log-batch", "--model", "credit"),
     ["--data --table is required", "pass one of --data, --table"]),
    ("cli-version-and-alias", _cmd("monitor", "--model", "credit", "--version", "1", "--alias",
                                   "champion"), ["not allowed", "--version or --alias, not both"]),
    ("cli-invalid-choice", _batch(BATCH, "batch.parquet", "--engine", "dask"),
     ["invalid choice: 'dask'", "pass --engine pandas or --engine spark"]),
    ("cli-unknown-command", _cmd(UNKNOWN_COMMAND, "--model", "credit"),
     [f"'{UNKNOWN_COMMAND}' is not a command of driftctl", "did you mean 'monitor'?",
      "run one of: baseline, log-batch", "`driftctl --help`"]),
    ("cli-no-command", _cmd(), ["driftctl needs a command", "run one of: baseline"]),
    ("cli-webhook-no-action", _cmd("webhook"),
     ["driftctl webhook needs a command", "run one of: install"]),
    ("cli-webhook-missing-url", _cmd("webhook", "install", "--model", "credit"),
     ["required: --url", "`driftctl webhook install --help`"]),
]


def snapshot() -> tuple:
    """What a command could write: experiments, runs (any state) with their tags, params and
    metrics, registered models with their tags and aliases, and versions with their tags."""
    c = MlflowClient()
    exps = c.search_experiments(view_type=ViewType.ALL)
    runs = c.search_runs([e.experiment_id for e in exps], run_view_type=ViewType.ALL,
                         max_results=10_000)

    def items(d):
        return tuple(sorted(d.items()))

    return (
        sorted((e.experiment_id, e.name, e.lifecycle_stage, items(e.tags)) for e in exps),
        sorted((r.info.run_id, r.info.status, r.info.lifecycle_stage, items(r.data.tags),
                items(r.data.params), items(r.data.metrics)) for r in runs),
        sorted((m.name, items(m.aliases), items(m.tags)) for m in c.search_registered_models()),
        sorted((v.name, v.version, items(v.tags)) for v in c.search_model_versions()),
    )


def refused(capsys, args: list[str], words) -> str:
    """Run ``args`` in this process: exit 2, one message with a fix holding ``words``."""
    rc = main(args)
    out, err = capsys.readouterr()
    assert rc == 2, err
    command = [a for a in args if not a.startswith("-")][:1]
    prog = "driftctl" if command in ([], [UNKNOWN_COMMAND]) else f"driftctl {command[0]}"
    assert err.startswith(f"{prog}: error: "), err[:2000]
    assert err.count("error:") == 1 and err.count("\n  fix: ") == 1, err[:2000]
    assert "Traceback" not in err and out == ""
    assert len(err) < 3000, err[:3000]  # a huge cell or 10,000 columns are not repeated
    for word in words:
        assert word in err, err
    return err


def test_the_catalogue_is_large_and_its_ids_unique():
    ids = [case[0] for case in CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("setup, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_error_and_writes_nothing(store, tmp_path, capsys, setup, words):
    args = setup(tmp_path)
    before = snapshot()
    refused(capsys, args, words)
    assert snapshot() == before


@pytest.mark.parametrize("case", ["policy-fdr-above-1", "file-latin1-csv", "cli-unknown-option"])
def test_the_console_script_says_the_same(store, tmp_path, capsys, case):
    _, setup, _ = next(c for c in CASES if c[0] == case)
    args = setup(tmp_path)
    expected = refused(capsys, args, [])
    rc, out, err = run_cli(*args)
    assert (rc, out, err) == (2, "", expected)


@pytest.mark.parametrize("args", [["--help"], ["monitor", "--help"],
                                  ["webhook", "install", "--help"]])
def test_help_still_answers(capsys, args):
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert out.startswith(" ".join(["usage: driftctl", *args[:-1]]) + " [-h]") and err == ""


@pytest.mark.parametrize(
    "frame, needle",
    [
        (pd.DataFrame({0: [1.0, 2.0], 1: [3.0, 4.0]}), "column names must be strings"),
        (pd.DataFrame({"a": [1.0, 1.0, 1.0], "b": [1.0, 2.0, 3.0]}), "'a' is constant"),
        (pd.DataFrame({"a": [np.nan] * 3, "b": [1.0, 2.0, 3.0]}), "'a' is entirely missing"),
        (pd.DataFrame({"a": [1.0, np.inf, 2.0], "b": [1.0, 2.0, 3.0]}), "infinite"),
        (pd.DataFrame({"a": [1, "x", 2.0], "b": [1.0, 2.0, 3.0]}), "holding mixed-integer values"),
        (pd.DataFrame({"a": pd.to_datetime(["2026-01-01"] * 2 + ["2026-01-02"]),
                       "b": [1.0, 2.0, 3.0]}), "cannot monitor"),
    ],
    ids=["non-string-names", "constant", "all-nan", "inf", "mixed", "datetime"],
)
def test_bad_baseline_frames(frame, needle):
    """Frames given to the API, which no file can hold."""
    with pytest.raises(InputError) as info:
        build_baseline(frame)
    assert needle in info.value.problem and info.value.fix


def test_a_failure_while_logging_deletes_the_run(sqlite_uri):
    exp = tracking.experiment_id("m")
    with pytest.raises(RuntimeError), tracking.atomic_run(exp, "x", {tracking.KIND: "batch"}):
        raise RuntimeError("disk full")
    assert MlflowClient().search_runs([exp], run_view_type=ViewType.ACTIVE_ONLY) == []


def test_an_unreachable_tracking_server_is_one_clear_error(tmp_path, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli("monitor", "--model", "credit", "--tracking-uri",
                           f"http://127.0.0.1:{port}")
    assert rc == 2 and out == ""
    assert "Connection refused" in err and "server is up" in err
    assert err.count("error:") == 1


def test_a_batch_the_model_cannot_score_is_logged_without_predictions(sqlite_uri, tmp_path):
    from conftest import FEATURES, register_model, runs_of
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    train = make_frame(1000, 1)
    strict = Pipeline([
        ("enc", ColumnTransformer([("s", OneHotEncoder(handle_unknown="error"), ["segment"])],
                                  remainder="passthrough")),
        ("clf", LogisticRegression()),
    ]).fit(train[FEATURES], train["y"])
    register_model("strict", strict, train, target="y")
    odd = BATCH.assign(segment=np.where(np.arange(len(BATCH)) < 5, "zz", BATCH.segment))
    # Logged all the same, without predictions: the cycle triages the unseen categories.
    assert main(["log-batch", "--model", "strict", "--data", _write(tmp_path, odd)]) == 0
    (run,) = runs_of("strict", "batch")
    assert "the model failed to predict" in run.data.tags["driftctl.unscored"]
    assert "zz" in run.data.tags["driftctl.unscored"]


def test_unseen_categories_are_a_quality_alert(champion, tmp_path, capsys):
    odd = BATCH.assign(segment=np.where(np.arange(len(BATCH)) < 30, "zz", BATCH.segment))
    assert main(["log-batch", "--model", "credit", "--data", _write(tmp_path, odd)]) == 0
    capsys.readouterr()
    assert main(["monitor", "--model", "credit", "--exit-code"]) == 1
    out = capsys.readouterr().out
    assert "quality alert: unseen_share on 'segment' = 0.1" in out
