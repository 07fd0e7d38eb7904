"""The MLflow client driftctl talks through, which store it points at, and what an error
MLflow reports becomes."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from urllib.parse import quote, unquote

import mlflow
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from controller._errors import TrackingError
from controller.tracking.tags import EXPERIMENT

_held: dict[tuple[str, str], MlflowClient] = {}  # (tracking URI, registry URI) -> client
_injected: list[MlflowClient] = []


def client() -> MlflowClient:
    """The client every read and write goes through.

    One per tracking and registry URI, built on first use: a notebook or a test suite that
    points MLflow at another store gets that store's client, as ``MlflowClient()`` would.
    A client given to ``use_client`` takes precedence while it is in use.
    """
    if _injected:
        return _injected[-1]
    key = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    held = _held.get(key)
    if held is None:
        held = _held[key] = MlflowClient(*key)
    return held


@contextlib.contextmanager
def use_client(injected: MlflowClient) -> Iterator[MlflowClient]:
    """Route the seam's client calls through ``injected`` (another store, a client with
    its own settings) inside the block.

    Runs driftctl starts itself (``atomic_run`` without a run id, ``start_run``) and the
    models it loads follow MLflow's current tracking URI, as MLflow's own fluent API does.
    """
    _injected.append(injected)
    try:
        yield injected
    finally:
        _injected.pop()


def tracking_uri() -> str:
    """The store driftctl talks to: the injected client's, else MLflow's current one."""
    return _injected[-1].tracking_uri if _injected else mlflow.get_tracking_uri()


def set_tracking_uri(uri: str) -> None:
    mlflow.set_tracking_uri(uri)


# From "://" to the LAST "@" before what ends a URL in a message (whitespace, a quote): a
# password may hold "/" or "@", so neither ends the user-info. A path with an "@" in it
# loses its start too, which is the safe side.
_USERINFO = re.compile(r"(?<=://)[^\s'\"]*@")
# In a URI on its own, the user-info runs to its last "@", whatever the password holds.
_URI_USERINFO = re.compile(r"^[\w+.-]+://(.*)@", re.DOTALL)
# Secrets MLflow and driftctl read from the environment: redacted wherever text is, since an
# HTTP library or a server may quote them anywhere (a header, a URL, an echoed request).
SECRET_VARIABLES = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "DRIFTCTL_ALERT_SECRET",
                    "DRIFTCTL_WEBHOOK_SECRET", "DRIFTCTL_SMTP_PASSWORD")


def _userinfo(uri: str) -> tuple[str | None, str | None]:
    """(user name, password) in ``uri``."""
    match = _URI_USERINFO.match(uri)
    if match is None:
        return None, None
    user, _, password = match.group(1).partition(":")
    return unquote(user) or None, password or None


def redact(text: str, uri: str | None = None) -> str:
    """``text`` without the user-info of any URL in it (``http://alice:pw@host`` reads
    ``http://***@host``), nor, anywhere, ``uri``'s password or the value of a variable of
    ``SECRET_VARIABLES`` (as given or percent-encoded): what may go to a log, an error
    message or ``/health``."""
    secrets = {os.environ.get(name) for name in SECRET_VARIABLES}
    if uri:
        secrets.add(_userinfo(uri)[1])
    shown = {v for s in secrets if s for v in (s, unquote(s), quote(s, safe="")) if v}
    text = _USERINFO.sub("***@", text)
    for secret in sorted(shown, key=len, reverse=True):  # a secret holding another goes whole
        text = text.replace(secret, "***")
    return text


def shown_uri() -> str:
    """The tracking URI as it may be shown: without its user name or password."""
    return redact(tracking_uri())


# What MLflow's basic-auth asks of each write driftctl makes: the endpoint's last part, the
# resource kind it is checked on and the permission (READ < USE < EDIT < MANAGE). A 403 does
# not say which permission was missing; the endpoint does. Removing (an alias, a tag, a run)
# needs MANAGE where setting it needs EDIT, on the same endpoint for aliases.
_NEEDED: dict[str, tuple[str, str]] = {
    "registered-models/alias": ("registered model", "EDIT"),
    "registered-models/set-tag": ("registered model", "EDIT"),
    "registered-models/delete-tag": ("registered model", "MANAGE"),
    "registered-models/update": ("registered model", "EDIT"),
    "registered-models/create": ("registered model", "permission to create"),
    "model-versions/create": ("registered model", "EDIT"),
    "model-versions/update": ("registered model", "EDIT"),
    "model-versions/set-tag": ("registered model", "EDIT"),
    "model-versions/delete-tag": ("registered model", "MANAGE"),
    "model-versions/delete": ("registered model", "MANAGE"),
    "runs/delete": ("experiment", "MANAGE"),
    "runs/restore": ("experiment", "MANAGE"),
    "experiments/create": ("experiment", "permission to create"),
}
_ENDPOINT = re.compile(r"/api/[0-9.]+/mlflow(-artifacts)?/([\w/-]+)")
_READS = ("get", "search", "list", "get-by-name", "get-download-uri")


def _permission(exc: BaseException) -> tuple[str, str, str]:
    """(permission, resource kind, resource name) that the refused request needed."""
    calls, args = _passed_through(exc)
    match = _ENDPOINT.search(str(exc))
    artifacts, endpoint = (bool(match.group(1)), match.group(2)) if match else (False, "")
    registry = endpoint.startswith(("registered-models", "model-versions"))
    kind, needed = next(
        (v for k, v in _NEEDED.items() if endpoint.startswith(k)),
        ("registered model" if registry else "experiment", "EDIT"),
    )
    method = getattr(getattr(exc, "request", None), "method", None)
    if endpoint.split("/")[-1] in _READS or (artifacts and method == "GET"):
        needed = "READ"
    if endpoint == "registered-models/alias":
        if "delete_registered_model_alias" in calls:
            needed = "MANAGE"
        elif "get_model_version_by_alias" in calls:
            needed = "READ"
    if kind == "registered model":
        return needed, kind, args.get("name") or args.get("registered_model_name") or "?"
    return needed, kind, _experiment_name(args)


def _passed_through(exc: BaseException) -> tuple[set[str], dict[str, str]]:
    """The functions the error passed through, and their string arguments (``name``,
    ``run_id``, ``experiment_id``; innermost first): which model or run a refused request
    was for, since MLflow's 403 does not say."""
    calls: set[str] = set()
    args: dict[str, str] = {}
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        calls.add(frame.f_code.co_name)
        for key in ("name", "registered_model_name", "run_id", "experiment_id",
                    "experiment_name"):
            value = frame.f_locals.get(key)
            if isinstance(value, str) and value:
                args.setdefault(key, value)
    return calls, args


def _experiment_name(names: dict[str, str]) -> str:
    """The experiment a refused run write was for, by name where the caller may read it."""
    if "experiment_name" in names:
        return names["experiment_name"]
    with contextlib.suppress(Exception):
        experiment_id = names.get("experiment_id") or client().get_run(
            names["run_id"]).info.experiment_id
        return client().get_experiment(experiment_id).name
    return names.get("experiment_id", "?")


def _refused(exc: BaseException, status: int, uri: str) -> TrackingError:
    """A 401 or 403 from MLflow as one error naming the credentials or the permission
    missing, and what to do about it."""
    user = os.environ.get("MLFLOW_TRACKING_USERNAME") or _userinfo(uri)[0]
    server = redact(uri, uri)
    if status == 401:
        if not user:
            return TrackingError(
                f"MLflow ({server}) refused: no credentials were given (UNAUTHENTICATED)",
                "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to an account of "
                "the tracking server",
            )
        return TrackingError(
            f"MLflow ({server}) refused: user {user!r} or its password was not accepted "
            "(UNAUTHENTICATED)",
            "check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (an admin can reset "
            "the password)",
        )
    match = _ENDPOINT.search(str(exc))
    if match and match.group(2).startswith("webhooks"):
        return _not_admin(user, uri)
    needed, kind, name = _permission(exc)
    return _denied(user, needed, kind, name, uri)


def _not_admin(user: str | None, uri: str) -> TrackingError:
    """Basic-auth lets only admins list, create or change webhooks, whatever else the
    account may do."""
    who = f"user {user!r} is not an admin" if user else "an anonymous caller is no admin"
    return TrackingError(
        f"MLflow ({redact(uri, uri)}) refused: {who}, and only admins may manage webhooks "
        "(PERMISSION_DENIED)",
        "run `driftctl webhook install` with an admin's MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD, or ask an admin to run it (`driftctl serve` needs no admin; "
        "see the README, \"Running against an authenticated MLflow\")",
    )


def _denied(user: str | None, needed: str, kind: str, name: str, uri: str,
            have: str | None = None) -> TrackingError:
    who = f"user {user!r}" if user else "an anonymous caller"
    lacks = needed if needed.startswith("permission") else f"{needed} on"
    grant = (
        f"ask an admin to grant {needed} on {kind} {name!r} to {user!r}"
        if user and not needed.startswith("permission")
        else f"ask an admin for {lacks} {kind} {name!r}"
    )
    has = f", it has {have}" if have else ""
    return TrackingError(
        f"MLflow ({redact(uri, uri)}) refused: {who} lacks {lacks} {kind} {name!r}{has} "
        "(PERMISSION_DENIED)",
        f"{grant} (see the README, \"Running against an authenticated MLflow\")",
    )


def _status(exc: BaseException) -> int | None:
    """The HTTP status of an authentication or permission error, else None."""
    if isinstance(exc, MlflowException):
        if exc.error_code == "PERMISSION_DENIED":
            return 403
        if exc.error_code in ("UNAUTHENTICATED", "CUSTOMER_UNAUTHORIZED") or (
            "error code 401" in exc.message
        ):
            return 401
        return None
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if status in (401, 403) else None


# The least each command needs under MLflow's basic-auth: (on the controller's experiment
# ``driftctl-<model>``, on the registered model). Measured against a real server: see the
# README, "Running against an authenticated MLflow". Removing an alias (``challenger`` after
# a decision, ``previous-champion`` on rollback) needs MANAGE, so every command that may
# promote does: ``serve`` runs ``promote`` (and, with --every, ``cycle``).
NEEDS: dict[str, tuple[str, str]] = {
    "baseline": ("EDIT", "EDIT"),
    "log-batch": ("EDIT", "READ"),
    "log-labels": ("EDIT", "READ"),
    "monitor": ("EDIT", "EDIT"),
    "retrain": ("EDIT", "EDIT"),
    "promote": ("EDIT", "MANAGE"),
    "rollback": ("EDIT", "MANAGE"),
    "cycle": ("EDIT", "MANAGE"),
    "serve": ("EDIT", "MANAGE"),
}
# Commands basic-auth allows admins only: every webhook endpoint is admin-only in MLflow.
ADMIN_ONLY = frozenset({"webhook"})
# A service starts while the tracking server is down: each action meets the server (and its
# permissions) then, and a failed one is retried. So it asks once, without retries.
_STARTS_WITHOUT_SERVER = frozenset({"serve"})
_RANK = {"NO_PERMISSIONS": -1, "DENY": -1, "READ": 0, "USE": 1, "EDIT": 2, "MANAGE": 3}
_OWN_PERMISSION = "/api/3.0/mlflow/users/permissions/get"
_CURRENT_USER = "/api/2.0/mlflow/users/current"


def check_permissions(command: str, model: str) -> None:
    """Refuse a command up front when the tracking server's basic-auth would refuse one of
    its writes half-way (a champion moved but the challenger alias kept, say): a few reads,
    and nothing is written. A store without basic-auth (sqlite, a plain server, an older
    MLflow) is not checked; MLflow still refuses what it must. A page where MLflow's JSON
    belongs (a sign-in page) is one error."""
    needs = NEEDS.get(command)
    uri = tracking_uri()
    if (needs is None and command not in ADMIN_ONLY) or not uri.startswith(
        ("http://", "https://")
    ):
        return
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    def get(endpoint: str, retries: int | None = None, **params: str):
        return http_request(get_default_host_creds(uri), endpoint, "GET", max_retries=retries,
                            params=params)

    try:
        me = get(_CURRENT_USER, 0 if command in _STARTS_WITHOUT_SERVER else None)
    except MlflowException:
        if command in _STARTS_WITHOUT_SERVER:
            return
        raise
    if me.status_code == 401:
        raise _refused(Exception(me.text), 401, uri)
    if me.status_code != 200:
        return  # no basic-auth here (404), or a server that cannot tell: not checked
    user = _answer(me, uri).get("user")
    if not isinstance(user, dict) or "username" not in user:
        return  # JSON, but not MLflow's basic-auth: another auth app, not checked
    if user.get("is_admin"):
        return
    if command in ADMIN_ONLY:
        raise _not_admin(user["username"], uri)
    experiment = client().get_experiment_by_name(EXPERIMENT.format(model=model))
    resources = [("registered_model", "registered model", model, model, needs[1])]
    if experiment is not None:  # else created by this command, its creator gets MANAGE
        resources.append(
            ("experiment", "experiment", experiment.experiment_id, experiment.name, needs[0]))
    for resource_type, kind, resource_id, name, needed in resources:
        response = get(_OWN_PERMISSION, username=user["username"],
                       resource_type=resource_type, resource_id=resource_id)
        if response.status_code != 200:
            return
        have = _answer(response, uri).get("permission", "")
        if _RANK.get(have, -1) >= _RANK[needed]:
            continue
        if kind == "registered model":
            try:  # an unknown model is reported as such by the command, not as a refusal
                client().get_registered_model(model)
            except MlflowException:
                return
        raise _denied(user["username"], needed, kind, name, uri, have)


# What to do about an HTTP status MLflow or a proxy answered, where the status says more
# than MLflow's message; other statuses get the generic fix of their kind of error.
_STATUS_FIX = {
    413: "raise the request body size limit of the server, or of the proxy in front of MLflow, "
         "above the largest artifact driftctl logs (nginx: client_max_body_size, 1 MiB by "
         "default; ingress-nginx: the annotation nginx.ingress.kubernetes.io/proxy-body-size)",
    404: "check --tracking-uri / MLFLOW_TRACKING_URI, that the tracking server serves artifacts "
         "(mlflow server without --no-serve-artifacts) and that a proxy in front of it passes "
         "/api/2.0/mlflow-artifacts/ through",
}
_NOT_MLFLOW = ("point --tracking-uri / MLFLOW_TRACKING_URI at the MLflow server itself; behind a "
               "single sign-on proxy, give MLflow credentials the proxy accepts "
               "(MLFLOW_TRACKING_TOKEN for a bearer token, or MLFLOW_TRACKING_USERNAME and "
               "MLFLOW_TRACKING_PASSWORD)")
_SERVER_FAILED = ("see the log of the server (and of the proxy in front of it, if any), then run "
                  "the command again")
# Where MLflow's messages give the status: its REST errors, requests' and urllib3's retries.
_STATUS_SAID = re.compile(
    r"error code (\d{3})\b|\b(\d{3}) (?:Client|Server) Error|too many (\d{3}) error responses")


def _fix_for(status: int | None, otherwise: str) -> str:
    if status is not None and status >= 500:
        return _SERVER_FAILED
    return _STATUS_FIX.get(status, otherwise)


def _request_kind(method: str, path: str) -> str:
    """What a request MLflow made was for, in words: its REST API, or an artifact
    transfer (through the tracking server, or to a cloud store's presigned URL)."""
    if "/api/" in path and "/mlflow-artifacts/" not in path:
        return "a request to MLflow's REST API"
    return {"GET": "an artifact download", "DELETE": "an artifact deletion", "PUT":
            "an artifact upload", "POST": "an artifact upload"}.get(method, "a request")


def _shown_url(url: str, uri: str) -> str:
    """``url`` as an error shows it: without its user-info, nor its query (a presigned URL's
    query is a credential)."""
    return re.split(r"[?#]", redact(url, uri), maxsplit=1)[0]


def _failed_transfer(exc: requests.RequestException, uri: str) -> TrackingError:
    """An error of MLflow's HTTP layer (an artifact upload a proxy refused, say) as one
    error: what the server answered, to which request, and the fix."""
    if isinstance(exc, requests.JSONDecodeError):
        return TrackingError(
            f"MLflow ({redact(uri, uri)}) answered with something that is not its JSON: "
            f"{redact(str(exc), uri)[:300]}", _NOT_MLFLOW)
    request, response = exc.request, exc.response
    method = getattr(request, "method", None) or "?"
    shown = _shown_url(getattr(request, "url", None) or getattr(response, "url", None) or uri,
                       uri)
    what = f"{_request_kind(method, shown)} ({method} {shown})"
    if response is None:
        return TrackingError(
            f"{what} failed: {type(exc).__name__}: {redact(str(exc), uri)[:300]}",
            "check that the server is up and reachable from here (--tracking-uri / "
            "MLFLOW_TRACKING_URI), then run the command again",
        )
    host = re.match(r"[^:/]*://[^/]*", shown)
    return TrackingError(
        f"{host.group() if host else shown} answered HTTP {response.status_code} "
        f"{response.reason} to {what}",
        _fix_for(response.status_code, "check --tracking-uri / MLFLOW_TRACKING_URI and that a "
                 "proxy in front of MLflow passes this request through unchanged"),
    )


def _answer(response: requests.Response, uri: str) -> dict:
    """The JSON object a basic-auth endpoint answered with a 200. A page instead (a single
    sign-on proxy's sign-in page, a web app at a wrong address) means the client does not
    reach MLflow the way MLflow expects: every later call would meet the page too, so it is
    one error now, before anything is written, not a parse error half-way."""
    with contextlib.suppress(ValueError):  # requests' JSONDecodeError is one
        body = response.json()
        if isinstance(body, dict):
            return body
    kind = response.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"
    raise TrackingError(
        f"{_shown_url(response.url or uri, uri)} answered HTTP {response.status_code} with "
        f"{kind}, not MLflow's JSON: the sign-in page of a proxy in front of MLflow, or no "
        "MLflow server at this address",
        _NOT_MLFLOW,
    )


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """Report an error MLflow raises, or one of its HTTP layer (``requests``), as a
    ``TrackingError``: what MLflow or the server said, and where, never a password the
    tracking URI holds. A refusal (HTTP 401 or 403, from MLflow's REST calls or its
    artifact uploads) names the credentials or the permission missing."""
    try:
        yield
    except (MlflowException, requests.RequestException) as exc:
        uri = tracking_uri()
        status = _status(exc)
        if status is not None:
            raise _refused(exc, status, uri) from exc
        if not isinstance(exc, MlflowException):
            raise _failed_transfer(exc, uri) from exc
        said = _STATUS_SAID.search(exc.message)
        status = said and int(next(filter(None, said.groups())))
        raise TrackingError(
            f"MLflow ({redact(uri, uri)}) reported: {redact(exc.message, uri)}",
            _fix_for(status,
                     "act on MLflow's message above; if MLflow is unreachable, check "
                     "--tracking-uri / MLFLOW_TRACKING_URI and that the server is up"),
        ) from exc
