"""Every target x precision of one real bundle: size, error against PyTorch, agreement, metric.

The bundle defaults to the demo (real ImageNet MobileNetV2 fine-tuned on the real
digits: `make demo`). Parity runs on up to --parity-samples held-out images (val, then
test; 200 by default, 646 = all of digits' val+test). Results go to
benchmarks/results/<--name>.{json,md}.

    .venv/bin/python benchmarks/export_parity.py [--bundle runs/demo] [--parity-samples 646] [--name export_parity] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, save_results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=str(REPO / "runs" / "demo"))
    ap.add_argument("--parity-samples", type=int, default=200)
    ap.add_argument("--name", default="export_parity", help="results file name")
    ap.add_argument("--threads", type=int, default=None, help="runtime threads for the parity runs (default: the runtime's)")
    a = ap.parse_args()
    bundle = Path(a.bundle)
    t0 = time.time()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgetl",
            "export",
            str(bundle),
            "--target",
            "all",
            "--quantize",
            "all",
            "--parity-samples",
            str(a.parity_samples),
            *(["--threads", str(a.threads)] if a.threads else []),
        ],
        cwd=REPO,
    )
    total = time.time() - t0
    summary = json.loads((bundle / "export" / "summary.json").read_text())
    m = json.loads((bundle / "edgetl.json").read_text())
    md = [
        f"# Export parity: {m['family']}:{m['arch']} fine-tuned on {m['data']['source'].rsplit('/', 1)[-1]}",
        "",
        "{{machine}}",
        f"Command: `.venv/bin/python benchmarks/export_parity.py --bundle {a.bundle} --parity-samples {a.parity_samples} --name {a.name}"
        f"{f' --threads {a.threads}' if a.threads else ''}` "
        f"(all {len(summary)} artifacts in {total:.0f} s, exit status {proc.returncode})",
        "",
        "| artifact | size MB | max abs diff | top-1 agreement | accuracy torch -> artifact | drop (points) | export s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in summary.items():
        if "error" in r:
            md.append(f"| {name} | - | - | - | FAILED: {r['error'][:80]} | - | - |")
            continue
        p = r["parity"]
        md.append(
            f"| {name} | {r['size_bytes'] / 1e6:.2f} | {p['max_abs_diff']:.2e} | {p['top1_agreement']:.4f} | "
            f"{p['torch']['accuracy']:.4f} -> {p['artifact']['accuracy']:.4f} | {p['drop_points']:+.2f} | {r['export_seconds']:.1f} |"
        )
    md.append(f"\nParity samples per artifact: {next(iter(summary.values())).get('parity', {}).get('samples')}.")
    save_results(a.name, {"bundle": str(bundle), "total_seconds": round(total, 1), "artifacts": summary}, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
