"""Model families: the only place that knows timm, torchvision or transformers.

A family turns an architecture name into a headless backbone with pretrained
weights, names its layer groups for freezing, and declares its preprocessing
(or, for text, hands over its tokenizer; for speech, its log-mel front-end).
Families register themselves by name; ``resolve_model`` maps a user's model
string (``mobilenet_v2``, ``tv:mobilenet_v3_small``, ``timm:mobilenetv3_small_100``)
to a family and architecture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..errors import EdgetlError
from .base import Backbone, Family, WeightSource

FAMILIES: dict[str, Family] = {}
T = TypeVar("T")


def register_family(name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: instantiate the family and store it under ``name``."""

    def wrap(cls: type[T]) -> type[T]:
        if name in FAMILIES:
            raise ValueError(f"family {name!r} registered twice")
        FAMILIES[name] = cls()  # type: ignore[assignment]
        return cls

    return wrap


def get_family(name: str) -> Family:
    _load_builtin_families()
    if name not in FAMILIES:
        raise EdgetlError(f"unknown model family '{name}'; known: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def resolve_model(model: str) -> tuple[str, str]:
    """``[family:]arch`` -> (family, arch); without a prefix the first family that knows it wins."""
    _load_builtin_families()
    aliases = {"tv": "torchvision"}
    if ":" in model:
        prefix, arch = model.split(":", 1)
        family = get_family(aliases.get(prefix, prefix))
        if not family.knows(arch):
            raise EdgetlError(f"model '{arch}' is not a {family.name} architecture; see `edgetl models`")
        return family.name, arch
    for name in ("torchvision", "timm", "speech", "text"):  # speech before text: text takes any folder with a config.json
        if FAMILIES[name].knows(model):
            return name, model
    raise EdgetlError(
        f"unknown model '{model}'; use a timm or torchvision name (see `edgetl models`), e.g. mobilenet_v2, "
        f"or a text encoder: minilm-l6, a Hugging Face folder, or a model id in the local HF cache, "
        f"or a speech encoder: whisper-tiny.en, a Whisper folder (Hugging Face or CTranslate2) or HF-cache id"
    )


def _load_builtin_families() -> None:
    from . import speech, text, vision  # noqa: F401  (registers "speech", "text", "timm" and "torchvision")


__all__ = ["Backbone", "Family", "WeightSource", "FAMILIES", "register_family", "get_family", "resolve_model"]
