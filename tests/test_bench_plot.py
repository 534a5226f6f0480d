"""The benchmark picture: labels that never collide, however the artifacts cluster, and a clearly marked deploy choice.

The layout is measured on the drawn figure itself (rendered text extents, dot positions through the axes' transform),
not taken from the placer's own bookkeeping."""

from __future__ import annotations

import itertools
from typing import Any

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from PIL import Image  # noqa: E402

from edgetl.bench.plot import PlotLayout, figure, plot  # noqa: E402

Box = tuple[float, float, float, float]


def _row(name: str, runtime: str, p50: float, value: float, size: float, spread: float = 1.25) -> dict[str, Any]:
    return {
        "name": name,
        "runtime": runtime,
        "status": "ok",
        "p50_ms": p50,
        "p90_ms": p50 * spread,
        "p99_ms": p50 * spread * 1.1,
        "value": value,
        "metric": "accuracy",
        "size_mb": size,
    }


def _report(rows: list[dict[str, Any]], choice: str | None) -> dict[str, Any]:
    return {
        "bundle": {"arch": "mobilenetv3_small_100"},
        "target": {"name": "cpu", "budgets": {"p90_ms": 100.0, "model_mb": 16.0}},
        "deploy": {"choice": {"name": choice} if choice else None},
        "rows": rows,
    }


def clustered_report() -> dict[str, Any]:
    """An ``export --target all --quantize all`` benchmark: fp32/fp16 rows of three runtimes nearly coincide."""
    rows = [
        _row("pytorch", "torch", 9.8, 0.9125, 8.9, spread=1.6),
        _row("onnx-fp32", "onnxruntime", 2.41, 0.9125, 8.8),
        _row("onnx-fp16", "onnxruntime", 2.44, 0.9125, 4.4),
        _row("onnx-int8-dynamic", "onnxruntime", 3.9, 0.9100, 2.3),
        _row("onnx-int8", "onnxruntime", 1.52, 0.9075, 2.4),
        _row("openvino-fp32", "openvino", 2.43, 0.91251, 8.9),
        _row("openvino-fp16", "openvino", 2.47, 0.9125, 4.5),
        _row("openvino-int8-dynamic", "openvino", 2.6, 0.9100, 2.5),
        _row("openvino-int8", "openvino", 1.53, 0.9074, 2.6),
        _row("tflite-fp32", "litert", 2.45, 0.9124, 8.8),
        _row("tflite-fp16", "litert", 3.12, 0.9125, 4.5),
        _row("tflite-int8-dynamic", "litert", 4.3, 0.9100, 2.4),
        _row("tflite-int8", "litert", 1.55, 0.9076, 2.4),
        _row("tflite-int8-nhwc", "litert", 1.56, 0.9075, 2.4),
    ]
    rows.append({"name": "tflite-int8-iouint8", "runtime": "litert", "status": "failed", "reason": "x", "size_mb": 2.4})
    return _report(rows, "onnx-int8")


def _figure(report: dict[str, Any]) -> tuple[Any, PlotLayout]:
    drawn = figure(report)
    assert drawn is not None
    return drawn


def _intersect(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _measure(fig: Any, ax: Any, texts: list[Any], rows: list[dict[str, Any]], chosen: str | None):
    """The labels' rendered boxes (backing included), and each dot's box, from the figure as drawn."""
    renderer = fig.canvas.get_renderer()
    boxes = []
    for t in texts:
        e = t.get_window_extent(renderer)
        if t.get_bbox_patch() is not None:
            t.update_bbox_position_size(renderer)  # where drawing puts the backing
            e = type(e).union([e, t.get_bbox_patch().get_window_extent(renderer)])
        boxes.append((e.x0, e.y0, e.x1, e.y1))
    (dot_pt,) = {line.get_markersize() for line in ax.lines if line.get_marker() == "o"}
    stars = [c for c in ax.collections if isinstance(c, PathCollection)]
    dots = []
    for r in rows:
        x, y = ax.transData.transform((r["p50_ms"], r["value"]))
        rad = (dot_pt / 2 if r["name"] != chosen else stars[0].get_sizes()[0] ** 0.5 / 2) * fig.dpi / 72
        dots.append((x - rad, y - rad, x + rad, y + rad))
    a = ax.get_window_extent(renderer)
    return boxes, dots, (a.x0, a.y0, a.x1, a.y1)


def _problems(boxes: list[Box], dots: list[Box], axes: Box) -> list[str]:
    out = [f"labels {i} and {j} overlap" for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2) if _intersect(a, b)]
    out += [f"label {i} covers dot {j}" for i, a in enumerate(boxes) for j, d in enumerate(dots) if _intersect(a, d)]
    out += [
        f"label {i} leaves the axes"
        for i, a in enumerate(boxes)
        if a[0] < axes[0] or a[2] > axes[2] or a[1] < axes[1] or a[3] > axes[3]
    ]
    return out


