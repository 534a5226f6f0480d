"""Whisper on CTranslate2 (numpy + ctranslate2 only): greedy, no-timestamps decoding of log-mel features.

The folder is what ``edgetl.export.asr_ctranslate2.convert`` writes (``model.bin``, ``config.json``,
``vocabulary.json``, ...). Features are ``audio.log_mel(samples_16k, 30.0, n_mels)`` stacked into float32
``[batch, n_mels, 3000]``.

Decoding matches transformers' ``generate`` with the source folder's ``generation_config.json``:
``suppress_tokens=[-1]`` bans the model config's ``suppress_ids`` (the converter copied the generation
config's ``suppress_tokens``) at every step, as ``SuppressTokensLogitsProcessor`` does, and
``suppress_blank=True`` bans its ``suppress_ids_begin`` (``begin_suppress_tokens``) at the first generated
position only, as ``SuppressTokensAtBeginLogitsProcessor`` does. A prompt ending in ``<|notimestamps|>``
turns CTranslate2's timestamp rules off. Beam size 1, top-1 sampling: plain argmax.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np

from .errors import EdgetlError

FRAMES = 3000  # Whisper's 30 s window at 100 frames a second


def _vocabulary(folder: Path) -> dict[str, int]:
    """Token -> id from the folder's ``vocabulary.json`` (or the older ``vocabulary.txt``)."""
    try:
        if (folder / "vocabulary.json").is_file():
            tokens = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
        else:
            tokens = (folder / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError) as exc:
        raise EdgetlError(f"cannot read the vocabulary of {folder}: {exc}") from None
    return {t: i for i, t in enumerate(tokens)}


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall seconds of ``repeats`` calls of ``fn``, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class Ct2Whisper:
    """A CTranslate2 Whisper model on the CPU.

    ``threads``: CTranslate2's intra-op threads (None: its default); ``compute_type``: "default" computes
    in the type the model was saved in where this CPU has it (int8 -> int8 matmuls with float32 elsewhere;
    float16 -> float32, CPUs have no float16 compute here), or any CTranslate2 compute type."""

    def __init__(self, folder: Path, threads: int | None = None, compute_type: str = "default") -> None:
        self.folder = Path(folder)
        try:
            self.model = ctranslate2.models.Whisper(
                str(self.folder), device="cpu", compute_type=compute_type, inter_threads=1, intra_threads=threads or 0
            )
        except (RuntimeError, ValueError) as exc:
            raise EdgetlError(f"CTranslate2 cannot load {self.folder}: {exc}") from None
        vocab = _vocabulary(self.folder)
        self.n_mels: int = self.model.n_mels
        self.compute_type: str = self.model.compute_type
        self.eot_id = vocab["<|endoftext|>"]
        self.no_timestamps_id = vocab["<|notimestamps|>"]
        lang_task = [vocab["<|en|>"], vocab["<|transcribe|>"]] if self.model.is_multilingual else []
        # the decoder start, forced language/task (multilingual: English transcription), <|notimestamps|>:
        # what transformers' generate puts before the first generated token
        self.prompt: list[int] = [vocab["<|startoftranscript|>"], *lang_task, self.no_timestamps_id]

    def _features(self, features: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.ndim != 3 or x.shape[1] != self.n_mels or not 2 <= x.shape[2] <= FRAMES or x.shape[2] % 2:
            raise EdgetlError(
                f"Whisper features must be float32 [batch, {self.n_mels}, frames], an even number of frames up to "
                f"{FRAMES} (the encoder's window: 3000 unless trimmed), not {list(x.shape)}"
            )
        return x

    def encode(self, features: np.ndarray) -> Any:
        """float32 log-mel ``[B, n_mels, 3000]`` -> the encoder output, a CPU ``ctranslate2.StorageView``
        ``[B, 1500, d_model]`` (``np.asarray`` reads it) that ``generate`` takes instead of features."""
        return self.model.encode(ctranslate2.StorageView.from_array(self._features(features)), to_cpu=True)

    def _generate(self, x: Any, prompt: list[int], max_new_tokens: int, suppress_eot: bool = False) -> list[list[int]]:
        if max_new_tokens < 1:
            raise EdgetlError(f"max_new_tokens must be at least 1, not {max_new_tokens}")
        if not prompt or prompt[-1] != self.no_timestamps_id:
            raise EdgetlError(
                f"the prompt must end with <|notimestamps|> ({self.no_timestamps_id}): decoding is without timestamps"
            )
        if isinstance(x, np.ndarray):
            x = ctranslate2.StorageView.from_array(self._features(x))  # the array stays alive in this frame
        # CTranslate2 decodes min(max_length // 2, max_length - (len(prompt) - 1)) tokens at most:
        # this max_length makes that exactly max_new_tokens
        max_length = max(2 * max_new_tokens, max_new_tokens + len(prompt) - 1)
        results = self.model.generate(
            x,
            [list(prompt)] * x.shape[0],
            beam_size=1,
            num_hypotheses=1,
            sampling_topk=1,
            max_length=max_length,
            suppress_blank=True,
            suppress_tokens=[-1, self.eot_id] if suppress_eot else [-1],
        )
        return [list(r.sequences_ids[0]) for r in results]

    def generate(self, encoded_or_features: Any, prompt: list[int], max_new_tokens: int) -> list[list[int]]:
        """Greedy decoding after ``prompt`` (the same for every row; it must end with ``<|notimestamps|>``).

        Returns, per row, only the generated tokens: without the prompt and without the end-of-text token;
        at most ``max_new_tokens`` of them (an end-of-text in that budget ends the row early, as in
        transformers). ``len(prompt) + max_new_tokens`` must fit the decoder's positions (448 for Whisper)."""
        return self._generate(encoded_or_features, prompt, max_new_tokens)

    def token_ids(self, features: np.ndarray, prompt: list[int] | None = None, max_new_tokens: int = 128) -> list[list[int]]:
        """``generate(encode(features), prompt or self.prompt, max_new_tokens)``."""
        return self._generate(self.encode(features), self.prompt if prompt is None else prompt, max_new_tokens)

    # ------------------------------------------------------------------ timing
    def encoder_seconds(self, features: np.ndarray, repeats: int = 5) -> float:
        """Median seconds of ``encode(features)`` (after one warm-up call)."""
        x = self._features(features)
        return _median_seconds(lambda: self.encode(x), repeats)

    def first_token_seconds(self, encoded: Any, prompt: list[int] | None = None, repeats: int = 5) -> float:
        """Median seconds from the encoder output to the first generated token: the prompt through the
        decoder (filling its self- and cross-attention caches) and one greedy step. Add ``encoder_seconds``
        for the time to the first token from the features."""
        prompt = self.prompt if prompt is None else prompt
        return _median_seconds(lambda: self._generate(encoded, prompt, 1), repeats)

    def per_token_seconds(self, encoded: Any, prompt: list[int] | None = None, tokens: int = 32, repeats: int = 3) -> float:
        """Seconds per further decoder step: (median time of ``tokens`` steps - median time of 1 step) / (tokens - 1).
        End-of-text is suppressed in these runs so that each makes exactly that many steps (a step costs the
        same whatever token it picks)."""
        if tokens < 2:
            raise EdgetlError(f"per_token_seconds needs tokens >= 2, not {tokens}")
        prompt = self.prompt if prompt is None else prompt
        one = _median_seconds(lambda: self._generate(encoded, prompt, 1, suppress_eot=True), repeats)
        many = _median_seconds(lambda: self._generate(encoded, prompt, tokens, suppress_eot=True), repeats)
        return max(0.0, many - one) / (tokens - 1)

    def timings(
        self, features: np.ndarray, prompt: list[int] | None = None, tokens: int = 32, repeats: int = 3
    ) -> dict[str, float]:
        """``encoder_s``, ``first_token_s`` (after the encoder), ``per_token_s`` for ``features``; see each method."""
        encoded = self.encode(features)
        return {
            "encoder_s": self.encoder_seconds(features, repeats),
            "first_token_s": self.first_token_seconds(encoded, prompt, repeats),
            "per_token_s": self.per_token_seconds(encoded, prompt, tokens, repeats),
        }
