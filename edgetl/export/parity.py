"""Parity: run an artifact in its real runtime and the PyTorch bundle on the same inputs.

fp32 artifacts must match tightly (``FP32_TOLERANCE``, relative to the size of the
reference outputs); lower precisions report what they lose, and
``--max-accuracy-drop`` turns a loss into a failed export.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import EdgetlError
from ..runtime.base import non_finite
from ..train.metrics import PRIMARY, task_metrics

# max |artifact - torch| <= FP32_TOLERANCE * max(1, max |torch|)
FP32_TOLERANCE = 1e-3


class ExportRejected(EdgetlError):
    """The artifact was written and run, but does not compute what the bundle computes."""

    exit_code = 3


def compare(reference: np.ndarray, outputs: np.ndarray, targets: np.ndarray, task: str, num_outputs: int) -> dict[str, Any]:
    """Differences and task metrics of ``outputs`` against the PyTorch ``reference``. Outputs with a nan or an
    infinity get no metrics, only ``non_finite_outputs`` (a failure wherever it is read); a non-finite
    reference means the bundle itself is broken."""
    bad_ref = non_finite(reference)
    if bad_ref:
        raise EdgetlError(f"the PyTorch bundle itself gives nan or inf on {bad_ref} of {len(reference)} samples; its weights "
                          f"are broken: fine-tune again with lower learning rates")
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


def check(report: dict[str, Any], precision: str, budget: float | None, where: str, unit: str = "points") -> None:
    """Raise ``ExportRejected`` when outputs are not finite, fp32 drifts or the metric drops more than the budget
    (``report["guard"]["drop"]``: points of accuracy, or percent of MAE)."""
    if report.get("non_finite_outputs"):
        report["passed"] = False
        raise ExportRejected(f"{where}: the artifact gives nan or inf on {report['non_finite_outputs']} of {report['samples']} "
                             f"held-out samples; it computes garbage")
    report["tolerance"] = FP32_TOLERANCE * max(1.0, report["reference_max_abs"]) if precision == "fp32" else None
    if precision == "fp32" and report["max_abs_diff"] > report["tolerance"]:
        report["passed"] = False
        raise ExportRejected(f"{where}: fp32 artifact differs from PyTorch by {report['max_abs_diff']:.2e} "
                             f"(tolerance {report['tolerance']:.1e}); the converter changed the computation")
    g = report.get("guard", {})
    if budget is not None and g.get("drop") is not None and g["drop"] > budget:
        report["passed"] = False
        lo, hi = g["ci95"]
        raise ExportRejected(f"{where}: {report['metric']} drops {g['drop']:.2f} {unit} against PyTorch "
                             f"(95% interval {lo:.2f} to {hi:.2f}, {g['samples']} held-out samples; "
                             f"{report['torch'][report['metric']]:.4f} -> {report['artifact'][report['metric']]:.4f}), "
                             f"more than --max-accuracy-drop {budget:g}")
    report["passed"] = True
