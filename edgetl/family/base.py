"""What a family hands to training: a headless backbone and the facts about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import nn


@dataclass(frozen=True)
class WeightSource:
    """Where pretrained weights came from (written to the manifest)."""

    kind: str  # "file" | "cache" | "builtin" | "none"
    path: str | None = None
    sha256: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Backbone:
    """A model without its classifier: ``module(x)`` returns pooled features (B, num_features)."""

    module: nn.Module
    num_features: int
    groups: list[list[str]]  # layer groups, input -> output, each a list of module names
    preprocess: dict[str, Any]  # the pretrained input contract (before user overrides)
    weights: WeightSource = field(default_factory=lambda: WeightSource("none"))


class Family(Protocol):
    """One family of architectures (timm, torchvision, ...)."""

    name: str

    def knows(self, arch: str) -> bool:
        """Whether ``arch`` is an architecture of this family."""

    def list_archs(self) -> list[str]:
        """The architectures edgetl has checked in this family."""

    def build(self, arch: str, weights: str | None, pretrained: bool) -> Backbone:
        """Build a headless backbone: weights from ``weights`` file, caches or built-in when ``pretrained``."""
