"""``benchmark()`` for a transcription bundle: every transcription artifact (and PyTorch ``generate``) on one target.

The same protocol as the other tasks (``harness.py``): each measurement is a fresh process of the staged
runner (``python -m edgetl_runtime.bench --transcribe``), rounds interleaved with the order rotated. A round
transcribes every evaluation clip once, one at a time, greedily; accuracy comes from the first round. Per row:
WER and CER (Whisper's English normaliser) with the change in WER points against PyTorch, the share of clips
whose tokens equal PyTorch's, the real-time factor (compute seconds per audio second), latency per clip
(p50/p90/p99), median encoder, first-token and per-token latency, load time, size and peak RSS. ``anchor``
adds faster-whisper decoding the bundle's ctranslate2-int8-dynamic artifact (``edgetl_runtime.faster_whisper_anchor``)
in the same rounds; the report's ``anchor`` compares it with the deploy choice (WER, and how many times as fast).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edgetl_runtime import read_artifact_manifest
from edgetl_runtime.audio import SAMPLE_RATE, load_audio

from ..atomic import clean_stale
from ..bundle import ASR_DIR, EXPORT_DIR, SPLITS
from ..data.sources import evenly_spaced
from ..errors import EdgetlError
from .harness import STAGE_PREFIX, TORCH_ROW, _pct, check_budgets, choose_deploy, exported_artifacts, mark_slower_than_fp32
from .targets import Profile
from .transport import build_stage, transport_for

ANCHOR_ROW = "faster-whisper-int8"
BUDGET_SECTION = "transcription"  # [budgets.transcription] of a profile; the image/audio budgets do not apply


def eval_clips(bundle_dir: Path, data: str | None, limit: int | None) -> tuple[list[np.ndarray], list[str], str]:
    """16 kHz clips, their reference texts and where they came from: ``data`` (a transcription dataset, every
    split) or the bundle's test split (else val)."""
    from ..data.transcripts import scan_transcripts

    if data:
        src = scan_transcripts(data)
        items = evenly_spaced([t for split in src.splits.values() for t in split], limit)
        return [src.waveforms[t.path] for t in items], [t.text for t in items], str(data)
    try:
        splits = json.loads((bundle_dir / SPLITS).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EdgetlError(f"cannot read {bundle_dir / SPLITS} ({type(exc).__name__}); re-run `edgetl finetune`") from None
    for name in ("test", "val"):
        if splits.get(name):
            rows = evenly_spaced(splits[name], limit)
            return (
                [load_audio(r["path"], SAMPLE_RATE) for r in rows],
                [str(r["text"]) for r in rows],
                f"{name} split of {bundle_dir.name}",
            )
    raise EdgetlError(f"{bundle_dir / SPLITS} has no test or validation clips; pass --data with a transcription dataset")


def _entries(bundle_dir: Path, profile: Profile, wanted: list[str] | None, torch: bool, anchor: bool) -> list[dict[str, Any]]:
    entries = []
    local = profile.connection.kind == "local"
    if torch and local and "torch" in profile.runtimes and (not wanted or TORCH_ROW in wanted):
        size = sum(p.stat().st_size for p in (bundle_dir / ASR_DIR).glob("*.safetensors"))
        entries.append({"name": TORCH_ROW, "runtime": "torch", "precision": "fp32", "path": bundle_dir, "size_bytes": size})
    found, names = exported_artifacts(bundle_dir, wanted)
    manifests = {name: read_artifact_manifest(path) for name, path in found.items()}
    for name in names:
        m = manifests[name]
        if m["runtime"] in profile.runtimes and m["precision"] in profile.precisions:
            entries.append({"name": name, "runtime": m["runtime"], "precision": m["precision"], "path": found[name],
                            "size_bytes": int(m.get("size_bytes", 0))})  # fmt: skip
        elif wanted:
            raise EdgetlError(f"target {profile.name} does not run {name} ({m['runtime']} {m['precision']}); see {profile.path}")
    if anchor:  # faster-whisper decodes edgetl's own CTranslate2 int8 folder: the same weights, its own pipeline
        ct2 = next((n for n, m in manifests.items() if (m["runtime"], m["precision"]) == ("ctranslate2", "int8-dynamic")), None)
        if ct2 is None:
            raise EdgetlError(
                f"--anchor runs faster-whisper on the bundle's CTranslate2 int8 artifact; run "
                f"`edgetl export {bundle_dir} --target ctranslate2 --quantize int8-dynamic` first"
            )
        seconds = float(manifests[ct2]["preprocess"]["max_audio_seconds"])
        if seconds < 30.0:
            raise EdgetlError(
                f"--anchor: faster-whisper pads every clip to 30 s, and this bundle's encoder is trimmed to {seconds:g} s; "
                "benchmark an untrimmed bundle of the same data with --anchor to compare"
            )
        entries.append({"name": ANCHOR_ROW, "runtime": "faster-whisper", "precision": "int8-dynamic", "path": found[ct2],
                        "size_bytes": int(manifests[ct2].get("size_bytes", 0))})  # fmt: skip
    if not entries:
        raise EdgetlError(
            f"nothing to benchmark on {profile.name}: {bundle_dir / EXPORT_DIR} has no transcription artifact it runs; "
            f"run `edgetl export {bundle_dir} --target all --quantize all`"
        )
    return entries


def _median_ms(windows: list[dict[str, Any]], key: str) -> float | None:
    """The median of ``key`` over the windows in ms; None where the runtime does not report it (faster-whisper)."""
    values = [w[key] for w in windows if w.get(key) is not None]
    return 1000 * float(np.median(values)) if values and len(values) == len(windows) else None


def _anchor_comparison(rows: list[dict[str, Any]], choice: dict[str, Any] | None) -> dict[str, Any] | None:
    """The deploy choice against faster-whisper: WER of both and how many times as fast (its RTF / ours)."""
    anchor = next((r for r in rows if r["name"] == ANCHOR_ROW and r["status"] == "ok"), None)
    if anchor is None:
        return None
    ours = next((r for r in rows if choice and r["name"] == choice["name"]), None)
    out: dict[str, Any] = {"name": ANCHOR_ROW, "wer": anchor["value"], "rtf": anchor["rtf"], "p50_ms": anchor["p50_ms"]}
    if ours is not None:
        out.update(against=ours["name"], our_wer=ours["value"], our_rtf=ours["rtf"], speed_ratio=anchor["rtf"] / ours["rtf"],
                   wer_no_worse=ours["value"] <= anchor["value"])  # fmt: skip
    return out


def _summarise(e: dict[str, Any], refs: list[str], torch_first: dict[str, Any] | None) -> dict[str, Any]:
    from ..data.transcripts import error_rates

    row: dict[str, Any] = {"name": e["name"], "runtime": e["runtime"], "precision": e["precision"],
                           "size_mb": e["size_bytes"] / 1e6, "status": "ok"}  # fmt: skip
    if e.get("error") or e.get("skipped"):
        return {**row, "status": "skipped" if e.get("skipped") else "failed", "reason": e.get("skipped") or e.get("error")}
    results, first = e["results"], e["results"][0]
    latency = [v for r in results for v in r["latency_ms"]]
    windows = [w for r in results for w in r["windows"]]
    rates = error_rates(refs, first["texts"])
    ref = torch_first or first
    ref_wer = error_rates(refs, ref["texts"])["wer"]
    seconds = sum(latency) / 1000 / len(results)
    row.update(
        device=first.get("device"), runs=len(latency), rounds=len(results),
        load_s=float(np.median([r["load_s"] for r in results])),
        first_inference_ms=float(np.median([r["first_inference_ms"] for r in results])),
        p50_ms=_pct(latency, 50), p90_ms=_pct(latency, 90), p99_ms=_pct(latency, 99), mean_ms=float(np.mean(latency)),
        std_ms=float(np.std(latency)), round_p50_ms=[_pct(r["latency_ms"], 50) for r in results],
        throughput_per_s=1000.0 / float(np.mean(latency)), batch=1,
        rtf=seconds / first["audio_s"],
        encoder_ms_p50=_median_ms(windows, "encoder_s"),
        first_token_ms_p50=_median_ms(windows, "first_token_s"),
        per_token_ms_p50=_median_ms([w for w in windows if w["tokens"] > 1], "per_token_s"),
        tokens_per_clip=float(np.mean([w["tokens"] for w in windows])),
        peak_rss_mb=float(max(r["peak_rss_mb"] for r in results)),
        rss_before_load_mb=float(np.median([r["rss_before_load_mb"] for r in results])),
        versions=first.get("versions", {}), pids=[r["pid"] for r in results],
        metric="wer", value=rates["wer"], cer=rates["cer"], torch_value=ref_wer,
        delta_points=100 * (ref_wer - rates["wer"]) + 0.0, delta=None,
        agreement=float(np.mean([a == b for a, b in zip(first["tokens"], ref["tokens"])])),
        texts=first["texts"],
    )  # fmt: skip
    return row


def benchmark_transcription(
    bundle_dir: Path, manifest: dict[str, Any], opts: Any, profile: Profile, progress: Callable[[str, int, int], None] | None
) -> dict[str, Any]:
    """The report of ``harness.benchmark`` for a transcription bundle (see the module docstring)."""
    threads = opts.threads or profile.resolved_threads()
    entries = _entries(bundle_dir, profile, opts.artifacts, opts.torch, opts.anchor)
    clips, refs, origin = eval_clips(bundle_dir, opts.data, opts.samples)
    transport = transport_for(profile)
    device = {k: v for k, v in asdict(profile.device).items() if k != "threads"}
    clean_stale(tempfile.gettempdir(), prefix=STAGE_PREFIX)
    with tempfile.TemporaryDirectory(prefix=f"{STAGE_PREFIX}.{os.getpid()}-", suffix=".tmp") as tmp:
        stage = Path(tmp)
        build_stage(stage)
        np.savez(stage / "clips.npz", audio=np.concatenate(clips).astype(np.float32), lengths=np.array([len(c) for c in clips]))
        remote = transport.prepare(stage, {e["name"]: e["path"] for e in entries if e["runtime"] != "torch"})
        try:
            total, done = opts.rounds * len(entries), 0
            for rnd in range(opts.rounds):
                for e in entries[rnd % len(entries) :] + entries[: rnd % len(entries)]:
                    done += 1
                    if progress:
                        progress(f"round {rnd + 1}/{opts.rounds}: {e['name']}", done, total)
                    if e.get("error") or e.get("skipped"):
                        continue
                    torch = e["runtime"] == "torch"
                    where = str(e["path"].resolve()) if torch else remote[e["name"]]
                    args = ["--artifact", where, "--inputs", "clips.npz", "--transcribe", "--warmup", str(min(opts.warmup, 2)),
                            "--threads", str(threads), "--device", json.dumps(device)]  # fmt: skip
                    if e["runtime"] in ("torch", "faster-whisper"):
                        args += ["--runtime", e["runtime"]]
                    result = transport.run(args, opts.timeout)
                    if result.get("ok"):
                        e.setdefault("results", []).append(result)
                    elif result.get("unavailable") and profile.accelerator:
                        for other in entries:
                            if other["runtime"] == e["runtime"]:
                                other["skipped"] = result["error"]
                    else:
                        e["error"] = result["error"]
        finally:
            transport.close()
    machine = next((r["machine"] for e in entries for r in e.get("results", [])), None)
    torch_first = next((e["results"][0] for e in entries if e["runtime"] == "torch" and e.get("results")), None)
    rows = [_summarise(e, refs, torch_first) for e in entries]
    budgets = profile.modality_budgets.get(BUDGET_SECTION, {})
    for row in rows:
        row["budgets"] = check_budgets(row, budgets) if row["status"] == "ok" else {}
    mark_slower_than_fp32(rows)
    deploy = choose_deploy(rows, "transcription")
    return {
        "format": "edgetl-benchmark", "version": 1,
        "bundle": {"path": str(bundle_dir), "arch": f"{manifest['family']}:{manifest['arch']}", "task": "transcription"},
        "target": {"name": profile.name, "profile": str(profile.path), "description": profile.description,
                   "connection": transport.describe(), "budgets": budgets},
        "protocol": {"threads": threads, "warmup": min(opts.warmup, 2), "runs": len(clips) * opts.rounds, "rounds": opts.rounds,
                     "min_seconds_per_round": 0.0, "batch": 1, "fresh_process_per_round": True, "interleaved": True,
                     "eval_samples": len(clips), "eval_data": origin, "references": refs,
                     "transcription": {"audio_s": round(sum(len(c) for c in clips) / SAMPLE_RATE, 2), "decoding": "greedy, no timestamps",
                                       "window_s": float(manifest["preprocess"]["max_audio_seconds"])}},
        "machine": machine, "rows": rows, "deploy": deploy, "anchor": _anchor_comparison(rows, deploy["choice"]),
    }  # fmt: skip
