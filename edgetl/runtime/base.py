"""The predictor interface and the input/output conventions all runtimes share.

A predictor takes the bundle's canonical input (preprocessed float32, NCHW for
images) and returns float32 outputs. What differs per artifact (NHWC layout,
int8 input/output with scale and zero point) is described in the artifact's
manifest and undone here, so callers never special-case an artifact.
"""

from __future__ import annotations

import json
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

try:  # inside edgetl; on a device the package travels alone
    from ..errors import EdgetlError
except ImportError:  # pragma: no cover - exercised on SSH devices
    class EdgetlError(Exception):
        """A problem the user can fix, reported in one line."""



class DeviceUnavailable(EdgetlError):
    """The runtime is installed but the requested device or provider is not here."""


ARTIFACT_MANIFEST = "manifest.json"


@dataclass
class DeviceOptions:
    """Where and how an artifact runs: thread count and the runtime's device/provider choice."""

    threads: int | None = None
    onnxruntime_providers: list[str] = field(default_factory=lambda: ["CPUExecutionProvider"])
    openvino_device: str = "CPU"
    torch_device: str = "cpu"


class Predictor(Protocol):
    manifest: dict[str, Any]

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Canonical float32 input batch -> float32 outputs (logits or values)."""


def read_artifact_manifest(path: str | Path) -> dict[str, Any]:
    mfile = Path(path) / ARTIFACT_MANIFEST
    if not mfile.is_file():
        raise EdgetlError(f"{path} is not an edgetl artifact (no {ARTIFACT_MANIFEST}); pass a folder written by `edgetl export`")
    try:
        return json.loads(mfile.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgetlError(f"{mfile} is not valid JSON ({exc}); re-run `edgetl export`") from None


def to_artifact_input(batch: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Canonical NCHW float32 -> what the artifact's input wants (layout, int8 quantisation)."""
    x = np.ascontiguousarray(batch, dtype=np.float32)
    if spec.get("layout") == "NHWC" and x.ndim == 4:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    q = spec.get("quantization")
    if q:
        info = np.iinfo(np.dtype(spec["dtype"]))
        x = np.clip(np.round(x / q["scale"] + q["zero_point"]), info.min, info.max).astype(spec["dtype"])
    return x


def from_artifact_output(out: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    q = spec.get("quantization")
    if q:
        return ((out.astype(np.float32) - q["zero_point"]) * q["scale"]).astype(np.float32)
    return np.asarray(out, dtype=np.float32)


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB. Linux: VmHWM, because ru_maxrss carries
    the parent's peak across fork+exec (a child of a torch-loaded process would report it)."""
    import sys

    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def fixed_batch(spec: dict[str, Any]) -> int | None:
    """The artifact's fixed batch size, or None when its batch dimension is dynamic."""
    first = (spec.get("shape") or [None])[0]
    return first if isinstance(first, int) else None


def run_in_chunks(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, size: int | None) -> np.ndarray:
    """Feed ``x`` to a fixed-batch model ``size`` rows at a time (all at once when dynamic)."""
    if not size or len(x) == size:
        return run(x)
    return np.concatenate([run(x[i:i + size]) for i in range(0, len(x), size)])
