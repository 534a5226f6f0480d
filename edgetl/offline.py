"""Keep every library edgetl drives away from the network."""

from __future__ import annotations

import os

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}


def enforce_offline() -> None:
    """Set the opt-outs that make hub clients read only their local caches."""
    for key, value in _OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
