"""Distributed fine-tuning throughput: the same run as 1 process and as N processes (DDP on gloo), per family.

Each row is one `edgetl finetune` with every layer training (`--strategy full`), the same global batch and seed;
the one-process run gets all the machine's cores as threads, each of the N ranks its share (`--threads`).
Training samples/s is the epochs' training samples over their training seconds (metrics.jsonl: no validation,
no start-up); wall time is the whole command (process start, data, model, evaluation, bundle). Run it alone: on a
busy machine the numbers mean nothing.

    .venv/bin/python benchmarks/distributed_throughput.py [--nproc 2] [--families vision,text,audio]
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

from common import REPO, save_results

FAMILIES: dict[str, tuple[str, list[str]]] = {
    "vision": ("builtin:digits", ["--model", "mobilenet_v2", "--image-size", "96", "--batch-size", "32", "--epochs", "2"]),
    "text": ("builtin:fortunes-lang", ["--batch-size", "32", "--max-length", "64", "--epochs", "1"]),
    "audio": ("builtin:keywords", ["--batch-size", "16", "--augment", "none", "--epochs", "1"]),
}
MODELS = {
    "vision": "torchvision MobileNetV2 (built-in ImageNet weights)",
    "text": "MiniLM-L6 (built-in)",
    "audio": "whisper-tiny.en encoder (built-in)",
}


def run(family: str, nproc: int, threads: int, out: Path) -> dict[str, Any]:
    data, args = FAMILIES[family]
    cmd = [sys.executable, "-m", "edgetl", "finetune", data, "--out", str(out), "--overwrite", "--strategy", "full",
           "--patience", "0", "--no-figures", "--threads", str(threads), "--nproc", str(nproc), *args]  # fmt: skip
    print("$", " ".join(cmd[1:]), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    wall = time.time() - t0
    manifest = json.loads((out / "edgetl.json").read_text())
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    samples, seconds = sum(e["train_samples"] for e in epochs), sum(e["seconds"] for e in epochs)
    return {
        "nproc": nproc,
        "threads_per_process": threads,
        "world_size": manifest["training"]["world_size"],
        "train_samples": samples,
        "train_seconds": round(seconds, 2),
        "train_samples_per_s": round(samples / seconds, 2),
        "wall_s": round(wall, 1),
        "peak_rss_mb": manifest["metrics"]["peak_rss_mb"],
        "val_accuracy": manifest["metrics"]["val"]["accuracy"],
        "final_train_loss": epochs[-1]["train_loss"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--families", default="vision,text,audio")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench-distributed"))
    a = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    families = [f.strip() for f in a.families.split(",") if f.strip()]
    rows: dict[str, list[dict[str, Any]]] = {}
    for family in families:
        rows[family] = [
            run(family, 1, cores, Path(a.out) / family / "1"),
            run(family, a.nproc, max(1, cores // a.nproc), Path(a.out) / family / str(a.nproc)),
        ]
    md = [
        f"# Distributed fine-tuning throughput: 1 vs {a.nproc} processes ({cores} cores)",
        "",
        "{{machine}}",
        f"Command: `.venv/bin/python benchmarks/distributed_throughput.py --nproc {a.nproc} --families {a.families}` "
        "(`--strategy full`, the same global batch and seed; the machine's cores shared out as threads)",
        "",
        "| family | model | data | processes x threads | train samples/s | speed-up | wall (s) | peak RSS per rank (MB) | val accuracy | last train loss |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for family, (one, many) in rows.items():
        for r in (one, many):
            md.append(
                f"| {family} | {MODELS[family]} | `{FAMILIES[family][0]}` | {r['nproc']} x {r['threads_per_process']} | "
                f"{r['train_samples_per_s']:.1f} | {r['train_samples_per_s'] / one['train_samples_per_s']:.2f}x | "
                f"{r['wall_s']:.0f} | {r['peak_rss_mb']:.0f} | {r['val_accuracy']:.4f} | {r['final_train_loss']:.4f} |"
            )
    save_results("distributed_throughput", {"nproc": a.nproc, "cores": cores, "rows": rows}, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
