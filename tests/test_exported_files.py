"""A model file copied alone still says what it is: the essentials embedded at export, read back without torch."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import edgetl
from edgetl.export import Artifact, export
from edgetl_runtime.cli import main
from edgetl_runtime.embedded import read_embedded
from edgetl_runtime.errors import EdgetlError

EDGETL_RUN = str(Path(sys.executable).with_name("edgetl-run"))
TARGETS = ("onnx", "openvino", "tflite")
SAME = ("format", "version", "name", "target", "runtime", "precision", "modality", "task", "labels", "preprocess")


@pytest.fixture(scope="module")
def artifacts(exportable_bundle) -> dict[str, Artifact]:
    """fp32 of every target (an export of the same session reused; the int8 file with its input quantization is
    checked in test_export_tflite.py)."""
    bundle = edgetl.load_bundle(exportable_bundle)  # one object: the TFLite conversion is made once, for both
    out = {}
    for name, target, precision, options in [
        *[(f"{t}-fp32", t, "fp32", {}) for t in TARGETS],
    ]:
        done = exportable_bundle / "export" / name
        if (done / "manifest.json").is_file():
            out[name] = Artifact(done, json.loads((done / "manifest.json").read_text()))
        else:
            out[name] = export(bundle, target, precision, **options)
    return out


def _alone(art: Artifact, tmp_path: Path) -> Path:
    """The artifact's model file (OpenVINO: the .xml and its .bin) copied into an empty folder."""
    model = art.path / art.manifest["model_file"]
    for f in [model, model.with_suffix(".bin")] if model.suffix == ".xml" else [model]:
        shutil.copyfile(f, tmp_path / f.name)
    return tmp_path / model.name


def _info(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EDGETL_RUN, "info", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", [f"{t}-fp32" for t in TARGETS])
def test_model_file_alone_says_what_it_is(artifacts, name, tmp_path, capsys):
    art = artifacts[name]
    m = art.manifest
    model = _alone(art, tmp_path)
    said = read_embedded(model)
    assert {k: said[k] for k in SAME} == {k: m[k] for k in SAME}
    assert said["labels"] == ["blue", "green", "red"] and said["task"] == "classification"
    assert said["input"] == m["input"] and said["output"] == m["output"] and said["model_file"] == m["model_file"]
    assert said["bundle"]["arch"] == m["bundle"]["arch"] and said["versions"]["edgetl"] == m["versions"]["edgetl"]
    assert m["files"][model.name] == model.stat().st_size  # the manifest measured the file with its metadata
    r = _info(str(model))
    assert r.returncode == 0, r.stderr
    assert "labels (3): blue, green, red" in r.stdout and "classification" in r.stdout and '"mean"' in r.stdout
    assert main(["info", str(art.path)]) == 0  # the artifact folder: its manifest, as before
    assert "labels (3): blue, green, red" in capsys.readouterr().out


def test_tflite_metadata_leaves_the_flatbuffer_as_it_was(artifacts, tmp_path):
    """The zip is appended: the bytes before it are the flatbuffer, and LiteRT gives bit-identical outputs."""
    from ai_edge_litert.interpreter import Interpreter

    model = artifacts["tflite-fp32"].path / "model.tflite"
    with zipfile.ZipFile(model) as z:
        assert z.namelist() == ["edgetl.json"]
        start = z.infolist()[0].header_offset
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(model.read_bytes()[:start])
    x = np.random.default_rng(0).normal(size=(1, 3, 32, 32)).astype(np.float32)
    outs = []
    for f in (model, plain):
        runner = Interpreter(model_path=str(f)).get_signature_runner()
        outs.append(next(iter(runner(**{next(iter(runner.get_input_details())): x}).values())))
    assert outs[0].tobytes() == outs[1].tobytes()
    with pytest.raises(EdgetlError, match="carries no edgetl metadata"):
        read_embedded(plain)


def test_not_a_model_file_is_one_line(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model\n")
    r = _info(str(notes))
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith(f"error: {notes} is not a model file edgetl reads (.onnx, .xml, .tflite)")
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"\x07" * 100)
    assert main(["info", str(fake)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"error: {fake} cannot be read by onnxruntime"), err
    (tmp_path / "model.xml").write_text("<net/>")
    with pytest.raises(EdgetlError, match="needs its weights model.bin next to it"):
        read_embedded(tmp_path / "model.xml")
