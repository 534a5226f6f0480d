"""``edgetl-run``: predict with and benchmark an exported artifact on the device itself (no torch, no edgetl).

    edgetl-run predict ARTIFACT cat.png dog.jpg       # images: files
    edgetl-run predict ARTIFACT "Das ist ein Satz."   # text: the texts
    edgetl-run predict ARTIFACT clip.wav               # audio: WAV (FLAC/OGG with soundfile)
    edgetl-run bench ARTIFACT [INPUT ...]              # latency p50/p90/p99, throughput, peak RSS
    edgetl-run info ARTIFACT                           # or a model file alone: what it embeds

Faults are one line on stderr (``error: ...``), exit 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from .errors import EdgetlError


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgetl-run", description="Run an edgetl artifact: predict, bench, info.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="predict on raw inputs (image/audio files, or texts)")
    p.add_argument("artifact")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    b = sub.add_parser("bench", help="latency and throughput on raw inputs (or synthetic ones of the input shape)")
    b.add_argument("artifact")
    b.add_argument("inputs", nargs="*")
    b.add_argument("--runs", type=int, default=100)
    b.add_argument("--warmup", type=int, default=10)
    b.add_argument("--batch", type=int, default=8)
    b.add_argument("--threads", type=int, default=0)
    b.add_argument("--json", action="store_true", help="print the full result (every latency) as JSON")
    i = sub.add_parser("info", help="what the artifact is: task, labels, input, runtime")
    i.add_argument("artifact", help="an artifact folder, or a model file alone (.onnx, .xml, .tflite): what it embeds")
    return ap


def _predict(args: argparse.Namespace) -> None:
    from .artifact import load

    results = load(args.artifact, args.threads).predict(args.inputs, top_k=args.top_k)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        shown = ", ".join(f"{label} {p:.3f}" for label, p in r["top"]) if "top" in r else f"{r['value']:.6g}"
        print(f"{r['input']}: {shown}")


def _synthetic(model: Any) -> Any:
    """Inputs of the artifact's shape when the user gives none: 8 noise images / clips, or 8 texts of 16 tokens."""
    import numpy as np

    rng = np.random.default_rng(0)
    spec = model.manifest["input"]
    if model.modality == "text":
        width = min(16, int(model.preprocess["max_length"]))
        ids = rng.integers(1000, 2000, size=(8, width), dtype=np.int64)
        names = spec["name"] if isinstance(spec["name"], list) else [spec["name"]]
        return {names[0]: ids, names[1]: np.ones_like(ids)}
    shape = [8, *[int(d) if isinstance(d, int) else 1 for d in spec["shape"][1:]]]
    if spec.get("layout") == "NHWC":  # the canonical batch is NCHW; the predictor transposes
        shape = [shape[0], shape[3], shape[1], shape[2]]
    return rng.standard_normal(shape).astype(np.float32)


def _bench(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from . import bench
    from .artifact import load

    model = load(args.artifact, args.threads or None)
    batch = model.encode(args.inputs) if args.inputs else _synthetic(model)
    with tempfile.TemporaryDirectory(prefix="edgetl-run-") as tmp:
        path = str(Path(tmp) / ("inputs.npz" if isinstance(batch, dict) else "inputs.npy"))
        np.savez(path, **batch) if isinstance(batch, dict) else np.save(path, batch)
        del model  # measured in the same process, loaded afresh: load time and memory are the artifact's own
        ns = argparse.Namespace(
            artifact=args.artifact,
            inputs=path,
            runtime=None,
            eval=False,
            warmup=args.warmup,
            runs=args.runs,
            min_seconds=0.0,
            batch=args.batch,
            threads=args.threads,
            device="{}",
            inputs_long=None,
        )
        result = bench.measure(ns)
    result["machine"] = bench.machine()
    lat = np.asarray(result["latency_ms"])
    result["summary"] = {
        "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)),
        "items_per_s": result["throughput"]["items_per_s"],
        "first_inference_ms": result["first_inference_ms"],
        "load_s": result["load_s"],
        "peak_rss_mb": result["peak_rss_mb"],
        "runs": int(len(lat)),
    }
    if args.json:
        print(json.dumps(result))
    else:
        s = result["summary"]
        print(f"{args.artifact} on {result['machine']['cpu']} ({args.threads or 'default'} threads, {s['runs']} runs, batch 1)")
        print(f"  latency p50 {s['p50_ms']:.2f} ms  p90 {s['p90_ms']:.2f} ms  p99 {s['p99_ms']:.2f} ms")
        print(
            f"  throughput {s['items_per_s']:.1f} items/s at batch {args.batch}; first inference {s['first_inference_ms']:.1f} ms; "
            f"load {s['load_s']:.2f} s; peak RSS {s['peak_rss_mb']:.0f} MB"
        )
    return result


def _info(args: argparse.Namespace) -> None:
    from .base import read_artifact_manifest
    from .embedded import read_embedded

    alone = Path(args.artifact).is_file()  # a bare model file: what it says about itself
    m = read_embedded(args.artifact) if alone else read_artifact_manifest(args.artifact)
    spec = m["input"]
    print(f"{args.artifact}: {m.get('modality', 'image')} {m['task']} model, {m['runtime']} {m['precision']} ({m['model_file']})")
    print(f"  input {spec['name']} {spec['shape']} {spec['dtype']}{' ' + spec['layout'] if spec.get('layout') else ''}")
    if spec.get("quantization"):
        print(f"  input quantization: scale {spec['quantization']['scale']:.6g}, zero point {spec['quantization']['zero_point']}")
    if m.get("labels"):
        print(f"  labels ({len(m['labels'])}): {', '.join(m['labels'][:20])}{' ...' if len(m['labels']) > 20 else ''}")
    if alone:
        print(
            f"  embedded by edgetl {m.get('versions', {}).get('edgetl', '?')} ({m['name']} of {m.get('bundle', {}).get('arch', '?')})"
        )
        print(f"  preprocess {json.dumps(m['preprocess'])}")
        if m.get("tokenizer"):
            print(f"  needs {m['tokenizer']['file']} next to it (the artifact folder has it)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "threads", None):  # before numpy or a runtime starts its thread pools
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    try:
        {"predict": _predict, "bench": _bench, "info": _info}[args.command](args)
    except EdgetlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}; check the path", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        print(f"error: cannot import {exc.name}: install it (pip install 'edgetl-runtime[...]')", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
