"""The monitoring policy: defaults, and a TOML file that overrides them.

Example (every key optional; these are the defaults)::

    [drift]
    fdr = 0.05                    # Benjamini-Hochberg level across features
    false_alarm_rate = 0.01       # per feature: calibrated thresholds allow this many alarms
    calibration_resamples = 500   # resamples of the baseline used to calibrate thresholds
    sample_size = 10000           # production rows used by the exact tests (KS, Wasserstein)
    seed = 0

    [drift.numeric]
    statistic = "wasserstein"     # effect size that decides: psi, kl, jensen_shannon,
                                  # hellinger, wasserstein, ks (numeric only for the last two;
                                  # controller/statistics/catalog.py declares each)
    test = "ks"                   # significance test: ks or chi2
    min_effect = 0.1              # the threshold never goes below this: a mean shift of 0.1 sd
    # threshold = 0.2             # a fixed threshold instead of the calibrated one

    [drift.categorical]           # also [drift.boolean], same defaults
    statistic = "jensen_shannon"  # psi, kl, jensen_shannon or hellinger
    test = "chi2"
    min_effect = 0.035            # a category's share moving by 0.1 sd of its indicator

    [features."loan amount"]      # per feature, same keys, plus ignore = true
    min_effect = 0.2

    [batches]
    sample_size = 10000           # rows of each logged batch kept as its uniform sample
    rows = "auto"                 # its full rows, for retraining: "copy" in the run, a
                                  #   "pointer" to the file (checked by its SHA-256), or
                                  #   "auto": a copy up to copy_max_rows, else a pointer
    copy_max_rows = 1000000

    [quality]
    max_missing_rate_increase = 0.05
    max_out_of_range_share = 0.05
    max_unseen_share = 0.01

    [attribution]
    sample_size = 300             # window rows explained per cycle
    loss_sample_size = 100        # labelled rows whose loss is explained
    background_size = 100         # baseline rows the explainers integrate over
    background_per_row = 10       # of those, drawn for each row explained by interventional values
    bootstrap = 500               # resamples for each share change's confidence interval
    confidence = 0.95
    min_share_change = 0.05       # a feature's share must move at least this much
    min_ndcg = 0.9                # alert when the ranking's nDCG falls below (Clarify)

    [multivariate]
    enabled = true                # drift no single feature shows: PCA reconstruction error
                                  # and a domain classifier (controller/statistics/multivariate.py)
    sample_size = 10000           # window rows the PCA reconstruction error reads
    classifier_rows = 5000        # rows of each side (reference, window) the classifier reads
    pca_variance = 0.65           # share of the reference's variance the PCA keeps
    min_error_increase = 0.05     # the error's threshold is at least 5% above the reference's
    min_auc = 0.55                # the classifier's threshold never goes below this

    [retrain]
    min_importance = 0.05         # drift counts in features with this attribution share
    max_performance_drop = 0.05   # relative worsening of the primary metric
    consecutive_cycles = 1        # cycles in a row that must call for retraining
    forecast_drift_share = 0.3    # the floor the importance-weighted drift share is forecast to
    forecast_horizon = 20         #   cross, and the cycles ahead a forecast looks
    cooldown = "event_time"       # what a cooldown counts: event_time or labelled_rows
    cooldown_hours = 24           # after a trigger, later ones wait this long (event time)
    cooldown_rows = 1000          # or until this many new labelled rows arrived
    window = "sliding"            # challenger's training data: sliding or expanding
    window_batches = 4            # batches in a sliding window
    start_at_change = true        # train from the latest change in the champion's loss
    min_rows_after_change = 500   # labelled rows the change must be followed by
    change_level = 0.01           # significance level of the change-point test
    holdout_share = 0.3           # most recent labelled rows, held out for the comparison
    metric = "auto"               # gate metric; auto: the primary metric, as chosen by
                                  # controller.statistics.performance.primary
    min_absolute_change = 0.0     # as in mlflow.models.MetricThreshold
    min_relative_change = 0.0
    guardrail_tolerance = 0.02    # how much worse any other metric may get
    confidence = 0.95
    promotion = "approval"        # approval: a person decides in the registry; auto: at once
    replace_challenger = "if_better"  # a waiting challenger is replaced: if_better, always, never
    entry_point = ""              # your MLflow project's training entry point (default:
    project = "."                 # refit a clone of the champion); project: its URI

    [alerts]                      # off unless a webhook or an SMTP server is given
    webhook = ""                  # URL; requests are signed with env DRIFTCTL_ALERT_SECRET
    format = "json"               # json (driftctl's payload) or slack (incoming webhook)
    smtp = ""                     # smtp://host:port or smtps://host:port; credentials from
                                  # env DRIFTCTL_SMTP_USERNAME and DRIFTCTL_SMTP_PASSWORD
    to = []                       # e-mail recipients (needed with smtp)
    from = ""                     # sender; default driftctl@<this host>
    repeat_after = "24h"          # an unresolved episode is sent again after this long
    recovery = false              # also send a notice when an episode ends
    ui_url = ""                   # the MLflow UI for links; default: an http(s) tracking URI

    [tracking]
    deadline = "30m"              # the longest a command may take; then it ends with one error
    retries = 2                   # retries of a request on a connection error or 5xx
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

from controller._errors import PolicyError
from controller.statistics import catalog
from controller.statistics.performance import METRICS

MIN_SEGMENT = 20  # rows on each side of a change point, at the least


@dataclass(frozen=True)
class Rule:
    """How one feature (or every feature of a type) is judged."""

    statistic: str
    test: str
    min_effect: float
    threshold: float | None = None
    ignore: bool = False

    def check(self, kind: str | None, where: str) -> Rule:
        """This rule, if valid for features of ``kind`` (None: for some kind of feature)."""
        for key in ("min_effect", "threshold"):
            value = getattr(self, key)
            if not (value is None and key == "threshold") and not _number(value):
                raise _bad(where, key, "a number >= 0", value)
        if not isinstance(self.ignore, bool):
            raise _bad(where, "ignore", "true or false", self.ignore)
        features = f" for {kind} features" if kind else ""
        allowed = catalog.deciding(kind)
        if self.statistic not in allowed:
            raise _bad(where, "statistic", f"one of {list(allowed)}{features}", self.statistic)
        allowed = catalog.tests(kind)
        if self.test not in allowed:
            raise _bad(where, "test", f"one of {list(allowed)}{features}", self.test)
        return self


@dataclass(frozen=True)
class Quality:
    max_missing_rate_increase: float = 0.05
    max_out_of_range_share: float = 0.05
    max_unseen_share: float = 0.01


@dataclass(frozen=True)
class Batches:
    """What a logged batch keeps besides its profile."""

    # Rows kept as the batch's uniform sample: the statistics that need raw values (KS,
    # Wasserstein) and attributions read a window's merged samples.
    sample_size: int = 10_000
    # The full rows, which only retraining reads: "copy" keeps them in the run; "pointer"
    # records the file they were read from and its fingerprint (a batch logged from a frame
    # has none, and is copied); "auto" copies batches of up to copy_max_rows rows. The
    # Spark engine always keeps a pointer.
    rows: str = "auto"
    copy_max_rows: int = 1_000_000


@dataclass(frozen=True)
class Attribution:
    """How SHAP attribution shifts are computed and judged."""

    sample_size: int = 300  # window rows explained per cycle, whatever the window's size
    loss_sample_size: int = 100  # labelled rows whose loss is explained
    background_size: int = 100  # baseline rows the explainers integrate over
    # Each row explained by interventional Shapley values (any loss; the output of a model
    # that is neither a tree ensemble nor linear) integrates over this many of them, drawn
    # per row: only means over rows are reported, and their error comes mostly from which
    # rows were explained, not from these.
    background_per_row: int = 10
    bootstrap: int = 500  # resamples for the confidence interval of each share change
    confidence: float = 0.95
    min_share_change: float = 0.05  # smallest change of a feature's share worth an alert
    min_ndcg: float = 0.9  # SageMaker Clarify's threshold


@dataclass(frozen=True)
class Multivariate:
    """Drift no single feature shows: which detectors run, on how many rows, and the
    smallest effects worth an alert (``controller.statistics.multivariate``)."""

    enabled: bool = True
    sample_size: int = 10_000  # window rows the PCA reconstruction error reads
    classifier_rows: int = 5_000  # rows of each side the domain classifier reads
    pca_variance: float = 0.65  # NannyML's default
    min_error_increase: float = 0.05  # relative to the reference's mean error
    min_auc: float = 0.55  # NannyML alerts above 0.65; this is the floor of a calibrated one


@dataclass(frozen=True)
class Retrain:
    """When monitoring results call for a new challenger."""

    min_importance: float = 0.05  # a drifted feature matters from this attribution share
    max_performance_drop: float = 0.05  # relative worsening of the primary metric
    consecutive_cycles: int = 1  # cycles in a row whose results call for retraining
    # The forecast of when to retrain (controller.statistics.forecast): the floor of the
    # importance-weighted share of drifted features (the performance's floor is the
    # baseline's value worsened by max_performance_drop), and how many cycles ahead it looks.
    forecast_drift_share: float = 0.3
    forecast_horizon: int = 20
    cooldown: str = "event_time"  # what the cooldown after a trigger counts: "event_time"
    # (cooldown_hours between the cycles' windows) or "labelled_rows" (cooldown_rows new
    # labelled rows); windows without event times always count labelled rows
    cooldown_hours: float = 24.0  # after a retrain was triggered, wait this long
    cooldown_rows: int = 1000  # or until this many new labelled rows arrived
    window: str = "sliding"  # training data: "sliding" (recent labelled batches) or
    # "expanding" (the baseline's reference rows plus every labelled batch)
    window_batches: int = 4  # batches in a sliding window
    start_at_change: bool = True  # train only on the rows after the latest significant
    # change in the champion's loss, once there are min_rows_after_change of them
    min_rows_after_change: int = 500
    change_level: float = 0.01  # significance level of the change-point test
    holdout_share: float = 0.3  # the most recent labelled rows, kept for the comparison
    metric: str = "auto"  # the gate's metric; auto: the primary metric, as chosen by
    # controller.statistics.performance.primary
    min_absolute_change: float = 0.0  # as in mlflow.models.MetricThreshold
    min_relative_change: float = 0.0
    guardrail_tolerance: float = 0.02  # how much worse any other metric may get
    confidence: float = 0.95
    promotion: str = "approval"  # "approval" (a person decides in the registry) or "auto"
    replace_challenger: str = "if_better"  # a challenger awaiting approval is replaced by a
    # newer one "if_better" (significantly, on the newer one's held-out rows), "always", "never"
    entry_point: str = ""  # an MLflow project entry point that trains the challenger
    project: str = "."  # the URI of that project


@dataclass(frozen=True)
class Alerts:
    """Where notifications go and how often (``controller.alerts``). Off by default."""

    webhook: str = ""  # its URL; a Slack webhook URL is a secret: never logged whole
    format: str = "json"  # "json" (driftctl's payload, schema v1) or "slack"
    smtp: str = ""  # smtp://host[:port] or smtps://host[:port]
    to: tuple[str, ...] = ()
    sender: str = ""  # the policy file's ``from``; default driftctl@<this host>
    repeat_after: str = "24h"  # an unresolved episode is sent again after this long
    recovery: bool = False  # a notice when an episode ends, as opt-in as Alertmanager's
    ui_url: str = ""  # the MLflow UI's base; default: the tracking URI when it is http(s)

    @property
    def enabled(self) -> bool:
        return bool(self.webhook or self.smtp)

    @property
    def repeat_seconds(self) -> float:
        return parse_duration(self.repeat_after)


@dataclass(frozen=True)
class Tracking:
    """A command's deadline and MLflow's retries of a request (``controller.tracking.deadline``)."""

    deadline: str = "30m"  # a command's wall clock, retries included; a run left RUNNING
    # longer than this has no live driftctl behind it, and the next cycle marks it failed
    retries: int = 2  # MLflow's retries of one request on a connection error or 5xx

    @property
    def deadline_seconds(self) -> float:
        return parse_duration(self.deadline)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``"90s"``, ``"30m"``, ``"24h"`` or ``"7d"`` (> 0);
    ValueError for anything else."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    seconds = float(match[1]) * _UNITS[match[2]] if match else 0.0
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a duration > 0 such as '30m', '24h' or '7d'")
    return seconds


@dataclass(frozen=True)
class Policy:
    """Validated monitoring policy. ``Policy()`` is the documented default."""

    fdr: float = 0.05
    false_alarm_rate: float = 0.01
    calibration_resamples: int = 500
    sample_size: int = 10_000
    seed: int = 0
    # Each default min_effect is sized to a shift of 0.1 standard deviations: in a numeric
    # feature's mean (normalised Wasserstein = the shift in sd), or in the mean of a category's
    # indicator (Jensen-Shannon distance ~ d / sqrt(8) for a shift of d sd).
    numeric: Rule = Rule("wasserstein", "ks", 0.1)
    categorical: Rule = Rule("jensen_shannon", "chi2", 0.035)
    boolean: Rule = Rule("jensen_shannon", "chi2", 0.035)
    features: dict[str, dict] = field(default_factory=dict)
    batches: Batches = Batches()
    quality: Quality = Quality()
    attribution: Attribution = Attribution()
    multivariate: Multivariate = Multivariate()
    retrain: Retrain = Retrain()
    alerts: Alerts = Alerts()
    tracking: Tracking = Tracking()

    def __post_init__(self):
        for name, lo, hi in (("fdr", 0, 1), ("false_alarm_rate", 0, 1)):
            value = getattr(self, name)
            if not _number(value) or not lo < value < hi:
                raise _bad("drift", name, f"a number in the range ({lo}, {hi})", value)
        # The calibrated quantile needs a few resamples beyond it to be more than the maximum.
        least = max(50, math.ceil(5 / self.false_alarm_rate))
        for name, lo in (("calibration_resamples", least), ("sample_size", 100), ("seed", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < lo:
                raise _bad("drift", name, f"an int in the range [{lo}, inf)", value)
        for name, lo in (("sample_size", 100), ("copy_max_rows", 0)):
            k = getattr(self.batches, name)
            if not isinstance(k, int) or isinstance(k, bool) or k < lo:
                raise _bad("batches", name, f"an int in the range [{lo}, inf)", k)
        if self.batches.rows not in ("auto", "copy", "pointer"):
            raise _bad("batches", "rows", "'auto', 'copy' or 'pointer'", self.batches.rows)
        for f in fields(Quality):  # each a share of rows: above 1, it could never alert
            value = getattr(self.quality, f.name)
            if not _number(value) or value > 1:
                raise _bad("quality", f.name, "a number in the range [0, 1]", value)
        for f in fields(Attribution):
            value = getattr(self.attribution, f.name)
            if f.type == "int" and (
                not isinstance(value, int) or isinstance(value, bool) or value < 10
            ):
                raise _bad("attribution", f.name, "an int in the range [10, inf)", value)
            if f.type == "float" and (not _number(value) or value > 1):
                raise _bad("attribution", f.name, "a number in the range [0, 1]", value)
        _check_multivariate(self.multivariate)
        for name in ("min_importance", "max_performance_drop", "cooldown_hours"):
            if not _number(getattr(self.retrain, name)):
                raise _bad("retrain", name, "a number >= 0", getattr(self.retrain, name))
        share = self.retrain.forecast_drift_share
        if not _number(share) or not 0 < share <= 1:
            raise _bad("retrain", "forecast_drift_share", "a number in the range (0, 1]", share)
        for name in ("consecutive_cycles", "window_batches", "cooldown_rows", "forecast_horizon"):
            k = getattr(self.retrain, name)
            if not isinstance(k, int) or isinstance(k, bool) or k < 1:
                raise _bad("retrain", name, "an int in the range [1, inf)", k)
        k, least = self.retrain.min_rows_after_change, 2 * MIN_SEGMENT
        if not isinstance(k, int) or isinstance(k, bool) or k < least:
            raise _bad("retrain", "min_rows_after_change", f"an int in the range [{least}, inf)", k)
        if not isinstance(self.retrain.start_at_change, bool):
            raise _bad("retrain", "start_at_change", "true or false", self.retrain.start_at_change)
        if self.retrain.cooldown not in ("event_time", "labelled_rows"):
            raise _bad(
                "retrain", "cooldown", "'event_time' or 'labelled_rows'", self.retrain.cooldown
            )
        if self.retrain.replace_challenger not in ("if_better", "always", "never"):
            raise _bad(
                "retrain",
                "replace_challenger",
                "'if_better', 'always' or 'never'",
                self.retrain.replace_challenger,
            )
        for name in ("min_absolute_change", "min_relative_change", "guardrail_tolerance"):
            if not _number(getattr(self.retrain, name)):
                raise _bad("retrain", name, "a number >= 0", getattr(self.retrain, name))
        for name in ("holdout_share", "confidence", "change_level"):
            value = getattr(self.retrain, name)
            if not _number(value) or not 0 < value < 1:
                raise _bad("retrain", name, "a number in the range (0, 1)", value)
        if self.retrain.window not in ("sliding", "expanding"):
            raise _bad("retrain", "window", "'sliding' or 'expanding'", self.retrain.window)
        if self.retrain.promotion not in ("approval", "auto"):
            raise _bad("retrain", "promotion", "'approval' or 'auto'", self.retrain.promotion)
        for name in ("entry_point", "project"):
            if not isinstance(getattr(self.retrain, name), str):
                raise _bad("retrain", name, "a string", getattr(self.retrain, name))
        metrics = ("auto", *dict.fromkeys(m for names in METRICS.values() for m in names))
        if self.retrain.metric not in metrics:
            raise _bad("retrain", "metric", f"one of {list(metrics)}", self.retrain.metric)
        _check_alerts(self.alerts)
        _check_tracking(self.tracking)
        for kind in catalog.KINDS:
            getattr(self, kind).check(kind, f"drift.{kind}")
        # A feature's kind is known only once a baseline is, so each override is checked
        # here against every kind, and against its feature's kind by ``rule``.
        _known(self.features, None, "[features]")
        for feature, overrides in self.features.items():
            _known(overrides, _rule_keys() | {"ignore"}, f"[features.{feature!r}]")
            replace(self.numeric, **overrides).check(None, f"features.{feature!r}")

    def rule(self, feature: str, kind: str) -> Rule:
        """The rule for one feature: its type's rule with the feature's overrides applied.

        Raises PolicyError when an override does not suit the feature's kind (a numeric
        statistic for a categorical feature, say).
        """
        overrides = self.features.get(feature, {})
        return replace(getattr(self, kind), **overrides).check(kind, f"features.{feature!r}")

    @classmethod
    def from_toml(cls, path: str | Path) -> Policy:
        """Load a policy file; unknown keys and bad values raise PolicyError."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise PolicyError(
                f"policy file {str(path)!r} does not exist",
                "pass the path of a TOML policy file, or leave out --policy for the defaults",
            ) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, IsADirectoryError) as exc:
            raise PolicyError(
                f"policy file {str(path)!r} is not valid TOML: {exc}",
                "fix the syntax; the README's policy reference shows every key",
            ) from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> Policy:
        """Build a policy from the tables of a policy file; unknown keys and bad values raise
        PolicyError."""
        tables = {
            "drift", "features", "batches", "quality", "attribution", "multivariate", "retrain",
            "alerts", "tracking",
        }
        _known(data, tables, "the top level")
        _known(data.get("drift", {}), None, "[drift]")
        drift = dict(data.get("drift", {}))
        kwargs = {}
        for kind in catalog.KINDS:
            if kind in drift:
                section = drift.pop(kind)
                _known(section, _rule_keys(), f"[drift.{kind}]")
                kwargs[kind] = replace(getattr(cls, kind), **section)
        sections = {
            "features", "batches", "quality", "attribution", "multivariate", "retrain", "alerts",
            "tracking",
        }
        _known(drift, {f.name for f in fields(cls)} - sections, "[drift]")
        kwargs.update(drift)
        features = data.get("features", {})
        batches = data.get("batches", {})
        _known(batches, {f.name for f in fields(Batches)}, "[batches]")
        quality = data.get("quality", {})
        _known(quality, {f.name for f in fields(Quality)}, "[quality]")
        attribution = data.get("attribution", {})
        _known(attribution, {f.name for f in fields(Attribution)}, "[attribution]")
        multivariate = data.get("multivariate", {})
        _known(multivariate, {f.name for f in fields(Multivariate)}, "[multivariate]")
        retrain = data.get("retrain", {})
        _known(retrain, {f.name for f in fields(Retrain)}, "[retrain]")
        _known(data.get("alerts", {}), {f.name for f in fields(Alerts)} - {"sender"} | {"from"},
               "[alerts]")
        alerts = dict(data.get("alerts", {}))
        if "from" in alerts:
            alerts["sender"] = alerts.pop("from")
        if isinstance(alerts.get("to"), list):
            alerts["to"] = tuple(alerts["to"])
        tracking = data.get("tracking", {})
        _known(tracking, {f.name for f in fields(Tracking)}, "[tracking]")
        return cls(
            features=features,
            batches=Batches(**batches),
            quality=Quality(**quality),
            attribution=Attribution(**attribution),
            multivariate=Multivariate(**multivariate),
            retrain=Retrain(**retrain),
            alerts=Alerts(**alerts),
            tracking=Tracking(**tracking),
            **kwargs,
        )


