"""``export()``: validate the request, write the artifact atomically, prove it, describe it."""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgetl_runtime import ARTIFACT_MANIFEST, DeviceOptions, load_predictor
from edgetl_runtime.base import Batch, batch_len, batch_rows, peak_rss_mb
from edgetl_runtime.parity import non_finite
from edgetl_runtime.text import trim_padding

from ..atomic import atomic_dir, clean_stale, write_json
from ..bundle import EXPORT_DIR, Bundle, library_versions, load_bundle
from ..errors import EdgetlError
from ..family import family_names
from ..modality import get_modality
from ..modality.text import TOKENIZER_FILE  # the bundle's fast tokenizer, copied next to every text artifact
from ..ownership import Owned, check_folder, remove_owned
from . import asr_export as asr
from . import guard
from .convert_log import CONVERT_LOG, Captured, captured
from .parity import ExportRejected, check, compare
from .samples import CALIBRATION_SOURCES, calibration_inputs, calibration_split, held_out
from .targets import TARGETS, Target

SEQUENCE_BUCKETS = (8, 16, 32, 64, 128, 256, 512)
PARITY_CAP = 1000  # held-out samples the parity check and the accuracy guard use at most by default


@dataclass
class ExportOptions:
    precision: str = "fp32"
    calibration: str | None = (
        None  # folder of images or audio files (text: a file, one text per line); default: the training split
    )
    calibration_samples: int = 100
    parity_samples: int | None = None  # held-out samples (val, then test) for parity and the guard; None: all, up to PARITY_CAP
    max_accuracy_drop: float | str | None = "auto"  # the guard's budget: "auto" = the task's default, None = off
    guard: bool = True  # int8: climb the recovery ladder when the budget is missed
    dynamic_batch: bool = False
    layout: str = "nchw"
    io: str = "float"  # "int8": full-int8 artifacts take and give int8 (tflite)
    threads: int | None = None
    verbose: bool = False  # show the converters' output live (it goes to the artifact's convert.log either way)
    opset: int = 17


@dataclass
class Artifact:
    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    log: Captured | None = None  # what the converters wrote (the file is PATH/convert.log)

    @property
    def parity(self) -> dict[str, Any]:
        return self.manifest.get("parity", {})


