"""Task metrics in numpy: accuracy and macro-F1, MAE and RMSE."""

from __future__ import annotations

import numpy as np

# metric that early stopping watches, and whether larger is better
PRIMARY = {"classification": ("accuracy", True), "regression": ("mae", False)}
# what an artifact may lose against PyTorch by default: points of accuracy, percent of PyTorch's MAE
DEFAULT_BUDGET = {"classification": 1.0, "regression": 5.0, "transcription": 1.0}
UNIT = {"classification": "points", "regression": "% of MAE", "transcription": "WER points"}


def classification_metrics(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, float]:
    pred = logits.argmax(axis=1)
    f1s = []
    for c in range(num_classes):
        tp = np.sum((pred == c) & (labels == c))
        fp = np.sum((pred == c) & (labels != c))
        fn = np.sum((pred != c) & (labels == c))
        if tp + fp + fn == 0:
            continue  # class absent from both: not counted (sklearn's zero_division aside)
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return {"accuracy": float(np.mean(pred == labels)), "macro_f1": float(np.mean(f1s)) if f1s else 0.0}


def regression_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    err = pred.reshape(-1) - target.reshape(-1)
    return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err**2)))}


def task_metrics(task: str, outputs: np.ndarray, targets: np.ndarray, num_outputs: int) -> dict[str, float]:
    if task == "classification":
        return classification_metrics(outputs, targets.astype(np.int64), num_outputs)
    return regression_metrics(outputs, targets)


def is_better(task: str, new: float, best: float | None) -> bool:
    if best is None:
        return True
    return new > best if PRIMARY[task][1] else new < best
