"""The edgetl-runtime wheel on its own: a fresh venv with the wheel, numpy, Pillow, tokenizers and onnxruntime
(no torch, no transformers, no edgetl) predicts on a raw image, a raw text and a raw wav."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

import edgetl
from edgetl.export import export
from edgetl.runtime_wheel import build_wheel
from edgetl.runtime_wheel import device_venv as make_device_venv

# what the device venv gets besides the wheel: the packages and their dist-info (importlib.metadata reads them)
DEVICE_PACKAGES = ("numpy", "numpy.libs", "PIL", "pillow.libs", "tokenizers", "onnxruntime")
DEVICE_DISTS = ("numpy", "pillow", "tokenizers", "onnxruntime")
FORBIDDEN = ("torch", "transformers", "timm", "torchvision", "edgetl", "tensorflow", "onnx", "sklearn")


@pytest.fixture(scope="module")
def device_venv(tmp_path_factory) -> Path:
    """A venv of this Python holding only the runtime wheel and the four packages a device installs."""
    return make_device_venv(tmp_path_factory.mktemp("device") / "venv", DEVICE_PACKAGES, DEVICE_DISTS)


def _run(venv: Path, args: list[str]) -> dict:
    """``edgetl-run ARGS`` in the device venv; returns its JSON plus the third-party modules it had loaded."""
    code = (
        "import json, sys\nfrom edgetl_runtime.cli import main\nrc = main(sys.argv[1:])\n"
        "print(json.dumps({'rc': rc, 'modules': sorted({m.split('.')[0] for m in sys.modules})}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code, *args], capture_output=True, text=True, timeout=300, env=env, cwd=venv
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-2000:]
    tail = json.loads(lines[-1])
    assert tail["rc"] == 0, proc.stderr[-2000:]
    return {"results": json.loads("\n".join(lines[:-1])), "modules": tail["modules"]}


def _artifact(bundle: Path) -> Path:
    art = bundle / "export" / "onnx-fp32"
    if not art.is_dir():
        art = export(bundle, "onnx", "fp32").path
    return art


def test_the_wheel_holds_the_runtime_and_its_command_only():
    wheel = build_wheel()
    names = zipfile.ZipFile(wheel).namelist()
    assert "edgetl_runtime/cli.py" in names and "edgetl_runtime/image.py" in names
    assert not [n for n in names if n.startswith("edgetl/")]
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Requires-Dist: numpy" in meta and "Requires-Dist: torch" not in meta
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "edgetl-run = edgetl_runtime.cli:main" in entry


def test_device_venv_has_no_torch(device_venv):
    proc = subprocess.run([str(device_venv / "bin" / "python"), "-c", "import torch"], capture_output=True, text=True)
    assert proc.returncode != 0 and "No module named 'torch'" in proc.stderr
    assert (device_venv / "bin" / "edgetl-run").is_file()


def test_edgetl_run_predicts_raw_inputs_of_all_three_modalities(device_venv, exportable_bundle, tmp_path):
    """A raw PNG, a raw text and a raw wav through ``edgetl-run predict`` in the torch-free venv give what edgetl's
    own predict gives with the PyTorch bundle."""
    import numpy as np
    from conftest import make_image

    from edgetl_runtime.audio import write_wav

    image = tmp_path / "red.png"
    make_image((220, 30, 30), np.random.default_rng(0)).save(image)
    img_art = _artifact(exportable_bundle)
    got = _run(device_venv, ["predict", str(img_art), str(image), "--json"])
    want = edgetl.predict_files(edgetl.load_bundle(exportable_bundle), [str(image)])
    assert got["results"][0]["top"][0][0] == want[0]["top"][0][0]
    assert abs(got["results"][0]["top"][0][1] - want[0]["top"][0][1]) < 1e-4
    assert not set(got["modules"]) & set(FORBIDDEN), got["modules"]
    assert "PIL" in got["modules"] and "onnxruntime" in got["modules"]

    text_bundle = _small_text_bundle(tmp_path)
    got = _run(device_venv, ["predict", str(_artifact(text_bundle)), "a good kind day", "--json"])
    want = edgetl.predict_texts(edgetl.load_bundle(text_bundle), ["a good kind day"])
    assert got["results"][0]["top"][0][0] == want[0]["top"][0][0]
    assert abs(got["results"][0]["top"][0][1] - want[0]["top"][0][1]) < 1e-4
    assert not set(got["modules"]) & set(FORBIDDEN) and "tokenizers" in got["modules"]

    speech_bundle, clip = _small_speech_bundle(tmp_path)
    wav = tmp_path / "tone.wav"
    write_wav(wav, clip)
    got = _run(device_venv, ["predict", str(_artifact(speech_bundle)), str(wav), "--json"])
    want = edgetl.predict_audio(edgetl.load_bundle(speech_bundle), [str(wav)])
    assert got["results"][0]["top"][0][0] == want[0]["top"][0][0]
    assert abs(got["results"][0]["top"][0][1] - want[0]["top"][0][1]) < 1e-4
    assert not set(got["modules"]) & set(FORBIDDEN), got["modules"]


def _small_text_bundle(tmp_path: Path) -> Path:
    from test_text import TFAST, _tiny, write_sentiment_csv

    model = _tiny(tmp_path / "tiny-distilbert", "distilbert")
    data = write_sentiment_csv(tmp_path / "s.csv")
    return edgetl.finetune(
        str(data), str(tmp_path / "text-run"), model=str(model), strategy="linear", **{**TFAST, "epochs": 1}
    ).path


def _small_speech_bundle(tmp_path: Path):
    """A tiny Whisper encoder on two synthetic tones (no espeak needed): low vs high pitch."""
    import numpy as np
    import torch
    from test_speech_family import tiny_config
    from transformers import WhisperForConditionalGeneration

    from edgetl_runtime.audio import write_wav

    root = tmp_path / "tones"
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000.0
    for label, hz in (("low", 220.0), ("high", 1760.0)):
        (root / label).mkdir(parents=True)
        for i in range(6):
            write_wav(
                root / label / f"{i}.wav",
                (0.3 * np.sin(2 * np.pi * (hz + 10 * i) * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32),
            )
    model = tmp_path / "tiny-whisper"
    torch.manual_seed(0)
    WhisperForConditionalGeneration(tiny_config()).save_pretrained(model)
    bundle = edgetl.finetune(
        str(root),
        str(tmp_path / "speech-run"),
        model=str(model),
        strategy="linear",
        epochs=1,
        batch_size=4,
        augment="none",
        lr_head=3e-2,
        patience=0,
        warmup_epochs=0.0,
    )
    return bundle.path, (0.3 * np.sin(2 * np.pi * 1760.0 * t)).astype(np.float32)
