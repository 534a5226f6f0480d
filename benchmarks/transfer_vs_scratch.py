"""Does transfer learning pay? Pretrained vs scratch on real data, same budget.

Dataset: scikit-learn's real handwritten digits (builtin:digits; fixed test split of
359 images). ``--per-class N`` trains on only N images per class (plus a fixed
validation set of 20 per class drawn from the rest), the small-data regime that
transfer learning is for; without it all 1,438 training images are used.
Model: torchvision MobileNetV2 at 96 px, batch 32, the same epoch budget for all.
- pretrained `linear` (feature extraction, cached features, no augmentation)
- pretrained `two-phase` (head, then everything at lr 1e-4)
- the same architecture from scratch (`full`, random init; lr 3e-3 for all layers,
  since 1e-4 would be unfair to a network that must learn everything)

    .venv/bin/python benchmarks/transfer_vs_scratch.py [--epochs 6] [--per-class N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import REPO, run_finetune, run_row, save_results

RUNS = {
    "pretrained-linear": ["--strategy", "linear", "--augment", "none", "--lr-head", "1e-2"],
    "pretrained-two-phase": ["--strategy", "two-phase", "--augment", "crop"],
    "scratch-full": ["--strategy", "full", "--augment", "crop", "--no-pretrained", "--lr-backbone", "3e-3", "--lr-head", "3e-3"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--per-class", type=int, default=0, help="training images per class (0: all)")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench-transfer"))
    a = ap.parse_args()
    data = "builtin:digits" if not a.per_class else str(_subset(Path(a.out), a.per_class))
    common = [
        "--model",
        "mobilenet_v2",
        "--image-size",
        str(a.image_size),
        "--epochs",
        str(a.epochs),
        "--batch-size",
        "32",
        "--patience",
        "0",
        "--seed",
        "0",
    ]
    rows = {}
    for name, args in RUNS.items():
        m = run_finetune(data, Path(a.out) / f"{name}-{a.per_class or 'all'}", common + args)
        rows[name] = run_row(m, common + args, "train_images")
    tag = f"_{a.per_class}pc" if a.per_class else ""
    cmd = f"--epochs {a.epochs} --image-size {a.image_size}" + (f" --per-class {a.per_class}" if a.per_class else "")
    md = [
        f"# Pretrained vs scratch: MobileNetV2 on real handwritten digits ({a.per_class or 'all'} training images per class)",
        "",
        "{{machine}}",
        f"Command: `.venv/bin/python benchmarks/transfer_vs_scratch.py {cmd}`",
        "",
        "| run | weights | train images | test accuracy | test macro-F1 | val accuracy | wall time (s) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        md.append(
            f"| {name} | {r['weights']} | {r['train_images']} | {r['test']['accuracy']:.4f} | {r['test']['macro_f1']:.4f} | "
            f"{r['val']['accuracy']:.4f} | {r['wall_time_s']:.1f} | {r['peak_rss_mb']:.0f} |"
        )
    save_results(
        f"transfer_vs_scratch{tag}",
        {
            "dataset": "builtin:digits",
            "per_class": a.per_class or None,
            "epochs": a.epochs,
            "image_size": a.image_size,
            "runs": rows,
        },
        "\n".join(md) + "\n",
    )
    _plot(rows, tag)
    print("\n".join(md))


def _subset(out: Path, per_class: int, val_per_class: int = 20, seed: int = 0) -> Path:
    """A CSV over the built-in digits: N train and 20 val images per class from the train split, the full test split."""
    import numpy as np

    from edgetl.data.builtin import resolve_builtin

    root = resolve_builtin("builtin:digits")
    rng = np.random.default_rng(seed)
    rows = ["path,label,split"]
    for label in range(10):
        files = sorted((root / "train" / str(label)).glob("*.png"))
        order = rng.permutation(len(files))
        rows += [f"{files[i]},{label},train" for i in order[:per_class]]
        rows += [f"{files[i]},{label},val" for i in order[per_class : per_class + val_per_class]]
        rows += [f"{f},{label},test" for f in sorted((root / "test" / str(label)).glob("*.png"))]
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"digits_{per_class}_per_class.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _plot(rows: dict, tag: str = "") -> None:
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
    fig.savefig(RESULTS / f"transfer_vs_scratch{tag}.png", dpi=110)


if __name__ == "__main__":
    main()
