"""Audio clips: folders or CSVs of WAV/FLAC/OGG files, as Whisper log-mel features (``edgetl_runtime/audio.py``).

Inputs are ``NCT`` float32: batch, mel bins as channels, time frames (10 ms each), the layout of
a 1-D convolution's input, which is what Whisper's first layer is.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgetl_runtime.audio import AUDIO_SUFFIXES, features
from edgetl_runtime.base import Batch

from ..data.audio_augment import AUDIO_AUGMENT_PRESETS
from ..errors import EdgetlError
from .base import Say, fact, files_under

if TYPE_CHECKING:
    import torch

PROTOCOL_FACTS = ("features", "max_audio_seconds", "n_mels", "frames")  # what a benchmark report records


def clip_window(waveforms: dict[str, Any], sample_rate: int = 16000) -> float | None:
    """The audio window when every clip has the same length (within one 10 ms hop): that length,
    rounded up to the encoder's 0.02 s step; None when lengths differ or exceed Whisper's 30 s."""
    lengths = [len(x) for x in waveforms.values()]
    if not lengths or max(lengths) - min(lengths) > sample_rate // 100:
        return None
    step = sample_rate // 50  # 0.02 s: two 10 ms mel frames, one encoder position
    seconds = round(math.ceil(max(lengths) / step) * 0.02, 2)
    return seconds if seconds <= 30 else None


def clip_range(waveforms: dict[str, Any], sample_rate: int = 16000) -> str:
    """'0.52-3.10 s': the shortest and longest clip."""
    lengths = [len(x) / sample_rate for x in waveforms.values()] or [0.0]
    return f"{min(lengths):.2f}-{max(lengths):.2f} s"


class AudioModality:
    name = "audio"
    noun = "audio clips"
    data_word = "audio"
    a_name = "an audio"
    kind = "speech"
    precedence = 0  # first: an audio folder may hold a stray .txt
    sample_key = "path"
    result_key = "file"
    raw_inputs = "audio files"
    predict_api = "predict_audio"
    default_model = "whisper-tiny.en"
    default_augment = "light"
    augments: tuple[str, ...] = tuple(AUDIO_AUGMENT_PRESETS)
    strong_augment = "strong"
    own_options: tuple[tuple[str, str], ...] = (("max_audio_seconds", "--max-audio-seconds"), ("noise_dir", "--noise-dir"))
    layout_io = False
    artifact_input = "float32 log-mel features [batch, mels, frames]"
    token_inputs = False
    pictured = False

    def looks_like(self, path: Path, columns: Any) -> bool:
        from ..data.audio import looks_like_audio

        return looks_like_audio(path)

    def scan(
        self,
        path: Path,
        labels: list[str] | None = None,
        columns: Any = None,
        max_bad_fraction: float = 0.1,
        progress: bool = True,
    ) -> Any:
        from ..data.audio import scan_audio

        return scan_audio(path, labels, max_bad_fraction, progress=progress)

    def unlabelled(self, path: Path, labels: list[str], columns: Any) -> Any:
        from ..data.unlabelled import scan_target_files

        return scan_target_files(path, AUDIO_SUFFIXES, "audio clip", labels)

    def sample_files(self, source: Any) -> list[str]:
        return [s.path for split in source.splits.values() for s in split]

    def skipped_facts(self, source: Any) -> dict[str, Any]:
        return {
            "skipped_clips": len(source.skipped),
            "skipped": [{"path": p, "reason": why} for p, why in source.skipped[:20]],
        }

    def config_from_data(self, cfg: Any, source: Any, say: Say) -> dict[str, Any]:
        """--max-audio-seconds, else the clips' own length when they all share one (said so), else nothing:
        the family's default."""
        if cfg.max_audio_seconds is not None:
            return {"max_audio_seconds": cfg.max_audio_seconds}
        seconds = clip_window(source.waveforms)
        if seconds is None:
            return {}
        say(f"audio window: {seconds:g} s, the length of every clip (--max-audio-seconds changes it)")
        return {"max_audio_seconds": seconds}

    def preprocess(self, pretrained: dict[str, Any], cfg: Any) -> dict[str, Any]:
        from ..data.audio import audio_preprocess

        facts = audio_preprocess(pretrained["max_audio_seconds"], pretrained["n_mels"])
        return {**pretrained, **facts, "clip": "trimmed or zero-padded at the end to max_audio_seconds"}

    def config_from_model(self, cfg: Any, preprocess: dict[str, Any], source: Any, say: Say) -> dict[str, Any]:
        if cfg.max_audio_seconds is not None:
            return {}
        seconds = preprocess["max_audio_seconds"]  # the family's default window, recorded so a resumed run checks it
        say(
            f"audio window: {seconds:g} s, the model's default (clips last {clip_range(source.waveforms)}: longer ones "
            f"are cut, shorter ones padded); --max-audio-seconds changes it"
        )
        return {"max_audio_seconds": seconds}

    def datasets(
        self,
        splits: dict[str, list[Any]],
        preprocess: dict[str, Any],
        processor: Any,
        source: Any,
        task: str,
        labels: list[str],
        augment: str,
        seed: int,
        noise_dir: str | None = None,
    ) -> dict[str, Any]:
        from ..data.audio import AudioDataset

        return {
            name: AudioDataset(
                samples,
                preprocess,
                task,
                labels,
                augment=augment if name == "train" else "none",
                seed=seed,
                waveforms=source.waveforms,
                noise_dir=noise_dir if name == "train" else None,
            )
            for name, samples in splits.items()
        }

    def input_spec(self, preprocess: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": preprocess["input_names"][0],
            "shape": [1, preprocess["n_mels"], preprocess["frames"]],
            "dtype": "float32",
            "layout": "NCT",
        }

    def summary(self, preprocess: dict[str, Any]) -> str:
        p = preprocess
        return (
            f"{fact(p, 'features')} {fact(p, 'n_mels')} mels, {fact(p, 'max_audio_seconds')} s window ({fact(p, 'frames')} frames) "
            f"at {fact(p, 'sample_rate')} Hz ({fact(p, 'files')}/), {fact(p, 'pooling')} pooling"
        )

    def check_export(self, bundle: Any) -> None:
        return None

    def calibration_items(self, source: str) -> list[str]:
        return files_under(source, "audio files", AUDIO_SUFFIXES)

    def samples(self, bundle: Any, items: list[str], length: int | None) -> Batch:
        try:
            return features(list(items), bundle.preprocess, str(bundle.path))
        except EdgetlError as exc:
            raise EdgetlError(f"cannot read a sample clip ({exc}); is the training data still there?") from None

    def eval_inputs(self, bundle: Any, items: list[str], origin: str) -> Batch:
        try:
            return features(list(items), bundle.preprocess, str(bundle.path))
        except EdgetlError as exc:
            raise EdgetlError(f"{origin}: {exc}; is the data still there?") from None

    def protocol_facts(self, preprocess: dict[str, Any]) -> dict[str, Any]:
        return {"audio": {k: preprocess[k] for k in PROTOCOL_FACTS}}

    def unpad(self, batch: Batch) -> Batch:
        return batch

    def encode(self, model: Any, raw: list[str]) -> Batch:
        return model.encode_audio(raw)

    def model_inputs(self, batch: Batch, names: list[str]) -> list[torch.Tensor]:
        import torch

        return [torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))]


AUDIO = AudioModality()
