"""What a family hands to training: a headless backbone and the facts about it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the registry and the facts need no torch; building a backbone does
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
    processor: Any = None  # turns raw inputs into model inputs when that is not image preprocessing (a tokenizer)
    save: Callable[[Path], None] | None = None  # writes what a bundle needs besides weights to rebuild it (into a folder)


class Family(Protocol):
    """One family of architectures (timm, torchvision, ...)."""

    name: str
    modality: str  # the data it takes ("image", "text", "audio"): set by ``register_family``

    def knows(self, arch: str) -> bool:
        """Whether ``arch`` is an architecture of this family."""

    def list_archs(self) -> list[str]:
        """The architectures edgetl has checked in this family."""

    def build(self, arch: str, weights: str | None, pretrained: bool, bundle_dir: str | None = None) -> Backbone:
        """Build a headless backbone: weights from ``weights`` file, caches or built-in when ``pretrained``.

        ``bundle_dir``: a bundle folder whose saved files (``Backbone.save``) describe the architecture.
        A family may take keyword-only architecture options of its own (speech: ``max_audio_seconds``);
        ``build_model`` passes them on, and ``Backbone.save`` must record them for ``bundle_dir``."""


def complete_groups(module: nn.Module, groups: list[list[str]]) -> list[list[str]]:
    """Put any parameter-holding module that no group covers into the last group."""
    covered = [name for g in groups for name in g]

    def is_covered(name: str) -> bool:
        return any(name == c or name.startswith(c + ".") for c in covered)

    leftovers = [
        n for n, m in module.named_modules() if n and any(True for _ in m.parameters(recurse=False)) and not is_covered(n)
    ]
    if leftovers:
        groups = [*groups[:-1], groups[-1] + leftovers]
    return [g for g in groups if g]
