"""The artifact manifest, typed: what an exported model folder says about itself (``manifest.json``).

``ArtifactManifest.from_json`` checks a manifest field by field and rejects a malformed one with one
line naming the file and the field; ``to_json`` writes back the same dict (unknown sections such as
the parity report, the guard record or the converter notes travel in ``extra`` untouched). The
schema is versioned: a manifest from a newer edgetl is refused with the advice to upgrade.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EdgetlError

ARTIFACT_MANIFEST = "manifest.json"
FORMAT = "edgetl-artifact"
VERSION = 1  # the newest artifact manifest this runtime reads
MODALITIES = ("image", "text", "audio")
TASKS = ("classification", "regression", "transcription")
# what each modality's preprocessing needs (predict and the benchmark turn raw inputs into model inputs with it)
PREPROCESS_FIELDS = {
    "image": ("input_size", "mean", "std", "resize", "interpolation"),
    "text": ("max_length",),
    "audio": ("sample_rate", "n_mels", "max_audio_seconds", "frames"),
}
FIX = "re-run `edgetl export` to rewrite it"


class ManifestError(EdgetlError):
    """A manifest that is not what edgetl wrote: missing or mistyped fields, or a newer schema."""


def _fail(where: Any, what: str, fix: str = FIX) -> ManifestError:
    return ManifestError(f"{where}: {what}; {fix}")


def _take(data: Mapping[str, Any], key: str, types: tuple[type, ...], where: Any, prefix: str = "") -> Any:
    if key not in data:
        raise _fail(where, f"field '{prefix}{key}' is missing")
    value = data[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise _fail(
            where, f"field '{prefix}{key}' is a {type(value).__name__}, expected {' or '.join(t.__name__ for t in types)}"
        )
    return value


def check_facts(data: Mapping[str, Any], where: Any, fix: str = FIX) -> None:
    """What artifact and bundle manifests share: a known modality and task, the preprocessing that modality needs,
    and for classification the class names; one line naming the first that is wrong."""
    modality = data.get("modality", "image")
    if modality not in PREPROCESS_FIELDS:
        raise _fail(where, f"field 'modality' is {modality!r}, expected one of {', '.join(PREPROCESS_FIELDS)}", fix)
    if data.get("task") not in TASKS:
        raise _fail(where, f"field 'task' is {data.get('task')!r}, expected {' or '.join(TASKS)}", fix)
    for key in PREPROCESS_FIELDS[modality]:
        if key not in data.get("preprocess", {}):
            raise _fail(where, f"field 'preprocess.{key}' is missing", fix)
    labels = data.get("labels")
    if data["task"] == "classification" and (
        not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels)
    ):
        raise _fail(where, "field 'labels' must list the class names", fix)


@dataclass(frozen=True)
class Quantization:
    """Affine int8 quantisation of an input or output: ``real = (q - zero_point) * scale``."""

    scale: float
    zero_point: int


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: name(s) (text models take several), shape (str for a named dynamic axis),
    dtype, layout, and what the runtime undoes (int8 quantisation, length buckets, the pad id)."""

    name: str | tuple[str, ...]
    shape: tuple[int | str, ...]
    dtype: str
    layout: str | None = None
    quantization: Quantization | None = None
    buckets: tuple[int, ...] = ()
    pad_id: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.name) if isinstance(self.name, tuple) else [self.name]

    @property
    def fixed_batch(self) -> int | None:
        """The fixed batch size, or None when the batch dimension is dynamic."""
        first = self.shape[0] if self.shape else None
        return first if isinstance(first, int) else None

    @property
    def fixed_length(self) -> int | None:
        """Text: the fixed sequence length (the second dimension), else None."""
        return self.shape[1] if len(self.shape) > 1 and isinstance(self.shape[1], int) else None

    @classmethod
    def from_json(cls, data: Any, where: Any, prefix: str) -> TensorSpec:
        if not isinstance(data, Mapping):
            raise _fail(where, f"field '{prefix}' is a {type(data).__name__}, expected dict")
        p = f"{prefix}."
        name = _take(data, "name", (str, list), where, p)
        shape = _take(data, "shape", (list,), where, p) if "shape" in data or prefix == "input" else []
        dtype = _take(data, "dtype", (str,), where, p) if "dtype" in data or prefix == "input" else "float32"
        q = data.get("quantization")
        quant = None
        if q is not None:
            if not isinstance(q, Mapping) or not {"scale", "zero_point"} <= set(q):
                raise _fail(where, f"field '{p}quantization' needs scale and zero_point")
            quant = Quantization(float(q["scale"]), int(q["zero_point"]))
        known = {"name", "shape", "dtype", "layout", "quantization", "buckets", "pad_id"}
        return cls(
            name=tuple(name) if isinstance(name, list) else name,
            shape=tuple(shape),
            dtype=dtype,
            layout=data.get("layout"),
            quantization=quant,
            buckets=tuple(int(b) for b in data.get("buckets") or ()),
            pad_id=int(data.get("pad_id", 0) or 0),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.names if isinstance(self.name, tuple) else self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
        }
        if self.layout is not None:
            out["layout"] = self.layout
        if self.quantization is not None:
            out["quantization"] = {"scale": self.quantization.scale, "zero_point": self.quantization.zero_point}
        if self.buckets:
            out["buckets"] = list(self.buckets)
        if self.pad_id:
            out["pad_id"] = self.pad_id
        return {**out, **self.extra}


