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


def measure(model: str, root: Path) -> dict[str, dict[str, float]]:
    folder = Path(model) / "whisper"
    rec = load_recognizer(str(folder) if folder.is_dir() else model)
    out, refs, hyps = {}, [], []
    for name in real_speech.SOURCES:
        items = real_speech.load(root, name)
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
    args = ap.parse_args()
    torch.set_num_threads(1)
    old = RESULTS / "asr_forgetting.json"
    results = json.loads(old.read_text())["models"] if old.exists() and not args.again else {}
    results = {m: results[m] if m in results else measure(m, args.root) for m in args.models}  # measured once each
    base = results[args.models[0]]["all"]["wer"]
    lines = [
        "| model | " + " | ".join(f"{s} WER" for s in (*real_speech.SOURCES, "all")) + " | change (points) |",
        "|---" * 6 + "|",
    ]
    for m, r in results.items():
        cells = " | ".join(f"{100 * r[s]['wer']:.2f}" for s in (*real_speech.SOURCES, "all"))
        lines.append(f"| {m} | {cells} | {100 * (r['all']['wer'] - base):+.2f} |")
    md = "# Forgetting on real recorded speech (WER %, PyTorch greedy)\n\n" + "\n".join(lines) + "\n"
    print(md)
    save_results("asr_forgetting", {"models": results, "root": str(args.root)}, md)


if __name__ == "__main__":
    main()
