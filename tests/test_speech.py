"""Speech end to end: a tiny Whisper fine-tuned on espeak-ng keywords (2 words, 8 voices, split by voice),
the bundle, predict on WAV files, every export target x precision with parity in the real runtimes, the
runtime's numpy-only audio path, the benchmark harness, and one-line errors."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import interrupted_after_epoch, run_beside_runtime, write_color_folder
from test_audio_data import require_espeak, tone, write_pcm
from test_speech_family import tiny_config
from typer.testing import CliRunner

import edgetl
from edgetl.cli import app
from edgetl.data.keywords import write_keywords
from edgetl.errors import EdgetlError
from edgetl.export import TARGETS, export
from edgetl.modality.audio import clip_window
from edgetl_runtime import LoadedArtifact

runner = CliRunner()
CASES = [(t, p) for t in TARGETS for p in TARGETS[t].precisions]
# small, fast settings: a tiny Whisper encoder (width 32, 2 layers), every layer trained
SFAST = dict(
    strategy="full", epochs=8, batch_size=8, lr_head=3e-3, lr_backbone=3e-3, patience=0, warmup_epochs=0.0, figures=False
)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """A tiny model: one thread is fastest, and on a busy machine a second one waits for a core (100x slower here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory) -> Path:
    from transformers import WhisperForConditionalGeneration

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("whisper") / "tiny-whisper"
    WhisperForConditionalGeneration(tiny_config()).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def keywords(tmp_path_factory) -> Path:
    """yes/no by 8 espeak-ng voices, 4 takes each: 6 voices train, 1 val, 1 test (1 s clips)."""
    return require_espeak(
        write_keywords, tmp_path_factory.mktemp("kw") / "kw", words=("yes", "no"), voices=8, takes=4, seed=0, progress=False
    )


@pytest.fixture(scope="module")
def speech_bundle(keywords, tiny_whisper, tmp_path_factory):
    return edgetl.finetune(
        str(keywords), str(tmp_path_factory.mktemp("speechrun") / "run"), model=str(tiny_whisper), **{**SFAST, "figures": True}
    ).path


def _test_clips(keywords: Path) -> list[str]:
    return sorted(str(p) for p in (keywords / "test").rglob("*.wav"))


# ------------------------------------------------------------------ fine-tuning
def test_bundle_contents_and_learning(speech_bundle, keywords):
    run = speech_bundle
    assert sorted(p.name for p in run.iterdir()) == [
        "edgetl.json",
        "encoder",
        "evaluation.json",
        "figures",
        "metrics.jsonl",
        "model.safetensors",
        "run.json",
        "splits.json",
    ]
    assert json.loads((run / "encoder" / "config.json").read_text())["max_source_positions"] == 50  # 1 s: 50 positions
    m = json.loads((run / "edgetl.json").read_text())
    assert set(m["figures"]) == {"curves", "learning_rates", "confusion", "per_class"}  # clips get no picture gallery
    assert json.loads((run / "evaluation.json").read_text())["split"] == "test"
    assert (m["modality"], m["family"], m["task"], m["labels"]) == ("audio", "speech", "classification", ["no", "yes"])
    assert m["input"] == {"name": "input_features", "shape": [1, 80, 100], "dtype": "float32", "layout": "NCT"}
    p = m["preprocess"]
    assert (p["features"], p["sample_rate"], p["n_mels"], p["max_audio_seconds"], p["frames"], p["files"]) == (
        "whisper-log-mel",
        16000,
        80,
        1.0,
        100,
        "encoder",
    )
    assert m["training"]["max_audio_seconds"] == 1.0 and m["training"]["augment"] == "light"  # the clips' length; audio default
    assert m["data"]["splits"] == {"train": 48, "val": 8, "test": 8} and m["data"]["skipped_clips"] == 0
    voices = json.loads((keywords / "voices.json").read_text())["splits"]
    splits = json.loads((run / "splits.json").read_text())
    assert {k: len(v) for k, v in splits.items()} == m["data"]["splits"]
    for split, rows in splits.items():  # split by voice: no test voice was heard in training
        assert all(Path(r["path"]).name.rsplit("_", 1)[0] in voices[split] for r in rows) and set(rows[0]) == {"path", "label"}
    hist = m["history"]
    assert [h["trainable_groups"] for h in hist] == [3] * 8
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert m["metrics"]["val"]["accuracy"] >= 0.75 and m["metrics"]["test"]["accuracy"] >= 0.75, m["metrics"]  # chance 0.5


