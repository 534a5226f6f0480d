"""Audio input for artifacts: a sound file -> 16 kHz mono float32 -> Whisper log-mel (stdlib + numpy only).

This module also runs on devices, so it needs nothing but the standard library
and numpy (FLAC/OGG decoding uses ``soundfile`` when it is installed). Training
computes its features with the very same ``log_mel``, so a deployed artifact sees
exactly the numbers the model was trained on.

``log_mel`` reproduces ``transformers.WhisperFeatureExtractor()`` (16 kHz, n_fft
400, hop 160, Hann window, Slaney mel filters, log10 of power clamped at 1e-10,
an 8-decade floor below the maximum, ``(x + 4) / 4``) for a window of any length:
``seconds * 16000`` samples (zero-padded or trimmed) give ``seconds * 100``
frames. As in Whisper, the last STFT frame is dropped. For windows shorter than
30 s the STFT's reflect padding at the window's end sees the window's last
samples rather than zeros, so the last frame differs from the same frame of a
30 s window unless the audio is silent in its final 12.5 ms.
"""

from __future__ import annotations

import importlib.util
import math
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .base import EdgetlError

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga"}


# ----------------------------------------------------------------------------- files
def _pcm_to_float(raw: bytes, width: int) -> np.ndarray:
    """Little-endian PCM bytes of ``width`` bytes per sample -> float32 in [-1, 1)."""
    if width == 1:  # 8-bit WAV is unsigned
        return (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    if width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = (b[:, 0] << 8) | (b[:, 1] << 16) | (b[:, 2] << 24)  # into the top of an int32: sign comes for free
        return (v.astype(np.float64) / 2.0**31).astype(np.float32)
    if width == 4:
        return (np.frombuffer(raw, "<i4").astype(np.float64) / 2.0**31).astype(np.float32)
    raise EdgetlError(f"unsupported WAV sample width {8 * width} bits")


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A PCM WAV file (8/16/24/32-bit, any channel count) -> (mono float32 samples, sample rate)."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except FileNotFoundError:
        raise EdgetlError(f"{path} does not exist; pass an existing audio file") from None
    except (wave.Error, EOFError, OSError, ValueError) as exc:
        raise EdgetlError(f"{path} is not a readable PCM WAV file ({exc}); convert it to 16-bit PCM WAV") from None
    if width not in (1, 2, 3, 4) or channels < 1:
        raise EdgetlError(f"{path}: {8 * width}-bit, {channels}-channel WAV is not supported; convert it to 16-bit PCM WAV")
    usable = len(raw) - len(raw) % (width * channels)  # a truncated last frame is dropped
    x = _pcm_to_float(raw[:usable], width)
    return x.reshape(-1, channels).mean(axis=1, dtype=np.float32), rate


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float samples in [-1, 1] as a 16-bit PCM WAV (clipped; byte-identical for equal input)."""
    pcm = np.clip(np.round(np.asarray(samples, np.float64) * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    try:
        import soundfile
    except ImportError:
        raise EdgetlError(
            f"{path}: reading {path.suffix or 'this'} audio needs the soundfile package; "
            f"run `pip install soundfile` or convert the file to PCM WAV"
        ) from None
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, TypeError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EdgetlError(f"{path} is not a readable audio file ({reason}); re-encode it as WAV, FLAC or OGG") from None
    return data.mean(axis=1, dtype=np.float32), int(rate)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Any WAV/FLAC/OGG file -> mono float32 samples at ``sample_rate``.

    PCM WAV is read with the standard library; other formats (and WAV variants the
    ``wave`` module does not know, like float or extensible WAV) need ``soundfile``.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgetlError(f"{path} does not exist; pass an existing audio file")
    if path.suffix.lower() == ".wav":
        try:
            x, rate = read_wav(path)
            return resample(x, rate, sample_rate)
        except EdgetlError:
            if importlib.util.find_spec("soundfile") is None:
                raise
    x, rate = _read_soundfile(path)
    return resample(x, rate, sample_rate)


# ----------------------------------------------------------------------------- resampling
@lru_cache(maxsize=16)
def _polyphase_bank(up: int, down: int) -> tuple[np.ndarray, int]:
    """The Kaiser-windowed sinc low-pass of ``scipy.signal.resample_poly`` (beta 5, 10 zero
    crossings), split into ``up`` phases of ``taps`` coefficients: (bank [up, taps], half length)."""
    max_rate = max(up, down)
    half = 10 * max_rate
    m = np.arange(2 * half + 1, dtype=np.float64) - half
    h = np.sinc(m / max_rate) * np.kaiser(2 * half + 1, 5.0)
    h *= up / h.sum()
    taps = 2 * half // up + 1
    idx = 2 * half - np.arange(up)[:, None] - np.arange(taps)[None, :] * up
    bank = np.where(idx >= 0, h[np.clip(idx, 0, None)], 0.0)
    bank.setflags(write=False)
    return bank, half


def resample(x: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Band-limited polyphase resampling (the filter and alignment of ``scipy.signal.resample_poly``,
    zero-padded at the ends) -> float32 of ``ceil(len(x) * sr_to / sr_from)`` samples."""
    x = np.asarray(x, dtype=np.float32)
    sr_from, sr_to = int(sr_from), int(sr_to)
    if sr_from <= 0 or sr_to <= 0:
        raise EdgetlError(f"sample rates must be positive (got {sr_from} -> {sr_to})")
    if sr_from == sr_to or len(x) == 0:
        return x.copy()
    g = math.gcd(sr_from, sr_to)
    up, down = sr_to // g, sr_from // g
    bank, half = _polyphase_bank(up, down)
    taps = bank.shape[1]
    n_out = -(-len(x) * up // down)
    pad = taps + 1
    xp = np.concatenate([np.zeros(pad), x.astype(np.float64), np.zeros(pad)])
    out = np.empty(n_out, dtype=np.float32)
    for start in range(0, n_out, 16384):
        t = np.arange(start, min(n_out, start + 16384), dtype=np.int64) * down  # positions at the upsampled rate
        first = -((half - t) // up)  # first input sample within the filter's reach
        phase = (half - t) % up
        window = xp[first[:, None] + np.arange(taps)[None, :] + pad]
        out[start : start + len(t)] = np.einsum("nk,nk->n", window, bank[phase])
    return out


# ----------------------------------------------------------------------------- features
def _hertz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    mel = 3.0 * f / 200.0
    logstep = 27.0 / np.log(6.4)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) * logstep, mel)


def _mel_to_hertz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(logstep * (mel - 15.0)), 200.0 * mel / 3.0)


