"""faster-whisper, the tool people already run CTranslate2 Whisper with, as a benchmark's anchor row.

It decodes the same CTranslate2 folder as edgetl's ``ctranslate2`` artifact (``edgetl export --target ctranslate2
--quantize int8-dynamic``), greedy and without timestamps, with the interface of ``transcriber.Transcriber`` that the
benchmark runner needs (``window_tokens``, ``decode``, ``stats``). Settings (``SETTINGS``): beam 1, one
temperature and no fallback, no compression-ratio, log-prob or no-speech thresholds (nothing is re-decoded or
dropped), no previous-text conditioning, prompt or hotwords, no VAD, English, the model's own suppress list and
the artifact's token limit (``decoding.max_new_tokens``).
faster-whisper pads the log-mel features with 0.0 after the clip where edgetl pads the audio (as
transformers does), so a token can differ; it reports no encoder or per-token split (those cells stay empty).
Needs ``pip install edgetl[anchor]`` (faster-whisper); a device without it gets a one-line error.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .base import DeviceOptions, read_artifact_manifest
from .errors import EdgetlError

COMPUTE_TYPE = "int8"  # faster-whisper's own recommendation on CPUs
SETTINGS: dict[str, Any] = dict(
    language="en",
    task="transcribe",
    beam_size=1,
    best_of=1,
    temperature=[0.0],
    compression_ratio_threshold=None,
    log_prob_threshold=None,
    no_speech_threshold=None,
    condition_on_previous_text=False,
    initial_prompt=None,
    prefix=None,
    hotwords=None,
    suppress_blank=True,
    without_timestamps=True,
    word_timestamps=False,
    vad_filter=False,
    hallucination_silence_threshold=None,
)


class FasterWhisper:
    """faster-whisper's ``WhisperModel`` on a CTranslate2 Whisper folder (an edgetl ctranslate2 artifact)."""

    def __init__(self, path: str | Path, options: DeviceOptions | None = None) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise EdgetlError("the faster-whisper anchor needs faster-whisper: pip install 'edgetl[anchor]'") from None
        from tokenizers import Tokenizer

        self.path = Path(path)
        try:
            config = json.loads((self.path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EdgetlError(
                f"{self.path} is not a CTranslate2 Whisper folder ({type(exc).__name__}); export ctranslate2 first"
            ) from None
        self.suppress = [int(t) for t in config.get("suppress_ids", [])]
        self.max_new_tokens = int(read_artifact_manifest(self.path)["decoding"]["max_new_tokens"])  # as edgetl's loop
        threads = (options or DeviceOptions()).threads or 0
        self.model = WhisperModel(str(self.path), device="cpu", compute_type=COMPUTE_TYPE, cpu_threads=threads, num_workers=1)
        self.tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self.device = f"cpu ({self.model.model.compute_type})"
        self.stats: list[dict[str, Any]] = []

    def window_tokens(self, clip: np.ndarray) -> list[int]:
        """faster-whisper's tokens for one clip (its text tokens, joined over its segments)."""
        t0 = time.perf_counter()
        segments, _ = self.model.transcribe(
            np.asarray(clip, np.float32), suppress_tokens=list(self.suppress), max_new_tokens=self.max_new_tokens, **SETTINGS
        )
        tokens = [int(t) for s in segments for t in s.tokens]  # decoding runs while the generator is consumed
        self.stats.append({"encoder_s": None, "first_token_s": None, "per_token_s": None, "tokens": float(len(tokens)),
                           "total_s": time.perf_counter() - t0})  # fmt: skip
        return tokens

    def decode(self, tokens: list[int]) -> str:
        return str(self.tokenizer.decode(tokens, skip_special_tokens=True)).strip()
