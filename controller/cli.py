"""The ``driftctl`` command line.

Findings are not failures. Exit status: 0 driftctl did its job, whatever it found (drift,
a data-quality alert, a challenger that failed its gate, a retrain that waits for labels:
those are tags and metrics in MLflow); 2 bad input or a missing model, alias, baseline or
batch; 3 an unexpected internal error. So a scheduler, or ``mlflow run``, marks a run
failed only when driftctl could not do its job.

For shell scripts, ``--exit-code`` (as in ``git diff --exit-code``) puts the verdict in the
exit status too: ``monitor`` and ``cycle`` exit 1 on drift and 4 on a data-quality alert
without drift, ``retrain`` exits 1 when the challenger fails its gate.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
import traceback
from functools import partial

from controller import _timing
from controller._errors import DriftctlError

EXIT_OK, EXIT_DRIFT, EXIT_INPUT, EXIT_INTERNAL, EXIT_QUALITY = 0, 1, 2, 3, 4
EXIT_GATE_FAILED = 1  # retrain --exit-code
VERDICT_EXIT = {"ok": EXIT_OK, "drift": EXIT_DRIFT, "quality": EXIT_QUALITY}


class ArgumentsError(DriftctlError):
    """A command line argparse refuses; ``command`` is the one it was given to."""

    def __init__(self, command: str, problem: str, fix: str):
        super().__init__(problem, fix)
        self.command = command


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in driftctl's shape: one message naming the problem and
    the fix, exit status 2. Without the usage block argparse prints first: for most
    commands it runs to four or more lines that bury the message, and the fix names the
    ``--help`` that shows it in full."""

    _commands = None  # the subcommands' action, on a parser that has some

    def add_subparsers(self, **kwargs):
        self._commands = super().add_subparsers(**kwargs)
        return self._commands

    def parse_args(self, args=None, namespace=None):
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            # argparse reports them on the top parser: blame the command they were given to.
            owner = self
            while owner._commands and getattr(parsed, owner._commands.dest, None):
                owner = owner._commands.choices[getattr(parsed, owner._commands.dest)]
            owner.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed

    def error(self, message: str):
        command = " ".join(self.prog.split()[1:2])  # webhook install's errors are webhook's
        see = f"see `{self.prog} --help`"
        commands = self._commands
        if commands is None or commands.metavar not in message:
            raise ArgumentsError(command, message, self._fix(message, see))
        # No command given, or one this parser does not have.
        names = list(commands.choices)
        given = re.search(r"invalid choice: '([^']*)'", message)
        problem = (f"{given[1]!r} is not a command of {self.prog}" if given
                   else f"{self.prog} needs a command")
        raise ArgumentsError(command, problem, _close(given and given[1], names)
                             + f"run one of: {', '.join(names)} ({see} for what each does)")

    def _fix(self, message: str, see: str) -> str:
        """The fix for one of argparse's messages (Python 3.11 to 3.13 word them alike)."""
        if m := re.search(r"argument (\S+): invalid choice: .*\(choose from (.*)\)$", message):
            return "pass " + " or ".join(f"{m[1]} {name}" for name in
                                         m[2].replace("'", "").split(", "))
        if m := re.search(r"argument (\S+): invalid (int|float) value", message):
            return f"pass {'a whole number' if m[2] == 'int' else 'a number'} to {m[1]} ({see})"
        if m := re.search(r"argument (\S+): expected .*argument", message):
            return f"give {m[1]} a value ({see})"
        if m := re.search(r"arguments are required: (.*)", message):
            return f"pass {m[1]} ({see})"
        if m := re.search(r"one of the arguments (.*) is required", message):
            return f"pass one of {', '.join(m[1].split())} ({see})"
        if m := re.search(r"argument (\S+): not allowed with argument (\S+)", message):
            return f"pass {m[2]} or {m[1]}, not both ({see})"
        if message.startswith("unrecognized arguments: "):
            options = [s for a in self._actions for s in a.option_strings]
            given = next((a for a in message.split()[2:] if a.startswith("-")), None)
            return _close(given and given.split("=")[0], options) + f"{see} for its options"
        return f"{see} for its options and the values they take"


