"""A keyword-spotting dataset synthesised offline with espeak-ng.

Each word is spoken by many voices, a voice being an English accent (``en-us``,
``en-gb-scotland``, ``en-029``, ...) combined with a voice variant (``m3``,
``f2``, ``klatt``, ``Annie``, ...), in several takes of random speed (-s) and
pitch (-p). Every take is resampled from espeak-ng's 22.05 kHz to 16 kHz mono,
trimmed to the spoken part, given a random peak level, placed at a random offset
in a fixed-length clip (silence before and after) and mixed with low-level
coloured noise. Voices are split into train/val/test, so validation and test
voices are never heard in training (a held-out voice's accent, or variant, may
still occur in training with another partner).

Written as ``OUT/{train,val,test}/<word>/*.wav`` plus ``OUT/voices.json``
(which voices went where, and the generator settings), into a temp folder that
is renamed into place at the end. The same arguments and seed give
byte-identical files.
"""

from __future__ import annotations

import functools
import io
import json
import os
import shutil
import subprocess
import wave
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgetl_runtime.audio import SAMPLE_RATE, resample, write_wav

from ..atomic import atomic_dir
from ..errors import EdgetlError
from .audio_augment import coloured_noise
from .builtin import check_dataset_out, mark_dataset

T = TypeVar("T")
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
# espeak-ng voice variants that sound distinct (no duplicates such as caleb == klatt; no whisper/robot effects)
VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "klatt2",
    "klatt3",
    "klatt4",
    "Alex",
    "Alicia",
    "Andrea",
    "Andy",
    "Annie",
    "aunty",
    "belinda",
    "benjamin",
    "david",
    "Denis",
    "edward",
    "Gene",
    "grandma",
    "grandpa",
    "Hugo",
    "iven",
    "john",
    "Lee",
    "linda",
    "Marco",
    "Mario",
    "max",
    "Michael",
    "Mike",
    "norbert",
    "paul",
    "quincy",
    "rob",
    "robert",
    "shelby",
    "steph",
    "travis",
    "victor",
    "zac",
)
UNKNOWN = "_unknown_"
SILENCE = "_silence_"
MISSING = "espeak-ng not found: install it, e.g. apt-get install espeak-ng"


@dataclass(frozen=True)
class KeywordSettings:
    """What a generated dataset was made with (recorded in voices.json)."""

    words: list[str]
    seed: int
    takes: int
    clip_seconds: float
    speed: tuple[int, int]
    pitch: tuple[int, int]
    level: tuple[float, float]
    snr_db: tuple[float, float]
    unknown_words: list[str]
    silence: bool
    sample_rate: int = SAMPLE_RATE


def espeak_binary() -> str:
    """The espeak-ng executable (``EDGETL_ESPEAK_NG`` overrides the name or path)."""
    found = shutil.which(os.environ.get("EDGETL_ESPEAK_NG", "espeak-ng"))
    if not found:
        raise EdgetlError(MISSING)
    return found


def voice_pool() -> list[str]:
    """Every accent+variant voice, in a fixed order."""
    return [f"{a}+{v}" for a in ACCENTS for v in VARIANTS]


def split_voices(voices: list[str], val_fraction: float, test_fraction: float) -> dict[str, list[str]]:
    """Consecutive voices into test, val, train (at least one each when there are three or more)."""
    n = len(voices)
    n_test = max(1, int(round(n * test_fraction))) if n >= 3 else 0
    n_val = max(1, int(round(n * val_fraction))) if n >= 3 else 0
    return {"train": voices[n_test + n_val :], "val": voices[n_test : n_test + n_val], "test": voices[:n_test]}


