"""LiteRT (TFLite) predictor (numpy + ai-edge-litert only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from .base import Batch, DeviceOptions, from_artifact_output, run_in_chunks, to_artifact_feeds
from .manifest import ArtifactManifest


class LiteRtPredictor:
    def __init__(self, path: Path, spec: ArtifactManifest, options: DeviceOptions) -> None:
        self.spec = spec
        self.manifest = dict(spec.raw) or spec.to_json()
        threads = options.threads or spec.runtime_config.get("num_threads")
        self.interpreter = Interpreter(model_path=str(Path(path) / spec.model_file), num_threads=threads or None)
        self.interpreter.allocate_tensors()
        self.input = spec.input
        self.output = spec.output
        config = spec.runtime_config
        self._runners = {
            int(n): (self.interpreter.get_signature_runner(s["key"]), s["inputs"])
            for n, s in (config.get("signatures") or {}).items()
        }  # text: one per length bucket
        if not self._runners:
            self._in = self._input_indices(config.get("signature"))
            self._out = self.interpreter.get_output_details()[0]["index"]
        self.device = "CPU/XNNPACK"

    def _input_indices(self, signature: dict[str, Any] | None) -> dict[str, int]:
        """Tensor index of each input name; several inputs (text) are matched through the signature's input names."""
        names = self.input.names
        if not signature:
            return {names[0]: self.interpreter.get_input_details()[0]["index"]}
        details = self.interpreter.get_signature_runner(signature["key"]).get_input_details()
        return {name: details[sig]["index"] for name, sig in zip(names, signature["inputs"])}

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if self._runners:
            runner, inputs = self._runners[next(iter(feeds.values())).shape[1]]
            out = runner(**{sig: feeds[name] for sig, name in zip(inputs, self.input.names)})
            return np.asarray(next(iter(out.values()))).copy()
        for name, x in feeds.items():
            self.interpreter.set_tensor(self._in[name], x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._out).copy()

    def predict(self, batch: Batch) -> np.ndarray:
        out = run_in_chunks(self._run, to_artifact_feeds(batch, self.input), 1)  # converted with a fixed batch of 1
        return from_artifact_output(out, self.output)
