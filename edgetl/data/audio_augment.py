"""Train-time augmentation of 16 kHz waveforms, driven by an explicit numpy RNG.

Speed change (band-limited resampling, so pitch moves with it), a time shift
inside the feature window, gain, and background noise mixed at a random
signal-to-noise ratio: coloured noise (white, pink or brown) synthesised from
the RNG, or a random stretch of a noise recording when a noise folder is given.
Every random choice comes from the generator passed in, so a sample's
augmentation depends only on (seed, epoch, index), as for images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetl_runtime.audio import AUDIO_SUFFIXES, SAMPLE_RATE, fit_length, load_audio, resample

from ..errors import EdgetlError


@dataclass(frozen=True)
class AudioAugment:
    """One preset: shift (seconds, either way), speed factor range, gain range (dB),
    chance of mixing in noise and its SNR range (dB)."""

    shift: float
    speed: tuple[float, float]
    gain_db: tuple[float, float]
    noise_p: float
    snr_db: tuple[float, float]


AUDIO_AUGMENT_PRESETS: dict[str, AudioAugment | None] = {
    "none": None,
    "light": AudioAugment(shift=0.1, speed=(0.95, 1.05), gain_db=(-6.0, 6.0), noise_p=0.5, snr_db=(10.0, 30.0)),
    "strong": AudioAugment(shift=0.2, speed=(0.85, 1.15), gain_db=(-10.0, 10.0), noise_p=0.8, snr_db=(0.0, 20.0)),
}


def audio_preset(name: str) -> AudioAugment | None:
    if name not in AUDIO_AUGMENT_PRESETS:
        raise EdgetlError(f"unknown audio augmentation '{name}'; choose one of {', '.join(AUDIO_AUGMENT_PRESETS)}")
    return AUDIO_AUGMENT_PRESETS[name]


def coloured_noise(n: int, rng: np.random.Generator, exponent: float = 0.0) -> np.ndarray:
    """``n`` samples of unit-RMS noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown)."""
    white = rng.standard_normal(n)
    if exponent:
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n)
        f[0] = f[1] if n > 1 else 1.0
        white = np.fft.irfft(spec / f ** (exponent / 2), n)
    rms = np.sqrt(np.mean(white**2)) or 1.0
    return (white / rms).astype(np.float32)


def load_noise_folder(path: str | Path) -> list[np.ndarray]:
    """Every audio file under ``path`` as 16 kHz mono float32 (silent or empty files are left out)."""
    root = Path(path)
    if not root.is_dir():
        raise EdgetlError(f"noise folder {root} does not exist; pass a folder of background-noise recordings")
    clips = [load_audio(f) for f in sorted(root.rglob("*")) if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES]
    clips = [c for c in clips if len(c) and np.any(c)]
    if not clips:
        raise EdgetlError(f"noise folder {root} holds no non-silent audio ({', '.join(sorted(AUDIO_SUFFIXES))})")
    return clips


def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``x`` ``factor`` times faster (duration / factor), by resampling in 1% steps."""
    target = int(round(SAMPLE_RATE / factor / 160)) * 160
    return resample(x, SAMPLE_RATE, target) if target != SAMPLE_RATE else x


def time_shift(x: np.ndarray, samples: int) -> np.ndarray:
    """Delay (positive) or advance (negative) ``x`` by ``samples``, filling with silence."""
    if samples > 0:
        return np.concatenate([np.zeros(samples, dtype=np.float32), x])
    return x[-samples:]


def _noise(n: int, rng: np.random.Generator, bank: list[np.ndarray] | None) -> np.ndarray:
    if not bank:
        return coloured_noise(n, rng, float(rng.choice([0.0, 1.0, 2.0])))
    clip = bank[int(rng.integers(len(bank)))]
    if len(clip) < n:
        clip = np.tile(clip, -(-n // len(clip)))
    start = int(rng.integers(len(clip) - n + 1))
    seg = clip[start : start + n].astype(np.float64)
    return (seg / (np.sqrt(np.mean(seg**2)) or 1.0)).astype(np.float32)


def mix_at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``x`` plus unit-RMS ``noise`` scaled to ``snr_db`` below the signal's RMS (silence gets none)."""
    rms = float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))
    return (x + noise * (rms * 10 ** (-snr_db / 20))).astype(np.float32)


def augment_audio(
    x: np.ndarray, n_samples: int, preset: str, rng: np.random.Generator, noise: list[np.ndarray] | None = None
) -> np.ndarray:
    """Speed, shift, gain and noise for a training clip, fitted to the ``n_samples`` feature window."""
    p = audio_preset(preset)
    x = np.asarray(x, dtype=np.float32)
    if p is None:
        return fit_length(x, n_samples)
    x = change_speed(x, float(rng.uniform(*p.speed)))
    limit = int(p.shift * SAMPLE_RATE)
    x = fit_length(time_shift(x, int(rng.integers(-limit, limit + 1))), n_samples)
    x = x * np.float32(10 ** (rng.uniform(*p.gain_db) / 20))
    if rng.random() < p.noise_p:
        x = mix_at_snr(x, _noise(n_samples, rng, noise), float(rng.uniform(*p.snr_db)))
    return x
