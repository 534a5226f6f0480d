"""Where training runs (train/device.py): the device asked for is there or the run stops with one line before any
work; the manifest says what the run trained on. The CUDA path itself runs on a GPU only
(``benchmarks/gpu_check.py``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch
from conftest import write_color_folder

from edgetl.errors import EdgetlError
from edgetl.train import device

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: --device cuda would train")


def _edgetl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgetl", *args], capture_output=True, text=True, timeout=300,
                          env=os.environ.copy())  # fmt: skip


def test_resolve_and_move_on_the_cpu():
    assert device.resolve("cpu") == torch.device("cpu")
    assert device.resolve("cpu", local_rank=1, world_size=2) == torch.device("cpu")
    batch = (torch.zeros(2), torch.ones(2))
    assert device.move(batch, torch.device("cpu")) is batch
    assert device.peak_memory_mb(torch.device("cpu")) is None
    for bad in ("gpu", "cuda:", "cuda:-1", "CPU", ""):
        assert not device.valid_device(bad)
        with pytest.raises(EdgetlError, match="choose auto, cpu, cuda or cuda:N"):
            device.resolve(bad)


@no_gpu
def test_auto_is_the_cpu_without_a_gpu():
    assert device.resolve("auto", local_rank=1, world_size=2) == torch.device("cpu")


@no_gpu
@pytest.mark.parametrize("asked", ["cuda", "cuda:0"])
def test_cuda_without_a_gpu_is_one_line_before_any_work(tmp_path, asked):
    data = write_color_folder(tmp_path / "c", per_class=4)
    r = _edgetl("finetune", str(data), "--out", str(tmp_path / "run"), "--image-size", "32", "--device", asked)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"error: --device {asked}: torch sees no GPU on this machine; train with --device cpu (or auto)"
        if torch.version.cuda
        else f"error: --device {asked}: torch {torch.__version__} is built without CUDA on this machine; train with "
        f"--device cpu (or auto)"
    ]
    assert not (tmp_path / "run").exists()


def test_transcription_with_cuda_is_one_line(tmp_path):
    (tmp_path / "metadata.csv").write_text("path,text\na.wav,hello\n")
    r = _edgetl("finetune", str(tmp_path), "--out", str(tmp_path / "run"), "--device", "cuda")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: --device cuda: speech recognition (a transcripts CSV) trains on the CPU for now; drop --device"
    ]


def test_manifest_says_where_it_trained(tmp_path):
    data = write_color_folder(tmp_path / "c", per_class=4)
    run = tmp_path / "run"
    r = _edgetl("finetune", str(data), "--out", str(run), "--image-size", "32", "--strategy", "linear", "--epochs", "1",
                "--no-figures", "--device", "cpu")  # fmt: skip
    assert r.returncode == 0, r.stderr
    manifest = json.loads((run / "edgetl.json").read_text())
    assert manifest["training"]["device"] == "cpu" and manifest["training"]["trained_on"] == "cpu"
    assert "peak_gpu_mb" not in manifest["metrics"]
    info = _edgetl("info", str(run))
    assert info.returncode == 0 and re.search(r"trained on\s*│\s*cpu\s*│", info.stdout), info.stdout


# ------------------------------------------------------------------ on a GPU (benchmarks/gpu_check.py runs these there)
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.py on a lent one)")


@gpu
@pytest.mark.parametrize("strategy", [["--strategy", "two-phase", "--epochs", "3", "--head-epochs", "1"],
                                      ["--strategy", "linear", "--epochs", "3"]], ids=["two-phase", "linear"])  # fmt: skip
def test_cuda_trains_what_the_cpu_trains(tmp_path, strategy):
    """The same run on the GPU and on the CPU: the same decisions and accuracies (convolutions may run in TF32 on
    the GPU, so weights agree loosely), the manifest naming the GPU and its peak memory."""
    data = write_color_folder(tmp_path / "c", per_class=10)
    common = ["finetune", str(data), "--image-size", "32", "--batch-size", "8", "--dropout", "0", "--patience", "0",
              "--no-figures", *strategy]  # fmt: skip
    for name in ("cpu", "cuda"):
        r = _edgetl(*common, "--out", str(tmp_path / name), "--device", name)
        assert r.returncode == 0, r.stderr[-3000:]
    a, b = (json.loads((tmp_path / n / "edgetl.json").read_text()) for n in ("cpu", "cuda"))
    assert b["training"]["trained_on"].startswith("cuda:0 (")
    assert b["metrics"]["peak_gpu_mb"] > 0
    for ea, eb in zip(a["history"], b["history"], strict=True):
        assert ea["val"]["accuracy"] == pytest.approx(eb["val"]["accuracy"], abs=0.07)  # one sample of 15
        assert ea["train_loss"] == pytest.approx(eb["train_loss"], rel=2e-2)


@gpu
def test_more_ranks_than_gpus_is_one_line(tmp_path):
    data = write_color_folder(tmp_path / "c", per_class=4)
    n = torch.cuda.device_count() + 1
    r = _edgetl("finetune", str(data), "--out", str(tmp_path / "run"), "--image-size", "32", "--device", "cuda",
                "--nproc", str(n))  # fmt: skip
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "torch sees" in lines[0] and f"start at most {n - 1} process" in lines[0], lines
