"""Speed and accuracy of every transcription artifact of a bundle, with faster-whisper as the anchor.

    .venv/bin/edgetl export runs/asr-plant/held-decoder-e3 --target all --quantize all     # first
    .venv/bin/python benchmarks/asr_export.py runs/asr-plant/held-decoder-e3 --threads 2

Each artifact in BUNDLE/export (``.rejected`` ones too, marked) transcribes the bundle's held-out clips (its
test split) one clip at a time through ``edgetl_runtime.load_transcriber``, in a fresh process of its own, after
one warm-up clip. Per artifact: WER and CER (Whisper's English normaliser), the real-time factor (compute seconds
per second of audio, features to text), the median encoder latency (features included), first-token latency (the
prompt step), per-token decoder latency, size on disk and the process's peak RSS. Two more rows, measured in the
same run on the same clips and threads: PyTorch ``generate`` (fp32, one clip at a time) and **faster-whisper**
(CTranslate2 int8 of the same fine-tuned weights, greedy, no timestamps: ``asr_anchor.py`` pins the settings).
The summary names the fastest edgetl artifact whose WER is no worse than faster-whisper's and the speed ratio.
Nothing else should run on the machine meanwhile. Results: results/asr_export.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, save_results  # noqa: E402

SAMPLE_RATE = 16000


def held_out(bundle: Path) -> tuple[list[np.ndarray], list[str]]:
    """The bundle's test clips (else val), as its export's parity check uses them."""
    from edgetl_runtime.audio import load_audio

    splits = json.loads((bundle / "splits.json").read_text())
    rows = splits.get("test") or splits["val"]
    return [load_audio(r["path"]) for r in rows], [r["text"] for r in rows]


def _summary(texts: list[str], refs: list[str], seconds: list[float], audio_s: float) -> dict[str, Any]:
    from edgetl.data.transcripts import error_rates

    return {**error_rates(refs, texts), "rtf": sum(seconds) / audio_s, "clip_ms_p50": 1000 * float(np.median(seconds))}


def one_artifact(folder: Path, bundle: Path, threads: int) -> dict[str, Any]:
    """Runs in its own process: the figures of one artifact."""
    from edgetl_runtime import DeviceOptions
    from edgetl_runtime.base import peak_rss_mb
    from edgetl_runtime.transcriber import load_transcriber

    clips, refs = held_out(bundle)
    t = load_transcriber(folder, DeviceOptions(threads=threads))
    t.transcribe([clips[0]])  # warm-up
    t.stats.clear()
    texts, seconds = [], []
    for clip in clips:
        s = time.perf_counter()
        texts.append(t.decode(t.window_tokens(clip)))
        seconds.append(time.perf_counter() - s)
    st = t.stats
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return {**_summary(texts, refs, seconds, sum(len(c) for c in clips) / SAMPLE_RATE),
            "encoder_ms_p50": 1000 * float(np.median([s["encoder_s"] for s in st])),
            "first_token_ms_p50": 1000 * float(np.median([s["first_token_s"] for s in st])),
            "per_token_ms_p50": 1000 * float(np.median([s["per_token_s"] for s in st if s["tokens"] > 1])),
            "tokens_mean": float(np.mean([s["tokens"] for s in st])), "size_mb": size / 1e6,
            "peak_rss_mb": peak_rss_mb(), "texts": texts}  # fmt: skip


def one_torch(bundle: Path, threads: int) -> dict[str, Any]:
    import torch

    from edgetl.family.speech_asr import load_recognizer
    from edgetl_runtime.base import peak_rss_mb

    torch.set_num_threads(threads)
    clips, refs = held_out(bundle)
    rec = load_recognizer(str(bundle / "whisper"))
    rec.transcribe([clips[0]], batch_size=1)
    texts, seconds = [], []
    for clip in clips:
        s = time.perf_counter()
        texts += rec.transcribe([clip], batch_size=1, max_new_tokens=224)
        seconds.append(time.perf_counter() - s)
    size = sum(p.stat().st_size for p in (bundle / "whisper").glob("*.safetensors"))
    return {**_summary(texts, refs, seconds, sum(len(c) for c in clips) / SAMPLE_RATE), "size_mb": size / 1e6,
            "peak_rss_mb": peak_rss_mb(), "texts": texts}  # fmt: skip


def one_faster_whisper(bundle: Path, threads: int) -> dict[str, Any]:
    from asr_anchor import faster_whisper_transcribe

    from edgetl.export.asr_ctranslate2 import convert
    from edgetl_runtime.base import peak_rss_mb

    clips, refs = held_out(bundle)
    with tempfile.TemporaryDirectory() as tmp:
        convert(bundle / "whisper", Path(tmp), "int8")
        faster_whisper_transcribe(Path(tmp), clips[:1], threads)  # warm-up (a model of its own)
        fw = faster_whisper_transcribe(Path(tmp), clips, threads)
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    return {**_summary(fw["texts"], refs, fw["seconds"], sum(len(c) for c in clips) / SAMPLE_RATE),
            "size_mb": size / 1e6, "peak_rss_mb": peak_rss_mb(), "compute_type": fw["compute_type"],
            "settings": fw["settings"], "texts": fw["texts"]}  # fmt: skip


def in_process(kind: str, target: Path, bundle: Path, threads: int) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter (its own peak RSS, nothing cached from the others)."""
    cmd = [sys.executable, __file__, "--one", kind, str(target), str(bundle), "--threads", str(threads)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{kind} {target}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one", nargs=3, metavar=("KIND", "TARGET", "BUNDLE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        kind, target, bundle = args.one
        fn = {"artifact": lambda: one_artifact(Path(target), Path(bundle), args.threads),
              "torch": lambda: one_torch(Path(bundle), args.threads),
              "faster-whisper": lambda: one_faster_whisper(Path(bundle), args.threads)}[kind]  # fmt: skip
        print(json.dumps(fn()))
        return
    bundle = args.bundle.resolve()
    rows: dict[str, dict[str, Any]] = {}
    folders = sorted(p for p in (bundle / "export").iterdir() if (p / "edgetl.json").is_file())
    for folder in folders:
        manifest = json.loads((folder / "edgetl.json").read_text())
        if manifest.get("task") != "transcription":
            continue
        print(f"measuring {folder.name}", flush=True)
        rows[folder.name] = {**in_process("artifact", folder, bundle, args.threads), "runtime": manifest.get("runtime"),
                             "rejected": folder.name.endswith(".rejected")}  # fmt: skip
    print("measuring pytorch", flush=True)
    rows["pytorch-fp32"] = {**in_process("torch", bundle, bundle, args.threads), "runtime": "torch"}
    print("measuring faster-whisper", flush=True)
    rows["faster-whisper-int8"] = {**in_process("faster-whisper", bundle, bundle, args.threads), "runtime": "faster-whisper"}
    clips, refs = held_out(bundle)
    anchor = rows["faster-whisper-int8"]
    ok = {k: r for k, r in rows.items() if r["runtime"] not in ("torch", "faster-whisper") and not r.get("rejected")}
    fair = {k: r for k, r in ok.items() if r["wer"] <= anchor["wer"] + 1e-9}
    best = min(fair or ok, key=lambda k: (fair or ok)[k]["rtf"])
    ratio = anchor["rtf"] / rows[best]["rtf"]
    lines = [f"# Transcription artifacts of `{bundle.relative_to(REPO)}` against faster-whisper", "", "{{machine}}",
             f"{len(clips)} held-out clips ({sum(len(c) for c in clips) / SAMPLE_RATE:.0f} s of audio), one at a time, "
             f"{args.threads} threads, greedy without timestamps. RTF: compute seconds per audio second (lower is "
             "faster). Command: `.venv/bin/python benchmarks/asr_export.py BUNDLE --threads N`.", "",
             "| artifact | WER | CER | RTF | clip ms p50 | encoder ms p50 | first token ms | per token ms | size MB | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    cell = lambda r, k, f: format(r[k], f) if k in r else ""  # noqa: E731
    for name, r in rows.items():
        lines.append(f"| {name}{' (rejected)' if r.get('rejected') else ''} | {r['wer']:.4f} | {r['cer']:.4f} | {r['rtf']:.4f} | "
                     f"{r['clip_ms_p50']:.0f} | {cell(r, 'encoder_ms_p50', '.0f')} | {cell(r, 'first_token_ms_p50', '.1f')} | "
                     f"{cell(r, 'per_token_ms_p50', '.2f')} | {r['size_mb']:.0f} | {r['peak_rss_mb']:.0f} |")  # fmt: skip
    verdict = (f"**{best}** is the fastest edgetl artifact with WER no worse than faster-whisper int8 "
               if fair else f"No edgetl artifact reaches faster-whisper's WER; the fastest is **{best}**, ")  # fmt: skip
    lines += ["", verdict + f"(WER {rows[best]['wer']:.4f} vs {anchor['wer']:.4f}); it transcribes **{ratio:.2f}x** "
              f"{'as fast as' if ratio >= 1 else 'the speed of'} faster-whisper (RTF {rows[best]['rtf']:.4f} vs {anchor['rtf']:.4f})."]  # fmt: skip
    md = "\n".join(lines) + "\n"
    print(md)
    save_results("asr_export", {"bundle": str(bundle.relative_to(REPO)), "threads": args.threads, "clips": len(clips),
                                "references": refs, "rows": rows, "best": best, "speed_ratio_vs_faster_whisper": ratio}, md)  # fmt: skip


if __name__ == "__main__":
    main()
