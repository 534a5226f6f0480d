"""``export()``: validate the request, write the artifact atomically, prove it, describe it."""

from __future__ import annotations

import importlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_dir, clean_stale, write_json
from ..bundle import EXPORT_DIR, Bundle, library_versions, load_bundle
from ..errors import EdgetlError
from ..ownership import Owned, check_folder
from ..runtime import ARTIFACT_MANIFEST, DeviceOptions, load_predictor
from ..runtime.base import Batch, batch_len, batch_rows, peak_rss_mb
from ..runtime.text import trim_padding
from . import TARGETS, Target
from .parity import ExportRejected, check, compare
from .samples import calibration_inputs, held_out

FAMILIES = ("timm", "torchvision", "text", "speech")
TOKENIZER_FILE = "tokenizer.json"  # the bundle's fast tokenizer, copied next to every text artifact


@dataclass
class ExportOptions:
    precision: str = "fp32"
    calibration: str | None = None  # folder of images or audio files (text: a file, one text per line); default: the training split
    calibration_samples: int = 100
    parity_samples: int = 200
    max_accuracy_drop: float | None = None
    dynamic_batch: bool = False
    layout: str = "nchw"
    io: str = "float"  # "int8": full-int8 artifacts take and give int8 (tflite)
    threads: int | None = None
    opset: int = 17


@dataclass
class Artifact:
    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def parity(self) -> dict[str, Any]:
        return self.manifest.get("parity", {})


class ExportContext:
    """What a target module gets: the bundle, the options, the folder to write, the input contract
    (names, example, dynamic axes, manifest spec) and samples on demand."""

    def __init__(self, bundle: Bundle, options: ExportOptions, out: Path, target: Target | None = None) -> None:
        self.bundle = bundle
        self.options = options
        self.out = out
        self.target = target or TARGETS["onnx"]
        self.text = bundle.modality == "text"
        self.input_names: list[str] = bundle.input_names
        self._calibration: Batch | None = None
        self._example: tuple[np.ndarray, ...] | None = None

    @property
    def sequence_length(self) -> int | None:
        """Text: the fixed sequence length of this target's artifacts (the bundle's max_length), else None."""
        return int(self.bundle.preprocess["max_length"]) if self.text and self.target.fixed_sequence else None

    @property
    def dynamic_batch(self) -> bool:
        """Images: as asked (--dynamic-batch); text: whenever the target takes dynamic shapes."""
        return self.options.dynamic_batch or (self.text and not self.target.fixed_sequence)

    def calibration(self) -> Batch:
        if self._calibration is None:
            self._calibration = calibration_inputs(self.bundle, self.options.calibration_samples, self.options.calibration,
                                                   length=self.sequence_length)
        return self._calibration

    def calibration_feeds(self) -> list[dict[str, np.ndarray]]:
        """One named-input dict per calibration sample (batch 1); texts at their own length unless fixed."""
        calib = self.calibration()
        rows = [batch_rows(calib, i, i + 1) for i in range(batch_len(calib))]
        if not self.text:
            return [{self.input_names[0]: r} for r in rows]
        return [r if self.sequence_length else trim_padding(r) for r in rows]  # type: ignore[arg-type]

    def example_input(self) -> np.ndarray:
        """Zeros of the bundle's float input, batch 1: [1, 3, H, W] images, [1, n_mels, frames] audio log-mel."""
        return np.zeros((1, *self.bundle.manifest["input"]["shape"][1:]), dtype=np.float32)

    def example_inputs(self) -> tuple[np.ndarray, ...]:
        """Positional example inputs for tracing: a zero image, or a real training text padded to max_length."""
        if not self.text:
            return (self.example_input(),)
        if self._example is None:
            text = calibration_inputs(self.bundle, 1, None, length=int(self.bundle.preprocess["max_length"]))
            self._example = tuple(text[n] for n in self.input_names)  # type: ignore[index]
        return self._example

    def dynamic_axes(self, output: str) -> dict[str, dict[int, str]] | None:
        """ONNX-style dynamic axes of every input and the output, or None when all shapes are fixed."""
        if not self.dynamic_batch:
            return None
        axes = {0: "batch", 1: "sequence"} if self.text and not self.sequence_length else {0: "batch"}
        return {**{n: dict(axes) for n in self.input_names}, output: {0: "batch"}}

    def input_shape(self) -> list[int]:
        """The input shape with -1 for dynamic dimensions (shared by all inputs)."""
        shape = list(self.example_inputs()[0].shape)
        for axis in (self.dynamic_axes("") or {}).get(self.input_names[0], {}):
            shape[axis] = -1
        return shape

    def input_spec(self, **extra: Any) -> dict[str, Any]:
        """The artifact manifest's input spec (dynamic dimensions named); ``extra`` overrides fields."""
        axes = (self.dynamic_axes("") or {}).get(self.input_names[0], {})
        shape: list[Any] = [axes.get(i, d) for i, d in enumerate(self.example_inputs()[0].shape)]
        if self.text:
            spec = {"name": self.input_names, "shape": shape, "dtype": "int64", "layout": "NT",
                    "pad_id": int(self.bundle.processor.pad_token_id or 0)}
        else:  # NCHW images, NCT audio (batch, mel bins, frames)
            spec = {"name": self.input_names[0], "shape": shape, "dtype": "float32",
                    "layout": self.bundle.manifest["input"].get("layout", "NCHW")}
        return {**spec, **extra}

    def output_spec(self, name: str) -> dict[str, Any]:
        """The manifest's output spec: float32 [batch, num_outputs], batch named when dynamic."""
        batch = "batch" if self.dynamic_batch else 1
        return {"name": name, "shape": [batch, self.bundle.manifest["model"]["num_outputs"]], "dtype": "float32"}

    def calibration_record(self, samples: int) -> dict[str, Any]:
        """What the manifest's converter section says about calibration."""
        return {"calibration_samples": int(samples), "calibration_source": self.options.calibration or "bundle training split"}


