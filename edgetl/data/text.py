"""Labelled texts on disk: CSV, TSV, JSONL, or one folder of .txt files per class.

Layouts:
- ``FILE.csv`` / ``FILE.tsv`` with a header row, ``FILE.jsonl`` with one object
  per line: a text column (default ``text``) and a label column (default
  ``label``: classification) or a target column (default ``target``: regression),
  optionally a ``split`` column (``train``/``val``/``test``);
- ``DIR/<class>/*.txt`` (one text per file), optionally under
  ``DIR/{train,val,test}/``.

Every file is read as strict UTF-8; non-UTF-8 bytes, empty texts, missing
columns and non-numeric targets are one-line errors naming the file and line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import EdgetlError
from .sources import IMAGE_SUFFIXES, SPLIT_ALIASES, check_labels, encode_targets, finite_target

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}


@dataclass
class TextSample:
    text: str
    label: str | None = None
    target: float | None = None
    path: str = ""  # where it came from: "file:line" or the .txt file


@dataclass
class TextSource:
    """Samples per split, the task they imply and the label names (like ``ImageSource``)."""

    origin: str
    task: str
    splits: dict[str, list[TextSample]]
    labels: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Columns:
    text: str = "text"
    label: str = "label"
    target: str = "target"


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise EdgetlError(f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8") from None


def _read(path: Path) -> str:
    return _decode(path, path.read_bytes())


def _table_header(path: Path) -> list[str]:
    """The lower-cased header of a CSV/TSV, or the keys of a JSONL file's first object."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            first = fh.readline()
    except OSError:
        return []
    if path.suffix.lower() in JSONL_SUFFIXES:
        try:
            return [k.lower() for k in json.loads(first)]
        except (json.JSONDecodeError, AttributeError, TypeError):
            return []
    delim = TABLE_SUFFIXES.get(path.suffix.lower(), ",")
    return [h.strip().lower() for h in next(csv.reader([first], delimiter=delim), [])]


def looks_like_text(path: str | Path, columns: Columns = Columns()) -> bool:
    """Whether ``path`` holds labelled texts (as opposed to images)."""
    path = Path(path)
    if path.is_dir():
        files = [f for f in path.rglob("*") if f.is_file()]
        return any(f.suffix.lower() == ".txt" for f in files) and not any(f.suffix.lower() in IMAGE_SUFFIXES for f in files)
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES or suffix == ".tsv":
        return True
    if suffix == ".csv":  # image CSVs have a path column
        return "path" not in _table_header(path)
    return False


def _task_and_columns(path: Path, header: Sequence[str], columns: Columns, where: str) -> tuple[str, str]:
    """(task, value column) from the header; one-line errors for missing or ambiguous columns."""
    names = [h.strip().lower() for h in header]
    if columns.text.lower() not in names:
        raise EdgetlError(
            f"{where}: no '{columns.text}' column (the header is {','.join(header) or 'empty'}); expected "
            f"text,label or text,target for texts (--text-column names another column), or path,label / "
            f"path,target for images and audio clips"
        )
    has_label, has_target = columns.label.lower() in names, columns.target.lower() in names
    if has_label and has_target:
        raise EdgetlError(
            f"{where}: both '{columns.label}' and '{columns.target}' columns; keep one "
            f"(label: classification, target: regression)"
        )
    if not (has_label or has_target):
        raise EdgetlError(
            f"{where}: no '{columns.label}' (classification) or '{columns.target}' (regression) column "
            f"(found {', '.join(header)}); name it with --label-column or --target-column"
        )
    return ("classification", columns.label) if has_label else ("regression", columns.target)


def _sample(path: Path, lineno: int, text: Any, value: Any, task: str, column: str) -> TextSample:
    where = f"{path}:{lineno}"
    text = "" if text is None else str(text).strip()
    if not text:
        raise EdgetlError(f"{where}: empty text; every row needs one")
    value = "" if value is None else str(value).strip()
    if not value:
        raise EdgetlError(f"{where}: empty {column}; every row needs one")
    if task == "classification":
        return TextSample(text, label=value, path=where)
    return TextSample(text, target=finite_target(value, where, column), path=where)


def _split_of(path: Path, lineno: int, value: Any) -> str:
    value = "" if value is None else str(value).strip().lower()
    if not value:
        return "train"
    if value not in SPLIT_ALIASES:
        raise EdgetlError(f"{path}:{lineno}: split '{value}' is not train, val or test")
    return SPLIT_ALIASES[value]


