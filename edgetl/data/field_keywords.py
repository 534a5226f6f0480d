"""``keywords-field``: the keywords of ``builtin:keywords`` as a device on a factory floor would hear them.

The target domain of the speech adaptation pair (source: ``builtin:keywords``). The same words, spoken by
espeak-ng voices that ``builtin:keywords`` never uses, then sent through a channel no clean recording has:

- reverberation: a synthetic room response (exponentially decaying noise, RT60 0.3-1.0 s), mixed 40-90% wet;
- a band limit: a telephone-like pass band from 200-400 Hz up to 2.2-3.6 kHz;
- noise at 0-10 dB SNR: pink or brown noise plus a mains hum (50 or 60 Hz and its harmonics);
- a random gain and soft clipping (an overdriven cheap microphone).

Written as ``OUT/{train,val,test}/<word>/*.wav``: for ``--adapt-to`` the train/ and val/ clips are unlabelled
target data (their folders are never read as labels) and test/ (its own voices) is the labelled report split.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgetl_runtime.audio import SAMPLE_RATE, load_audio, write_wav

from ..atomic import atomic_dir
from .audio_augment import coloured_noise
from .builtin import check_dataset_out, mark_dataset
from .keywords import drawn_voices, espeak_binary, voice_pool, write_keywords

SOURCE_VOICES = 48  # builtin:keywords draws this many voices with seed 0: the field set uses none of them
FIELD_VOICES = 24


def field_voices(seed: int = 0) -> list[str]:
    """``FIELD_VOICES`` voices (seeded) from the pool, none of them a builtin:keywords voice."""
    source = set(drawn_voices(SOURCE_VOICES, 0))
    rest = [v for v in voice_pool() if v not in source]
    return [rest[i] for i in np.random.default_rng(seed + 1).permutation(len(rest))[:FIELD_VOICES]]


def _room(rng: np.random.Generator) -> np.ndarray:
    rt60 = float(rng.uniform(0.3, 1.0))
    n = int(min(rt60, 0.6) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    rir[0] = 1.0
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def _band(x: np.ndarray, low: float, high: float) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    spec[(f < low) | (f > high)] = 0
    return np.fft.irfft(spec, len(x)).astype(np.float32)


def channel(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One clip through a random field channel (see the module docstring)."""
    n = len(x)
    wet = np.convolve(x, _room(rng))[:n]
    mix = float(rng.uniform(0.4, 0.9))
    y = (1 - mix) * x + mix * wet
    y = _band(y, float(rng.uniform(200, 400)), float(rng.uniform(2200, 3600)))
    rms = float(np.sqrt(np.mean(y**2))) or 1e-6
    snr = float(rng.uniform(0.0, 10.0))
    noise = coloured_noise(n, rng, float(rng.choice([1.0, 2.0])))
    mains = float(rng.choice([50.0, 60.0]))
    t = np.arange(n) / SAMPLE_RATE
    hum = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 6.3)) / k for k in (1, 2, 3, 5))
    hum = hum / (np.sqrt(np.mean(hum**2)) or 1.0)
    y = y + rms * 10 ** (-snr / 20) * (0.7 * noise + 0.3 * hum)
    gain = 10 ** (float(rng.uniform(-6, 12)) / 20)
    y = np.tanh(y * gain / (np.max(np.abs(y)) or 1.0) * 1.5) * 0.9  # soft clipping near full scale
    return y.astype(np.float32)


def write_keywords_field(out: str | Path, seed: int = 0, takes: int = 3, progress: bool = True, overwrite: bool = False) -> Path:
    """Synthesise the field keywords into ``out`` (atomically; an earlier copy only with ``overwrite``)."""
    out = Path(out)
    check_dataset_out(out, "keywords-field", {"train", "val", "test", "voices.json"}, overwrite)
    espeak_binary()  # espeak-ng missing: its one-line error before anything is written
    voices = field_voices(seed)
    with tempfile.TemporaryDirectory() as scratch, atomic_dir(out) as tmp:
        clean = write_keywords(Path(scratch) / "clean", voices=voices, seed=seed, takes=takes, val_fraction=0.25,
                               test_fraction=0.25, progress=progress)  # fmt: skip
        for i, wav in enumerate(sorted(clean.rglob("*.wav"))):
            dest = tmp / wav.relative_to(clean)
            dest.parent.mkdir(parents=True, exist_ok=True)
            x = load_audio(str(wav), SAMPLE_RATE)
            write_wav(dest, channel(x, np.random.default_rng([seed, i])), SAMPLE_RATE)
        meta = json.loads((clean / "voices.json").read_text(encoding="utf-8"))
        meta["channel"] = (
            "reverb RT60 0.3-1.0 s, band 200-400 Hz to 2.2-3.6 kHz, pink/brown noise + mains hum at 0-10 dB SNR, soft clipping"
        )
        (tmp / "voices.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        mark_dataset(tmp, "keywords-field", generator="espeak-ng + field channel", seed=seed, voices=voices)
        shutil.rmtree(clean)
    return out
