"""PyTorch predictor for a bundle: the reference the artifacts are measured against.

Unlike the runtimes in ``edgetl_runtime`` this one needs edgetl itself (and torch), so it
runs only where edgetl is installed, never on a runtime-only device; ``edgetl_runtime``
names it in its ``RUNTIMES`` table and imports it only when asked for ``runtime="torch"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl_runtime.base import Batch, DeviceOptions
from edgetl_runtime.errors import DeviceUnavailable

from .modality import get_modality


class TorchPredictor:
    def __init__(self, path: Path, manifest: dict[str, Any], options: DeviceOptions) -> None:
        import torch

        from .bundle import load_bundle

        if options.threads:
            torch.set_num_threads(options.threads)
        device = options.torch_device
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise DeviceUnavailable(f"torch {torch.__version__} here sees no CUDA device")
        self.bundle = load_bundle(path)
        self.manifest = manifest or self.bundle.manifest
        self.model = self.bundle.model.eval().to(device)
        self.device = device
        self._torch = torch

    def predict(self, batch: Batch) -> np.ndarray:
        torch = self._torch
        inputs = get_modality(self.bundle.modality).model_inputs(batch, self.bundle.input_names)  # pixels, features or token ids
        with torch.inference_mode():
            out = self.model(*(x.to(self.device) for x in inputs))
        return out.float().cpu().numpy()
