"""The cycle's report as one self-contained HTML page, for people who will not read JSON.

Verdict in one sentence, features sorted by importance-weighted drift, the data-quality
alerts with what each means, the baseline and
production distributions of the drifted features, the attribution shift chart, performance
over the cycles with its forecast, when the floors are forecast to be crossed, performance
estimated before labels arrive, and the comparison of a
challenger built in the cycle (or why the retrain the cycle triggered waits). Charts are
inline SVG (``charts``) and styles inline CSS: the page needs no network and no script.
"""

from __future__ import annotations

from html import escape

import pandas as pd

from controller.profiles.baseline import Baseline
from controller.results import charts
from controller.results.report import ADVICE, Report, describe
from controller.statistics.performance import primary

MAX_PLOTS = 6
# The page may load nothing but its own inline images and styles.
_NO_NETWORK = (
    '<meta http-equiv="Content-Security-Policy" '
    "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
)
_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
.verdict{font-size:1.15em;padding:.8em 1em;border-radius:6px;background:#eef6ee}
.verdict.drift{background:#fdecea}.verdict.quality{background:#fff5e0}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 10px;border-bottom:1px solid #eee}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.drift td{background:#fdecea}
svg{max-width:100%;height:auto}.plots svg{width:48%;margin:1%}
"""


def render_html(
    report: Report,
    baseline: Baseline,
    window: pd.DataFrame,
    performance_history: list[tuple[str, float]] = (),
    challenger=None,
    retrain_waiting: str = "",
) -> str:
    """The page for one cycle. ``performance_history`` is (window end, value) of the primary
    metric over earlier cycles; ``challenger`` a ``RetrainResult`` built in this cycle;
    ``retrain_waiting`` why the retrain this cycle triggered could not run yet."""
    ctx = report.context
    title = f"driftctl: {ctx.get('model', '')} version {ctx.get('version', '')}"
    alarm = "drift" if report.retrain and report.retrain.called else report.verdict
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="verdict {escape(alarm)}" id="verdict">{escape(sentence(report))}</p>',
        *([_triage(report.triage)] if report.triage else []),
        "<h2>Features, by importance-weighted drift</h2>",
        _feature_table(report, baseline),
    ]
    if report.quality_alerts:
        parts.append("<h2>Data-quality alerts</h2>" + _quality_table(report))
    if report.multivariate:
        parts.append("<h2>Drift no single feature shows</h2>" + _multivariate_table(report))
    drifted = [f for f in report.features if f.drifted][:MAX_PLOTS]
    if drifted:
        parts.append("<h2>Distributions of the drifted features</h2><div class=plots>")
        for f in drifted:
            parts.append(_distribution(f.feature, baseline, window))
        parts.append("</div>")
    if report.attribution:
        parts.append("<h2>Attribution shift</h2>")
        parts.append(attribution_chart(report))
    metric = primary(report.performance)
    if metric:
        points = [*performance_history, (ctx.get("window_end", "now"), report.performance[metric])]
        ahead = next(
            (f for f in report.forecasts
             if f.series == "performance" and f.measure == metric and f.available),
            None,
        )
        parts.append(f"<h2>Performance over time ({escape(metric)})</h2>")
        parts.append(
            charts.line(
                f"{metric} per cycle" + (", and its forecast" if ahead else ""),
                [str(t)[:10] for t, _ in points],
                [v for _, v in points],
                baseline.performance.get(metric),
                metric,
                forecast=(ahead.mean, ahead.lower, ahead.upper) if ahead else None,
                floor=ahead.floor if ahead else None,
            )
        )
    if report.forecasts:
        parts.append("<h2>A forecast of when to retrain</h2><ul id=forecast>")
        parts.extend(f"<li>{escape(f.describe())}</li>" for f in report.forecasts)
        parts.append(
            "</ul><p>Holt's linear trend (ETS(A,A,N)) fitted to the cycles of this version; "
            "cycles ahead to the floor by the forecast's mean, with the 90% interval's "
            "pessimistic and optimistic bounds. A forecast is evidence for a retrain, never a "
            "reason on its own.</p>"
        )
    if report.estimated:
        parts.append("<h2>Performance before labels arrive (estimated)</h2>")
        parts.append(_estimated_table(report))
    if challenger is not None:
        parts.append("<h2>Challenger against champion</h2>" + _comparison(challenger))
    if retrain_waiting:
        parts.append(
            "<h2>Retrain waiting</h2><p id=retrain-waiting>The retrain this cycle triggered "
            f"could not run yet: {escape(retrain_waiting)}. The next cycle with new batches or "
            "labels tries again.</p>"
        )
    if report.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts.extend(f"<li>{escape(n)}</li>" for n in report.notes)
        parts.append("</ul>")
    body = "\n".join(parts)
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>{_NO_NETWORK}"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>\n{body}\n"
        "</body></html>\n"
    )


def _triage(t) -> str:
    """The cycle's triage class, its evidence, and what each class means."""
    evidence = "".join(f"<li>{escape(e)}</li>" for e in t.evidence)
    legend = "".join(
        f'<tr{" class=drift" if kind == t.kind else ""}><td>{escape(kind)}</td>'
        f"<td>{escape(advice)}</td></tr>"
        for kind, advice in ADVICE.items()
    )
    return (
        f'<h2>What this means: <span id="triage">{escape(t.kind)}</span></h2>'
        f"<p>{escape(t.advice)}</p>"
        + (f"<ul id=evidence>{evidence}</ul>" if evidence else "")
        + f"<details><summary>The classes</summary><table>{legend}</table></details>"
    )


def sentence(report: Report) -> str:
    """The verdict in one sentence."""
    ctx = report.context
    span = (
        f" from {ctx['window_start'][:10]} to {ctx['window_end'][:10]}"
        if "window_start" in ctx
        else ""
    )
    n = len(report.features)
    if report.drifted:
        text = (
            f"Drift in {len(report.drifted)} of {n} features ({', '.join(report.drifted)}) "
            f"over {report.n_rows:,} rows{span}"
        )
    else:
        text = f"No drift in {n} features over {report.n_rows:,} rows{span}"
    if report.multivariate_drifted:
        text += (
            f"; multivariate drift ({', '.join(report.multivariate_drifted)}): the features "
            "changed in how they go together"
        )
    metric = primary(report.performance)
    if metric:
        base = report.baseline_performance.get(metric)
        text += f"; {metric} {report.performance[metric]:.3f}" + (
            f" against {base:.3f} at the baseline" if base is not None else ""
        )
    if report.quality_alerts:
        text += f"; {len(report.quality_alerts)} data-quality alert(s)"
    if report.retrain and report.retrain.triggered:
        text += "; retraining triggered"
    elif report.retrain and report.retrain.called:
        text += f"; retraining called for but held back ({report.retrain.held_back})"
    return text + "."


def _feature_table(report: Report, baseline: Baseline) -> str:
    shares = baseline.attribution.get("share") or {}
    even = 1 / max(len(report.features), 1)
    rows = []
    for f in report.features:
        share = shares.get(f.feature, even)
        weighted = (f.value / f.threshold if f.threshold else 0.0) * share
        rows.append((weighted, share, f))
    rows.sort(key=lambda r: -r[0])
    out = [
        "<table id=features><tr><th>feature</th><th>type</th><th>statistic</th><th>value</th>"
        "<th>threshold</th><th>p (BH)</th><th>attribution share</th>"
        "<th>weighted drift</th><th>verdict</th></tr>"
    ]
    for weighted, share, f in rows:
        out.append(
            f"<tr class={'drift' if f.drifted else 'ok'}><td>{escape(f.feature)}</td>"
            f"<td>{f.kind}</td><td>{f.statistic}</td><td class=n>{f.value:.4f}</td>"
            f"<td class=n>{f.threshold:.4f}</td><td class=n>{f.q_value:.2g}</td>"
            f"<td class=n>{share:.3f}</td><td class=n>{weighted:.3f}</td>"
            f"<td>{'DRIFT' if f.drifted else 'ok'}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


# What each data-quality check found, in words; {value} and {limit} are the figures.
QUALITY_MEANING = {
    "missing_rate_change": "{value:.1%} more of the rows lack a value than in the baseline "
    "(limit {limit:.1%}): a field or a join upstream may have broken.",
    "out_of_range_share": "{value:.1%} of the values lie outside the range seen in the "
    "baseline (limit {limit:.1%}): a change of unit or scale, or inputs beyond anything the "
    "model learned from.",
    "unseen_share": "{value:.1%} of the values are categories the baseline never held "
    "(limit {limit:.1%}): a new or renamed code, which the model has not learned.",
    "infinite_share": "{value:.1%} of the values are infinite, which no real quantity is: "
    "a division by zero or an overflow upstream.",
    "missing_column": "The column is missing from the production data: the model gets no "
    "value for it.",
    "extra_column": "The production data has a column the baseline does not: harmless to "
    "the model, but a sign that the data's schema changed.",
    "type_mismatch": "The column's type differs from the baseline's (numbers became text, "
    "or the reverse): its values are no longer read as they were in training.",
}


def _quality_table(report: Report) -> str:
    """One row per data-quality alert: the column, the check, what was observed against
    its limit, and what it means."""
    out = [
        "<table id=quality><tr><th>column</th><th>check</th><th>observed</th>"
        "<th>limit</th><th>what it means</th></tr>"
    ]
    for q in report.quality_alerts:
        limit = "any" if q.threshold is None else f"{q.threshold:.4g}"
        meaning = QUALITY_MEANING.get(q.check, "")
        out.append(
            f"<tr class=drift><td>{escape(q.feature)}</td><td>{escape(q.check)}</td>"
            f"<td class=n>{q.value:.4g}</td><td class=n>{limit}</td>"
            f"<td>{escape(meaning.format(value=q.value, limit=q.threshold or 0.0))}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def _multivariate_table(report: Report) -> str:
    out = [
        "<table id=multivariate><tr><th>detector</th><th>value</th><th>without drift</th>"
        "<th>threshold</th><th>relied on</th><th>verdict</th></tr>"
    ]
    for m in report.multivariate:
        out.append(
            f"<tr class={'drift' if m.drifted else 'ok'}><td>{m.method}</td>"
            f"<td class=n>{m.value:.4f}</td><td class=n>{m.baseline:.4f}</td>"
            f"<td class=n>{m.threshold:.4f}</td>"
            f"<td>{escape(describe(m)) if m.importance else ''}</td>"
            f"<td>{'DRIFT' if m.drifted else 'ok'}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def attribution_chart(report: Report) -> str:
    """The attribution shift chart (SVG), also logged on its own with the cycle."""
    a = report.attribution
    return charts.attribution(a.features, a.ndcg, a.total_shift)


def _distribution(feature: str, baseline: Baseline, window: pd.DataFrame) -> str:
    ref, cur = baseline.reference[feature], window[feature]
    if baseline.features[feature].kind == "numeric":
        return charts.histogram(
            feature,
            pd.to_numeric(ref, errors="coerce").to_numpy(dtype=float),
            pd.to_numeric(cur, errors="coerce").to_numpy(dtype=float),
        )
    a = ref.astype(str).value_counts(normalize=True)
    b = cur.astype(str).value_counts(normalize=True)
    top = (a.add(b, fill_value=0)).sort_values(ascending=False).index[:12]
    return charts.bars(
        feature,
        [str(t) for t in top],
        [
            ("baseline", a.reindex(top, fill_value=0).to_numpy(), charts.BASELINE),
            ("production", b.reindex(top, fill_value=0).to_numpy(), charts.PRODUCTION),
        ],
    )


def _estimated_table(report: Report) -> str:
    """Estimated performance (CBPE) beside the realised one and the baseline's."""

    def cell(value) -> str:
        return f"<td class=n>{value:.4f}</td>" if value is not None else "<td class=n>-</td>"

    out = [
        "<table id=estimated><tr><th>metric</th><th>estimated</th><th>95% band</th>"
        "<th>realised</th><th>baseline</th></tr>"
    ]
    for name, (value, low, high) in report.estimated.items():
        out.append(
            f"<tr><td>{escape(name)}</td>{cell(value)}<td>[{low:.4f}, {high:.4f}]</td>"
            f"{cell(report.performance.get(name))}"
            f"{cell(report.baseline_performance.get(name))}</tr>"
        )
    out.append(
        "</table><p>Estimated from the window's scores, calibrated on the baseline's labelled "
        "rows; it holds while the relation between inputs and labels is unchanged, and "
        "only labels reveal a concept drift.</p>"
    )
    return "".join(out)


def _comparison(result) -> str:
    out = [
        "<table id=comparison><tr><th>metric</th><th>champion</th><th>challenger</th>"
        "<th>better by</th><th>interval</th><th>method</th></tr>"
    ]
    for c in result.comparisons:
        out.append(
            f"<tr><td>{c.metric}</td><td class=n>{c.champion:.4f}</td>"
            f"<td class=n>{c.challenger:.4f}</td><td class=n>{c.improvement:+.4f}</td>"
            f"<td>[{c.ci_low:+.4f}, {c.ci_high:+.4f}]</td><td>{c.method}</td></tr>"
        )
    out.append("</table>")
    verdict = "passed" if result.decision.passed else "failed"
    out.append(
        f"<p id=gate>Challenger of version {escape(result.champion_version)}, "
        f"{result.n_train:,} training rows, {result.n_holdout:,} held-out rows: the gate on "
        f"{escape(result.metric)} {verdict}.</p>"
    )
    if result.decision.reasons:
        out.append("<ul>" + "".join(f"<li>{escape(r)}</li>" for r in result.decision.reasons))
        out.append("</ul>")
    return "".join(out)
