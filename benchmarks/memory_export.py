"""Peak RSS of each export (conversion + parity run), one `edgetl export` process per
target x precision, on a real bundle (budget: 4 GiB). The figure is the process's
VmHWM, recorded by edgetl in the artifact manifest (`export_peak_rss_mb`).

    .venv/bin/python benchmarks/memory_export.py [--bundle runs/demo]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, save_results

BUDGET_MB = 4096
TARGETS = {
    "onnx": ["fp32", "fp16", "int8-dynamic", "int8"],
    "openvino": ["fp32", "fp16", "int8-dynamic", "int8"],
    "tflite": ["fp32", "fp16", "int8-dynamic", "int8"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=str(REPO / "runs" / "demo"))
    a = ap.parse_args()
    bundle = Path(a.bundle)
    rows = []
    for target, precisions in TARGETS.items():
        for precision in precisions:
            t0 = time.time()
            proc = subprocess.run(
                [sys.executable, "-m", "edgetl", "export", str(bundle), "--target", target, "--quantize", precision],
                cwd=REPO,
                capture_output=True,
                text=True,
            )
            if proc.returncode:
                rows.append({"artifact": f"{target}-{precision}", "error": proc.stderr.strip()[-300:]})
                continue
            m = json.loads((bundle / "export" / f"{target}-{precision}" / "manifest.json").read_text())
            rows.append(
                {
                    "artifact": m["name"],
                    "peak_rss_mb": m["export_peak_rss_mb"],
                    "wall_s": round(time.time() - t0, 1),
                    "within_budget": m["export_peak_rss_mb"] <= BUDGET_MB,
                }
            )
            print(rows[-1], flush=True)
    md = [
        "# Peak RSS of exports",
        "",
        "{{machine}}",
        f"Command: `.venv/bin/python benchmarks/memory_export.py --bundle {a.bundle}`",
        "",
        f"One `edgetl export` process per artifact (conversion, then the parity run on 200 held-out images). Budget {BUDGET_MB} MB.",
        "",
        "| artifact | peak RSS MB | within budget | wall s (incl. process start) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            md.append(f"| {r['artifact']} | FAILED: {r['error'][:80]} | - | - |")
        else:
            md.append(
                f"| {r['artifact']} | {r['peak_rss_mb']:.0f} | {'yes' if r['within_budget'] else 'NO'} | {r['wall_s']:.1f} |"
            )
    save_results("memory_export", {"bundle": str(bundle), "budget_mb": BUDGET_MB, "rows": rows}, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
