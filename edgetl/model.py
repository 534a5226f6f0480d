"""The fine-tunable model: a family's headless backbone plus edgetl's head.

``TransferModel(*inputs) = output(head(backbone(*inputs)))``. The head is dropout + one
linear layer (classes, or a single output for regression); for regression the
output layer maps back to target units with the training set's mean and std,
so exported artifacts give real values, not normalised ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .family import Backbone, get_family


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the architecture (stored in the manifest)."""

    family: str
    arch: str
    task: str  # "classification" | "regression"
    num_outputs: int
    dropout: float = 0.2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TargetScale(nn.Module):
    """y = x * std + mean, with the statistics as buffers (saved with the weights)."""

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


class TransferModel(nn.Module):
    def __init__(self, backbone: nn.Module, num_features: int, spec: ModelSpec) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(nn.Dropout(spec.dropout), nn.Linear(num_features, spec.num_outputs))
        self.output: nn.Module = TargetScale() if spec.task == "regression" else nn.Identity()
        if spec.task == "regression":  # start at the mean target
            nn.init.zeros_(self.head[1].weight)
            nn.init.zeros_(self.head[1].bias)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.output(self.head(features))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """One tensor for images and audio (log-mel frames); (input_ids, attention_mask) for text."""
        return self.forward_head(self.backbone(*inputs))


def build_model(
    spec: ModelSpec, weights: str | None = None, pretrained: bool = True, bundle_dir: str | None = None, **options: Any
) -> tuple[TransferModel, Backbone]:
    """Build the backbone through its family and put a fresh head on it (``bundle_dir``: rebuild a bundle's).

    ``options``: family-specific architecture options passed on to ``build`` (speech: ``max_audio_seconds``);
    a bundle's saved files already hold them."""
    backbone = get_family(spec.family).build(spec.arch, weights=weights, pretrained=pretrained, bundle_dir=bundle_dir, **options)
    return TransferModel(backbone.module, backbone.num_features, spec), backbone
