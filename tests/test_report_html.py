"""report.html: self-contained (images inlined, nothing external), escaped, complete, written atomically."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from revival.errors import RevivalError
from revival.report import plot_accuracy_by_stage, render_report

STAGES = ("original", "unlearned", "revived")


class _Collect(HTMLParser):
    """Tags with their attributes, and the visible text."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _png(path, value: int):
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)
    return path


@pytest.fixture
def inputs(tmp_path):
    acc = {"star": {"original": 0.9, "unlearned": 0.05, "revived": 0.6}, "<b>cage</b>": {"original": 0.7}}
    images = {f"star/{s}": _png(tmp_path / f"star-{s}.png", 40 * i) for i, s in enumerate(STAGES)}
    images["<b>cage</b>/original"] = _png(tmp_path / "cage.png", 200)
    plots = {"Accuracy by stage": plot_accuracy_by_stage(acc, tmp_path / "acc.png")}
    result = {"title": "Audit <script>alert(1)</script>", "story": "Zeros & signs: a \"story\" \u2192 σ",
              "accuracy_by_stage": acc, "preserved_by_stage": {"star": {"original": 0.8, "revived": 0.75}},
              "grid_notes": {"star": "16 prompts, seeds 0-15"},
              "findings": [{"title": "RQ1", "text": "revival works <i>", "verdict": "holds"}],
              "timings_s": {"prune": 1.25}, "command": "revival demo --quick", "version": "0.1.0",
              "config": {"concepts": ["star"], "note": "</pre><script>x</script>"},
              "inputs": {"model": {"path": "/m", "sha256": {"unet/w.safetensors": "ab" * 32}},
                         "evaluator": {"path": "/e.safetensors", "sha256": "cd" * 32}},
              "environment": {"torch": "2.13.0"}}
    return result, images, plots


def test_report_is_self_contained_and_escaped(inputs, tmp_path):
    result, images, plots = inputs
    out = render_report(result, images, plots, tmp_path / "r" / "report.html")
    html = out.read_text(encoding="ascii")  # non-ASCII text is written as character references
    parser = _Collect()
    parser.feed(html)
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    assert not re.search(r"(src|href)\s*=\s*['\"](?!data:)", html)  # every reference is a data URI
    assert "http" not in html
    srcs = [a["src"] for t, a in parser.tags if t == "img"]
    assert len(srcs) == len(images) + len(plots)
    expected = [images[f"star/{s}"] for s in STAGES] + [images["<b>cage</b>/original"], plots["Accuracy by stage"]]
    for src, path in zip(srcs, expected, strict=True):  # grids in stage order, then the plots
        assert base64.b64decode(src.split(",", 1)[1]) == path.read_bytes()
    text = " ".join(parser.text)
    for needle in ("Audit <script>alert(1)</script>", "Zeros & signs: a \"story\" \u2192 σ", "<b>cage</b>",
                   "revival works <i>", "holds", "revival demo --quick", "0.1.0", "ab" * 32, "cd" * 32,
                   "unet/w.safetensors", "</pre><script>x</script>", "16 prompts, seeds 0-15", "1.2 s"):
        assert needle in text, needle
    assert not list(out.parent.glob("*.tmp"))


def test_accuracy_tables(inputs, tmp_path):
    result, images, plots = inputs
    html = render_report(result, {}, {}, tmp_path / "report.html").read_text()
    tables = re.findall(r"<table>.*?</table>", html, flags=re.S)
    erased = re.findall(r"<td>(.*?)</td>", tables[0])
    assert erased == ["star", "90%", "5%", "60%", "&lt;b&gt;cage&lt;/b&gt;", "70%", "&ndash;", "&ndash;"]
    assert re.findall(r"<th>(.*?)</th>", tables[1]) == ["concept", "original", "revived"]
    assert "<img" not in html


def test_missing_image_is_one_line_error(inputs, tmp_path):
    result, images, plots = inputs
    images = {**images, "star/defended": tmp_path / "nope.png"}
    with pytest.raises(RevivalError, match="nope.png: image for the report not found") as e:
        render_report(result, images, plots, tmp_path / "report.html")
    assert "\n" not in str(e.value) and not (tmp_path / "report.html").exists()
    with pytest.raises(RevivalError, match="not an image file"):
        render_report(result, {"star/original": tmp_path / "a.txt"}, {}, tmp_path / "report.html")
