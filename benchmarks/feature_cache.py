"""Feature caching for `linear` without augmentation: speed-up vs running the frozen backbone every epoch.

Same data, model, seed and epochs; the only difference is --feature-cache. Both
must reach the same accuracy (the math is the same); the cached run computes the
backbone once instead of once per epoch.

    .venv/bin/python benchmarks/feature_cache.py [--epochs 8] [--image-size 96]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import REPO, run_finetune, save_results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--out", default=str(REPO / "runs" / "bench-feature-cache"))
    a = ap.parse_args()
    common = [
        "--model",
        "mobilenet_v2",
        "--image-size",
        str(a.image_size),
        "--epochs",
        str(a.epochs),
        "--strategy",
        "linear",
        "--augment",
        "none",
        "--patience",
        "0",
        "--lr-head",
        "1e-2",
        "--batch-size",
        "32",
    ]
    rows = {}
    for name, flag in (("cached", "--feature-cache"), ("backbone-every-epoch", "--no-feature-cache")):
        m = run_finetune("builtin:digits", Path(a.out) / name, common + [flag])
        rows[name] = {
            "wall_time_s": m["metrics"]["wall_time_s"],
            "val": m["metrics"]["val"],
            "test": m["metrics"]["test"],
            "peak_rss_mb": m["metrics"]["peak_rss_mb"],
        }
    speedup = rows["backbone-every-epoch"]["wall_time_s"] / rows["cached"]["wall_time_s"]
    md = [
        f"# Feature cache for `linear`: {speedup:.1f}x faster",
        "",
        "{{machine}}",
        f"Command: `.venv/bin/python benchmarks/feature_cache.py --epochs {a.epochs} --image-size {a.image_size}` "
        "(builtin:digits, torchvision MobileNetV2 with the built-in ImageNet weights, batch 32)",
        "",
        "| run | training wall time (s) | val accuracy | test accuracy | peak RSS (MB) |",
        "|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        md.append(
            f"| {name} | {r['wall_time_s']:.1f} | {r['val']['accuracy']:.4f} | {r['test']['accuracy']:.4f} | {r['peak_rss_mb']:.0f} |"
        )
    md.append(f"\nSpeed-up: **{speedup:.2f}x** over {a.epochs} epochs.")
    save_results(
        "feature_cache", {"epochs": a.epochs, "image_size": a.image_size, "speedup": speedup, "runs": rows}, "\n".join(md) + "\n"
    )
    print("\n".join(md))


if __name__ == "__main__":
    main()
