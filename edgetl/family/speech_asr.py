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
from .speech import FRAMES_PER_SECOND, SAMPLE_RATE, _checked_builtin, _locate, positions_for

MAX_NEW_TOKENS = 224  # Whisper's own sample length: half the decoder's 448 positions


def strip_eos(row: list[int], eos: int) -> list[int]:
    """``generate``'s row without the end-of-text token and the padding after it."""
    return row[: row.index(eos)] if eos in row else row


def whisper_features(clips: list[np.ndarray], n_mels: int, frames: int) -> Any:
    """Whisper's own log-mel (``WhisperFeatureExtractor``: the audio zero-padded to 30 s) of each clip, cut to the
    encoder's first ``frames`` frames (a trimmed encoder's window; the padding frames past it hold the floor value,
    so the cut equals features computed for the shorter window). Returns a float32 tensor [B, n_mels, frames]."""
    from transformers import WhisperFeatureExtractor

    feats = WhisperFeatureExtractor(feature_size=n_mels)(clips, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
    return feats[..., :frames].contiguous()


def trim_encoder(model: Any, seconds: float, name: str = "Whisper") -> None:
    """Shorten ``model``'s encoder to ``seconds`` of audio in place (the first S*50 positions, as keyword spotting
    trims it): the encoder's attention and the cross-attention work then scale with S instead of 30 s."""
    positions = positions_for(seconds, int(model.config.max_source_positions), name)
    enc = model.model.encoder
    if positions == enc.embed_positions.weight.shape[0]:
        return
    weight = enc.embed_positions.weight.detach()[:positions].clone()
    enc.embed_positions = torch.nn.Embedding(positions, weight.shape[1])
    enc.embed_positions.weight = torch.nn.Parameter(weight, requires_grad=False)
    model.config.max_source_positions = positions
    enc.config.max_source_positions = positions
    if hasattr(enc, "max_source_positions"):
        enc.max_source_positions = positions


@dataclass
class Recognizer:
    """A Whisper model ready to transcribe 16 kHz mono clips (at most one window each: 30 s, or the trimmed
    encoder's ``seconds``) greedily."""

    model: Any  # WhisperForConditionalGeneration, eval mode
    tokenizer: Any  # tokenizers.Tokenizer
    generation: Any  # transformers.GenerationConfig: greedy, no timestamps
    source: str  # where it came from: "builtin", "folder" or "cache"
    folder: Path

    @property
    def seconds(self) -> float:
        """The encoder's window in seconds (30 unless trimmed)."""
        return float(self.model.config.max_source_positions) * 2 / FRAMES_PER_SECOND

    @property
    def frames(self) -> int:
        return int(self.model.config.max_source_positions) * 2

    @property
    def token_limit(self) -> int:
        """Tokens greedy decoding may generate after the prompt: Whisper's 224, fewer for a short decoder."""
        return min(MAX_NEW_TOKENS, int(self.model.config.max_target_positions) - 4)

    def transcribe(self, clips: list[np.ndarray], batch_size: int = 8, max_new_tokens: int = 128) -> list[str]:
        """The text of each clip (special tokens dropped, outer whitespace stripped)."""
        return [
            self.tokenizer.decode(ids, skip_special_tokens=True).strip()
            for ids in self.token_ids(clips, batch_size, max_new_tokens)
        ]

    def transcribe_long(self, clips: list[np.ndarray], batch_size: int = 8) -> list[str]:
        """Like ``transcribe`` for clips of any length: each is cut into windows of at most one window (at its quietest
        moments, ``edgetl_runtime.audio.split_windows``), transcribed, and the texts joined with a space."""
        from edgetl_runtime.audio import split_windows

        pieces = [split_windows(c, self.seconds) for c in clips]
        texts = iter(self.transcribe([p for ps in pieces for p in ps], batch_size))
        return [" ".join(t for t in (next(texts) for _ in ps) if t) for ps in pieces]

    def token_ids(self, clips: list[np.ndarray], batch_size: int = 8, max_new_tokens: int = 128) -> list[list[int]]:
        """Greedy output tokens of each clip, as PyTorch ``generate`` gives them (the reference for exports)."""
        out: list[list[int]] = []
        for i in range(0, len(clips), batch_size):
            for clip in clips[i : i + batch_size]:
                if len(clip) > self.seconds * SAMPLE_RATE:
                    raise EdgetlError(
                        f"a clip lasts {len(clip) / SAMPLE_RATE:.1f} s, more than the model's {self.seconds:g} s window; cut it"
                    )
            feats = whisper_features(clips[i : i + batch_size], self.model.config.num_mel_bins, self.frames)
            with torch.no_grad(), _quiet_generate():
                ids = self.model.generate(
                    feats,
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


def load_recognizer(arch: str = "whisper-tiny.en", max_audio_seconds: float | None = None) -> Recognizer:
    """The full Whisper ``arch`` (see the module docstring) with its tokenizer and greedy decoding settings;
    ``max_audio_seconds`` trims its encoder to that window (``trim_encoder``; a saved trimmed model is rebuilt
    trimmed from its config)."""
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
    if getattr(generation, "is_multilingual", False):  # English transcription, as the labels and the export's prompt
        generation.language, generation.task = "<|en|>", "transcribe"
    tokenizer_file = source.folder / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise EdgetlError(f"{source.folder} has no tokenizer.json; a Whisper folder for transcription needs its tokenizer")
    if max_audio_seconds is not None:  # positions_for refuses a window longer than the model's
        trim_encoder(model, max_audio_seconds, arch)
    return Recognizer(model.eval(), Tokenizer.from_file(str(tokenizer_file)), generation, source.kind, source.folder)
