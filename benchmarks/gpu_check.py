"""The CUDA training paths on a lent GPU, in one short call: every fine-tuning path that moves tensors to the
device (full, two-phase's re-wrap, linear's feature cache, MCC + self-training and AdaBN domain adaptation, a text
encoder), the same vision run on the CPU beside it, tests/test_device.py (its GPU tests run where CUDA is), distributed ranks on a CUDA machine (the `cpu:gloo,cuda:nccl`
process group with CPU ranks; two ranks asking for one GPU must stop with one line), and the `cuda` benchmark
target on the exported bundle.

It needs no download: the data is written here (sklearn's 8x8 digits as class folders, an inverted copy as the
target domain, a two-topic text CSV), the models start from scratch (`--no-pretrained`, a tiny BERT from its
config). Each check is its own `edgetl` process; a failing one is recorded with its last error line and the next
one runs.

    python3 benchmarks/gpu_check.py --out "$OUT"                     # on the GPU machine (device tool)
    .venv/bin/python benchmarks/gpu_check.py --device cpu --image-size 32 --out /tmp/gpu-check   # a dry run here

Results: OUT/gpu_check.{json,md} (copy them into benchmarks/results/ with the date and machine they name).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import REPO, machine_info

WORDS = {
    "machines": "pump valve motor bearing gasket torque spindle conveyor boiler piston gear shaft".split(),
    "weather": "rain cloud storm wind sunny frost drizzle thunder humid breeze snow fog".split(),
}


def write_digits(root: Path, inverted: bool) -> Path:
    """sklearn's digits as PNG class folders (white on black, or inverted: the target domain); kept when there."""
    if root.exists():
        return root
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (img, label) in enumerate(zip(digits.images, digits.target)):
        pixels = (img / 16.0 * 255).astype(np.uint8)
        if inverted:
            pixels = 255 - pixels
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).resize((32, 32), Image.NEAREST).convert("RGB").save(folder / f"{i}.png")
    return root


def write_text(root: Path) -> tuple[Path, Path]:
    """A two-topic CSV and a tiny BERT (2 layers of 64) with a word-level vocabulary of its words."""
    import random

    from transformers import BertConfig, BertModel, BertTokenizerFast

    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    rows = ["text,label"]
    for i in range(400):
        label = ("machines", "weather")[i % 2]
        words = rng.choices(WORDS[label], k=6) + rng.choices(WORDS["machines" if label == "weather" else "weather"], k=2)
        rng.shuffle(words)
        rows.append(f"{' '.join(words)},{label}")
    data = root / "topics.csv"
    data.write_text("\n".join(rows) + "\n")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(sum(WORDS.values(), []))]) + "\n")
    model = root / "bert"
    cfg = BertConfig(vocab_size=5 + sum(len(w) for w in WORDS.values()), hidden_size=64, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=128, max_position_embeddings=64)  # fmt: skip
    BertModel(cfg).save_pretrained(model)
    BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True).save_pretrained(model)
    return data, model


