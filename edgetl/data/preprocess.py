"""The image preprocessing spec, resolved from the model's pretrained config.

The spec is a dict (also written to the bundle manifest), resolved like timm's
``resolve_data_config``: explicit overrides beat the model's pretrained config,
which beats the defaults. Evaluation preprocessing lives in ``edgetl_runtime.image``
(Pillow and numpy only), so an exported artifact on a device is fed exactly what the
PyTorch model saw.
"""

from __future__ import annotations

import math
from typing import Any

from edgetl_runtime.image import RESAMPLE

DEFAULT_PREPROCESS: dict[str, Any] = {
    "input_size": [3, 224, 224],
    "interpolation": "bilinear",
    "crop_pct": 0.875,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "layout": "NCHW",
    "color": "RGB",
}


def resolve_preprocess(pretrained: dict[str, Any] | None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge defaults < pretrained config < overrides into a complete spec.

    ``overrides`` may carry ``image_size`` (an int) as a shortcut for ``input_size``.
    """
    spec = dict(DEFAULT_PREPROCESS)
    for source in (pretrained or {}, overrides or {}):
        for key, value in source.items():
            if value is None:
                continue
            if key == "image_size":
                spec["input_size"] = [3, int(value), int(value)]
            elif key in spec:
                spec[key] = list(value) if isinstance(value, (tuple, list)) else value
    if spec["interpolation"] not in RESAMPLE:
        spec["interpolation"] = "bilinear"
    spec["resize"] = int(math.floor(spec["input_size"][-1] / float(spec["crop_pct"])))
    return spec
