"""Text export: a tiny DistilBERT bundle (real uncased vocabulary, offline) to every target x precision,
parity in the real runtimes, the tokenizer that travels with each artifact, and predict on raw text."""

import json

import numpy as np
import pytest
from conftest import run_beside_runtime
from test_text import TFAST, _tiny, write_sentiment_csv
from typer.testing import CliRunner

import edgetl
from edgetl.cli import app
from edgetl.errors import EdgetlError
from edgetl.export import TARGETS, export
from edgetl_runtime import LoadedArtifact, load_predictor

runner = CliRunner()
TEXTS = ["lovely kind superb", "grim nasty awful poor", "good", "bad awful terrible sad horrible ugly poor dreadful nasty grim"]
CASES = [(t, p) for t in TARGETS for p in TARGETS[t].precisions]


@pytest.fixture(scope="module")
def text_bundle(tmp_path_factory):
    """Tiny DistilBERT (2 layers, width 32), fine-tuned briefly on a two-class sentiment task."""
    root = tmp_path_factory.mktemp("textexport")
    model = _tiny(root / "tiny-distilbert", "distilbert")
    data = write_sentiment_csv(root / "s.csv")
    return edgetl.finetune(str(data), str(root / "run"), model=str(model), strategy="full", **TFAST).path


@pytest.fixture(scope="module")
def text_loaded(text_bundle):
    """One Bundle object for every precision: each target converts fp32 once (as export_all does)."""
    return edgetl.load_bundle(text_bundle)


@pytest.mark.parametrize("target, precision", CASES, ids=[f"{t}-{p}" for t, p in CASES])
def test_text_export_every_target_and_precision(text_bundle, text_loaded, target, precision):
    art = export(text_loaded, target, precision, calibration_samples=12, max_accuracy_drop=None)  # the guard: test_int8_guard
    m = json.loads((art.path / "manifest.json").read_text())
    assert m["modality"] == "text" and m["labels"] == ["neg", "pos"]
    assert (art.path / "tokenizer.json").read_bytes() == (text_bundle / "encoder" / "tokenizer.json").read_bytes()
    tok = m["tokenizer"]
    assert tok["file"] == "tokenizer.json" and tok["max_length"] == 16 and tok["truncation"] is True
    assert tok["input_names"] == ["input_ids", "attention_mask"] and tok["pad_id"] == 0
    spec = m["input"]
    assert spec["name"] == ["input_ids", "attention_mask"] and spec["layout"] == "NT"
    if TARGETS[target].fixed_sequence:  # one signature per length bucket, the predictor pads up to one
        assert spec["shape"] == [1, "sequence"] and spec["buckets"] == [8, 16] and tok["padding"] == "longest"
        assert sorted(m["runtime_config"]["signatures"]) == ["16", "8"]
    else:
        assert spec["shape"] == ["batch", "sequence"] and spec["dtype"] == "int64" and tok["padding"] == "longest"
    p = m["parity"]
    assert p["passed"] and p["samples"] == 12
    if precision == "fp32":
        assert p["max_abs_diff"] <= 1e-3 * max(1.0, p["reference_max_abs"]) and p["top1_agreement"] == 1.0
    else:
        assert p["top1_agreement"] >= 0.9, p
    if precision == "int8":
        assert m["converter"]["calibration_samples"] == 12
    # raw texts of different lengths, as one batch, through the artifact's own tokenizer and runtime
    loaded = LoadedArtifact(art.path)
    batch = loaded.encode_texts(TEXTS)
    assert batch["input_ids"].shape[1] == max(int(batch["attention_mask"].sum(1).max()), 1)
    bundle = edgetl.load_bundle(text_bundle)
    ref = bundle.predict(bundle.encode_texts(TEXTS))
    out = loaded.predict(batch)
    assert out.shape == (4, 2) and np.all(np.isfinite(out))
    if precision == "fp32":
        assert np.allclose(out, ref, atol=1e-4), np.abs(out - ref).max()
    assert not list((text_bundle / "export").glob(".*tmp"))


def test_fixed_length_artifact_pads_and_rejects_longer_input(text_bundle):
    art = export(text_bundle, "tflite", "fp32") if not (text_bundle / "export" / "tflite-fp32").exists() else None
    path = art.path if art else text_bundle / "export" / "tflite-fp32"
    predictor = load_predictor(path)
    bundle = edgetl.load_bundle(text_bundle)
    short = bundle.encode_texts(["good kind"])  # 4 tokens: padded to the 8-token signature by the predictor
    assert short["input_ids"].shape[1] <= 8
    assert np.allclose(predictor.predict(short), bundle.predict(short), atol=1e-4)
    middle = bundle.encode_texts(["good kind and a fine day with friends"])  # 9 to 16 tokens: the 16-token signature
    assert 8 < middle["input_ids"].shape[1] <= 16
    assert np.allclose(predictor.predict(middle), bundle.predict(middle), atol=1e-4)
    too_long = {k: np.concatenate([v, v[:, :1].repeat(20, axis=1)], axis=1) for k, v in short.items()}
    with pytest.raises(EdgetlError, match="this artifact takes at most 16"):
        predictor.predict(too_long)


