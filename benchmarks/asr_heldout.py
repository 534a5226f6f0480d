"""Does fine-tuning Whisper on a plant's vocabulary help on sentences and voices it never trained on?

    .venv/bin/python benchmarks/asr_heldout.py decoder:3                 # recipe = strategy:epochs[:extra flags]
    .venv/bin/python benchmarks/asr_heldout.py decoder:1 two-phase:3:--head-epochs=1

Synthesises benchmarks/data/plant_sentences.txt with 12 espeak-ng voices (8 train, 2 val, 2 test) and a quarter of
the sentences held out (``edgetl data sentences --held-out-sentences 0.25``: spoken by the val and test voices
only) into runs/asr-plant/held. The base tiny.en and each recipe's bundle (``edgetl finetune`` in its own process,
into runs/asr-plant/held-STRATEGY-eN[-FLAGS]; batch 8, no early stopping, no warm-up unless the flags say) transcribe the
test voices (PyTorch greedy); WER and CER after Whisper's English normaliser are reported for the trained and the
held-out sentences apart. Results merge into results/asr_heldout.{json,md} (a recipe run again replaces its row).
The issue's bar: held-out-sentence WER at most half the base model's.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, RESULTS, run_finetune, save_results  # noqa: E402

from edgetl.data.sentences import write_sentences  # noqa: E402
from edgetl.data.transcripts import error_rates, scan_transcripts  # noqa: E402
from edgetl.family.speech_asr import load_recognizer  # noqa: E402

TEXT = REPO / "benchmarks" / "data" / "plant_sentences.txt"


def score(model: str, data: Path) -> dict[str, dict[str, float]]:
    """WER/CER of ``model`` (a Whisper name or a bundle) on the test voices, by the metadata's sentence column."""
    kind = {row["file_name"]: row["sentence"] for row in csv.DictReader((data / "metadata.csv").open())}
    src = scan_transcripts(data)
    items = src.splits["test"]
    folder = Path(model) / "whisper"
    heard = load_recognizer(str(folder) if folder.is_dir() else model).transcribe([src.waveforms[t.path] for t in items])
    out = {}
    for which in ("trained", "held-out"):
        pick = [i for i, t in enumerate(items) if kind[str(Path(t.path).relative_to(data.resolve()))] == which]
        out[which] = {**error_rates([items[i].text for i in pick], [heard[i] for i in pick]), "clips": len(pick)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipes", nargs="*", help="strategy:epochs[:--flag=value,...]")
    ap.add_argument("--data", type=Path, default=REPO / "runs" / "asr-plant" / "held")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not (args.data / "metadata.csv").exists():
        write_sentences(TEXT, args.data, voices=12, held_out=0.25)
    old = RESULTS / "asr_heldout.json"
    rows = json.loads(old.read_text())["rows"] if old.exists() else {}
    if "base" not in rows:
        rows["base"] = {"model": "whisper-tiny.en", "test": score("whisper-tiny.en", args.data)}
    for recipe in args.recipes:
        strategy, epochs, *extra = recipe.split(":")
        flags = [f for part in extra for f in part.split(",") if f]
        slug = "".join(c if c.isalnum() or c in ".-" else "_" for c in "_".join(f.lstrip("-") for f in flags))
        out = args.data.parent / (f"held-{strategy}-e{epochs}" + (f"-{slug}" if slug else ""))
        cli = ["--strategy", strategy, "--epochs", epochs, "--batch-size", "8", "--patience", "0", "--warmup-epochs", "0"]
        cli += [x for f in flags for x in f.split("=", 1)]
        manifest = run_finetune(str(args.data), out, cli)
        m = manifest["metrics"]
        rows[recipe] = {"model": str(out.relative_to(REPO)), "args": cli, "test": score(str(out), args.data),
                        "val_wer": m["val"]["wer"], "best_epoch": m["best_epoch"], "epochs": m["epochs_run"],
                        "wall_time_s": m["wall_time_s"], "peak_rss_mb": m["peak_rss_mb"],
                        "train_clips": manifest["data"]["splits"]["train"]}  # fmt: skip
    base = rows["base"]["test"]["held-out"]["wer"]
    lines = ["# Whisper tiny.en fine-tuned on a plant's vocabulary: unseen voices, trained and held-out sentences", "",
             "{{machine}}", f"Data: `{TEXT.relative_to(REPO)}`, 12 espeak-ng voices (8 train / 2 val / 2 test), a quarter "
             "of the sentences spoken by val and test voices only. Test voices only below; WER/CER after Whisper's "
             "English normaliser, PyTorch greedy. Command: `.venv/bin/python benchmarks/asr_heldout.py RECIPE...`.", "",
             "| model | args | test trained-sentence WER (CER) | test held-out-sentence WER (CER) | held-out vs base | "
             "train time s | peak RSS MB |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in rows.items():
        t, h = r["test"]["trained"], r["test"]["held-out"]
        lines.append(f"| {name} | `{' '.join(r.get('args', []))}` | {t['wer']:.3f} ({t['cer']:.3f}) | "
                     f"{h['wer']:.3f} ({h['cer']:.3f}) | {h['wer'] / base:.2f}x | {r.get('wall_time_s', '')} | "
                     f"{r.get('peak_rss_mb', '')} |")  # fmt: skip
    md = "\n".join(lines) + "\n"
    print(md)
    save_results("asr_heldout", {"data": str(args.data.relative_to(REPO)), "text": str(TEXT.relative_to(REPO)), "rows": rows}, md)


if __name__ == "__main__":
    main()
