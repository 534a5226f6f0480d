"""Exporting a transcription bundle (a tiny random Whisper fine-tuned on espeak-ng sentences): encoder and
cached decoder to ONNX and OpenVINO, proven token for token against PyTorch, and transcribed by the runtime's
numpy loop without torch."""

import json

import pytest
from conftest import run_beside_runtime
from typer.testing import CliRunner

import edgetl
from edgetl.cli import app
from edgetl.export import export, export_all

runner = CliRunner()


@pytest.fixture(scope="module")
def asr_bundle(tiny_asr, sentences, tmp_path_factory):
    out = tmp_path_factory.mktemp("asr-export") / "run"
    opts = dict(batch_size=2, patience=0, warmup_epochs=0.0, lr_head=1e-2, lr_backbone=1e-2, augment="none")
    return edgetl.finetune(str(sentences), str(out), model=str(tiny_asr), strategy="full", epochs=2, **opts).path


@pytest.mark.parametrize("target", ["onnx", "openvino"])
def test_fp32_artifacts_decode_token_for_token_like_pytorch(asr_bundle, target):
    a = export(asr_bundle, target, "fp32")
    m, p = a.manifest, a.manifest["parity"]
    assert (m["task"], m["runtime"]) == ("transcription", {"onnx": "onnxruntime", "openvino": "openvino"}[target])
    assert p["clips"] == 3 and p["token_match"] == 1.0 and p["wer"] == p["reference_wer"]
    assert m["decoding"]["prompt"] == [50257, 50362] and m["decoding"]["eos"] == 50256
    assert set(m["graphs"].values()) <= set(m["files"]) and "tokenizer.json" in m["files"]
    assert p["encoder_ms_p50"] > 0 and p["per_token_ms_p50"] > 0


def test_the_tied_embedding_is_stored_once(asr_bundle):
    import onnx

    a = export(asr_bundle, "onnx", "fp32")
    big = [i for i in onnx.load(str(a.path / "decoder.onnx")).graph.initializer if 51864 in i.dims]
    assert len(big) == 1


def test_int8_and_fp16_artifacts_stay_within_the_wer_budget(asr_bundle):
    fp32 = export(asr_bundle, "onnx", "fp32").manifest["files"]["decoder.onnx"]
    done, failed = export_all(asr_bundle, ["onnx", "openvino"], ["fp16", "int8-dynamic"])
    assert not failed and [a.path.name for a in done] == [
        "onnx-fp16",
        "onnx-int8-dynamic",
        "openvino-fp16",
        "openvino-int8-dynamic",
    ]
    for a in done:
        assert a.manifest["parity"]["wer_drop_points"] <= 1.0, a.path.name
    assert done[1].manifest["files"]["decoder.onnx"] < fp32 / 2  # int8 weights, the embedding included


def test_transcribe_an_artifact_without_torch(asr_bundle, sentences, tmp_path):
    a = export(asr_bundle, "onnx", "fp32")
    clip = sorted((sentences / "test").glob("*.wav"))[0]
    r = runner.invoke(app, ["transcribe", str(clip), "--model", str(asr_bundle), "--json"])
    assert r.exit_code == 0, r.output
    via_torch = json.loads(r.output)[0]["text"]
    result = run_beside_runtime(
        tmp_path,
        f"""
        import json, sys
        import numpy as np
        from edgetl_runtime.audio import load_audio
        from edgetl_runtime.transcriber import load_transcriber
        t = load_transcriber({str(a.path)!r})
        clip = load_audio({str(clip)!r})
        long = np.concatenate([clip, np.zeros(16000 * 29, np.float32), clip])  # two windows, joined
        out = {{"text": t.transcribe([{str(clip)!r}])[0], "long": t.transcribe([long])[0], "stats": t.stats[-1]}}
        out["loaded"] = sorted(m for m in ("torch", "transformers", "edgetl") if m in sys.modules)
        print(json.dumps(out))
        """,
    )
    assert result["loaded"] == [] and result["text"] == via_torch
    assert result["long"].count(via_torch) == 2 if via_torch else result["long"] == ""
    assert set(result["stats"]) == {"encoder_s", "first_token_s", "per_token_s", "tokens", "total_s"}


