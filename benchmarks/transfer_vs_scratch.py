"""Does transfer learning pay? Pretrained vs scratch on real data, same budget.

Dataset: scikit-learn's real handwritten digits (builtin:digits; fixed test split).
Model: torchvision MobileNetV2 at 96 px, batch 32, the same epoch budget for all.
- pretrained `linear` (feature extraction, cached features, no augmentation)
- pretrained `two-phase` (head, then everything at lr 1e-4)
- the same architecture from scratch (`full`, random init; lr 3e-3 for all layers,
  since 1e-4 would be unfair to a network that must learn everything)

    .venv/bin/python benchmarks/transfer_vs_scratch.py [--epochs 6]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import REPO, run_finetune, save_results

RUNS = {
    "pretrained-linear": ["--strategy", "linear", "--augment", "none", "--lr-head", "1e-2"],
    "pretrained-two-phase": ["--strategy", "two-phase", "--augment", "crop"],
    "scratch-full": ["--strategy", "full", "--augment", "crop", "--no-pretrained", "--lr-backbone", "3e-3", "--lr-head", "3e-3"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--out", default=str(REPO / "runs" / "bench-transfer"))
    a = ap.parse_args()
    common = ["--model", "mobilenet_v2", "--image-size", str(a.image_size), "--epochs", str(a.epochs),
              "--batch-size", "32", "--patience", "0", "--seed", "0"]
    rows = {}
    for name, args in RUNS.items():
        m = run_finetune("builtin:digits", Path(a.out) / name, common + args)
        rows[name] = {
            "val": m["metrics"]["val"], "test": m["metrics"]["test"], "wall_time_s": m["metrics"]["wall_time_s"],
            "peak_rss_mb": m["metrics"]["peak_rss_mb"], "epochs": m["metrics"]["epochs_run"],
            "weights": m["weights_source"]["kind"], "args": common + args,
        }
    md = ["# Pretrained vs scratch: MobileNetV2 on real handwritten digits", "", "{{machine}}",
          f"Command: `.venv/bin/python benchmarks/transfer_vs_scratch.py --epochs {a.epochs} --image-size {a.image_size}`", "",
          "| run | weights | test accuracy | test macro-F1 | val accuracy | wall time (s) | peak RSS (MB) |",
          "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        md.append(f"| {name} | {r['weights']} | {r['test']['accuracy']:.4f} | {r['test']['macro_f1']:.4f} | "
                  f"{r['val']['accuracy']:.4f} | {r['wall_time_s']:.1f} | {r['peak_rss_mb']:.0f} |")
    save_results("transfer_vs_scratch", {"dataset": "builtin:digits", "epochs": a.epochs, "image_size": a.image_size, "runs": rows}, "\n".join(md) + "\n")
    _plot(rows)
    print("\n".join(md))


def _plot(rows: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from common import RESULTS

    names = list(rows)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.bar(names, [rows[n]["test"]["accuracy"] for n in names], color=["#4c72b0", "#55a868", "#c44e52"])
    ax1.set_ylim(0, 1)
    ax1.set_ylabel("test accuracy")
    ax2.bar(names, [rows[n]["wall_time_s"] for n in names], color=["#4c72b0", "#55a868", "#c44e52"])
    ax2.set_ylabel("wall time (s)")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelrotation=15)
    fig.suptitle("MobileNetV2 on real digits: same budget, pretrained vs scratch")
    fig.tight_layout()
    fig.savefig(RESULTS / "transfer_vs_scratch.png", dpi=110)


if __name__ == "__main__":
    main()
