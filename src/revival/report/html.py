"""One self-contained report.html: every image inlined as a data URI, no scripts, fonts, CSS files or network.

`result` keys read (all optional except where noted; text is escaped, never trusted as HTML):
- "title": str; "story": str, one paragraph (DEFAULT_STORY when absent)
- "accuracy_by_stage": {concept: {stage: fraction}} (the erased-concept accuracy table)
- "preserved_by_stage": {concept: {stage: fraction}} (accuracy on the other concepts, second table)
- "grid_notes": {concept: str}, e.g. "16 prompts 'a star in a {scene}', seeds 0-15, at every stage"
- "findings": [{"title": str, "text": str, "verdict": str (e.g. "holds", "does not hold")}]
- "timings_s": {stage: seconds}
- footer, as `revival.results.base_result` writes them: "command", "version", "config", "inputs"
  ({name: {"path", "sha256": hex | {file: hex}}}), "environment"
`images`: {"concept/stage": PNG path}, the image grids (same prompts and seeds at every stage);
`plots`: {title: PNG path}.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from html import escape
from pathlib import Path

from revival.checkpoints import atomic_write_text
from revival.errors import RevivalError
from revival.report.plots import STAGE_LABELS, STAGES

DEFAULT_STORY = (
    "ConceptPrune erases a concept from a text-to-image diffusion model by zeroing a few weights in its "
    "feed-forward layers. The positions of those zeros are a side channel: from the pruned weights alone, "
    "matrix completion recovers the signs of the removed weights, the most confident signs are kept and "
    "given large magnitudes, and the erased concept comes back, with no data and no training. A defense "
    "fills the pruned positions with noise so that they can no longer be located. Below: the same prompts "
    "and seeds drawn by the original, unlearned, revived, defended and revived-after-defense models."
)
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.story{font-size:1.05em;max-width:60em}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:.3em .7em;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#f3f3f3}
.stages{display:flex;flex-wrap:wrap;gap:.8em;align-items:flex-start}
figure{margin:0;text-align:center}figcaption{font-size:.85em;color:#444;margin-top:.2em}
.grid img{image-rendering:pixelated;width:220px;height:auto;border:1px solid #ccc}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:1em;align-items:start}
.plot img{max-width:100%;height:auto}
.note{color:#555;font-size:.9em}
.finding{border-left:4px solid #888;padding:.2em .8em;margin:.8em 0;background:#fafafa}
.verdict{font-weight:bold;padding:0 .4em;border-radius:3px;background:#eee}
footer{margin-top:2.5em;border-top:1px solid #ddd;font-size:.85em;color:#444}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}
code{word-break:break-all}
"""


def data_uri(path: str | Path) -> str:
    """The file's bytes as a base64 data URI; one-line error when it is missing or not an image type."""
    path = Path(path)
    mime = MIME.get(path.suffix.lower())
    if mime is None:
        raise RevivalError(f"{path}: not an image file for the report (expected {', '.join(sorted(MIME))})")
    if not path.is_file():
        raise RevivalError(f"{path}: image for the report not found")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _e(x) -> str:
    return escape(str(x), quote=True)


def _stages(*tables: Mapping[str, Mapping]) -> list[str]:
    """Known stages first in story order, then any others in the order met."""
    seen = [s for t in tables for row in t.values() for s in row]
    return [s for s in STAGES if s in seen] + [s for s in dict.fromkeys(seen) if s not in STAGES]


def _pct(v) -> str:
    return "&ndash;" if v is None else f"{float(v):.0%}"


def _table(title: str, table: Mapping[str, Mapping], note: str) -> str:
    stages = _stages(table)
    head = "".join(f"<th>{_e(STAGE_LABELS.get(s, s))}</th>" for s in stages)
    rows = "".join(f"<tr><td>{_e(c)}</td>" + "".join(f"<td>{_pct(row.get(s))}</td>" for s in stages) + "</tr>"
                   for c, row in table.items())
    return (f"<h3>{_e(title)}</h3><p class='note'>{_e(note)}</p>"
            f"<table><thead><tr><th>concept</th>{head}</tr></thead><tbody>{rows}</tbody></table>")


