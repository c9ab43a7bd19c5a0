"""The report's figures: pure functions from result dicts to PNG files.

matplotlib's object API (a bare `Figure` saved as PNG renders with Agg), never pyplot: no global
state, no display, safe beside other code.

Input schemas (all fractions in [0, 1]; `None` or a missing key means "not measured" and is skipped):

- accuracy by stage, `{concept: {stage: accuracy}}`, stages from `STAGES`:
  {"star": {"original": 0.92, "unlearned": 0.04, "revived": 0.61, "defended": 0.03,
            "revived_after_defense": 0.08}, "pastel": {...}}
- sign recovery, the `sign_recovery` block of a revive result:
  {"overall": 0.74, "retained": 0.86, "per_layer": {layer_name: 0.71 | {"overall": 0.71, "retained": 0.83}}}
- top_ratio sweep, `{concept: [row, ...]}` with one row per top_ratio:
  {"star": [{"top_ratio": 0.2, "sign_recovery_retained": 0.93, "revived_accuracy": 0.35}, ...]}
- defense trade-off, a list of points (one per defense and scale; `defense: "none"` is the undefended model):
  [{"defense": "gaussian", "scale": 1.0, "revival_success": 0.12, "preserved_accuracy": 0.88}, ...]
  revival_success = erased-concept accuracy after the best adaptive revival; preserved_accuracy =
  accuracy on the other concepts of the defended model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib import colormaps, ticker
from matplotlib.figure import Figure

from revival.errors import RevivalError

STAGES: tuple[str, ...] = ("original", "unlearned", "revived", "defended", "revived_after_defense")
STAGE_LABELS = {s: s.replace("_", " ") for s in STAGES}
STAGE_COLORS = {"original": "#4c72b0", "unlearned": "#c44e52", "revived": "#dd8452", "defended": "#55a868",
                "revived_after_defense": "#8172b3"}
PNG_METADATA = {"Software": None}  # no matplotlib version in the bytes: same inputs, same file


def save_png(fig: Figure, out: str | Path) -> Path:
    """Write the figure as PNG atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata=PNG_METADATA)
    os.replace(tmp, out)
    return out


def _value(x) -> float | None:
    return None if x is None else float(x)


def short_layer_name(name: str) -> str:
    """`down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2.weight` -> `down1.att0.tb0.ff2`."""
    s = re.sub(r"\.weight$", "", name)
    for pat, rep in ((r"down_blocks\.(\d+)", r"down\1"), (r"up_blocks\.(\d+)", r"up\1"), (r"mid_block", "mid"),
                     (r"attentions\.(\d+)", r"att\1"), (r"transformer_blocks\.(\d+)", r"tb\1"),
                     (r"ff\.net\.0\.proj", "ff0"), (r"ff\.net\.2", "ff2")):
        s = re.sub(pat, rep, s)
    return s


def accuracy_by_stage_figure(accuracy: Mapping[str, Mapping[str, float | None]],
                             title: str = "Erased-concept accuracy by stage",
                             ylabel: str = "images showing the concept") -> Figure:
    """Grouped bars: one group per concept, one bar per stage present in the data."""
    if not accuracy:
        raise RevivalError("accuracy-by-stage plot: no concepts in the result")
    concepts = list(accuracy)
    stages = [s for s in STAGES if any(_value(accuracy[c].get(s)) is not None for c in concepts)]
    fig = Figure(figsize=(max(5.0, 1.6 * len(concepts) + 2), 3.6), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / max(len(stages), 1)
    for k, stage in enumerate(stages):
        xs, ys = [], []
        for i, c in enumerate(concepts):
            v = _value(accuracy[c].get(stage))
            if v is not None:
                xs.append(i - 0.4 + width * (k + 0.5))
                ys.append(v)
        bars = ax.bar(xs, ys, width, label=STAGE_LABELS[stage], color=STAGE_COLORS[stage])
        ax.bar_label(bars, labels=[f"{y:.0%}" for y in ys], fontsize=7, padding=1)
    ax.set_xticks(range(len(concepts)), concepts)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0))
    ax.set_title(title)
    fig.legend(fontsize=8, ncols=min(len(stages), 3), loc="outside lower center", frameon=False)
    return fig


