"""A fine-tuned model on disk: ``model.safetensors`` + ``edgetl.json``.

The manifest holds everything later stages need (family, architecture, task,
labels, preprocessing, input spec, weight source, training config, metrics,
versions); exporters and predictors read it, never training state. A folder is
a bundle only once ``edgetl.json`` exists: it is written last, atomically.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_path, write_json
from .errors import EdgetlError
from .model import ModelSpec, TransferModel, build_model
from .runtime.base import ManifestFacts

MANIFEST = "edgetl.json"
WEIGHTS = "model.safetensors"
SPLITS = "splits.json"  # the exact files of each split: calibration and parity samples for exporters
BUNDLE_FORMAT = "edgetl-bundle"


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("edgetl", "torch", "torchvision", "timm", "transformers", "tokenizers", "numpy", "pillow", "safetensors"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def save_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))


def read_manifest(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    mfile = path / MANIFEST
    if not mfile.is_file():
        raise EdgetlError(f"{path} is not an edgetl bundle (no {MANIFEST}); pass a folder written by `edgetl finetune`")
    try:
        manifest = json.loads(mfile.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgetlError(f"{mfile} is not valid JSON ({exc}); re-run `edgetl finetune` to rewrite it") from None
    if manifest.get("format") != BUNDLE_FORMAT:
        raise EdgetlError(f"{mfile} is not an edgetl bundle manifest (format is {manifest.get('format')!r})")
    return manifest


@dataclass
class Bundle(ManifestFacts):
    """A loaded bundle: its manifest and (lazily) its PyTorch model."""

    path: Path
    manifest: dict[str, Any]
    _model: TransferModel | None = field(default=None, repr=False)
    _processor: Any = field(default=None, repr=False)

    @property
    def model(self) -> TransferModel:
        if self._model is None:
            self._model, self._processor = _load_model(self.path, self.manifest)
        return self._model

    @property
    def processor(self) -> Any:
        """The text tokenizer saved in the bundle (None for images and audio)."""
        if self._model is None:
            self.model
        return self._processor

    @property
    def input_names(self) -> list[str]:
        name = self.manifest["input"]["name"]
        return list(name) if isinstance(name, list) else [name]

    def encode_texts(self, texts: list[str], length: int | None = None) -> dict[str, np.ndarray]:
        """Raw texts -> int64 token ids and attention mask with the bundle's own tokenizer, truncated at
        max_length and right-padded to ``length`` (default: the longest text)."""
        from .runtime.text import pad_ids

        ids = self.processor(list(texts), truncation=True, max_length=self.preprocess["max_length"])["input_ids"]
        width = length or max(len(i) for i in ids)
        return pad_ids(ids, width, int(self.processor.pad_token_id or 0), self.input_names)

    def encode_audio(self, files: list[str]) -> np.ndarray:
        """Audio files -> log-mel features float32 [B, n_mels, frames], computed as in training (``runtime/audio.py``)."""
        from .runtime.audio import features

        if self.modality != "audio":
            raise EdgetlError(f"{self.path} is not an audio bundle (modality {self.modality})")
        return features(files, self.preprocess, str(self.path))

    def predict(self, batch: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """Preprocessed float32 (NCHW images, NCT log-mel audio), or a dict of int64 token arrays (text) -> model outputs."""
        if isinstance(batch, dict):
            inputs = [torch.from_numpy(np.ascontiguousarray(batch[n], dtype=np.int64)) for n in self.input_names]
        else:
            inputs = [torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))]
        with torch.no_grad():
            return self.model(*inputs).numpy()


def _load_model(path: Path, manifest: dict[str, Any]) -> tuple[TransferModel, Any]:
    from safetensors.torch import load_file

    model, backbone = build_model(ModelSpec(**manifest["model"]), pretrained=False, bundle_dir=str(path))
    wfile = path / WEIGHTS
    if not wfile.is_file():
        raise EdgetlError(f"{path} has a manifest but no {WEIGHTS}; the bundle is incomplete, re-run `edgetl finetune`")
    try:
        model.load_state_dict(load_file(str(wfile)), strict=True)
    except Exception as exc:
        raise EdgetlError(f"{wfile} does not match the architecture in {MANIFEST} ({str(exc).splitlines()[0][:120]})") from None
    return model.eval(), backbone.processor


def load_bundle(path: str | Path) -> Bundle:
    """Open a bundle folder written by ``edgetl finetune``."""
    path = Path(path)
    return Bundle(path, read_manifest(path))


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    write_json(path / MANIFEST, {"format": BUNDLE_FORMAT, "version": 1, **manifest})
