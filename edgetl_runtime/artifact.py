"""An artifact folder opened for prediction: its manifest, its predictor, and raw inputs -> canonical batches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .base import (
    Batch,
    DeviceOptions,
    EdgetlError,
    ManifestFacts,
    Predictor,
    check_artifact_files,
)
from .manifest import ARTIFACT_MANIFEST, ArtifactManifest

# runtime name -> (module, class); the torch predictor needs edgetl and torch, so it is named, never imported here
RUNTIMES = {
    "torch": ("edgetl.torch_predictor", "TorchPredictor"),
    "onnxruntime": ("edgetl_runtime.onnxruntime_rt", "OnnxRuntimePredictor"),
    "openvino": ("edgetl_runtime.openvino_rt", "OpenVinoPredictor"),
    "litert": ("edgetl_runtime.litert_rt", "LiteRtPredictor"),
}


class LoadedArtifact(ManifestFacts):
    """An artifact folder opened for prediction: manifest facts plus its predictor."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = Path(path)
        self.predictor = load_predictor(path, DeviceOptions(threads=threads))
        self.manifest = self.predictor.manifest
        self._tokenizer: Any = None

    def encode_texts(self, texts: list[str]) -> dict:
        """Raw texts -> the artifact's token arrays, with the tokenizer that travels with it."""
        if self._tokenizer is None:
            from .text import load_tokenizer

            self._tokenizer = load_tokenizer(self.path, self.manifest)
        return self._tokenizer(texts)

    def encode_audio(self, files: list) -> np.ndarray:
        """Audio files -> log-mel features float32 [B, n_mels, frames] with the manifest's settings (numpy only)."""
        from .audio import features

        if self.modality != "audio":
            raise EdgetlError(f"{self.path} is not an audio artifact (modality {self.modality})")
        return features(files, self.preprocess, str(self.path))

    def encode_images(self, images: list) -> np.ndarray:
        """Image files (or PIL images) -> the evaluation-preprocessed float32 NCHW batch."""
        from .image import preprocess_image, read_images

        if self.modality != "image":
            raise EdgetlError(f"{self.path} is not an image artifact (modality {self.modality})")
        if all(isinstance(x, (str, Path)) for x in images):
            return read_images([str(x) for x in images], self.preprocess, "pass a PNG/JPEG/BMP image")
        return np.stack([preprocess_image(im, self.preprocess) for im in images]).astype(np.float32)

    def encode(self, raw: list) -> Batch:
        """Raw inputs of this artifact's modality -> its canonical batch."""
        if not isinstance(raw, (list, tuple)) or not raw:
            raise EdgetlError(f"pass a non-empty list of inputs to {self.path}")
        encoders: dict[str, Callable[[list], Batch]] = {
            "image": self.encode_images,
            "text": self.encode_texts,
            "audio": self.encode_audio,
        }
        return encoders[self.modality](list(raw))

    def predict(self, batch: Batch) -> np.ndarray:
        """Canonical batch -> float32 outputs (logits or values)."""
        return self.predictor.predict(batch)


class Model(LoadedArtifact):
    """``load(artifact_dir)``: raw inputs in, results out (top-k labels or a value per input)."""

    def predict(self, raw: list, top_k: int = 3) -> list[dict]:  # type: ignore[override]
        from .predict import decode

        items = [str(x) if isinstance(x, (str, Path)) else f"#{i}" for i, x in enumerate(raw)]
        return decode(self.task, self.labels, "input", items, self.run(self.encode(raw)), top_k, self.path)

    def run(self, batch: Batch) -> np.ndarray:
        """Canonical batch -> float32 outputs."""
        return self.predictor.predict(batch)


def load(path: str | Path, threads: int | None = None) -> Model:
    """Open an artifact folder written by ``edgetl export`` for prediction on raw inputs."""
    return Model(path, threads)


def load_predictor(path: str | Path, options: DeviceOptions | None = None, runtime: str | None = None) -> Predictor:
    """Open an artifact folder (``manifest.json`` + model files) with its runtime.

    ``runtime="torch"`` opens a bundle folder with PyTorch instead (needs edgetl and torch)."""
    import importlib

    options = options or DeviceOptions()
    spec = None if runtime == "torch" else ArtifactManifest.read(path)  # read and checked once
    manifest = dict(spec.raw) if spec else {}
    runtime = runtime or manifest.get("runtime")
    if runtime not in RUNTIMES:
        raise EdgetlError(f"{path}/{ARTIFACT_MANIFEST} names runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
    module, cls = RUNTIMES[runtime]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        if (exc.name or "").startswith(("edgetl_runtime", "edgetl.")):
            raise  # our own bug, not a missing runtime
        raise EdgetlError(
            f"runtime {runtime} is not installed here (cannot import {exc.name}); install it to run {path}"
        ) from None
    if runtime == "torch":  # a bundle folder: the predictor reads the bundle's own manifest
        return getattr(mod, cls)(Path(path), manifest, options)
    check_artifact_files(path, manifest)
    try:
        return getattr(mod, cls)(Path(path), spec, options)
    except EdgetlError:  # DeviceUnavailable included
        raise
    except Exception as exc:  # the runtime rejects the model file: garbage, truncated, another format
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise EdgetlError(
            f"{Path(path) / manifest['model_file']} cannot be loaded by {runtime} ({reason}); the artifact is "
            f"damaged: re-run `edgetl export`"
        ) from None
