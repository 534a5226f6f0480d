"""Real datasets that ship offline, materialised as image folders or text CSVs.

``fortunes-lang``: language identification over Debian's fortune cookies (see ``fortunes.py``).

``keywords``: yes/no/up/down spoken by 48 espeak-ng voices, split by voice (see ``keywords.py``).

``digits``: scikit-learn's 1,797 real 8x8 handwritten digits (UCI optical
recognition set), written as ``train/<digit>/*.png`` and a fixed, stratified
``test/`` split (20%), dark ink on white.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..atomic import atomic_dir
from ..errors import EdgetlError

BUILTIN_PREFIX = "builtin:"
_VERSION = "v1"


def cache_dir() -> Path:
    return Path(os.environ.get("EDGETL_CACHE", Path.home() / ".cache" / "edgetl"))


def write_digits(out: Path, test_fraction: float = 0.2, seed: int = 0) -> Path:
    """Write the digits dataset as an image folder at ``out`` (atomically)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    test_idx: set[int] = set()
    for label in range(10):
        idx = np.flatnonzero(digits.target == label)
        idx = idx[rng.permutation(len(idx))]
        test_idx.update(idx[: int(round(len(idx) * test_fraction))].tolist())
    with atomic_dir(out) as tmp:
        for i, (img, label) in enumerate(zip(digits.images, digits.target)):
            split = "test" if i in test_idx else "train"
            d = tmp / split / str(label)
            d.mkdir(parents=True, exist_ok=True)
            pixels = (255 - np.clip(img * 16, 0, 255)).astype(np.uint8)  # 0..16 ink -> dark on white
            Image.fromarray(pixels, mode="L").save(d / f"{i:04d}.png")
    return out


def _fortunes_lang(out: Path) -> Path:
    from .fortunes import write_fortunes_lang

    return write_fortunes_lang(out)


def _keywords(out: Path) -> Path:
    from .keywords import write_keywords

    return write_keywords(out)


# name -> (writer, the data path inside the written folder: "" for the folder itself)
_BUILTIN: dict[str, tuple[Callable[[Path], Path], str]] = {
    "digits": (write_digits, ""),
    "fortunes-lang": (_fortunes_lang, "fortunes-lang.csv"),
    "keywords": (_keywords, ""),
}


def resolve_builtin(name: str) -> Path:
    """``builtin:NAME`` -> a local image folder or text CSV, written once into the edgetl cache."""
    key = name[len(BUILTIN_PREFIX):] if name.startswith(BUILTIN_PREFIX) else name
    if key not in _BUILTIN:
        raise EdgetlError(f"unknown built-in dataset '{key}'; available: {', '.join('builtin:' + k for k in _BUILTIN)}")
    writer, entry = _BUILTIN[key]
    out = cache_dir() / "datasets" / f"{key}-{_VERSION}"
    if not (out / entry).exists():
        writer(out)
    return out / entry if entry else out