@lru_cache(maxsize=8)
def mel_filters(n_mels: int = 80, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """Slaney-normalised triangular mel filters from 0 Hz to Nyquist: float64 ``[n_fft // 2 + 1, n_mels]``
    (the layout and values of ``WhisperFeatureExtractor().mel_filters``)."""
    fft_freqs = np.linspace(0, sample_rate // 2, n_fft // 2 + 1)
    edges = _mel_to_hertz(np.linspace(_hertz_to_mel(0.0), _hertz_to_mel(sample_rate / 2), n_mels + 2))
    diff = np.diff(edges)
    slopes = edges[None, :] - fft_freqs[:, None]
    down = -slopes[:, :-2] / diff[:-1]
    up = slopes[:, 2:] / diff[1:]
    filters = np.maximum(0.0, np.minimum(down, up)) * (2.0 / (edges[2:] - edges[:-2]))[None, :]
    filters.setflags(write=False)
    return filters


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Trim to ``n`` samples or zero-pad at the end."""
    x = np.asarray(x, dtype=np.float32)
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.zeros(n - len(x), dtype=np.float32)])


def window_samples(seconds: float) -> int:
    """Samples in a feature window of ``seconds`` (a whole number of 10 ms hops)."""
    frames = int(round(seconds * FRAMES_PER_SECOND))
    if frames < 2 or abs(frames - seconds * FRAMES_PER_SECOND) > 1e-6:
        raise EdgetlError(f"audio window of {seconds} s must be a multiple of 0.01 s and at least 0.02 s")
    return frames * HOP_LENGTH


def split_windows(x: np.ndarray, seconds: float = 30.0, search_seconds: float = 5.0) -> list[np.ndarray]:
    """A 16 kHz clip cut into pieces of at most ``seconds``, for a model with a fixed window (Whisper: 30 s).

    Each cut goes at the quietest 20 ms of the last ``search_seconds`` (at most a third of the window) before the
    window's end, the latest of equally quiet ones, so that a cut falls between words where it can and the pieces
    stay long; the pieces joined give ``x`` back exactly."""
    x = np.asarray(x)
    size, hop = window_samples(seconds), SAMPLE_RATE // 50
    span = min(window_samples(search_seconds), size // 3 // hop * hop)
    pieces, start = [], 0
    while len(x) - start > size:
        lo = start + max(hop, size - span)
        frames = x[lo : start + size]
        energy = np.square(frames[: len(frames) // hop * hop].astype(np.float64)).reshape(-1, hop).sum(axis=1)
        last_quietest = len(energy) - 1 - int(np.argmin(energy[::-1]))
        cut = lo + last_quietest * hop + hop // 2 if len(energy) else start + size
        pieces.append(x[start:cut])
        start = cut
    pieces.append(x[start:])
    return pieces


def log_mel(samples: np.ndarray, seconds: float = 30.0, n_mels: int = 80) -> np.ndarray:
    """16 kHz mono samples -> Whisper log-mel features, float32 ``[n_mels, seconds * 100]``."""
    n = window_samples(seconds)
    x = fit_length(np.asarray(samples, dtype=np.float32).reshape(-1), n).astype(np.float64)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    frames = sliding_window_view(np.pad(x, N_FFT // 2, mode="reflect"), N_FFT)[::HOP_LENGTH]
    power = np.abs(np.fft.rfft(frames * hann, axis=1)) ** 2  # [frames + 1, n_fft // 2 + 1]
    mel = mel_filters(n_mels).T @ power[:-1].T  # Whisper drops the last STFT frame
    logs = np.log10(np.maximum(mel, 1e-10))
    logs = np.maximum(logs, logs.max() - 8.0)
    return ((logs + 4.0) / 4.0).astype(np.float32)


# ----------------------------------------------------------------------------- model input
def check_preprocess(preprocess: dict, where: str = "this model") -> tuple[float, int]:
    """(window seconds, mel bins) of a manifest's audio preprocessing; a one-line error for features
    this module does not compute."""
    kind, rate = preprocess.get("features"), int(preprocess.get("sample_rate", 0))
    n_fft, hop = int(preprocess.get("n_fft", N_FFT)), int(preprocess.get("hop_length", HOP_LENGTH))
    if kind != "whisper-log-mel" or (rate, n_fft, hop) != (SAMPLE_RATE, N_FFT, HOP_LENGTH):
        raise EdgetlError(
            f"{where} wants {kind} features at {rate} Hz (n_fft {n_fft}, hop {hop}); edgetl computes "
            f"whisper-log-mel at 16000 Hz, n_fft 400, hop 160 only"
        )
    return float(preprocess["max_audio_seconds"]), int(preprocess.get("n_mels", 80))


def features(files: list[str | Path], preprocess: dict, where: str = "this model") -> np.ndarray:
    """Audio files -> the model's input, float32 ``[B, n_mels, frames]``: each file decoded to 16 kHz mono,
    trimmed or zero-padded at the end to the window, then ``log_mel`` (the features training used)."""
    seconds, n_mels = check_preprocess(preprocess, where)
    if not files:
        raise EdgetlError("pass one or more audio files (WAV, FLAC or OGG)")
    return np.stack([log_mel(load_audio(f, SAMPLE_RATE), seconds, n_mels) for f in files])
