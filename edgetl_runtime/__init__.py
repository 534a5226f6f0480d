"""edgetl_runtime: run an exported edgetl artifact on a device, without torch.

    import edgetl_runtime
    model = edgetl_runtime.load("runs/demo/export/onnx-int8")
    model.predict(["cat.png"])        # images: files; text: strings; audio: WAV/FLAC/OGG files
    # [{"input": "cat.png", "top": [("cat", 0.97), ...]}]

One small predictor interface over onnxruntime, OpenVINO and LiteRT. Everything here
imports numpy, Pillow (images) and one runtime library only; text artifacts add
``tokenizers``; audio artifacts compute their log-mel features with numpy (``audio.py``).
Never torch, timm or transformers: the ``torch`` runtime (a bundle folder, the reference
the artifacts are measured against) lives in edgetl itself and is imported by name only
when asked for. Installed alone as its own wheel (``edgetl-runtime``) with the
``edgetl-run`` command (``predict``, ``bench``).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"
# public name -> the module that defines it, imported on first use (``python -m edgetl_runtime.bench`` must start
# without numpy to say that numpy is missing)
_LAZY = {
    "load": "artifact",
    "Model": "artifact",
    "LoadedArtifact": "artifact",
    "load_predictor": "artifact",
    "RUNTIMES": "artifact",
    "ARTIFACT_MANIFEST": "manifest",
    "Batch": "base",
    "DeviceOptions": "base",
    "Predictor": "base",
    "read_artifact_manifest": "base",
    "DeviceUnavailable": "errors",
    "EdgetlError": "errors",
    "ArtifactManifest": "manifest",
    "TensorSpec": "manifest",
    "read_embedded": "embedded",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'edgetl_runtime' has no attribute {name!r}")
    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
