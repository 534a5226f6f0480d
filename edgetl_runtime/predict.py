"""Outputs -> results: softmax top-k labels for classification, the value for regression; nan/inf refused."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import EdgetlError


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def finite_outputs(outputs: np.ndarray, items: list[str], where: Any) -> np.ndarray:
    """The model's outputs, or one line naming the first input it gave nan or inf for."""
    bad = [item for item, row in zip(items, np.asarray(outputs, dtype=np.float64)) if not np.isfinite(row).all()]
    if bad:
        raise EdgetlError(
            f"{where} gives nan or inf for {bad[0]}{f' (and {len(bad) - 1} more)' if len(bad) > 1 else ''}; "
            f"the model is broken: re-run `edgetl finetune` (or `edgetl export` for an artifact)"
        )
    return outputs


def decode(
    task: str, labels: list[str], key: str, items: list[str], outputs: np.ndarray, top_k: int, where: Any
) -> list[dict[str, Any]]:
    """One result per input: ``{key: item, "top": [(label, probability), ...]}`` or ``{key: item, "value": v}``."""
    if top_k < 1:
        raise EdgetlError("--top-k must be at least 1")
    finite_outputs(outputs, items, where)
    results: list[dict[str, Any]] = []
    for item, out in zip(items, outputs):
        if task == "classification":
            probs = softmax(out)
            top = np.argsort(-probs)[:top_k]
            results.append({key: item, "top": [(labels[i], float(probs[i])) for i in top]})
        else:
            results.append({key: item, "value": float(out[0])})
    return results
