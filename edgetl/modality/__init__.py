"""What differs between images, texts and audio clips, one module each; shared code asks, never switches.

A modality recognises and reads its data, resolves a backbone's preprocessing into the bundle's,
builds the datasets of each split, describes the bundle's input, loads the samples export and
the benchmark measure on, and encodes raw inputs to predict on. Adding a modality is one module
here plus its line in ``MODALITIES``. Heavy imports (torch, transformers) stay inside functions:
``edgetl.bundle``, ``edgetl.export``, ``edgetl.bench`` and ``edgetl.predict`` import this without torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import EdgetlError
from .audio import AUDIO
from .base import Modality
from .image import IMAGE
from .text import TEXT

MODALITIES: dict[str, Modality] = {m.name: m for m in (IMAGE, TEXT, AUDIO)}


def get_modality(name: str) -> Modality:
    """The modality called ``name`` (a manifest's ``modality``)."""
    if name not in MODALITIES:
        raise EdgetlError(f"unknown modality '{name}'; known: {', '.join(MODALITIES)}")
    return MODALITIES[name]


def detect(path: str | Path, columns: Any) -> Modality:
    """What ``path`` holds: the first modality, by precedence, that recognises it (images are the fallback)."""
    for modality in sorted(MODALITIES.values(), key=lambda m: m.precedence):
        if modality.looks_like(Path(path), columns):
            return modality
    raise EdgetlError(f"{path} holds no {', '.join(m.noun for m in MODALITIES.values())}")  # unreachable: images take anything


__all__ = ["MODALITIES", "Modality", "detect", "get_modality"]