def _rows_table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, row) pairs of a CSV/TSV; line numbers survive quoted newlines."""
    reader = csv.reader(io.StringIO(_read(path), newline=""), delimiter=TABLE_SUFFIXES[path.suffix.lower()])
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for row in reader:
            rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise EdgetlError(f"{path}:{reader.line_num}: broken {path.suffix[1:].upper()} ({exc})") from None
    if not rows:
        raise EdgetlError(f"{path} is empty; expected a header row (e.g. text,label) and one row per text")
    return rows[0][1], rows[1:]


def _scan_table(path: Path, columns: Columns) -> TextSource:
    header, rows = _rows_table(path)
    names = [h.strip().lower() for h in header]
    task, column = _task_and_columns(path, header, columns, f"{path}:1")
    it, iv = names.index(columns.text.lower()), names.index(column.lower())
    isplit = names.index("split") if "split" in names else None
    splits: dict[str, list[TextSample]] = {"train": []}
    for lineno, row in rows:
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise EdgetlError(f"{path}:{lineno}: expected {len(header)} columns, found {len(row)}")
        split = _split_of(path, lineno, row[isplit]) if isplit is not None else "train"
        splits.setdefault(split, []).append(_sample(path, lineno, row[it], row[iv], task, column))
    return TextSource(str(path), task, splits)


def _scan_jsonl(path: Path, columns: Columns) -> TextSource:
    splits: dict[str, list[TextSample]] = {"train": []}
    task = column = ""
    for lineno, line in enumerate(_read(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EdgetlError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise EdgetlError(f"{path}:{lineno}: expected a JSON object per line")
        obj = {str(k).lower(): v for k, v in obj.items()}
        if not task:
            task, column = _task_and_columns(path, list(obj), columns, f"{path}:{lineno}")
        for name in (columns.text, column):
            if name.lower() not in obj:
                raise EdgetlError(f"{path}:{lineno}: no '{name}' field")
        split = _split_of(path, lineno, obj.get("split"))
        splits.setdefault(split, []).append(_sample(path, lineno, obj[columns.text.lower()], obj[column.lower()], task, column))
    if not task:
        raise EdgetlError(f"{path} is empty; expected one JSON object per line with text and label fields")
    return TextSource(str(path), task, splits)


def _class_folder(root: Path) -> list[TextSample]:
    samples = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(class_dir.rglob("*.txt")):
            text = _read(f).strip()
            if not text:
                raise EdgetlError(f"{f}:1: empty text; remove the file or write the text into it")
            samples.append(TextSample(text, label=class_dir.name, path=str(f)))
    return samples


def _scan_folder(root: Path) -> TextSource:
    subdirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    split_dirs = {SPLIT_ALIASES[n]: p for n, p in subdirs.items() if n in SPLIT_ALIASES}
    if split_dirs and "train" not in split_dirs:
        raise EdgetlError(f"{root} has {sorted(split_dirs)} folders but no train/ folder; add train/<class>/*.txt")
    splits = {name: _class_folder(p) for name, p in split_dirs.items()} if split_dirs else {"train": _class_folder(root)}
    return TextSource(str(root), "classification", splits)


def scan_texts(path: str | Path, labels: list[str] | None = None, columns: Columns = Columns()) -> TextSource:
    """Read a CSV/TSV/JSONL file or a folder of .txt files into a ``TextSource``."""
    path = Path(path)
    if not path.exists():
        raise EdgetlError(
            f"{path} does not exist; pass a CSV/TSV/JSONL of text,label, a folder of <class>/*.txt, or builtin:fortunes-lang"
        )
    suffix = path.suffix.lower()
    if path.is_dir():
        source = _scan_folder(path)
    elif suffix in TABLE_SUFFIXES:
        source = _scan_table(path, columns)
    elif suffix in JSONL_SUFFIXES:
        source = _scan_jsonl(path, columns)
    else:
        raise EdgetlError(f"{path} is not a .csv, .tsv or .jsonl file or a folder; pass labelled texts in one of those")
    if not source.splits["train"]:
        raise EdgetlError(f"{path} holds no training texts; add rows (split empty or 'train') or <class>/*.txt files")
    check_labels(source, labels)
    if len(source.splits["train"]) < 2:
        raise EdgetlError(f"{source.origin}: fewer than two training texts; add more")
    return source


# ----------------------------------------------------------------- dataset
class TextDataset(Dataset):
    """Texts tokenised once (truncated, unpadded); batches are padded per batch.

    ``tokenizer`` is any callable with the Hugging Face tokenizer interface
    (``tokenizer(texts, truncation=True, max_length=N)["input_ids"]`` and
    ``pad_token_id``); the family supplies it."""

    def __init__(
        self,
        samples: list[TextSample],
        tokenizer: Any,
        max_length: int,
        task: str,
        labels: list[str],
        seed: int = 0,
        group_size: int = 50,
    ) -> None:
        self.samples = samples
        self.pad_id = int(tokenizer.pad_token_id or 0)
        self.ids: list[list[int]] = (
            tokenizer([s.text for s in samples], truncation=True, max_length=max_length)["input_ids"] if samples else []
        )
        self.lengths = np.asarray([len(i) for i in self.ids], dtype=np.int64)
        self.seed, self.epoch, self.group_size = seed, 0, group_size
        self.targets = encode_targets(task, labels, samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[list[int], Any]:
        return self.ids[i], self.targets[i]

    def collate(self, items: list[tuple[list[int], Any]]) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """Dynamic padding: pad to the longest text of the batch."""
        return pad_batch([ids for ids, _ in items], self.pad_id), torch.as_tensor(np.asarray([t for _, t in items]))

    def batches(self, order: list[int], batch_size: int) -> list[list[int]]:
        """Length-grouped batches: within chunks of ``group_size`` batches of the shuffled
        order, texts are sorted by length, so each batch pads little; the batch order is
        then shuffled again (seeded by seed and epoch). Same number of batches as plain chunking."""
        mega = batch_size * self.group_size
        out: list[list[int]] = []
        for start in range(0, len(order), mega):
            chunk = sorted(order[start : start + mega], key=lambda i: -int(self.lengths[i]))
            out += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
        perm = np.random.default_rng([self.seed, self.epoch, 7]).permutation(len(out))
        return [out[k] for k in perm]


def pad_batch(ids: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists -> (input_ids, attention_mask), int64, padded on the right."""
    width = max(len(i) for i in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.int64)
    mask = torch.zeros((len(ids), width), dtype=torch.int64)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.int64)
        mask[row, : len(seq)] = 1
    return input_ids, mask
