"""ONNX Runtime predictor (numpy + onnxruntime only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .base import from_artifact_output, to_artifact_input


class OnnxRuntimePredictor:
    def __init__(self, path: Path, manifest: dict[str, Any], threads: int | None = None) -> None:
        self.manifest = manifest
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        providers = manifest.get("runtime_config", {}).get("providers", ["CPUExecutionProvider"])
        available = set(ort.get_available_providers())
        self.session = ort.InferenceSession(str(path / manifest["model_file"]), opts,
                                            providers=[p for p in providers if p in available] or ["CPUExecutionProvider"])
        self.input = manifest["input"]
        self.output = manifest["output"]

    def predict(self, batch: np.ndarray) -> np.ndarray:
        out = self.session.run([self.output["name"]], {self.input["name"]: to_artifact_input(batch, self.input)})[0]
        return from_artifact_output(out, self.output)