def test_predict_wav_files_bundle_and_cli(speech_bundle, keywords, tmp_path):
    clips = _test_clips(keywords)
    fresh = edgetl.load_bundle(speech_bundle)
    res = edgetl.predict_audio(fresh, clips)
    assert [r["file"] for r in res] == clips
    correct = sum(r["top"][0][0] == Path(r["file"]).parent.name for r in res)
    assert correct >= 6, res  # of 8 clips by a voice never heard in training
    assert res == edgetl.predict_audio(edgetl.load_bundle(speech_bundle), clips)
    # the same clip as a 44.1 kHz stereo 24-bit WAV: decoded, resampled and mixed down to the same prediction
    from edgetl_runtime.audio import load_audio, resample

    x = load_audio(clips[0])
    write_pcm(tmp_path / "stereo.wav", np.stack([resample(x, 16000, 44100)] * 2, axis=1), 44100, 24)
    again = edgetl.predict_audio(fresh, [str(tmp_path / "stereo.wav")])[0]["top"]
    assert again[0][0] == res[0]["top"][0][0] and abs(again[0][1] - res[0]["top"][0][1]) < 0.02
    r = runner.invoke(app, ["predict", str(speech_bundle), *clips[:2], "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == [{"file": c, "top": [list(t) for t in x["top"]]} for c, x in zip(clips[:2], res[:2])]
    r = runner.invoke(app, ["info", str(speech_bundle)])
    assert r.exit_code == 0 and "whisper-log-mel 80 mels, 1 s window (100 frames)" in r.output and "NCT" in r.output
    r = runner.invoke(app, ["predict", str(speech_bundle), str(tmp_path / "missing.wav")])
    assert r.exit_code == 2 and "missing.wav does not exist" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_linear_feature_cache_and_resume(keywords, tiny_whisper, tmp_path, monkeypatch):
    opts = {**SFAST, "model": str(tiny_whisper), "strategy": "linear", "epochs": 2, "lr_head": 3e-2, "augment": "none"}
    cached = edgetl.finetune(str(keywords), str(tmp_path / "a"), feature_cache=True, **opts).manifest
    direct = edgetl.finetune(str(keywords), str(tmp_path / "b"), feature_cache=False, **opts).manifest
    assert cached["training"]["feature_cache_used"] and not direct["training"]["feature_cache_used"]
    for ha, hb in zip(cached["history"], direct["history"]):
        assert ha["train_loss"] == pytest.approx(hb["train_loss"], rel=1e-4) and ha["val"] == pytest.approx(hb["val"], rel=1e-6)
    # interrupted after the head epoch, resumed into the augmented full epoch: the same weights as uninterrupted
    opts = {**SFAST, "model": str(tiny_whisper), "strategy": "two-phase", "epochs": 2, "head_epochs": 1}
    whole = edgetl.finetune(str(keywords), str(tmp_path / "c"), **opts)
    with interrupted_after_epoch(monkeypatch, 1):
        edgetl.finetune(str(keywords), str(tmp_path / "d"), **opts)
    resumed = edgetl.finetune(str(keywords), str(tmp_path / "d"), resume=True, **opts)
    assert [h["train_loss"] for h in resumed.manifest["history"]] == [h["train_loss"] for h in whole.manifest["history"]]
    assert (tmp_path / "c" / "model.safetensors").read_bytes() == (tmp_path / "d" / "model.safetensors").read_bytes()


def test_audio_window_default_for_mixed_lengths(tiny_whisper, tmp_path):
    """Clips of different lengths: the family's default window (2 s), recorded in the config."""
    for label, freq in (("low", 300), ("high", 2500)):
        (tmp_path / "d" / label).mkdir(parents=True)
        for i in range(4):
            write_pcm(tmp_path / "d" / label / f"{i}.wav", tone(freq, 0.4 + 0.2 * i), 16000, 16)
    b = edgetl.finetune(
        str(tmp_path / "d"),
        str(tmp_path / "r"),
        model=str(tiny_whisper),
        strategy="linear",
        epochs=1,
        batch_size=4,
        patience=0,
        augment="none",
    )
    assert b.manifest["training"]["max_audio_seconds"] == 2.0 and b.manifest["input"]["shape"] == [1, 80, 200]
    assert clip_window({"a": np.zeros(16000), "b": np.zeros(16100)}) == 1.02  # within a hop: rounded up to 0.02 s
    assert clip_window({"a": np.zeros(16000), "b": np.zeros(17000)}) is None and clip_window({"a": np.zeros(16000 * 31)}) is None


def _one_line_error(result, text):
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error:") and text in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    "args, text",
    [
        (["--image-size", "32"], "--image-size applies to images only; use --max-audio-seconds for audio"),
        (["--max-length", "16"], "--max-length applies to text only; use --max-audio-seconds for audio"),
        (["--augment", "crop-flip"], "--augment crop-flip applies to images only; for audio choose none, light, strong"),
        (["--model", "mobilenet_v2"], "is a vision model but"),
        (["--max-audio-seconds", "0.015"], "must be a positive multiple of 0.02 s"),
        (["--max-audio-seconds", "31"], "more than"),
    ],
)
def test_cli_audio_option_errors(keywords, tiny_whisper, tmp_path, args, text):
    args = args if "--model" in args else ["--model", str(tiny_whisper), *args]
    _one_line_error(runner.invoke(app, ["finetune", str(keywords), "--out", str(tmp_path / "run"), *args]), text)
    assert not (tmp_path / "run").exists()


def test_cli_bad_clips_and_modality_mismatch(tiny_whisper, tmp_path):
    root = tmp_path / "clips"
    for label, freq in (("low", 300), ("high", 2500)):
        (root / label).mkdir(parents=True)
        for i in range(4):
            write_pcm(root / label / f"{i}.wav", tone(freq, 0.5), 16000, 16)
    (root / "low" / "broken.wav").write_bytes(b"RIFF garbage")
    (root / "high" / "broken.wav").write_bytes(b"RIFF garbage")
    out = tmp_path / "run"
    _one_line_error(
        runner.invoke(app, ["finetune", str(root), "--out", str(out), "--model", str(tiny_whisper)]),
        "2 of 10 audio files are unreadable, empty or missing",
    )
    colors = write_color_folder(tmp_path / "colors", per_class=3)
    _one_line_error(
        runner.invoke(app, ["finetune", str(colors), "--out", str(out), "--model", str(tiny_whisper)]),
        f"model {tiny_whisper} is a speech model but {colors} holds images; pick a vision model",
    )
    _one_line_error(
        runner.invoke(app, ["finetune", str(colors), "--out", str(out), "--max-audio-seconds", "1"]),
        "--max-audio-seconds applies to audio only; use --image-size for images",
    )
    assert not out.exists()


# ------------------------------------------------------------------ export
@pytest.mark.parametrize("target, precision", CASES, ids=[f"{t}-{p}" for t, p in CASES])
def test_export_every_target_and_precision(speech_bundle, keywords, target, precision):
    art = export(speech_bundle, target, precision, calibration_samples=16)
    m = json.loads((art.path / "manifest.json").read_text())
    bundle = edgetl.load_bundle(speech_bundle)
    assert m["modality"] == "audio" and m["labels"] == ["no", "yes"] and m["preprocess"] == bundle.preprocess
    assert m["input"]["shape"] == [1, 80, 100] and m["input"]["layout"] == "NCT" and m["input"]["dtype"] == "float32"
    p = m["parity"]
    assert p["passed"] and p["samples"] == 16  # every val and test clip
    if precision == "fp32":
        assert p["max_abs_diff"] <= 1e-3 * max(1.0, p["reference_max_abs"]) and p["top1_agreement"] == 1.0
    else:
        assert p["top1_agreement"] >= 0.8, p
    if precision == "int8":
        assert m["converter"]["calibration_samples"] == 16
    loaded = LoadedArtifact(art.path)  # raw WAV files through the artifact's own numpy features and runtime
    clips = _test_clips(keywords)
    feats = loaded.encode_audio(clips)
    assert feats.shape == (8, 80, 100) and feats.dtype == np.float32
    assert np.array_equal(feats, bundle.encode_audio(clips))
    out = loaded.predict(feats)
    assert out.shape == (8, 2) and np.all(np.isfinite(out))
    if precision == "fp32":
        assert np.allclose(out, bundle.predict(feats), atol=1e-4), np.abs(out - bundle.predict(feats)).max()
    assert not list((speech_bundle / "export").glob(".*tmp"))


def _exported(bundle: Path, names: list[str]) -> None:
    for name in names:
        if not (bundle / "export" / name).exists():
            export(bundle, *name.split("-", 1), calibration_samples=16)


def test_predict_cli_on_artifacts_matches_bundle(speech_bundle, keywords):
    names = ["onnx-fp32", "openvino-fp32", "tflite-fp32"]
    _exported(speech_bundle, names)
    clips = _test_clips(keywords)[::3]
    b = runner.invoke(app, ["predict", str(speech_bundle), *clips, "--json"])
    assert b.exit_code == 0, b.output
    for name in names:
        a = runner.invoke(app, ["predict", str(speech_bundle / "export" / name), *clips, "--json"])
        assert a.exit_code == 0, a.output + a.stderr
        for ra, rb in zip(json.loads(a.output), json.loads(b.output)):
            assert ra["file"] == rb["file"] and [t[0] for t in ra["top"]] == [t[0] for t in rb["top"]]
            assert np.allclose([t[1] for t in ra["top"]], [t[1] for t in rb["top"]], atol=1e-4), name


def test_runtime_audio_path_imports_neither_torch_nor_transformers(speech_bundle, keywords, tmp_path):
    """The runtime package alone (as the benchmark stages it on devices): WAV -> log-mel in numpy -> the artifact."""
    names = ["onnx-fp32", "openvino-fp32", "tflite-fp32"]
    _exported(speech_bundle, names)
    clips = _test_clips(keywords)
    result = run_beside_runtime(
        tmp_path,
        f"""
        import json, sys
        from edgetl_runtime import LoadedArtifact
        out = {{}}
        for name in {names!r}:
            art = LoadedArtifact({str(speech_bundle / "export")!r} + "/" + name)
            out[name] = art.predict(art.encode_audio({clips!r})).tolist()
        out["loaded"] = sorted(m for m in ("torch", "transformers", "edgetl", "scipy", "soundfile") if m in sys.modules)
        print(json.dumps(out))
    """,
    )
    assert result.pop("loaded") == []
    bundle = edgetl.load_bundle(speech_bundle)
    ref = bundle.predict(bundle.encode_audio(clips))
    for name, out in result.items():
        assert np.allclose(np.asarray(out), ref, atol=1e-4), name


def test_export_calibration_folder_and_bad_requests(speech_bundle, keywords, tmp_path):
    art = export(speech_bundle, "onnx", "int8", calibration=str(keywords / "val"), calibration_samples=50)
    assert art.manifest["converter"]["calibration_samples"] == 8 and art.manifest["parity"]["passed"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.png").write_bytes(b"")
    with pytest.raises(EdgetlError, match="holds no audio files"):
        export(speech_bundle, "onnx", "int8", calibration=str(tmp_path / "empty"))
    for args in (["--target", "tflite", "--layout", "nhwc"], ["--target", "tflite", "--quantize", "int8", "--io", "int8"]):
        r = runner.invoke(app, ["export", str(speech_bundle), *args])
        _one_line_error(r, "apply to image models; an audio artifact takes float32 log-mel features")


# ------------------------------------------------------------------ benchmark
def test_benchmark_speech_bundle(speech_bundle, tmp_path):
    """The harness on an audio bundle: the test split's clips as log-mel features, through the same runner as images."""
    from edgetl.bench import run_benchmark

    names = ["onnx-fp32", "openvino-int8", "tflite-fp32"]
    _exported(speech_bundle, names)
    report = run_benchmark(
        speech_bundle,
        out=tmp_path / "bench",
        target="cpu-1t",
        artifacts=["pytorch", *names],
        runs=5,
        min_seconds=0,
        warmup=1,
        rounds=1,
        batch=4,
    )
    assert report["protocol"]["eval_samples"] == 8 and report["protocol"]["audio"]["max_audio_seconds"] == 1.0
    rows = {r["name"]: r for r in report["rows"]}
    assert list(rows) == ["pytorch", *names] and all(r["status"] == "ok" for r in rows.values()), rows
    for name in ("onnx-fp32", "tflite-fp32"):
        assert rows[name]["agreement"] == 1.0 and rows[name]["max_abs_diff"] < 1e-3
        assert rows[name]["value"] == rows["pytorch"]["value"]
    for r in rows.values():
        assert r["p50_ms"] > 0 and r["runs"] >= 5 and r["throughput_per_s"] > 0
    assert (
        "Audio: latency and accuracy on whisper-log-mel features of 1 s windows" in (tmp_path / "bench" / "report.md").read_text()
    )
