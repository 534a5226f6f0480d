"""``benchmark()``: every artifact of a bundle (and the PyTorch bundle) on one target.

Protocol: each measurement runs in a fresh process (its own memory, its own
thread pools) with a fixed thread count and warm-up; ``rounds`` repetitions are
interleaved (artifact order rotated each round) so drift of the machine hits
every artifact alike; latency samples of all rounds are pooled. Accuracy comes
from one pass over the evaluation data in the first round.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgetl_runtime import ARTIFACT_MANIFEST, read_artifact_manifest
from edgetl_runtime.parity import compare

from ..atomic import clean_stale
from ..bundle import EXPORT_DIR, MANIFEST, WEIGHTS, read_manifest
from ..errors import EdgetlError
from ..modality import get_modality
from .evalset import eval_set, long_texts
from .targets import Profile, find_profile
from .transport import build_stage, transport_for

TORCH_ROW = "pytorch"
REFERENCE_RUNTIMES = ("torch", "faster-whisper")  # rows to compare with, never a deploy choice
STAGE_PREFIX = ".edgetl-bench"  # the temp folder each benchmark stages the runner in: .edgetl-bench.PID-XXXX.tmp
LONG_TOKENS = 128


@dataclass
class BenchmarkOptions:
    target: str = "cpu"
    artifacts: list[str] | None = None  # names under BUNDLE/export; None = all the target runs
    data: str | None = None  # labelled images; default: the bundle's test split
    samples: int | None = None  # cap on evaluation samples
    runs: int = 100  # timed batch-1 runs per artifact (at least), spread over the rounds
    min_seconds: float = 1.0  # per round: keep timing fast models at least this long
    warmup: int = 10
    rounds: int = 3
    threads: int | None = None  # overrides the profile
    batch: int = 8
    torch: bool = True  # include the PyTorch bundle (local targets only)
    timeout: float = 900.0
    long_tokens: int | None = None  # text: the fixed length of the second latency series (default 128 or max_length)
    anchor: bool = False  # transcription: faster-whisper on the ctranslate2-int8-dynamic artifact as an outside reference row


@dataclass
class Entry:
    name: str
    runtime: str
    precision: str
    path: Path
    size_bytes: int
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None


def exported_artifacts(bundle_dir: Path, wanted: list[str] | None) -> tuple[dict[str, Path], list[str]]:
    """The artifact folders under BUNDLE/export (rejected candidates never run) and the names asked for among
    them (all by default, PyTorch's row aside); a name that is not there is a one-line error."""
    export_dir = bundle_dir / EXPORT_DIR
    found = {
        p.parent.name: p.parent
        for p in (sorted(export_dir.glob(f"*/{ARTIFACT_MANIFEST}")) if export_dir.is_dir() else [])
        if not p.parent.name.endswith(".rejected")
    }
    names = [a for a in (wanted or found) if a != TORCH_ROW]
    if missing := [a for a in names if a not in found]:
        raise EdgetlError(
            f"{bundle_dir}: no exported artifact {', '.join(missing)} (have: {', '.join(found) or 'none'}); "
            f"run `edgetl export {bundle_dir} --target ... --quantize ...` first"
        )
    return found, names


def _entries(bundle_dir: Path, profile: Profile, opts: BenchmarkOptions) -> list[Entry]:
    entries: list[Entry] = []
    local = profile.connection.kind == "local"
    if opts.torch and local and "torch" in profile.runtimes and (not opts.artifacts or TORCH_ROW in opts.artifacts):
        entries.append(Entry(TORCH_ROW, "torch", "fp32", bundle_dir, (bundle_dir / WEIGHTS).stat().st_size))
    found, wanted = exported_artifacts(bundle_dir, opts.artifacts)
    for name in wanted:
        m = read_artifact_manifest(found[name])
        if m["runtime"] in profile.runtimes and m["precision"] in profile.precisions:
            entries.append(Entry(name, m["runtime"], m["precision"], found[name], int(m.get("size_bytes", 0))))
        elif opts.artifacts:
            raise EdgetlError(f"target {profile.name} does not run {name} ({m['runtime']} {m['precision']}); see {profile.path}")
    if not entries:
        raise EdgetlError(
            f"nothing to benchmark on {profile.name}: {bundle_dir}/{EXPORT_DIR} has no artifact it runs; "
            f"run `edgetl export {bundle_dir} --target all --quantize all`"
        )
    return entries


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _summarise(entry: Entry, reference: np.ndarray | None, targets: np.ndarray, manifest: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": entry.name,
        "runtime": entry.runtime,
        "precision": entry.precision,
        "size_mb": entry.size_bytes / 1e6,
        "status": "ok",
    }
    if entry.skipped or entry.error:
        row.update(status="skipped" if entry.skipped else "failed", reason=entry.skipped or entry.error)
        return row
    latency = [v for r in entry.results for v in r["latency_ms"]]
    first = entry.results[0]
    row.update(
        device=first.get("device"),
        runs=len(latency),
        rounds=len(entry.results),
        load_s=float(np.median([r["load_s"] for r in entry.results])),
        first_inference_ms=float(np.median([r["first_inference_ms"] for r in entry.results])),
        p50_ms=_pct(latency, 50),
        p90_ms=_pct(latency, 90),
        p99_ms=_pct(latency, 99),
        mean_ms=float(np.mean(latency)),
        std_ms=float(np.std(latency)),
        round_p50_ms=[_pct(r["latency_ms"], 50) for r in entry.results],
        throughput_per_s=float(np.median([r["throughput"]["items_per_s"] for r in entry.results])),
        batch=first["throughput"]["batch"],
        peak_rss_mb=float(max(r["peak_rss_mb"] for r in entry.results)),
        rss_before_load_mb=float(np.median([r["rss_before_load_mb"] for r in entry.results])),
        versions=first.get("versions", {}),
        pids=[r["pid"] for r in entry.results],
    )
    long = [v for r in entry.results for v in r.get("latency_long_ms", [])]
    if long:
        row.update(
            long_tokens=first["long_tokens"], p50_long_ms=_pct(long, 50), p90_long_ms=_pct(long, 90), p99_long_ms=_pct(long, 99)
        )
    outputs = np.asarray(first["outputs"], dtype=np.float32)
    ref = reference if reference is not None else outputs
    p = compare(ref, outputs, targets, manifest["task"], manifest["model"]["num_outputs"])
    if p.get("non_finite_outputs"):
        return {
            **{k: row[k] for k in ("name", "runtime", "precision", "size_mb")},
            "status": "failed",
            "reason": f"non-finite outputs (nan or inf) on {p['non_finite_outputs']} of {p['samples']} samples: "
            f"the artifact is broken, re-export it",
        }
    row.update(
        metric=p["metric"],
        value=p["artifact"][p["metric"]],
        torch_value=p["torch"][p["metric"]],
        delta_points=-p["drop_points"] if "drop_points" in p else None,
        delta=-p["drop"] if "drop" in p else None,
        agreement=p.get("top1_agreement"),
        max_abs_diff=p["max_abs_diff"],
    )
    return row


def check_budgets(row: dict[str, Any], budgets: dict[str, float]) -> dict[str, Any]:
    """Per budget: the limit, the measured value and whether it passes (None when not measured)."""
    measured = {"p90_ms": row.get("p90_ms"), "model_mb": row.get("size_mb"), "ram_mb": row.get("peak_rss_mb")}
    return {
        k: {"limit": lim, "value": measured[k], "pass": None if measured[k] is None else measured[k] <= lim}
        for k, lim in budgets.items()
    }


def benchmark(bundle_dir: str | Path, progress: Callable[[str, int, int], None] | None = None, **options: Any) -> dict[str, Any]:
    """Measure the bundle and its artifacts on one target; returns the report (also written to disk)."""
    try:
        opts = BenchmarkOptions(**options)
    except TypeError as exc:
        raise EdgetlError(f"benchmark: {exc}") from None
    if opts.min_seconds < 0:
        raise EdgetlError("--min-seconds must be 0 or more")
    for key in ("runs", "warmup", "rounds", "batch"):
        if getattr(opts, key) < (0 if key == "warmup" else 1):
            raise EdgetlError(f"--{key} must be at least {0 if key == 'warmup' else 1}")
    if opts.samples is not None and opts.samples < 1:
        raise EdgetlError("--samples must be at least 1 (leave it out to use every evaluation sample)")
    if opts.threads is not None and opts.threads < 1:
        raise EdgetlError("--threads must be at least 1")
    if not math.isfinite(opts.min_seconds):
        raise EdgetlError("--min-seconds must be a finite number")
    bundle_dir = Path(bundle_dir)
    if not (bundle_dir / MANIFEST).is_file():
        raise EdgetlError(f"{bundle_dir} is not an edgetl bundle (no {MANIFEST}); pass a folder written by `edgetl finetune`")
    manifest = read_manifest(bundle_dir)
    modality = get_modality(manifest.get("modality", "image"))
    text = modality.token_inputs  # token ids: saved as named arrays, timed at their own lengths and at a fixed length
    if opts.long_tokens is not None and not 1 <= opts.long_tokens <= manifest["preprocess"].get("max_length", 0):
        raise EdgetlError(
            f"--long-tokens must be 1..{manifest['preprocess'].get('max_length')} (the bundle's max_length)"
            if text
            else "--long-tokens applies to text bundles only"
        )
    profile = find_profile(opts.target)
    if opts.anchor and manifest["task"] != "transcription":
        raise EdgetlError("--anchor (faster-whisper) applies to transcription bundles only")
    if manifest["task"] == "transcription":  # a Whisper bundle: clips transcribed end to end, WER and real-time factor
        from .transcription import benchmark_transcription

        return benchmark_transcription(bundle_dir, manifest, opts, profile, progress)
    threads = opts.threads or profile.resolved_threads()
    from ..bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    _ = bundle.model  # a damaged or diverged bundle: one line now, not after every artifact ran
    entries = _entries(bundle_dir, profile, opts)
    inputs, targets, origin, texts = eval_set(bundle_dir, manifest, opts.data, opts.samples)
    lengths = None
    if text:  # latency at the data's own lengths, and at a fixed length (128 tokens unless max_length is less)
        long_tokens = opts.long_tokens or min(LONG_TOKENS, int(manifest["preprocess"]["max_length"]))
        long_inputs = long_texts(bundle_dir, texts, long_tokens)
        mask = list(inputs.values())[1]
        lengths = {
            "typical_tokens": int(np.median(mask.sum(1))),
            "max_tokens": int(mask.sum(1).max()),
            "long_tokens": long_tokens,
        }
    transport = transport_for(profile)
    runs_per_round = math.ceil(opts.runs / opts.rounds)
    device = {k: v for k, v in asdict(profile.device).items() if k != "threads"}
    clean_stale(tempfile.gettempdir(), prefix=STAGE_PREFIX)  # stages of benchmarks that were killed
    with tempfile.TemporaryDirectory(prefix=f"{STAGE_PREFIX}.{os.getpid()}-", suffix=".tmp") as tmp:
        stage = Path(tmp)
        build_stage(stage)
        inputs_file = "inputs.npz" if text else "inputs.npy"
        if text:
            np.savez(stage / inputs_file, **inputs)
            np.savez(stage / "inputs_long.npz", **long_inputs)
        else:
            np.save(stage / inputs_file, inputs)
        remote_paths = transport.prepare(stage, {e.name: e.path for e in entries if e.runtime != "torch"})
        try:
            total, done = opts.rounds * len(entries), 0
            for rnd in range(opts.rounds):
                order = entries[rnd % len(entries) :] + entries[: rnd % len(entries)]
                for e in order:
                    done += 1
                    if progress:
                        progress(f"round {rnd + 1}/{opts.rounds}: {e.name}", done, total)
                    if e.error or e.skipped:
                        continue
                    args = [
                        "--artifact",
                        str(e.path.resolve()) if e.runtime == "torch" else remote_paths[e.name],
                        "--inputs",
                        inputs_file,
                        "--warmup",
                        str(opts.warmup),
                        "--runs",
                        str(runs_per_round),
                        "--min-seconds",
                        str(opts.min_seconds),
                        "--batch",
                        str(opts.batch),
                        "--threads",
                        str(threads),
                        "--device",
                        json.dumps(device),
                    ]
                    if e.runtime == "torch":
                        args += ["--runtime", "torch"]
                    if text:
                        args += ["--inputs-long", "inputs_long.npz"]
                    if rnd == 0:
                        args.append("--eval")
                    result = transport.run(args, opts.timeout)
                    if result.get("ok"):
                        e.results.append(result)
                    elif result.get("unavailable") and profile.accelerator:
                        for other in entries:  # the device is missing for this whole runtime
                            if other.runtime == e.runtime:
                                other.skipped = result["error"]
                    else:
                        e.error = result["error"]
        finally:
            transport.close()
    machine = next((r["machine"] for e in entries for r in e.results), None)
    torch_entry = next((e for e in entries if e.runtime == "torch" and e.results), None)
    reference = np.asarray(torch_entry.results[0]["outputs"], np.float32) if torch_entry else bundle.predict_batched(inputs)
    rows = [_summarise(e, reference, targets, manifest) for e in entries]
    budgets = profile.budgets_for(modality.name)
    for row in rows:
        row["budgets"] = check_budgets(row, budgets) if row["status"] == "ok" else {}
    mark_slower_than_fp32(rows)
    return {
        "format": "edgetl-benchmark",
        "version": 1,
        "bundle": {"path": str(bundle_dir), "arch": f"{manifest['family']}:{manifest['arch']}", "task": manifest["task"]},
        "target": {
            "name": profile.name,
            "profile": str(profile.path),
            "description": profile.description,
            "connection": transport.describe(),
            "budgets": budgets,
        },
        "protocol": {
            "threads": threads,
            "warmup": opts.warmup,
            "runs": runs_per_round * opts.rounds,
            "rounds": opts.rounds,
            "min_seconds_per_round": opts.min_seconds,
            "batch": opts.batch,
            "fresh_process_per_round": True,
            "interleaved": True,
            "eval_samples": int(len(targets)),
            "eval_data": origin,
            **({"text_lengths": lengths} if lengths else {}),
            **modality.protocol_facts(manifest["preprocess"]),
        },
        "machine": machine,
        "rows": rows,
        "deploy": choose_deploy(rows, manifest["task"]),
    }


def mark_slower_than_fp32(rows: list[dict[str, Any]]) -> None:
    """An int8 row slower (p50) than the same runtime's fp32 row gets ``slower_than_fp32``: it saves size, not time."""
    fp32 = {r["runtime"]: r["p50_ms"] for r in rows if r["status"] == "ok" and r["precision"] == "fp32"}
    for r in rows:
        if r["status"] == "ok" and r["precision"].startswith("int8") and r["runtime"] in fp32:
            r["slower_than_fp32"] = r["p50_ms"] > fp32[r["runtime"]]


def within_accuracy(row: dict[str, Any], task: str) -> bool:
    """The artifact's metric on the benchmark's samples is within the default export budget of PyTorch's."""
    from edgetl_runtime.metrics import DEFAULT_BUDGET

    if task in ("classification", "transcription"):  # points of accuracy, of WER
        return row.get("delta_points") is not None and -row["delta_points"] <= DEFAULT_BUDGET[task]
    torch_mae = row.get("torch_value") or 0.0
    return row.get("delta") is not None and -row["delta"] <= DEFAULT_BUDGET[task] / 100.0 * torch_mae


def choose_deploy(rows: list[dict[str, Any]], task: str) -> dict[str, Any]:
    """The fastest artifact (p50) within the accuracy budget that meets every profile budget, overall and per
    runtime; PyTorch is the reference, not a candidate."""

    def ok(r: dict[str, Any]) -> bool:
        return (
            r["status"] == "ok"
            and r["runtime"] not in REFERENCE_RUNTIMES
            and within_accuracy(r, task)
            and all(b["pass"] is not False for b in (r.get("budgets") or {}).values())
        )

    def pick(rs: list[dict[str, Any]]) -> dict[str, Any] | None:
        best = min(rs, key=lambda r: r["p50_ms"]) if rs else None
        return (
            None
            if best is None
            else {
                k: best.get(k)
                for k in (
                    "name",
                    "runtime",
                    "precision",
                    "p50_ms",
                    "p90_ms",
                    "size_mb",
                    "peak_rss_mb",
                    "metric",
                    "value",
                    "delta_points",
                    "delta",
                )
            }
        )

    fit = [r for r in rows if ok(r)]
    runtimes = list(dict.fromkeys(r["runtime"] for r in rows if r["status"] == "ok" and r["runtime"] not in REFERENCE_RUNTIMES))
    return {
        "choice": pick(fit),
        "per_runtime": {rt: pick([r for r in fit if r["runtime"] == rt]) for rt in runtimes},
        "rule": "fastest p50 among artifacts within the accuracy budget of PyTorch that meet every profile budget",
    }
