"""Measure one artifact in this (fresh) process; print one JSON result line.

Needs only this package, numpy and the artifact's runtime library (numpy is imported
late, so a device without it gets a result line that says so). The benchmark harness
runs it locally with ``python -m edgetl_runtime.bench`` and on SSH devices from the
``edgetl-runtime`` wheel it ships (``PYTHONPATH=edgetl_runtime-*.whl``);
``edgetl-run bench`` is the same measurement for people.

    python -m edgetl_runtime.bench --artifact DIR --inputs inputs.npy [--runtime torch] [--eval]
                     [--warmup 10] [--runs 100] [--min-seconds 1] [--batch 8] [--threads 2] [--device '{}']
                     [--inputs-long long.npz]
    python -m edgetl_runtime.bench --artifact DIR --inputs clips.npz --transcribe [--runtime torch] [--warmup 1] ...

Images come as one ``.npy`` of NCHW float32. Texts come as an ``.npz`` of named
int64 token arrays padded to the model's max_length: each sample is cut back to
its own length (trailing padding dropped), so batch-1 latency is measured at the
data's real lengths; ``--inputs-long`` adds a second latency series on inputs of
a fixed, unpadded length. ``--transcribe``: the artifact is a transcription artifact (or, with
``--runtime torch``, a transcription bundle) and the ``.npz`` holds 16 kHz clips (``audio``, all clips end to
end, and ``lengths``); each clip is transcribed once, one at a time, after ``--warmup`` clips (at most 2), and
the result holds each clip's tokens, seconds and encoder / first-token / per-token timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

RESULT_MARK = "@@edgetl-result@@"
ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "neon",
    "asimd",
    "asimdhp",
    "asimddp",
    "fphp",
    "i8mm",
    "bf16",
    "sve",
    "sve2",
)
RUNTIME_MODULES = {"torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino", "litert": "ai_edge_litert"}


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m edgetl_runtime.bench")
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--runtime", default=None, help="torch: the folder is a bundle")
    ap.add_argument("--eval", action="store_true", help="also predict every input (batch 1) and return the outputs")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--min-seconds", type=float, default=0.0, help="keep timing until this much time has passed")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="{}", help="JSON of edgetl_runtime.DeviceOptions fields")
    ap.add_argument("--inputs-long", default=None, help="text: a second latency series on these inputs (.npz)")
    ap.add_argument("--transcribe", action="store_true", help="a transcription artifact: time clips end to end")
    return ap.parse_args(argv)


def machine() -> dict:
    """CPU model, cores, instruction-set flags, memory, OS and Python of the machine running this."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "hardware", "model") and value.strip():
                cpu = value.strip()
            elif key in ("flags", "features"):
                flags.update(value.split())
    except OSError:
        pass
    mem_gib = None
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "isa": [f for f in ISA_FLAGS if f in flags],
        "memory_gib": mem_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version({"ai_edge_litert": "ai-edge-litert"}.get(module, module))
    except Exception:
        return None


def _timed(fn, x) -> float:
    t = time.perf_counter()
    fn(x)
    return (time.perf_counter() - t) * 1000.0


def _load_inputs(path: str) -> Any:
    """An array (images) or a dict of named arrays in file order (texts)."""
    import numpy as np

    data = np.load(path)
    return {k: data[k] for k in data.files} if path.endswith(".npz") else data


def _rows(inputs: Any, index: Any) -> Any:
    """The samples ``index`` of ``inputs`` as one batch; texts without columns that are padding in every row."""
    if isinstance(inputs, dict):
        from .text import trim_padding

        names = list(inputs)
        return trim_padding({k: v[index] for k, v in inputs.items()}, names[1])
    return inputs[index]


def _latency(predict, one: list, runs: int, min_seconds: float) -> list:
    latency: list[float] = []
    start = time.perf_counter()
    while len(latency) < runs or time.perf_counter() - start < min_seconds:
        latency.append(_timed(predict, one[len(latency) % len(one)]))
    return latency


