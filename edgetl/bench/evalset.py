"""The data a benchmark measures accuracy on: the bundle's test split, or ``--data``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import SPLITS
from ..data.preprocess import load_image, preprocess_image
from ..data.sources import evenly_spaced, scan_images
from ..errors import EdgetlError


def _rows_from_bundle(bundle_dir: Path) -> tuple[list[dict[str, Any]], str]:
    path = bundle_dir / SPLITS
    if not path.is_file():
        raise EdgetlError(f"{bundle_dir} has no {SPLITS}; pass --data DIR with labelled images")
    splits = json.loads(path.read_text())
    for name in ("test", "val"):
        if splits.get(name):
            return splits[name], f"{name} split of {bundle_dir.name}"
    raise EdgetlError(f"{path} has no test or validation samples; pass --data DIR with labelled images")


def _rows_from_data(data: str) -> tuple[list[dict[str, Any]], str]:
    source = scan_images(data)
    rows = [{"path": s.path, "label": s.label, "target": s.target} for split in source.splits.values() for s in split]
    return rows, str(data)


def eval_set(bundle_dir: Path, manifest: dict[str, Any], data: str | None = None,
             limit: int | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Preprocessed inputs (canonical float32), their targets, and where they came from."""
    rows, origin = _rows_from_data(data) if data else _rows_from_bundle(bundle_dir)
    rows = evenly_spaced(rows, limit)
    if manifest["task"] == "classification":
        index = {label: i for i, label in enumerate(manifest["labels"])}
        unknown = sorted({str(r["label"]) for r in rows} - set(index))
        if unknown:
            raise EdgetlError(f"{origin}: labels {', '.join(unknown[:5])} are not among the model's labels "
                              f"({', '.join(manifest['labels'][:10])}); pass data of the same classes")
        targets = np.asarray([index[r["label"]] for r in rows], dtype=np.int64)
    else:
        if any(r.get("target") is None for r in rows):
            raise EdgetlError(f"{origin}: regression benchmarks need a numeric target for every image")
        targets = np.asarray([r["target"] for r in rows], dtype=np.float32)
    arrays = []
    for r in rows:
        try:
            arrays.append(preprocess_image(load_image(r["path"]), manifest["preprocess"]))
        except Exception as exc:
            raise EdgetlError(f"cannot read {r['path']} ({type(exc).__name__}); is the data still there?") from None
    return np.stack(arrays).astype(np.float32), targets, origin
