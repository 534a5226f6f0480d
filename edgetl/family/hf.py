"""What the transformers families (text, speech) share: the bundle sub-folder that rebuilds them, quiet
model building, look-ups in the local Hugging Face cache, and writing config/tokenizer files atomically."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..atomic import atomic_dir

BUNDLE_SUBDIR = "encoder"  # config.json (+ tokenizer files for text) inside a bundle


@contextmanager
def quiet_imports() -> Iterator[None]:
    """transformers imports torchao while building a model, and that import logs two torch deprecation
    warnings: not the user's concern."""
    log = logging.getLogger("torch.utils._pytree")
    old = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(old)


def short_reason(exc: BaseException) -> str:
    """The first sentence of a transformers error, without its advice about downloading from the Hub (edgetl is offline)."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    first = text.split(". ")[0].split(" If you were trying to load it from")[0]
    return first[:160]


def cached_folder(model_id: str) -> Path | None:
    """The snapshot folder of ``model_id`` in the local HF cache, if its config is there."""
    from huggingface_hub import try_to_load_from_cache

    try:
        hit = try_to_load_from_cache(model_id, "config.json")
    except ValueError:  # not a valid repo id (e.g. a path that does not exist)
        return None
    return Path(hit).parent if isinstance(hit, str) else None


def pretrained_saver(*parts: Any) -> Callable[[Path], None]:
    """``Backbone.save``: each part's ``save_pretrained`` into ``out/encoder`` (a temp folder, renamed)."""

    def save(out: Path) -> None:
        with atomic_dir(Path(out) / BUNDLE_SUBDIR) as tmp:
            for part in parts:
                part.save_pretrained(tmp)

    return save
