"""The report's charts as SVG text: bars, histograms and a line, drawn without a plotting
library, so a monitoring cycle neither imports nor rasterises anything to draw them.

Each function returns one self-contained ``<svg>`` element (inline styles only, no script,
no external reference): it can sit in an HTML page or be saved as an ``.svg`` artifact,
which the MLflow UI shows as an image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np

BASELINE = "#8a96a3"
PRODUCTION = "#2f6fb0"
ALERT = "#d64545"
_FONT = "font-family:system-ui,sans-serif;font-size:11px;fill:#333"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round values spanning [lo, hi] (steps of 1, 2 or 5 times a power of 10)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else [0.0]
    raw = (hi - lo) / n
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


class _Canvas:
    """A plot area with margins, data-to-pixel scales and SVG parts."""

    def __init__(self, width, height, *, left=52, right=14, top=42, bottom=56, title=""):
        self.w, self.h = width, height
        self.x0, self.x1, self.y0, self.y1 = left, width - right, height - bottom, top
        self.parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
            f'<rect width="{width}" height="{height}" fill="#fff"/>',
            f'<text x="{width / 2:.1f}" y="18" text-anchor="middle" style="{_FONT};'
            f'font-size:13px">{escape(title)}</text>',
        ]

    def scales(self, xlo, xhi, ylo, yhi):
        xspan, yspan = (xhi - xlo) or 1.0, (yhi - ylo) or 1.0
        self.sx = lambda v: self.x0 + (v - xlo) / xspan * (self.x1 - self.x0)
        self.sy = lambda v: self.y0 - (v - ylo) / yspan * (self.y0 - self.y1)

    def rect(self, x, y, w, h, color, opacity=1.0, tip=""):
        title = f"<title>{escape(tip)}</title>" if tip else ""
        self.parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
            f'fill="{color}" fill-opacity="{opacity}">{title}</rect>'
        )

    def text(self, x, y, s, anchor="middle", rotate=0):
        turn = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate else ""
        self.parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" style="{_FONT}"{turn}>'
            f"{escape(s)}</text>"
        )

    def line(self, x1, y1, x2, y2, color="#bbb", dash=""):
        style = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{color}"{style}/>'
        )

    def y_axis(self, ticks, label=""):
        for t in ticks:
            y = self.sy(t)
            self.line(self.x0, y, self.x1, y, "#eee")
            self.text(self.x0 - 5, y + 4, _fmt(t), "end")
        self.line(self.x0, self.y0, self.x1, self.y0, "#888")
        if label:
            self.text(12, (self.y0 + self.y1) / 2, label, rotate=-90)

    def legend(self, entries):
        x = self.x1 - 110 * len(entries)
        for i, (label, color) in enumerate(entries):
            self.rect(x + 110 * i, self.y1 - 18, 12, 10, color)
            self.text(x + 110 * i + 16, self.y1 - 9, label, "start")

    def svg(self) -> str:
        return "".join([*self.parts, "</svg>"])


def histogram(title: str, reference: np.ndarray, current: np.ndarray, bins: int = 30) -> str:
    """Densities of two samples over shared bins, overlaid."""
    both = np.concatenate([reference, current])
    both = both[np.isfinite(both)]
    if both.size == 0:
        return bars(title, [], [])
    edges = np.histogram_bin_edges(both, bins=bins)
    dens = [
        np.histogram(v[np.isfinite(v)], bins=edges, density=True)[0] if np.isfinite(v).any()
        else np.zeros(len(edges) - 1)
        for v in (reference, current)
    ]
    c = _Canvas(520, 300, title=title)
    top = max(float(max(d.max() for d in dens)), 1e-12)
    c.scales(edges[0], edges[-1], 0.0, top * 1.08)
    c.y_axis(_ticks(0.0, top), "density")
    for d, color in zip(dens, (BASELINE, PRODUCTION), strict=True):
        for i, v in enumerate(d):
            x, w = c.sx(edges[i]), c.sx(edges[i + 1]) - c.sx(edges[i])
            c.rect(x, c.sy(v), w, c.y0 - c.sy(v), color, 0.55)
    for t in _ticks(edges[0], edges[-1]):
        c.text(c.sx(t), c.y0 + 15, _fmt(t))
    c.legend([("baseline", BASELINE), ("production", PRODUCTION)])
    return c.svg()


def bars(title: str, categories: Sequence[str], series, ylabel: str = "share") -> str:
    """Grouped vertical bars: ``series`` is [(label, values, color)], one value a category."""
    c = _Canvas(520, 300, bottom=80, title=title)
    top = max([float(np.max(v)) for _, v, _ in series if len(v)] + [1e-12])
    c.scales(0, max(len(categories), 1), 0.0, top * 1.08)
    c.y_axis(_ticks(0.0, top), ylabel)
    width = 0.8 / max(len(series), 1)
    for k, (label, values, color) in enumerate(series):
        for i, v in enumerate(values):
            x = c.sx(i + 0.1 + k * width)
            c.rect(x, c.sy(v), c.sx(width) - c.sx(0), c.y0 - c.sy(v), color,
                   tip=f"{categories[i]}, {label}: {v:.3g}")
    for i, name in enumerate(categories):
        x = c.sx(i + 0.5)
        c.text(x, c.y0 + 12, _short(name), "end", rotate=-40)
    c.legend([(label, color) for label, _, color in series])
    return c.svg()


def attribution(features: Sequence, ndcg: float, total_shift: float) -> str:
    """Horizontal bars: each feature's share of mean |SHAP| at the baseline and now;
    shifted features in red. ``features`` are ``FeatureShift`` rows."""
    rows = sorted(features, key=lambda f: -f.baseline_share)
    labels = [_short(f.feature) + (" (shifted)" if f.shifted else "") for f in rows]
    left = 14 + 6.5 * max([len(s) for s in labels] + [4])
    height = 70 + 26 * len(rows)
    c = _Canvas(640, height, left=left, bottom=40, top=44,
                title=f"Attribution shift: nDCG {ndcg:.3f}, total shift {total_shift:.3f}")
    top = max([max(f.baseline_share, f.share) for f in rows] + [1e-12])
    c.scales(0.0, top * 1.08, 0.0, 1.0)
    for t in _ticks(0.0, top):
        c.line(c.sx(t), c.y1, c.sx(t), c.y0, "#eee")
        c.text(c.sx(t), c.y0 + 15, _fmt(t))
    c.text((c.x0 + c.x1) / 2, c.y0 + 32, "share of mean |SHAP|")
    for i, (f, label) in enumerate(zip(rows, labels, strict=True)):
        y = c.y1 + 6 + 26 * i
        c.rect(c.x0, y, c.sx(f.baseline_share) - c.x0, 10, BASELINE,
               tip=f"{f.feature}, baseline: {f.baseline_share:.3f}")
        c.rect(c.x0, y + 10, c.sx(f.share) - c.x0, 10, ALERT if f.shifted else PRODUCTION,
               tip=f"{f.feature}, production: {f.share:.3f}")
        c.text(c.x0 - 6, y + 14, label, "end")
    c.line(c.x0, c.y1, c.x0, c.y0, "#888")
    c.legend([("baseline", BASELINE), ("production", PRODUCTION)])
    return c.svg()


def line(title: str, labels: Sequence[str], values: Sequence[float],
         baseline: float | None, ylabel: str, *,
         forecast: tuple[Sequence[float], Sequence[float], Sequence[float]] | None = None,
         floor: float | None = None) -> str:
    """Values over time (points joined by a line), with the baseline's value dashed.

    ``forecast`` is (mean, lower, upper) over the next cycles: the mean is drawn dashed
    after the last value, its interval as a band; ``floor`` is a dotted line in red.
    """
    c = _Canvas(720, 280, left=60, bottom=70, title=title)
    baseline = baseline if baseline is not None and math.isfinite(baseline) else None
    floor = floor if floor is not None and math.isfinite(floor) else None
    mean, lower, upper = forecast if forecast is not None else ((), (), ())
    finite = [v for v in values if math.isfinite(v)]
    extra = [v for v in (baseline, floor) if v is not None]
    ys = [*finite, *extra, *(v for v in (*lower, *upper) if math.isfinite(v))] or [0.0]
    lo, hi = min(ys), max(ys)
    pad = (hi - lo) * 0.1 or abs(hi) * 0.05 or 0.05
    c.scales(-0.5, len(values) + len(mean) - 0.5, lo - pad, hi + pad)
    c.y_axis(_ticks(lo - pad, hi + pad), ylabel)
    if baseline is not None:
        c.line(c.x0, c.sy(baseline), c.x1, c.sy(baseline), "#777", "5 4")
    if floor is not None:
        c.line(c.x0, c.sy(floor), c.x1, c.sy(floor), ALERT, "2 3")
    if len(mean):
        # The band and the dashed mean start at the last value, so the forecast joins it.
        last = [values[-1]] if len(values) and math.isfinite(values[-1]) else []
        xs = [c.sx(i) for i in range(len(values) - len(last), len(values) + len(mean))]
        top = [(x, c.sy(v)) for x, v in zip(xs, (*last, *upper), strict=True)]
        bottom = [(x, c.sy(v)) for x, v in zip(xs, (*last, *lower), strict=True)]
        band = " ".join(f"{x:.1f},{y:.1f}" for x, y in [*top, *reversed(bottom)])
        c.parts.append(f'<polygon points="{band}" fill="{PRODUCTION}" fill-opacity="0.15">'
                       "<title>forecast interval</title></polygon>")
        path = " ".join(f"{x:.1f},{c.sy(v):.1f}" for x, v in zip(xs, (*last, *mean), strict=True))
        c.parts.append(f'<polyline points="{path}" fill="none" stroke="{PRODUCTION}" '
                       'stroke-width="2" stroke-dasharray="6 4"/>')
    points = [(c.sx(i), c.sy(v)) for i, v in enumerate(values) if math.isfinite(v)]
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        c.parts.append(f'<polyline points="{path}" fill="none" stroke="{PRODUCTION}" '
                       'stroke-width="2"/>')
    for (x, y), v in zip(points, finite, strict=True):
        c.parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{PRODUCTION}">'
                       f"<title>{v:.4f}</title></circle>")
    labels = [*labels, *(f"+{h}" for h in range(1, len(mean) + 1))]
    step = max(1, len(labels) // 12)
    for i in range(0, len(labels), step):
        c.text(c.sx(i), c.y0 + 12, labels[i], "end", rotate=-30)
    shown = [("baseline", "#777")] if baseline is not None else []
    shown += [("floor", ALERT)] if floor is not None else []
    shown += [("forecast", PRODUCTION)] if len(mean) else []
    c.legend([("production", PRODUCTION), *shown])
    return c.svg()


def _short(name: str, n: int = 28) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"