def artifact_name(target: str, options: ExportOptions) -> str:
    name = f"{target}-{options.precision}"
    if options.layout != "nchw":
        name += f"-{options.layout}"
    if options.io != "float":
        name += f"-io{options.io}"
    return name


def validate_request(target: str, options: ExportOptions) -> None:
    """Reject unsupported combinations before any work starts."""
    if target not in TARGETS:
        raise EdgetlError(f"unknown export target '{target}'; choose one of {', '.join(TARGETS)} or all")
    t = TARGETS[target]
    if options.precision not in t.precisions:
        raise EdgetlError(f"{target} has no precision '{options.precision}'; choose one of {', '.join(t.precisions)}")
    if options.layout not in t.layouts:
        raise EdgetlError(f"{target} supports layout {', '.join(t.layouts)}, not '{options.layout}'")
    if options.io not in ("float", "int8"):
        raise EdgetlError(f"unknown --io '{options.io}'; choose float or int8")
    if options.io == "int8" and not (t.int8_io and options.precision == "int8"):
        raise EdgetlError(f"--io int8 needs a full-int8 artifact of a target that supports it (tflite --quantize int8), not {target} {options.precision}")
    if options.calibration_samples < 1 or options.parity_samples < 1:
        raise EdgetlError("--calibration-samples and --parity-samples must be at least 1")
    if options.max_accuracy_drop is not None and not (math.isfinite(options.max_accuracy_drop) and options.max_accuracy_drop >= 0):
        raise EdgetlError(f"--max-accuracy-drop must be 0 or more (points of the metric), not {options.max_accuracy_drop}")
    if options.threads is not None and options.threads < 1:
        raise EdgetlError("--threads must be at least 1")