def sign_recovery_figure(sign_recovery: Mapping, title: str = "Sign recovery per layer") -> Figure:
    """Horizontal bars per layer (all pruned positions, and the retained top-K when given), chance at 50%."""
    per_layer = sign_recovery.get("per_layer") or {}
    if not per_layer:
        raise RevivalError("sign-recovery plot: the result has no per_layer figures")
    names = list(per_layer)
    rows = [v if isinstance(v, Mapping) else {"overall": v} for v in per_layer.values()]
    series = [(key, label, color) for key, label, color in
              (("overall", "all pruned positions", "#4c72b0"), ("retained", "retained top-K", "#dd8452"))
              if any(_value(r.get(key)) is not None for r in rows)]
    fig = Figure(figsize=(6.4, 1.6 + 0.28 * len(names) * max(len(series), 1)), layout="constrained")
    ax = fig.add_subplot()
    height = 0.8 / max(len(series), 1)
    for k, (key, label, color) in enumerate(series):
        ys = [i - 0.4 + height * (k + 0.5) for i in range(len(names))]
        vals = [_value(r.get(key)) for r in rows]
        ax.barh([y for y, v in zip(ys, vals, strict=True) if v is not None], [v for v in vals if v is not None],
                height, label=label, color=color)
    ax.set_yticks(range(len(names)), [short_layer_name(n) for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0.5, color="grey", ls=":", lw=1, label="chance (50%)")
    for key, ls in (("overall", "--"), ("retained", "-.")):
        v = _value(sign_recovery.get(key))
        if v is not None:
            ax.axvline(v, color="black", ls=ls, lw=1, label=f"{key} {v:.0%}")
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(ticker.PercentFormatter(1.0))
    ax.set_xlabel("pruned weights whose sign is recovered")
    ax.set_title(title)
    fig.legend(fontsize=7, ncols=3, loc="outside lower center", frameon=False)
    return fig


def top_ratio_sweep_figure(sweep: Mapping[str, Sequence[Mapping]], title: str = "top_ratio sweep") -> Figure:
    """Two panels against top_ratio: sign recovery of the retained signs, and revived accuracy; a line per concept."""
    if not sweep:
        raise RevivalError("top_ratio sweep plot: no concepts in the result")
    fig = Figure(figsize=(8.4, 3.4), layout="constrained")
    axes = fig.subplots(1, 2)
    panels = (("sign_recovery_retained", "retained signs recovered"), ("revived_accuracy", "revived accuracy"))
    for ax, (key, label) in zip(axes, panels, strict=True):
        for concept, rows in sweep.items():
            pts = sorted((float(r["top_ratio"]), _value(r.get(key))) for r in rows)
            pts = [(x, y) for x, y in pts if y is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=concept)
        ax.set_xlabel("top_ratio (share of completed signs kept)")
        ax.set_ylabel(label)
        ax.set_ylim(0, 1.05)
        ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return fig


def defense_tradeoff_figure(points: Sequence[Mapping],
                            title: str = "Defense trade-off: revival vs preserved accuracy") -> Figure:
    """Scatter: preserved accuracy (x) against revival success (y), one labelled point per defense and scale."""
    if not points:
        raise RevivalError("defense trade-off plot: no points in the result")
    fig = Figure(figsize=(6.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    defenses = list(dict.fromkeys(str(p["defense"]) for p in points))
    cmap = colormaps["tab10"]
    for i, d in enumerate(defenses):
        pts = sorted((p for p in points if str(p["defense"]) == d), key=lambda p: float(p.get("scale") or 0.0))
        xs = [float(p["preserved_accuracy"]) for p in pts]
        ys = [float(p["revival_success"]) for p in pts]
        marker = "*" if d == "none" else "o"
        ax.plot(xs, ys, marker=marker, ms=10 if d == "none" else 6, ls="-" if len(pts) > 1 else "",
                color=cmap(i % 10), label=d)
        spans = [(x, y, p["revival_share"]["ci95"]) for p, x, y in zip(pts, xs, ys, strict=True)
                 if (p.get("revival_share") or {}).get("ci95")]
        if spans:  # the 95% interval of each revival share
            ax.errorbar([x for x, _, _ in spans], [y for _, y, _ in spans],
                        yerr=[[y - lo for _, y, (lo, _) in spans], [hi - y for _, y, (_, hi) in spans]],
                        fmt="none", ecolor=cmap(i % 10), alpha=0.5, capsize=3)
        for p, x, y in zip(pts, xs, ys, strict=True):
            if p.get("scale") is not None:
                ax.annotate(f"{p['scale']:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlim(0, 1.05)
    ax.set_ylim(0, 1.05)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(ticker.PercentFormatter(1.0))
    ax.set_xlabel("preserved accuracy (other concepts, defended model)")
    ax.set_ylabel("revival success (erased concept, adaptive attack)\nbars: 95% interval")
    ax.text(1.0, 0.02, "better defense \u2192 lower right", ha="right", fontsize=7, color="grey",
            transform=ax.transAxes)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="defense (labels: scale)", title_fontsize=8)
    ax.set_title(title)
    return fig


def plot_accuracy_by_stage(accuracy: Mapping[str, Mapping[str, float | None]], out: str | Path, **kw) -> Path:
    """`accuracy_by_stage_figure` written to `out` as PNG."""
    return save_png(accuracy_by_stage_figure(accuracy, **kw), out)


def plot_sign_recovery(sign_recovery: Mapping, out: str | Path, **kw) -> Path:
    """`sign_recovery_figure` written to `out` as PNG."""
    return save_png(sign_recovery_figure(sign_recovery, **kw), out)


def plot_top_ratio_sweep(sweep: Mapping[str, Sequence[Mapping]], out: str | Path, **kw) -> Path:
    """`top_ratio_sweep_figure` written to `out` as PNG."""
    return save_png(top_ratio_sweep_figure(sweep, **kw), out)


def plot_defense_tradeoff(points: Sequence[Mapping], out: str | Path, **kw) -> Path:
    """`defense_tradeoff_figure` written to `out` as PNG."""
    return save_png(defense_tradeoff_figure(points, **kw), out)
