"""Distributed fine-tuning (train/distributed.py, train/launch.py): 2 processes on gloo against one process with the
same global batch and seed, kill -9 of a rank then --resume, and torchrun with two "nodes" on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_color_folder
from safetensors.numpy import load_file

from edgetl.errors import EdgetlError
from edgetl.train import distributed
from edgetl.train.distributed import World
from edgetl.train.launch import free_port

# Two processes' gradient averages and sharded forward passes (BatchNorm statistics frozen, no dropout) differ from
# one process's only by floating-point summation order. Measured largest weight differences: 5e-7 to 5e-5, and
# 2.1e-4 for MobileNetV2 `full` over 4 epochs (AdamW normalises the tiny gradients' noise too).
WEIGHT_TOL = 5e-4
METRIC_TOL = 1e-6  # accuracies of a few dozen samples: a flipped prediction would move them by 1/n
VISION = ["--image-size", "32", "--batch-size", "8", "--dropout", "0", "--patience", "0", "--no-figures"]


def _edgetl(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgetl", *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy()
    )


def _weights(run: Path) -> dict[str, np.ndarray]:
    return load_file(str(run / "model.safetensors"))


def _max_diff(a: Path, b: Path) -> float:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    diff = max(float(np.abs(wa[k].astype(np.float64) - wb[k]).max()) for k in wa if wa[k].size)
    print(f"largest weight difference {a.name} vs {b.name}: {diff:.2e}")  # pytest -s shows the measured figure
    return diff


def _manifest(run: Path) -> dict:
    return json.loads((run / "edgetl.json").read_text())


def _same_history(a: dict, b: dict) -> None:
    for ea, eb in zip(a["history"], b["history"], strict=True):
        assert ea["val"] == pytest.approx(eb["val"], abs=METRIC_TOL)
        assert ea["train_loss"] == pytest.approx(eb["train_loss"], rel=1e-3)
        assert ea["trainable_groups"] == eb["trainable_groups"]
    assert a["metrics"].keys() == b["metrics"].keys() and "val" in a["metrics"]
    assert a["metrics"]["best_epoch"] == b["metrics"]["best_epoch"]
    for split, values in a["metrics"].items():
        if isinstance(values, dict):  # per split; wall time and peak RSS are facts of the run, not results
            assert values == pytest.approx(b["metrics"][split], abs=METRIC_TOL), split


# ------------------------------------------------------------------ the pieces
def test_shard_deals_every_sample_once_and_weights_the_mean():
    batch = list(range(10, 17))  # 7 samples over 3 ranks: 3, 2, 2
    worlds = [World(r, 3, r, "gloo") for r in range(3)]
    shards = [distributed.shard(batch, w) for w in worlds]
    assert sorted(i for s, _ in shards for i in s) == batch
    losses = {i: float(i) for i in batch}  # per-sample losses: each rank's mean, weighted, averaged = the batch mean
    ddp = sum(weight * np.mean([losses[i] for i in s]) for s, weight in shards) / 3
    assert ddp == pytest.approx(np.mean(list(losses.values())))
    lone = [distributed.shard([5], w) for w in worlds]  # fewer samples than ranks: the others take part at weight 0
    assert lone == [([5], 3.0), ([5], 0.0), ([5], 0.0)]
    assert distributed.shard(batch, World()) == (batch, 1.0)


def test_span_splits_in_order():
    for n in (0, 1, 5, 6, 7):
        parts = [list(distributed.span(n, World(r, 3, r, "gloo"))) for r in range(3)]
        assert sum(parts, []) == list(range(n))


def test_world_without_rendezvous_is_one_line(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for k in ("MASTER_ADDR", "MASTER_PORT", "RANK"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(EdgetlError, match="MASTER_ADDR, MASTER_PORT, RANK is not set; launch with torchrun"):
        distributed.world()


@pytest.mark.parametrize(
    "args, text",
    [
        (["--nproc", "0"], "--nproc must be at least 1"),
        (["--nproc", "2", "--per-device-batch", "0"], "--per-device-batch must be at least 1"),
    ],
)
def test_cli_option_errors(tmp_path, args, text):
    data = write_color_folder(tmp_path / "c", per_class=4)
    r = _edgetl("finetune", str(data), "--out", str(tmp_path / "run"), *args)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: {text}"]
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ 2 processes = 1 process
@pytest.fixture(scope="module")
def colors(tmp_path_factory) -> Path:
    return write_color_folder(tmp_path_factory.mktemp("colors") / "c", per_class=10)


@pytest.mark.parametrize(
    "strategy",
    [
        ["--strategy", "two-phase", "--epochs", "3", "--head-epochs", "1"],  # trainability changes: DDP is wrapped again
        ["--strategy", "linear", "--epochs", "3"],  # the feature cache, computed sharded and gathered
        ["--strategy", "gradual", "--epochs", "4", "--gradual-every", "1"],  # one more group each epoch: 4 wraps
    ],
    ids=["two-phase", "linear", "gradual"],
)
def test_two_processes_match_one(colors, tmp_path, strategy):
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["finetune", str(colors), *VISION, *strategy, "--threads", "1"]
    r1 = _edgetl(*args, "--out", str(one))
    assert r1.returncode == 0, r1.stderr
    per_device = ["--per-device-batch", "4"] if "linear" in strategy else []  # 2 x 4: the same global batch of 8
    r2 = _edgetl(*args, "--out", str(two), "--nproc", "2", *per_device)
    assert r2.returncode == 0, r2.stderr
    assert "error" not in r2.stderr
    a, b = _manifest(one), _manifest(two)
    _same_history(a, b)
    assert _max_diff(one, two) < WEIGHT_TOL
    assert sorted(p.name for p in one.iterdir()) == sorted(p.name for p in two.iterdir())
    assert a["training"]["world_size"] == 1 and b["training"]["world_size"] == 2
    assert a["training"]["batch_size"] == b["training"]["batch_size"] == 8
    wraps = b["training"].get("ddp_wraps", [])
    if "two-phase" in strategy:
        assert len(wraps) == 2 and wraps[0]["trainable_tensors"] < wraps[1]["trainable_tensors"]
    if "gradual" in strategy:
        tensors = [wrap["trainable_tensors"] for wrap in wraps]
        assert len(tensors) == 4 and tensors == sorted(set(tensors))
    assert r2.stdout.count("bundle:") == 1  # rank 0 alone prints


# ------------------------------------------------------------------ faults
def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


FULL = [*VISION, "--strategy", "full", "--epochs", "4", "--threads", "1"]


@pytest.fixture(scope="module")
def full_ref(colors, tmp_path_factory) -> Path:
    """One process, every layer trained: what the launchers' runs must reproduce."""
    ref = tmp_path_factory.mktemp("ref") / "one"
    r = _edgetl("finetune", str(colors), *FULL, "--out", str(ref))
    assert r.returncode == 0, r.stderr
    return ref


