"""LiteRT (TFLite) predictor (numpy + ai-edge-litert only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from .base import DeviceOptions, from_artifact_output, run_in_chunks, to_artifact_input


class LiteRtPredictor:
    def __init__(self, path: Path, manifest: dict[str, Any], options: DeviceOptions) -> None:
        self.manifest = manifest
        threads = options.threads or manifest.get("runtime_config", {}).get("num_threads")
        self.interpreter = Interpreter(model_path=str(Path(path) / manifest["model_file"]), num_threads=threads or None)
        self.interpreter.allocate_tensors()
        self._in = self.interpreter.get_input_details()[0]["index"]
        self._out = self.interpreter.get_output_details()[0]["index"]
        self.input = manifest["input"]
        self.output = manifest["output"]
        self.device = "CPU/XNNPACK"

    def _run(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._in, x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._out).copy()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        out = run_in_chunks(self._run, to_artifact_input(batch, self.input), 1)  # converted with a fixed batch of 1
        return from_artifact_output(out, self.output)
