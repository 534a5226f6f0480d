"""How well does the built-in Whisper tiny.en transcribe a team's own vocabulary before any fine-tuning?

    .venv/bin/python benchmarks/asr_baseline.py            # benchmarks/data/plant_sentences.txt, 12 voices

Synthesises the sentences with `edgetl data sentences` (espeak-ng; split by voice) into
runs/asr-plant/data, transcribes the val and test voices (never heard in training) with the base model
(PyTorch greedy, no timestamps, 30 s window), and writes results/asr_baseline.{json,md}: WER and CER
after Whisper's English normaliser, the words most often wrong, examples, and the real-time factor
(seconds of compute per second of audio, batch 8, the machine named). This is the baseline issue 15's
fine-tuning must halve on unseen voices.
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import time
from pathlib import Path

import torch

from edgetl.data.sentences import write_sentences
from edgetl.data.transcripts import error_rates, normalise, scan_transcripts
from edgetl.family.speech_asr import load_recognizer

HERE = Path(__file__).parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", default=str(HERE / "data" / "plant_sentences.txt"))
    ap.add_argument("--data", default="runs/asr-plant/data")
    ap.add_argument("--voices", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = Path(args.data)
    if not (data / "metadata.csv").exists():
        write_sentences(args.text, data, voices=args.voices)
    src = scan_transcripts(data)
    rec = load_recognizer("whisper-tiny.en")
    result: dict = {"model": "whisper-tiny.en (built-in, PyTorch greedy)", "data": str(data), "text": args.text,
                    "voices": json.loads((data / "voices.json").read_text())["splits"], "splits": {}}  # fmt: skip
    wrong: collections.Counter = collections.Counter()
    examples = []
    for split in ("val", "test"):
        items = src.splits[split]
        clips = [src.waveforms[t.path] for t in items]
        t0 = time.perf_counter()
        heard = rec.transcribe(clips, batch_size=8)
        seconds = time.perf_counter() - t0
        audio = sum(len(c) for c in clips) / 16000
        result["splits"][split] = {**error_rates([t.text for t in items], heard), "clips": len(items),
                                   "audio_s": round(audio, 1), "rtf": round(seconds / audio, 3)}  # fmt: skip
        for t, h in zip(items, heard):
            ref, hyp = normalise(t.text).split(), set(normalise(h).split())
            wrong.update(w for w in ref if w not in hyp)
            if normalise(t.text) != normalise(h) and len(examples) < 12:
                examples.append({"said": t.text, "heard": h})
    result["most_missed_words"] = wrong.most_common(20)
    result["examples"] = examples
    result["machine"] = f"{platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}"
    out = HERE / "results" / "asr_baseline"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Built-in Whisper tiny.en on a plant's vocabulary (before fine-tuning)", "",
             f"Data: {args.text} spoken by espeak-ng voices (`edgetl data sentences`, {args.voices} voices, split by voice); "
             f"{result['machine']}. WER/CER after Whisper's English normaliser.", "",
             "| split | clips | audio s | WER | CER | RTF |", "|---|---|---|---|---|---|"]  # fmt: skip
    for split, r in result["splits"].items():
        lines.append(f"| {split} | {r['clips']} | {r['audio_s']} | {r['wer']:.3f} | {r['cer']:.3f} | {r['rtf']:.3f} |")
    lines += ["", "Most missed words: " + ", ".join(f"{w} ({n})" for w, n in result["most_missed_words"]), "", "Examples:", ""]
    lines += [f'- said "{e["said"]}", heard "{e["heard"]}"' for e in examples]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
