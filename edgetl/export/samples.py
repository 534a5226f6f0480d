"""Representative inputs for calibration and held-out inputs for parity, from a bundle's own splits.

Images come back preprocessed (NCHW float32); audio clips as the bundle's log-mel
features (float32 [B, n_mels, frames], ``runtime/audio.py``); texts tokenised with
the bundle's own tokenizer into int64 ``input_ids`` / ``attention_mask``,
right-padded to ``length`` (the fixed sequence length of an artifact) or to the
longest text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetl_runtime.base import Batch

from ..bundle import SPLITS as SPLITS_FILE
from ..bundle import TARGET_SPLIT, TARGET_TEST, Bundle, read_splits
from ..data.sources import encode_targets, evenly_spaced
from ..errors import EdgetlError
from ..modality import get_modality


def _splits(bundle: Bundle) -> dict[str, list[dict[str, Any]]]:
    return read_splits(bundle.path, bundle.manifest)


def _calibration_name(splits: dict[str, list[dict[str, Any]]]) -> str:
    return TARGET_SPLIT if splits.get(TARGET_SPLIT) else "train"


def calibration_split(bundle: Bundle) -> str:
    """Where calibration samples come from without --calibration: an adapted bundle's unlabelled target samples
    (the domain it will see), else its training split."""
    return _calibration_name(_splits(bundle))


CALIBRATION_SOURCES = {TARGET_SPLIT: "bundle target split (unlabelled, --adapt-to)", "train": "bundle training split"}


def _calibration_rows(bundle: Bundle) -> list[dict[str, Any]]:
    splits = _splits(bundle)
    rows = splits.get(_calibration_name(splits)) or []
    if not rows:
        raise EdgetlError(f"{bundle.path}/{SPLITS_FILE} has no training samples to calibrate on; pass --calibration")
    return rows


def calibration_inputs(bundle: Bundle, n: int, directory: str | None = None, seed: int = 0, length: int | None = None) -> Batch:
    """``n`` preprocessed images, audio features or tokenised texts of the bundle's calibration split (seeded
    choice; ``calibration_split``), or from
    ``directory`` (a folder of images or audio files; for text bundles a text file, one text per line)."""
    modality = get_modality(bundle.modality)
    items = modality.calibration_items(directory) if directory else [s[modality.sample_key] for s in _calibration_rows(bundle)]
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(items), size=min(n, len(items)), replace=False).tolist())
    return modality.samples(bundle, [items[i] for i in chosen], length)


def held_out(bundle: Bundle, n: int, length: int | None = None) -> tuple[Batch, np.ndarray]:
    """Up to ``n`` validation and test samples (never training data; an adapted bundle's labelled target test split
    too), spread over them, and their targets."""
    splits = _splits(bundle)
    rows = (splits.get("val") or []) + (splits.get("test") or []) + (splits.get(TARGET_TEST) or [])
    if not rows:
        raise EdgetlError(f"{bundle.path}/{SPLITS_FILE} has no validation or test samples for the parity check")
    rows = evenly_spaced(rows, n)
    targets = encode_targets(bundle.task, bundle.labels, rows)
    modality = get_modality(bundle.modality)
    return modality.samples(bundle, [r[modality.sample_key] for r in rows], length), targets