def test_kill_9_of_one_rank_stops_the_run_then_resume_finishes_it(colors, full_ref, tmp_path):
    run, ref = tmp_path / "run", full_ref
    args = ["finetune", str(colors), *FULL, "--nproc", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgetl", *args, "--out", str(run)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 300
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
        assert proc.poll() is None, "training ended before a rank could be killed"
        assert time.time() < deadline
        time.sleep(0.005)
    ranks = _children(proc.pid)
    assert len(ranks) == 2
    os.kill(ranks[1], signal.SIGKILL)
    t0 = time.time()
    _, err = proc.communicate(timeout=60)
    stopped_in = time.time() - t0
    assert proc.returncode == 2
    assert err.strip().splitlines() == [
        f"error: rank 1 of 2 was killed by SIGKILL; the other ranks were stopped; {run} keeps the last finished epoch: "
        f"run the same command with --resume to continue"
    ]
    assert stopped_in < 15, f"the run took {stopped_in:.1f} s to stop after a rank died"
    assert not any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in ranks)
    assert not (run / "edgetl.json").exists()
    assert 2 <= len(metrics.read_text().splitlines()) < 4

    r = _edgetl(*args, "--out", str(run), "--resume")
    assert r.returncode == 0, r.stderr
    assert f"resuming {run} after epoch" in r.stdout
    _same_history(_manifest(ref), _manifest(run))
    assert _max_diff(ref, run) < WEIGHT_TOL
    assert len(metrics.read_text().splitlines()) == 4
    assert not (run / "checkpoint.pt").exists()


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


