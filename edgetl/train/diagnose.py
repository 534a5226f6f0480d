"""After training: does the run overfit, or never beat a trivial baseline? Each finding is a line of advice.

Overfitting: the validation loss rose while the training loss fell for ``RISING_EPOCHS`` epochs in a row,
or it ended ``GAP`` above its best while the training loss kept falling. Under-fitting: the best
validation metric is no better than predicting the training majority class (classification) or the
training mean (regression).
"""

from __future__ import annotations

from typing import Any

import numpy as np

RISING_EPOCHS = 3  # epochs in a row of rising validation loss and falling training loss
GAP = 0.25  # the final validation loss this far (relative) above its best, while training loss fell since then

ADVICE = {
    "linear": "more data, stronger weight decay (--weight-decay) or stopping earlier (--patience 2)",
    "default": "stronger augmentation (--augment strong), fewer unfrozen layer groups (--strategy partial --unfreeze N), "
    "stronger weight decay (--weight-decay) or stopping earlier (--patience 2)",
}


def overfitting(history: list[dict[str, Any]], strategy: str, best_epoch: int | None) -> dict[str, Any] | None:
    """The overfitting finding of a run's per-epoch history, or None."""
    rows = [h for h in history if h.get("val_loss") is not None]
    if len(rows) < 2:
        return None
    run, longest, end = 0, 0, 0
    for prev, cur in zip(rows, rows[1:]):
        run = run + 1 if cur["val_loss"] > prev["val_loss"] and cur["train_loss"] < prev["train_loss"] else 0
        if run >= longest:
            longest, end = run, cur["epoch"]
    best = min(rows, key=lambda h: h["val_loss"])
    last = rows[-1]
    gap = last["val_loss"] / best["val_loss"] - 1 if best["val_loss"] > 0 else 0.0
    drifted = last is not best and gap > GAP and last["train_loss"] < best["train_loss"]
    if longest < RISING_EPOCHS and not drifted:
        return None
    what = (
        f"validation loss rose while training loss fell for {longest} epochs in a row (to epoch {end})"
        if longest >= RISING_EPOCHS
        else f"validation loss ended {100 * gap:.0f}% above its best (epoch {best['epoch']}) while training loss fell"
    )
    kept = f"; the bundle keeps epoch {best_epoch}, the best by the validation metric" if best_epoch else ""
    advice = ADVICE.get(strategy, ADVICE["default"])
    return {"kind": "overfitting", "message": f"the run overfits: {what}{kept}; try {advice}",
            "val_loss_best_epoch": best["epoch"], "rising_epochs": longest}  # fmt: skip


def baseline(task: str, train_targets: np.ndarray, val_targets: np.ndarray) -> tuple[str, float]:
    """(metric, value) of the trivial predictor: the training majority class, or the training mean."""
    if task == "classification":
        values, counts = np.unique(np.asarray(train_targets), return_counts=True)
        return "accuracy", float(np.mean(np.asarray(val_targets) == values[np.argmax(counts)]))
    return "mae", float(np.mean(np.abs(np.asarray(val_targets, dtype=np.float64) - float(np.mean(train_targets)))))


def underfitting(task: str, best_value: float | None, train_targets: np.ndarray, val_targets: np.ndarray,
                 strategy: str) -> dict[str, Any] | None:  # fmt: skip
    """The under-fitting finding when the best validation metric does not beat the trivial predictor, or None."""
    if best_value is None or len(val_targets) == 0:
        return None
    metric, trivial = baseline(task, train_targets, val_targets)
    beaten = best_value > trivial if task == "classification" else best_value < trivial
    if beaten:
        return None
    name = "the majority class" if task == "classification" else "the training mean"
    more = (
        "unfreeze more of the backbone (--strategy partial or full)"
        if strategy == "linear"
        else "train longer or with a higher --lr-head"
    )
    return {"kind": "underfitting", "baseline": {metric: trivial},
            "message": f"the run never beats predicting {name} (validation {metric} {best_value:.4f} vs {trivial:.4f}); "
            f"check the labels, then {more}"}  # fmt: skip


def diagnose(history: list[dict[str, Any]], task: str, strategy: str, best: dict[str, Any], train_targets: np.ndarray,
             val_targets: np.ndarray) -> list[dict[str, Any]]:  # fmt: skip
    """Every finding of a finished run (empty when it looks healthy)."""
    found = [
        overfitting(history, strategy, best.get("epoch")),
        underfitting(task, best.get("metric"), train_targets, val_targets, strategy),
    ]
    return [f for f in found if f]
