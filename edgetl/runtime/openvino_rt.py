"""OpenVINO predictor (numpy + openvino only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..offline import import_quietly

from .base import from_artifact_output, to_artifact_input


class OpenVinoPredictor:
    def __init__(self, path: Path, manifest: dict[str, Any], threads: int | None = None) -> None:
        self.manifest = manifest
        cfg = dict(manifest.get("runtime_config", {}))
        device = cfg.pop("device", "CPU")
        if threads:
            cfg["INFERENCE_NUM_THREADS"] = int(threads)
        ov = import_quietly("openvino")
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(str(path / manifest["model_file"])), device, cfg)
        self.request = self.compiled.create_infer_request()
        self.input = manifest["input"]
        self.output = manifest["output"]

    def predict(self, batch: np.ndarray) -> np.ndarray:
        result = self.request.infer({0: to_artifact_input(batch, self.input)})
        return from_artifact_output(result[self.compiled.output(0)], self.output)