class ExportContext:
    """What a target module gets: the bundle, the options, the folder to write, the input contract
    (names, example, dynamic axes, manifest spec) and samples on demand."""

    def __init__(
        self, bundle: Bundle, options: ExportOptions, out: Path, target: Target | None = None, work: Path | None = None
    ) -> None:
        self.bundle = bundle
        self.options = options
        self.out = out  # the folder this attempt writes its model files into
        self.work = work or out / ".work"  # kept across the guard's attempts: converted fp32 models, calibration caches
        self.plan = guard.Plan()
        self.cache: dict[Any, Any] = {}  # what a target computes once per export: calibration ranges, ...
        self.started = time.time()
        self.target = target or TARGETS["onnx"]
        self.text = get_modality(bundle.modality).token_inputs  # token ids: sequence axes, length buckets
        self.input_names: list[str] = bundle.input_names
        self._calibration: dict[int, Batch] = {}
        self._example: tuple[np.ndarray, ...] | None = None

    @property
    def sequence_length(self) -> int | None:
        """Text: the fixed sequence length of this target's artifacts (the bundle's max_length), else None."""
        return int(self.bundle.preprocess["max_length"]) if self.text and self.target.fixed_sequence else None

    def converted(self, path: Path, build: Any, *key: Any) -> Path:
        """``path`` written by ``build(path)`` once per bundle and ``key`` in this process: the fp32 conversion
        every precision of a target starts from is reused by the next precision (export_all), not redone."""
        cache = self.bundle.__dict__.setdefault("_converted", {})
        k = (self.target.name, self.options.layout, self.dynamic_batch, self.options.opset, path.name, *key)
        if k in cache:
            path.write_bytes(cache[k])
        else:
            build(path)
            cache[k] = path.read_bytes()
        return path

    @property
    def sequence_buckets(self) -> list[int] | None:
        """Text on a fixed-shape target: the lengths it gets a signature for (powers of two from 8 below
        max_length, and max_length), so that short texts do not pay for the longest."""
        full = self.sequence_length
        return None if full is None else sorted({b for b in SEQUENCE_BUCKETS if b < full} | {full})

    @property
    def dynamic_batch(self) -> bool:
        """Images: as asked (--dynamic-batch); text: whenever the target takes dynamic shapes."""
        return self.options.dynamic_batch or (self.text and not self.target.fixed_sequence)

    def calibration(self, samples: int | None = None) -> Batch:
        """``samples`` (default ``--calibration-samples``) preprocessed calibration inputs, read once per count."""
        n = samples or self.options.calibration_samples
        if n not in self._calibration:
            self._calibration[n] = calibration_inputs(self.bundle, n, self.options.calibration, length=self.sequence_length)
        return self._calibration[n]

    def calibration_feeds(self, samples: int | None = None) -> list[dict[str, np.ndarray]]:
        """One named-input dict per calibration sample (batch 1); texts at their own length unless fixed."""
        calib = self.calibration(samples)
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
            spec = {
                "name": self.input_names,
                "shape": shape,
                "dtype": "int64",
                "layout": "NT",
                "pad_id": int(self.bundle.processor.pad_token_id or 0),
            }
        else:  # NCHW images, NCT audio (batch, mel bins, frames)
            spec = {
                "name": self.input_names[0],
                "shape": shape,
                "dtype": "float32",
                "layout": self.bundle.manifest["input"].get("layout", "NCHW"),
            }
        return {**spec, **extra}

    def output_spec(self, name: str) -> dict[str, Any]:
        """The manifest's output spec: float32 [batch, num_outputs], batch named when dynamic."""
        batch = "batch" if self.dynamic_batch else 1
        return {"name": name, "shape": [batch, self.bundle.manifest["model"]["num_outputs"]], "dtype": "float32"}

    def calibration_record(self, samples: int) -> dict[str, Any]:
        """What the manifest's converter section says about calibration."""
        source = self.options.calibration or CALIBRATION_SOURCES[calibration_split(self.bundle)]
        return {"calibration_samples": int(samples), "calibration_source": source}


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
        raise EdgetlError(
            f"--io int8 needs a full-int8 artifact of a target that supports it (tflite --quantize int8), not {target} {options.precision}"
        )
    if options.calibration_samples < 1 or (options.parity_samples is not None and options.parity_samples < 1):
        raise EdgetlError("--calibration-samples and --parity-samples must be at least 1")
    drop = options.max_accuracy_drop
    if drop not in (None, "auto") and not (isinstance(drop, (int, float)) and math.isfinite(drop) and drop >= 0):
        raise EdgetlError(f"--max-accuracy-drop must be 0 or more (points of the metric), auto or none, not {drop}")
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
    return Owned("artifact folder", (ARTIFACT_MANIFEST,), frozenset(files | {ARTIFACT_MANIFEST, TOKENIZER_FILE, CONVERT_LOG}))


def validate_bundle(bundle: Bundle, options: ExportOptions) -> None:
    """Reject what the bundle's family or modality cannot export."""
    if bundle.manifest.get("family") not in family_names():
        raise EdgetlError(f"{bundle.path}: exporting family {bundle.manifest.get('family')} is not supported yet")
    modality = get_modality(bundle.modality)
    if not modality.layout_io and (options.layout != "nchw" or options.io != "float"):
        raise EdgetlError(f"--layout and --io apply to image models; {modality.a_name} artifact takes {modality.artifact_input}")
    modality.check_export(bundle)  # text: the fast tokenizer every artifact carries


