"""ONNX Runtime predictor (numpy + onnxruntime only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from .base import Batch, DeviceOptions, from_artifact_output, run_in_chunks, to_artifact_feeds
from .errors import DeviceUnavailable
from .manifest import ArtifactManifest


class OnnxRuntimePredictor:
    def __init__(self, path: Path, spec: ArtifactManifest, options: DeviceOptions) -> None:
        self.spec = spec
        self.manifest = dict(spec.raw) or spec.to_json()
        opts = ort.SessionOptions()
        if options.threads:
            opts.intra_op_num_threads = options.threads
            opts.inter_op_num_threads = 1
        available = ort.get_available_providers()
        missing = [p for p in options.onnxruntime_providers if p not in available]
        if missing:
            raise DeviceUnavailable(
                f"onnxruntime {ort.__version__} here lacks {', '.join(missing)} (has {', '.join(available)}); "
                "install the onnxruntime build for that device"
            )
        self.session = ort.InferenceSession(str(path / spec.model_file), opts, providers=options.onnxruntime_providers)
        self.input = spec.input
        self.output = spec.output
        self.device = self.session.get_providers()[0]

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run([self.output.name], feeds)[0]

    def predict(self, batch: Batch) -> np.ndarray:
        out = run_in_chunks(self._run, to_artifact_feeds(batch, self.input), self.input.fixed_batch)
        return from_artifact_output(out, self.output)
