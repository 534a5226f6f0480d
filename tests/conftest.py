"""Shared fixtures. The whole suite runs with the network refused, in-process and
in every subprocess it starts (tests/netblock/sitecustomize.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

NETBLOCK = Path(__file__).parent / "netblock"
sys.path.insert(0, str(NETBLOCK))
import sitecustomize  # noqa: E402,F401  (blocks sockets in this process too)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def isolated_caches(tmp_path_factory):
    """Empty torch/HF/edgetl caches: tests see only what they put there, plus the built-in weights."""
    root = tmp_path_factory.mktemp("home")
    env = {
        "TORCH_HOME": str(root / "torch"),
        "HF_HOME": str(root / "hf"),
        "HF_HUB_CACHE": str(root / "hf" / "hub"),
        "EDGETL_CACHE": str(root / "edgetl"),
        "PYTHONPATH": os.pathsep.join([str(NETBLOCK), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import huggingface_hub.constants as hc  # read at import: point it at the empty cache too

    old_cache = hc.HF_HUB_CACHE
    hc.HF_HUB_CACHE = env["HF_HUB_CACHE"]
    yield root
    hc.HF_HUB_CACHE = old_cache
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


COLORS = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (30, 40, 200)}


def make_image(color: tuple[int, int, int], rng: np.random.Generator, size: int = 32) -> Image.Image:
    """Noise background with a coloured square at a random place: easy to learn, not trivial."""
    arr = rng.integers(0, 90, size=(size, size, 3), dtype=np.uint8)
    s = int(rng.integers(size // 3, size // 2))
    x, y = (int(v) for v in rng.integers(0, size - s, size=2))
    arr[y : y + s, x : x + s] = np.clip(np.asarray(color) + rng.integers(-20, 20, 3), 0, 255)
    return Image.fromarray(arr)


def write_color_folder(root: Path, per_class: int = 12, seed: int = 0, classes=("red", "green", "blue")) -> Path:
    rng = np.random.default_rng(seed)
    for name in classes:
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            make_image(COLORS[name], rng).save(d / f"{name}_{i:03d}.png")
    return root


def write_random_label_folder(root: Path, per_class: int, seed: int = 0) -> Path:
    """The colour images under labels drawn at random: ``root/noisy/<label>/<i>.png`` (nothing to learn)."""
    data = write_color_folder(root / "c", per_class=per_class)
    rng = np.random.default_rng(seed)
    noisy = root / "noisy"
    for i, f in enumerate(sorted(data.rglob("*.png"))):
        label = ("blue", "green", "red")[rng.integers(3)]
        (noisy / label).mkdir(parents=True, exist_ok=True)
        (noisy / label / f"{i}.png").write_bytes(f.read_bytes())
    return noisy


@pytest.fixture
def color_folder(tmp_path) -> Path:
    return write_color_folder(tmp_path / "colors")


@pytest.fixture
def regression_csv(tmp_path) -> Path:
    """Target = red fraction of the image, so it is learnable from pixels."""
    rng = np.random.default_rng(1)
    root = tmp_path / "reg"
    root.mkdir()
    rows = ["path,target"]
    for i in range(30):
        red = float(rng.uniform(0, 1))
        arr = np.zeros((32, 32, 3), np.uint8)
        arr[..., 0] = int(255 * red)
        arr[..., 2] = int(255 * (1 - red))
        Image.fromarray(arr).save(root / f"img{i}.png")
        rows.append(f"img{i}.png,{red * 10:.4f}")
    (root / "data.csv").write_text("\n".join(rows) + "\n")
    return root / "data.csv"


# Small, fast settings for real fine-tuning runs in tests: the real built-in
# MobileNetV2 at 32 px on a few dozen images.
# figures off: drawing costs ~3 s a run; test_figures.py and the text and speech bundle tests draw them
FAST = dict(
    model="mobilenet_v2", image_size=32, batch_size=8, epochs=2, augment="none", patience=0, warmup_epochs=0.0, figures=False
)


@pytest.fixture(scope="session")
def exportable_bundle(tmp_path_factory) -> Path:
    """A small real bundle (built-in MobileNetV2, linear head on the colour task) shared by the export tests."""
    import edgetl

    root = tmp_path_factory.mktemp("bundle")
    data = write_color_folder(root / "colors", per_class=15)
    b = edgetl.finetune(
        str(data), str(root / "run"), **{**FAST, "strategy": "linear", "epochs": 3, "lr_head": 3e-2, "batch_size": 4}
    )
    return b.path


def run_beside_runtime(tmp_path: Path, code: str) -> dict:
    """Run ``code`` in a fresh Python with the ``edgetl-runtime`` wheel first on its path (as the benchmark ships it
    to devices, without edgetl); returns the JSON of its last output line."""
    from edgetl.runtime_wheel import build_wheel

    env = {**os.environ, "PYTHONPATH": str(build_wheel())}
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@contextmanager
def interrupted_after_epoch(monkeypatch, epoch: int):
    """Inside the block, fine-tuning dies (KeyboardInterrupt) right after ``epoch`` is saved; the block expects it."""
    from edgetl.train.finetune import FinetuneRecipe

    real_end = FinetuneRecipe._end_epoch

    def end_then_die(self, entry, value, *rest):
        real_end(self, entry, value, *rest)
        if entry["epoch"] == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(FinetuneRecipe, "_end_epoch", end_then_die)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(FinetuneRecipe, "_end_epoch", real_end)


@pytest.fixture(scope="session")
def int8_sensitive_bundle(exportable_bundle, tmp_path_factory) -> Path:
    """The exportable bundle with one int8-hostile layer: its head gets a weight of +-300 on a pooled feature that
    is zero on every image of the task. PyTorch computes the same logits; int8 weights of that head (one scale per
    row, or per tensor) round every real weight to zero, so int8 predicts one class until the head stays float."""
    import numpy as np
    import torch
    from safetensors.torch import load_file, save_file

    import edgetl
    from edgetl.export.samples import calibration_inputs, held_out

    root = tmp_path_factory.mktemp("sensitive") / "run"
    shutil.copytree(exportable_bundle, root, ignore=shutil.ignore_patterns("export"))
    b = edgetl.load_bundle(root)
    inputs = np.concatenate([held_out(b, 100)[0], calibration_inputs(b, 100)])
    with torch.no_grad():
        pooled = b.model.eval().backbone(torch.from_numpy(inputs)).reshape(len(inputs), -1).numpy()
    dead = int(np.flatnonzero(pooled.max(0) == 0)[0])
    weights = load_file(root / "model.safetensors")
    weights["head.1.weight"][:, dead] = torch.tensor([300.0, -300.0, 300.0])
    save_file(weights, root / "model.safetensors")
    return root


@pytest.fixture(scope="session")
def tiny_asr(tmp_path_factory):
    """A random 2+2-layer Whisper with tiny.en's vocabulary, tokenizer and decoding settings."""
    import torch
    from test_speech_family import tiny_config
    from transformers import WhisperForConditionalGeneration

    from edgetl.family import ctranslate2_whisper as ct2
    from edgetl.family.speech import WHISPER_TINY_EN

    builtin = WHISPER_TINY_EN.locate().parent
    cfg = tiny_config(vocab_size=51864, pad_token_id=50256, bos_token_id=50257, eos_token_id=50256,
                      decoder_start_token_id=50257, max_target_positions=64)  # fmt: skip
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(cfg)
    model.generation_config = ct2.generation_config(builtin)
    model.generation_config.max_length = 64
    out = tmp_path_factory.mktemp("asr") / "tiny-asr"
    model.save_pretrained(out)
    shutil.copy(builtin / "tokenizer.json", out / "tokenizer.json")
    return out


@pytest.fixture(scope="session")
def sentences(tmp_path_factory):
    from test_transcripts import _espeak_or_skip

    from edgetl.data.sentences import write_sentences

    _espeak_or_skip()
    root = tmp_path_factory.mktemp("sent")
    (root / "s.txt").write_text("open the quellmar valve\nstart the torvex pump\nclose the valve\n")
    return write_sentences(root / "s.txt", root / "ds", voices=4, progress=False)
