"""What a device pays for edgetl-runtime against edgetl itself, on the same artifact and inputs.

For each artifact (default: the demo's onnx-int8, openvino-int8 and tflite-int8) and a few raw test
images, in fresh processes, one at a time:
- ``edgetl-run predict`` from a venv holding only the runtime wheel, numpy, Pillow, tokenizers and the
  artifact's runtime (the device install; packages linked from this venv, so it works offline);
- ``edgetl predict`` (the full edgetl install, torch included) on the same artifact;
and reports wall time, peak RSS (VmHWM) and the modules each imported; then ``edgetl-run bench`` latency.
Also the wheel's size and the device venv's size on disk (the linked packages counted).

    .venv/bin/python benchmarks/runtime_footprint.py [--artifacts DIR ...] [--out benchmarks/results/runtime_footprint]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgetl.runtime_wheel import build_wheel, device_venv  # noqa: E402

PACKAGES = {"onnxruntime": ("onnxruntime",), "openvino": ("openvino", "openvino.libs"), "litert": ("ai_edge_litert",)}
DISTS = {"onnxruntime": ("onnxruntime",), "openvino": ("openvino",), "litert": ("ai_edge_litert",)}
BASE = ("numpy", "numpy.libs", "PIL", "pillow.libs", "tokenizers")
BASE_DISTS = ("numpy", "pillow", "tokenizers")
PROBE = (
    "import json, sys, time\nt = time.perf_counter()\nfrom {module} import main\nsys.argv[0] = 'probe'\n"
    "try:\n    rc = main(sys.argv[1:]) if '{module}' == 'edgetl_runtime.cli' else main()\n"
    "except SystemExit as exc:\n    rc = exc.code or 0\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
    "print('@@' + json.dumps({{'rc': rc, 'seconds': time.perf_counter() - t, 'peak_rss_mb': int(hwm) / 1024,"
    " 'torch': 'torch' in sys.modules, 'modules': len(sys.modules)}}))"
)


def disk_mb(root: Path) -> float:
    """Bytes under ``root``, following the links into this venv (what a device would download)."""
    total = 0
    for dirpath, _, files in os.walk(root, followlinks=True):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.isfile(p):
                total += os.path.getsize(p)
    return total / 1e6


def run(python: str, module: str, args: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    t = time.perf_counter()
    proc = subprocess.run([python, "-c", PROBE.format(module=module), *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    line = next((l for l in proc.stdout.splitlines() if l.startswith("@@")), None)
    if line is None:
        raise SystemExit(f"{module} {args} failed: {proc.stderr[-500:]}")
    return {**json.loads(line[2:]), "wall_s": round(wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifacts", nargs="*", default=[f"runs/demo/export/{t}-int8" for t in ("onnx", "openvino", "tflite")])
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--out", default="benchmarks/results/runtime_footprint")
    args = ap.parse_args()
    images = sorted(str(p) for p in (Path.home() / ".cache/edgetl/datasets/digits-v1/test").rglob("*.png"))[: args.images]
    if not images:
        raise SystemExit("no digits test images: run `make demo` (or `edgetl data digits`) first")
    wheel = build_wheel()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for art in args.artifacts:
            runtime = json.loads((Path(art) / "manifest.json").read_text())["runtime"]
            venv = device_venv(Path(tmp) / runtime, (*BASE, *PACKAGES[runtime]), (*BASE_DISTS, *DISTS[runtime]))
            py = str(venv / "bin" / "python")
            device = run(py, "edgetl_runtime.cli", ["predict", art, *images, "--json"])
            full = run(sys.executable, "edgetl.cli", ["predict", art, *images])
            bench = subprocess.run([str(venv / "bin" / "edgetl-run"), "bench", art, "--runs", "200", "--threads", "1", "--json"],
                                   capture_output=True, text=True, check=True)  # fmt: skip
            summary = json.loads(bench.stdout.strip().splitlines()[-1])["summary"]
            rows.append({"artifact": art, "runtime": runtime, "device_venv_mb": round(disk_mb(venv), 1),
                         "edgetl_run_predict": device, "edgetl_predict": full, "edgetl_run_bench": summary})  # fmt: skip
    from edgetl_runtime.bench import machine

    m = machine()
    report = {"machine": f"{m['cpu']} ({m['cores']} cores, {' '.join(m['isa'])}), {m['memory_gib']} GiB, {m['os']}",
              "date": time.strftime("%Y-%m-%d"), "wheel": wheel.name, "wheel_kb": round(wheel.stat().st_size / 1024, 1),
              "images": len(images), "rows": rows}  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    lines = [f"# edgetl-runtime footprint ({report['date']}, {report['machine']})", "",
             f"Wheel `{report['wheel']}`: {report['wheel_kb']} KB. `edgetl-run predict` from a venv with only the wheel, numpy, "
             f"Pillow, tokenizers and the runtime, against `edgetl predict` (full install) on the same artifact and "
             f"{len(images)} raw images; fresh processes, one at a time. Command: `.venv/bin/python benchmarks/runtime_footprint.py`.",
             "", "| artifact | device venv MB | edgetl-run: wall s / peak RSS MB / torch? | edgetl: wall s / peak RSS MB / torch? | edgetl-run bench p50 / p99 ms (1 thread) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        d, f, b = r["edgetl_run_predict"], r["edgetl_predict"], r["edgetl_run_bench"]
        lines.append(f"| {r['artifact']} | {r['device_venv_mb']} | {d['wall_s']} / {d['peak_rss_mb']:.0f} / {d['torch']} | "
                     f"{f['wall_s']} / {f['peak_rss_mb']:.0f} / {f['torch']} | {b['p50_ms']:.2f} / {b['p99_ms']:.2f} |")  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
