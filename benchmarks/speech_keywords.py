"""Speech keywords: pretrained Whisper tiny.en vs the same encoder from scratch, and the trimmed 1 s encoder
vs the full 30 s one.

Dataset: builtin:keywords (yes/no/up/down spoken by 48 espeak-ng voices, 5 takes each, 1 s clips, split by
voice: 34 voices train (680 clips), 7 val (140), 7 test (140); test voices are never heard in training).
Model: the built-in whisper-tiny.en encoder (4 layers, 384 wide) + mean pooling + a linear head. Every run is
its own `edgetl finetune` process on one torch thread (`--threads 1`), seed 0, no early stopping.

Transfer vs scratch at a 1 s window (S=1, the clips' length, chosen by edgetl):
- `pretrained-linear`: frozen encoder, cached features, 20 epochs of the head (batch 8, lr 1e-2);
- `pretrained-two-phase`: 2 head epochs, then 6 of everything (lr 1e-4), `light` audio augmentation, batch 16;
- `scratch-full`: the same architecture from random init, every layer trained for the same 8 epochs with the
  same augmentation and batch, at lr 1e-3 (1e-4 would be unfair to a network that must learn everything).

``--train-voices K`` trains on the clips of only K of the 34 training voices (validation and test unchanged),
the small-data regime transfer learning is for.

Trimmed vs full window: `pretrained-linear-30s` is `pretrained-linear` with `--max-audio-seconds 30` (the
full Whisper encoder; each 1 s clip zero-padded to 30 s, as Whisper does). Latency of both linear bundles:
`edgetl export --target onnx --quantize fp32`, then `edgetl benchmark --target cpu-1t` (PyTorch and ONNX
Runtime, batch 1, one thread, fresh processes, interleaved rounds).

    nice -n 19 .venv/bin/python benchmarks/speech_keywords.py [--runs a,b] [--train-voices K] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import REPO, run_finetune, run_row, save_results

COMMON = ["--model", "whisper-tiny.en", "--patience", "0", "--seed", "0", "--threads", "1"]
LINEAR = ["--strategy", "linear", "--augment", "none", "--epochs", "20", "--batch-size", "8", "--lr-head", "1e-2"]
RUNS = {
    "pretrained-linear": LINEAR,
    "pretrained-two-phase": [
        "--strategy",
        "two-phase",
        "--epochs",
        "8",
        "--head-epochs",
        "2",
        "--batch-size",
        "16",
        "--augment",
        "light",
        "--lr-backbone",
        "1e-4",
    ],
    "scratch-full": [
        "--strategy",
        "full",
        "--epochs",
        "8",
        "--batch-size",
        "16",
        "--augment",
        "light",
        "--no-pretrained",
        "--lr-backbone",
        "1e-3",
        "--lr-head",
        "1e-3",
    ],
    "pretrained-linear-30s": LINEAR + ["--max-audio-seconds", "30"],
}
LATENCY = ("pretrained-linear", "pretrained-linear-30s")


def _edgetl(*args: str) -> None:
    cmd = [sys.executable, "-m", "edgetl", *args]
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def _latency(bundle: Path, samples: int, runs: int) -> dict:
    """ONNX fp32 export (parity on ``samples`` held-out clips), then the benchmark of PyTorch and it on one thread."""
    if not (bundle / "export" / "onnx-fp32" / "manifest.json").is_file():
        _edgetl(
            "export", str(bundle), "--target", "onnx", "--quantize", "fp32", "--parity-samples", str(samples), "--threads", "1"
        )
    out = bundle / "benchmark" / "cpu-1t"
    _edgetl(
        "benchmark",
        str(bundle),
        "--target",
        "cpu-1t",
        "--artifacts",
        "pytorch",
        "--artifacts",
        "onnx-fp32",
        "--samples",
        str(samples),
        "--runs",
        str(runs),
        "--rounds",
        "3",
        "--warmup",
        "3",
        "--min-seconds",
        "0",
        "--batch",
        "4",
        "--out",
        str(out),
    )
    report = json.loads((out / "report.json").read_text())
    parity = json.loads((bundle / "export" / "onnx-fp32" / "manifest.json").read_text())["parity"]
    rows = {
        r["name"]: {
            k: r.get(k) for k in ("p50_ms", "p90_ms", "throughput_per_s", "value", "agreement", "peak_rss_mb", "size_mb", "runs")
        }
        for r in report["rows"]
    }
    return {
        "rows": rows,
        "onnx_parity": {k: parity[k] for k in ("samples", "max_abs_diff", "top1_agreement")},
        "report": str(out / "report.md"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default=",".join(RUNS), help="comma-separated subset of " + ", ".join(RUNS))
    ap.add_argument("--reuse", action="store_true", help="keep bundles that already exist in --out")
    ap.add_argument("--latency-samples", type=int, default=40, help="test clips for the latency benchmark's accuracy")
    ap.add_argument("--train-voices", type=int, default=0, help="train on K voices only (0: all 34)")
    ap.add_argument("--no-latency", action="store_true", help="skip the export + benchmark of the linear bundles")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench-speech"))
    a = ap.parse_args()
    data = "builtin:keywords" if not a.train_voices else str(_subset(Path(a.out), a.train_voices))
    tag = f"_{a.train_voices}v" if a.train_voices else ""
    rows = {}
    for name in a.runs.split(","):
        args = COMMON + RUNS[name]
        out = Path(a.out) / f"{name}{tag}"
        if a.reuse and (out / "edgetl.json").is_file():
            m = json.loads((out / "edgetl.json").read_text())
        else:
            m = run_finetune(data, out, args)
        rows[name] = {
            **run_row(m, args, "train_clips"),
            "best_epoch": m["metrics"]["best_epoch"],
            "window_s": m["preprocess"]["max_audio_seconds"],
            "test_clips": m["data"]["splits"]["test"],
            "feature_cache": m["training"]["feature_cache_used"],
        }
    for name in LATENCY:  # after every training run, so the timings share a quieter machine
        if name in rows and not a.no_latency:
            rows[name]["latency"] = _latency(Path(a.out) / f"{name}{tag}", a.latency_samples, 30)
    voices = f"{a.train_voices} of 34 training voices" if a.train_voices else "all 34 training voices"
    cmd = f"--runs {a.runs}" + (f" --train-voices {a.train_voices}" if a.train_voices else "")
    md = [
        f"# Speech keywords: whisper-tiny.en on builtin:keywords, {voices} (test = 7 voices never heard in training)",
        "",
        "{{machine}}",
        f"Command: `nice -n 19 .venv/bin/python benchmarks/speech_keywords.py {cmd}`",
        "",
        "| run | weights | window (s) | train clips | test accuracy | test macro-F1 | val accuracy | epochs (best) | "
        "wall time (s) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        md.append(
            f"| {name} | {r['weights']} | {r['window_s']:g} | {r['train_clips']} | {r['test']['accuracy']:.4f} | "
            f"{r['test']['macro_f1']:.4f} | {r['val']['accuracy']:.4f} | {r['epochs']} ({r['best_epoch']}) | "
            f"{r['wall_time_s']:.1f} | {r['peak_rss_mb']:.0f} |"
        )
    speed: dict[str, float] = {}
    timed = {n: rows[n]["latency"] for n in LATENCY if n in rows and "latency" in rows[n]}
    if timed:
        md += [
            "",
            "Batch-1 latency on one thread (`edgetl benchmark --target cpu-1t`: fresh process per round, 3 interleaved "
            f"rounds; accuracy on {a.latency_samples} test clips):",
            "",
            "| bundle | window (s) | runtime | p50 ms | p90 ms | items/s (batch 4) | accuracy | agreement | peak RSS (MB) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, lat in timed.items():
            for art, r in lat["rows"].items():
                md.append(
                    f"| {name} | {rows[name]['window_s']:g} | {art} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
                    f"{r['throughput_per_s']:.1f} | {r['value']:.4f} | {r['agreement']:.4f} | {r['peak_rss_mb']:.0f} |"
                )
        if len(timed) == 2:
            short, full = (timed[n]["rows"] for n in LATENCY)
            speed = {art: full[art]["p50_ms"] / short[art]["p50_ms"] for art in short if art in full}
            md += [
                "",
                "Trimmed (1 s) vs full (30 s) encoder, batch-1 p50 speed-up: "
                + ", ".join(f"{art} {v:.1f}x" for art, v in speed.items())
                + ".",
            ]
    save_results(
        f"speech_keywords{tag}",
        {"dataset": "builtin:keywords", "train_voices": a.train_voices or 34, "runs": rows, "speedup_p50": speed},
        "\n".join(md) + "\n",
    )
    print("\n".join(md))


def _subset(out: Path, voices: int) -> Path:
    """A CSV over builtin:keywords: the clips of the first ``voices`` training voices, all of val and test."""
    from edgetl.data.builtin import resolve_builtin

    root = resolve_builtin("builtin:keywords")
    keep = json.loads((root / "voices.json").read_text())["splits"]["train"][:voices]
    rows = ["path,label,split"]
    for split in ("train", "val", "test"):
        for f in sorted((root / split).rglob("*.wav")):
            if split != "train" or f.stem.rsplit("_", 1)[0] in keep:
                rows.append(f"{f},{f.parent.name},{split}")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"keywords_{voices}_voices.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


if __name__ == "__main__":
    main()
