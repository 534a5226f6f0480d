"""Every target x precision on a small real bundle, run in its real runtime, offline."""

import json

import numpy as np
import pytest
from conftest import write_color_folder
from typer.testing import CliRunner

import edgetl
from edgetl.cli import app
from edgetl.errors import EdgetlError
from edgetl.export import TARGETS, Artifact, export
from edgetl_runtime import load_predictor

runner = CliRunner()


@pytest.fixture
def bundle_dir(exportable_bundle):
    return exportable_bundle


@pytest.fixture(scope="module")
def loaded(exportable_bundle):
    """One Bundle object for every precision: each target converts fp32 once and quantises from it, as export_all
    does (the fresh-conversion path is test_fp32_exports_are_deterministic's)."""
    return edgetl.load_bundle(exportable_bundle)


CASES = [(t, p) for t in TARGETS for p in TARGETS[t].precisions]


@pytest.mark.parametrize("target, precision", CASES, ids=[f"{t}-{p}" for t, p in CASES])
def test_export_runs_and_reports_parity(bundle_dir, loaded, target, precision):
    art = export(loaded, target, precision, calibration_samples=16, max_accuracy_drop=None)  # 9 samples: see test_int8_guard
    assert art.path == bundle_dir / "export" / f"{target}-{precision}"
    m = json.loads((art.path / "manifest.json").read_text())
    assert m["target"] == target and m["precision"] == precision and m["labels"] == ["blue", "green", "red"]
    assert m["input"]["shape"] == [1, 3, 32, 32] and m["input"]["layout"] == "NCHW"
    assert m["preprocess"] == edgetl.load_bundle(bundle_dir).preprocess
    assert m["size_bytes"] > 0 and (art.path / m["model_file"]).is_file()
    p = m["parity"]
    assert p["passed"] and p["samples"] == 9 and 0.0 <= p["top1_agreement"] <= 1.0
    if precision == "fp32":
        assert p["max_abs_diff"] <= 1e-3 * max(1.0, p["reference_max_abs"])
        assert p["top1_agreement"] == 1.0
    if precision == "int8":
        assert m["converter"]["calibration_samples"] == 16
    # the artifact runs again, from disk, through the one predictor interface
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    out = np.concatenate([load_predictor(art.path).predict(x[i : i + 1]) for i in range(2)])
    assert out.shape == (2, 3) and np.all(np.isfinite(out))
    assert not list((bundle_dir / "export").glob(".*tmp"))


def test_fp32_exports_are_deterministic(bundle_dir):
    for target in TARGETS:
        done = bundle_dir / "export" / f"{target}-fp32"  # the export of the test above, when it ran: the first copy
        first = (
            Artifact(done, json.loads((done / "manifest.json").read_text()))
            if done.is_dir()
            else export(bundle_dir, target, "fp32")
        )
        data = {f: (first.path / f).read_bytes() for f in first.manifest["files"]}
        again = export(bundle_dir, target, "fp32")
        assert {f: (again.path / f).read_bytes() for f in again.manifest["files"]} == data, target


@pytest.fixture
def lossy_runtime(monkeypatch):
    """The exported artifact runs in its real runtime, but its logits are rolled by one class: it loses accuracy."""
    import edgetl.export.api as api

    real = api.load_predictor

    class Rolled:
        def __init__(self, inner):
            self.inner, self.manifest = inner, inner.manifest

        def predict(self, batch):
            return np.roll(self.inner.predict(batch), 1, axis=1)

    monkeypatch.setattr(api, "load_predictor", lambda *a, **k: Rolled(real(*a, **k)))


def test_max_accuracy_drop_rejects_and_leaves_no_artifact(bundle_dir, lossy_runtime):
    with pytest.raises(EdgetlError) as info:
        export(bundle_dir, "onnx", "fp16", max_accuracy_drop=1.0)
    assert info.value.exit_code == 3 and "more than --max-accuracy-drop" in str(info.value)
    assert (
        not (bundle_dir / "export" / "onnx-fp16").exists()
        or json.loads((bundle_dir / "export" / "onnx-fp16" / "manifest.json").read_text())["parity"]["passed"]
    )
    rejected = json.loads((bundle_dir / "export" / "onnx-fp16.rejected" / "manifest.json").read_text())
    assert rejected["parity"]["passed"] is False and rejected["rejected"]


def test_max_accuracy_drop_exit_3_from_cli(bundle_dir, lossy_runtime):
    r = runner.invoke(app, ["export", str(bundle_dir), "--target", "onnx", "--quantize", "fp16", "--max-accuracy-drop", "1"])
    assert r.exit_code == 3 and "max-accuracy-drop" in r.stderr


@pytest.mark.parametrize(
    "args, text",
    [
        (["--target", "coreml"], "unknown export target 'coreml'"),
        (["--target", "onnx", "--quantize", "int4"], "unknown precision 'int4'"),
    ],
)
def test_export_bad_requests(bundle_dir, args, text):
    r = runner.invoke(app, ["export", str(bundle_dir), *args])
    assert r.exit_code == 2 and text in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_export_not_a_bundle(tmp_path):
    r = runner.invoke(app, ["export", str(tmp_path)])
    assert r.exit_code == 2 and "is not an edgetl bundle" in r.stderr


def test_exports_write_nothing_outside_the_bundle(bundle_dir, tmp_path):
    """No telemetry ids, caches or event stores in HOME (OpenVINO, NNCF, ONNX Runtime), network blocked."""
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    for target, guard in (("openvino", "none"), ("onnx", "auto")):  # ONNX with the guard's ladder (9 samples: it may reject)
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "edgetl",
                "export",
                str(bundle_dir),
                "--target",
                target,
                "--quantize",
                "int8",
                "--calibration-samples",
                "8",
                "--max-accuracy-drop",
                guard,
            ],
            capture_output=True,
            env=env,
        )
        assert r.returncode in (0, 3), r.stderr[-2000:]
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == []


def test_calibration_folder_and_int8_determinism(bundle_dir, tmp_path):
    """--calibration DIR is used instead of the training split; calibrated int8 exports repeat byte for byte."""
    calib = write_color_folder(tmp_path / "calib", per_class=2, seed=11)
    for target in TARGETS:
        a = export(bundle_dir, target, "int8", calibration=str(calib), calibration_samples=50, max_accuracy_drop=None)
        assert a.manifest["converter"]["calibration_samples"] == 6
        assert a.manifest["converter"]["calibration_source"] == str(calib)
        if target == "tflite":  # its conversion is the slow one (~20 s); its fp32 repeat is checked above, and its
            continue  # calibration is the same code path as the others'
        first = {f: (a.path / f).read_bytes() for f in a.manifest["files"]}
        b = export(bundle_dir, target, "int8", calibration=str(calib), calibration_samples=50, max_accuracy_drop=None)
        assert {f: (b.path / f).read_bytes() for f in b.manifest["files"]} == first, target
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgetlError, match="holds no images"):
        export(bundle_dir, "onnx", "int8", calibration=str(tmp_path / "empty"))
    with pytest.raises(EdgetlError, match="is not a folder"):
        export(bundle_dir, "onnx", "int8", calibration=str(tmp_path / "nothing-here"))