def test_bad_requests_are_one_line(asr_bundle):
    r = runner.invoke(app, ["export", str(asr_bundle), "--target", "onnx", "--quantize", "int8"])
    assert r.exit_code == 2 and "fp32, fp16, int8-dynamic" in r.output, r.output
    r = runner.invoke(app, ["transcribe", str(asr_bundle / "splits.json"), "--model", str(asr_bundle)])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_ctranslate2_artifacts_are_proven_too(asr_bundle):
    a = export(asr_bundle, "ctranslate2", "fp32")
    p = a.manifest["parity"]
    assert a.manifest["runtime"] == "ctranslate2" and {"model.bin", "tokenizer.json"} <= set(a.manifest["files"])
    assert p["token_match"] == 1.0, p["examples"]
    b = export(asr_bundle, "ctranslate2", "int8-dynamic")
    assert b.manifest["files"]["model.bin"] < a.manifest["files"]["model.bin"] / 3  # int8 weights


def test_the_export_command_prints_the_transcription_table(asr_bundle):
    r = runner.invoke(app, ["export", str(asr_bundle), "--target", "onnx", "--quantize", "fp32"])
    assert r.exit_code == 0 and "3/3 clips" in r.output and "WER points" in r.output, r.output
    summary = json.loads((asr_bundle / "export" / "summary.json").read_text())
    assert summary["onnx-fp32"]["parity"]["token_match"] == 1.0


def test_benchmark_a_transcription_bundle(asr_bundle, tmp_path):
    """`edgetl benchmark` on a transcription bundle: WER, the real-time factor and the decoder's token latencies
    of each artifact against PyTorch generate, each round a fresh process, a deploy choice within the WER budget."""
    export(asr_bundle, "onnx", "fp32")
    export(asr_bundle, "ctranslate2", "int8-dynamic")
    out = tmp_path / "bench"
    args = ["benchmark", str(asr_bundle), "-a", "onnx-fp32", "-a", "ctranslate2-int8-dynamic", "-a", "pytorch", "--anchor"]
    args += ["--rounds", "2", "--threads", "1"]
    r = runner.invoke(app, [*args, "--out", str(out)])
    assert r.exit_code == 0, r.output
    report = json.loads((out / "report.json").read_text())
    rows = {x["name"]: x for x in report["rows"]}
    onnx, torch = rows["onnx-fp32"], rows["pytorch"]
    n = report["protocol"]["eval_samples"]
    assert n == 3 and onnx["rounds"] == 2 and onnx["runs"] == 2 * n and len(set(onnx["pids"])) == 2
    assert onnx["agreement"] == 1.0 and onnx["value"] == torch["value"] and onnx["delta_points"] == 0.0
    assert onnx["metric"] == "wer" and 0 <= onnx["cer"] and onnx["rtf"] > 0
    assert 0 < onnx["encoder_ms_p50"] < onnx["p50_ms"] and onnx["per_token_ms_p50"] > 0 and onnx["first_token_ms_p50"] > 0
    assert report["deploy"]["choice"]["name"] in ("onnx-fp32", "ctranslate2-int8-dynamic")  # never the anchor, never PyTorch
    fw, a = rows["faster-whisper-int8"], report["anchor"]
    assert fw["status"] == "ok" and fw["runtime"] == "faster-whisper" and fw["encoder_ms_p50"] is None and fw["rtf"] > 0
    assert a["against"] == report["deploy"]["choice"]["name"] and a["speed_ratio"] == pytest.approx(fw["rtf"] / a["our_rtf"])
    assert "against faster-whisper-int8" in r.output
    assert "RTF" in r.output and "ms/token" in r.output and (out / "report.png").stat().st_size > 0
    md = (out / "report.md").read_text()
    assert "| onnx-fp32 |" in md and "real-time" not in md.split("|")[0]


def test_benchmark_of_a_missing_transcription_artifact_says_what_to_run(asr_bundle):
    r = runner.invoke(app, ["benchmark", str(asr_bundle), "-a", "tflite-fp32", "--no-torch"])
    assert r.exit_code == 2 and "edgetl export" in r.output and "tflite-fp32" in r.output and "Traceback" not in r.output