def _check_multivariate(m: Multivariate) -> None:
    where = "multivariate"
    if not isinstance(m.enabled, bool):
        raise _bad(where, "enabled", "true or false", m.enabled)
    for name, lo in (("sample_size", 100), ("classifier_rows", 50)):
        k = getattr(m, name)
        if not isinstance(k, int) or isinstance(k, bool) or k < lo:
            raise _bad(where, name, f"an int in the range [{lo}, inf)", k)
    if not _number(m.pca_variance) or not 0 < m.pca_variance <= 1:
        raise _bad(where, "pca_variance", "a number in the range (0, 1]", m.pca_variance)
    if not _number(m.min_error_increase):
        raise _bad(where, "min_error_increase", "a number >= 0", m.min_error_increase)
    if not _number(m.min_auc) or not 0.5 <= m.min_auc < 1:
        raise _bad(where, "min_auc", "a number in the range [0.5, 1)", m.min_auc)


def _check_alerts(a: Alerts) -> None:
    where = "alerts"
    for name in ("webhook", "format", "smtp", "sender", "repeat_after", "ui_url"):
        if not isinstance(getattr(a, name), str):
            raise _bad(where, "from" if name == "sender" else name, "a string",
                       getattr(a, name))
    if a.webhook and not _url(a.webhook, ("http", "https")):
        # The URL itself may hold a token (Slack's do): it is not repeated in the message.
        raise _bad(where, "webhook", "an http:// or https:// URL with a host", "<not shown>")
    if a.format not in ("json", "slack"):
        raise _bad(where, "format", "'json' or 'slack'", a.format)
    if a.smtp and not _url(a.smtp, ("smtp", "smtps"), path=False):
        raise _bad(where, "smtp", "smtp://host[:port] or smtps://host[:port]", a.smtp)
    if not isinstance(a.to, tuple) or not all(_address(t) for t in a.to):
        raise _bad(where, "to", "a list of e-mail addresses", a.to)
    if a.smtp and not a.to:
        raise _bad(where, "to", "a list of at least one e-mail address when smtp is set", [])
    if a.to and not a.smtp:
        raise _bad(where, "smtp", "smtp://host[:port] when to is set", a.smtp)
    if a.sender and not _address(a.sender):
        raise _bad(where, "from", "an e-mail address", a.sender)
    try:
        parse_duration(a.repeat_after)
    except ValueError:
        raise _bad(where, "repeat_after", "a duration > 0 such as '30m', '24h' or '7d'",
                   a.repeat_after) from None
    if not isinstance(a.recovery, bool):
        raise _bad(where, "recovery", "true or false", a.recovery)
    if a.ui_url and not _url(a.ui_url, ("http", "https")):
        raise _bad(where, "ui_url", "an http:// or https:// URL", a.ui_url)


