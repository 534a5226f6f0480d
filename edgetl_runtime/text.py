"""Text input for artifacts: raw strings -> ``{"input_ids", "attention_mask"}`` (numpy + ``tokenizers`` only).

An exported text artifact carries the bundle's fast tokenizer (``tokenizer.json``)
and a ``tokenizer`` section in its manifest (file, max_length, truncation,
padding, pad id, input names). Encoding truncates at ``max_length`` and pads on
the right: to ``max_length`` when the artifact's sequence length is fixed, else
to the longest text of the batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .base import EdgetlError


class TextTokenizer:
    """The artifact's tokenizer: ``tokenizer(["some text", ...])`` -> named int64 ``[B, L]`` arrays."""

    def __init__(self, folder: str | Path, spec: dict[str, Any]) -> None:
        from tokenizers import Tokenizer

        path = Path(folder) / spec["file"]
        if not path.is_file():
            raise EdgetlError(f"{folder} lacks its tokenizer {spec['file']}; re-run `edgetl export`")
        self.spec = spec
        self.max_length = int(spec["max_length"])
        self.pad_id = int(spec.get("pad_id", 0))
        self.names = list(spec.get("input_names") or ["input_ids", "attention_mask"])
        self.tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.no_padding()  # padded here, to the width the artifact wants

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        if not texts:
            raise EdgetlError("pass one or more texts to encode")
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        width = self.max_length if self.spec.get("padding") == "max_length" else max(len(i) for i in ids)
        return pad_ids(ids, width, self.pad_id, self.names)


def pad_ids(ids: list[list[int]], width: int, pad_id: int, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Token id lists -> right-padded int64 ids and attention mask of ``width`` columns."""
    id_name, mask_name = (names or ["input_ids", "attention_mask"])[:2]
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = seq[:width]
        mask[row, : len(seq)] = 1
    return {id_name: input_ids, mask_name: mask}


def trim_padding(batch: dict[str, np.ndarray], mask_name: str = "attention_mask") -> dict[str, np.ndarray]:
    """Drop trailing columns that are padding in every row (at least one column stays)."""
    used = np.flatnonzero(batch[mask_name].any(axis=0))
    width = int(used[-1]) + 1 if len(used) else 1
    return {k: v[:, :width] for k, v in batch.items()}


def load_tokenizer(path: str | Path, manifest: dict[str, Any]) -> TextTokenizer:
    """The tokenizer of a text artifact folder."""
    spec = manifest.get("tokenizer")
    if not spec:
        raise EdgetlError(f"{path} is not a text artifact (its manifest has no tokenizer section)")
    return TextTokenizer(path, spec)
