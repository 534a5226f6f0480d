"""Peak RSS of vision fine-tuning at batch 32 and the full 224 px input (budget: 4 GiB).

Each run is its own process; peak RSS is the process's VmHWM, recorded in
the bundle manifest. To keep the wall time short, the runs use a 320-image
subset of the real digits (10 steps of 32 per epoch); memory does not depend on
how many steps an epoch has.

    .venv/bin/python benchmarks/memory.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import REPO, run_finetune, save_results

BUDGET_MB = 4096
RUNS = {
    "mobilenet_v2 full 224px": ["--model", "mobilenet_v2", "--strategy", "full"],
    "mobilenet_v2 linear 224px (cached features)": ["--model", "mobilenet_v2", "--strategy", "linear", "--augment", "none"],
    "mobilenetv2_100 (timm) full 224px": ["--model", "timm:mobilenetv2_100", "--strategy", "full"],
}


def _subset(out: Path, per_class: int = 32) -> Path:
    from edgetl.data.builtin import resolve_builtin

    root = resolve_builtin("builtin:digits")
    rows = ["path,label,split"]
    for label in range(10):
        files = sorted((root / "train" / str(label)).glob("*.png"))
        rows += [f"{f},{label},{'val' if i % 8 == 0 else 'train'}" for i, f in enumerate(files[:per_class])]
    out.mkdir(parents=True, exist_ok=True)
    (out / "subset.csv").write_text("\n".join(rows) + "\n")
    return out / "subset.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "runs" / "bench-memory"))
    a = ap.parse_args()
    data = _subset(Path(a.out))
    common = ["--image-size", "224", "--batch-size", "32", "--epochs", "1", "--patience", "0"]
    rows = {}
    for i, (name, args) in enumerate(RUNS.items()):
        m = run_finetune(str(data), Path(a.out) / f"run{i}", common + args)
        rows[name] = {
            "peak_rss_mb": m["metrics"]["peak_rss_mb"],
            "wall_time_s": m["metrics"]["wall_time_s"],
            "within_budget": m["metrics"]["peak_rss_mb"] < BUDGET_MB,
            "args": common + args,
        }
    md = [
        "# Peak memory of fine-tuning (batch 32, 224 px)",
        "",
        "{{machine}}",
        "Command: `.venv/bin/python benchmarks/memory.py` (280 train + 40 val real digits images, 1 epoch)",
        "",
        f"| run | peak RSS (MB) | budget {BUDGET_MB} MB | wall time (s) |",
        "|---|---|---|---|",
    ]
    for name, r in rows.items():
        md.append(f"| {name} | {r['peak_rss_mb']:.0f} | {'ok' if r['within_budget'] else 'OVER'} | {r['wall_time_s']:.1f} |")
    save_results("memory_finetune", {"budget_mb": BUDGET_MB, "runs": rows}, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
