"""Predict on raw files (images, audio clips) or texts with a bundle or artifact: the manifest's preprocessing
(tokenizer, log-mel features), then top-k."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl_runtime.image import read_images
from edgetl_runtime.predict import decode

from .bundle import MANIFEST, load_bundle
from .errors import EdgetlError


def load_inputs(files: list[str], preprocess: dict[str, Any]) -> np.ndarray:
    for f in files:
        if Path(f).is_dir():
            raise EdgetlError(f"{f} is a folder, not a file; pass image files to predict on")
        if not Path(f).is_file():
            raise EdgetlError(f"{f} does not exist; pass image files to predict on")
    return read_images(files, preprocess, "pass a PNG/JPEG/BMP image")


def open_model(path: str | Path, threads: int | None = None) -> Any:
    """A bundle folder (PyTorch) or an exported artifact folder (its own runtime)."""
    from edgetl_runtime import ARTIFACT_MANIFEST, LoadedArtifact

    p = Path(path)
    if (p / ARTIFACT_MANIFEST).is_file() and not (p / MANIFEST).is_file():
        return LoadedArtifact(p, threads)
    return load_bundle(p)


def _results(bundle: Any, key: str, items: list[str], outputs: np.ndarray, top_k: int) -> list[dict[str, Any]]:
    return decode(bundle.task, bundle.labels, key, items, outputs, top_k, bundle.path)


def predict_files(bundle: Any, files: list[str], top_k: int = 3) -> list[dict[str, Any]]:
    """One result per file: top-k (label, probability) for classification, the value for regression.

    ``bundle`` is a ``Bundle`` or a ``LoadedArtifact`` (anything with predict/preprocess/labels/task)."""
    if getattr(bundle, "modality", "image") != "image":
        raise EdgetlError(
            f"{bundle.path} is a{'n' if bundle.modality == 'audio' else ''} {bundle.modality} model; "
            f"use predict_{'texts' if bundle.modality == 'text' else 'audio'}"
        )
    return _results(bundle, "file", files, bundle.predict(load_inputs(files, bundle.preprocess)), top_k)


def predict_texts(bundle: Any, texts: list[str], top_k: int = 3) -> list[dict[str, Any]]:
    """Like ``predict_files`` for a text model: raw texts in, one result per text.

    ``bundle`` is a text ``Bundle`` (its transformers tokenizer) or a ``LoadedArtifact`` (the
    ``tokenizers`` file that travels with it); both have ``encode_texts`` and ``predict``."""
    if getattr(bundle, "modality", "image") != "text":
        raise EdgetlError(f"{bundle.path} is not a text model; pass image files to predict on")
    if not texts or any(not t.strip() for t in texts):
        raise EdgetlError("pass one or more non-empty texts to predict on")
    return _results(bundle, "text", texts, bundle.predict(bundle.encode_texts(texts)), top_k)


def predict_audio(bundle: Any, files: list[str], top_k: int = 3) -> list[dict[str, Any]]:
    """Like ``predict_files`` for a speech model: audio files (WAV/FLAC/OGG, any rate and channel count) in,
    one result per file. Features come from ``runtime/audio.py`` with the manifest's settings, for a
    ``Bundle`` and a ``LoadedArtifact`` alike (the artifact path needs numpy and its runtime only)."""
    if getattr(bundle, "modality", "image") != "audio":
        raise EdgetlError(
            f"{bundle.path} is not a speech model; pass {'texts' if bundle.modality == 'text' else 'image files'} to predict on"
        )
    return _results(bundle, "file", files, bundle.predict(bundle.encode_audio(files)), top_k)
