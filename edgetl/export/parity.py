"""Parity at export: an artifact's comparison against the PyTorch bundle (``edgetl_runtime.parity``) turned into
a pass or an ``ExportRejected``.

fp32 artifacts must match tightly (``FP32_TOLERANCE``, relative to the size of the
reference outputs); lower precisions report what they lose, and
``--max-accuracy-drop`` turns a loss into a failed export.
"""

from __future__ import annotations

from typing import Any

from edgetl_runtime.parity import FP32_TOLERANCE, compare

from ..errors import EdgetlError

__all__ = ["FP32_TOLERANCE", "ExportRejected", "check", "compare"]


class ExportRejected(EdgetlError):
    """The artifact was written and run, but does not compute what the bundle computes."""

    exit_code = 3


def check(report: dict[str, Any], precision: str, budget: float | None, where: str, unit: str = "points") -> None:
    """Raise ``ExportRejected`` when outputs are not finite, fp32 drifts or the metric drops more than the budget
    (``report["guard"]["drop"]``: points of accuracy, or percent of MAE)."""
    if report.get("non_finite_outputs"):
        report["passed"] = False
        raise ExportRejected(
            f"{where}: the artifact gives nan or inf on {report['non_finite_outputs']} of {report['samples']} "
            f"held-out samples; it computes garbage"
        )
    report["tolerance"] = FP32_TOLERANCE * max(1.0, report["reference_max_abs"]) if precision == "fp32" else None
    if precision == "fp32" and report["max_abs_diff"] > report["tolerance"]:
        report["passed"] = False
        raise ExportRejected(
            f"{where}: fp32 artifact differs from PyTorch by {report['max_abs_diff']:.2e} "
            f"(tolerance {report['tolerance']:.1e}); the converter changed the computation"
        )
    g = report.get("guard", {})
    if budget is not None and g.get("drop") is not None and g["drop"] > budget:
        report["passed"] = False
        lo, hi = g["ci95"]
        raise ExportRejected(
            f"{where}: {report['metric']} drops {g['drop']:.2f} {unit} against PyTorch "
            f"(95% interval {lo:.2f} to {hi:.2f}, {g['samples']} held-out samples; "
            f"{report['torch'][report['metric']]:.4f} -> {report['artifact'][report['metric']]:.4f}), "
            f"more than --max-accuracy-drop {budget:g}"
        )
    report["passed"] = True
