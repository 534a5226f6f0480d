"""Cross-check edgetl's latency against OpenVINO's own benchmark_app on the same IR.

For each OpenVINO artifact of the bundle and each thread count, edgetl benchmark
(fresh process, batch 1, Python predictor) and benchmark_app (C++ loop, sync API,
one stream, same threads, fp32 inference precision) measure the median latency,
alternating five times so that drift of this (shared, virtual) machine hits both
tools alike. The medians of the five must agree within 25%.

    .venv/bin/python benchmarks/benchmark_app_crosscheck.py [--bundle runs/demo] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import REPO, save_results

TOLERANCE = 0.25
REPEATS = 5


def benchmark_app(xml: Path, threads: int, seconds: int) -> float:
    exe = shutil.which("benchmark_app", path=str(Path(sys.executable).parent)) or shutil.which("benchmark_app")
    cmd = [
        exe,
        "-m",
        str(xml),
        "-d",
        "CPU",
        "-hint",
        "none",
        "-nstreams",
        "1",
        "-nthreads",
        str(threads),
        "-api",
        "sync",
        "-infer_precision",
        "f32",
        "-t",
        str(seconds),
    ]
    out = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "CI": "true"}, check=True
    ).stdout
    found = re.search(r"Median:\s+([\d.]+) (ms|us)", out)  # it switches to us below 1 ms
    if not found:
        raise SystemExit(f"benchmark_app printed no median latency:\n{out[-2000:]}")
    return float(found.group(1)) / (1000.0 if found.group(2) == "us" else 1.0)


def edgetl_p50(bundle: Path, artifact: str, threads: int, runs: int, seconds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "edgetl",
                "benchmark",
                str(bundle),
                "--artifacts",
                artifact,
                "--no-torch",
                "--threads",
                str(threads),
                "--runs",
                str(runs),
                "--min-seconds",
                str(seconds),
                "--rounds",
                "1",
                "--samples",
                "50",
                "--out",
                tmp,
            ],
            check=True,
            cwd=REPO,
            capture_output=True,
        )
        (row,) = json.loads((Path(tmp) / "report.json").read_text())["rows"]
        return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=str(REPO / "runs" / "demo"))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=600)
    ap.add_argument("--seconds", type=int, default=15, help="benchmark_app duration, split over the alternations")
    a = ap.parse_args()
    bundle = Path(a.bundle)
    artifacts = sorted(p.parent.name for p in (bundle / "export").glob("openvino-*/manifest.json"))
    rows = []
    for name in artifacts:
        manifest = json.loads((bundle / "export" / name / "manifest.json").read_text())
        xml = bundle / "export" / name / manifest["model_file"]
        for threads in a.threads:
            ours, theirs = [], []
            for _ in range(REPEATS):
                ours.append(edgetl_p50(bundle, name, threads, a.runs // REPEATS, max(1, a.seconds // REPEATS)))
                theirs.append(benchmark_app(xml, threads, max(1, a.seconds // REPEATS)))
            p50 = float(np.median([r["p50_ms"] for r in ours]))
            ratio = p50 / float(np.median(theirs))
            rows.append(
                {
                    "artifact": name,
                    "threads": threads,
                    "edgetl_p50_ms": p50,
                    "edgetl_p90_ms": float(np.median([r["p90_ms"] for r in ours])),
                    "edgetl_p50_each_ms": [r["p50_ms"] for r in ours],
                    "benchmark_app_median_each_ms": theirs,
                    "benchmark_app_median_ms": float(np.median(theirs)),
                    "ratio": ratio,
                    "within_25pct": abs(ratio - 1) <= TOLERANCE,
                }
            )
            theirs = rows[-1]["benchmark_app_median_ms"]
            ours = rows[-1]
            print(
                f"{name} {threads}t: edgetl p50 {ours['edgetl_p50_ms']:.3f} ms, benchmark_app median {theirs:.3f} ms, "
                f"ratio {ratio:.3f}",
                flush=True,
            )
    ok = all(r["within_25pct"] for r in rows)
    md = [
        "# edgetl latency vs OpenVINO benchmark_app",
        "",
        "{{machine}}",
        f"Command: `.venv/bin/python benchmarks/benchmark_app_crosscheck.py --bundle {a.bundle} --threads "
        f"{' '.join(map(str, a.threads))}`",
        "",
        f"{REPEATS} alternations of edgetl (at least {a.runs // REPEATS} batch-1 runs and {max(1, a.seconds // REPEATS)} s in a fresh process, Python predictor, input "
        f"conversion included) and benchmark_app; medians of each. "
        f"benchmark_app: `-d CPU -hint none -nstreams 1 -nthreads N -api sync -infer_precision f32 -t {max(1, a.seconds // REPEATS)}`.",
        "",
        "| artifact | threads | edgetl p50 ms | edgetl p90 ms | benchmark_app median ms | ratio | within 25% |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        md.append(
            f"| {r['artifact']} | {r['threads']} | {r['edgetl_p50_ms']:.3f} | {r['edgetl_p90_ms']:.3f} | "
            f"{r['benchmark_app_median_ms']:.3f} | {r['ratio']:.3f} | {'yes' if r['within_25pct'] else 'NO'} |"
        )
    md.append(f"\nAll within 25%: {'yes' if ok else 'NO'}.")
    save_results("benchmark_app_crosscheck", {"bundle": str(bundle), "rows": rows, "all_within_25pct": ok}, "\n".join(md) + "\n")
    print("\n".join(md))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
