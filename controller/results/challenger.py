"""A challenger against the champion, in words: the terminal's text and the Markdown of the
version's description in the MLflow UI."""

from __future__ import annotations

from dataclasses import dataclass

from controller.statistics.comparison import Comparison, Decision


@dataclass(frozen=True)
class RetrainResult:
    run_id: str
    champion_version: str
    metric: str
    comparisons: tuple[Comparison, ...]
    decision: Decision
    n_train: int
    n_holdout: int
    holdout_digest: str
    version: str | None = None  # the registered version, when the challenger passed
    registry: tuple[str, ...] = ()  # what happened in the registry, in words
    reused: bool = False  # an earlier run for the same trigger or data was found
    training: str = ""  # which rows it was trained on, and why
    rival: str = ""  # the version waiting for approval when this one passed, if any
    rival_comparisons: tuple[Comparison, ...] = ()  # this one against the rival
    rival_decision: Decision | None = None  # whether this one replaces the rival

    @property
    def keeps_waiting(self) -> bool:
        """Another challenger waits for approval, and this one does not replace it."""
        return bool(self.rival) and not (self.rival_decision and self.rival_decision.passed)

    def markdown(self) -> str:
        """The comparison for the version's description in the MLflow UI."""
        return markdown(self)

    def render(self) -> str:
        return text(self)

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "passed": self.decision.passed,
            "reasons": list(self.decision.reasons),
            "comparisons": [c.__dict__ for c in self.comparisons],
            "champion_version": self.champion_version,
            "n_train": self.n_train,
            "n_holdout": self.n_holdout,
            "holdout_digest": self.holdout_digest,
            "training": self.training,
            "rival": self.rival,
            "rival_comparisons": [c.__dict__ for c in self.rival_comparisons],
            "rival_passed": self.rival_decision.passed if self.rival_decision else None,
            "rival_reasons": list(self.rival_decision.reasons) if self.rival_decision else [],
        }

    @classmethod
    def from_dict(cls, run_id: str, d: dict) -> RetrainResult:
        """The result an earlier run logged (``to_dict``), as reused."""
        rival = d.get("rival_passed")
        return cls(
            run_id,
            d["champion_version"],
            d["metric"],
            tuple(Comparison(**c) for c in d["comparisons"]),
            Decision(d["passed"], tuple(d["reasons"])),
            d["n_train"],
            d["n_holdout"],
            d["holdout_digest"],
            reused=True,
            training=d.get("training", ""),
            rival=d.get("rival", ""),
            rival_comparisons=tuple(Comparison(**c) for c in d.get("rival_comparisons", [])),
            rival_decision=None if rival is None else Decision(rival, tuple(d["rival_reasons"])),
        )


def table(result: RetrainResult, comparisons=None, names=("champion", "challenger")) -> list[str]:
    """The comparison as Markdown table rows."""
    rows = [
        f"| metric | {names[0]} | {names[1]} | better by | interval | method |",
        "|---|---:|---:|---:|---|---|",
    ]
    for c in result.comparisons if comparisons is None else comparisons:
        rows.append(
            f"| {c.metric} | {c.champion:.4f} | {c.challenger:.4f} | {c.improvement:+.4f} "
            f"| [{c.ci_low:+.4f}, {c.ci_high:+.4f}] | {c.method} |"
        )
    return rows


def rival_words(result: RetrainResult) -> str:
    """What the challenger means for the one waiting for approval, in words."""
    if not result.rival or result.rival_decision is None:
        return ""
    verb = "replaces" if result.rival_decision.passed else "does not replace"
    return f"this challenger {verb} version {result.rival}, waiting for approval: " + "; ".join(
        result.rival_decision.reasons
    )


def markdown(result: RetrainResult) -> str:
    """The comparison for the version's description in the MLflow UI."""
    verdict = "passed" if result.decision.passed else "failed"
    rival = []
    if result.rival:
        words = rival_words(result)
        rival = [
            "",
            f"**Against version {result.rival}**, the challenger that waited for approval, "
            "on the same rows:",
            "",
            *table(result, result.rival_comparisons, (f"version {result.rival}", "this one")),
            "",
            words[:1].upper() + words[1:] + ".",
        ]
    return "\n".join(
        [
            f"**Challenger of version {result.champion_version}** trained by driftctl on "
            f"{result.n_train} rows, compared with the champion on the same "
            f"{result.n_holdout} most recent labelled rows, held out from training "
            f"(digest `{result.holdout_digest[:12]}`).",
            *(["", f"Training rows: {result.training}."] if result.training else []),
            "",
            *table(result),
            "",
            f"Gate on **{result.metric}**: {verdict}.",
            *(f"- {r}" for r in result.decision.reasons),
            *rival,
            "",
            f"Run: `{result.run_id}`. Approve by setting the tag `approval` to `approved` "
            "(or `rejected`) on this version.",
        ]
    )


def text(result: RetrainResult) -> str:
    """The comparison, the gate's verdict and what happened in the registry, for the
    terminal."""
    lines = [
        f"challenger of version {result.champion_version}: trained on {result.n_train} "
        f"rows, compared on {result.n_holdout} held-out rows"
        + (" (found from an earlier run)" if result.reused else ""),
        *([f"training rows: {result.training}"] if result.training else []),
        f"{'metric':<10} {'champion':>9} {'challenger':>10} {'better by':>10}  "
        f"{'interval':<21} method",
    ]
    for c in result.comparisons:
        lines.append(
            f"{c.metric:<10} {c.champion:>9.4f} {c.challenger:>10.4f} "
            f"{c.improvement:>+10.4f}  [{c.ci_low:+.4f}, {c.ci_high:+.4f}]  "
            f"{c.method}"
        )
    verdict = "PASSED" if result.decision.passed else "FAILED"
    lines.append(f"gate on {result.metric}: {verdict}")
    lines.extend(f"  {r}" for r in result.decision.reasons)
    if result.rival:
        lines.append(rival_words(result))
    lines.append(f"logged to MLflow run {result.run_id}")
    lines.extend(result.registry)
    return "\n".join(lines)
