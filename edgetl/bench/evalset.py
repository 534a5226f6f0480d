"""The data a benchmark measures accuracy on: the bundle's test split, or ``--data``.

Images come back preprocessed (NCHW float32), audio clips as log-mel features
(NCT float32, ``runtime/audio.py`` with the bundle's settings: the runner feeds
them like images). Texts come back tokenised with the
bundle's tokenizer and right-padded to its ``max_length`` (the runner trims each
sample back to its own length); ``long_texts`` builds inputs of exactly
``length`` real tokens, for latency at a fixed sequence length.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl_runtime.base import Batch

from ..bundle import SPLITS, TARGET_TEST, Bundle, read_splits
from ..data.sources import encode_targets, evenly_spaced
from ..errors import EdgetlError
from ..modality import Modality, get_modality


def _rows_from_bundle(bundle_dir: Path, manifest: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    splits = read_splits(bundle_dir, manifest)
    for name in (TARGET_TEST, "test", "val"):  # an adapted bundle is measured where it will be used
        if splits.get(name):
            return splits[name], f"{name} split of {bundle_dir.name}"
    raise EdgetlError(f"{bundle_dir / SPLITS} has no test or validation samples; pass --data with labelled samples")


def _rows_from_data(data: str, modality: Modality) -> tuple[list[dict[str, Any]], str]:
    source = modality.scan(Path(data), progress=False)
    key = modality.sample_key
    rows = [{key: getattr(s, key), "label": s.label, "target": s.target} for split in source.splits.values() for s in split]
    return rows, str(data)


def _bundle(bundle_dir: Path) -> Any:
    from ..bundle import load_bundle

    return load_bundle(bundle_dir)


def eval_set(
    bundle_dir: Path, manifest: dict[str, Any], data: str | None = None, limit: int | None = None
) -> tuple[Batch, np.ndarray, str, list[str]]:
    """Canonical inputs (float32 images or audio features, or int64 token arrays padded to max_length), their targets,
    where they came from, and the raw texts (empty for images)."""
    modality = get_modality(manifest.get("modality", "image"))
    rows, origin = _rows_from_data(data, modality) if data else _rows_from_bundle(bundle_dir, manifest)
    rows = evenly_spaced(rows, limit)
    if manifest["task"] == "classification":
        unknown = sorted({str(r["label"]) for r in rows} - set(manifest["labels"]))
        if unknown:
            raise EdgetlError(
                f"{origin}: labels {', '.join(unknown[:5])} are not among the model's labels "
                f"({', '.join(manifest['labels'][:10])}); pass data of the same classes"
            )
    elif any(r.get("target") is None for r in rows):
        raise EdgetlError(f"{origin}: regression benchmarks need a numeric target for every sample")
    targets = encode_targets(manifest["task"], manifest["labels"], rows)
    items = [r[modality.sample_key] for r in rows]
    inputs = modality.eval_inputs(Bundle(bundle_dir, manifest), items, origin)
    return inputs, targets, origin, items if modality.token_inputs else []  # the raw texts: for long_texts


def long_texts(bundle_dir: Path, texts: list[str], length: int, count: int = 16) -> dict[str, np.ndarray]:
    """``count`` inputs of exactly ``length`` tokens (no padding) made of consecutive real texts
    joined, for latency at a fixed sequence length; fewer tokens only if all texts together are shorter."""
    bundle = _bundle(bundle_dir)
    joined = []
    for start in range(min(count, len(texts))):
        parts, i = [], start
        while i < start + len(texts):
            parts.append(texts[i % len(texts)])
            i += 1
            if len(" ".join(parts)) > 8 * length:  # plenty: a token is rarely shorter than a character
                break
        joined.append(" ".join(parts))
    return bundle.encode_texts(joined, length)
