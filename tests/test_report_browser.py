"""report.html in headless Chromium: every image loads (naturalWidth > 0), and the page renders.

Chromium is Debian's `chromium`. When it is missing, the set-up installs it with apt-get only when
running as root with CI=true or REVIVAL_INSTALL_CHROMIUM=1; otherwise the tests are skipped with
the reason. The report itself has no script: the image check runs on a copy with one inline
script appended, which writes the counts into the DOM that `--dump-dom` prints.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from revival.evaluate.generate import generate, make_grid
from revival.report import (
    plot_accuracy_by_stage,
    plot_defense_tradeoff,
    plot_sign_recovery,
    plot_top_ratio_sweep,
    render_report,
)

CHECK_SCRIPT = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const d = document.createElement('div');
  d.id = 'img-check';
  d.textContent = `loaded=${ok} broken=${imgs.length - ok} total=${imgs.length}`;
  document.body.appendChild(d);
});
</script>"""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--virtual-time-budget=10000"]


def _find_chromium() -> str | None:
    return shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(scope="module")
def chromium() -> str:
    found = _find_chromium()
    if found:
        return found
    allowed = os.environ.get("CI") == "true" or os.environ.get("REVIVAL_INSTALL_CHROMIUM") == "1"
    if not (allowed and hasattr(os, "geteuid") and os.geteuid() == 0):
        pytest.skip("headless Chromium not found (/usr/bin/chromium); install Debian's `chromium`, or run as root "
                    "with CI=true or REVIVAL_INSTALL_CHROMIUM=1 to let the test install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            pytest.skip(f"could not install chromium ({' '.join(cmd)} failed: {proc.stderr.strip()[-200:]})")
    found = _find_chromium()
    if not found:
        pytest.skip("apt-get installed chromium but no `chromium` executable was found")
    return found


def _run(chromium: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120)


def _image_check(chromium: str, html_file: Path, tmp: Path) -> dict[str, int]:
    probe = tmp / f"{html_file.stem}.probe.html"
    probe.write_text(html_file.read_text().replace("</body>", CHECK_SCRIPT + "</body>"))
    proc = _run(chromium, tmp, "--dump-dom", probe.as_uri())
    m = re.search(r"loaded=(\d+) broken=(\d+) total=(\d+)", proc.stdout)
    assert m, f"no image check in Chromium's DOM (rc {proc.returncode}): {proc.stderr[-1000:]}"
    return dict(zip(("loaded", "broken", "total"), map(int, m.groups()), strict=True))


@pytest.fixture(scope="module")
def report(random_mini_pipeline, tmp_path_factory) -> tuple[Path, int]:
    """A report from a small fake result: real generated grids (random-init model) and all four plots."""
    d = tmp_path_factory.mktemp("report")
    stages = ("original", "unlearned", "revived", "defended", "revived_after_defense")
    acc = {"star": dict(zip(stages, (0.9, 0.05, 0.6, 0.04, 0.1), strict=True)),
           "cage": dict(zip(stages, (0.7, 0.1, 0.5, 0.08, 0.2), strict=True))}
    prompts = {"star": "a star in a desert", "cage": "a photo of a ring in a cage"}
    keys = [(c, s) for c in prompts for s in stages]
    # one batch for all grids; other seeds per stage stand in for the stage's weights
    imgs = generate(random_mini_pipeline, [prompts[c] for c, _ in keys for _ in range(4)],
                    [4 * stages.index(s) + i for _, s in keys for i in range(4)], num_inference_steps=2)
    images = {}
    for k, (concept, stage) in enumerate(keys):
        images[f"{concept}/{stage}"] = d / f"{concept}-{stage}.png"
        make_grid(imgs[4 * k : 4 * k + 4], ncols=2, scale=4).save(images[f"{concept}/{stage}"])
    layers = [f"down_blocks.{i}.attentions.0.transformer_blocks.0.ff.net.2.weight" for i in (1, 2)]
    plots = {
        "Accuracy by stage": plot_accuracy_by_stage(acc, d / "acc.png"),
        "Sign recovery per layer": plot_sign_recovery(
            {"overall": 0.72, "retained": 0.85, "per_layer": {n: {"overall": 0.7, "retained": 0.84} for n in layers}},
            d / "signs.png"),
        "top_ratio sweep": plot_top_ratio_sweep(
            {"star": [{"top_ratio": r, "sign_recovery_retained": 1 - r / 3, "revived_accuracy": r / 2}
                      for r in (0.2, 0.4, 0.6, 0.8)]}, d / "sweep.png"),
        "Defense trade-off": plot_defense_tradeoff(
            [{"defense": "none", "scale": None, "revival_success": 0.6, "preserved_accuracy": 0.9},
             {"defense": "gaussian", "scale": 1.0, "revival_success": 0.2, "preserved_accuracy": 0.8}],
            d / "tradeoff.png"),
    }
    result = {"title": "revival demo (test fixture)", "accuracy_by_stage": acc,
              "preserved_by_stage": {c: {s: 0.8 for s in stages} for c in acc},
              "grid_notes": {"star": "4 images of 'a star in a desert', seeds 0-3, at every stage"},
              "findings": [{"title": "RQ1: revival from positions alone", "text": "Fake figures.", "verdict": "holds"}],
              "command": "pytest tests/test_report_browser.py", "version": "0.1.0", "config": {"steps": 2},
              "inputs": {"model": {"path": "mini", "sha256": "0" * 64}}}
    return render_report(result, images, plots, d / "report.html"), len(images) + len(plots)


def test_every_image_loads_in_chromium(chromium, report, tmp_path):
    html_file, n_images = report
    assert _image_check(chromium, html_file, tmp_path) == {"loaded": n_images, "broken": 0, "total": n_images}


def test_check_detects_a_broken_image(chromium, report, tmp_path):
    html_file, n_images = report
    broken = tmp_path / "broken.html"
    broken.write_text(re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,AAAA",
                             html_file.read_text(), count=1))
    assert _image_check(chromium, broken, tmp_path) == {"loaded": n_images - 1, "broken": 1, "total": n_images}


def test_screenshot_renders(chromium, report, tmp_path):
    html_file, _ = report
    shot = tmp_path / "report.png"
    proc = _run(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1280,2600", "--hide-scrollbars",
                html_file.as_uri())
    assert shot.is_file(), proc.stderr[-1000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (2600, 1280)
    assert (pixels < 250).any(axis=2).mean() > 0.05  # text, grids and plots drawn, not a blank page
    if os.environ.get("REVIVAL_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["REVIVAL_SCREENSHOT_DIR"]) / "report-screenshot.png")
