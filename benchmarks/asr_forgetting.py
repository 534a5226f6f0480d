"""Forgetting: does fine-tuning Whisper on a domain vocabulary make it worse on real recorded speech?

    .venv/bin/python benchmarks/real_speech.py fetch --root runs/real-speech        # once (setup, online)
    .venv/bin/python benchmarks/asr_forgetting.py --root runs/real-speech whisper-tiny.en runs/asr-plant/held-decoder-e1

WER and CER (Whisper's English normaliser, ``edgetl.data.transcripts.error_rates``) of each model, PyTorch
greedy decoding (``transcribe_long``), per source of ``real_speech.py`` and overall; one thread. A model is a
Whisper name or folder, or a transcription bundle; the first is the baseline. A model already in
``results/asr_forgetting.json`` is not measured again (``--again``). Results: ``results/asr_forgetting.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import real_speech  # noqa: E402
from common import RESULTS, save_results  # noqa: E402

from edgetl.data.transcripts import error_rates  # noqa: E402
from edgetl.family.speech_asr import load_recognizer  # noqa: E402
from edgetl_runtime.audio import load_audio  # noqa: E402


def measure(model: str, root: Path, max_seconds: float | None = None) -> dict[str, dict[str, float]]:
    folder = Path(model) / "whisper"
    rec = load_recognizer(str(folder) if folder.is_dir() else model)
    out, refs, hyps = {}, [], []
    for name in real_speech.SOURCES:
        items = real_speech.load(root, name)
        if max_seconds is not None:  # a short-window model on the short clips it is for
            items = [(p, t) for p, t in items if len(load_audio(p)) <= max_seconds * 16000]
        if not items:
            continue
        t0 = time.perf_counter()
        heard = rec.transcribe_long([load_audio(p) for p, _ in items])
        texts = [t for _, t in items]
        out[name] = {**error_rates(texts, heard), "clips": len(items), "compute_s": round(time.perf_counter() - t0, 1)}
        refs, hyps = refs + texts, hyps + heard
    out["all"] = {**error_rates(refs, hyps), "clips": len(refs)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--root", type=Path, default=Path("runs/real-speech"))
    ap.add_argument("--again", action="store_true", help="measure models already in results/asr_forgetting.json again")
    ap.add_argument("--max-seconds", type=float, default=None, help="only clips this short (results/asr_forgetting_upto{S}s)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    name = "asr_forgetting" + (f"_upto{args.max_seconds:g}s" if args.max_seconds else "")
    old = RESULTS / f"{name}.json"
    results = json.loads(old.read_text())["models"] if old.exists() and not args.again else {}
    results = {m: results[m] if m in results else measure(m, args.root, args.max_seconds) for m in args.models}
    base = results[args.models[0]]["all"]["wer"]
    lines = [
        "| model | " + " | ".join(f"{s} WER" for s in (*real_speech.SOURCES, "all")) + " | change (points) |",
        "|---" * 6 + "|",
    ]
    for m, r in results.items():
        cells = " | ".join(f"{100 * r[s]['wer']:.2f}" if s in r else "-" for s in (*real_speech.SOURCES, "all"))
        lines.append(f"| {m} | {cells} | {100 * (r['all']['wer'] - base):+.2f} |")
    clips = {m: r["all"]["clips"] for m, r in results.items()}
    head = f"clips of at most {args.max_seconds:g} s" if args.max_seconds else "every clip"
    md = (f"# Forgetting on real recorded speech (WER %, PyTorch greedy; {head})\n\n{{{{machine}}}}"
          f"Clips per model: {clips}. Command: `.venv/bin/python benchmarks/asr_forgetting.py {' '.join(sys.argv[1:])}`.\n\n"
          + "\n".join(lines) + "\n")  # fmt: skip
    print(md)
    save_results(name, {"models": results, "root": str(args.root), "max_seconds": args.max_seconds}, md)


if __name__ == "__main__":
    main()