# ------------------------------------------------------------------ launchers
def test_torchrun_two_nodes_on_loopback(colors, full_ref, tmp_path):
    """Two torchrun agents, one per "node", meeting at a local c10d rendezvous: the multi-node path as torchrun
    documents it."""
    two = tmp_path / "two"
    port = free_port()
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--nproc-per-node",
                "1",
                "--node-rank",
                str(node),
                "--rdzv-backend",
                "c10d",
                "--rdzv-endpoint",
                f"127.0.0.1:{port}",
                "--rdzv-id",
                "edgetl-test",
                "-m",
                "edgetl",
                "finetune",
                str(colors),
                *FULL,
                "--out",
                str(two),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )  # fmt: skip
        for node in range(2)
    ]
    outs = [n.communicate(timeout=600) for n in nodes]
    for n, (_, err) in zip(nodes, outs):
        assert n.returncode == 0, err[-3000:]
    assert sum(out.count("bundle:") for out, _ in outs) == 1
    assert _manifest(two)["training"]["world_size"] == 2
    _same_history(_manifest(full_ref), _manifest(two))
    assert _max_diff(full_ref, two) < WEIGHT_TOL


def _accelerate(*args: str, home: Path) -> subprocess.CompletedProcess:
    """accelerate launch, with its config folder in the test's own home (no config file: the flags say it all)."""
    env = {**os.environ, "HF_HOME": str(home)}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--mixed_precision", "no",
              "--dynamo_backend", "no", *args]  # fmt: skip
    return subprocess.run(launch, capture_output=True, text=True, timeout=600, env=env)


def test_accelerate_launch(colors, full_ref, tmp_path):
    """``accelerate launch --multi_gpu`` is torchrun's agent underneath and runs on the CPU with gloo; ``--cpu
    --num_processes 2`` would start one process without an MPI hostfile, and says so instead of training alone."""
    two = tmp_path / "two"
    run = ["-m", "edgetl", "finetune", str(colors), *FULL, "--out", str(two)]
    r = _accelerate("--multi_gpu", "--num_processes", "2", *run, home=tmp_path / "hf")
    assert r.returncode == 0, r.stderr[-3000:]
    assert _manifest(two)["training"]["world_size"] == 2
    _same_history(_manifest(full_ref), _manifest(two))
    assert _max_diff(full_ref, two) < WEIGHT_TOL

    alone = tmp_path / "alone"
    r = _accelerate("--cpu", "--num_processes", "2", *run[:-1], str(alone), home=tmp_path / "hf")
    assert r.returncode != 0  # edgetl exits 2; accelerate's simple launcher turns that into its own exit 1
    assert (
        "error: accelerate launch --cpu starts a single process unless it is given an MPI hostfile: launch with "
        "accelerate launch --multi_gpu --num_processes N (it runs on the CPU with gloo), torchrun or "
        "edgetl finetune --nproc N\n"
    ) in r.stderr
    assert not alone.exists()


# ------------------------------------------------------------------ the other families
def _one_and_two(tmp_path: Path, args: list[str]) -> tuple[Path, Path]:
    one, two = tmp_path / "one", tmp_path / "two"
    for out, extra in ((one, []), (two, ["--nproc", "2"])):
        r = _edgetl("finetune", *args, "--threads", "1", "--out", str(out), *extra)
        assert r.returncode == 0, r.stderr
    return one, two


def test_text_two_processes_match_one(tmp_path):
    """A tiny BERT without dropout (dropout masks are drawn per rank), its batches grouped by length."""
    import torch
    from test_text import MINILM, write_sentiment_csv
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    model = tmp_path / "bert"
    cfg = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    BertModel(cfg).save_pretrained(model)
    BertTokenizerFast(vocab_file=str(MINILM / "vocab.txt"), do_lower_case=True).save_pretrained(model)
    data = write_sentiment_csv(tmp_path / "s.csv")
    args = [str(data), "--model", str(model), "--strategy", "full", "--epochs", "3", "--batch-size", "8",
            "--max-length", "16", "--warmup-epochs", "0", "--lr-head", "5e-2", "--lr-backbone", "1e-3",
            "--dropout", "0", "--patience", "0", "--no-figures"]  # fmt: skip
    one, two = _one_and_two(tmp_path, args)
    _same_history(_manifest(one), _manifest(two))
    assert _max_diff(one, two) < WEIGHT_TOL