def export(bundle_dir: str | Path | Bundle, target: str = "onnx", precision: str = "fp32", **options: Any) -> Artifact:
    """Export a bundle to one target and precision; returns the proven artifact (guarded: see ``guard.py``)."""
    try:
        opts = ExportOptions(precision=precision, **options)
    except TypeError as exc:
        raise EdgetlError(f"export: {exc}") from None
    if not isinstance(bundle_dir, Bundle) and asr.is_transcription_bundle(bundle_dir):
        asr.validate_asr(target, precision)
        return asr.export_transcriber(asr.TranscriptionBundle(bundle_dir, opts.parity_samples), target, precision, opts)
    validate_request(target, opts)
    bundle = bundle_dir if isinstance(bundle_dir, Bundle) else load_bundle(bundle_dir)
    validate_bundle(bundle, opts)
    name = artifact_name(target, opts)
    dest, rejected = artifact_folders(bundle.path, name)
    with atomic_dir(dest) as tmp:
        try:
            with captured(tmp / CONVERT_LOG, live=opts.verbose) as log:
                manifest = _export_into(tmp, bundle, target, name, opts, rejected)
        except ExportRejected:
            if rejected.is_dir() and (tmp / CONVERT_LOG).is_file():  # the candidate keeps its converters' log
                shutil.copy2(tmp / CONVERT_LOG, rejected / CONVERT_LOG)
            raise
    log.path = dest / CONVERT_LOG
    drop_rejected(rejected)
    (dest.parent / f"{name}.rejected.json").unlink(missing_ok=True)  # the record older versions wrote
    return Artifact(dest, manifest, log)


def artifact_folders(bundle_path: Path, name: str) -> tuple[Path, Path]:
    """``BUNDLE/export/NAME`` and its ``.rejected`` twin, both checked to be edgetl's to replace; the export folder
    made and cleared of killed exports' temp folders."""
    export_root = bundle_path / EXPORT_DIR
    if export_root.exists() and not export_root.is_dir():
        raise EdgetlError(f"{export_root} is a file; edgetl writes artifacts into that folder: move the file away")
    dest, rejected = export_root / name, export_root / f"{name}{REJECTED}"
    for folder in (dest, rejected):
        check_folder(folder, artifact_owned(folder), flag="artifact folder", replacing=True)
    export_root.mkdir(exist_ok=True)
    clean_stale(export_root)  # temp folders of exports that were killed
    return dest, rejected


def drop_rejected(rejected: Path) -> None:
    """An earlier rejection no longer holds: its files go, the folder only if nothing else is in it."""
    if rejected.is_dir():
        remove_owned(rejected, artifact_owned(rejected))
        with contextlib.suppress(OSError):
            rejected.rmdir()


REJECTED = ".rejected"  # suffix of a candidate that failed its checks, kept for inspection, never benchmarked


class GuardSet:
    """The held-out samples every attempt of one export is measured on: inputs one row each (texts at their
    own length), targets, and the PyTorch reference outputs, computed once per bundle and sample count."""

    def __init__(self, bundle: Bundle, n: int | None) -> None:
        inputs, self.targets = held_out(bundle, n or PARITY_CAP)
        self.reference = bundle.predict_batched(inputs)
        count = batch_len(inputs)
        self.rows = [batch_rows(inputs, i, i + 1) for i in range(count)]
        # texts at their own length (a fixed-length artifact pads them back); other inputs as they are
        self.rows = [get_modality(bundle.modality).unpad(r) for r in self.rows]
        self.subset = np.unique(np.linspace(0, count - 1, min(count, guard.SENSITIVITY_SAMPLES)).round().astype(int))

    @classmethod
    def of(cls, bundle: Bundle, n: int | None) -> GuardSet:
        cache = bundle.__dict__.setdefault("_guard_sets", {})
        if n not in cache:
            cache[n] = cls(bundle, n)
        return cache[n]

    def run(self, folder: Path, threads: int | None, subset: bool = False) -> tuple[np.ndarray, list[float]]:
        """The artifact's outputs on every row (or the sensitivity subset), and each call's seconds."""
        predictor = load_predictor(folder, DeviceOptions(threads=threads))
        outputs, seconds = [], []
        for i in self.subset if subset else range(len(self.rows)):
            t0 = time.perf_counter()
            outputs.append(predictor.predict(self.rows[i]))
            seconds.append(time.perf_counter() - t0)
        return np.concatenate(outputs), seconds