def test_a_trimmed_encoder_trains_exports_and_transcribes_on_its_own_window(tiny_asr, sentences, tmp_path):
    """--max-audio-seconds trims the encoder to the clips' window (as keyword spotting does): the bundle, the
    exported graphs and the device loop all take that window, and the export still matches PyTorch."""
    import numpy as np

    from edgetl_runtime.transcriber import load_transcriber

    opts = dict(batch_size=2, patience=0, warmup_epochs=0.0, lr_head=1e-2, lr_backbone=1e-2, augment="none")
    run = tmp_path / "run"
    b = edgetl.finetune(str(sentences), str(run), model=str(tiny_asr), strategy="full", epochs=1, max_audio_seconds=4.0, **opts)
    assert (b.manifest["preprocess"]["max_audio_seconds"], b.manifest["preprocess"]["frames"]) == (4.0, 400)
    assert json.loads((run / "whisper" / "config.json").read_text())["max_source_positions"] == 200
    a = export(b.path, "onnx", "fp32")
    assert a.manifest["parity"]["token_match"] == 1.0 and a.manifest["input"]["shape"][-1] == 400
    t = load_transcriber(a.path)
    clip = np.zeros(16000 * 6, np.float32)  # longer than the window: cut into two windows
    t.transcribe([clip])
    assert len(t.stats) == 2
    c = export(b.path, "ctranslate2", "fp32")
    assert c.manifest["parity"]["token_match"] == 1.0, c.manifest["parity"]
    with pytest.raises(edgetl.EdgetlError, match="more than the encoder's 0.5 s window"):
        edgetl.finetune(str(sentences), str(tmp_path / "short"), model=str(tiny_asr), max_audio_seconds=0.5, **opts)


def test_tflite_with_a_fixed_cache_decodes_token_for_token_like_pytorch(asr_bundle, sentences, tmp_path):
    """LiteRT has no dynamic shapes: the decoder carries a fixed cache of prompt + max_new_tokens slots."""
    a = export(asr_bundle, "tflite", "fp32")
    m, p = a.manifest, a.manifest["parity"]
    assert (m["runtime"], m["graphs"]) == ("litert", {"encoder": "encoder.tflite", "decoder": "decoder.tflite"})
    assert m["runtime_config"]["cache_slots"] == len(m["decoding"]["prompt"]) + m["decoding"]["max_new_tokens"]
    assert p["token_match"] == 1.0 and p["wer"] == p["reference_wer"]
    # a random model's tokens hardly depend on the context: the logits of each step must, against ONNX's cache
    import numpy as np

    from edgetl_runtime import DeviceOptions
    from edgetl_runtime.transcriber import LiteRtGraphs, OnnxGraphs

    onnx = OnnxGraphs(export(asr_bundle, "onnx", "fp32").path, DeviceOptions())
    lite = LiteRtGraphs(a.path, DeviceOptions(), m["runtime_config"]["cache_slots"])
    feats = np.random.default_rng(0).normal(size=(1, 80, 3000)).astype(np.float32)
    cross, cross_t = onnx.encode(feats), lite.encode(feats)
    assert np.abs(cross[0] - cross_t[0]).max() < 1e-3
    empty = np.zeros((2, 1, 2, 0, 16), np.float32)
    (k, v), (kt, vt) = (empty, empty), (empty, empty)
    for ids in ([50257, 50362], [440], [1029], [257], [1110]):
        x = np.array([ids], np.int64)
        logits, k, v = onnx.step(x, k, v, *cross)
        logits_t, kt, vt = lite.step(x, kt, vt, *cross_t)
        assert np.abs(logits - logits_t).max() < 1e-4, ids  # the aliased-cache bug gave 2e-3
    q = export(asr_bundle, "tflite", "int8-dynamic")
    assert (
        q.manifest["parity"]["wer_drop_points"] <= 1.0
        and q.manifest["files"]["decoder.tflite"] < m["files"]["decoder.tflite"] / 2
    )
    clip = sorted((sentences / "test").glob("*.wav"))[0]
    result = run_beside_runtime(
        tmp_path,
        f"""
        import json, sys
        from edgetl_runtime.transcriber import load_transcriber
        t = load_transcriber({str(a.path)!r})
        out = {{"text": t.transcribe([{str(clip)!r}, {str(clip)!r}]), "windows": len(t.stats)}}
        out["loaded"] = sorted(m for m in ("torch", "transformers", "edgetl") if m in sys.modules)
        print(json.dumps(out))
        """,
    )
    assert result["loaded"] == [] and result["windows"] == 2 and result["text"][0] == result["text"][1]
