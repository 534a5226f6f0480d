"""TFLite (LiteRT) specifics: NHWC layout, int8 I/O, nothing written outside the bundle.
Every precision and determinism are covered with the other targets in test_export.py."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import edgetl
from edgetl.export import export
from edgetl_runtime import load_predictor


@pytest.fixture
def bundle_dir(exportable_bundle):
    return exportable_bundle


@pytest.fixture(scope="module")
def loaded(exportable_bundle):
    """One Bundle object: the NHWC fp32 conversion is made once for the fp32 and the int8 artifact."""
    return edgetl.load_bundle(exportable_bundle)


def _check(art, name, shape, layout, dtype="float32"):
    assert art.path.name == name
    m = json.loads((art.path / "manifest.json").read_text())
    assert m["target"] == "tflite" and m["runtime"] == "litert" and m["labels"] == ["blue", "green", "red"]
    assert m["model_file"] == "model.tflite" and list(m["files"]) == ["model.tflite"]
    assert m["input"]["shape"] == shape and m["input"]["layout"] == layout and m["input"]["dtype"] == dtype
    assert m["output"]["shape"] == [1, 3]
    assert set(m["versions"]) >= {"litert-torch", "ai-edge-litert", "ai-edge-quantizer"}
    p = m["parity"]
    assert p["passed"] and p["samples"] == 9
    if m["precision"] == "fp32":
        assert p["max_abs_diff"] <= 1e-3 * max(1.0, p["reference_max_abs"])
        assert p["top1_agreement"] == 1.0
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    out = load_predictor(art.path).predict(x)  # a batch of 2 through the batch-1 model
    assert out.shape == (2, 3) and np.all(np.isfinite(out))
    return m


def test_tflite_nhwc(loaded):
    art = export(loaded, "tflite", "fp32", layout="nhwc")
    _check(art, "tflite-fp32-nhwc", [1, 32, 32, 3], "NHWC")


def test_tflite_int8_io(loaded, tmp_path, capsys):
    art = export(loaded, "tflite", "int8", io="int8", layout="nhwc", calibration_samples=16)
    m = _check(art, "tflite-int8-nhwc-ioint8", [1, 32, 32, 3], "NHWC", dtype="int8")
    assert m["output"]["dtype"] == "int8"
    for spec in (m["input"], m["output"]):
        q = spec["quantization"]
        assert q["scale"] > 0 and -128 <= q["zero_point"] <= 127
    # the model file copied alone carries its input quantization (see test_exported_files.py)
    from edgetl_runtime.cli import main
    from edgetl_runtime.embedded import read_embedded

    alone = tmp_path / "model.tflite"
    alone.write_bytes((art.path / "model.tflite").read_bytes())
    said = read_embedded(alone)
    assert said["input"] == m["input"] and said["input"]["dtype"] == "int8" and said["precision"] == "int8"
    assert main(["info", str(alone)]) == 0
    assert "input quantization: scale" in capsys.readouterr().out


def test_tflite_writes_nothing_outside_the_bundle(bundle_dir, tmp_path):
    """Nothing in HOME or TMPDIR (torch inductor's cache folder is pointed into the work folder), network blocked."""
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "edgetl",
            "export",
            str(bundle_dir),
            "--target",
            "tflite",
            "--quantize",
            "int8",
            "--calibration-samples",
            "8",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "HOME": str(home), "TMPDIR": str(tmp)},
    )
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["home", "tmp"]