def _export_into(tmp: Path, bundle: Bundle, target: str, name: str, opts: ExportOptions, rejected: Path) -> dict[str, Any]:
    """Convert into ``tmp`` (climbing the guard's ladder for int8), prove it; returns the manifest. A candidate
    that fails is kept as ``rejected`` and ``ExportRejected`` raised."""
    module = importlib.import_module(TARGETS[target].module)
    work = tmp / ".work"
    work.mkdir()
    ctx = ExportContext(bundle, opts, tmp, TARGETS[target], work=work)
    gset = GuardSet.of(bundle, opts.parity_samples)
    budget = guard.budget_for(bundle.task, opts.max_accuracy_drop) if opts.precision != "fp32" else None
    ctx.guard_set, ctx.budget = gset, budget
    where = f"{target} {name}"
    attempts: list[Path] = []

    def write(plan: guard.Plan) -> tuple[Path, dict[str, Any]]:
        t0 = time.time()
        folder = work / f"attempt-{len(attempts)}"
        folder.mkdir()
        attempts.append(folder)
        ctx.out, ctx.plan = folder, plan
        info = module.export(ctx)
        if ctx.text:
            info["tokenizer"] = _copy_tokenizer(ctx)
        manifest = _manifest(bundle, target, name, opts, info, folder, time.time() - t0)
        write_json(folder / ARTIFACT_MANIFEST, manifest)
        return folder, manifest

    def attempt(plan: guard.Plan, rung: str) -> guard.Attempt:
        folder, manifest = write(plan)
        outputs, seconds = gset.run(folder, opts.threads)
        report = compare(gset.reference, outputs, gset.targets, bundle.task, bundle.manifest["model"]["num_outputs"])
        report["p50_ms"] = round(1000 * float(np.median(seconds)), 3)  # batch 1, this machine, during the check
        drop = math.inf
        if not report.get("non_finite_outputs"):
            report["guard"] = {**guard.paired_drop(gset.reference, outputs, gset.targets, bundle.task), "budget": budget}
            drop = report["guard"]["drop"]
        manifest["parity"] = report
        return guard.Attempt(plan, rung, folder, manifest, drop)

    def score(plan: guard.Plan) -> float:
        folder, _ = write(plan)
        outputs, _ = gset.run(folder, opts.threads, subset=True)
        shutil.rmtree(folder)
        return guard.divergence(gset.reference[gset.subset], outputs) if not non_finite(outputs) else math.inf

    ladder = getattr(module, "ladder", None)
    if budget is not None and opts.guard and opts.precision.startswith("int8") and ladder is not None:
        chosen, history = guard.climb(attempt, lambda: ladder(ctx), score, budget)
    else:
        chosen = attempt(guard.Plan(), "default")
        history = [chosen.summary()]
    manifest = chosen.manifest
    report = manifest["parity"]
    manifest["guard"] = _guard_record(chosen, history, budget, bundle.task)
    manifest["export_seconds"] = round(time.time() - ctx.started, 2)
    manifest["export_peak_rss_mb"] = round(peak_rss_mb(), 1)  # of this process so far (conversion + parity)
    try:
        check(report, opts.precision, budget, where, unit=guard.UNIT[bundle.task])
    except ExportRejected as exc:
        exc.report = report  # type: ignore[attr-defined]
        manifest["rejected"] = str(exc)
        _keep_rejected(chosen.folder, rejected, manifest)
        raise ExportRejected(f"{exc}; the candidate is kept for inspection in {rejected}") from None
    write_json(chosen.folder / ARTIFACT_MANIFEST, manifest)
    for f in chosen.folder.iterdir():
        os.replace(f, tmp / f.name)
    shutil.rmtree(work)
    return manifest


def _guard_record(chosen: guard.Attempt, history: list[dict[str, Any]], budget: float | None, task: str) -> dict[str, Any]:
    """The manifest's account of the guard: budget, rung, layers kept in float, drop before and after."""
    first = history[0]
    floats = list(chosen.plan.float_layers) or list(chosen.manifest.get("converter", {}).get("float_ops", []))
    return {
        "budget": budget,
        "unit": guard.UNIT[task],
        "rung": chosen.rung,
        "calibration": chosen.plan.calibration,
        "float_layers": floats,
        "drop_before": first["drop"],
        "drop_after": round(chosen.drop, 3),
        "ci95": chosen.summary()["ci95"],
        "p50_ms_before": first["p50_ms"],
        "size_bytes_before": first["size_bytes"],
        "attempts": history,
    }