def edgetl(args: list[str], log: Path, timeout: float = 300) -> dict[str, Any]:
    """One edgetl command: return code, wall time, the last error line."""
    t0 = time.time()
    with log.open("w") as f:
        try:
            r = subprocess.run([sys.executable, "-m", "edgetl", *args], cwd=REPO, stdout=f, stderr=subprocess.STDOUT,
                               timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
            rc = r.returncode
        except subprocess.TimeoutExpired:
            rc = 124
    lines = log.read_text(errors="replace").splitlines()
    errors = [line for line in lines if line.startswith("error:") or "Error" in line]
    return {"rc": rc, "wall_s": round(time.time() - t0, 1), "last_error": errors[-1][:300] if errors else None}


def facts(run: Path) -> dict[str, Any]:
    """What a finished run's manifest says about where and how fast it trained."""
    manifest = json.loads((run / "edgetl.json").read_text())
    epochs = manifest["history"]
    samples, seconds = sum(e["train_samples"] for e in epochs), sum(e["seconds"] for e in epochs)
    m = manifest["metrics"]
    return {
        "trained_on": manifest["training"].get("trained_on"),
        "world_size": manifest["training"]["world_size"],
        "samples_per_s": round(samples / max(seconds, 1e-9), 1),
        "val": m.get("val"),
        "target_test": m.get("target_test"),
        "peak_gpu_mb": m.get("peak_gpu_mb"),
        "peak_rss_mb": m.get("peak_rss_mb"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="cuda", help="cuda on the GPU machine; cpu for a dry run of the script")
    ap.add_argument("--image-size", type=int, default=64)
    args = ap.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "edgetl-gpu-check"
    src, tgt = write_digits(work / "digits", inverted=False), write_digits(work / "inverted", inverted=True)
    text, bert = write_text(work / "text")
    d = args.device
    vision = [str(src), "--model", "mobilenet_v2", "--no-pretrained", "--image-size", str(args.image_size),
              "--batch-size", "32", "--patience", "0", "--no-figures"]  # fmt: skip
    text_run = [str(text), "--model", str(bert), "--strategy", "full", "--epochs", "2", "--batch-size", "32",
                "--max-length", "16", "--patience", "0", "--no-figures"]  # fmt: skip
    adapt = [*vision, "--strategy", "full", "--epochs", "2", "--adapt-to", str(tgt), "--device", d]
    checks: dict[str, list[str]] = {
        "vision-full": [*vision, "--strategy", "full", "--epochs", "2", "--device", d],
        "vision-full-cpu": [*vision, "--strategy", "full", "--epochs", "2", "--device", "cpu"],
        "vision-two-phase": [*vision, "--strategy", "two-phase", "--epochs", "3", "--head-epochs", "1", "--device", d],
        "vision-linear-cache": [*vision, "--strategy", "linear", "--augment", "none", "--epochs", "2", "--device", d],
        "vision-mcc-self-train": [*adapt, "--adapt-method", "mcc", "--self-train"],
        "vision-adabn": [*adapt, "--adapt-method", "adabn"],
        "text-full": [*text_run, "--device", d],
        "ddp-2-cpu-ranks": [*vision, "--strategy", "full", "--epochs", "1", "--nproc", "2", "--device", "cpu"],
        "ddp-2-ranks-cuda": [*vision, "--strategy", "full", "--epochs", "1", "--nproc", "2", "--device", d],
    }
    results: dict[str, Any] = {}
    for name, cmd in checks.items():
        run = work / "runs" / name
        row = edgetl(["finetune", *cmd, "--out", str(run), "--overwrite"], out / f"{name}.log")
        if row["rc"] == 0:
            row.update(facts(run))
        results[name] = row
        print(name, json.dumps(row), flush=True)
    t0 = time.time()
    with (out / "pytest-device.log").open("w") as f:  # tests/test_device.py's GPU tests run where CUDA is
        rc = subprocess.run([sys.executable, "-m", "pytest", "tests/test_device.py", "-q", "-rs"], cwd=REPO, stdout=f,
                            stderr=subprocess.STDOUT, timeout=600).returncode  # fmt: skip
    tail = (out / "pytest-device.log").read_text(errors="replace").strip().splitlines()
    results["pytest-test_device"] = {"rc": rc, "wall_s": round(time.time() - t0, 1), "last_error": tail[-1] if tail else None}
    bundle = work / "runs" / "vision-full"
    if results["vision-full"]["rc"] == 0:
        results["export-onnx"] = edgetl(["export", str(bundle), "--target", "onnx"], out / "export.log", timeout=600)
        report = work / "bench-cuda"
        row = edgetl(["benchmark", str(bundle), "--target", "cuda" if d != "cpu" else "cpu", "--runs", "50",
                      "--out", str(report)], out / "benchmark.log", timeout=600)  # fmt: skip
        if (report / "report.json").exists():
            row["report"] = json.loads((report / "report.json").read_text())
        results["benchmark"] = row
    payload = {"device": d, "machine": machine_info(), "checks": results}
    (out / "gpu_check.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = ["# CUDA training paths (`benchmarks/gpu_check.py`)", "", f"device `{d}`", "",
             "| check | rc | wall s | trained on | samples/s | val accuracy | peak GPU MB | error |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in results.items():
        acc = (r.get("val") or {}).get("accuracy")
        lines.append(
            f"| {name} | {r['rc']} | {r['wall_s']} | {r.get('trained_on', '')} | {r.get('samples_per_s', '')} | "
            f"{'' if acc is None else f'{acc:.3f}'} | {r.get('peak_gpu_mb') or ''} | {r.get('last_error') or ''} |"
        )
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
