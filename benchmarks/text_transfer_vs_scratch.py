"""Does transfer learning pay on text? Pretrained MiniLM-L6 vs the same encoder from scratch, same budget.

Dataset: builtin:fortunes-lang (real sentences from Debian's fortunes packages in
6 languages; fixed test split of 360 texts). ``--per-class N`` trains on only N
texts per language (plus a fixed validation set of 20 per language drawn from the
rest), the small-data regime transfer learning is for; without it all 1,440
training texts are used. Model: the built-in all-MiniLM-L6-v2 (BERT, 6 layers,
384 wide), max length 128, batch 32, the same epoch budget for all:
- pretrained `linear` (feature extraction, cached features)
- pretrained `two-phase` (head, then everything at lr 1e-4)
- the same architecture from scratch (`full`, random init, lr 5e-4 for every
  layer, since 1e-4 would be unfair to a network that must learn everything)

    .venv/bin/python benchmarks/text_transfer_vs_scratch.py [--epochs 6] [--per-class N]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from common import REPO, run_finetune, run_row, save_results

RUNS = {
    "pretrained-linear": ["--strategy", "linear", "--lr-head", "1e-2"],
    "pretrained-two-phase": ["--strategy", "two-phase"],
    "scratch-full": ["--strategy", "full", "--no-pretrained", "--lr-backbone", "5e-4", "--lr-head", "5e-4"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--per-class", type=int, default=0, help="training texts per language (0: all)")
    ap.add_argument("--runs", default=",".join(RUNS), help="comma-separated subset of " + ", ".join(RUNS))
    ap.add_argument("--out", default=str(REPO / "runs" / "bench-text-transfer"))
    a = ap.parse_args()
    data = "builtin:fortunes-lang" if not a.per_class else str(_subset(Path(a.out), a.per_class))
    common = ["--model", "minilm-l6", "--epochs", str(a.epochs), "--batch-size", "32", "--patience", "0", "--seed", "0"]
    rows = {}
    for name in a.runs.split(","):
        args = RUNS[name]
        m = run_finetune(data, Path(a.out) / f"{name}-{a.per_class or 'all'}", common + args)
        rows[name] = run_row(m, common + args, "train_texts")
    tag = f"_{a.per_class}pc" if a.per_class else ""
    cmd = f"--epochs {a.epochs}" + (f" --per-class {a.per_class}" if a.per_class else "")
    md = [
        f"# Pretrained vs scratch: MiniLM-L6 on language identification of real sentences "
        f"({a.per_class or 'all'} training texts per language)",
        "",
        "{{machine}}",
        f"Command: `.venv/bin/python benchmarks/text_transfer_vs_scratch.py {cmd}`",
        "",
        "| run | weights | train texts | test accuracy | test macro-F1 | val accuracy | wall time (s) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        md.append(
            f"| {name} | {r['weights']} | {r['train_texts']} | {r['test']['accuracy']:.4f} | {r['test']['macro_f1']:.4f} | "
            f"{r['val']['accuracy']:.4f} | {r['wall_time_s']:.1f} | {r['peak_rss_mb']:.0f} |"
        )
    save_results(
        f"text_transfer_vs_scratch{tag}",
        {"dataset": "builtin:fortunes-lang", "per_class": a.per_class or None, "epochs": a.epochs, "runs": rows},
        "\n".join(md) + "\n",
    )
    print("\n".join(md))


def _subset(out: Path, per_class: int, val_per_class: int = 20, seed: int = 0) -> Path:
    """A CSV over builtin:fortunes-lang: N train and 20 val texts per language from its train split, its full test split."""
    import numpy as np

    from edgetl.data.builtin import resolve_builtin

    with open(resolve_builtin("builtin:fortunes-lang"), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(seed)
    chosen = [r | {"split": "test"} for r in rows if r["split"] == "test"]
    for label in sorted({r["label"] for r in rows}):
        train = [r for r in rows if r["label"] == label and r["split"] == "train"]
        order = rng.permutation(len(train))
        chosen += [train[i] | {"split": "train"} for i in order[:per_class]]
        chosen += [train[i] | {"split": "val"} for i in order[per_class : per_class + val_per_class]]
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"fortunes_lang_{per_class}_per_class.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label", "split"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(chosen)
    return path


if __name__ == "__main__":
    main()
