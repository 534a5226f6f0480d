"""The accuracy guard: a default budget per task, an artifact's drop against PyTorch with a paired
confidence interval, and the recovery ladder an int8 artifact climbs when it misses the budget.

The ladder (each rung is tried only when the ones before it missed the budget):

0. the target's default quantisation;
a. calibration: every alternative the target offers (more samples, percentile or entropy
   activation ranges, full bias correction, ...); the best attempt is kept;
b. mixed precision: the target's quantisable layers are ranked by measured sensitivity
   (each left in float alone, on a small held-out subset, scored by how close the outputs
   come to PyTorch's), then the most sensitive are kept in float, fewest first (doubling,
   then bisection), until the budget holds or half of them are float.

Rung c, a quantisation-aware fine-tune, is not built: on the evidence cases in
``benchmarks/results/int8_guard.md`` rungs a and b were enough.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgetl_runtime.metrics import DEFAULT_BUDGET, UNIT

from ..errors import EdgetlError

MAX_FLOAT_SHARE = 0.5  # rung b gives up rather than keep more than this share of the layers in float
SENSITIVITY_SAMPLES = 32  # held-out samples each sensitivity measurement runs on
MAX_RANKED = 32  # more layers than this are ranked in contiguous groups (MobileNetV2: 26 pairs)
Z95 = 1.959964


def budget_for(task: str, value: float | str | None) -> float | None:
    """The budget in the task's unit: ``"auto"`` is the task's default, None turns the guard off."""
    if value is None:
        return None
    if value == "auto":
        return DEFAULT_BUDGET[task]
    return float(value)


def parse_budget(text: str | None) -> float | str | None:
    """``--max-accuracy-drop`` as typed: a number, ``auto`` (the default) or ``none``."""
    if text is None or text.strip().lower() == "auto":
        return "auto"
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise EdgetlError(f"--max-accuracy-drop takes a number, auto or none, not {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise EdgetlError(f"--max-accuracy-drop must be 0 or more, not {text}")
    return value


def paired_drop(reference: np.ndarray, outputs: np.ndarray, targets: np.ndarray, task: str) -> dict[str, Any]:
    """How much worse ``outputs`` are than ``reference`` on the same samples, with a 95% interval from the
    per-sample differences. Classification: points of accuracy; regression: percent of PyTorch's MAE."""
    n = len(reference)
    if task == "classification":
        t = targets.astype(np.int64)
        d = 100.0 * ((reference.argmax(1) == t).astype(np.float64) - (outputs.argmax(1) == t).astype(np.float64))
    else:
        e_ref = np.abs(reference.reshape(n, -1) - targets.reshape(n, -1)).mean(1)
        e_out = np.abs(outputs.reshape(n, -1) - targets.reshape(n, -1)).mean(1)
        d = 100.0 * (e_out - e_ref) / max(float(e_ref.mean()), 1e-12)
    mean = float(d.mean())
    half = Z95 * float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else float("inf")
    return {"drop": mean, "ci95": [mean - half, mean + half], "unit": UNIT[task], "samples": int(n)}


def divergence(reference: np.ndarray, outputs: np.ndarray) -> float:
    """Squared output error relative to the reference's size: the sensitivity score (lower is closer)."""
    ref = reference.astype(np.float64)
    return float(np.mean((outputs.astype(np.float64) - ref) ** 2) / max(float(np.mean(ref**2)), 1e-12))


@dataclass(frozen=True)
class Plan:
    """How to quantise: a calibration variant of the target (``default`` first) and layers kept in float."""

    calibration: str = "default"
    float_layers: tuple[str, ...] = ()
    quick: bool = False  # a sensitivity measurement: a target may build it a cheaper way that computes the same
    accuracy_control: bool = False  # rung b by the target's own accuracy-controlled quantisation


@dataclass
class Attempt:
    """One quantised candidate, written and measured."""

    plan: Plan
    rung: str
    folder: Path
    manifest: dict[str, Any]
    drop: float

    def summary(self) -> dict[str, Any]:
        p = self.manifest.get("parity", {})
        floats = self.plan.float_layers or self.manifest.get("converter", {}).get("float_ops", [])
        return {
            "rung": self.rung,
            "calibration": self.plan.calibration,
            "float_layers": len(floats),
            "drop": round(self.drop, 3),
            "ci95": [round(x, 3) for x in p.get("guard", {}).get("ci95", [])],
            "p50_ms": p.get("p50_ms"),
            "size_bytes": self.manifest.get("size_bytes"),
        }


@dataclass
class Ladder:
    """What a target offers for one precision: calibration variants beyond its default, and the layers that
    may stay in float (in graph order)."""

    calibrations: list[str] = field(default_factory=list)
    float_candidates: list[str] = field(default_factory=list)
    accuracy_control: bool = False  # the target ranks and reverts layers itself, in one attempt (NNCF)


def _groups(layers: list[str], most: int) -> list[tuple[str, ...]]:
    size = max(1, math.ceil(len(layers) / most))
    return [tuple(layers[i : i + size]) for i in range(0, len(layers), size)]


def climb(
    attempt: Callable[[Plan, str], Attempt],
    ladder: Callable[[], Ladder],
    score: Callable[[Plan], float],
    budget: float,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[Attempt, list[dict[str, Any]]]:
    """Run the ladder; returns the chosen attempt (within budget, or the best reached) and the history."""
    best = attempt(Plan(), "default")
    history = [best.summary()]
    if best.drop <= budget:
        return best, history
    offer = ladder()
    for calibration in offer.calibrations:  # rung a
        log(f"drop {best.drop:.2f} > {budget}: calibration {calibration}")
        try:
            a = attempt(Plan(calibration=calibration), "a: calibration")
        except Exception as exc:  # a variant the converter cannot apply to this model: recorded, and the next one tried
            history.append({"rung": "a: calibration", "calibration": calibration, "error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        history.append(a.summary())
        if a.drop < best.drop:
            best = a
        if best.drop <= budget:
            return best, history
    base = best.plan.calibration  # rung b, on the best calibration
    if offer.accuracy_control:
        log(f"drop {best.drop:.2f} > {budget}: the target's accuracy-controlled quantisation")
        a = attempt(Plan(base, accuracy_control=True), "b: mixed precision")
        history.append(a.summary())
        return (a if a.drop <= budget or a.drop < best.drop else best), history
    groups = _groups(offer.float_candidates, MAX_RANKED)
    if not groups:
        return best, history
    log(f"drop {best.drop:.2f} > {budget}: ranking {len(groups)} layer groups by sensitivity")
    scores = [score(Plan(base, g, quick=True)) for g in groups]
    order = [groups[i] for i in np.argsort(scores, kind="stable")]  # keeping the first in float helps most

    def mixed(k: int) -> Attempt:
        layers = tuple(name for g in order[:k] for name in g)
        log(f"keeping {len(layers)} layers in float")
        a = attempt(Plan(base, layers), "b: mixed precision")
        history.append(a.summary())
        return a

    most = max(1, int(len(groups) * MAX_FLOAT_SHARE))
    low, k, found = 0, 1, None
    while True:  # doubling until the budget holds, then bisection between the last miss and the first hold
        a = mixed(k)
        if a.drop < best.drop:
            best = a
        if a.drop <= budget:
            found = (k, a)
            break
        if k >= most:
            return best, history
        low, k = k, min(most, 2 * k)
    high, chosen = found
    while high - low > 1:
        mid = (low + high) // 2
        a = mixed(mid)
        if a.drop <= budget:
            high, chosen = mid, a
        else:
            low = mid
    return chosen, history
