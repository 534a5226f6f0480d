"""`edgetl report BUNDLE`: one self-contained HTML page (pictures inlined) of a bundle and what was done with it.

It shows the manifest's facts, the training diagnosis, the pictures (``figures/``), per-class metrics and the
worst mistakes (``evaluation.json``), and the export (``export/summary.json``) and benchmark
(``benchmark/<target>/report.json``) tables found beside it. No scripts, no network: it opens anywhere.
"""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path
from typing import Any

from .atomic import write_text
from .bench.report import cells as bench_cells
from .bench.report import columns as bench_columns
from .bundle import BENCH_DIR, EVALUATION, EXPORT_DIR, REPORT, read_manifest
from .errors import EdgetlError

MARK = '<meta name="generator" content="edgetl report">'  # what tells a page edgetl wrote from the user's own
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1180px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.88em} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left} .facts td{text-align:left}
figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee} figcaption{color:#555;font-size:.9em}
.warn{background:#fff4e0;border-left:4px solid #f0a000;padding:.5em .8em;margin:.4em 0}
.ok{color:#2a7d2a} .bad{background:#fde0dc} .muted{color:#777} pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:.8em}
"""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _png(path: Path) -> str | None:
    """A PNG inlined as a data URI (None when it is missing or not a PNG)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode() if data[:8] == b"\x89PNG\r\n\x1a\n" else None


def _table(header: list[str], rows: list[list[Any]], row_class: list[str] | None = None) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join(
        f"<tr{f' class={chr(34)}{row_class[i]}{chr(34)}' if row_class and row_class[i] else ''}>"
        + "".join(f"<td>{escape(str(c))}</td>" for c in r)
        + "</tr>"
        for i, r in enumerate(rows)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure(src: str | None, caption: str) -> str:
    if src is None:
        return f'<p class="muted">{escape(caption)}: the picture is missing</p>'
    return f'<figure><img src="{src}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _facts(m: dict[str, Any]) -> str:
    t = m.get("training") or {}
    metrics = m.get("metrics") or {}
    rows = [
        ["model", f"{m.get('family')}:{m.get('arch')} ({m.get('modality')}, {m.get('task')})"],
        ["labels", ", ".join(m.get("labels") or []) or "-"],
        ["data", f"{(m.get('data') or {}).get('source')} {json.dumps((m.get('data') or {}).get('splits'))}"],
        [
            "strategy",
            f"{t.get('strategy')}, {metrics.get('epochs_run')}/{t.get('epochs')} epochs, best epoch "
            f"{metrics.get('best_epoch')}, batch {t.get('batch_size')}, lr head {t.get('lr_head')} / backbone "
            f"{t.get('lr_backbone')}, weight decay {t.get('weight_decay')}, augment {t.get('augment')}",
        ],  # fmt: skip
        ["wall time, peak RSS", f"{metrics.get('wall_time_s')} s, {metrics.get('peak_rss_mb')} MB"],
        ["created", str(m.get("created"))],
    ]
    rows += [[f"{split} metrics", "  ".join(f"{k} {_fmt(v)}" for k, v in vals.items())]
             for split, vals in metrics.items() if isinstance(vals, dict)]  # fmt: skip
    return '<table class="facts">' + "".join(f"<tr><th>{escape(a)}</th><td>{escape(b)}</td></tr>" for a, b in rows) + "</table>"


def _history(m: dict[str, Any]) -> str:
    hist = m.get("history") or []
    if not hist:
        return ""
    names = list((hist[0].get("val") or {}).keys())
    header = ["epoch", "train loss", "val loss", *(f"val {n}" for n in names), "lr head", "groups", "s", "best"]
    rows = [
        [h.get("epoch"), _fmt(h.get("train_loss")), _fmt(h.get("val_loss")), *(_fmt((h.get("val") or {}).get(n)) for n in names),
         f"{(h.get('lr') or {}).get('head', 0):.2g}", f"{h.get('trainable_groups')}/{h.get('total_groups')}",
         h.get("seconds"), "★" if h.get("best") else ""]
        for h in hist
    ]  # fmt: skip
    return "<h2>Per epoch</h2>" + _table(header, rows)


def _evaluation(ev: dict[str, Any] | None, gallery: bool) -> str:
    if not ev:
        return ""
    out = [f"<h2>Errors on the {escape(ev['split'])} split ({ev['samples']} samples)</h2>"]
    if ev["task"] == "classification":
        rows = sorted(ev["per_class"], key=lambda r: (r["f1"], r["label"]))
        out.append(_table(["class", "precision", "recall", "F1", "support"],
                          [[r["label"], f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", r["support"]] for r in rows],
                          ["bad" if r["f1"] < 0.5 else "" for r in rows]))  # fmt: skip
        if ev["worst"] and not gallery:  # images have their gallery; texts and clips are listed
            key = next(k for k in ev["worst"][0] if k not in ("true", "predicted", "confidence", "true_probability"))
            out.append("<p>The most confident mistakes:</p>")
            out.append(_table([key, "true", "predicted", "confidence"],
                              [[w[key], w["true"], w["predicted"], f"{w['confidence']:.3f}"] for w in ev["worst"]]))  # fmt: skip
    elif ev["worst"]:
        key = next(k for k in ev["worst"][0] if k not in ("true", "predicted", "error"))
        out.append(f"<p>MAE {ev['mae']:.4g}. The largest errors:</p>")
        out.append(_table([key, "true", "predicted", "error"],
                          [[w[key], f"{w['true']:.4g}", f"{w['predicted']:.4g}", f"{w['error']:.4g}"] for w in ev["worst"]]))  # fmt: skip
    return "".join(out)


def _exports(bundle_dir: Path) -> str:
    summary = _read_json(bundle_dir / EXPORT_DIR / "summary.json")
    if not isinstance(summary, dict) or not summary:
        return ""
    rows = []
    for name, r in summary.items():
        if not isinstance(r, dict):
            continue
        if "error" in r:
            rows.append([name, "-", "-", "-", "-", "FAILED: " + str(r["error"])[:120]])
            continue
        p = r.get("parity") or {}
        metric = p.get("metric", "")
        drop = (p.get("guard") or {}).get("drop")
        rows.append([name, f"{r.get('size_bytes', 0) / 1e6:.2f}", f"{p.get('max_abs_diff', float('nan')):.2e}",
                     f"{(p.get('torch') or {}).get(metric, float('nan')):.4f} -> {(p.get('artifact') or {}).get(metric, float('nan')):.4f}",
                     "-" if drop is None else f"{drop:+.2f}", f"{p.get('p50_ms', float('nan')):.2f}"])  # fmt: skip
    header = ["artifact", "size MB", "max |diff|", "metric torch -> artifact", "drop", "p50 ms (check)"]
    return f"<h2>Exports ({escape(str(bundle_dir / EXPORT_DIR))})</h2>" + _table(header, rows)


def _benchmark(folder: Path) -> str:
    """One benchmark report (``folder/report.json``, a target's folder under ``BUNDLE/benchmark``) as a table."""
    rep = _read_json(folder / "report.json")
    if not isinstance(rep, dict) or not isinstance(rep.get("rows"), list):
        return ""
    try:
        header, rows = list(bench_columns(rep)), [bench_cells(r, rep) for r in rep["rows"]]
    except (KeyError, TypeError, ValueError):
        return f'<h2>Benchmark</h2><p class="muted">{escape(str(folder / "report.json"))} could not be read</p>'
    choice = ((rep.get("deploy") or {}).get("choice") or {}).get("name")
    target = rep.get("target") or {}
    out = [f"<h2>Benchmark on {escape(str(target.get('name')))} ({escape(str(folder))})</h2>", _table(header, rows)]
    out.append(f"<p><b>Deploy:</b> {escape(choice)}</p>" if choice else "<p><b>Deploy:</b> no artifact meets every budget</p>")
    if (folder / "report.png").exists():
        out.append(_figure(_png(folder / "report.png"), "latency against accuracy per artifact, and sizes"))
    return "".join(out)


def _benchmarks(bundle_dir: Path) -> list[str]:
    """Every benchmark report beside the bundle: ``benchmark/<target>/`` (and ``benchmark/`` itself)."""
    root = bundle_dir / BENCH_DIR
    folders = [root, *sorted(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []
    return [_benchmark(f) for f in folders]


def render(bundle_dir: Path) -> str:
    """The report page of ``bundle_dir`` as one HTML string."""
    from .train.figures import TITLES

    m = read_manifest(bundle_dir)
    figures = m.get("figures") if isinstance(m.get("figures"), dict) else {}
    ev = _read_json(bundle_dir / EVALUATION)
    name = escape(bundle_dir.resolve().name)
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>{MARK}<title>edgetl report: {name}</title>",
             f"<style>{CSS}</style></head><body>", f"<h1>edgetl bundle {name}</h1>",
             f'<p class="muted">{escape(str(bundle_dir.resolve()))}</p>', _facts(m)]  # fmt: skip
    findings = (m.get("training") or {}).get("diagnostics") or []
    parts.append("<h2>Diagnosis</h2>")
    parts += [f'<div class="warn">{escape(str(f.get("message")))}</div>' for f in findings] or [
        '<p class="ok">No overfitting found, and the model beats the trivial baseline.</p>'
    ]
    training = [n for n in ("curves", "learning_rates") if n in figures]
    errors = [n for n in figures if n not in training and n != "per_class"]  # per_class: the page has it as a table
    if training:
        parts.append("<h2>Training</h2>")
        parts += [_figure(_png(bundle_dir / figures[n]), TITLES.get(n, n)) for n in training]
    parts.append(_history(m))
    parts.append(_evaluation(ev if isinstance(ev, dict) else None, "worst" in figures))
    parts += [_figure(_png(bundle_dir / figures[n]), TITLES.get(n, n)) for n in errors]
    parts += [_exports(bundle_dir), *_benchmarks(bundle_dir)]
    parts.append(
        f"<h2>Manifest</h2><details><summary>edgetl.json</summary><pre>{escape(json.dumps(m, indent=2))}</pre></details>"
    )
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def write_report(bundle_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report page (default ``BUNDLE/report.html``) atomically; returns its path."""
    bundle_dir = Path(bundle_dir)
    path = Path(out) if out is not None else bundle_dir / REPORT
    if path.exists() and path.is_dir():
        raise EdgetlError(f"--out {path} is a folder; name the HTML file to write")
    if path.exists() and MARK.encode() not in path.read_bytes()[:1000]:
        raise EdgetlError(f"{path} exists and edgetl did not write it; pick another --out (it would be replaced)")
    if not path.parent.is_dir():
        raise EdgetlError(f"the folder of --out {path} does not exist; create it or pick another file")
    write_text(path, render(bundle_dir))
    return path
