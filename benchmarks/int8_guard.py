"""The accuracy guard on real bundles that are hard for int8: every target x precision exported with the
default budget (--max-accuracy-drop auto), and a table of each int8 artifact before and after the recovery
ladder (drop with its 95% interval, rung, layers kept in float, batch-1 p50 during the check, size).

"Before" is the ladder's first attempt (the target's default quantisation), as the manifest records it.

    .venv/bin/python benchmarks/int8_guard.py --bundle runs/bench-transfer/pretrained-linear --name int8_guard_digits_linear
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
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--name", required=True, help="results file name")
    ap.add_argument("--threads", type=int, default=1, help="runtime threads for the checks (p50 is measured there)")
    ap.add_argument("--target", default="all")
    ap.add_argument("--quantize", default="all")
    ap.add_argument("--table-only", action="store_true", help="only rebuild the table from the manifests there")
    a = ap.parse_args()
    bundle = Path(a.bundle)
    t0 = time.time()
    cmd = [
        sys.executable,
        "-m",
        "edgetl",
        "export",
        str(bundle),
        "--target",
        a.target,
        "--quantize",
        a.quantize,
        "--threads",
        str(a.threads),
    ]
    proc = subprocess.run(cmd, cwd=REPO) if not a.table_only else subprocess.CompletedProcess(cmd, 0)
    total = time.time() - t0
    m = json.loads((bundle / "edgetl.json").read_text())
    arts = {}
    for f in sorted((bundle / "export").glob("*/manifest.json")):
        if not f.parent.name.endswith(".rejected"):
            arts[f.parent.name] = json.loads(f.read_text())
    md = [
        f"# int8 guard: {m['family']}:{m['arch']} fine-tuned on {m['data']['source'].rsplit('/', 1)[-1]}",
        "",
        "{{machine}}",
        f"Command: `.venv/bin/python benchmarks/int8_guard.py --bundle {a.bundle} --name {a.name}"
        f"{'' if a.target == 'all' else ' --target ' + a.target}{'' if a.quantize == 'all' else ' --quantize ' + a.quantize}` "
        + (
            "(table rebuilt from the artifacts' manifests; each manifest's export time is its own)"
            if a.table_only
            else f"(all artifacts in {total:.0f} s, exit status {proc.returncode}; runtimes on {a.threads} thread(s))"
        ),
        "",
        "| artifact | metric torch | drop before [95% CI] | rung | float layers | drop after [95% CI] | p50 ms before -> after | fp32 p50 ms | size MB before -> after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, man in arts.items():
        g, p = man.get("guard") or {}, man["parity"]
        if not man["precision"].startswith("int8") and man["precision"] != "fp16":
            continue
        first = (g.get("attempts") or [{}])[0]
        fp32 = arts.get(f"{man['target']}-fp32", {}).get("parity", {}).get("p50_ms")
        ci0, ci1 = first.get("ci95") or [0, 0], g.get("ci95") or [0, 0]
        md.append(
            f"| {name} | {p['torch'][p['metric']]:.4f} | {g['drop_before']:+.2f} [{ci0[0]:+.2f}, {ci0[1]:+.2f}] | {g['rung']}"
            f"{' (' + g['calibration'] + ')' if g['calibration'] != 'default' else ''} | {len(g['float_layers'])} | "
            f"{g['drop_after']:+.2f} [{ci1[0]:+.2f}, {ci1[1]:+.2f}] | {g['p50_ms_before']:.2f} -> {p['p50_ms']:.2f} | "
            f"{fp32 if fp32 is None else f'{fp32:.2f}'} | {g['size_bytes_before'] / 1e6:.2f} -> {man['size_bytes'] / 1e6:.2f} |"
        )
    for f in sorted((bundle / "export").glob("*.rejected/manifest.json")):
        r = json.loads(f.read_text())
        md.append(
            f"| {f.parent.name} | - | {r['guard']['drop_before']:+.2f} | REJECTED after {len(r['guard']['attempts'])} attempts | "
            f"{len(r['guard']['float_layers'])} | {r['guard']['drop_after']:+.2f} | - | - | - |"
        )
    samples = next(iter(arts.values()))["parity"]["samples"] if arts else 0
    md.append(
        f"\nHeld-out samples per check: {samples} (val+test). Drop: points of accuracy against PyTorch on the same samples."
    )
    save_results(
        a.name,
        {
            "bundle": str(bundle),
            "total_seconds": round(total, 1),
            "exit_status": proc.returncode,
            "artifacts": {
                k: {"guard": v.get("guard"), "parity": v["parity"], "size_bytes": v["size_bytes"], "converter": v["converter"]}
                for k, v in arts.items()
            },
        },
        "\n".join(md) + "\n",
    )
    print("\n".join(md))


if __name__ == "__main__":
    main()
