"""Find labelled images on disk: an image folder or a CSV, with optional splits.

Layouts:
- ``DIR/<class>/*.png``: one sub-folder per class;
- ``DIR/{train,val,test}/<class>/*``: given splits (``valid``/``validation`` also work);
- ``FILE.csv`` with a header ``path,label`` (classification) or ``path,target``
  (regression), and optionally a ``split`` column; paths are relative to the CSV.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgetl_runtime.image import IMAGE_SUFFIXES, ImageRejected, open_image

from ..errors import EdgetlError

csv.field_size_limit(2**31 - 1)  # long texts in one field are data, not an error (the csv module stops at 128 KiB)

SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass
class Sample:
    path: str
    label: str | None = None
    target: float | None = None


@dataclass
class ImageSource:
    """Samples per split, the task they imply and the sorted label names."""

    origin: str
    task: str  # "classification" | "regression"
    splits: dict[str, list[Sample]]
    labels: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def _class_folder(root: Path, suffixes: set[str] = IMAGE_SUFFIXES) -> list[Sample]:
    samples = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(class_dir.rglob("*")):
            if f.is_file() and f.suffix.lower() in suffixes:
                samples.append(Sample(str(f), label=class_dir.name))
    return samples


def _scan_folder(root: Path, suffixes: set[str] = IMAGE_SUFFIXES, kind: str = "image") -> ImageSource:
    """``root/<class>/*`` or ``root/{train,val,test}/<class>/*`` files with one of ``suffixes``."""
    subdirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    split_dirs = {SPLIT_ALIASES[n]: p for n, p in subdirs.items() if n in SPLIT_ALIASES}
    if split_dirs:
        if "train" not in split_dirs:
            raise EdgetlError(f"{root} has {sorted(split_dirs)} folders but no train/ folder; add train/<class>/ {kind}s")
        splits = {name: _class_folder(p, suffixes) for name, p in split_dirs.items()}
    else:
        splits = {"train": _class_folder(root, suffixes)}
    if not splits["train"]:
        raise EdgetlError(
            f"{root} holds no {kind}s; expected one sub-folder per class with {kind} files ({', '.join(sorted(suffixes))})"
        )
    return ImageSource(str(root), "classification", splits)


def _scan_csv(path: Path, kind: str = "image") -> ImageSource:
    """A CSV of ``path,label`` or ``path,target`` (optional ``split``), paths relative to the CSV."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: a byte-order mark is fine
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise EdgetlError(f"{path} is not a readable UTF-8 CSV ({exc}); save it as UTF-8 with a header path,label") from None
    if not rows:
        raise EdgetlError(f"{path} is empty; expected a header path,label or path,target and one row per {kind}")
    header = [h.strip().lower() for h in rows[0]]
    if "path" not in header or not ({"label", "target"} & set(header)):
        raise EdgetlError(
            f"{path}: the header is {','.join(rows[0])}; expected path,label (classification) or "
            f"path,target (regression), optionally with a split column"
        )
    if "label" in header and "target" in header:
        raise EdgetlError(
            f"{path}: header has both 'label' and 'target'; keep 'label' for classification or 'target' for regression"
        )
    task = "classification" if "label" in header else "regression"
    ip, iv = header.index("path"), header.index("label" if task == "classification" else "target")
    isplit = header.index("split") if "split" in header else None
    splits: dict[str, list[Sample]] = {"train": []}
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise EdgetlError(f"{path}:{lineno}: expected {len(header)} columns, found {len(row)}")
        value = row[iv].strip()
        if not value:
            raise EdgetlError(f"{path}:{lineno}: empty {header[iv]}; every row needs one")
        img = Path(row[ip].strip())
        img = img if img.is_absolute() else path.parent / img
        split = "train"
        if isplit is not None and row[isplit].strip():
            split = SPLIT_ALIASES.get(row[isplit].strip().lower(), "")
            if not split:
                raise EdgetlError(f"{path}:{lineno}: split '{row[isplit]}' is not train, val or test")
        if task == "classification":
            sample = Sample(str(img), label=value)
        else:
            sample = Sample(str(img), target=finite_target(value, f"{path}:{lineno}", header[iv]))
        splits.setdefault(split, []).append(sample)
    if not splits["train"]:
        raise EdgetlError(f"{path} lists no training {kind}s; add rows (split empty or 'train')")
    return ImageSource(str(path), task, splits)


def finite_target(value: str, where: str, column: str = "target") -> float:
    """A regression target: a finite number, else one line naming the file and line."""
    try:
        number = float(value)
    except ValueError:
        raise EdgetlError(f"{where}: {column} '{value}' is not a number") from None
    if not math.isfinite(number):
        raise EdgetlError(f"{where}: {column} '{value}' is not a finite number; fix or remove the row")
    return number


def check_labels(source: ImageSource, labels: list[str] | None, kind: str = "image") -> None:
    """Fix the label list (given, or sorted from training) and reject unknown or unused labels."""
    if source.task != "classification":
        return
    seen = sorted({s.label for s in source.splits["train"]})
    known = list(labels) if labels else seen
    if len(set(known)) < 2:
        raise EdgetlError(
            f"{source.origin} has a single class ({known[0] if known else '-'}); classification needs at least two classes"
        )
    known_set = set(known)
    for split, samples in source.splits.items():
        for s in samples:
            if s.label not in known_set:
                where = "--labels" if labels else "the training split"
                raise EdgetlError(
                    f"{source.origin}: unknown label '{s.label}' in {split} ({s.path}); known labels from {where}: {', '.join(known)}"
                )
    missing = [lab for lab in known if lab not in set(seen)]
    if missing:
        raise EdgetlError(f"{source.origin}: no training {kind}s for label(s) {', '.join(missing)}")
    source.labels = known


def check_image(path: str) -> None:
    """Open, verify and decode ``path`` once (JPEGs at 1/8 scale: fast, and a truncated file still fails), so a
    bad image is skipped at the start, never fatal mid-epoch."""
    with open_image(path) as im:
        im.verify()
    with open_image(path) as im:
        w, h = im.size
        im.draft("RGB", (max(1, w // 8), max(1, h // 8)))
        im.load()


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:60]}" if text else type(exc).__name__


def verify_images(source: ImageSource, max_bad_fraction: float) -> None:
    """Drop unreadable images from every split; fail if too many are bad."""
    total = 0
    for split, samples in source.splits.items():
        good = []
        for s in samples:
            total += 1
            try:
                check_image(s.path)
                good.append(s)
            except FileNotFoundError:
                source.skipped.append((s.path, "missing"))
            except ImageRejected as exc:
                source.skipped.append((s.path, f"too large: {exc}"))
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
                source.skipped.append((s.path, _why(exc)))
        source.splits[split] = good
    bad = len(source.skipped)
    if total and bad / total > max_bad_fraction:
        examples = ", ".join(f"{p} ({why})" for p, why in source.skipped[:3])
        raise EdgetlError(
            f"{source.origin}: {bad} of {total} images are unreadable or missing (e.g. {examples}); "
            f"fix or remove them, or raise --max-bad-fraction (now {max_bad_fraction})"
        )


def scan_images(path: str | Path, labels: list[str] | None = None, max_bad_fraction: float = 0.1) -> ImageSource:
    """Read an image folder or CSV into an ``ImageSource``; raises ``EdgetlError`` on bad input."""
    path = Path(path)
    if not path.exists():
        raise EdgetlError(f"{path} does not exist; pass an image folder, a CSV of path,label, or builtin:digits")
    if path.is_dir():
        source = _scan_folder(path)
    elif path.suffix.lower() == ".csv":
        source = _scan_csv(path)
    else:
        raise EdgetlError(f"{path} is neither a folder nor a .csv file; pass an image folder or a CSV of path,label")
    check_labels(source, labels)
    verify_images(source, max_bad_fraction)
    if len(source.splits["train"]) < 2:
        raise EdgetlError(f"{source.origin}: fewer than two readable training images; add more images")
    return source


def split_train_val(samples: list[Sample], val_fraction: float, seed: int, stratify: bool) -> tuple[list[Sample], list[Sample]]:
    """Seeded split; stratified by label for classification (each class keeps >=1 train sample)."""
    rng = np.random.default_rng(seed)
    if not stratify:
        order = rng.permutation(len(samples))
        n_val = max(1, int(round(len(samples) * val_fraction)))
        val_idx = set(order[:n_val].tolist())
    else:
        by_label: dict[str, list[int]] = {}
        for i, s in enumerate(samples):
            by_label.setdefault(s.label, []).append(i)
        val_idx = set()
        for label in sorted(by_label):
            idx = np.asarray(by_label[label])
            idx = idx[rng.permutation(len(idx))]
            n_val = min(len(idx) - 1, max(1, int(round(len(idx) * val_fraction)))) if len(idx) > 1 else 0
            val_idx.update(idx[:n_val].tolist())
    train = [s for i, s in enumerate(samples) if i not in val_idx]
    val = [s for i, s in enumerate(samples) if i in val_idx]
    if not val:
        raise EdgetlError("too few images to hold out a validation split; add images or a val/ folder")
    return train, val


def encode_targets(task: str, labels: list[str], samples: list) -> np.ndarray:
    """The model's targets of ``samples`` (objects or dicts with ``label``/``target``): int64 indices
    into ``labels`` for classification, float32 values for regression; -1 or nan for unlabelled ones."""

    def get(s, key):
        return s[key] if isinstance(s, dict) else getattr(s, key)

    if task == "classification":  # an unlabelled sample (domain adaptation's target) is -1
        index = {label: i for i, label in enumerate(labels)}
        return np.asarray([-1 if get(s, "label") is None else index[get(s, "label")] for s in samples], dtype=np.int64)
    return np.asarray([np.nan if get(s, "target") is None else get(s, "target") for s in samples], dtype=np.float32)


def evenly_spaced(rows: list, n: int | None) -> list:
    """At most ``n`` rows spread over the whole list (splits are stored sorted by label,
    so the first ``n`` would miss the later classes)."""
    if not n or n >= len(rows):
        return list(rows)
    step = len(rows) / n
    return [rows[int(i * step)] for i in range(n)]
