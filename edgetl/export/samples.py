"""Representative inputs for calibration and held-out inputs for parity, from a bundle's own splits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import SPLITS as SPLITS_FILE, Bundle
from ..data.preprocess import load_image, preprocess_image
from ..data.sources import IMAGE_SUFFIXES, evenly_spaced
from ..errors import EdgetlError

def _splits(bundle: Bundle) -> dict[str, list[dict[str, Any]]]:
    import json

    path = bundle.path / SPLITS_FILE
    if not path.is_file():
        raise EdgetlError(f"{bundle.path} has no {SPLITS_FILE}; re-run `edgetl finetune` or pass --calibration DIR")
    return json.loads(path.read_text())


def _load(paths: list[str], bundle: Bundle) -> np.ndarray:
    arrays = []
    for p in paths:
        try:
            arrays.append(preprocess_image(load_image(p), bundle.preprocess))
        except Exception as exc:
            raise EdgetlError(f"cannot read sample image {p} ({type(exc).__name__}); is the training data still there?") from None
    return np.stack(arrays).astype(np.float32)


def calibration_inputs(bundle: Bundle, n: int, directory: str | None = None, seed: int = 0) -> np.ndarray:
    """``n`` preprocessed training images (seeded choice), or images from ``directory``."""
    if directory:
        root = Path(directory)
        if not root.is_dir():
            raise EdgetlError(f"--calibration {directory} is not a folder; pass a folder of images")
        paths = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise EdgetlError(f"--calibration {directory} holds no images")
    else:
        paths = [s["path"] for s in _splits(bundle)["train"]]
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(paths), size=min(n, len(paths)), replace=False).tolist())
    return _load([paths[i] for i in chosen], bundle)


def held_out(bundle: Bundle, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` validation and test samples (never training data), spread over both, and their targets."""
    splits = _splits(bundle)
    rows = (splits.get("val") or []) + (splits.get("test") or [])
    if not rows:
        raise EdgetlError(f"{bundle.path}/{SPLITS_FILE} has no validation or test samples for the parity check")
    rows = evenly_spaced(rows, n)
    if bundle.task == "classification":
        index = {label: i for i, label in enumerate(bundle.labels)}
        targets = np.asarray([index[r["label"]] for r in rows], dtype=np.int64)
    else:
        targets = np.asarray([r["target"] for r in rows], dtype=np.float32)
    return _load([r["path"] for r in rows], bundle), targets
