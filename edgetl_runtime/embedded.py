"""What a model file says about itself: the artifact essentials edgetl embeds in every model file it exports.

A model file copied without its folder's ``manifest.json`` still carries one JSON object (the manifest's
format, version, name, target, runtime, precision, modality, task, labels, preprocess, model_file, input,
output, runtime_config, the bundle's arch) under the key ``edgetl``:

- ONNX (``.onnx``): ``metadata_props`` of the model, read with onnxruntime;
- OpenVINO (``.xml`` + ``.bin``): the model's ``rt_info``, read with OpenVINO;
- TFLite (``.tflite``): ``edgetl.json`` in a zip appended to the flatbuffer (the TFLite metadata convention
  for associated files), read with the standard library: the flatbuffer bytes are left as they were.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from .errors import EdgetlError
from .manifest import FORMAT  # the embedded object is a part of the artifact manifest

KEY = "edgetl"  # the metadata key (ONNX, OpenVINO)
TFLITE_ENTRY = "edgetl.json"  # the zip entry appended to a .tflite
SUFFIXES = (".onnx", ".xml", ".tflite")
REQUIRED = ("name", "runtime", "precision", "modality", "task", "labels", "preprocess", "model_file", "input", "output")


def read_embedded(model_file: str | Path) -> dict[str, Any]:
    """The essentials embedded in ``model_file`` (.onnx, .xml with its .bin, .tflite); one ``EdgetlError`` line
    for a file that is not such a model or carries none."""
    path = Path(model_file)
    if not path.is_file():
        raise EdgetlError(f"{path} is not a file; pass a model file (.onnx, .xml, .tflite) or an artifact folder")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        hint = f"pass the {path.with_suffix('.xml').name} next to it" if suffix == ".bin" else "pass an artifact folder"
        raise EdgetlError(f"{path} is not a model file edgetl reads (.onnx, .xml, .tflite); {hint}")
    text = {".onnx": _onnx, ".xml": _openvino, ".tflite": _tflite}[suffix](path)
    if text is None:
        raise EdgetlError(
            f"{path} carries no edgetl metadata (exported by another tool or an older edgetl); "
            f"read the manifest.json of its artifact folder, or re-run `edgetl export`"
        )
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    missing = [k for k in REQUIRED if k not in data] if isinstance(data, dict) else list(REQUIRED)
    if not isinstance(data, dict) or data.get("format") != FORMAT or missing:
        raise EdgetlError(
            f"{path}: its '{KEY}' metadata is not edgetl's artifact description (missing {', '.join(missing) or 'format'}); "
            f"re-run `edgetl export`"
        )
    return data


def _unreadable(path: Path, runtime: str, exc: Exception) -> EdgetlError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
    return EdgetlError(f"{path} cannot be read by {runtime} ({reason}); the file is damaged or not a model: re-export it")


def _onnx(path: Path) -> str | None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # only the metadata is wanted
    options.log_severity_level = 3
    try:
        meta = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).get_modelmeta()
    except Exception as exc:  # onnxruntime raises its own types for garbage and truncated files
        raise _unreadable(path, "onnxruntime", exc) from None
    return meta.custom_metadata_map.get(KEY)


def _openvino(path: Path) -> str | None:
    import openvino as ov

    if not path.with_suffix(".bin").is_file():
        raise EdgetlError(f"{path} needs its weights {path.with_suffix('.bin').name} next to it; copy the .xml and .bin together")
    try:
        model = ov.Core().read_model(str(path))
    except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
        raise _unreadable(path, "OpenVINO", exc) from None
    return model.get_rt_info([KEY]).astype(str) if model.has_rt_info([KEY]) else None


def _tflite(path: Path) -> str | None:
    with path.open("rb") as f:
        head = f.read(8)
    if head[4:8] != b"TFL3":
        raise EdgetlError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier); the file is damaged: re-export it")
    try:
        with zipfile.ZipFile(path) as z:
            return z.read(TFLITE_ENTRY).decode("utf-8") if TFLITE_ENTRY in z.namelist() else None
    except (zipfile.BadZipFile, UnicodeDecodeError):  # no zip appended (or only weight bytes that look like one)
        return None
