"""Figures of the research-question experiments (rq2-rq4; rq1 uses the accuracy-by-stage plot), as PNG.

Same conventions as `revival.report.plots`: matplotlib's object API, no pyplot, deterministic PNG bytes.
Input schemas (fractions in [0, 1]):
- magnitude rules: {concept: {rule: accuracy}}, plus {concept: accuracy} baselines (unlearned, original)
- locator AUROC: {defense: {locator: auroc | None}}
- Gaussian trade-off: [{"scale", "erased", "preserved", "revived"}] (means over concepts), baselines
  {"unlearned": erased and "unlearned_preserved": preserved accuracy of the unlearned (undefended) model}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib import colormaps, ticker
from matplotlib.figure import Figure


def _percent_axis(axis) -> None:
    axis.set_major_formatter(ticker.PercentFormatter(1.0))


def magnitude_rules_figure(accuracy: Mapping[str, Mapping[str, float]], unlearned: Mapping[str, float],
                           original: Mapping[str, float], title: str = "Revived accuracy by magnitude rule") -> Figure:
    """Grouped bars: one group per concept, one bar per rule; the unlearned and original levels as ticks."""
    concepts = list(accuracy)
    rules = list(dict.fromkeys(r for c in concepts for r in accuracy[c]))
    fig = Figure(figsize=(max(6.0, 1.2 * len(rules) * len(concepts) / 2 + 2), 3.8), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / max(len(rules), 1)
    cmap = colormaps["tab10"]
    for k, rule in enumerate(rules):
        xs = [i - 0.4 + width * (k + 0.5) for i in range(len(concepts))]
        ys = [accuracy[c].get(rule, 0.0) for c in concepts]
        bars = ax.bar(xs, ys, width, label=rule, color=cmap(k % 10))
        ax.bar_label(bars, labels=[f"{y:.0%}" for y in ys], fontsize=6, padding=1)
    for i, c in enumerate(concepts):
        ax.hlines(unlearned[c], i - 0.45, i + 0.45, colors="black", linestyles="--", lw=1,
                  label="unlearned" if i == 0 else None)
        ax.hlines(original[c], i - 0.45, i + 0.45, colors="grey", linestyles=":", lw=1,
                  label="original" if i == 0 else None)
    ax.set_xticks(range(len(concepts)), concepts)
    ax.set_ylim(0, 1.12)
    _percent_axis(ax.yaxis)
    ax.set_ylabel("erased-concept accuracy after revival")
    ax.set_title(title)
    fig.legend(fontsize=7, ncols=min(len(rules) + 2, 5), loc="outside lower center", frameon=False)
    return fig


def locator_auroc_figure(auroc: Mapping[str, Mapping[str, float | None]],
                         title: str = "Locator AUROC against the true pruned positions") -> Figure:
    """Heatmap, defenses x locators, each cell annotated (0.5 = chance, 1 = every position found first)."""
    defenses = list(auroc)
    locators = list(dict.fromkeys(loc for d in defenses for loc in auroc[d]))
    grid = [[auroc[d].get(loc) for loc in locators] for d in defenses]
    fig = Figure(figsize=(1.3 * len(locators) + 2.5, 0.55 * len(defenses) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow([[0.5 if v is None else v for v in row] for row in grid], cmap="RdYlGn_r", vmin=0.5, vmax=1.0,
                   aspect="auto")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, "n/a" if v is None else f"{v:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(locators)), locators, fontsize=8)
    ax.set_yticks(range(len(defenses)), defenses, fontsize=8)
    ax.set_xlabel("attacker's locator")
    ax.set_ylabel("defense")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="AUROC (red: positions exposed)")
    return fig


def gaussian_tradeoff_figure(rows: Sequence[Mapping], baselines: Mapping[str, float],
                             title: str = "Gaussian obfuscation: trade-off by noise scale") -> Figure:
    """Lines against the noise scale: erased and preserved accuracy of the defended model, revived accuracy."""
    rows = sorted(rows, key=lambda r: float(r["scale"]))
    xs = [float(r["scale"]) for r in rows]
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for key, label, color, ls in (("erased", "erased concept, defended model", "#55a868", "-"),
                                  ("preserved", "preserved concepts, defended model", "#4c72b0", "-"),
                                  ("revived", "erased concept after the attacker's revival", "#8172b3", "-"),
                                  ("revived_oracle", "after the oracle-chosen revival (upper bound)", "#8172b3", ":")):
        if all(r.get(key) is not None for r in rows):
            ax.plot(xs, [r[key] for r in rows], marker="o", color=color, ls=ls, label=label)
    ax.axhline(baselines["unlearned"], color="#c44e52", ls="--", lw=1, label="erased concept, unlearned model")
    ax.axhline(baselines["unlearned_preserved"], color="grey", ls=":", lw=1,
               label="preserved concepts, unlearned model")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.set_xlabel("noise scale (x the surviving weights' spread)")
    ax.set_ylim(0, 1.05)
    _percent_axis(ax.yaxis)
    ax.set_ylabel("accuracy (mean over concepts)")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    fig.legend(fontsize=7, ncols=2, loc="outside lower center", frameon=False)
    return fig
