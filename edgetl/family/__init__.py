"""Model families: the only place that knows timm, torchvision or transformers.

A family turns an architecture name into a headless backbone with pretrained
weights, names its layer groups for freezing, and declares its preprocessing
(or, for text, hands over its tokenizer; for speech, its log-mel front-end).
Families register themselves by name with the modality they take (the family list is this
registry and nothing else); ``resolve_model`` maps a user's model
string (``mobilenet_v2``, ``tv:mobilenet_v3_small``, ``timm:mobilenetv3_small_100``)
to a family and architecture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..errors import EdgetlError
from ..modality import MODALITIES, Modality, get_modality
from .base import Backbone, Family, WeightSource

FAMILIES: dict[str, Family] = {}
PRECEDENCE: dict[str, int] = {}  # which family an unprefixed model name is tried with first (lowest first)
T = TypeVar("T")


def register_family(name: str, modality: str, precedence: int = 50) -> Callable[[type[T]], type[T]]:
    """Class decorator: instantiate the family and store it under ``name``; it takes data of ``modality``, and an
    unprefixed model name is offered to families in ``precedence`` order (lowest first)."""
    if modality not in MODALITIES:
        raise ValueError(f"family {name!r}: unknown modality {modality!r}; known: {', '.join(MODALITIES)}")

    def wrap(cls: type[T]) -> type[T]:
        if name in FAMILIES:
            raise ValueError(f"family {name!r} registered twice")
        setattr(cls, "modality", modality)  # noqa: B010  (``Family.modality``: set by registration, declared once)
        FAMILIES[name] = cls()  # type: ignore[assignment]
        PRECEDENCE[name] = precedence
        return cls

    return wrap


def get_family(name: str) -> Family:
    _load_builtin_families()
    if name not in FAMILIES:
        raise EdgetlError(f"unknown model family '{name}'; known: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def family_names() -> tuple[str, ...]:
    """Every registered family (the built-in ones imported first)."""
    _load_builtin_families()
    return tuple(FAMILIES)


def check_family(family: str, modality: Modality, model: str, data: str) -> None:
    """A one-line error when the model's family does not take this kind of data."""
    takes = get_modality(get_family(family).modality)
    if takes is not modality:
        raise EdgetlError(
            f"model {model} is a {takes.kind} model but {data} holds {modality.noun}; "
            f"pick a {modality.kind} model (see `edgetl models`)"
        )


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
    for name in sorted(FAMILIES, key=lambda n: PRECEDENCE[n]):
        if FAMILIES[name].knows(model):
            return name, model
    raise EdgetlError(
        f"unknown model '{model}'; use a timm or torchvision name (see `edgetl models`), e.g. mobilenet_v2, "
        f"or a text encoder: minilm-l6, a Hugging Face folder, or a model id in the local HF cache, "
        f"or a speech encoder: whisper-tiny.en, a Whisper folder (Hugging Face or CTranslate2) or HF-cache id"
    )


def _load_builtin_families() -> None:
    from . import speech, text, vision  # noqa: F401  (registers "speech", "text", "timm" and "torchvision")


__all__ = [
    "Backbone",
    "Family",
    "WeightSource",
    "FAMILIES",
    "check_family",
    "family_names",
    "register_family",
    "get_family",
    "resolve_model",
]
