"""PyTorch predictor for a bundle: the reference the artifacts are measured against.

Unlike the runtimes in ``edgetl_runtime`` this one needs edgetl itself (and torch), so it
runs only where edgetl is installed, never on a runtime-only device; ``edgetl_runtime``
names it in its ``RUNTIMES`` table and imports it only when asked for ``runtime="torch"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl_runtime.base import Batch, DeviceOptions
from edgetl_runtime.errors import DeviceUnavailable

from .errors import EdgetlError
from .modality import get_modality


class TorchPredictor:
    def __init__(self, path: Path, manifest: dict[str, Any], options: DeviceOptions) -> None:
        import torch

        from .bundle import load_bundle

        if options.threads:
            torch.set_num_threads(options.threads)
        device = options.torch_device
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise DeviceUnavailable(f"torch {torch.__version__} here sees no CUDA device")
        self.bundle = load_bundle(path)
        self.manifest = manifest or self.bundle.manifest
        self.model = self.bundle.model.eval().to(device)
        self.device = device
        self._torch = torch

    def predict(self, batch: Batch) -> np.ndarray:
        torch = self._torch
        inputs = get_modality(self.bundle.modality).model_inputs(batch, self.bundle.input_names)  # pixels, features or token ids
        with torch.inference_mode():
            out = self.model(*(x.to(self.device) for x in inputs))
        return out.float().cpu().numpy()


class TorchTranscriber:
    """A transcription bundle's Whisper under PyTorch ``generate`` (greedy, no timestamps), with the device
    transcriber's interface (``window_tokens``, ``decode``, ``stats``): the reference row of a benchmark."""

    def __init__(self, path: str | Path, options: DeviceOptions) -> None:
        import torch

        from .bundle import ASR_DIR
        from .family.speech_asr import load_recognizer

        if options.threads:
            torch.set_num_threads(options.threads)
        if options.torch_device != "cpu":
            raise DeviceUnavailable("the PyTorch transcription row runs on the CPU only")
        folder = Path(path) / ASR_DIR
        if not (folder / "config.json").is_file():
            raise EdgetlError(f"{folder} is missing; pass a transcription bundle written by `edgetl finetune`")
        self.rec = load_recognizer(str(folder))
        self.eos, self.limit, self.device = int(self.rec.generation.eos_token_id), self.rec.token_limit, "cpu"
        self.stats: list[dict[str, float]] = []
        self._torch = torch

    def window_tokens(self, clip: np.ndarray) -> list[int]:
        """Greedy tokens of one window (prompt and end-of-text left out); timings appended to ``stats``."""
        import time

        from .family.speech_asr import _quiet_generate, strip_eos, whisper_features

        torch, model = self._torch, self.rec.model
        t0 = time.perf_counter()
        feats = whisper_features([np.asarray(clip, np.float32)], model.config.num_mel_bins, self.rec.frames)  # as the reference
        with torch.inference_mode(), _quiet_generate():
            encoded = model.model.encoder(feats)
            t1 = time.perf_counter()
            row = model.generate(encoder_outputs=encoded, generation_config=self.rec.generation, max_new_tokens=self.limit)[0]
        out = strip_eos([int(x) for x in row.tolist()], self.eos)  # as the export's parity reference reads generate
        total = time.perf_counter() - t0
        per = (total - (t1 - t0)) / (len(out) + 1)
        self.stats.append(
            {"encoder_s": t1 - t0, "first_token_s": per, "per_token_s": per, "tokens": float(len(out)), "total_s": total}
        )
        return out

    def decode(self, tokens: list[int]) -> str:
        return str(self.rec.tokenizer.decode(tokens, skip_special_tokens=True)).strip()