def artifact_owned(folder: Path) -> Owned:
    """An artifact folder is edgetl's when it has a manifest; it holds the files that manifest lists."""
    files: set[str] = set()
    try:
        listed = json.loads((folder / ARTIFACT_MANIFEST).read_text(encoding="utf-8")).get("files", {})
        files = {str(name) for name in listed} if isinstance(listed, dict) else set()
    except (OSError, ValueError, AttributeError):
        pass
    return Owned("artifact folder", (ARTIFACT_MANIFEST,), frozenset(files | {ARTIFACT_MANIFEST, TOKENIZER_FILE}))


def validate_bundle(bundle: Bundle, options: ExportOptions) -> None:
    """Reject what the bundle's family or modality cannot export."""
    if bundle.manifest.get("family") not in FAMILIES:
        raise EdgetlError(f"{bundle.path}: exporting family {bundle.manifest.get('family')} is not supported yet")
    if bundle.modality in ("text", "audio") and (options.layout != "nchw" or options.io != "float"):
        what = "token ids" if bundle.modality == "text" else "float32 log-mel features [batch, mels, frames]"
        raise EdgetlError(f"--layout and --io apply to image models; a{'n' if bundle.modality == 'audio' else ''} "
                          f"{bundle.modality} artifact takes {what}")
    if bundle.modality == "text":
        folder = bundle.preprocess.get("files", "encoder")
        if not (bundle.path / folder / TOKENIZER_FILE).is_file():
            raise EdgetlError(f"{bundle.path}/{folder} has no {TOKENIZER_FILE} (a fast tokenizer); text export needs one")


def export(bundle_dir: str | Path, target: str = "onnx", precision: str = "fp32", **options: Any) -> Artifact:
    """Export a bundle to one target and precision; returns the proven artifact."""
    try:
        opts = ExportOptions(precision=precision, **options)
    except TypeError as exc:
        raise EdgetlError(f"export: {exc}") from None
    validate_request(target, opts)
    bundle = load_bundle(bundle_dir)
    validate_bundle(bundle, opts)
    name = artifact_name(target, opts)
    export_root = bundle.path / EXPORT_DIR
    if export_root.exists() and not export_root.is_dir():
        raise EdgetlError(f"{export_root} is a file; edgetl writes artifacts into that folder: move the file away")
    dest = export_root / name
    check_folder(dest, artifact_owned(dest), flag="artifact folder", replacing=True)
    export_root.mkdir(exist_ok=True)
    clean_stale(export_root)  # temp folders of exports that were killed
    try:
        with atomic_dir(dest) as tmp:
            manifest = _export_into(tmp, bundle, target, name, opts)
    except ExportRejected as exc:
        rejected = export_root / f"{name}.rejected.json"
        write_json(rejected, {"error": str(exc), "parity": getattr(exc, "report", None)})
        raise
    (export_root / f"{name}.rejected.json").unlink(missing_ok=True)  # an earlier rejection no longer holds
    return Artifact(dest, manifest)


def _export_into(tmp: Path, bundle: Bundle, target: str, name: str, opts: ExportOptions) -> dict[str, Any]:
    """Convert into ``tmp``, write the manifest, prove parity; returns the manifest."""
    t0 = time.time()
    module = importlib.import_module(TARGETS[target].module)
    ctx = ExportContext(bundle, opts, tmp, TARGETS[target])
    info = module.export(ctx)
    if ctx.text:
        info["tokenizer"] = _copy_tokenizer(ctx)
    manifest = _manifest(bundle, target, name, opts, info, tmp, time.time() - t0)
    write_json(tmp / ARTIFACT_MANIFEST, manifest)
    manifest["parity"] = _parity(bundle, tmp, opts, f"{target} {name}")
    manifest["export_peak_rss_mb"] = round(peak_rss_mb(), 1)  # of this process so far (conversion + parity)
    write_json(tmp / ARTIFACT_MANIFEST, manifest)
    return manifest


