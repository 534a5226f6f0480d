"""A speech recognition dataset synthesised offline with espeak-ng: every sentence of a text file spoken by
many voices, split by voice (val and test voices are never heard in training); optionally a fraction of the
sentences is held out too (spoken by val and test voices only).

Written as ``OUT/{train,val,test}/<voice>_<n>.wav`` (16 kHz mono: the spoken part at a random level, with
0.1-0.4 s of silence around it and low-level coloured noise) plus ``OUT/metadata.csv``
(``file_name,transcription,split,voice,sentence``, the Hugging Face audiofolder layout that ``edgetl finetune``
reads; ``sentence`` says "trained" or "held-out")
and ``OUT/voices.json``, into a temp folder renamed into place at the end. The same arguments and seed give
byte-identical files.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgetl_runtime.audio import SAMPLE_RATE, write_wav

from ..atomic import atomic_dir
from ..errors import EdgetlError
from .audio_augment import coloured_noise
from .builtin import check_dataset_out, mark_dataset
from .keywords import _speak, _spoken, choose_voices, espeak_binary, speak_all, split_voices
from .transcripts import METADATA

MAX_SECONDS = 30.0  # Whisper's window


def read_sentences(path: str | Path) -> list[str]:
    """One sentence per non-empty line (``#`` lines are comments), each once."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgetlError(
            f"cannot read sentences from {path} ({type(exc).__name__}); pass a UTF-8 text file, one sentence a line"
        ) from None
    out = list(dict.fromkeys(" ".join(ln.split()) for ln in lines if ln.strip() and not ln.lstrip().startswith("#")))
    if len(out) < 2:
        raise EdgetlError(f"{path} holds fewer than two sentences; write one sentence per line")
    return out


def _render(binary: str, voice: str, text: str, key: tuple[int, ...], path: Path) -> float:
    rng = np.random.default_rng(list(key))
    speed, pitch = int(rng.integers(130, 191)), int(rng.integers(25, 76))
    speech = _spoken(_speak(binary, voice, speed, pitch, text)).astype(np.float64)
    if not len(speech):
        raise EdgetlError(f"espeak-ng -v {voice} spoke '{text}' as silence; drop that voice or sentence")
    before, after = (int(rng.uniform(0.1, 0.4) * SAMPLE_RATE) for _ in range(2))
    n = before + len(speech) + after
    if n > MAX_SECONDS * SAMPLE_RATE:
        raise EdgetlError(f"'{text[:60]}' by {voice} lasts {n / SAMPLE_RATE:.1f} s, more than Whisper's 30 s; split the sentence")
    clip = np.zeros(n)
    clip[before : before + len(speech)] = speech * rng.uniform(0.3, 0.9) / np.abs(speech).max()
    rms = np.sqrt(np.mean(clip[before : before + len(speech)] ** 2))
    clip += coloured_noise(n, rng, float(rng.choice([0.0, 1.0, 2.0]))) * rms * 10 ** (-rng.uniform(20.0, 40.0) / 20)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, clip, SAMPLE_RATE)
    return n / SAMPLE_RATE


def write_sentences(
    text_file: str | Path,
    out: str | Path,
    voices: int | Sequence[str] = 12,
    seed: int = 0,
    val_fraction: float = 0.17,
    test_fraction: float = 0.17,
    held_out: float = 0.0,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Speak every sentence of ``text_file`` with each voice (``voices`` drawn, seeded, from the keyword voice pool,
    or ``accent+variant`` names) into ``out``; see the module docstring. ``held_out``: the fraction of sentences
    (seeded) that only val and test voices speak, so that those splits also measure sentences never trained on."""
    binary = espeak_binary()
    sentences = read_sentences(text_file)
    if not 0 <= seed < 2**32:
        raise EdgetlError("--seed must be a whole number from 0 to 4294967295")
    n_held = int(round(len(sentences) * held_out))
    if not 0.0 <= held_out < 1.0 or (held_out > 0 and not 1 <= n_held < len(sentences)):
        raise EdgetlError(
            f"--held-out-sentences {held_out}: choose a fraction that leaves training sentences and holds out at least one"
        )
    unseen = {sentences[i] for i in np.random.default_rng([seed, 1]).permutation(len(sentences))[:n_held]}
    chosen, pool = choose_voices(binary, voices, seed, minimum=3, why=" (train, val and test need one each)")
    index = {v: i for i, v in enumerate(pool)}
    splits = split_voices(chosen, val_fraction, test_fraction)
    out = Path(out)
    check_dataset_out(out, "sentences", {"train", "val", "test", METADATA, "voices.json"}, overwrite)
    with atomic_dir(out) as tmp:
        plan = [(split, v, n, s) for split, vs in splits.items() for v in vs for n, s in enumerate(sentences)
                if split != "train" or s not in unseen]  # fmt: skip
        jobs = [functools.partial(_render, binary, v, s, (seed, index[v], n), tmp / split / f"{_safe(v)}_{n:04d}.wav")
                for split, v, n, s in plan]  # fmt: skip
        seconds = speak_all(jobs, "speaking sentences", workers, progress)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["file_name", "transcription", "split", "voice", "sentence"])
        for split, v, n, s in plan:
            w.writerow([f"{split}/{_safe(v)}_{n:04d}.wav", s, split, v, "held-out" if s in unseen else "trained"])
        (tmp / METADATA).write_text(buf.getvalue(), encoding="utf-8")
        version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.split("Data at")[0].strip()
        meta = {
            "generator": "edgetl sentences (espeak-ng)",
            "espeak_ng": version,
            "text_file": str(Path(text_file).resolve()),
            "sentences": len(sentences),
            "seed": seed,
            "voice": "accent+variant; val and test voices are not in train",
            "splits": splits,
            "held_out_sentences": sorted(unseen),  # spoken by val and test voices only
            "clips": {split: sum(1 for p in plan if p[0] == split) for split in splits},
            "audio_seconds": round(float(sum(seconds)), 1),
        }
        (tmp / "voices.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        mark_dataset(tmp, "sentences", generator="espeak-ng", seed=seed)
    return out


def _safe(voice: str) -> str:
    return voice.replace("+", "_")
