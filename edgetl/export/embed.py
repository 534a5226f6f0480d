"""Embed the artifact's essentials in the model file itself, so a model file copied alone still says what it is.

Each target's ``export(ctx)`` calls its writer once its final model file is written (never on the cached fp32
conversion); ``edgetl_runtime.embedded.read_embedded`` reads it back on a device. What is embedded is a part of
the manifest ``api._manifest`` writes, with nothing that changes between two exports of one bundle (no export
time, no bundle path): exports stay byte for byte repeatable.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from edgetl_runtime.embedded import FORMAT, KEY, TFLITE_ENTRY

from .. import __version__
from .api import TOKENIZER_FILE, artifact_name

INFO_FIELDS = ("model_file", "input", "output", "runtime_config")  # taken from the target's info dict


def essentials(ctx: Any, info: dict[str, Any]) -> dict[str, Any]:
    """The manifest's essentials for the model file ``info`` (the target's description) of this export."""
    m = ctx.bundle.manifest
    out: dict[str, Any] = {
        "format": FORMAT,
        "version": 1,
        "name": artifact_name(ctx.target.name, ctx.options),
        "target": ctx.target.name,
        "runtime": ctx.target.runtime,
        "precision": ctx.options.precision,
        "modality": ctx.bundle.modality,
        "task": m["task"],
        "labels": m.get("labels") or [],
        "preprocess": m["preprocess"],
        "bundle": {"arch": f"{m['family']}:{m['arch']}", "created": m.get("created")},
        **{k: info[k] for k in INFO_FIELDS if k in info},
        "versions": {"edgetl": __version__},
    }
    if ctx.text:
        out["tokenizer"] = {"file": TOKENIZER_FILE}  # not in the model file: it travels next to it
    return out


def _text(ctx: Any, info: dict[str, Any]) -> str:
    return json.dumps(essentials(ctx, info), ensure_ascii=False, separators=(",", ":"))


def onnx(ctx: Any, path: Path, info: dict[str, Any]) -> dict[str, Any]:
    """ONNX: ``metadata_props`` ``edgetl`` (the JSON) plus flat ``edgetl.task`` and ``edgetl.labels``; returns ``info``."""
    import onnx as onnx_lib

    model = onnx_lib.load(str(path))
    essential = essentials(ctx, info)
    props = {KEY: _text(ctx, info), f"{KEY}.task": essential["task"], f"{KEY}.labels": json.dumps(essential["labels"])}
    kept = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx_lib.save(model, str(path))
    return info


def openvino(ctx: Any, model: Any, info: dict[str, Any]) -> dict[str, Any]:
    """OpenVINO: ``rt_info`` ``edgetl`` of ``model``, before ``ov.save_model`` writes it; returns ``info``."""
    model.set_rt_info(_text(ctx, info), [KEY])
    return info


def tflite(ctx: Any, path: Path, info: dict[str, Any]) -> dict[str, Any]:
    """TFLite: a zip holding ``edgetl.json`` appended to the flatbuffer, whose bytes stay as they were (LiteRT
    ignores what follows them); offsets are from the start of the file, so any zip tool reads it. Returns ``info``."""
    entry = zipfile.ZipInfo(TFLITE_ENTRY, date_time=(1980, 1, 1, 0, 0, 0))  # a fixed time: repeatable bytes
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.external_attr = 0o644 << 16
    with path.open("r+b") as f:
        f.seek(0, 2)  # a new archive after the flatbuffer ("a" mode would first search its weights for one)
        with zipfile.ZipFile(f, "w") as z:
            z.writestr(entry, _text(ctx, info))
    return info