def test_predict_cli_on_text_artifacts_matches_bundle(text_bundle):
    for name in ("onnx-fp32", "tflite-fp32"):
        if not (text_bundle / "export" / name).exists():
            export(text_bundle, *name.split("-", 1))
    b = runner.invoke(app, ["predict", str(text_bundle), *TEXTS, "--json"])
    assert b.exit_code == 0, b.output
    for name in ("onnx-fp32", "tflite-fp32"):
        a = runner.invoke(app, ["predict", str(text_bundle / "export" / name), *TEXTS, "--json"])
        assert a.exit_code == 0, a.output + a.stderr
        for ra, rb in zip(json.loads(a.output), json.loads(b.output)):
            assert ra["text"] == rb["text"] and [t[0] for t in ra["top"]] == [t[0] for t in rb["top"]]
            assert np.allclose([t[1] for t in ra["top"]], [t[1] for t in rb["top"]], atol=1e-4), name


def test_runtime_text_path_imports_neither_torch_nor_transformers(text_bundle, tmp_path):
    """The runtime package alone (as the benchmark stages it on devices): tokenizers + numpy + one runtime."""
    for name in ("onnx-fp32", "openvino-fp32", "tflite-fp32"):
        if not (text_bundle / "export" / name).exists():
            export(text_bundle, *name.split("-", 1))
    result = run_beside_runtime(
        tmp_path,
        f"""
        import json, sys
        from edgetl_runtime import LoadedArtifact
        out = {{}}
        for name in ("onnx-fp32", "openvino-fp32", "tflite-fp32"):
            art = LoadedArtifact({str(text_bundle / "export")!r} + "/" + name)
            out[name] = art.predict(art.encode_texts({TEXTS!r})).tolist()
        out["loaded"] = sorted(m for m in ("torch", "transformers", "edgetl") if m in sys.modules)
        print(json.dumps(out))
    """,
    )
    assert result.pop("loaded") == []
    bundle = edgetl.load_bundle(text_bundle)
    ref = bundle.predict(bundle.encode_texts(TEXTS))
    for name, out in result.items():
        assert np.allclose(np.asarray(out), ref, atol=1e-4), name


def test_text_calibration_file_and_bad_requests(text_bundle, tmp_path):
    calib = tmp_path / "calib.txt"
    calib.write_text("good kind lovely\n\nbad grim nasty\nsuperb fine\n", encoding="utf-8")
    art = export(text_bundle, "onnx", "int8", calibration=str(calib), calibration_samples=50)
    assert art.manifest["converter"]["calibration_samples"] == 3
    assert art.manifest["converter"]["calibration_source"] == str(calib)
    with pytest.raises(EdgetlError, match="is not a file"):
        export(text_bundle, "onnx", "int8", calibration=str(tmp_path))
    r = runner.invoke(app, ["export", str(text_bundle), "--target", "tflite", "--quantize", "fp32", "--layout", "nhwc"])
    assert r.exit_code == 2 and "apply to image models" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_benchmark_text_bundle(text_bundle, tmp_path):
    """The harness on a text bundle: accuracy and agreement against PyTorch, batch-1 latency at the data's own
    lengths and at a fixed length of real tokens, through the same fresh-process runner as images."""
    from edgetl.bench import run_benchmark

    names = ["onnx-fp32", "openvino-int8", "tflite-fp32"]
    for name in names:
        if not (text_bundle / "export" / name).exists():
            export(text_bundle, *name.split("-", 1), calibration_samples=12)
    report = run_benchmark(
        text_bundle,
        out=tmp_path / "bench",
        target="cpu-1t",
        artifacts=["pytorch", *names],
        runs=5,
        min_seconds=0,
        warmup=1,
        rounds=1,
        batch=4,
    )
    lengths = report["protocol"]["text_lengths"]
    assert lengths["long_tokens"] == 16 and 3 <= lengths["typical_tokens"] <= lengths["max_tokens"] <= 16
    rows = {r["name"]: r for r in report["rows"]}
    assert list(rows) == ["pytorch", *names] and all(r["status"] == "ok" for r in rows.values()), rows
    for name in ("onnx-fp32", "tflite-fp32"):
        assert rows[name]["agreement"] == 1.0 and rows[name]["max_abs_diff"] < 1e-3
        assert rows[name]["value"] == rows["pytorch"]["value"]
    for r in rows.values():
        assert r["long_tokens"] == 16 and r["p50_long_ms"] > 0 and r["runs"] >= 5 and r["throughput_per_s"] > 0
    md = (tmp_path / "bench" / "report.md").read_text()
    assert "p50 ms @16" in md and "real tokens without padding" in md
    r = runner.invoke(app, ["benchmark", str(text_bundle), "--long-tokens", "99", "--target", "cpu-1t"])
    assert r.exit_code == 2 and "--long-tokens must be 1..16" in r.stderr and "Traceback" not in r.stderr
