"""Representative inputs for calibration and held-out inputs for parity, from a bundle's own splits.

Images come back preprocessed (NCHW float32); audio clips as the bundle's log-mel
features (float32 [B, n_mels, frames], ``runtime/audio.py``); texts tokenised with
the bundle's own tokenizer into int64 ``input_ids`` / ``attention_mask``,
right-padded to ``length`` (the fixed sequence length of an artifact) or to the
longest text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl_runtime.audio import AUDIO_SUFFIXES, features
from edgetl_runtime.base import Batch
from edgetl_runtime.image import read_images

from ..bundle import SPLITS as SPLITS_FILE
from ..bundle import Bundle, read_splits
from ..data.sources import IMAGE_SUFFIXES, encode_targets, evenly_spaced
from ..errors import EdgetlError


def _splits(bundle: Bundle) -> dict[str, list[dict[str, Any]]]:
    return read_splits(bundle.path, bundle.manifest)


def _train_rows(bundle: Bundle) -> list[dict[str, Any]]:
    rows = _splits(bundle).get("train") or []
    if not rows:
        raise EdgetlError(f"{bundle.path}/{SPLITS_FILE} has no training samples to calibrate on; pass --calibration")
    return rows


def _load(paths: list[str], bundle: Bundle) -> np.ndarray:
    if bundle.modality == "audio":
        try:
            return features(paths, bundle.preprocess, str(bundle.path))
        except EdgetlError as exc:
            raise EdgetlError(f"cannot read a sample clip ({exc}); is the training data still there?") from None
    return read_images(paths, bundle.preprocess, "is the training data still there?")


def _calibration_texts(bundle: Bundle, source: str | None) -> list[str]:
    """The bundle's training texts, or the lines of a UTF-8 text file ``source``."""
    if not source:
        return [s["text"] for s in _train_rows(bundle)]
    path = Path(source)
    if not path.is_file():
        raise EdgetlError(f"--calibration {source} is not a file; pass a UTF-8 text file, one text per line")
    try:
        texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise EdgetlError(f"--calibration {source} is not UTF-8; pass a UTF-8 text file, one text per line") from None
    if not texts:
        raise EdgetlError(f"--calibration {source} holds no texts")
    return texts


def calibration_inputs(bundle: Bundle, n: int, directory: str | None = None, seed: int = 0, length: int | None = None) -> Batch:
    """``n`` preprocessed training images, audio features or tokenised training texts (seeded choice), or from
    ``directory`` (a folder of images or audio files; for text bundles a text file, one text per line)."""
    if bundle.modality == "text":
        texts = _calibration_texts(bundle, directory)
        rng = np.random.default_rng(seed)
        chosen = sorted(rng.choice(len(texts), size=min(n, len(texts)), replace=False).tolist())
        return bundle.encode_texts([texts[i] for i in chosen], length)
    if directory:
        kind, suffixes = ("audio files", AUDIO_SUFFIXES) if bundle.modality == "audio" else ("images", IMAGE_SUFFIXES)
        root = Path(directory)
        if not root.is_dir():
            raise EdgetlError(f"--calibration {directory} is not a folder; pass a folder of {kind}")
        paths = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in suffixes)
        if not paths:
            raise EdgetlError(f"--calibration {directory} holds no {kind} ({', '.join(sorted(suffixes))})")
    else:
        paths = [s["path"] for s in _train_rows(bundle)]
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(paths), size=min(n, len(paths)), replace=False).tolist())
    return _load([paths[i] for i in chosen], bundle)


def held_out(bundle: Bundle, n: int, length: int | None = None) -> tuple[Batch, np.ndarray]:
    """Up to ``n`` validation and test samples (never training data), spread over both, and their targets."""
    splits = _splits(bundle)
    rows = (splits.get("val") or []) + (splits.get("test") or [])
    if not rows:
        raise EdgetlError(f"{bundle.path}/{SPLITS_FILE} has no validation or test samples for the parity check")
    rows = evenly_spaced(rows, n)
    targets = encode_targets(bundle.task, bundle.labels, rows)
    if bundle.modality == "text":
        return bundle.encode_texts([r["text"] for r in rows], length), targets
    return _load([r["path"] for r in rows], bundle), targets