def _keep_rejected(folder: Path, rejected: Path, manifest: dict[str, Any]) -> None:
    """The failed candidate, with its manifest and why, as ``<name>.rejected/``: never a normal artifact."""
    write_json(folder / ARTIFACT_MANIFEST, manifest)
    with atomic_dir(rejected) as keep:
        for f in folder.iterdir():
            os.replace(f, keep / f.name)


def _copy_tokenizer(ctx: ExportContext) -> dict[str, Any]:
    """Copy the bundle's tokenizer.json next to the model and describe how to use it."""
    shutil.copyfile(ctx.bundle.path / ctx.bundle.preprocess.get("files", "encoder") / TOKENIZER_FILE, ctx.out / TOKENIZER_FILE)
    fixed = ctx.sequence_length is not None and not ctx.sequence_buckets  # buckets: the predictor pads up to one
    proc = ctx.bundle.processor
    return {
        "file": TOKENIZER_FILE,
        "library": "tokenizers",
        "class": ctx.bundle.preprocess.get("tokenizer"),
        "max_length": int(ctx.bundle.preprocess["max_length"]),
        "truncation": True,
        "padding": "max_length" if fixed else "longest",
        "padding_side": "right",
        "pad_token": proc.pad_token,
        "pad_id": int(proc.pad_token_id or 0),
        "input_names": ctx.input_names,
    }


def _manifest(
    bundle: Bundle, target: str, name: str, opts: ExportOptions, info: dict[str, Any], folder: Path, seconds: float
) -> dict[str, Any]:
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
        "log": CONVERT_LOG,  # the converters' and quantisers' output, beside the manifest (not in ``files``)
        **info,  # model_file, input, output, converter, runtime_config (+ tokenizer for text)
        "versions": {**library_versions(), **info.get("versions", {})},
    }


def export_all(
    bundle_dir: str | Path,
    targets: list[str] | None = None,
    precisions: list[str] | None = None,
    progress: Callable[[str, str, str, Any], None] | None = None,
    **options: Any,
) -> tuple[list[Artifact], list[tuple[str, str, EdgetlError]]]:
    """Every requested (target, precision) pair; a failure does not stop the others. ``progress(event, target,
    precision, what)`` hears ``start`` (None), then ``done`` (the Artifact) or ``failed`` (the error)."""
    report = progress or (lambda *_: None)
    if asr.is_transcription_bundle(bundle_dir):
        return _export_all_asr(bundle_dir, targets, precisions, report, options)
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
    _ = bundle.model  # a missing, damaged or diverged bundle is one error, not one per artifact
    validate_bundle(bundle, ExportOptions(**options))
    pairs = [(t, p) for t in targets or list(TARGETS) for p in precisions or list(TARGETS[t].precisions)]
    return _each(pairs, lambda t, p: export(bundle, t, p, **options), report)


def _each(
    pairs: list[tuple[str, str]], run: Callable[[str, str], Artifact], report: Callable[..., Any]
) -> tuple[list[Artifact], list[tuple[str, str, EdgetlError]]]:
    """``run`` every (target, precision); a failure is recorded and reported, and the next one runs."""
    done, failed = [], []
    for target, precision in pairs:
        report("start", target, precision, None)
        try:
            done.append(run(target, precision))
        except EdgetlError as exc:
            failed.append((target, precision, exc))
            report("failed", target, precision, exc)
        else:
            report("done", target, precision, done[-1])
    return done, failed


def _export_all_asr(
    bundle_dir: str | Path, targets: list[str] | None, precisions: list[str] | None, report: Callable[..., Any], options: Any
) -> tuple[list[Artifact], list[tuple[str, str, EdgetlError]]]:
    """``export_all`` for a transcription bundle: its own targets and precisions, one held-out reference."""
    pairs = [(t, p) for t in targets or list(asr.ASR_TARGETS) for p in precisions or asr.ASR_TARGETS.get(t, ("fp32",))[1]]
    for t, p in pairs:
        asr.validate_asr(t, p)
    try:
        opts = ExportOptions(**options)
    except TypeError as exc:
        raise EdgetlError(f"export: {exc}") from None
    bundle = asr.TranscriptionBundle(bundle_dir, opts.parity_samples)
    return _each(pairs, lambda t, p: asr.export_transcriber(bundle, t, p, replace(opts, precision=p)), report)