def test_naive_labels_would_collide_here():
    """The check has teeth: the old labels (each name at a fixed offset from its dot) overprint on this report."""
    report = clustered_report()
    rows = [r for r in report["rows"] if r["status"] == "ok"]
    fig, layout = _figure(report)
    ax = layout.ax
    layout.labels.remove()
    naive = [
        ax.annotate(r["name"], (r["p50_ms"], r["value"]), textcoords="offset points", xytext=(5, 4), fontsize=8) for r in rows
    ]
    boxes, dots, axes = _measure(fig, ax, naive, rows, "onnx-int8")
    assert any("overlap" in p for p in _problems(boxes, dots, axes))
    plt.close(fig)


def test_clustered_labels_never_collide_and_deploy_is_marked(tmp_path):
    report = clustered_report()
    rows = [r for r in report["rows"] if r["status"] == "ok"]
    fig, layout = _figure(report)
    assert layout.numbers and layout.names == [r["name"] for r in rows]  # 14 artifacts: numbers, names beside
    texts = layout.labels.texts
    assert len(texts) == len(rows)
    boxes, dots, axes = _measure(fig, layout.ax, texts, rows, "onnx-int8")
    assert _problems(boxes, dots, axes) == []
    assert layout.labels.collisions == 0
    # each artifact's number is drawn, and the size chart says which name it stands for
    for i, t in enumerate(texts):
        assert t.get_text().rstrip(",") == str(i + 1)
    ticks = [t.get_text() for t in layout.size_ax.get_yticklabels()]
    assert ticks[4].startswith("5  onnx-int8") and ticks[13] == "14  tflite-int8-nhwc"
    # coincident dots share one spot: onnx-fp32/fp16, openvino-fp32 and tflite-fp32 sit on top of each other
    assert any({1, 2, 5, 9} <= set(g) for g in layout.labels.groups)
    # the deploy choice: its own bold label, a gold star, a bold size-chart label, and named in the title
    choice = texts[4]
    assert choice.get_fontweight() in ("bold", 700) and [4] in layout.labels.groups
    assert all(t.get_fontweight() not in ("bold", 700) for i, t in enumerate(texts) if i != 4)
    assert "deploy: onnx-int8" in layout.ax.get_title()
    assert layout.size_ax.get_yticklabels()[4].get_fontweight() in ("bold", 700)
    (star,) = [c for c in layout.ax.collections if isinstance(c, PathCollection)]
    assert list(np.asarray(star.get_offsets())[0]) == pytest.approx([1.52, 0.9075])
    legend = [t.get_text() for t in layout.ax.get_legend().get_texts()]
    assert legend == ["PyTorch", "ONNX Runtime", "OpenVINO", "LiteRT", "deploy choice"]
    size = tuple(int(v * fig.dpi) for v in fig.get_size_inches())
    plt.close(fig)
    # the saved picture is the same figure, pixel for pixel in size
    out = tmp_path / "report.png"
    assert plot(report, out)
    with Image.open(out) as im:
        im.verify()
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == size
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50


def test_few_artifacts_get_their_names():
    report = clustered_report()
    report["rows"] = [report["rows"][i] for i in (0, 1, 4, 5, 9)]  # pytorch, onnx-fp32, onnx-int8, openvino, tflite
    fig, layout = _figure(report)
    assert not layout.numbers
    assert [t.get_text() for t in layout.labels.texts] == layout.names
    boxes, dots, axes = _measure(fig, layout.ax, layout.labels.texts, report["rows"], "onnx-int8")
    assert _problems(boxes, dots, axes) == []
    assert layout.labels.texts[2].get_fontweight() in ("bold", 700)
    assert layout.ax.get_title().endswith("deploy: onnx-int8")
    plt.close(fig)


@pytest.mark.parametrize("n", [2, 24])
def test_many_or_few_nearly_coincident(n):
    """2 to 24 artifacts packed together still get clean labels; no deploy choice is said in the title."""
    runtimes = ["onnxruntime", "openvino", "litert", "torch"]
    rows = [_row(f"onnx-v{i}", runtimes[i % 4], 2.0 + 0.013 * (i % 7), 0.91 + 0.0004 * (i % 5), 3.0) for i in range(n)]
    fig, layout = _figure(_report(rows, None))
    boxes, dots, axes = _measure(fig, layout.ax, layout.labels.texts, rows, None)
    assert _problems(boxes, dots, axes) == []
    assert "no artifact meets every budget" in layout.ax.get_title()
    plt.close(fig)
