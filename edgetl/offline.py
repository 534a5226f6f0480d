"""Keep every library edgetl drives away from the network."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

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
def scoped_env(key: str, value: str) -> Iterator[None]:
    """Set one environment variable for the duration of a block, then restore it."""
    old = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def telemetry_opt_out():
    """OpenVINO's and NNCF's telemetry (re)decides whether to phone home and write
    ~/intel on import and on every tool call; it opts out when ``CI`` is true.
    ``CI`` is set only inside this block, so nothing else sees it."""
    return scoped_env("CI", "true")


@contextmanager
def quiet(*loggers: str) -> Iterator[None]:
    """Where a converter talks (progress bars, NNCF tables, size reports; the named loggers). Nothing is
    swallowed any more: every export runs inside ``export.convert_log.captured``, so this output lands in the
    artifact's convert.log, and the terminal stays clean."""
    yield
