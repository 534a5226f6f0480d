"""The predictor interface and the input/output conventions all runtimes share.

A predictor takes the canonical input of its modality and returns float32
outputs: preprocessed float32 NCHW for images, float32 log-mel NCT
(batch, mel bins, frames) for audio; for text a dict
``{"input_ids", "attention_mask"}`` of int64 ``[B, L]`` arrays (right-padded).
What differs per artifact (NHWC layout, int8 input/output with scale and zero
point, a fixed sequence length, int32 token ids) is described in the artifact's
manifest and undone here, so callers never special-case an artifact.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import EdgetlError
from .manifest import ArtifactManifest, TensorSpec, check_facts

# the canonical input: an NCHW float32 array (images) or named int64 arrays (text)
Batch = np.ndarray | dict[str, np.ndarray]


@dataclass
class DeviceOptions:
    """Where and how an artifact runs: thread count and the runtime's device/provider choice."""

    threads: int | None = None
    onnxruntime_providers: list[str] = field(default_factory=lambda: ["CPUExecutionProvider"])
    openvino_device: str = "CPU"
    torch_device: str = "cpu"


class ManifestFacts:
    """What bundles and artifacts both read from their manifest."""

    manifest: dict[str, Any]

    @property
    def modality(self) -> str:
        """ "image", "text" or "audio" (manifests written before text existed have no field: image)."""
        return self.manifest.get("modality", "image")

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def labels(self) -> list[str]:
        return self.manifest.get("labels") or []

    @property
    def preprocess(self) -> dict[str, Any]:
        return self.manifest["preprocess"]


class Predictor(Protocol):
    manifest: dict[str, Any]

    def predict(self, batch: Batch) -> np.ndarray:
        """Canonical input batch (NCHW or NCT float32, or a dict of int64 token arrays) -> float32 outputs."""


_MISSING = object()


def field_of(manifest: dict[str, Any], dotted: str, default: Any = _MISSING) -> Any:
    """``manifest["a"]["b"]`` for ``"a.b"``; ``default`` (else a KeyError) when a part is missing."""
    value: Any = manifest
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            if default is _MISSING:
                raise KeyError(dotted)
            return default
        value = value[part]
    return value


def check_manifest(manifest: dict[str, Any], fields: tuple[tuple[str, tuple[type, ...]], ...], where: Any, fix: str) -> None:
    """One line naming the first missing or mistyped field (a hand-edited or truncated manifest), else nothing."""

    def fail(what: str) -> None:
        raise EdgetlError(f"{where}: {what}; {fix}")

    for dotted, types in fields:
        try:
            value = field_of(manifest, dotted)
        except KeyError:
            fail(f"field '{dotted}' is missing")
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            fail(f"field '{dotted}' is a {type(value).__name__}, expected {' or '.join(t.__name__ for t in types)}")
    check_facts(manifest, where, fix)


def read_json(path: Path, fix: str) -> Any:
    """A JSON file edgetl wrote; damaged (not JSON, not UTF-8) is one line saying ``fix``."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgetlError(f"{path} is not valid JSON ({exc}); {fix}") from None


def read_artifact_manifest(path: str | Path) -> dict[str, Any]:
    """The artifact's manifest as written, after ``ArtifactManifest`` checked it field by field."""
    return dict(ArtifactManifest.read(path).raw)


def check_artifact_files(path: str | Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists is there with the size it had when exported (a deleted or truncated model is
    one line, not a runtime's traceback)."""
    path = Path(path)
    for name, size in manifest["files"].items():
        f = path / name
        if not f.is_file():
            raise EdgetlError(f"{path} is damaged: {name} is missing; re-run `edgetl export` to rewrite the artifact")
        if isinstance(size, int) and f.stat().st_size != size:
            raise EdgetlError(
                f"{path} is damaged: {name} has {f.stat().st_size} bytes, the manifest says {size}; "
                f"re-run `edgetl export` to rewrite the artifact"
            )
    if manifest["model_file"] not in manifest["files"] and not (path / manifest["model_file"]).is_file():
        raise EdgetlError(f"{path} is damaged: {manifest['model_file']} is missing; re-run `edgetl export`")


def to_artifact_input(batch: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Canonical NCHW (or NCT) float32 -> what the artifact's input wants (layout, int8 quantisation)."""
    x = np.ascontiguousarray(batch, dtype=np.float32)
    if spec.layout == "NHWC" and x.ndim == 4:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    q = spec.quantization
    if q:
        info = np.iinfo(np.dtype(spec.dtype))
        x = np.clip(np.round(x / q.scale + q.zero_point), info.min, info.max).astype(spec.dtype)
    return x


def batch_len(batch: Batch) -> int:
    return len(next(iter(batch.values()))) if isinstance(batch, dict) else len(batch)


def batch_rows(batch: Batch, start: int, stop: int) -> Batch:
    """Rows ``start:stop`` of a canonical batch."""
    if isinstance(batch, dict):
        return {k: v[start:stop] for k, v in batch.items()}
    return batch[start:stop]


def _text_feeds(batch: dict[str, np.ndarray], spec: TensorSpec) -> dict[str, np.ndarray]:
    """Token arrays -> the artifact's dtype, right-padded to its fixed sequence length if it has one."""
    names = spec.names
    missing = [n for n in names if n not in batch]
    if missing:
        raise EdgetlError(f"text input lacks {', '.join(missing)}; pass a dict with {', '.join(names)}")
    length = spec.fixed_length
    if spec.buckets:  # one signature per length: pad up to the smallest that holds the batch
        width = np.asarray(batch[names[0]]).shape[-1]
        fits = [b for b in spec.buckets if b >= width]
        length = fits[0] if fits else spec.buckets[-1]
    feeds = {}
    for i, name in enumerate(names):
        x = np.asarray(batch[name])
        if x.ndim != 2:
            raise EdgetlError(f"text input {name} has shape {list(x.shape)}; expected [batch, tokens]")
        if length is not None and x.shape[1] != length:
            if x.shape[1] > length:
                raise EdgetlError(f"text input has {x.shape[1]} tokens; this artifact takes at most {length}")
            pad = spec.pad_id if i == 0 else 0  # token ids pad with the pad token, masks with 0
            x = np.concatenate([x, np.full((len(x), length - x.shape[1]), pad, dtype=x.dtype)], axis=1)
        feeds[name] = np.ascontiguousarray(x, dtype=spec.dtype or "int64")
    return feeds


def to_artifact_feeds(batch: Batch, spec: TensorSpec) -> dict[str, np.ndarray]:
    """Canonical input -> the artifact's named inputs (see ``to_artifact_input`` for images)."""
    if isinstance(batch, dict):
        return _text_feeds(batch, spec)
    return {spec.names[0]: to_artifact_input(batch, spec)}


def from_artifact_output(out: np.ndarray, spec: TensorSpec) -> np.ndarray:
    q = spec.quantization
    if q:
        return ((out.astype(np.float32) - q.zero_point) * q.scale).astype(np.float32)
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


def run_in_chunks(run: Callable[[Any], np.ndarray], x: Batch, size: int | None) -> np.ndarray:
    """Feed ``x`` (an array or named arrays) to a fixed-batch model ``size`` rows at a time (all at once when dynamic)."""
    n = batch_len(x)
    if not size or n == size:
        return run(x)
    return np.concatenate([run(batch_rows(x, i, i + size)) for i in range(0, n, size)])
