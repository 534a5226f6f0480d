"""What the best weights get right and wrong on the held-out split: the bundle's ``evaluation.json``.

Classification: the confusion matrix, precision/recall/F1 per class and the most confident mistakes.
Regression: predicted against true values and the largest errors. Figures and the HTML report read it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetl_runtime.predict import softmax

WORST = 12  # mistakes kept (most confident first)
MAX_POINTS = 5000  # regression: points kept for the predicted-vs-true plot


def _sample_text(sample: Any) -> str:
    s = str(sample)
    return s if len(s) <= 300 else s[:297] + "..."


def classification(
    outputs: np.ndarray, targets: np.ndarray, labels: list[str], samples: list[Any], split: str, key: str
) -> dict[str, Any]:
    """Confusion matrix (rows true, columns predicted), per-class P/R/F1 and the most confident mistakes."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    probs = softmax(np.asarray(outputs, dtype=np.float64))
    pred = probs.argmax(axis=1)
    y = np.asarray(targets, dtype=np.int64)
    classes = list(range(len(labels)))
    cm = confusion_matrix(y, pred, labels=classes)
    p, r, f, support = precision_recall_fscore_support(y, pred, labels=classes, zero_division=0)
    wrong = np.flatnonzero(pred != y)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:WORST]
    return {
        "split": split,
        "task": "classification",
        "samples": int(len(y)),
        "labels": list(labels),
        "accuracy": float(np.mean(pred == y)) if len(y) else 0.0,
        "confusion": cm.tolist(),
        "per_class": [
            {"label": labels[i], "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
            for i in classes
        ],
        "worst": [
            {
                key: _sample_text(samples[i]),
                "true": labels[y[i]],
                "predicted": labels[pred[i]],
                "confidence": float(probs[i, pred[i]]),
                "true_probability": float(probs[i, y[i]]),
            }
            for i in wrong
        ],
    }


def regression(outputs: np.ndarray, targets: np.ndarray, samples: list[Any], split: str, key: str) -> dict[str, Any]:
    """Predicted against true values (at most ``MAX_POINTS``) and the largest absolute errors."""
    pred = np.asarray(outputs, dtype=np.float64).reshape(len(targets), -1)[:, 0]
    y = np.asarray(targets, dtype=np.float64)
    err = np.abs(pred - y)
    keep = np.linspace(0, len(y) - 1, min(len(y), MAX_POINTS)).astype(int) if len(y) else np.array([], dtype=int)
    worst = np.argsort(-err, kind="stable")[:WORST]
    return {
        "split": split,
        "task": "regression",
        "samples": int(len(y)),
        "mae": float(err.mean()) if len(y) else 0.0,
        "points": {"true": y[keep].tolist(), "predicted": pred[keep].tolist()},
        "worst": [
            {key: _sample_text(samples[i]), "true": float(y[i]), "predicted": float(pred[i]), "error": float(err[i])}
            for i in worst
        ],
    }


def evaluate(
    task: str, outputs: np.ndarray, targets: np.ndarray, labels: list[str], samples: list[Any], split: str, key: str
) -> dict[str, Any]:
    """The evaluation of ``split`` for ``task`` ("classification" or "regression")."""
    if task == "classification":
        return classification(outputs, targets, labels, samples, split, key)
    return regression(outputs, targets, samples, split, key)