def _copy_tokenizer(ctx: ExportContext) -> dict[str, Any]:
    """Copy the bundle's tokenizer.json next to the model and describe how to use it."""
    shutil.copyfile(ctx.bundle.path / ctx.bundle.preprocess.get("files", "encoder") / TOKENIZER_FILE, ctx.out / TOKENIZER_FILE)
    fixed = ctx.sequence_length is not None
    proc = ctx.bundle.processor
    return {"file": TOKENIZER_FILE, "library": "tokenizers", "class": ctx.bundle.preprocess.get("tokenizer"),
            "max_length": int(ctx.bundle.preprocess["max_length"]), "truncation": True,
            "padding": "max_length" if fixed else "longest", "padding_side": "right",
            "pad_token": proc.pad_token, "pad_id": int(proc.pad_token_id or 0), "input_names": ctx.input_names}


def _parity(bundle: Bundle, folder: Path, opts: ExportOptions, where: str) -> dict[str, Any]:
    inputs, targets = held_out(bundle, opts.parity_samples)
    n = batch_len(inputs)
    reference = bundle.predict_batched(inputs)
    predictor = load_predictor(folder, DeviceOptions(threads=opts.threads))
    rows = [batch_rows(inputs, i, i + 1) for i in range(n)]
    if bundle.modality == "text":  # each text at its own length; a fixed-length artifact pads it back
        rows = [trim_padding(r) for r in rows]  # type: ignore[arg-type]
    outputs = np.concatenate([predictor.predict(r) for r in rows])
    report = compare(reference, outputs, targets, bundle.task, bundle.manifest["model"]["num_outputs"])
    try:
        check(report, opts.precision, opts.max_accuracy_drop, where)
    except ExportRejected as exc:
        exc.report = report  # type: ignore[attr-defined]
        raise
    return report


def _manifest(bundle: Bundle, target: str, name: str, opts: ExportOptions, info: dict[str, Any], folder: Path, seconds: float) -> dict[str, Any]:
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file() and p.name != ARTIFACT_MANIFEST}
    m = bundle.manifest
    return {
        "format": "edgetl-artifact",
        "version": 1,
        "name": name,
        "target": target,
        "runtime": TARGETS[target].runtime,
        "precision": opts.precision,
        "modality": bundle.modality,
        "task": m["task"],
        "labels": m.get("labels") or [],
        "preprocess": m["preprocess"],
        "bundle": {"path": str(bundle.path), "arch": f"{m['family']}:{m['arch']}", "created": m.get("created")},
        "options": asdict(opts),
        "export_seconds": round(seconds, 2),
        "files": files,
        "size_bytes": sum(files.values()),
        **info,  # model_file, input, output, converter, runtime_config (+ tokenizer for text)
        "versions": {**library_versions(), **info.get("versions", {})},
    }


def export_all(bundle_dir: str | Path, targets: list[str] | None = None, precisions: list[str] | None = None,
               **options: Any) -> tuple[list[Artifact], list[tuple[str, str, EdgetlError]]]:
    """Every requested (target, precision) pair; a failure does not stop the others."""
    done, failed = [], []
    for target in targets or list(TARGETS):
        if target not in TARGETS:
            raise EdgetlError(f"unknown export target '{target}'; choose one of {', '.join(TARGETS)} or all")
    known = {p for t in TARGETS.values() for p in t.precisions}
    if unknown := [p for p in precisions or [] if p not in known]:
        raise EdgetlError(f"unknown precision '{unknown[0]}'; choose one of {', '.join(sorted(known))} or all")
    for target in targets or list(TARGETS):  # bad options are one error before any work, not one per artifact
        for precision in precisions or list(TARGETS[target].precisions):
            try:
                validate_request(target, ExportOptions(precision=precision, **options))
            except TypeError as exc:
                raise EdgetlError(f"export: {exc}") from None
    bundle = load_bundle(bundle_dir)
    bundle.model  # a missing, damaged or diverged bundle is one error, not one per artifact
    validate_bundle(bundle, ExportOptions(**options))
    for target in targets or list(TARGETS):
        for precision in precisions or list(TARGETS[target].precisions):
            try:
                done.append(export(bundle_dir, target, precision, **options))
            except EdgetlError as exc:
                failed.append((target, precision, exc))
    return done, failed
