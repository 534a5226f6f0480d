"""Speech recognition data: audio clips with their transcriptions.

Two layouts, as Hugging Face's ``audiofolder`` and edgetl's own CSVs do it:

- an audio folder holding ``metadata.csv`` with ``file_name,transcription`` (paths relative to the folder),
  and optionally ``split`` (train, val or validation, test);
- a CSV of ``path,text`` (paths relative to the CSV), optionally with ``split``.

Clips at any rate and channel count are decoded to 16 kHz mono. Empty transcriptions, and missing,
unreadable or silent clips, are skipped and counted; more than ``max_bad_fraction`` of them is a one-line
error. Without a split column everything is training data (the recipe splits off validation).
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgetl_runtime.audio import AUDIO_SUFFIXES

from ..errors import EdgetlError
from .audio import decode_audio

METADATA = "metadata.csv"
PATH_COLUMNS = ("file_name", "path")  # the audiofolder name first
TEXT_COLUMNS = ("transcription", "text", "sentence")
SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val", "valid": "val", "dev": "val", "test": "test"}


@dataclass
class Transcript:
    path: str  # absolute
    text: str


@dataclass
class TranscriptSource:
    """What a transcription dataset holds: the clips of each split, decoded, and what was skipped."""

    origin: str
    splits: dict[str, list[Transcript]]
    waveforms: dict[str, np.ndarray] = field(default_factory=dict)  # path -> 16 kHz mono float32
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path or row, reason)
    task: str = "transcription"


def metadata_file(path: str | Path) -> Path | None:
    """The CSV that lists a transcription dataset (``FOLDER/metadata.csv`` or the CSV itself), or None."""
    path = Path(path)
    candidate = path / METADATA if path.is_dir() else path
    if candidate.suffix.lower() != ".csv" or not candidate.is_file():
        return None
    try:
        with open(candidate, newline="", encoding="utf-8-sig") as fh:
            header = [h.strip().lower() for h in next(csv.reader(fh), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return candidate if any(c in header for c in PATH_COLUMNS) and any(c in header for c in TEXT_COLUMNS) else None


def looks_like_transcripts(path: str | Path) -> bool:
    """Whether ``path`` is a transcription dataset (a folder with metadata.csv, or a CSV of path,text of audio)."""
    found = metadata_file(path)
    if found is None:
        return False
    try:
        with open(found, newline="", encoding="utf-8-sig") as fh:
            rows = [r for _, r in zip(range(21), csv.DictReader(fh))]
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    column = _column(rows[0].keys() if rows else [], PATH_COLUMNS)
    paths = [(r.get(column) or "").strip() for r in rows] if column else []
    return bool(paths) and all(Path(p).suffix.lower() in AUDIO_SUFFIXES for p in paths if p)


def _column(header: object, names: tuple[str, ...]) -> str | None:
    keys = {str(k).strip().lower(): str(k) for k in header}  # type: ignore[attr-defined]
    return next((keys[n] for n in names if n in keys), None)


def _rows(found: Path) -> list[dict[str, str]]:
    try:
        with open(found, newline="", encoding="utf-8-sig") as fh:
            return list(csv.DictReader(fh))
    except UnicodeDecodeError:
        raise EdgetlError(f"{found} is not UTF-8 text; save it as UTF-8") from None
    except (OSError, csv.Error) as exc:
        raise EdgetlError(f"{found} cannot be read as CSV ({exc}); fix the file") from None


def scan_transcripts(path: str | Path, max_bad_fraction: float = 0.1) -> TranscriptSource:
    """Read a transcription dataset (see the module docstring), clips decoded; raises ``EdgetlError`` on bad input."""
    path = Path(path)
    if not path.exists():
        raise EdgetlError(
            f"{path} does not exist; pass an audio folder with {METADATA} (file_name,transcription) or a CSV of path,text"
        )
    found = metadata_file(path)
    if found is None:
        where = path / METADATA if path.is_dir() else path
        raise EdgetlError(
            f"{where} is missing or lacks the columns; a transcription dataset needs file_name,transcription "
            f"(or path,text) columns"
        )
    rows = _rows(found)
    header = rows[0].keys() if rows else []
    path_col, text_col, split_col = _column(header, PATH_COLUMNS), _column(header, TEXT_COLUMNS), _column(header, ("split",))
    if not rows or path_col is None or text_col is None:
        raise EdgetlError(f"{found} lists no clips; add rows of file_name,transcription")
    source = TranscriptSource(str(found), {"train": [], "val": [], "test": []})
    base = found.parent
    for i, row in enumerate(rows, start=2):  # line numbers as an editor shows them (the header is line 1)
        rel = (row.get(path_col) or "").strip()
        text = " ".join((row.get(text_col) or "").split())
        if not rel:
            source.skipped.append((f"{found}:{i}", "no file name"))
            continue
        clip = str((base / rel).resolve())
        if not text:
            source.skipped.append((clip, "empty transcription"))
            continue
        split = (row.get(split_col) or "train").strip().lower() if split_col else "train"
        if split not in SPLIT_NAMES:
            raise EdgetlError(f"{found}:{i}: split '{split}' is not one of train, val, test; fix that row")
        source.splits[SPLIT_NAMES[split]].append(Transcript(clip, text))
    decode_audio(source, max_bad_fraction, total=len(rows), bad_are="rows have no usable clip or transcription")
    if not source.splits["train"]:
        raise EdgetlError(f"{found}: no readable training clip with a transcription; add some (or fix the split column)")
    return source


# ---------------------------------------------------------------- metrics
def normalise(text: str) -> str:
    """The text normalisation WER and CER are measured after: Whisper's own English normaliser (transformers'
    ``EnglishTextNormalizer``, as in the Whisper paper): lower case, punctuation and filler words ("hmm") removed,
    contractions expanded ("don't" -> "do not"), spelled-out numbers written as digits ("forty percent" -> "40%").
    British and American spellings are not unified (the spelling table does not ship offline)."""
    return _normaliser()(text)


@functools.cache
def _normaliser() -> Any:
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer({})


def error_rates(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    """Corpus WER and CER (jiwer) after ``normalise``; an empty normalised reference counts by its hypothesis."""
    import jiwer

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    refs = [normalise(r) for r in references]
    hyps = [normalise(h) for h in hypotheses]
    pairs = [(r, h) for r, h in zip(refs, hyps) if r]
    if not pairs:
        return {"wer": 0.0, "cer": 0.0}
    r, h = [p[0] for p in pairs], [p[1] for p in pairs]
    return {"wer": float(jiwer.wer(r, h)), "cer": float(jiwer.cer(r, h))}