def _grids(images: Mapping[str, Path], notes: Mapping[str, str], concept_order: list[str]) -> str:
    by_concept: dict[str, dict[str, Path]] = {}
    for key, path in images.items():
        concept, _, stage = key.rpartition("/")
        by_concept.setdefault(concept or key, {})[stage if concept else ""] = path
    order = [c for c in concept_order if c in by_concept] + [c for c in by_concept if c not in concept_order]
    parts = []
    for c in order:
        stage_paths = by_concept[c]
        figs = "".join(
            f"<figure class='grid'><img src='{data_uri(stage_paths[s])}' alt='{_e(c)}: {_e(STAGE_LABELS.get(s, s))}'>"
            f"<figcaption>{_e(STAGE_LABELS.get(s, s))}</figcaption></figure>"
            for s in _stages({c: stage_paths}))
        note = f"<p class='note'>{_e(notes[c])}</p>" if c in notes else ""
        parts.append(f"<h3>{_e(c)}</h3>{note}<div class='stages'>{figs}</div>")
    return "".join(parts)


def _inputs(inputs: Mapping) -> str:
    rows = []
    for name, info in inputs.items():
        info = info if isinstance(info, Mapping) else {"path": info}
        sha = info.get("sha256")
        shas = sha.items() if isinstance(sha, Mapping) else [("", sha)] if sha else []
        for f, h in shas or [("", "")]:
            rows.append(f"<tr><td>{_e(name)}</td><td><code>{_e(info.get('path', ''))}"
                        f"{'/' + _e(f) if f else ''}</code></td><td><code>{_e(h)}</code></td></tr>")
    if not rows:
        return ""
    return "<table><thead><tr><th>input</th><th>path</th><th>sha256</th></tr></thead><tbody>" + "".join(rows) + \
        "</tbody></table>"


def _details(summary: str, obj, open_: bool = False) -> str:
    attr = " open" if open_ else ""
    return (f"<details{attr}><summary>{_e(summary)}</summary>"
            f"<pre>{_e(json.dumps(obj, indent=2, default=str))}</pre></details>")


def build_html(result: Mapping, images: Mapping[str, Path], plots: Mapping[str, Path]) -> str:
    """The report as one HTML string."""
    title = result.get("title") or "Concept revival audit"
    acc = result.get("accuracy_by_stage") or {}
    pres = result.get("preserved_by_stage") or {}
    body = [f"<h1>{_e(title)}</h1>", f"<p class='story'>{_e(result.get('story') or DEFAULT_STORY)}</p>"]
    if acc or pres:
        body.append("<h2>Accuracy by stage</h2>")
        if acc:
            body.append(_table("Erased concept", acc, "Share of images of the concept's prompts that show the "
                               "concept (higher after revival = the concept came back)."))
        if pres:
            body.append(_table("Preserved concepts", pres, "Accuracy on the other concepts (how much the "
                               "unlearning, attack or defense damaged the rest of the model)."))
    if images:
        body.append("<h2>Images: the same prompts and seeds at every stage</h2>")
        body.append(_grids(images, result.get("grid_notes") or {}, list(acc) or list(pres)))
    if plots:
        body.append("<h2>Plots</h2><div class='plots'>")
        body += [f"<figure class='plot'><img src='{data_uri(p)}' alt='{_e(name)}'><figcaption>{_e(name)}"
                 f"</figcaption></figure>" for name, p in plots.items()]
        body.append("</div>")
    findings = result.get("findings") or []
    if findings:
        body.append("<h2>Findings</h2>")
        for f in findings:
            verdict = f" <span class='verdict'>{_e(f['verdict'])}</span>" if f.get("verdict") else ""
            body.append(f"<div class='finding'><h3>{_e(f.get('title', ''))}{verdict}</h3>"
                        f"<p>{_e(f.get('text', ''))}</p></div>")
    timings = result.get("timings_s") or {}
    if timings:
        body.append("<h2>Timings</h2><table><tbody>" + "".join(
            f"<tr><td>{_e(k)}</td><td>{float(v):.1f} s</td></tr>" for k, v in timings.items()) + "</tbody></table>")
    foot = [f"<p>Command: <code>{_e(result.get('command', ''))}</code><br>"
            f"revival version {_e(result.get('version', ''))}</p>",
            _inputs(result.get("inputs") or {}),
            _details("Configuration", result.get("config") or {}, open_=True)]
    if result.get("environment"):
        foot.append(_details("Environment", result["environment"]))
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
            + "".join(body) + "<footer>" + "".join(foot) + "</footer></body></html>\n")


def render_report(result: Mapping, images: Mapping[str, Path], plots: Mapping[str, Path], out: str | Path) -> Path:
    """Write the self-contained report to `out` (atomically, ASCII with character references); returns `out`."""
    out = Path(out)
    html = build_html(result, images, plots).encode("ascii", "xmlcharrefreplace").decode("ascii")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(html, out)
    return out
