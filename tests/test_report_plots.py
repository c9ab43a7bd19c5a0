"""Report plots: the drawn bars and points carry the input figures; PNGs are written atomically and reproducibly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from revival.errors import RevivalError
from revival.report import plots

ACC = {"star": {"original": 0.9, "unlearned": 0.05, "revived": 0.6, "defended": 0.04, "revived_after_defense": 0.1},
       "cage": {"original": 0.7, "unlearned": 0.2, "revived": None}}
SIGNS = {"overall": 0.72, "retained": 0.86,
         "per_layer": {"down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2.weight": {"overall": 0.7,
                                                                                           "retained": 0.8},
                       "mid_block.attentions.0.transformer_blocks.1.ff.net.2.weight": {"overall": 0.75}}}
SWEEP = {"star": [{"top_ratio": 0.8, "sign_recovery_retained": 0.7, "revived_accuracy": 0.5},
                  {"top_ratio": 0.2, "sign_recovery_retained": 0.95, "revived_accuracy": 0.2}]}
TRADE = [{"defense": "none", "scale": None, "revival_success": 0.6, "preserved_accuracy": 0.9},
         {"defense": "gaussian", "scale": 2.0, "revival_success": 0.1, "preserved_accuracy": 0.7},
         {"defense": "gaussian", "scale": 0.5, "revival_success": 0.3, "preserved_accuracy": 0.85}]


def _bar_heights(ax) -> list[float]:
    return sorted(round(p.get_height(), 6) for p in ax.patches)


def test_accuracy_bars_are_the_values_and_skip_missing():
    ax = plots.accuracy_by_stage_figure(ACC).axes[0]
    expected = sorted(v for row in ACC.values() for v in row.values() if v is not None)
    assert _bar_heights(ax) == expected
    assert [t.get_text() for t in ax.get_xticklabels()] == ["star", "cage"]
    assert [t.get_text() for t in ax.figure.legends[0].get_texts()] == \
        ["original", "unlearned", "revived", "defended", "revived after defense"]


def test_sign_recovery_bars_per_layer():
    ax = plots.sign_recovery_figure(SIGNS).axes[0]
    assert sorted(round(p.get_width(), 6) for p in ax.patches) == [0.7, 0.75, 0.8]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["down1.att0.tb0.ff2", "mid.att0.tb1.ff2"]
    flat = plots.sign_recovery_figure({"per_layer": {"a": 0.6, "b": 0.4}}).axes[0]
    assert sorted(round(p.get_width(), 6) for p in flat.patches) == [0.4, 0.6]


def test_sweep_lines_sorted_by_top_ratio():
    fig = plots.top_ratio_sweep_figure(SWEEP)
    left, right = fig.axes
    assert list(left.lines[0].get_xdata()) == [0.2, 0.8] and list(left.lines[0].get_ydata()) == [0.95, 0.7]
    assert list(right.lines[0].get_ydata()) == [0.2, 0.5]


def test_tradeoff_points_per_defense_with_scale_labels():
    ax = plots.defense_tradeoff_figure(TRADE).axes[0]
    lines = {ln.get_label(): ln for ln in ax.lines}
    assert list(lines["gaussian"].get_xdata()) == [0.85, 0.7]  # sorted by scale
    assert list(lines["none"].get_ydata()) == [0.6]
    assert sorted(t.get_text() for t in ax.texts if t.get_text() in {"0.5", "2"}) == ["0.5", "2"]


def test_png_files_written_reproducibly(tmp_path):
    a = plots.plot_accuracy_by_stage(ACC, tmp_path / "a.png")
    b = plots.plot_accuracy_by_stage(ACC, tmp_path / "sub" / "b.png")
    assert a.read_bytes() == b.read_bytes()
    assert Image.open(a).format == "PNG" and np.asarray(Image.open(a)).std() > 0
    other = plots.plot_accuracy_by_stage({"star": {"original": 0.1}}, tmp_path / "c.png")
    assert other.read_bytes() != a.read_bytes()
    for fn, data in ((plots.plot_sign_recovery, SIGNS), (plots.plot_top_ratio_sweep, SWEEP),
                     (plots.plot_defense_tradeoff, TRADE)):
        assert Image.open(fn(data, tmp_path / f"{fn.__name__}.png")).size[0] > 300
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("fn", [plots.plot_accuracy_by_stage, plots.plot_sign_recovery, plots.plot_top_ratio_sweep,
                                plots.plot_defense_tradeoff])
def test_empty_input_is_one_line_error(fn, tmp_path):
    with pytest.raises(RevivalError) as e:
        fn({} if fn is not plots.plot_defense_tradeoff else [], tmp_path / "x.png")
    assert "\n" not in str(e.value)


def test_mini_study_trade_off_points_carry_the_intervals_the_plot_draws():
    """benchmarks/mini_study.py's trade-off points keep each revival share's 95% interval, so its plot draws the
    bars its axis label promises (the attacker's choice only)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from mini_study import tradeoff_points

    row = {"concept": "star", "defense": "gaussian", "scale": 1.0, "preserved": 0.9, "revived": 0.8,
           "revived_ci95": [0.6, 0.9], "attacker_choice": True}
    points = tradeoff_points([row, {**row, "revived": 0.1, "attacker_choice": False}])
    assert [p["revival_share"]["ci95"] for p in points] == [[0.6, 0.9]]
    ax = plots.defense_tradeoff_figure(points).axes[0]
    (bars,) = ax.containers
    (segment,) = bars.lines[2][0].get_segments()
    assert np.allclose(segment[:, 1], [0.6, 0.9])
