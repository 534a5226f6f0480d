"""Labelled audio clips on disk, and a torch Dataset of Whisper log-mel features.

Layouts (as for images, see ``sources.py``):
- ``DIR/<class>/*.wav`` (also ``.flac``, ``.ogg``), optionally under ``DIR/{train,val,test}/``;
- ``FILE.csv`` with a header ``path,label`` (classification) or ``path,target``
  (regression), and optionally a ``split`` column; paths are relative to the CSV.

Every clip is decoded once, whatever its sample rate and channel count, to 16 kHz
mono float32 and kept in memory (keyword and sound-event datasets are small).
Missing, unreadable, empty or all-zero files are skipped and listed in
``skipped``; more than ``max_bad_fraction`` of them is a one-line error.
Features come from ``edgetl_runtime.audio.log_mel``: the numpy code that
deployed artifacts run too.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgetl_runtime.audio import AUDIO_SUFFIXES, SAMPLE_RATE, load_audio, log_mel, window_samples

from ..errors import EdgetlError
from .audio_augment import audio_preset, augment_audio, load_noise_folder
from .dataset import FixedShapeDataset
from .sources import IMAGE_SUFFIXES, ImageSource, Sample, _scan_csv, _scan_folder, check_labels


@dataclass
class AudioSource(ImageSource):
    """Like ``ImageSource``, plus every readable clip decoded: path -> 16 kHz mono float32."""

    waveforms: dict[str, np.ndarray] = field(default_factory=dict)


def audio_preprocess(max_audio_seconds: float = 1.0, n_mels: int = 80) -> dict[str, Any]:
    """The preprocessing facts a bundle records for audio (Whisper log-mel of a fixed window)."""
    window_samples(max_audio_seconds)  # validates the window
    return {
        "modality": "audio",
        "features": "whisper-log-mel",
        "sample_rate": SAMPLE_RATE,
        "n_mels": int(n_mels),
        "max_audio_seconds": float(max_audio_seconds),
        "frames": int(round(max_audio_seconds * 100)),
    }


def looks_like_audio(path: str | Path) -> bool:
    """Whether ``path`` is an audio dataset: a folder holding audio files (and no images), or a
    CSV with a ``path`` column whose first rows name audio files."""
    path = Path(path)
    if path.is_dir():
        suffixes = {f.suffix.lower() for f in path.rglob("*") if f.is_file()}
        return bool(suffixes & AUDIO_SUFFIXES) and not suffixes & IMAGE_SUFFIXES
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for _, r in zip(range(21), csv.reader(fh))]
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if "path" not in header:
        return False
    i = header.index("path")
    paths = [r[i].strip() for r in rows[1:] if len(r) > i and r[i].strip()]
    return bool(paths) and all(Path(p).suffix.lower() in AUDIO_SUFFIXES for p in paths)


def _decode(path: str) -> tuple[np.ndarray | None, str]:
    """(16 kHz mono samples, "") or (None, why it was skipped)."""
    if not Path(path).is_file():
        return None, "missing"
    try:
        x = load_audio(path, SAMPLE_RATE)
    except EdgetlError:
        return None, "unreadable"
    if len(x) == 0:
        return None, "empty"
    if not np.any(x):
        return None, "silent (all samples zero)"
    return x, ""


def decode_audio(
    source: Any,
    max_bad_fraction: float,
    progress: bool = True,
    total: int | None = None,
    bad_are: str = "audio files are unreadable, empty or missing",
) -> None:
    """Decode every clip of ``source`` (an ``AudioSource`` or ``TranscriptSource``: splits of items with a ``path``)
    into ``source.waveforms``; drop bad ones; fail if more than ``max_bad_fraction`` of ``total`` (default: the
    clips) went to ``source.skipped``, counting what was skipped before."""
    clips = sum(len(s) for s in source.splits.values())
    total = clips if total is None else total
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True, disable=not progress) as bar:
        task = bar.add_task("decoding audio", total=clips)
        for split, samples in source.splits.items():
            good = []
            for s in samples:
                x, why = _decode(s.path)
                if x is None:
                    source.skipped.append((s.path, why))
                else:
                    source.waveforms[s.path] = x
                    good.append(s)
                bar.advance(task)
            source.splits[split] = good
    bad = len(source.skipped)
    if total and bad / total > max_bad_fraction:
        examples = ", ".join(f"{p} ({why})" for p, why in source.skipped[:3])
        raise EdgetlError(
            f"{source.origin}: {bad} of {total} {bad_are} "
            f"(e.g. {examples}); fix or remove them, or raise --max-bad-fraction (now {max_bad_fraction})"
        )


def scan_audio(
    path: str | Path, labels: list[str] | None = None, max_bad_fraction: float = 0.1, progress: bool = True
) -> AudioSource:
    """Read an audio folder or CSV into an ``AudioSource`` (clips decoded); raises ``EdgetlError`` on bad input."""
    path = Path(path)
    if not path.exists():
        raise EdgetlError(f"{path} does not exist; pass an audio folder, a CSV of path,label, or builtin:keywords")
    if path.is_dir():
        found = _scan_folder(path, AUDIO_SUFFIXES, kind="audio clip")
    elif path.suffix.lower() == ".csv":
        found = _scan_csv(path, kind="audio clip")
    else:
        raise EdgetlError(f"{path} is neither a folder nor a .csv file; pass an audio folder or a CSV of path,label")
    source = AudioSource(found.origin, found.task, found.splits)
    check_labels(source, labels, kind="audio clip")
    decode_audio(source, max_bad_fraction, progress)
    if len(source.splits["train"]) < 2:
        raise EdgetlError(f"{source.origin}: fewer than two readable training clips; add more audio")
    return source


class AudioDataset(FixedShapeDataset):
    """Yields (log-mel float32 ``[n_mels, frames]``, target); augmentation depends only on (seed, epoch, index).

    ``waveforms`` maps paths to decoded 16 kHz clips (``AudioSource.waveforms``);
    clips not in it are decoded on first use and kept. ``noise_dir`` supplies
    background recordings for noise augmentation (default: synthesised noise).
    """

    def __init__(
        self,
        samples: list[Sample],
        preprocess: dict[str, Any],
        task: str,
        labels: list[str],
        augment: str = "none",
        seed: int = 0,
        waveforms: dict[str, np.ndarray] | None = None,
        noise_dir: str | Path | None = None,
    ) -> None:
        audio_preset(augment)  # reject unknown names before training starts
        super().__init__(samples, preprocess, task, labels, augment, seed)
        self.waveforms = waveforms if waveforms is not None else {}
        self.noise = load_noise_folder(noise_dir) if noise_dir and augment != "none" else None
        self.seconds = float(preprocess["max_audio_seconds"])
        self.n_mels = int(preprocess.get("n_mels", 80))
        self.n_samples = window_samples(self.seconds)

    def waveform(self, i: int) -> np.ndarray:
        path = self.samples[i].path
        x = self.waveforms.get(path)
        if x is None:
            x = self.waveforms[path] = load_audio(path, SAMPLE_RATE)
        return x

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.waveform(i)
        if self.augment != "none":
            rng = np.random.default_rng([self.seed, self.epoch, i])
            x = augment_audio(x, self.n_samples, self.augment, rng, self.noise)
        mel = log_mel(x, self.seconds, self.n_mels)
        return torch.from_numpy(mel), torch.as_tensor(self.targets[i])
