"""Speech data: WAV/FLAC/OGG reading, resampling, Whisper log-mel parity, audio folders and CSVs,
the audio dataset and its augmentation, and the espeak-ng keyword generator."""

import json
import os
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from typer.testing import CliRunner

from edgetl.cli import app
from edgetl.data.audio import AudioDataset, audio_preprocess, looks_like_audio, scan_audio
from edgetl.data.audio_augment import augment_audio, change_speed, coloured_noise, mix_at_snr, time_shift
from edgetl.data.builtin import resolve_builtin
from edgetl.data.keywords import MISSING, SILENCE, UNKNOWN, espeak_binary, write_keywords
from edgetl.errors import EdgetlError
from edgetl_runtime.audio import load_audio, log_mel, mel_filters, read_wav, resample

runner = CliRunner()
SR = 16000


def tone(freq: float, seconds: float, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)])


def write_pcm(path: Path, x: np.ndarray, sr: int, bits: int) -> None:
    """Multi-channel float [n, ch] -> PCM WAV of ``bits`` with the stdlib (8-bit unsigned)."""
    x = np.atleast_2d(x.T).T
    if bits == 8:
        raw = np.clip(np.round(x * 127 + 128), 0, 255).astype(np.uint8).tobytes()
    elif bits == 24:
        v = np.clip(np.round(x * 2**23), -(2**23), 2**23 - 1).astype("<i4")
        raw = v.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        dt = {16: "<i2", 32: "<i4"}[bits]
        raw = np.clip(np.round(x * 2.0 ** (bits - 1)), -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1).astype(dt).tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(bits // 8)
        w.setframerate(sr)
        w.writeframes(raw)


def require_espeak(fn, *args, **kw):
    """Run a generator that needs espeak-ng; skip without it unless EDGETL_REQUIRE_ESPEAK=1."""
    try:
        return fn(*args, **kw)
    except EdgetlError as exc:
        if str(exc) != MISSING or os.environ.get("EDGETL_REQUIRE_ESPEAK"):
            raise
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")


# ------------------------------------------------------------------ features
@pytest.fixture(scope="module")
def speechlike() -> np.ndarray:
    """3 s: a gliding tone with an envelope plus noise, at 16 kHz."""
    rng = np.random.default_rng(0)
    t = np.arange(3 * SR) / SR
    env = np.exp(-((t - 1.2) ** 2) / 0.3)
    return (0.4 * env * np.sin(2 * np.pi * (300 * t + 200 * t**2)) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def test_log_mel_matches_whisper_feature_extractor(speechlike):
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor()
    np.testing.assert_allclose(mel_filters(80), fe.mel_filters, atol=1e-12)
    ref = fe(speechlike, sampling_rate=SR, return_tensors="np").input_features[0]
    ours = log_mel(speechlike)
    assert ours.shape == ref.shape == (80, 3000) and ours.dtype == np.float32
    assert np.abs(ours - ref).max() < 1e-4


def test_log_mel_short_window(speechlike):
    """A 2 s window = the first 200 frames of a 30 s window when the audio ends in silence;
    otherwise only the last frame differs (reflect padding at the window's end)."""
    fade = speechlike[: SR * 2].copy()
    fade[-400:] = 0.0
    short = log_mel(fade, seconds=2.0)
    assert short.shape == (80, 200)
    np.testing.assert_allclose(short, log_mel(fade)[:, :200], atol=1e-5)
    cut = speechlike[: SR * 2]  # loud at the 2 s boundary: the last frame sees reflected samples
    a, b = log_mel(cut, seconds=2.0), log_mel(cut)[:, :200]
    np.testing.assert_allclose(a[:, :199], b[:, :199], atol=1e-5)
    assert np.abs(a[:, 199] - b[:, 199]).max() > 1e-3
    # trimmed, not squeezed: a longer input gives the features of its first second
    np.testing.assert_array_equal(log_mel(speechlike, 1.0), log_mel(speechlike[:SR], 1.0))
    assert log_mel(speechlike[:100], 1.5, n_mels=128).shape == (128, 150)
    with pytest.raises(EdgetlError, match="multiple of 0.01"):
        log_mel(speechlike, 1.234)


@pytest.mark.parametrize("sr_from,sr_to", [(22050, 16000), (44100, 16000), (8000, 16000), (48000, 16000)])
def test_resample_matches_scipy(sr_from, sr_to):
    from scipy.signal import resample_poly

    x = tone(440, 0.5, sr_from) + tone(3000, 0.5, sr_from, 0.1)
    y = resample(x, sr_from, sr_to)
    g = np.gcd(sr_from, sr_to)
    ref = resample_poly(x.astype(np.float64), sr_to // g, sr_from // g)
    assert y.dtype == np.float32 and len(y) == len(ref) == int(np.ceil(len(x) * sr_to / sr_from))
    assert np.abs(y - ref).max() < 1e-5
    assert abs(peak_hz(y, sr_to) - 440) < 3


# ------------------------------------------------------------------ files
@pytest.mark.parametrize("bits", [8, 16, 24, 32])
def test_read_wav_bit_depths(tmp_path, bits):
    x = tone(440, 0.25)
    write_pcm(tmp_path / "a.wav", x, SR, bits)
    y, sr = read_wav(tmp_path / "a.wav")
    assert sr == SR and y.dtype == np.float32 and len(y) == len(x)
    assert np.abs(y - x).max() < (1 / 100 if bits == 8 else 1e-4)
    if bits > 8:  # the same numbers libsndfile decodes
        np.testing.assert_allclose(y, soundfile.read(tmp_path / "a.wav", dtype="float32")[0], atol=1e-7)


def test_stereo_44k_wav_to_16k_mono(tmp_path):
    left, right = tone(440, 0.5, 44100), tone(440, 0.5, 44100, 0.1)
    write_pcm(tmp_path / "s.wav", np.stack([left, right], axis=1), 44100, 16)
    y, sr = read_wav(tmp_path / "s.wav")
    assert sr == 44100 and np.abs(y - (left + right) / 2).max() < 1e-4
    z = load_audio(tmp_path / "s.wav")
    assert len(z) == 8000 and abs(peak_hz(z) - 440) < 3
    assert np.abs(z[1000:7000]).max() == pytest.approx(0.3, abs=0.01)


@pytest.mark.parametrize("fmt", ["flac", "ogg"])
def test_flac_and_ogg_via_soundfile(tmp_path, fmt):
    x = tone(440, 0.5, 22050)
    soundfile.write(tmp_path / f"a.{fmt}", np.stack([x, x], axis=1), 22050)
    y = load_audio(tmp_path / f"a.{fmt}")
    assert y.dtype == np.float32 and abs(len(y) - 8000) <= 1 and abs(peak_hz(y) - 440) < 3
    ref = resample(x, 22050, SR)
    assert np.corrcoef(y[500:7500], ref[500:7500])[0, 1] > (0.9999 if fmt == "flac" else 0.95)


def test_float_wav_falls_back_to_soundfile(tmp_path):
    x = tone(440, 0.25)
    soundfile.write(tmp_path / "f.wav", x, SR, subtype="FLOAT")
    with pytest.raises(EdgetlError, match="f.wav is not a readable PCM WAV"):
        read_wav(tmp_path / "f.wav")
    np.testing.assert_array_equal(load_audio(tmp_path / "f.wav"), x)


def test_unreadable_audio_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(EdgetlError, match="bad.wav is not a readable"):
        read_wav(bad)
    with pytest.raises(EdgetlError, match="bad.wav is not a readable audio file"):
        load_audio(bad)
    with pytest.raises(EdgetlError, match="nothere.flac does not exist"):
        load_audio(tmp_path / "nothere.flac")


# ------------------------------------------------------------------ sources
def _clips(root: Path, per_class: int = 4, rates=(16000, 22050, 8000)) -> Path:
    """``root/<class>/`` of 0.5 s tones, low/high pitched, at mixed rates and formats."""
    for label, freq in (("low", 300), ("high", 2000)):
        d = root / label
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            sr = rates[i % len(rates)]
            x = tone(freq * (1 + 0.05 * i), 0.5, sr)
            if i == 1:
                soundfile.write(d / f"{label}{i}.flac", x, sr)
            else:
                write_pcm(d / f"{label}{i}.wav", x, sr, 16)
    return root


def test_scan_audio_folder_decodes_and_skips_bad_files(tmp_path):
    root = _clips(tmp_path / "clips", per_class=15)
    (root / "low" / "broken.wav").write_bytes(b"garbage")
    write_pcm(root / "high" / "empty.wav", np.zeros(0, np.float32), SR, 16)
    write_pcm(root / "high" / "zeros.wav", np.zeros(800, np.float32), SR, 16)
    (root / "high" / "notes.txt").write_text("not audio")
    assert looks_like_audio(root)
    src = scan_audio(root, progress=False)
    assert src.task == "classification" and src.labels == ["high", "low"]
    assert len(src.splits["train"]) == 30
    assert sorted((Path(p).name, why) for p, why in src.skipped) == [
        ("broken.wav", "unreadable"),
        ("empty.wav", "empty"),
        ("zeros.wav", "silent (all samples zero)"),
    ]
    for s in src.splits["train"]:
        x = src.waveforms[s.path]
        assert x.dtype == np.float32 and len(x) == 8000  # 0.5 s at 16 kHz, whatever the file's rate
    (root / "low" / "broken2.wav").write_bytes(b"garbage")
    with pytest.raises(EdgetlError, match=r"4 of 34 audio files .*broken.wav \(unreadable\).*max-bad-fraction \(now 0.1\)"):
        scan_audio(root, progress=False)


def test_scan_audio_split_folders_and_errors(tmp_path):
    _clips(tmp_path / "ds" / "train")
    _clips(tmp_path / "ds" / "validation", per_class=2)
    src = scan_audio(tmp_path / "ds", progress=False)
    assert {k: len(v) for k, v in src.splits.items()} == {"train": 8, "val": 4}
    (tmp_path / "noaudio" / "a").mkdir(parents=True)
    with pytest.raises(EdgetlError, match="holds no audio clips"):
        scan_audio(tmp_path / "noaudio", progress=False)
    with pytest.raises(EdgetlError, match="unknown label 'low'"):
        scan_audio(tmp_path / "ds", labels=["high", "mid"], progress=False)


def test_scan_audio_csv(tmp_path):
    _clips(tmp_path / "c")
    files = sorted((tmp_path / "c").rglob("*.*"))
    rows = ["path,label,split"] + [
        f"{f.relative_to(tmp_path)},{f.parent.name},{'test' if i % 4 == 0 else ''}" for i, f in enumerate(files)
    ]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    assert looks_like_audio(tmp_path / "data.csv")
    src = scan_audio(tmp_path / "data.csv", progress=False)
    assert src.labels == ["high", "low"] and len(src.splits["test"]) == 2 and len(src.splits["train"]) == 6
    reg = ["path,target"] + [f"{f.relative_to(tmp_path)},{i * 0.5}" for i, f in enumerate(files)] + ["missing.wav,1.0"]
    (tmp_path / "reg.csv").write_text("\n".join(reg) + "\n")
    src = scan_audio(tmp_path / "reg.csv", max_bad_fraction=0.2, progress=False)
    assert src.task == "regression" and src.skipped == [(str(tmp_path / "missing.wav"), "missing")]
    with pytest.raises(EdgetlError, match="1 of 9 audio files"):
        scan_audio(tmp_path / "reg.csv", max_bad_fraction=0.1, progress=False)
    (tmp_path / "text.csv").write_text("text,label\nhello,a\n")
    assert not looks_like_audio(tmp_path / "text.csv")


def test_looks_like_audio_rejects_images(color_folder):
    assert not looks_like_audio(color_folder)


# ------------------------------------------------------------------ dataset and augmentation
def test_audio_dataset_items_and_batches(tmp_path):
    src = scan_audio(_clips(tmp_path / "clips"), progress=False)
    pp = audio_preprocess(max_audio_seconds=1.0)
    assert pp == {
        "modality": "audio",
        "features": "whisper-log-mel",
        "sample_rate": 16000,
        "n_mels": 80,
        "max_audio_seconds": 1.0,
        "frames": 100,
    }
    ds = AudioDataset(src.splits["train"], pp, src.task, src.labels, waveforms=src.waveforms)
    mel, y = ds[0]
    assert mel.dtype == torch.float32 and mel.shape == (80, 100) and y.dtype == torch.int64
    np.testing.assert_array_equal(mel.numpy(), log_mel(src.waveforms[ds.samples[0].path], 1.0))
    x, ys = ds.collate([ds[i] for i in ds.batches(list(range(len(ds))), 3)[0]])
    assert x.shape == (3, 80, 100) and ys.tolist() == [src.labels.index(s.label) for s in ds.samples[:3]]
    lazy = AudioDataset(src.splits["train"], pp, src.task, src.labels)  # decodes on first use
    np.testing.assert_array_equal(lazy[0][0].numpy(), mel.numpy())


def test_augmentation_is_seeded_and_train_only(tmp_path):
    src = scan_audio(_clips(tmp_path / "clips"), progress=False)
    pp = audio_preprocess(max_audio_seconds=1.0)
    train = AudioDataset(src.splits["train"], pp, src.task, src.labels, augment="strong", seed=3, waveforms=src.waveforms)
    plain = AudioDataset(src.splits["train"], pp, src.task, src.labels, waveforms=src.waveforms)
    train.set_epoch(1)
    plain.set_epoch(1)
    a = train[2][0]
    assert torch.equal(a, train[2][0])  # same (seed, epoch, index): same clip
    assert not torch.equal(a, plain[2][0])
    train.set_epoch(2)
    assert not torch.equal(a, train[2][0])
    plain.set_epoch(5)
    assert torch.equal(plain[2][0], torch.from_numpy(log_mel(src.waveforms[plain.samples[2].path], 1.0)))
    noisy = AudioDataset(
        src.splits["train"],
        pp,
        src.task,
        src.labels,
        augment="light",
        seed=3,
        waveforms=src.waveforms,
        noise_dir=tmp_path / "clips" / "low",
    )
    assert noisy[0][0].shape == (80, 100)
    with pytest.raises(EdgetlError, match="unknown audio augmentation 'wild'"):
        AudioDataset(src.splits["train"], pp, src.task, src.labels, augment="wild")


def test_augment_primitives():
    rng = np.random.default_rng(0)
    x = tone(440, 0.5)
    fast = change_speed(x, 1.25)
    assert len(fast) == 6400 and abs(peak_hz(fast) - 550) < 6
    assert len(time_shift(x, 160)) == 8160 and len(time_shift(x, -160)) == 7840
    for exponent in (0.0, 1.0, 2.0):
        n = coloured_noise(16000, rng, exponent)
        assert np.sqrt(np.mean(n.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-4)
    noise = coloured_noise(8000, rng, 1.0)
    mixed = mix_at_snr(x, noise, 10.0)
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((mixed - x).astype(np.float64) ** 2))
    assert snr == pytest.approx(10.0, abs=0.01)
    out = augment_audio(x, 16000, "light", np.random.default_rng(1))
    assert out.shape == (16000,) and np.array_equal(out, augment_audio(x, 16000, "light", np.random.default_rng(1)))
    np.testing.assert_array_equal(augment_audio(x, 16000, "none", rng)[:8000], x)


# ------------------------------------------------------------------ keyword generator
def _wav_info(path: Path) -> tuple[int, int, int, int]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()


def test_keywords_split_by_voice_and_deterministic(tmp_path):
    kw = dict(words=("yes", "no"), voices=5, takes=2, clip_seconds=1.0, seed=1, progress=False)
    out = require_espeak(write_keywords, tmp_path / "kw", **kw)
    meta = json.loads((out / "voices.json").read_text())
    splits = meta["splits"]
    assert [len(splits[s]) for s in ("train", "val", "test")] == [3, 1, 1]
    assert len({v for vs in splits.values() for v in vs}) == 5  # disjoint: every voice in one split
    files = sorted(out.rglob("*.wav"))
    assert len(files) == 5 * 2 * 2 and meta["clips"] == {"train": 12, "val": 4, "test": 4}
    for f in files:
        split, word = f.relative_to(out).parts[:2]
        assert word in ("yes", "no") and f.name.rsplit("_", 1)[0] in splits[split]
        assert _wav_info(f) == (16000, 1, 2, 16000)
    x, _ = read_wav(files[0])
    assert 0.25 < np.abs(x).max() < 0.95 and np.abs(x[:80]).max() < 0.05  # leading silence, speech inside
    again = require_espeak(write_keywords, tmp_path / "kw2", **kw)
    assert [f.read_bytes() for f in files] == [f.read_bytes() for f in sorted(again.rglob("*.wav"))]
    src = scan_audio(out, progress=False)  # the generated folder is a regular audio dataset
    assert src.labels == ["no", "yes"] and not src.skipped and set(src.splits) == {"train", "val", "test"}
    with pytest.raises(EdgetlError, match="--overwrite"):
        write_keywords(out, **{**kw, "seed": 2})  # an earlier copy is replaced only when asked
    require_espeak(write_keywords, out, **{**kw, "seed": 2}, overwrite=True)  # a dataset folder may be regenerated in place
    assert json.loads((out / "voices.json").read_text())["splits"] != splits


def test_keywords_extra_classes_and_errors(tmp_path):
    out = require_espeak(
        write_keywords,
        tmp_path / "kw",
        words=["up"],
        voices=["en-us+f2", "en-gb-scotland+m3", "en+klatt"],
        takes=1,
        unknown_words=["left", "right"],
        silence=True,
        progress=False,
    )
    assert sorted(p.name for p in (out / "train").iterdir()) == [SILENCE, UNKNOWN, "up"]
    assert json.loads((out / "voices.json").read_text())["splits"]["test"] == ["en-us+f2"]
    with pytest.raises(EdgetlError, match="no voice 'en-us\\+nobody'"):
        write_keywords(tmp_path / "x", words=["yes", "no"], voices=["en-us+nobody"], progress=False)
    with pytest.raises(EdgetlError, match="more than the 0.2 s clip"):
        write_keywords(tmp_path / "x", words=["yes", "no"], voices=1, takes=1, clip_seconds=0.2, progress=False)
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.*"))  # nothing half-written
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("user data")
    with pytest.raises(EdgetlError, match="edgetl did not write"):
        write_keywords(tmp_path / "mine", progress=False)
    assert (tmp_path / "mine" / "keep.txt").read_text() == "user data"


def test_keywords_without_espeak_is_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETL_ESPEAK_NG", str(tmp_path / "no-espeak"))
    with pytest.raises(EdgetlError, match="espeak-ng not found: install it, e.g. apt-get install espeak-ng"):
        write_keywords(tmp_path / "y")
    assert not (tmp_path / "y").exists()


def test_cli_data_keywords(tmp_path):
    require_espeak(espeak_binary)
    r = runner.invoke(
        app,
        ["data", "keywords", "--out", str(tmp_path / "kw"), "--words", "on,off", "--voices", "3", "--takes", "1", "--seed", "4"],
    )
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "kw" / "train").iterdir()) == ["off", "on"]
    assert len(list((tmp_path / "kw").rglob("*.wav"))) == 6
    r = runner.invoke(app, ["data", "keywords", "--out", str(tmp_path / "kw2"), "--words", "on", "--voices", "3"])
    assert r.exit_code == 2 and "at least two classes" in r.output


def test_builtin_keywords_is_registered():
    with pytest.raises(EdgetlError, match="builtin:keywords"):
        resolve_builtin("builtin:nope")