@dataclass(frozen=True)
class ArtifactManifest:
    """An exported artifact: what it runs on, what it computes, its input contract and its files."""

    name: str
    runtime: str
    precision: str
    task: str
    model_file: str
    input: TensorSpec
    output: TensorSpec
    preprocess: Mapping[str, Any]
    files: Mapping[str, int]
    modality: str = "image"  # manifests written before text existed have no field: image
    labels: tuple[str, ...] = ()
    target: str | None = None
    version: int = VERSION
    tokenizer: Mapping[str, Any] | None = None
    runtime_config: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # parity, guard, converter, options, versions, ...
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)  # the dict as read

    @classmethod
    def from_json(cls, data: Any, where: Any) -> ArtifactManifest:
        """A checked manifest, or one ``ManifestError`` line naming the first bad field."""
        if not isinstance(data, Mapping):
            raise _fail(where, "not an edgetl artifact manifest")
        if data.get("format", FORMAT) != FORMAT:
            raise _fail(where, f"field 'format' is {data.get('format')!r}, expected {FORMAT!r}")
        version = data.get("version", VERSION)
        if not isinstance(version, int) or isinstance(version, bool):
            raise _fail(where, f"field 'version' is {version!r}, expected a whole number")
        if version > VERSION:
            raise _fail(
                where,
                f"it was written by a newer edgetl (manifest version {version}, this runtime reads up to {VERSION})",
                "upgrade edgetl-runtime",
            )
        for key in ("name", "runtime", "precision", "task", "model_file"):
            _take(data, key, (str,), where)
        spec_in = TensorSpec.from_json(_take(data, "input", (dict,), where), where, "input")
        _take(data, "output", (dict,), where)
        _take(data["output"], "name", (str,), where, "output.")
        spec_out = TensorSpec.from_json(data["output"], where, "output")
        preprocess = _take(data, "preprocess", (dict,), where)
        files = _take(data, "files", (dict,), where)
        check_facts(data, where)
        modality = data.get("modality", "image")
        labels = data.get("labels") or []
        known = {
            "format",
            "version",
            "name",
            "target",
            "runtime",
            "precision",
            "modality",
            "task",
            "labels",
            "model_file",
            "input",
            "output",
            "preprocess",
            "files",
            "tokenizer",
            "runtime_config",
        }
        return cls(
            name=data["name"],
            runtime=data["runtime"],
            precision=data["precision"],
            task=data["task"],
            model_file=data["model_file"],
            input=spec_in,
            output=spec_out,
            preprocess=preprocess,
            files=files,
            modality=modality,
            labels=tuple(labels),
            target=data.get("target"),
            version=version,
            tokenizer=data.get("tokenizer"),
            runtime_config=data.get("runtime_config") or {},
            extra={k: v for k, v in data.items() if k not in known},
            raw=data,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FORMAT, "version": self.version, "name": self.name}
        if self.target is not None:
            out["target"] = self.target
        out.update(
            {
                "runtime": self.runtime,
                "precision": self.precision,
                "modality": self.modality,
                "task": self.task,
                "labels": list(self.labels),
                "model_file": self.model_file,
                "input": self.input.to_json(),
                "output": self.output.to_json(),
                "preprocess": dict(self.preprocess),
                "files": dict(self.files),
            }
        )
        if self.tokenizer is not None:
            out["tokenizer"] = dict(self.tokenizer)
        if self.runtime_config:
            out["runtime_config"] = dict(self.runtime_config)
        return {**out, **self.extra}

    @classmethod
    def read(cls, folder: str | Path) -> ArtifactManifest:
        """The manifest of an artifact folder; not a folder edgetl wrote, or damaged, is one line."""
        mfile = Path(folder) / ARTIFACT_MANIFEST
        if not mfile.is_file():
            raise EdgetlError(
                f"{folder} is not an edgetl artifact (no {ARTIFACT_MANIFEST}); pass a folder written by `edgetl export`"
            )
        try:
            data = json.loads(mfile.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EdgetlError(f"{mfile} is not valid JSON ({exc}); re-run `edgetl export`") from None
        if not isinstance(data, dict):
            raise EdgetlError(f"{mfile} is not an edgetl artifact manifest; re-run `edgetl export`")
        return cls.from_json(data, mfile)
