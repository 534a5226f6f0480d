"""Keep every library edgetl drives away from the network."""

from __future__ import annotations

import importlib
import os
from contextlib import contextmanager
from types import ModuleType
from typing import Iterator

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "ORT_DISABLE_TELEMETRY": "1",  # onnxruntime's device id + event store under ~/.cache/Microsoft
    "NNCF_CI": "1",
}


def enforce_offline() -> None:
    """Set the opt-outs that make hub clients read only their local caches."""
    for key, value in _OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


@contextmanager
def telemetry_opt_out() -> Iterator[None]:
    """OpenVINO's and NNCF's telemetry (re)decides whether to phone home and write
    ~/intel on import and on every tool call; it opts out when ``CI`` is true.
    ``CI`` is set only inside this block, so nothing else sees it."""
    old = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = old


def import_quietly(name: str) -> ModuleType:
    """Import a module with telemetry opted out (see ``telemetry_opt_out``)."""
    with telemetry_opt_out():
        return importlib.import_module(name)
