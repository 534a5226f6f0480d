"""Runtimes: one small predictor interface over torch, onnxruntime, OpenVINO and LiteRT.

Everything here imports numpy and one runtime library only (never torch, timm or
transformers, except the torch predictor for bundles), so the same code can run
on a device that has just its runtime installed.
"""

from __future__ import annotations

from pathlib import Path

from .base import ARTIFACT_MANIFEST, Predictor, read_artifact_manifest

_RUNTIMES = {
    "onnxruntime": ("edgetl.runtime.onnxruntime_rt", "OnnxRuntimePredictor"),
    "openvino": ("edgetl.runtime.openvino_rt", "OpenVinoPredictor"),
    "litert": ("edgetl.runtime.litert_rt", "LiteRtPredictor"),
}


class LoadedArtifact:
    """An artifact folder opened for prediction: manifest facts plus its predictor."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = Path(path)
        self.predictor = load_predictor(path, threads)
        self.manifest = self.predictor.manifest

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def labels(self) -> list[str]:
        return self.manifest.get("labels") or []

    @property
    def preprocess(self) -> dict:
        return self.manifest["preprocess"]

    def predict(self, batch):
        return self.predictor.predict(batch)


def load_predictor(path: str | Path, threads: int | None = None) -> Predictor:
    """Open an artifact folder (``manifest.json`` + model files) with its runtime."""
    import importlib

    from ..errors import EdgetlError

    manifest = read_artifact_manifest(path)
    runtime = manifest.get("runtime")
    if runtime not in _RUNTIMES:
        raise EdgetlError(f"{path}/{ARTIFACT_MANIFEST} names runtime {runtime!r}; known: {', '.join(_RUNTIMES)}")
    module, cls = _RUNTIMES[runtime]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise EdgetlError(f"runtime {runtime} is not installed ({exc.name}); install it to run {path}") from None
    return getattr(mod, cls)(Path(path), manifest, threads)


__all__ = ["LoadedArtifact", "Predictor", "load_predictor", "read_artifact_manifest", "ARTIFACT_MANIFEST"]
