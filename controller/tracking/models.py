"""Models and the registry: finding a version, loading and logging models, and the
registry writes the controller repeats safely (tags, aliases) when it races another."""

from __future__ import annotations

import contextlib
import pickle
import time

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from controller._errors import ModelLoadError, NotFoundError
from controller.tracking.connection import client, shown_uri

# What loading a model logged elsewhere raises when it cannot be loaded here: its files or
# metadata are missing, its flavor's library is not installed, or it was pickled by another
# version of that library (unpickling raises whatever the library's classes raise).
_LOAD_ERRORS = (
    MlflowException,
    OSError,
    ImportError,
    EOFError,
    pickle.UnpicklingError,
    AttributeError,
    TypeError,
    ValueError,
)


def resolve_version(
    name: str, version: str | None = None, alias: str | None = None
) -> ModelVersion:
    """The registered model version named by ``version`` or ``alias`` (default: champion)."""
    c = client()
    try:
        registered = c.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        known = [m.name for m in c.search_registered_models(max_results=20)]
        raise NotFoundError(
            f"no registered model named {name!r} at {shown_uri()}"
            + (f" (models there: {known})" if known else " (the registry is empty)"),
            "check the name and --tracking-uri / MLFLOW_TRACKING_URI; register the model "
            "with mlflow.register_model or log_model(..., registered_model_name=...)",
        ) from None
    if version is not None:
        try:
            return c.get_model_version(name, str(version))
        except MlflowException as exc:
            raise NotFoundError(
                f"model {name!r} has no version {version!r}",
                f"pass one of its versions: {_versions(c, name)}",
            ) from exc
    alias = alias or "champion"
    if alias not in registered.aliases:
        raise NotFoundError(
            f"model {name!r} has no alias {alias!r}"
            + (f" (aliases: {sorted(registered.aliases)})" if registered.aliases else ""),
            f"set it with MlflowClient().set_registered_model_alias({name!r}, {alias!r}, "
            f"VERSION) or pass --version (versions: {_versions(c, name)})",
        )
    return c.get_model_version(name, registered.aliases[alias])


def _versions(c: MlflowClient, name: str) -> str:
    found = c.search_model_versions(f"name = '{name}'", max_results=100)
    return ", ".join(str(v) for v in sorted(int(v.version) for v in found)) or "none"


def get_version(name: str, version: str) -> ModelVersion:
    return client().get_model_version(name, version)


def model_version(name: str, version: str) -> ModelVersion | None:
    """The version, or None when the registry cannot give it (deleted, say)."""
    try:
        return client().get_model_version(name, version)
    except MlflowException:
        return None


def versions(name: str, run_id: str | None = None) -> list[ModelVersion]:
    """The model's versions (only those registered from ``run_id``, if given)."""
    where = f"name = '{name}'" + (f" and run_id = '{run_id}'" if run_id else "")
    return client().search_model_versions(where, max_results=1000)


def describe_version(name: str, version: str, description: str) -> None:
    client().update_model_version(name, version, description=description)


def aliases(name: str) -> dict[str, str]:
    """The registered model's aliases and the versions they point at."""
    try:
        found = client().get_registered_model(name).aliases
    except MlflowException:
        resolve_version(name)  # raises the clear error when the model is missing
        raise
    return {k: str(v) for k, v in found.items()}  # versions come back as ints


def load_model(mv: ModelVersion):
    """The model behind a version: a scikit-learn estimator when it is one, else pyfunc."""
    return load_model_uri(f"models:/{mv.name}/{mv.version}")


def load_model_uri(uri: str):
    """The model at ``uri``; ``ModelLoadError`` when it cannot be loaded here."""
    try:
        if "sklearn" in mlflow.models.get_model_info(uri).flavors:
            return mlflow.sklearn.load_model(uri)
        return mlflow.pyfunc.load_model(uri)
    except _LOAD_ERRORS as exc:
        raise ModelLoadError(
            f"the model {uri} cannot be loaded: {exc}",
            "check that its artifacts exist and that its flavor's library is installed here, "
            "at the version it was saved with",
        ) from exc


def has_model(run_id: str, name: str) -> bool:
    """Whether ``run_id`` logged a model called ``name``."""
    try:
        mlflow.models.get_model_info(f"runs:/{run_id}/{name}")
    except (MlflowException, OSError):
        return False
    return True


def model_signature(inputs, outputs):
    """The MLflow signature of a model that maps ``inputs`` to ``outputs``."""
    from mlflow.models import infer_signature

    return infer_signature(inputs, outputs)


def log_sklearn_model(model, *, name: str = "model", **options) -> str | None:
    """Log a scikit-learn model in the active run; ``options`` as ``mlflow.sklearn.log_model``
    takes them. Returns the version registered (with ``registered_model_name``), if any."""
    info = mlflow.sklearn.log_model(model, name=name, **options)
    version = info.registered_model_version
    return None if version is None else str(version)


def create_version(name: str, run_id: str, tags: dict[str, str], artifact: str = "model"):
    """Register the model ``run_id`` logged as ``artifact`` as a new version of ``name``."""
    info = mlflow.models.get_model_info(f"runs:/{run_id}/{artifact}")
    return client().create_model_version(
        name, info.model_uri, run_id=run_id, tags=tags, model_id=info.model_id
    )


def delete_version(name: str, version: str) -> bool:
    """Delete a version; whether it is gone (one that cannot be deleted, for want of MANAGE
    on the model, stays as it is)."""
    try:
        client().delete_model_version(name, version)
    except MlflowException as exc:
        return exc.error_code == "RESOURCE_DOES_NOT_EXIST"
    return True


def delete_registered_model(name: str) -> None:
    """Delete a registered model with its versions, if there is one."""
    with contextlib.suppress(MlflowException):
        client().delete_registered_model(name)


def set_version_tag(name: str, version: str, key: str, value: str) -> None:
    idempotent(client().set_model_version_tag, name, version, key, value)


def set_alias(name: str, alias: str, version: str) -> None:
    idempotent(client().set_registered_model_alias, name, alias, version)


def delete_alias(name: str, alias: str) -> None:
    """Remove ``alias``; another controller removing it first is no error."""
    try:
        idempotent(client().delete_registered_model_alias, name, alias)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise


def idempotent(write, *args) -> None:
    """Repeat an idempotent registry write that lost a race: MLflow inserts a new tag or
    alias after looking for it, so two controllers writing the same one at once can see
    the second insert fail. Once the other's insert is there, the write is an update."""
    for attempt in range(3):
        try:
            write(*args)
            return
        except MlflowException as exc:
            if attempt == 2 or exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise
            time.sleep(0.2 * (attempt + 1))
