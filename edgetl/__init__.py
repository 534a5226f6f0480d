"""edgetl: fine-tune pretrained models for the edge, export them and prove every step.

Python API (the CLI is a thin layer over these):

    import edgetl
    bundle = edgetl.finetune("builtin:digits", out="runs/digits", strategy="two-phase")
    bundle = edgetl.load_bundle("runs/digits")
    edgetl.predict_files(bundle, ["some.png"])
    text = edgetl.finetune("builtin:fortunes-lang", out="runs/lang", strategy="linear")
    edgetl.predict_texts(text, ["Das ist ein Satz."])
    speech = edgetl.finetune("builtin:keywords", out="runs/keywords", strategy="two-phase")
    edgetl.predict_audio(speech, ["clip.wav"])
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .offline import enforce_offline

enforce_offline()  # before any hub client is imported

__version__ = "0.1.0"
# public name -> the module that defines it, imported on first use: ``import edgetl.x`` pays only for x
_LAZY = {
    "Bundle": "bundle",
    "load_bundle": "bundle",
    "EdgetlError": "errors",
    "FinetuneConfig": "train.config",
    "finetune": "train.finetune",
    "predict_audio": "predict",
    "predict_files": "predict",
    "predict_texts": "predict",
    "transcribe_files": "predict",
    "write_report": "report",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'edgetl' has no attribute {name!r}")
    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
