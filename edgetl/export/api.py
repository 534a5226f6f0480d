"""``export()``: validate the request, write the artifact atomically, prove it, describe it."""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_json
from ..bundle import Bundle, library_versions, load_bundle
from ..errors import EdgetlError
from ..runtime import ARTIFACT_MANIFEST, DeviceOptions, load_predictor
from ..runtime.base import peak_rss_mb
from . import TARGETS
from .parity import ExportRejected, check, compare
from .samples import calibration_inputs, held_out

EXPORT_DIR = "export"


@dataclass
class ExportOptions:
    precision: str = "fp32"
    calibration: str | None = None  # folder of images; default: the bundle's training split
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
    """What a target module gets: the bundle, the options, the folder to write, and samples on demand."""

    def __init__(self, bundle: Bundle, options: ExportOptions, out: Path) -> None:
        self.bundle = bundle
        self.options = options
        self.out = out
        self._calibration: np.ndarray | None = None

    def calibration(self) -> np.ndarray:
        if self._calibration is None:
            self._calibration = calibration_inputs(self.bundle, self.options.calibration_samples, self.options.calibration)
        return self._calibration

    def example_input(self) -> np.ndarray:
        _, c, h, w = self.bundle.manifest["input"]["shape"]
        return np.zeros((1, c, h, w), dtype=np.float32)


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


def export(bundle_dir: str | Path, target: str = "onnx", precision: str = "fp32", **options: Any) -> Artifact:
    """Export a bundle to one target and precision; returns the proven artifact."""
    try:
        opts = ExportOptions(precision=precision, **options)
    except TypeError as exc:
        raise EdgetlError(f"export: {exc}") from None
    validate_request(target, opts)
    bundle = load_bundle(bundle_dir)
    if bundle.manifest.get("family") not in ("timm", "torchvision"):
        raise EdgetlError(f"{bundle_dir}: exporting family {bundle.manifest.get('family')} is not supported yet")
    name = artifact_name(target, opts)
    export_root = bundle.path / EXPORT_DIR
    export_root.mkdir(exist_ok=True)
    dest = export_root / name
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=export_root))
    try:
        t0 = time.time()
        module = importlib.import_module(TARGETS[target].module)
        info = module.export(ExportContext(bundle, opts, tmp))
        manifest = _manifest(bundle, target, name, opts, info, tmp, time.time() - t0)
        write_json(tmp / ARTIFACT_MANIFEST, manifest)
        manifest["parity"] = _parity(bundle, tmp, opts, f"{target} {name}")
        manifest["export_peak_rss_mb"] = round(peak_rss_mb(), 1)  # of this process so far (conversion + parity)
        write_json(tmp / ARTIFACT_MANIFEST, manifest)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except ExportRejected as exc:
        rejected = export_root / f"{name}.rejected.json"
        write_json(rejected, {"error": str(exc), "parity": getattr(exc, "report", None)})
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Artifact(dest, manifest)


def _parity(bundle: Bundle, folder: Path, opts: ExportOptions, where: str) -> dict[str, Any]:
    inputs, targets = held_out(bundle, opts.parity_samples)
    reference = bundle.predict(inputs)
    predictor = load_predictor(folder, DeviceOptions(threads=opts.threads))
    outputs = np.concatenate([predictor.predict(inputs[i:i + 1]) for i in range(len(inputs))])
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
        "task": m["task"],
        "labels": m.get("labels") or [],
        "preprocess": m["preprocess"],
        "bundle": {"path": str(bundle.path), "arch": f"{m['family']}:{m['arch']}", "created": m.get("created")},
        "options": asdict(opts),
        "export_seconds": round(seconds, 2),
        "files": files,
        "size_bytes": sum(files.values()),
        **info,  # model_file, input, output, converter, runtime_config
        "versions": {**library_versions(), **info.get("versions", {})},
    }


def export_all(bundle_dir: str | Path, targets: list[str] | None = None, precisions: list[str] | None = None,
               **options: Any) -> tuple[list[Artifact], list[tuple[str, str, EdgetlError]]]:
    """Every requested (target, precision) pair; a failure does not stop the others."""
    done, failed = [], []
    for target in targets or list(TARGETS):
        if target not in TARGETS:
            raise EdgetlError(f"unknown export target '{target}'; choose one of {', '.join(TARGETS)} or all")
        for precision in precisions or list(TARGETS[target].precisions):
            try:
                done.append(export(bundle_dir, target, precision, **options))
            except EdgetlError as exc:
                failed.append((target, precision, exc))
    return done, failed