def _check_tracking(t: Tracking) -> None:
    try:
        parse_duration(t.deadline)
    except ValueError:
        raise _bad("tracking", "deadline", "a duration > 0 such as '90s', '30m' or '2h'",
                   t.deadline) from None
    # MLflow refuses more than 10 retries (_MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT).
    if not isinstance(t.retries, int) or isinstance(t.retries, bool) or not 0 <= t.retries <= 10:
        raise _bad("tracking", "retries", "an int in the range [0, 10]", t.retries)


def _plain(value: str) -> bool:
    """Printable ASCII without spaces: what a URL or an e-mail address is sent as (a space,
    a line break or a non-ASCII character fails only at delivery, or splits a header)."""
    return value.isascii() and value.isprintable() and not any(c.isspace() for c in value)


def _address(value) -> bool:
    return isinstance(value, str) and _plain(value) and "@" in value


def _url(value: str, schemes: tuple[str, ...], path: bool = True) -> bool:
    if not _plain(value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return False
    return (
        parts.scheme in schemes
        and bool(parts.hostname)
        and (path or parts.path in ("", "/"))
    )


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _rule_keys() -> set[str]:
    return {"statistic", "test", "min_effect", "threshold"}


def _known(section: dict, allowed: set[str] | None, where: str) -> None:
    """Raise PolicyError unless ``section`` is a table whose keys are all ``allowed`` (any
    keys: None)."""
    if not isinstance(section, dict):
        raise PolicyError(
            f"{where} of the policy must be a table, got {section!r}",
            "write it as a [section] with key = value lines",
        )
    unknown = sorted(set(section) - allowed) if allowed is not None else []
    if unknown:
        raise PolicyError(
            f"unknown key(s) {unknown} in {where} of the policy",
            f"use only {sorted(allowed)}; the README's policy reference lists every key",
        )


def _bad(where: str, key: str, expected: str, got) -> PolicyError:
    return PolicyError(
        f"the {key!r} parameter of [{where}] must be {expected}. Got {got!r} instead",
        f"set {key} in [{where}] of the policy file to {expected}",
    )
