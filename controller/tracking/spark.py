"""MLflow's side of the Spark engine: the champion as a Spark UDF, a batch's narrow rows
logged as a parquet directory, and its lineage recorded without reading its rows.

pyspark is imported by the caller (``controller.inputs.spark``); nothing here imports it.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path

import mlflow
import yaml
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.exceptions import MlflowException

from controller._errors import ModelLoadError
from controller.tracking.connection import client


def spark_udf(spark, model_uri: str, result_type: str, predict_fn: str = "predict"):
    """The model at ``model_uri`` as a Spark UDF (``mlflow.pyfunc.spark_udf``) that runs on
    the executors in this Python environment, returning ``result_type``.

    ``predict_fn`` other than ``predict`` (``predict_proba``) calls that method of the model
    instead: MLflow's pyfunc of a scikit-learn model ignores the ``params`` of a call and
    predicts with the method named in its MLmodel file, so a local copy of the model names
    it there (what ``log_model(pyfunc_predict_fn=...)`` would have written).
    """
    # env_manager="local" is our choice, as the pandas engine loads the model here; MLflow
    # warns about it, and says which backend it picked, at every call.
    quiet = logging.getLogger("mlflow")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        if predict_fn == "predict":
            return mlflow.pyfunc.spark_udf(
                spark, model_uri, result_type=result_type, env_manager="local"
            )
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=tmp))
            meta = yaml.safe_load((local / "MLmodel").read_text())
            meta["flavors"]["python_function"]["predict_fn"] = predict_fn
            (local / "MLmodel").write_text(yaml.safe_dump(meta))
            # spark_udf copies the model before returning: the copy here may go.
            return mlflow.pyfunc.spark_udf(
                spark, str(local), result_type=result_type, env_manager="local"
            )
    except (MlflowException, OSError, KeyError) as exc:
        raise ModelLoadError(
            f"the model {model_uri} cannot be used as a Spark UDF: {exc}",
            "check that its artifacts exist and that its flavor's library is installed here",
        ) from exc
    finally:
        quiet.setLevel(level)


def log_directory(run_id: str, local: str | Path, path: str) -> None:
    """Log the folder ``local`` (a parquet directory Spark wrote) as the artifact ``path``."""
    client().log_artifacts(run_id, str(local), path)


def log_spark_dataset(
    run_id: str,
    frame,
    *,
    name: str,
    context: str,
    rows: int,
    path: str | None = None,
    table: str | None = None,
    digest: str | None = None,
) -> Dataset:
    """Record the Spark DataFrame ``frame`` as an input of ``run_id``: the
    ``SparkDataset`` that ``mlflow.data.from_spark`` makes, with its source (``path``,
    ``table``, else the calling code) and its schema, read from the DataFrame's.

    Built without ``from_spark``, which asks Spark whether a table is a Delta table (a
    failing query Spark logs as an error), and with the profile holding ``rows``, counted
    already: MLflow's own runs a Spark job over the rows to estimate their number.
    """
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.spark_dataset import SparkDataset
    from mlflow.data.spark_dataset_source import SparkDatasetSource
    from mlflow.tracking.context import registry
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    if path is None and table is None:
        source = CodeDatasetSource(tags=registry.resolve_tags())
    else:
        source = SparkDatasetSource(path=path, table_name=table)
    found = SparkDataset(frame, source, name=name, digest=digest)
    with warnings.catch_warnings():
        # A hint that integer columns cannot hold missing values: about model signatures.
        warnings.simplefilter("ignore", UserWarning)
        schema = found.schema
    dataset = Dataset(
        name=name,
        digest=found.digest,
        source_type=source._get_source_type(),
        source=source.to_json(),
        schema=json.dumps({"mlflow_colspec": schema.to_dict()}) if schema else None,
        profile=json.dumps({"num_rows": rows}),
    )
    tags = [InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)]
    client().log_inputs(run_id, datasets=[DatasetInput(dataset=dataset, tags=tags)])
    return dataset
