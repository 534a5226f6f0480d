"""faster-whisper as the outside anchor for edgetl's CTranslate2 Whisper: the same converted folder, decoded by
the tool people already use, with its settings pinned to plain greedy, no-timestamps decoding.

    .venv/bin/python benchmarks/asr_anchor.py --threads 2     # built-in tiny.en -> int8, espeak-ng sentences

``faster_whisper_transcribe`` runs ``faster_whisper.WhisperModel(folder, device="cpu", compute_type="int8",
cpu_threads=threads)`` with beam_size=1, best_of=1, temperature=[0.0] (no fallback), no compression-ratio,
log-prob or no-speech thresholds (nothing is re-decoded or dropped), without_timestamps=True,
condition_on_previous_text=False, no initial prompt, prefix or hotwords, vad_filter=False, language="en",
and the model's own suppress list (``config.json``'s ``suppress_ids``, passed explicitly). What still differs
from ``edgetl_runtime.ctranslate2_rt.Ct2Whisper`` (and from transformers' ``generate``):

- features: faster-whisper computes the log-mel of the clip plus 160 zero samples only, then pads the
  *features* with 0.0 to 3000 frames; edgetl (like ``WhisperFeatureExtractor``) pads the *audio* with zeros to
  30 s, so its padding frames hold the floor value ``(max - 8 + 4) / 4`` (about -0.6), not 0.0. The clip's own
  frames agree to float rounding (its STFT is its own numpy code). The encoder therefore sees different
  input after the speech, which can change a token;
- suppress list: faster-whisper always adds <|transcribe|>, <|translate|>, <|startoftranscript|>,
  <|startofprev|>, <|startoflm|> and <|nospeech|> to it (``get_suppressed_tokens``); the result lists any of
  those the model's list lacks (none for tiny.en);
- length: it decodes at most 224 tokens (448 // 2), like Whisper; a segment whose text is cut there is not
  re-decoded here. Its text is the decoded tokens of each segment, joined and stripped.

``main`` converts the built-in tiny.en (as a bundle saves it) to int8, speaks a few sentences with espeak-ng,
and prints faster-whisper's, Ct2Whisper's and PyTorch's texts, their agreement, the feature difference and the
seconds per clip (the machine named).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgetl_runtime.faster_whisper_anchor import SETTINGS  # one copy: the benchmark's anchor row


def faster_whisper_transcribe(ct2_folder: Path, clips: list[np.ndarray], threads: int) -> dict[str, Any]:
    """Texts, tokens and seconds per clip (features, encoder and decoding; the first clip includes warm-up)
    of faster-whisper on 16 kHz float32 ``clips``, greedy and without timestamps (see the module docstring)."""
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    suppress = json.loads((Path(ct2_folder) / "config.json").read_text(encoding="utf-8"))["suppress_ids"]
    t0 = time.perf_counter()
    model = WhisperModel(str(ct2_folder), device="cpu", compute_type="int8", cpu_threads=threads, num_workers=1)
    load_s = time.perf_counter() - t0
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en")
    added = sorted(set(get_suppressed_tokens(tokenizer, list(suppress))) - set(suppress))
    texts, tokens, seconds = [], [], []
    for clip in clips:
        t0 = time.perf_counter()
        segments, _ = model.transcribe(np.asarray(clip, np.float32), suppress_tokens=list(suppress), **SETTINGS)
        segments = list(segments)  # decoding happens while the generator is consumed
        seconds.append(time.perf_counter() - t0)
        texts.append("".join(s.text for s in segments).strip())
        tokens.append([t for s in segments for t in s.tokens])
    return {"texts": texts, "tokens": tokens, "seconds": seconds, "load_s": load_s, "compute_type": model.model.compute_type,
            "suppress_tokens_added": added, "settings": {k: v for k, v in SETTINGS.items() if v is not None}}  # fmt: skip


def _feature_gap(clip: np.ndarray, n_mels: int) -> dict[str, float]:
    """Largest |difference| between faster-whisper's and edgetl's log-mel, in the clip's frames and after them."""
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor

    from edgetl_runtime.audio import log_mel

    theirs = pad_or_trim(FeatureExtractor(feature_size=n_mels)(clip))
    ours = log_mel(clip, 30.0, n_mels)
    frames = len(clip) // 160
    return {"clip_frames": float(np.abs(theirs[:, :frames] - ours[:, :frames]).max()),
            "padding_frames": float(np.abs(theirs[:, frames:] - ours[:, frames:]).max())}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--voices", type=int, default=3)
    args = ap.parse_args()
    import torch
    from common import machine_info

    from edgetl.data.sentences import write_sentences
    from edgetl.data.transcripts import normalise, scan_transcripts
    from edgetl.export.asr_ctranslate2 import convert
    from edgetl.family.speech_asr import load_recognizer
    from edgetl_runtime.audio import log_mel
    from edgetl_runtime.ctranslate2_rt import Ct2Whisper

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "s.txt").write_text("please turn on the kitchen lights\nclose the valve before the rinse\nstart the pump\n")
        src = scan_transcripts(write_sentences(root / "s.txt", root / "ds", voices=args.voices, progress=False))
        items = [t for split in src.splits.values() for t in split]
        clips = [src.waveforms[t.path] for t in items]
        rec = load_recognizer("whisper-tiny.en")
        rec.model.save_pretrained(root / "hf", safe_serialization=True)
        rec.generation.save_pretrained(root / "hf")
        shutil.copyfile(rec.folder / "tokenizer.json", root / "hf" / "tokenizer.json")
        (root / "int8").mkdir()
        info = convert(root / "hf", root / "int8", "int8")
        fw = faster_whisper_transcribe(root / "int8", clips, args.threads)
        m = Ct2Whisper(root / "int8", threads=args.threads)
        t0 = time.perf_counter()
        ours = [rec.tokenizer.decode(r, skip_special_tokens=True).strip()
                for r in m.token_ids(np.stack([log_mel(c, 30.0, m.n_mels) for c in clips]))]  # fmt: skip
        ours_s = (time.perf_counter() - t0) / len(clips)
        t0 = time.perf_counter()
        torch_texts = rec.transcribe(clips)
        torch_s = (time.perf_counter() - t0) / len(clips)
    same = lambda a, b: sum(normalise(x) == normalise(y) for x, y in zip(a, b)) / len(clips)  # noqa: E731
    machine = machine_info()
    result = {
        "model": "whisper-tiny.en (built-in) -> CTranslate2 int8", "converter": info["converter"],
        "machine": f"{machine['cpu']} ({', '.join(machine['isa'])}), {args.threads} threads",
        "clips": len(clips), "faster_whisper": {k: fw[k] for k in ("compute_type", "load_s", "suppress_tokens_added", "settings")},
        "seconds_per_clip": {"faster_whisper": float(np.median(fw["seconds"])), "ct2whisper_batch": ours_s, "torch_fp32_batch": torch_s},
        "same_normalised_text": {"faster_whisper_vs_ct2whisper": same(fw["texts"], ours), "ct2whisper_vs_torch": same(ours, torch_texts),
                                 "faster_whisper_vs_torch": same(fw["texts"], torch_texts)},
        "feature_gap_max": _feature_gap(clips[0], m.n_mels),
        "examples": [{"said": t.text, "faster_whisper": a, "ct2whisper": b, "torch": c}
                     for t, a, b, c in zip(items, fw["texts"], ours, torch_texts)],
    }  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
