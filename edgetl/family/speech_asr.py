"""Whisper as a speech recogniser: the full encoder-decoder (``WhisperForConditionalGeneration``), its tokenizer
and a greedy, no-timestamps decoding configuration, from the same places as ``speech.py`` finds encoders
(the built-in tiny.en, a Hugging Face or CTranslate2 Whisper folder, the local HF cache). Offline; remote
code is never run.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import EdgetlError
from . import ctranslate2_whisper as ct2
from .hf import quiet_imports, short_reason
from .speech import SAMPLE_RATE, _checked_builtin, _locate

MAX_NEW_TOKENS = 224  # Whisper's own sample length: half the decoder's 448 positions


def strip_eos(row: list[int], eos: int) -> list[int]:
    """``generate``'s row without the end-of-text token and the padding after it."""
    return row[: row.index(eos)] if eos in row else row


@dataclass
class Recognizer:
    """A Whisper model ready to transcribe 16 kHz mono clips (at most 30 s each) greedily."""

    model: Any  # WhisperForConditionalGeneration, eval mode
    tokenizer: Any  # tokenizers.Tokenizer
    generation: Any  # transformers.GenerationConfig: greedy, no timestamps
    source: str  # where it came from: "builtin", "folder" or "cache"
    folder: Path

    def transcribe(self, clips: list[np.ndarray], batch_size: int = 8, max_new_tokens: int = 128) -> list[str]:
        """The text of each clip (special tokens dropped, outer whitespace stripped)."""
        return [
            self.tokenizer.decode(ids, skip_special_tokens=True).strip()
            for ids in self.token_ids(clips, batch_size, max_new_tokens)
        ]

    def transcribe_long(self, clips: list[np.ndarray], batch_size: int = 8) -> list[str]:
        """Like ``transcribe`` for clips of any length: each is cut into windows of at most 30 s (at its quietest
        moments, ``edgetl_runtime.audio.split_windows``), transcribed, and the texts joined with a space."""
        from edgetl_runtime.audio import split_windows

        pieces = [split_windows(c, 30.0) for c in clips]
        texts = iter(self.transcribe([p for ps in pieces for p in ps], batch_size))
        return [" ".join(t for t in (next(texts) for _ in ps) if t) for ps in pieces]

    def token_ids(self, clips: list[np.ndarray], batch_size: int = 8, max_new_tokens: int = 128) -> list[list[int]]:
        """Greedy output tokens of each clip, as PyTorch ``generate`` gives them (the reference for exports)."""
        from transformers import WhisperFeatureExtractor

        extract = WhisperFeatureExtractor(feature_size=self.model.config.num_mel_bins)
        out: list[list[int]] = []
        for i in range(0, len(clips), batch_size):
            for clip in clips[i : i + batch_size]:
                if len(clip) > 30 * SAMPLE_RATE:
                    raise EdgetlError(f"a clip lasts {len(clip) / SAMPLE_RATE:.1f} s, more than Whisper's 30 s window; cut it")
            feats = extract(clips[i : i + batch_size], sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True)
            with torch.no_grad(), _quiet_generate():
                ids = self.model.generate(
                    feats.input_features,
                    attention_mask=feats.attention_mask,
                    generation_config=self.generation,
                    max_new_tokens=min(max_new_tokens, self.model.config.max_target_positions - 4),  # start, prompt
                )
            out += [row.tolist() for row in ids]
        return out


@contextmanager
def _quiet_generate() -> Iterator[None]:
    """transformers' advice about generation defaults and masks stays off the user's terminal."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)


def load_recognizer(arch: str = "whisper-tiny.en") -> Recognizer:
    """The full Whisper ``arch`` (see the module docstring) with its tokenizer and greedy decoding settings."""
    from tokenizers import Tokenizer

    source = _locate(arch)
    with quiet_imports():
        from transformers import GenerationConfig, WhisperForConditionalGeneration
    if source.format == "ct2":
        if source.builtin is not None:
            _checked_builtin(source.builtin, source.folder / "model.bin")
        config, sd = ct2.load_whisper(source.folder)
        model = WhisperForConditionalGeneration(config)
        model.load_state_dict(sd, strict=True)
        generation = ct2.generation_config(source.folder)
    else:
        try:
            model = WhisperForConditionalGeneration.from_pretrained(source.folder, local_files_only=True, trust_remote_code=False)
            generation = GenerationConfig.from_pretrained(source.folder, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise EdgetlError(f"cannot load Whisper {arch} from {source.folder}: {short_reason(exc)}") from None
        generation.do_sample, generation.num_beams, generation.return_timestamps = False, 1, False
    tokenizer_file = source.folder / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise EdgetlError(f"{source.folder} has no tokenizer.json; a Whisper folder for transcription needs its tokenizer")
    return Recognizer(model.eval(), Tokenizer.from_file(str(tokenizer_file)), generation, source.kind, source.folder)
