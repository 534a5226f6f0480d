"""Parity: an artifact's outputs against the PyTorch reference on the same inputs (differences, task metrics).

fp32 artifacts must match tightly (``FP32_TOLERANCE``, relative to the size of the
reference outputs); lower precisions report what they lose. Used at export and by the benchmark.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import EdgetlError
from .metrics import PRIMARY, task_metrics

# max |artifact - torch| <= FP32_TOLERANCE * max(1, max |torch|)
FP32_TOLERANCE = 1e-3


def non_finite(outputs: np.ndarray) -> int:
    """How many output rows hold a nan or an infinity."""
    out = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1) if len(outputs) else np.zeros((0, 1))
    return int((~np.isfinite(out)).any(axis=1).sum())


def compare(reference: np.ndarray, outputs: np.ndarray, targets: np.ndarray, task: str, num_outputs: int) -> dict[str, Any]:
    """Differences and task metrics of ``outputs`` against the PyTorch ``reference``. Outputs with a nan or an
    infinity get no metrics, only ``non_finite_outputs`` (a failure wherever it is read); a non-finite
    reference means the bundle itself is broken."""
    bad_ref = non_finite(reference)
    if bad_ref:
        raise EdgetlError(
            f"the PyTorch bundle itself gives nan or inf on {bad_ref} of {len(reference)} samples; its weights "
            f"are broken: fine-tune again with lower learning rates"
        )
    bad = non_finite(outputs)
    if bad:
        return {"samples": int(len(reference)), "non_finite_outputs": bad, "metric": PRIMARY[task][0]}
    ref = reference.astype(np.float64)
    out = outputs.astype(np.float64)
    diff = np.abs(out - ref)
    scale = float(np.max(np.abs(ref))) or 1.0
    report: dict[str, Any] = {
        "samples": int(len(ref)),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "max_rel_diff": float(diff.max() / scale),
        "reference_max_abs": scale,
    }
    metric, higher_better = PRIMARY[task]
    m_ref = task_metrics(task, reference, targets, num_outputs)
    m_out = task_metrics(task, outputs, targets, num_outputs)
    report["metric"] = metric
    report["torch"] = m_ref
    report["artifact"] = m_out
    if task == "classification":
        report["top1_agreement"] = float(np.mean(ref.argmax(1) == out.argmax(1)))
        report["drop_points"] = 100.0 * (m_ref[metric] - m_out[metric])
    else:
        report["drop"] = (m_out[metric] - m_ref[metric]) if not higher_better else (m_ref[metric] - m_out[metric])
    return report
