"""What differs between images, texts and audio clips when fine-tuning, in one place.

Recognising a dataset (audio first: an audio folder may hold a stray .txt; then
text; anything else is images), reading it, the model families that fit it,
its samples' key in ``splits.json``, turning the backbone's preprocessing
contract into the datasets of each split, and the bundle's input spec. The
recipe (``train/finetune.py``) calls these and stays the same for every modality.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import EdgetlError

MODALITIES = ("image", "text", "audio")
NOUN = {"image": "images", "text": "texts", "audio": "audio clips"}
KIND = {"image": "vision", "text": "text", "audio": "speech"}  # what a model of each modality is called
FAMILY_MODALITY = {"timm": "image", "torchvision": "image", "text": "text", "speech": "audio"}
SAMPLE_KEY = {"image": "path", "text": "text", "audio": "path"}  # the field that names a sample in splits.json


def detect(path: str | Path, columns: Any) -> str:
    """ "audio", "text" or "image": what ``path`` holds (``columns``: the text data's column names)."""
    from .audio import looks_like_audio
    from .text import looks_like_text

    if looks_like_audio(path):
        return "audio"
    return "text" if looks_like_text(path, columns) else "image"


def check_family(family: str, modality: str, model: str, data: str) -> None:
    """A one-line error when the model's family does not take this kind of data."""
    takes = FAMILY_MODALITY.get(family, "image")
    if takes != modality:
        raise EdgetlError(
            f"model {model} is a {KIND[takes]} model but {data} holds {NOUN[modality]}; "
            f"pick a {KIND[modality]} model (see `edgetl models`)"
        )


def scan(modality: str, path: Path, labels: list[str] | None, columns: Any, max_bad_fraction: float) -> Any:
    """The samples of every split (an ``ImageSource``, ``TextSource`` or ``AudioSource``)."""
    if modality == "audio":
        from .audio import scan_audio

        return scan_audio(path, labels, max_bad_fraction)
    if modality == "text":
        from .text import scan_texts

        return scan_texts(path, labels, columns)
    from .sources import scan_images

    return scan_images(path, labels, max_bad_fraction)


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


def preprocess_for(
    modality: str, pretrained: dict[str, Any], model: str, image_size: int | None, max_length: int | None
) -> dict[str, Any]:
    """The bundle's preprocessing: the backbone's contract plus the user's overrides."""
    if modality == "text":
        limit = pretrained["max_positions"]
        if max_length and max_length > limit:
            raise EdgetlError(f"--max-length {max_length} is more than {model} takes ({limit} positions)")
        return {**pretrained, "max_length": max_length or pretrained["max_length"]}
    if modality == "audio":
        from .audio import audio_preprocess

        facts = audio_preprocess(pretrained["max_audio_seconds"], pretrained["n_mels"])
        return {**pretrained, **facts, "clip": "trimmed or zero-padded at the end to max_audio_seconds"}
    from .preprocess import resolve_preprocess

    return resolve_preprocess(pretrained, {"image_size": image_size})


def datasets(
    modality: str,
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
    """One torch Dataset per split; only the training split is augmented."""
    out: dict[str, Any] = {}
    for name, samples in splits.items():
        aug = augment if name == "train" else "none"
        if modality == "text":
            from .text import TextDataset

            out[name] = TextDataset(samples, processor, preprocess["max_length"], task, labels, seed=seed)
        elif modality == "audio":
            from .audio import AudioDataset

            out[name] = AudioDataset(
                samples,
                preprocess,
                task,
                labels,
                augment=aug,
                seed=seed,
                waveforms=source.waveforms,
                noise_dir=noise_dir if name == "train" else None,
            )
        else:
            from .dataset import ImageDataset

            out[name] = ImageDataset(samples, preprocess, task, labels, augment=aug, seed=seed)
    return out


def input_spec(modality: str, preprocess: dict[str, Any]) -> dict[str, Any]:
    """The bundle manifest's input: name, batch-1 shape, dtype and layout.

    Audio is ``NCT``: batch, mel bins as channels, time frames (10 ms each), the layout of a 1-D
    convolution's input, which is what Whisper's first layer is."""
    if modality == "text":  # token ids and mask, batch x tokens (dynamic up to max_length)
        return {"name": preprocess["input_names"], "shape": [1, preprocess["max_length"]], "dtype": "int64", "layout": "NT"}
    if modality == "audio":
        return {
            "name": preprocess["input_names"][0],
            "shape": [1, preprocess["n_mels"], preprocess["frames"]],
            "dtype": "float32",
            "layout": "NCT",
        }
    _, h, w = preprocess["input_size"]
    return {"name": "pixel_values", "shape": [1, 3, h, w], "dtype": "float32", "layout": "NCHW"}