def _close(given: str | None, names: list[str]) -> str:
    """``did you mean 'x'? `` when ``given`` looks like a misspelt one of ``names``."""
    match = difflib.get_close_matches(given, names, n=1) if given else []
    return f"did you mean {match[0]!r}? " if match else ""


def _common(default=None) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--tracking-uri",
        default=default,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else MLflow's default, "
        "the local sqlite store ./mlflow.db)",
    )
    return common


def _model(p: argparse.ArgumentParser, which: bool = True) -> None:
    p.add_argument("--model", required=True, help="registered model name")
    if which:
        g = p.add_mutually_exclusive_group()
        g.add_argument("--version", help="model version (default: the version behind --alias)")
        g.add_argument("--alias", help="model alias (default: champion)")


def _policy_arg(p: argparse.ArgumentParser, more: str = " (default: built-in defaults)"):
    p.add_argument("--policy", help="TOML policy file" + more)


def _exit_code_arg(p: argparse.ArgumentParser, meaning: str) -> None:
    p.add_argument(
        "--exit-code",
        action="store_true",
        help=f"put the verdict in the exit status too: {meaning} (default: exit 0 whatever "
        "was found; findings are in MLflow)",
    )


def _engine(p: argparse.ArgumentParser, what: str) -> None:
    """--engine, and --data or --table: where the rows come from and what reads them."""
    p.add_argument(
        "--engine",
        choices=("pandas", "spark"),
        default="pandas",
        help="what reads and profiles the data: pandas in this process (default), or Spark "
        "on its executors (pip install 'driftctl[spark]'; a parquet file or directory, or "
        "a table)",
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--data", help=f"{what} (parquet or CSV; with --engine spark, parquet)")
    g.add_argument("--table", help="a table of the Spark catalog (with --engine spark)")


def parser() -> argparse.ArgumentParser:
    # Accepted before or after the command; SUPPRESS keeps a subcommand from resetting it.
    common = _common(argparse.SUPPRESS)
    top = _Parser(
        prog="driftctl",
        description="Watch MLflow-registered models for drift, retrain, and promote "
        "challengers through the model registry.",
        epilog="Exit status: 0 when driftctl did its job, whatever it found (findings are "
        "tags and metrics in MLflow), 2 bad input, 3 internal error. With --exit-code, "
        "monitor and cycle exit 1 on drift and 4 on a data-quality alert without drift, "
        "and retrain exits 1 when the challenger fails its gate.",
        parents=[_common()],
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "baseline",
        parents=[common],
        help="record a training baseline for a registered model version",
        description="Record the training baseline "
        "of a registered model version that was logged without one.",
    )
    _model(p)
    _engine(p, "training or validation data")
    p.add_argument("--target", help="label column; enables validation performance")
    p.add_argument(
        "--prediction-col",
        help="column with the model's predictions (default: predict with the model)",
    )
    p.add_argument("--exclude", nargs="*", default=[], help="columns that are not features")
    p.add_argument(
        "--sample-size",
        type=int,
        default=10_000,
        help="rows kept as the reference sample (default: 10000)",
    )
    p.add_argument(
        "--spark-sample-size",
        type=int,
        default=100_000,
        help="with --engine spark: rows of a uniform sample brought to the driver, from "
        "which the bins, the reference sample and the attributions are made; the bins' "
        "counts are then taken over every row (default: 100000)",
    )

    p = sub.add_parser(
        "log-batch",
        parents=[common],
        help="log a batch of production data",
        description="Log a batch of inference inputs (and predictions) as an "
        "MLflow run. Without --prediction-col the champion predicts.",
    )
    _model(p, which=False)
    _engine(p, "batch file")
    p.add_argument("--id-col", help="row id column, used to join late labels")
    p.add_argument("--timestamp-col", help="event time column (default: time of logging)")
    p.add_argument(
        "--prediction-col",
        help="column with the predictions served (default: a column named 'prediction' if "
        "there is one, else the champion predicts)",
    )
    p.add_argument("--target", help="label column, if labels are already known")
    _policy_arg(p, " ([batches] sample_size: rows kept as the batch's sample)")

    p = sub.add_parser(
        "log-labels",
        parents=[common],
        help="log labels that arrived late",
        description="Log ground-truth labels for rows of earlier batches.",
    )
    _model(p, which=False)
    _engine(p, "labels file")
    p.add_argument("--id-col", required=True, help="row id column, as in the batches")
    p.add_argument("--target", required=True, help="label column")

    p = sub.add_parser(
        "monitor",
        parents=[common],
        help="run one monitoring cycle",
        description="Compare a production window with the champion's "
        "baseline and log the findings as one MLflow run.",
    )
    _model(p)
    w = p.add_mutually_exclusive_group()
    w.add_argument("--last", type=int, help="the last N batches (default: 1)")
    w.add_argument("--since", help="window start, ISO 8601 (inclusive)")
    p.add_argument("--until", help="window end, ISO 8601 (exclusive)")
    _policy_arg(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _exit_code_arg(p, "1 drift, 4 a data-quality alert without drift")

    p = sub.add_parser(
        "retrain",
        parents=[common],
        help="refit a challenger and compare it with the champion",
        description="Refit a clone of the champion on the policy's training window, "
        "compare both on the same held-out recent rows, and log the challenger with its "
        "baseline. Exit status 0 whether the challenger passes the gate or not (the verdict "
        "is the tag driftctl.gate), 2 when it cannot be built (too few labelled rows, say).",
    )
    _model(p, which=False)
    _policy_arg(p)
    p.add_argument("--trigger-run", default="", help="monitor run that triggered this")
    p.add_argument(
        "--entry-point",
        help="train with this entry point of your MLflow project instead of refitting a "
        "clone of the champion (default: [retrain] entry_point of the policy)",
    )
    p.add_argument("--project", help="URI of that MLflow project (default: [retrain] project)")
    _exit_code_arg(p, "1 when the challenger fails its gate")

    p = sub.add_parser(
        "promote",
        parents=[common],
        help="carry out what was decided in the registry",
        description="Promote an approved challenger (tag approval=approved on its version), "
        "drop a rejected one, record a champion alias moved by hand, and finish any "
        "promotion a crash left half-done. Never approves on anyone's behalf.",
    )
    _model(p, which=False)
    _policy_arg(p, "; [retrain] promotion = auto promotes the challenger without approval")

    p = sub.add_parser(
        "rollback",
        parents=[common],
        help="move champion back to previous-champion",
        description="Move the champion alias back to the previous-champion version, "
        "recorded in the registry ledger like any promotion.",
    )
    _model(p, which=False)
    p.add_argument("--reason", default="", help="why, for the record")

    p = sub.add_parser(
        "cycle",
        parents=[common],
        help="promote, monitor, and retrain when the policy says so",
        description="One pass for a scheduler: carry out registry decisions, monitor the "
        "newest batches unless nothing is new, and when the cycle triggers it, retrain, "
        "evaluate and register a challenger. Rerunning it changes nothing. Exit status 0 "
        "whatever it found, also when the retrain it triggered must wait for labels (the "
        "monitor run's tag driftctl.retrain is then 'waiting'; the next cycle with new "
        "batches or labels tries again).",
    )
    _model(p, which=False)
    p.add_argument("--last", type=int, help="monitor the last N batches (default: 1)")
    _policy_arg(p)
    _exit_code_arg(p, "1 drift, 4 a data-quality alert without drift, in the window monitored")

    p = sub.add_parser(
        "serve",
        parents=[common],
        help="act on approvals at once: receive MLflow's registry webhooks",
        description="Receive MLflow's registry webhooks (POST /mlflow-webhook, signed with "
        "$DRIFTCTL_WEBHOOK_SECRET) and, on an approval tag or a new version of the model, "
        "carry out what was decided as `driftctl promote` does; with --every, run `driftctl "
        "cycle` on that schedule too. One action at a time; GET /health reports the state. "
        "SIGTERM or SIGINT stops it once the action in progress is done (exit 0).",
    )
    _model(p, which=False)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: "
                   "127.0.0.1; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8787, help="port to listen on (default: 8787)")
    p.add_argument("--every", help="also run a cycle at start and then at this interval: 90s, "
                   "30m, 1h (default: no schedule; webhooks only)")
    _policy_arg(p)

    p = sub.add_parser(
        "webhook",
        parents=[common],
        help="manage the MLflow webhook that calls driftctl serve",
        description="Manage the MLflow registry webhook that calls `driftctl serve`. "
        "MLflow calls webhooks only from a tracking server (`mlflow server`) with a SQL store.",
    )
    hooks = p.add_subparsers(dest="webhook_command", required=True, metavar="ACTION")
    h = hooks.add_parser(
        "install",
        parents=[common],
        help="create the webhook driftctl-<model>, or point it at --url",
        description="Create the webhook driftctl-<model> for the events model_version_tag.set "
        "and model_version.created, signed with $DRIFTCTL_WEBHOOK_SECRET. Rerunning with the "
        "same --url changes nothing; a new --url updates the webhook (and sets its secret "
        "again, which MLflow never returns).",
    )
    _model(h, which=False)
    h.add_argument("--url", required=True,
                   help="where driftctl serve listens, e.g. http://HOST:8787/mlflow-webhook")
    h.add_argument("--update-secret", action="store_true",
                   help="set the secret again even when the URL is unchanged (after changing "
                   "$DRIFTCTL_WEBHOOK_SECRET)")

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="play a credit-scoring scenario through the whole loop",
        description="Train and register a credit model, then play weekly batches (labels a "
        "week late; incomes fall and loans grow from week 4; the approval rule changes in "
        "week 8) through `driftctl cycle`, approving challengers on your behalf. Each run "
        "starts over: it deletes the 'credit-demo' model and the runs an earlier demo left "
        "in 'driftctl-credit-demo'.",
    )
    p.add_argument("--weeks", type=int, default=10, help="weeks of production (default: 10)")
    p.add_argument("--rows", type=int, default=2000, help="rows per week (default: 2000)")
    return top


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except ArgumentsError as exc:
        _say(exc.command, exc)
        return EXIT_INPUT
    except SystemExit as exc:  # --help, which has printed it
        return exc.code
    # An MLflow project passes every parameter; an empty one means "not given".
    for key, value in vars(args).items():
        if value == "":
            setattr(args, key, None)
    # Progress bars for every small artifact download drown the command's own output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow prints run links to stdout, which must stay clean for --json.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    with _timing.phase("imports"):
        from controller import tracking  # after parsing, so that --help answers at once
        from controller.policy import Policy

    if args.tracking_uri:
        tracking.set_tracking_uri(args.tracking_uri)
    watchdog, code = None, EXIT_INTERNAL
    try:
        # An error MLflow reports (an unreachable server, say) is a DriftctlError too.
        with tracking.translated_errors():
            # The policy's deadline bounds the command, MLflow's retries included: a
            # scheduled job fails with one error, and never hangs, when the server is gone.
            path = getattr(args, "policy", None)
            limits = (Policy.from_toml(path) if path else Policy()).tracking
            tracking.apply_http_settings(limits.deadline_seconds, limits.retries)
            if args.command != "serve":  # a server runs until it is stopped
                watchdog = tracking.Watchdog(limits.deadline_seconds, args.command, EXIT_INPUT)
                watchdog.start()
            code = _run(args)
    except DriftctlError as exc:
        _say(args.command, exc, partial(tracking.redact, uri=tracking.tracking_uri()))
        code = EXIT_INPUT
    except KeyboardInterrupt:
        code = 130
    except Exception:
        # An HTTP library's message quotes URLs, with the user-info the tracking URI holds.
        print(tracking.redact(traceback.format_exc(), tracking.tracking_uri()), end="",
              file=sys.stderr)
        print(
            f"driftctl {args.command}: internal error (a bug: please report it with the "
            "trace above)",
            file=sys.stderr,
        )
        code = EXIT_INTERNAL
    finally:
        if watchdog is not None:
            # Run as the command, the watchdog goes on bounding the exit handlers (MLflow
            # ends an active run at exit); called from Python, it stops with the call.
            watchdog.settle(code) if argv is None else watchdog.cancel()
        _timing.write()
    return code


def _run(args) -> int:
    with _timing.phase("imports"):
        from controller import tracking
        from controller.inputs import batches
        from controller.inputs.tables import read_table

    # Under basic-auth, a command the server would refuse half-way is refused before it writes.
    tracking.check_permissions(args.command, getattr(args, "model", None) or "")
    if args.command == "baseline":
        from controller.profiles.build import build_baseline

        # A reference sample smaller than the policy's smallest sample calibrates nothing.
        _at_least("--sample-size", args.sample_size, 100, "the rows to keep, e.g. 10000")
        _at_least("--spark-sample-size", args.spark_sample_size, 100,
                  "the rows to sample, e.g. 100000")
        spark = batches.spark_engine(args.engine, args.data, args.table)
        mv = tracking.resolve_version(args.model, version=args.version, alias=args.alias)
        if spark is not None:
            frame, _ = spark.read(args.data, args.table)
            data = spark.baseline_rows(frame, args.spark_sample_size)
        else:
            data = read_table(args.data)
        preds = None
        exclude = tuple(args.exclude)
        if args.prediction_col:
            if args.prediction_col not in data.columns:
                raise DriftctlError(
                    f"--prediction-col {args.prediction_col!r} is not in the data",
                    "pass the name of the prediction column",
                )
            preds = data[args.prediction_col].to_numpy()
            exclude += (args.prediction_col,)
        model = tracking.load_model(mv) if preds is None else None
        # Built before any run exists: bad input leaves nothing in MLflow.
        baseline = build_baseline(
            data,
            model=model,
            target=args.target,
            predictions=preds,
            exclude=exclude,
            sample_size=args.sample_size,
        )
        if args.engine == "spark":  # the bins from the sample, their counts from every row
            baseline = spark.recount(baseline, frame)
        tags = {
            tracking.KIND: "baseline",
            tracking.MODEL: args.model,
            tracking.VERSION: str(mv.version),
        }
        with tracking.atomic_run(
            tracking.experiment_id(args.model), f"baseline v{mv.version}", tags
        ) as run:
            tracking.save_baseline(baseline, run.info.run_id)
            tracking.link_baseline(mv, run.info.run_id)
        print(
            f"baseline of {args.model} version {mv.version}: {len(baseline.features)} "
            f"features, {baseline.n_rows} rows, run {run.info.run_id}"
        )
        return EXIT_OK

    if args.command == "log-batch":
        run_id = batches.log_batch(
            args.model,
            args.data,
            id_col=args.id_col,
            timestamp_col=args.timestamp_col,
            prediction_col=args.prediction_col,
            target=args.target,
            policy=_policy(args),
            engine=args.engine,
            table=args.table,
        )
        print(f"logged batch of {args.model} as run {run_id}")
        return EXIT_OK

    if args.command == "log-labels":
        run_id = batches.log_labels(
            args.model,
            args.data,
            id_col=args.id_col,
            target=args.target,
            engine=args.engine,
            table=args.table,
        )
        tags = tracking.get_run(run_id).data.tags
        matched, left = tags[batches.MATCHED], tags[batches.UNMATCHED]
        print(
            f"logged labels of {args.model} as run {run_id}: {matched} matched to their "
            f"batches"
            + (
                f", {left} whose id no batch holds (log their batch, then these labels again)"
                if left != "0"
                else ""
            )
        )
        return EXIT_OK

    if args.command == "monitor":
        with _timing.phase("imports"):
            from controller.loop.cycle import monitor, summary_json

        _check_last(args.last)
        _check_window(args.since, args.until)
        if args.last is not None and args.until:
            raise DriftctlError(
                "--last cannot be combined with --until",
                "choose the window by count (--last N) or by time (--since T --until T)",
            )
        policy = _policy(args)
        report = monitor(
            args.model,
            alias=args.alias,
            version=args.version,
            last=args.last,
            since=args.since,
            until=args.until,
            policy=policy,
        )
        print(summary_json(report) if args.json else report.render())
        return VERDICT_EXIT[report.verdict] if args.exit_code else EXIT_OK

    if args.command == "retrain":
        from dataclasses import replace

        from controller.loop.retrain import retrain

        policy = _policy(args)
        overrides = {k: getattr(args, k) for k in ("entry_point", "project") if getattr(args, k)}
        policy = replace(policy, retrain=replace(policy.retrain, **overrides))
        result = retrain(args.model, policy=policy, trigger_run=args.trigger_run or "")
        print(result.render())
        return EXIT_GATE_FAILED if args.exit_code and not result.decision.passed else EXIT_OK

    if args.command == "promote":
        from controller.loop.cycle import promote

        said = promote(args.model, _policy(args))
        said = said or [f"nothing to do for {args.model}"]
        _record_in_project_run("promote", args.model, said)
        print("\n".join(said))
        return EXIT_OK

    if args.command == "rollback":
        from controller.loop import registry

        said = registry.rollback(args.model, args.reason or "requested with driftctl rollback")
        _record_in_project_run("rollback", args.model, said)
        print("\n".join(said))
        return EXIT_OK

    if args.command == "cycle":
        from controller.loop.cycle import cycle

        _check_last(args.last)
        result = cycle(args.model, last=args.last, policy=_policy(args))
        # When nothing was monitored or retrained, the project's run records the cycle.
        _record_in_project_run("cycle", args.model, result.render().splitlines())
        print(result.render())
        return VERDICT_EXIT.get(result.verdict, EXIT_OK) if args.exit_code else EXIT_OK

    if args.command == "serve":
        from controller.service import serve
        from controller.service.run import parse_every

        if not 0 <= args.port <= 65535:
            raise DriftctlError(
                f"--port must be a TCP port from 0 to 65535, got {args.port}",
                "pass a free port, e.g. --port 8787 (0: any free port)",
            )
        if args.every is not None:
            parse_every(args.every)
        serve(args.model, host=args.host, port=args.port, every=args.every,
              policy=_policy(args))
        return EXIT_OK

    if args.command == "webhook":
        from controller.service import install

        print(install(args.model, args.url, update_secret=args.update_secret))
        return EXIT_OK

    if args.command == "demo":
        from controller.demo.run import run_demo

        _at_least("--weeks", args.weeks, 1, "the weeks of production to play, e.g. 10")
        _at_least("--rows", args.rows, 100, "the rows of each week, e.g. 2000")
        run_demo(weeks=args.weeks, rows=args.rows)
        return EXIT_OK
    raise AssertionError(args.command)


def _say(command: str, exc: DriftctlError, shown=str) -> None:
    """The one message of an error the user can fix, as ``shown`` (redacted) shows it."""
    name = f"driftctl {command}" if command else "driftctl"
    print(shown(f"{name}: error: {exc.problem}\n  fix: {exc.fix}"), file=sys.stderr)


def _record_in_project_run(kind: str, model: str, lines: list[str]) -> None:
    """Under ``mlflow run``, log what a command did into the project's run, unless driftctl
    already logged into it: no empty wrapper runs."""
    run_id = os.environ.get("MLFLOW_RUN_ID")  # MLflow removes it once a run resumed it
    if not run_id:
        return
    from controller import tracking

    tracking.set_run_tag(run_id, tracking.KIND, kind)
    tracking.set_run_tag(run_id, tracking.MODEL, model)
    tracking.set_run_tag(run_id, tracking.TAG + "outcome", "; ".join(lines)[:4000])
    tracking.log_text(run_id, "\n".join(lines) + "\n", f"driftctl/{kind}.txt")


def _policy(args):
    from controller.policy import Policy

    return Policy.from_toml(args.policy) if args.policy else Policy()


def _at_least(flag: str, value: int | None, least: int, what: str) -> None:
    """An integer argument below its least value is bad input, not a crash later on."""
    if value is not None and value < least:
        raise DriftctlError(f"{flag} must be at least {least}, got {value}", f"pass {what}")


def _check_last(last: int | None) -> None:
    _at_least("--last", last, 1, "the number of recent batches to monitor")


def _check_window(since: str | None, until: str | None) -> None:
    """``--since`` and ``--until`` must be dates, the second after the first."""
    from controller.loop.window import _range

    lo, hi = _range(since, until)
    if lo is not None and hi is not None and hi <= lo:
        raise DriftctlError(
            f"--until {until} is not after --since {since}: the window is empty",
            "swap them, or pass an --until later than --since",
        )


def entry() -> None:
    code = main()
    # Freeing every object of MLflow, scikit-learn and shap at exit costs over a second, as
    # much as a cycle's statistics. The work is done: wait for threads and run the exit
    # handlers as the interpreter would (runs end, logs flush), then leave without the
    # teardown.
    import atexit
    import threading

    threading._shutdown()
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader left (``driftctl monitor | head``): nothing to say
        pass
    os._exit(code)


if __name__ == "__main__":
    entry()
