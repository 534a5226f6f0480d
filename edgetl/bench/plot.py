"""The benchmark picture: latency (p50, p90 whisker) against accuracy per artifact, sizes beside, the deploy choice
starred; numbered labels placed so that none collides (``labels.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_path
from .labels import LabelLayout, place_labels

RUNTIME_STYLE = {  # runtime -> (colour, legend name); any other runtime is grey under its own name
    "torch": ("tab:red", "PyTorch"),
    "onnxruntime": ("tab:blue", "ONNX Runtime"),
    "openvino": ("tab:purple", "OpenVINO"),
    "litert": ("tab:green", "LiteRT"),
    "ctranslate2": ("tab:orange", "CTranslate2"),
}
_DOT_PT = 6.0  # errorbar marker size, points
_STAR_S = 320.0  # the deploy choice's star, points^2
_CAP_PT = 3.0


@dataclass
class PlotLayout:
    """What ``figure`` drew: the scatter's labels (by artifact name) and the deploy choice."""

    names: list[str]
    numbers: bool  # True: the scatter shows each artifact's number (its name is in the size chart), else its name
    labels: LabelLayout
    choice: str | None
    ax: Any
    size_ax: Any


def _log_limits(lo: float, hi: float) -> tuple[float, float]:
    lo, hi = max(lo, 1e-6), max(hi, 1e-6)
    a, b = math.log10(lo), math.log10(hi)
    pad = max(0.12 * (b - a), 0.08)
    return 10 ** (a - pad), 10 ** (b + pad)


def _lin_limits(lo: float, hi: float) -> tuple[float, float]:
    span = hi - lo or max(abs(hi) * 0.02, 0.01)
    return lo - 0.14 * span, hi + 0.14 * span


