"""The bundle's pictures (``figures/*.png``): training curves, learning rates, and what the model gets wrong.

Drawn with matplotlib (Agg) from the per-epoch history and ``evaluation.json``; each file is written atomically.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..atomic import atomic_path
from ..bundle import FIGURES

DPI = 110
TITLES = {
    "curves": "loss and validation metrics per epoch",
    "learning_rates": "learning rate of each parameter group",
    "confusion": "confusion matrix",
    "per_class": "precision, recall and F1 per class",
    "worst": "the most confident mistakes",
    "predicted_vs_true": "predicted against true values",
}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    _plt().close(fig)


def phase_changes(history: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(epoch, what) where the set of trainable groups changed: two-phase's unfreezing, gradual's steps."""
    out = []
    for prev, cur in zip(history, history[1:]):
        if cur.get("trainable_groups") != prev.get("trainable_groups"):
            out.append((int(cur["epoch"]), f"{cur.get('trainable_groups')}/{cur.get('total_groups')} groups train"))
    return out


def _mark_epochs(ax: Any, history: list[dict[str, Any]], best_epoch: int | None, lr_changes: list[dict[str, Any]]) -> None:
    changes = phase_changes(history)
    for i, (epoch, what) in enumerate(changes):
        ax.axvline(epoch - 0.5, color="0.45", ls="--", lw=1, label="trainable groups change" if i == 0 else None)
        if len(changes) <= 4:  # gradual runs change every epoch or two: the legend entry says it once
            ax.annotate(what, (epoch - 0.5, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                        textcoords="offset points", fontsize=8, color="0.3")  # fmt: skip
    for i, change in enumerate(lr_changes):
        ax.axvline(float(change.get("after_epoch", 0)) + 0.5, color="tab:orange", ls=":", lw=1.2,
                   label="learning rates changed (--resume)" if i == 0 else None)  # fmt: skip
    if best_epoch:
        ax.axvline(best_epoch, color="tab:green", lw=6, alpha=0.18, label=f"best epoch ({best_epoch}, kept)")


def curves(
    history: list[dict[str, Any]], primary: str, best_epoch: int | None, lr_changes: list[dict[str, Any]], path: Path
) -> None:
    """Train and validation loss (left) and the metrics (right) per epoch, phases and the best epoch marked."""
    plt = _plt()
    epochs = [h["epoch"] for h in history]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.8), constrained_layout=True)
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", color="tab:blue", label="train loss")
    if all(h.get("val_loss") is not None for h in history):
        ax.plot(epochs, [h["val_loss"] for h in history], "s-", color="tab:red", label="validation loss")
    ax.set_title("loss")
    metrics = list((history[0].get("val") or {}).keys()) if history else []
    metrics = [primary] + [m for m in metrics if m != primary]
    styles = ["-", "--", "-.", ":"]
    for i, name in enumerate(metrics[:4]):
        bx.plot(epochs, [h["val"][name] for h in history], "s" + styles[i], color="tab:red", alpha=1.0 - 0.2 * i,
                label=f"validation {name}")  # fmt: skip
        if all(name in (h.get("train") or {}) for h in history):
            bx.plot(epochs, [h["train"][name] for h in history], "o" + styles[i], color="tab:blue", alpha=1.0 - 0.2 * i,
                    label=f"train {name} (during the epoch)")  # fmt: skip
    bx.set_title(f"metrics ({primary} decides the best epoch)")
    for axis in (ax, bx):
        _mark_epochs(axis, history, best_epoch, lr_changes)
        axis.set_xlabel("epoch")
        axis.set_xticks(epochs if len(epochs) <= 20 else epochs[:: math.ceil(len(epochs) / 20)])
        axis.set_xlim(0.5, max(epochs) + 0.5)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    _save(fig, path)