def test_audio_two_processes_match_one(tmp_path):
    """A tiny Whisper encoder (no dropout), keywords from espeak-ng voices, the waveform augmentation on."""
    import torch
    from test_audio_data import require_espeak
    from test_speech_family import tiny_config
    from transformers import WhisperForConditionalGeneration

    from edgetl.data.keywords import write_keywords

    torch.manual_seed(0)
    model = tmp_path / "whisper"
    WhisperForConditionalGeneration(tiny_config()).save_pretrained(model)
    data = require_espeak(write_keywords, tmp_path / "kw", words=("yes", "no"), voices=8, takes=2, seed=0, progress=False)
    args = [str(data), "--model", str(model), "--strategy", "two-phase", "--epochs", "3", "--head-epochs", "1",
            "--batch-size", "8", "--warmup-epochs", "0", "--lr-head", "3e-3", "--lr-backbone", "3e-3",
            "--dropout", "0", "--patience", "0", "--no-figures"]  # fmt: skip
    one, two = _one_and_two(tmp_path, args)
    _same_history(_manifest(one), _manifest(two))
    assert _max_diff(one, two) < WEIGHT_TOL


# ------------------------------------------------------------------ domain adaptation
WORKER = Path(__file__).with_name("dist_adapt_worker.py")


ADAPT_CASES = {
    "entropy": "entropy,0,8,8",
    "mcc-uneven": "mcc,0,8,7",  # uneven shards: 4 and 3 target rows
    "dann": "dann,0,7,8",
    "self-train-lone-row": "entropy,1,8,1",  # one target row: the other rank holds a stand-in at weight 0
    "dann-lone-source": "dann,1,1,5",
}


def _adapt_gradients(out: Path, nproc: int) -> None:
    out.mkdir()
    base = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK")}
    rendezvous = {"WORLD_SIZE": str(nproc), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    envs = [{**base, **rendezvous, "RANK": str(r)} for r in range(nproc)] if nproc > 1 else [base]
    cmd = [sys.executable, str(WORKER), str(out), *ADAPT_CASES.values()]
    procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True) for env in envs]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]


@pytest.fixture(scope="module")
def adapt_gradients(tmp_path_factory) -> dict[int, Path]:
    """Every case's gradients from one process and from two ranks (one launch each)."""
    root = tmp_path_factory.mktemp("adapt-grads")
    for nproc in (1, 2):
        _adapt_gradients(root / str(nproc), nproc)
    return {n: root / str(n) for n in (1, 2)}


@pytest.mark.parametrize("name", ADAPT_CASES)
def test_adaptation_losses_see_the_global_batch(adapt_gradients, name):
    """The batch-level target terms (the entropy of the mean prediction, MCC's class confusion) and the per-sample
    ones (DANN's discriminator, pseudo-labels) give two ranks the gradients of one process on the whole batch: the
    other ranks' rows are gathered, the local rows carry the gradient, the loss is scaled by the world size."""
    with (
        np.load(adapt_gradients[1] / f"{ADAPT_CASES[name]}.npz") as f1,
        np.load(adapt_gradients[2] / f"{ADAPT_CASES[name]}.npz") as f2,
    ):
        one, two = dict(f1), dict(f2)
    assert one.keys() == two.keys()
    assert any(np.abs(one[k]).max() > 1e-4 for k in one if k.startswith("backbone.")), "no gradient reached the backbone"
    for k in one:
        np.testing.assert_allclose(two[k], one[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_adaptation_two_processes_match_one(colors, tmp_path):
    """MCC with self-training end to end: the target batches' class confusion and pseudo-labels over the global
    batch, the validator on sharded held-out target samples; the same run as one process."""
    target = write_color_folder(tmp_path / "target", per_class=6, seed=5)
    args = [str(colors), *VISION, "--strategy", "full", "--epochs", "2", "--adapt-to", str(target),
            "--adapt-method", "mcc", "--self-train", "--pseudo-threshold", "0.3"]  # fmt: skip
    one, two = _one_and_two(tmp_path, args)
    a, b = _manifest(one), _manifest(two)
    _same_history(a, b)
    for ea, eb in zip(a["history"], b["history"]):
        assert ea["adapt"].keys() == {"mcc", "pseudo", "pseudo_kept"}
        assert ea["adapt"] == pytest.approx(eb["adapt"], rel=1e-4)
        assert ea["target_im"] == pytest.approx(eb["target_im"], abs=1e-5)
    assert _max_diff(one, two) < WEIGHT_TOL