def _speak(binary: str, voice: str, speed: int, pitch: int, text: str) -> np.ndarray:
    """espeak-ng's audio for ``text`` as 16 kHz float32."""
    cmd = [binary, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    except OSError as exc:
        raise EdgetlError(f"cannot run {binary} ({exc}); install espeak-ng, e.g. apt-get install espeak-ng") from None
    try:
        with wave.open(io.BytesIO(done.stdout), "rb") as w:
            rate, width = w.getframerate(), w.getsampwidth()
            raw = w.readframes(w.getnframes())  # the header's length is a placeholder when streaming
    except (wave.Error, EOFError) as exc:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        raise EdgetlError(
            f"espeak-ng -v {voice} produced no audio for '{text}' ({err[0] if err else exc}); check `espeak-ng --voices=en`"
        ) from None
    if width != 2 or len(raw) < 2:
        raise EdgetlError(f"espeak-ng -v {voice} produced no audio for '{text}'; check `espeak-ng --voices=en`")
    x = np.frombuffer(raw[: len(raw) // 2 * 2], "<i2").astype(np.float32) / 32768.0
    return resample(x, rate, SAMPLE_RATE)


def _check_voices(binary: str, voices: list[str]) -> None:
    """Reject accents or variants espeak-ng does not have (it would silently fall back to a default)."""

    def column(args: list[str], index: int) -> set[str]:
        lines = subprocess.run([binary, *args], capture_output=True, text=True).stdout.splitlines()[1:]
        return {ln.split()[index].split("/")[-1].lower() for ln in lines if len(ln.split()) > index}

    accents = column(["--voices"], 1) | column(["--voices"], 4)  # language codes and voice file names
    variants = column(["--voices=variant"], 4)
    for v in voices:
        accent, _, variant = v.partition("+")
        if accent.lower() not in accents or (variant and variant.lower() not in variants):
            raise EdgetlError(
                f"espeak-ng has no voice '{v}'; use accent+variant names from "
                f"`espeak-ng --voices=en` and `espeak-ng --voices=variant`, e.g. en-us+f2"
            )


def _spoken(x: np.ndarray) -> np.ndarray:
    """The part of ``x`` between the first and last sample above 2% of the peak (plus 10 ms)."""
    loud = np.flatnonzero(np.abs(x) > 0.02 * (np.abs(x).max() or 1.0))
    if not len(loud):
        return x[:0]
    margin = SAMPLE_RATE // 100
    return x[max(0, loud[0] - margin) : loud[-1] + margin]


@dataclass(frozen=True)
class _Take:
    path: Path
    voice: str
    text: str | None  # None: a silence clip
    speed: int
    pitch: int
    key: tuple[int, ...]  # seeds this take's level, offset and noise


def _render(binary: str, take: _Take, s: KeywordSettings) -> None:
    rng = np.random.default_rng(list(take.key))
    n = int(round(s.clip_seconds * SAMPLE_RATE))
    clip = np.zeros(n, dtype=np.float64)
    colour = float(rng.choice([0.0, 1.0, 2.0]))
    if take.text is None:  # background only, at -60..-35 dBFS
        clip += coloured_noise(n, rng, colour) * 10 ** (rng.uniform(-60.0, -35.0) / 20)
    else:
        speech = _spoken(_speak(binary, take.voice, take.speed, take.pitch, take.text)).astype(np.float64)
        if not len(speech):
            raise EdgetlError(f"espeak-ng -v {take.voice} spoke '{take.text}' as silence; drop that voice or word")
        if len(speech) > n:
            raise EdgetlError(
                f"'{take.text}' by {take.voice} at -s {take.speed} lasts {len(speech) / SAMPLE_RATE:.2f} s, "
                f"more than the {s.clip_seconds} s clip; raise --clip-seconds or the slowest speed"
            )
        speech *= rng.uniform(*s.level) / np.abs(speech).max()
        start = int(rng.integers(0, n - len(speech) + 1))
        clip[start : start + len(speech)] = speech
        rms = np.sqrt(np.mean(speech**2))
        clip += coloured_noise(n, rng, colour) * rms * 10 ** (-rng.uniform(*s.snr_db) / 20)
    take.path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(take.path, clip, SAMPLE_RATE)


def _plan(root: Path, splits: dict[str, list[str]], pool_index: dict[str, int], s: KeywordSettings) -> list[_Take]:
    """Every take, with its speed, pitch and file name drawn from (seed, voice, class, take)."""
    classes = list(s.words) + ([UNKNOWN] if s.unknown_words else []) + ([SILENCE] if s.silence else [])
    takes = []
    for split, voices in splits.items():
        for voice in voices:
            for c, label in enumerate(classes):
                for k in range(s.takes):
                    key = (s.seed, pool_index[voice], c, k)
                    rng = np.random.default_rng(list(key) + [1])
                    speed = int(rng.integers(s.speed[0], s.speed[1] + 1))
                    pitch = int(rng.integers(s.pitch[0], s.pitch[1] + 1))
                    text: str | None = label
                    name = f"{voice}_{k}"
                    if label == UNKNOWN:
                        text = s.unknown_words[int(rng.integers(len(s.unknown_words)))]
                        name = f"{voice}_{text}_{k}"
                    elif label == SILENCE:
                        text = None
                    takes.append(_Take(root / split / label / f"{name}.wav", voice, text, speed, pitch, key))
    return takes


def drawn_voices(n: int, seed: int) -> list[str]:
    """The ``n`` voices a dataset of ``n`` voices and ``seed`` speaks with (seeded draw from ``voice_pool()``)."""
    pool = voice_pool()
    return [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))[:n]]


def choose_voices(
    binary: str, voices: int | Sequence[str], seed: int, minimum: int = 1, why: str = ""
) -> tuple[list[str], list[str]]:
    """(the voices to speak with, the pool they index into): ``voices`` drawn (seeded) from ``voice_pool()``, or
    the named ``accent+variant`` voices (checked against espeak-ng, added to the pool). ``why``: why at least
    ``minimum`` are needed, for the error."""
    pool = voice_pool()
    if isinstance(voices, int):
        if not minimum <= voices <= len(pool):
            raise EdgetlError(f"--voices {voices}: choose {minimum} to {len(pool)} voices{why}")
        return drawn_voices(voices, seed), pool
    chosen = list(voices)
    if len(set(chosen)) != len(chosen):
        raise EdgetlError("voices repeat; list each accent+variant once")
    if len(chosen) < minimum:
        raise EdgetlError(f"list at least {minimum} different voices (accent+variant){why}")
    _check_voices(binary, chosen)
    return chosen, pool + [v for v in chosen if v not in pool]


def speak_all(jobs: list[Callable[[], T]], label: str, workers: int | None, progress: bool) -> list[T]:
    """Run the rendering jobs on a few threads (espeak-ng runs as a process each) with a progress bar; their
    results in order. The first failure cancels what has not started and is raised."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with (
        Progress(*columns, transient=True, disable=not progress) as bar,
        ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as ex,
    ):
        task = bar.add_task(label, total=len(jobs))
        futures = [ex.submit(job) for job in jobs]
        try:
            for fut in as_completed(futures):
                fut.result()
                bar.advance(task)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
        return [fut.result() for fut in futures]


def _check_words(words: Sequence[str], what: str) -> list[str]:
    out = [w.strip() for w in words if w.strip()]
    bad = [w for w in out if w.startswith(("-", "_", ".")) or "/" in w or "\\" in w]
    if bad:
        raise EdgetlError(f"{what} '{bad[0]}' cannot be a class folder name; use plain words such as yes,no,up,down")
    if len(set(out)) != len(out):
        raise EdgetlError(f"{what}s repeat: {', '.join(out)}; list each once")
    return out


def write_keywords(
    out: str | Path,
    words: Sequence[str] = ("yes", "no", "up", "down"),
    voices: int | Sequence[str] = 48,
    seed: int = 0,
    takes: int = 5,
    clip_seconds: float = 1.0,
    speed: tuple[int, int] = (120, 210),
    pitch: tuple[int, int] = (20, 80),
    snr_db: tuple[float, float] = (20.0, 40.0),
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    unknown_words: Sequence[str] = (),
    silence: bool = False,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Synthesise ``OUT/{train,val,test}/<word>/*.wav`` (16 kHz mono, ``clip_seconds`` long) and ``OUT/voices.json``.

    ``voices`` is how many voices to draw (seeded) from ``voice_pool()``, or an explicit
    list of ``accent+variant`` names. ``unknown_words`` adds an ``_unknown_`` class
    spoken from that list, ``silence`` a ``_silence_`` class of background noise.
    """
    binary = espeak_binary()
    words = _check_words(words, "word")
    unknown = _check_words(unknown_words, "unknown word")
    if len(words) + bool(unknown) + bool(silence) < 2:
        raise EdgetlError("a keyword dataset needs at least two classes; pass two or more --words")
    if set(words) & set(unknown):
        raise EdgetlError(f"{', '.join(sorted(set(words) & set(unknown)))} is both a keyword and an unknown word")
    if not 0 <= seed < 2**32:
        raise EdgetlError("--seed must be a whole number from 0 to 4294967295")
    if takes < 1 or not (0 < speed[0] <= speed[1]) or not (0 <= pitch[0] <= pitch[1] <= 99) or clip_seconds <= 0:
        raise EdgetlError(
            "keywords: takes must be >= 1, speed a positive range (words per minute), pitch within 0..99, clip seconds positive"
        )
    chosen, pool = choose_voices(binary, voices, seed)
    splits = split_voices(chosen, val_fraction, test_fraction)
    settings = KeywordSettings(
        list(words), seed, takes, clip_seconds, tuple(speed), tuple(pitch), (0.3, 0.9), tuple(snr_db), list(unknown), silence
    )

    out = Path(out)
    check_dataset_out(out, "keywords", {"train", "val", "test", "voices.json"}, overwrite, legacy_marks=("voices.json",))
    with atomic_dir(out) as tmp:
        plan = _plan(tmp, splits, {v: i for i, v in enumerate(pool)}, settings)
        speak_all([functools.partial(_render, binary, t, settings) for t in plan], "speaking keywords", workers, progress)
        version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.split("Data at")[0].strip()
        meta = {
            "generator": "edgetl keywords (espeak-ng)",
            "espeak_ng": version,
            "settings": asdict(settings),
            "voice": "accent+variant; val and test voices are not in train",
            "splits": splits,
            "clips": {split: sum(1 for t in plan if t.path.parts[len(tmp.parts)] == split) for split in splits},
        }
        (tmp / "voices.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        mark_dataset(tmp, "keywords", generator="espeak-ng", seed=seed)
    return out
