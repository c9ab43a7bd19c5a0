"""Report rendering: plots (PNG) and one self-contained report.html, both from result dicts."""

from revival.report.html import build_html, render_report
from revival.report.plots import (
    STAGES,
    plot_accuracy_by_stage,
    plot_defense_tradeoff,
    plot_sign_recovery,
    plot_top_ratio_sweep,
)

__all__ = ["STAGES", "build_html", "plot_accuracy_by_stage", "plot_defense_tradeoff", "plot_sign_recovery",
           "plot_top_ratio_sweep", "render_report"]
