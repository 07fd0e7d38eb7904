"""The MLflow seam: everything driftctl reads from or writes to MLflow tracking and the
model registry, and the only part of the package that imports ``mlflow``.

The rest of the package receives plain objects (frames, baselines, runs, versions) from
here and calls ``tracking.<name>``. By concern:

    connection  the client (one per tracking and registry URI, or one injected with
                ``use_client``), the tracking URI, MLflow's errors as driftctl's
    runs        the controller's experiment, runs that survive only complete, metrics,
                parameters, small artifacts, finding runs again
    artifacts   parquet tables and the datasets a run used (lineage)
    models      resolving, loading, logging and registering models; registry writes
    baselines   training baselines logged, linked from their versions, read back
    projects    the user's training entry point (an MLflow project), a refitted model
    spark       the Spark engine's part: the model as a Spark UDF, parquet directories,
                lineage of Spark DataFrames (pyspark itself is imported by the caller)
    deadline    MLflow's retries sized to the policy's deadline, the command's watchdog
    tags        the tag keys and paths driftctl writes
    webhooks    the registry's webhooks (``driftctl webhook install``)
"""

from __future__ import annotations

from controller.tracking.artifacts import (
    artifact_path,
    dataset_digest,
    dataset_schema,
    has_artifact,
    log_dataset,
    log_table,
    read_table_artifact,
    read_text_artifact,
)
from controller.tracking.baselines import link_baseline, load_baseline, log_baseline, save_baseline
from controller.tracking.connection import (
    check_permissions,
    client,
    redact,
    set_tracking_uri,
    shown_uri,
    tracking_uri,
    translated_errors,
    use_client,
)
from controller.tracking.deadline import Watchdog, apply_http_settings, http_settings
from controller.tracking.models import (
    ModelVersion,
    aliases,
    create_version,
    delete_alias,
    delete_registered_model,
    delete_version,
    describe_version,
    get_version,
    has_model,
    idempotent,
    load_model,
    load_model_uri,
    log_sklearn_model,
    model_signature,
    model_version,
    resolve_version,
    set_alias,
    set_version_tag,
    versions,
)
from controller.tracking.runs import (
    active_run_id,
    atomic_run,
    delete_run,
    experiment_id,
    experiment_run_ids,
    finished_runs,
    get_run,
    lapsed,
    latest_runs,
    lease,
    listing_once,
    log_dict,
    log_metrics,
    log_params,
    log_text,
    metric_history,
    model_runs,
    set_experiment,
    set_run_tag,
    singleton_run,
    start_run,
    sweep,
    utc,
    write_param_once,
)
from controller.tracking.spark import log_directory, log_spark_dataset, spark_udf
from controller.tracking.tags import (
    BASELINE,
    BASELINE_PATH,
    BASELINE_RUN,
    EXPERIMENT,
    HISTORY_RUN,
    KIND,
    MODEL,
    PARENT_RUN,
    TAG,
    VERSION,
)
from controller.tracking.webhooks import (
    Webhook,
    create_webhook,
    require_webhook_server,
    update_webhook,
    webhooks_named,
)

__all__ = [
    "BASELINE",
    "BASELINE_PATH",
    "BASELINE_RUN",
    "EXPERIMENT",
    "HISTORY_RUN",
    "KIND",
    "MODEL",
    "PARENT_RUN",
    "TAG",
    "VERSION",
    "ModelVersion",
    "Watchdog",
    "Webhook",
    "active_run_id",
    "aliases",
    "apply_http_settings",
    "artifact_path",
    "atomic_run",
    "check_permissions",
    "client",
    "create_version",
    "create_webhook",
    "dataset_digest",
    "dataset_schema",
    "delete_alias",
    "delete_registered_model",
    "delete_run",
    "delete_version",
    "describe_version",
    "experiment_id",
    "experiment_run_ids",
    "finished_runs",
    "get_run",
    "get_version",
    "has_artifact",
    "has_model",
    "http_settings",
    "idempotent",
    "lapsed",
    "latest_runs",
    "lease",
    "link_baseline",
    "listing_once",
    "load_baseline",
    "load_model",
    "load_model_uri",
    "log_baseline",
    "log_dataset",
    "log_dict",
    "log_directory",
    "log_metrics",
    "log_params",
    "log_sklearn_model",
    "log_spark_dataset",
    "log_table",
    "log_text",
    "metric_history",
    "model_runs",
    "model_signature",
    "model_version",
    "read_table_artifact",
    "read_text_artifact",
    "redact",
    "require_webhook_server",
    "resolve_version",
    "save_baseline",
    "set_alias",
    "set_experiment",
    "set_run_tag",
    "set_tracking_uri",
    "set_version_tag",
    "shown_uri",
    "singleton_run",
    "spark_udf",
    "start_run",
    "sweep",
    "tracking_uri",
    "translated_errors",
    "update_webhook",
    "use_client",
    "utc",
    "versions",
    "webhooks_named",
    "write_param_once",
]