def measure_transcription(args: argparse.Namespace) -> dict:
    """Each clip of ``--inputs`` transcribed once (greedy, one window), after a short warm-up."""
    import numpy as np

    from .base import DeviceOptions, peak_rss_mb

    data = np.load(args.inputs)
    bounds = np.concatenate([[0], np.cumsum(data["lengths"])])
    clips = [data["audio"][a:b].astype(np.float32) for a, b in zip(bounds[:-1], bounds[1:])]
    options = DeviceOptions(threads=args.threads or None, **json.loads(args.device))
    rss_before = peak_rss_mb()
    t = time.perf_counter()
    from .transcriber import load_transcriber

    transcriber: Any = load_transcriber(args.artifact, options, runtime=args.runtime)
    load_s = time.perf_counter() - t
    first_ms = _timed(transcriber.window_tokens, clips[0])
    for i in range(min(args.warmup, 2)):
        transcriber.window_tokens(clips[i % len(clips)])
    transcriber.stats.clear()
    tokens, seconds = [], []
    for clip in clips:
        t = time.perf_counter()
        tokens.append([int(x) for x in transcriber.window_tokens(clip)])
        seconds.append(time.perf_counter() - t)
    return {
        "ok": True,
        "load_s": load_s,
        "first_inference_ms": first_ms,
        "latency_ms": [1000 * s for s in seconds],
        "tokens": tokens,
        "texts": [transcriber.decode(x) for x in tokens],
        "windows": transcriber.stats,
        "audio_s": float(bounds[-1]) / 16000,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_load_mb": rss_before,
        "device": getattr(transcriber, "device", None),
    }


def measure(args: argparse.Namespace) -> dict:
    import numpy as np

    from .artifact import load_predictor
    from .base import DeviceOptions, batch_len, peak_rss_mb

    inputs = _load_inputs(args.inputs)
    rss_before = peak_rss_mb()
    t = time.perf_counter()
    predictor = load_predictor(
        args.artifact, DeviceOptions(threads=args.threads or None, **json.loads(args.device)), runtime=args.runtime
    )
    load_s = time.perf_counter() - t
    one = [_rows(inputs, slice(i, i + 1)) for i in range(batch_len(inputs))]
    first_ms = _timed(predictor.predict, one[0])
    for i in range(args.warmup):
        predictor.predict(one[i % len(one)])
    result: dict = {}
    if args.eval:
        result["outputs"] = np.concatenate([predictor.predict(x) for x in one]).astype(float).round(6).tolist()
    latency = _latency(predictor.predict, one, args.runs, args.min_seconds)
    if args.inputs_long:
        long_inputs = _load_inputs(args.inputs_long)
        long_one = [_rows(long_inputs, slice(i, i + 1)) for i in range(batch_len(long_inputs))]
        for i in range(min(args.warmup, 3)):
            predictor.predict(long_one[i % len(long_one)])
        result["latency_long_ms"] = _latency(predictor.predict, long_one, args.runs, args.min_seconds)
        result["long_tokens"] = int(next(iter(long_one[0].values())).shape[1])
    batch = _rows(inputs, np.resize(np.arange(batch_len(inputs)), args.batch))
    predictor.predict(batch)
    calls, t = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - t < 1.0:
        predictor.predict(batch)
        calls += 1
    throughput = args.batch * calls / (time.perf_counter() - t)
    return {
        **result,
        "ok": True,
        "load_s": load_s,
        "first_inference_ms": first_ms,
        "latency_ms": latency,
        "throughput": {"batch": args.batch, "items_per_s": throughput},
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_load_mb": rss_before,
        "device": getattr(predictor, "device", None),
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.threads:  # before numpy or a runtime starts its thread pools
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    info = {"machine": machine(), "pid": os.getpid()}
    try:
        result = measure_transcription(args) if args.transcribe else measure(args)
        status = 0
    except Exception as exc:  # reported to the harness as one line, never a traceback
        text = str(exc) if type(exc).__name__ in ("EdgetlError", "DeviceUnavailable") else f"{type(exc).__name__}: {exc}"
        result, status = {"ok": False, "error": (text.splitlines() or [""])[0]}, 1
        result["unavailable"] = type(exc).__name__ == "DeviceUnavailable"
        if isinstance(exc, ModuleNotFoundError):
            result["error"] = f"Python {platform.python_version()} here cannot import {exc.name}: install it"
    runtime = args.runtime or _manifest_runtime(args.artifact)
    info["versions"] = {m: _version(m) for m in ("numpy", RUNTIME_MODULES.get(runtime or "", runtime)) if m}
    print(RESULT_MARK + json.dumps({**info, **result}), flush=True)
    return status


def _manifest_runtime(folder: str) -> str | None:
    try:
        with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as f:
            return json.load(f).get("runtime")
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    sys.exit(main())
