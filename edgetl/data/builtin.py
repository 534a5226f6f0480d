"""Real datasets that ship offline, materialised as image folders or text CSVs.

``fortunes-lang``: language identification over Debian's fortune cookies (see ``fortunes.py``).

``keywords``: yes/no/up/down spoken by 48 espeak-ng voices, split by voice (see ``keywords.py``).

``keywords-field``: the same words by 24 other voices through reverberation, a band limit, 0-10 dB noise and
clipping: the target domain for adapting a ``keywords`` model (see ``field_keywords.py``).

``digits-synthetic``: printed digits rendered from the system's fonts in the real digits' 8x8
format, the labelled source for adapting to ``digits`` (see ``synthetic_digits.py``).

``digits``: scikit-learn's 1,797 real 8x8 handwritten digits (UCI optical
recognition set), written as ``train/<digit>/*.png`` and a fixed, stratified
``test/`` split (20%), dark ink on white.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_dir, write_json
from ..errors import EdgetlError
from ..ownership import Owned, check_folder

BUILTIN_PREFIX = "builtin:"
_VERSION = "v1"
DATASET_MARK = "edgetl-dataset.json"  # written into every dataset folder edgetl generates: the folder is edgetl's own


def dataset_owned(name: str, entries: set[str]) -> Owned:
    """What a generated dataset folder holds (``entries`` at its top level, plus the mark)."""
    return Owned(f"{name} dataset folder", (DATASET_MARK,), frozenset(entries | {DATASET_MARK}))


def check_dataset_out(out: Path, name: str, entries: set[str], overwrite: bool, legacy_marks: tuple[str, ...] = ()) -> None:
    """Before generating ``name`` into ``out``: refuse a file, a folder of other files, or (without ``overwrite``)
    an earlier copy; an earlier copy edgetl wrote may be replaced, nothing else."""
    owned = dataset_owned(name, entries)
    if legacy_marks:
        owned = Owned(owned.what, owned.marks + legacy_marks, owned.entries)
    if check_folder(out, owned, flag="--out", replacing=True) and not overwrite:
        raise EdgetlError(
            f"--out {out} already holds a generated {name} dataset; pass --overwrite to write it again or pick another folder"
        )


def mark_dataset(folder: Path, name: str, **facts: object) -> None:
    write_json(folder / DATASET_MARK, {"format": "edgetl-dataset", "name": name, "version": _VERSION, **facts})


def cache_dir() -> Path:
    return Path(os.environ.get("EDGETL_CACHE", Path.home() / ".cache" / "edgetl"))


def write_digits(out: Path, test_fraction: float = 0.2, seed: int = 0, overwrite: bool = False) -> Path:
    """Write the digits dataset as an image folder at ``out`` (atomically; an earlier copy only with ``overwrite``)."""
    from sklearn.datasets import load_digits

    out = Path(out)
    check_dataset_out(out, "digits", {"train", "test"}, overwrite)
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
        mark_dataset(tmp, "digits", source="scikit-learn load_digits", test_fraction=test_fraction, seed=seed)
    return out


def _fortunes_lang(out: Path, overwrite: bool = False) -> Path:
    from .fortunes import write_fortunes_lang

    return write_fortunes_lang(out, overwrite=overwrite)


def _keywords(out: Path, overwrite: bool = False) -> Path:
    from .keywords import write_keywords

    return write_keywords(out, overwrite=overwrite)


def _digits_synthetic(out: Path, overwrite: bool = False) -> Path:
    from .synthetic_digits import write_digits_synthetic

    return write_digits_synthetic(out, overwrite=overwrite)


def _keywords_field(out: Path, overwrite: bool = False) -> Path:
    from .field_keywords import write_keywords_field

    return write_keywords_field(out, overwrite=overwrite)


def _fonts_version() -> str:
    from .synthetic_digits import font_files, fonts_key

    return fonts_key(font_files())


# name -> (writer, the data path inside the written folder: "" for the folder itself)
_BUILTIN: dict[str, tuple[Callable[..., Path], str]] = {
    "digits": (write_digits, ""),
    "digits-synthetic": (_digits_synthetic, ""),
    "fortunes-lang": (_fortunes_lang, "fortunes-lang.csv"),
    "keywords": (_keywords, ""),
    "keywords-field": (_keywords_field, ""),
}


def resolve_builtin(name: str) -> Path:
    """``builtin:NAME`` -> a local image folder or text CSV, written once into the edgetl cache."""
    key = name[len(BUILTIN_PREFIX) :] if name.startswith(BUILTIN_PREFIX) else name
    if key not in _BUILTIN:
        raise EdgetlError(f"unknown built-in dataset '{key}'; available: {', '.join('builtin:' + k for k in _BUILTIN)}")
    writer, entry = _BUILTIN[key]
    version = f"{_VERSION}-{_fonts_version()}" if key == "digits-synthetic" else _VERSION  # other fonts: another set
    out = cache_dir() / "datasets" / f"{key}-{version}"
    if not (out / entry).exists():
        writer(out, overwrite=True)  # edgetl's own cache
    return out / entry if entry else out