def learning_rates(history: list[dict[str, Any]], path: Path) -> None:
    """The end-of-epoch LR of the head and each backbone group, drawn only while that group trains (log scale)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4.2), constrained_layout=True)
    groups = list((history[0].get("lr") or {}).keys()) if history else []
    backbone = [g for g in groups if g != "head"]
    shown = set(backbone[-1:] + backbone[:1])  # the top and bottom groups named; the rest thin and grey
    for g in groups:
        xs, ys = [], []
        for h in history:
            trains = g in h.get("trainable", [g]) if g != "head" else True
            xs.append(h["epoch"])
            ys.append(h["lr"][g] if trains and h["lr"].get(g) else math.nan)
        if g == "head":
            ax.plot(xs, ys, "o-", color="tab:red", lw=2, label="head")
        elif g in shown:
            ax.plot(xs, ys, "o-", lw=1.5, label=f"{g} ({'top' if g == backbone[-1] else 'bottom'} group)")
        else:
            ax.plot(xs, ys, "-", color="0.6", lw=0.8, label="other backbone groups" if g == backbone[1] else None)
    _mark_epochs(ax, history, None, [])
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate at the end of the epoch")
    ax.set_title("learning rates (a group is drawn only while it trains)")
    ax.set_xlim(0.5, max(h["epoch"] for h in history) + 0.5)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    _save(fig, path)


def confusion(evaluation: dict[str, Any], path: Path) -> None:
    """Counts per (true, predicted) class; the colour is the share of the true class."""
    import numpy as np

    plt = _plt()
    cm = np.asarray(evaluation["confusion"], dtype=float)
    labels = evaluation["labels"]
    n = len(labels)
    size = min(14.0, max(4.5, 0.45 * n + 2.5))
    fig, ax = plt.subplots(figsize=(size + 1.2, size), constrained_layout=True)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fs = 9 if n <= 12 else 7
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=fs,
                            color="white" if share[i, j] > 0.55 else "black")  # fmt: skip
    ax.set_xticks(range(n), labels, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center", fontsize=fs)
    ax.set_yticks(range(n), labels, fontsize=fs)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix, {evaluation['split']} split ({evaluation['samples']} samples, "
                 f"accuracy {evaluation['accuracy']:.3f})")  # fmt: skip
    _save(fig, path)


def per_class(evaluation: dict[str, Any], path: Path) -> None:
    """A table: precision, recall, F1 and support of each class, the weakest F1 first."""
    plt = _plt()
    rows = sorted(evaluation["per_class"], key=lambda r: (r["f1"], r["label"]))
    cells = [[r["label"], f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"])] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.3 * (len(rows) + 1)), constrained_layout=True)
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=["class", "precision", "recall", "F1", "support"], loc="center",
                     cellLoc="right", colLoc="right", colWidths=[0.4, 0.15, 0.15, 0.15, 0.15])  # fmt: skip
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    for (r, c), cell in table.get_celld().items():
        if c == 0:
            cell._loc = "left"  # class names read from the left (Cell has no public setter for this)
            cell.get_text().set_horizontalalignment("left")
        if r == 0:
            cell.set_text_props(weight="bold")
        elif rows[r - 1]["f1"] < 0.5:
            cell.set_facecolor("#fde0dc")
    ax.set_title(f"per-class metrics, {evaluation['split']} split (weakest F1 first; red: F1 < 0.5)", fontsize=10)
    _save(fig, path)


def worst(evaluation: dict[str, Any], image_of: Callable[[str], Path], path: Path) -> bool:
    """A gallery of the most confident mistakes (images); False when there are none."""
    from PIL import Image

    plt = _plt()
    items = evaluation["worst"]
    if not items:
        return False
    cols = min(6, len(items))
    rows = math.ceil(len(items) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(2.1 * cols, 4.5), 2.5 * rows), squeeze=False, constrained_layout=True)
    for ax in axes.flat:
        ax.axis("off")
    for ax, item in zip(axes.flat, items):
        try:
            with Image.open(image_of(item["path"])) as im:
                ax.imshow(im.convert("RGB"))
        except OSError:
            ax.text(0.5, 0.5, "(image missing)", ha="center", va="center", transform=ax.transAxes, fontsize=8)
        ax.set_title(f"true {item['true']}\npredicted {item['predicted']} ({item['confidence']:.2f})", fontsize=8,
                     color="tab:red")  # fmt: skip
    fig.suptitle(f"most confident mistakes, {evaluation['split']} split", fontsize=10)
    _save(fig, path)
    return True


def predicted_vs_true(evaluation: dict[str, Any], path: Path) -> None:
    """Each sample as a dot, predicted against true, with the diagonal of a perfect model."""
    plt = _plt()
    t, p = evaluation["points"]["true"], evaluation["points"]["predicted"]
    fig, ax = plt.subplots(figsize=(5.5, 5.2), constrained_layout=True)
    ax.scatter(t, p, s=12, alpha=0.6, color="tab:blue", edgecolor="none")
    lo, hi = min(t + p), max(t + p)
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="predicted = true")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title(f"{evaluation['split']} split ({evaluation['samples']} samples, MAE {evaluation['mae']:.4g})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def write_figures(
    bundle_dir: Path,
    history: list[dict[str, Any]],
    evaluation: dict[str, Any] | None,
    primary: str,
    best_epoch: int | None,
    lr_changes: list[dict[str, Any]],
    image_of: Callable[[str], Path] | None = None,
) -> dict[str, str]:
    """Draw every picture that applies; returns {name: path relative to the bundle}."""
    folder = Path(bundle_dir) / FIGURES
    folder.mkdir(exist_ok=True)
    made: dict[str, str] = {}

    def rel(name: str) -> Path:
        made[name] = f"{FIGURES}/{name}.png"
        return folder / f"{name}.png"

    if history:
        curves(history, primary, best_epoch, lr_changes, rel("curves"))
        learning_rates(history, rel("learning_rates"))
    if evaluation and evaluation["task"] == "classification":
        confusion(evaluation, rel("confusion"))
        per_class(evaluation, rel("per_class"))
        if image_of is not None:
            if worst(evaluation, image_of, folder / "worst.png"):
                made["worst"] = f"{FIGURES}/worst.png"
            else:
                (folder / "worst.png").unlink(missing_ok=True)  # a stale one from an earlier run of this folder
    elif evaluation:
        predicted_vs_true(evaluation, rel("predicted_vs_true"))
    return made
