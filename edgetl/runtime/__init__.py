"""Runtimes: one small predictor interface over torch, onnxruntime, OpenVINO and LiteRT.

Everything here imports numpy and one runtime library only (never torch, timm or
transformers, except the torch predictor for bundles; text artifacts add the
``tokenizers`` library; audio artifacts compute their log-mel features with numpy,
``audio.py``), so the same code can run on a device that has just its runtime installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import (ARTIFACT_MANIFEST, Batch, DeviceOptions, DeviceUnavailable, EdgetlError, ManifestFacts, Predictor,
                   check_artifact_files, read_artifact_manifest)

RUNTIMES = {
    "torch": ("torch_rt", "TorchPredictor"),
    "onnxruntime": ("onnxruntime_rt", "OnnxRuntimePredictor"),
    "openvino": ("openvino_rt", "OpenVinoPredictor"),
    "litert": ("litert_rt", "LiteRtPredictor"),
}


class LoadedArtifact(ManifestFacts):
    """An artifact folder opened for prediction: manifest facts plus its predictor."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = Path(path)
        self.predictor = load_predictor(path, DeviceOptions(threads=threads))
        self.manifest = self.predictor.manifest
        self._tokenizer = None

    def encode_texts(self, texts: list[str]) -> dict:
        """Raw texts -> the artifact's token arrays, with the tokenizer that travels with it."""
        if self._tokenizer is None:
            from .text import load_tokenizer

            self._tokenizer = load_tokenizer(self.path, self.manifest)
        return self._tokenizer(texts)

    def encode_audio(self, files: list) -> "np.ndarray":
        """Audio files -> log-mel features float32 [B, n_mels, frames] with the manifest's settings (numpy only)."""
        from .audio import features

        if self.modality != "audio":
            raise EdgetlError(f"{self.path} is not an audio artifact (modality {self.modality})")
        return features(files, self.preprocess, str(self.path))

    def predict(self, batch: Batch):
        return self.predictor.predict(batch)


def load_predictor(path: str | Path, options: DeviceOptions | None = None, runtime: str | None = None) -> Predictor:
    """Open an artifact folder (``manifest.json`` + model files) with its runtime.

    ``runtime="torch"`` opens a bundle folder with PyTorch instead (needs edgetl and torch)."""
    import importlib

    options = options or DeviceOptions()
    manifest = {} if runtime == "torch" else read_artifact_manifest(path)
    runtime = runtime or manifest.get("runtime")
    if runtime not in RUNTIMES:
        raise EdgetlError(f"{path}/{ARTIFACT_MANIFEST} names runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
    module, cls = RUNTIMES[runtime]
    try:
        mod = importlib.import_module(f"{__name__}.{module}")
    except ImportError as exc:
        if (exc.name or "").startswith(__name__):
            raise  # our own bug, not a missing runtime
        raise EdgetlError(f"runtime {runtime} is not installed here (cannot import {exc.name}); install it to run {path}") from None
    if runtime == "torch":
        return getattr(mod, cls)(Path(path), manifest, options)
    check_artifact_files(path, manifest)
    try:
        return getattr(mod, cls)(Path(path), manifest, options)
    except EdgetlError:  # DeviceUnavailable included
        raise
    except Exception as exc:  # the runtime rejects the model file: garbage, truncated, another format
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise EdgetlError(f"{Path(path) / manifest['model_file']} cannot be loaded by {runtime} ({reason}); the artifact is "
                          f"damaged: re-run `edgetl export`") from None


__all__ = ["Batch", "DeviceOptions", "DeviceUnavailable", "RUNTIMES", "LoadedArtifact", "Predictor", "load_predictor", "read_artifact_manifest", "ARTIFACT_MANIFEST"]