def figure(report: dict[str, Any]) -> tuple[Any, PlotLayout] | None:
    """The benchmark picture (None if matplotlib is missing or nothing ran): latency against accuracy per artifact,
    each dot labelled where no label collides (its name when there is room for every name, else its number, with
    "N  name" in the size chart beside); the deploy choice has a gold star, a bold label and is named in the title."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
        from matplotlib.ticker import LogFormatter
        from matplotlib.transforms import offset_copy
    except ImportError:
        return None
    rows = [r for r in report["rows"] if r["status"] == "ok"]
    if not rows:
        return None
    n = len(rows)
    fig, (ax, bx) = plt.subplots(
        1, 2, figsize=(13, max(5.5, 2.4 + 0.24 * n)), dpi=110, layout="none", gridspec_kw={"width_ratios": [3, 2]}
    )  # no layout engine: nothing may move the axes once the labels are placed

    def style(r: dict[str, Any]) -> tuple[str, str]:
        return RUNTIME_STYLE.get(r["runtime"], ("tab:gray", str(r["runtime"])))

    colors = [style(r)[0] for r in rows]
    choice = ((report.get("deploy") or {}).get("choice") or {}).get("name")
    chosen = {i for i, r in enumerate(rows) if r["name"] == choice}
    soft: list[tuple[float, float, float, float]] = []
    for i, r in enumerate(rows):
        ax.errorbar(
            r["p50_ms"],
            r["value"],
            xerr=[[0], [max(r["p90_ms"] - r["p50_ms"], 0.0)]],
            fmt="o",
            ms=_DOT_PT,
            color=colors[i],
            capsize=_CAP_PT,
            zorder=3,
        )
        if i in chosen:  # the deploy choice: a gold star under its dot
            ax.scatter([r["p50_ms"]], [r["value"]], s=_STAR_S, marker="*", color="gold", edgecolor="k", zorder=2)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))  # 2, 5, 10 rather than 2x10^0
    ax.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1.2, 0.6)))
    ax.set_xlim(*_log_limits(min(r["p50_ms"] for r in rows), max(r["p90_ms"] for r in rows)))
    ax.set_ylim(*_lin_limits(min(r["value"] for r in rows), max(r["value"] for r in rows)))
    per_clip = report.get("bundle", {}).get("task") == "transcription"
    ax.set_xlabel(f"latency {'per clip' if per_clip else 'at batch 1'}, ms (dot p50, whisker to p90; log scale)")
    ax.set_ylabel("WER (lower is better)" if rows[0]["metric"] == "wer" else rows[0]["metric"])

    def title(numbered: bool) -> str:
        head = f"{report['bundle']['arch']} on {report['target']['name']}\n"
        if not choice:
            return head + "no artifact meets every budget"
        return head + f"\u2605 deploy: {choice}" + (f" (#{min(chosen) + 1})" if numbered and chosen else "")

    def size_labels(numbered: bool) -> None:
        bx.set_yticks(
            range(n),
            [(f"{i + 1}  " if numbered else "") + r["name"] + (" \u2605" if i in chosen else "") for i, r in enumerate(rows)],
        )
        for i, t in enumerate(bx.get_yticklabels()):
            t.set_fontsize(8.5 if n > 12 else 9.5)
            if i in chosen:
                t.set_fontweight("bold")

    ax.set_title(title(True))
    ax.grid(alpha=0.3, which="both")
    runtimes = dict.fromkeys(style(r) for r in rows)
    handles = [Line2D([], [], marker="o", ls="", color=c, label=lbl) for c, lbl in runtimes]
    if chosen:
        handles.append(Line2D([], [], marker="*", ls="", ms=13, color="gold", markeredgecolor="k", label="deploy choice"))
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=offset_copy(ax.transAxes, fig=fig, y=-34, units="points"),  # under the x label
        ncol=len(handles),
        fontsize=8,
        frameon=False,
        handletextpad=0.3,
        columnspacing=1.2,
    )
    bx.barh(range(n), [r["size_mb"] for r in rows], color=colors)
    size_labels(True)
    bx.set_ylim(n - 0.5, -0.5)
    bx.set_xlabel("size, MB")
    bx.set_title("artifact size")
    if "model_mb" in report["target"]["budgets"]:
        bx.axvline(report["target"]["budgets"]["model_mb"], color="k", ls="--", lw=1, label="budget")
        bx.legend(fontsize=8)
    fig.tight_layout()  # the layout is final from here: labels are placed in its pixels
    px = fig.dpi / 72.0
    points = [(r["p50_ms"], r["value"]) for r in rows]
    radii = [math.sqrt(_STAR_S) / 2 if i in chosen else _DOT_PT / 2 for i in range(n)]
    for r in rows:  # whiskers and caps: avoided where possible
        (x0, y), (x1, _) = ax.transData.transform([(r["p50_ms"], r["value"]), (r["p90_ms"], r["value"])])
        cap = _CAP_PT * px
        soft += [(x0, y - 1.5, x1, y + 1.5), (x1 - 1.5, y - cap, x1 + 1.5, y + cap)]
    labels = None
    if n <= 8:  # few artifacts: their names, if every one fits close to its dot
        labels = place_labels(
            ax, points, [r["name"] for r in rows], radii_pt=radii, colors=colors, bold=chosen, soft=soft, max_ring=3, per_row=1
        )
        if labels.collisions or any(lead is not None for lead in labels.leaders):
            labels.remove()
            labels = None
        else:
            size_labels(False)
            ax.set_title(title(False))
    numbers = labels is None
    if labels is None:
        labels = place_labels(
            ax, points, [str(i + 1) for i in range(n)], radii_pt=radii, colors=colors, bold=chosen, soft=soft, fontsize=9
        )
    return fig, PlotLayout(names=[r["name"] for r in rows], numbers=numbers, labels=labels, choice=choice, ax=ax, size_ax=bx)


def plot(report: dict[str, Any], path: Path) -> bool:
    """Latency (p50, p90 whisker) against accuracy per artifact, sizes beside (see ``figure``); False if matplotlib is
    missing or nothing ran."""
    drawn = figure(report)
    if drawn is None:
        return False
    fig, _ = drawn
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=fig.dpi)  # the figure's own pixels: the labels were placed in them
    finally:
        plt.close(fig)
    return True
