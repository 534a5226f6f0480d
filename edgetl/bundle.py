"""A fine-tuned model on disk: ``model.safetensors`` + ``edgetl.json``.

The manifest holds everything later stages need (family, architecture, task,
labels, preprocessing, input spec, weight source, training config, metrics,
versions); exporters and predictors read it, never training state. A folder is
a bundle only once ``edgetl.json`` exists: it is written last, atomically.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgetl_runtime.base import ManifestFacts, check_manifest, read_json
from edgetl_runtime.manifest import TensorSpec

from .atomic import atomic_path, write_json
from .errors import EdgetlError
from .family.hf import BUNDLE_SUBDIR
from .modality import get_modality
from .task import get_task

if TYPE_CHECKING:  # torch is imported only where a model is built or run: reading a manifest needs none
    import torch

    from .model import TransferModel

MANIFEST = "edgetl.json"
WEIGHTS = "model.safetensors"
SPLITS = "splits.json"  # the exact files of each split: calibration and parity samples for exporters
TARGET_SPLIT = "target"  # an adapted bundle's unlabelled target samples (no label in its rows)
TARGET_TEST = "target_test"  # its labelled target test split, if the target had one (report, parity, benchmark)
BUNDLE_FORMAT = "edgetl-bundle"
BUNDLE_VERSION = 1  # the newest bundle manifest this edgetl reads
ASR_DIR = "whisper"  # a transcription bundle's Hugging Face Whisper folder: weights, configs, tokenizer.json
EXPORT_DIR, BENCH_DIR = "export", "benchmark"  # what `edgetl export` and `edgetl benchmark` add inside a bundle
FIGURES, EVALUATION = "figures", "evaluation.json"  # pictures and the held-out split's errors (train/figures.py)
REPORT = "report.html"  # `edgetl report`
LOG_DIRS = ("tensorboard", "mlruns")  # --log tensorboard / mlflow (train/loggers.py)
BUNDLE_ENTRIES = frozenset(
    {MANIFEST, WEIGHTS, SPLITS, BUNDLE_SUBDIR, EXPORT_DIR, BENCH_DIR, FIGURES, EVALUATION, REPORT, *LOG_DIRS}
)
# what export, predict and benchmark read from a bundle manifest: (dotted key, allowed types)
BUNDLE_FIELDS: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("family", (str,)),
    ("arch", (str,)),
    ("task", (str,)),
    ("model", (dict,)),
    ("model.family", (str,)),
    ("model.arch", (str,)),
    ("model.task", (str,)),
    ("model.num_outputs", (int,)),
    ("preprocess", (dict,)),
    ("input", (dict,)),
    ("input.name", (str, list)),
    ("input.shape", (list,)),
    ("input.dtype", (str,)),
    ("output", (dict,)),
    ("data", (dict,)),
    ("metrics", (dict,)),
    ("training", (dict,)),
)


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("edgetl", "torch", "torchvision", "timm", "transformers", "tokenizers", "numpy", "pillow", "safetensors"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def save_weights(model: torch.nn.Module, path: Path) -> None:
    save_state(model.state_dict(), path)


def save_state(state: dict[str, torch.Tensor], path: Path) -> None:
    """A state dict as safetensors, atomically."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(tmp))


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The bundle's manifest as written, after ``BundleManifest`` checked every field later stages read."""
    path = Path(path)
    mfile = path / MANIFEST
    if not mfile.is_file():
        raise EdgetlError(f"{path} is not an edgetl bundle (no {MANIFEST}); pass a folder written by `edgetl finetune`")
    manifest = read_json(mfile, "re-run `edgetl finetune` to rewrite it")
    BundleManifest.from_json(manifest, mfile)
    return manifest


def relative_paths(splits: dict[str, list[dict[str, Any]]], bundle_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """``splits`` with each sample's ``path`` relative to the bundle folder (POSIX separators)."""
    base = os.path.abspath(bundle_dir)
    return {
        name: [{**r, "path": Path(os.path.relpath(os.path.abspath(r["path"]), base)).as_posix()} for r in rows]
        for name, rows in splits.items()
    }


def _sample_base(path: Path, manifest: dict[str, Any], rows: list[dict[str, Any]]) -> Path:
    """Where relative sample paths start: the bundle folder (moved with its data), else where the bundle was
    written (moved alone); bundles of older versions stored paths relative to the folder edgetl ran in."""
    paths = (manifest.get("data") or {}).get("paths") or {}
    if paths.get("relative_to") != "bundle":
        return Path.cwd()
    candidates = [path.resolve()] + ([Path(paths["bundle_was_at"])] if paths.get("bundle_was_at") else [])
    probe = [r["path"] for r in rows[:3] if not os.path.isabs(r["path"])]
    for base in candidates:
        if all((base / p).exists() for p in probe):
            return base
    return candidates[0]


def read_splits(path: str | Path, manifest: dict[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The bundle's ``splits.json``, sample paths resolved to absolute ones (see ``_sample_base``)."""
    path = Path(path)
    sfile = path / SPLITS
    if not sfile.is_file():
        raise EdgetlError(f"{path} has no {SPLITS}; re-run `edgetl finetune` (or pass your own samples: --data, --calibration)")
    splits = read_json(sfile, "it is damaged: re-run `edgetl finetune` to rewrite it")
    if not isinstance(splits, dict) or not all(
        isinstance(v, list) and all(isinstance(r, dict) for r in v) for v in splits.values()
    ):
        raise EdgetlError(f"{sfile} is damaged (expected {{split: [samples]}}); re-run `edgetl finetune` to rewrite it")
    manifest = manifest if manifest is not None else read_manifest(path)
    rows = [r for name, v in splits.items() for r in v if name != TARGET_SPLIT]
    key = get_modality(manifest.get("modality", "image")).sample_key
    value = get_task(manifest.get("task", "")).target_key
    for r in rows:
        if not isinstance(r.get(key), str) or r.get(value) is None:
            raise EdgetlError(
                f"{sfile} is damaged (a sample without its {key} or {value}); re-run `edgetl finetune` to rewrite it"
            )
        if value == "target" and not (isinstance(r[value], (int, float)) and math.isfinite(r[value])):
            raise EdgetlError(f"{sfile} is damaged (target {r[value]!r} is not a finite number); re-run `edgetl finetune`")
        if value == "label" and r[value] not in manifest.get("labels", []):
            raise EdgetlError(
                f"{sfile} is damaged (label {r[value]!r} is not one of the bundle's labels); re-run `edgetl finetune`"
            )
    if key != "path" or not rows:
        return splits
    base = _sample_base(path, manifest, rows)
    return {name: [{**r, "path": os.path.normpath(base / r["path"])} for r in v] for name, v in splits.items()}


@dataclass
class Bundle(ManifestFacts):
    """A loaded bundle: its manifest and (lazily) its PyTorch model."""

    path: Path
    manifest: dict[str, Any]
    _model: TransferModel | None = field(default=None, repr=False)
    _processor: Any = field(default=None, repr=False)

    @property
    def model(self) -> TransferModel:
        if self._model is None:
            self._model, self._processor = _load_model(self.path, self.manifest)
        return self._model

    @property
    def processor(self) -> Any:
        """The text tokenizer saved in the bundle (None for images and audio)."""
        if self._model is None:
            _ = self.model  # loading it sets the processor
        return self._processor

    @property
    def input_names(self) -> list[str]:
        name = self.manifest["input"]["name"]
        return list(name) if isinstance(name, list) else [name]

    def encode_texts(self, texts: list[str], length: int | None = None) -> dict[str, np.ndarray]:
        """Raw texts -> int64 token ids and attention mask with the bundle's own tokenizer, truncated at
        max_length and right-padded to ``length`` (default: the longest text)."""
        from edgetl_runtime.text import pad_ids

        ids = self.processor(list(texts), truncation=True, max_length=self.preprocess["max_length"])["input_ids"]
        width = length or max(len(i) for i in ids)
        return pad_ids(ids, width, int(self.processor.pad_token_id or 0), self.input_names)

    def encode_audio(self, files: list[str]) -> np.ndarray:
        """Audio files -> log-mel features float32 [B, n_mels, frames], computed as in training (``runtime/audio.py``)."""
        from edgetl_runtime.audio import features

        if self.modality != "audio":  # a guard of this public method (predict and export ask the modality first)
            raise EdgetlError(f"{self.path} is not an audio bundle (modality {self.modality})")
        return features(files, self.preprocess, str(self.path))

    def predict_batched(self, inputs: Any, size: int = 64) -> np.ndarray:
        """``predict`` over any number of samples, ``size`` at a time (the reference parity and benchmarks compare with)."""
        from edgetl_runtime.base import batch_len, batch_rows

        n = batch_len(inputs)
        return np.concatenate([self.predict(batch_rows(inputs, i, i + size)) for i in range(0, n, size)])

    def predict(self, batch: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """Preprocessed float32 (NCHW images, NCT log-mel audio), or a dict of int64 token arrays (text) -> model outputs."""
        import torch

        inputs = get_modality(self.modality).model_inputs(batch, self.input_names)
        with torch.no_grad():
            return self.model(*inputs).numpy()


def _load_model(path: Path, manifest: dict[str, Any]) -> tuple[TransferModel, Any]:
    """Rebuild the model from the manifest and load its weights; a damaged bundle is one line, never a traceback."""
    import torch
    from safetensors.torch import load_file

    from .model import ModelSpec, build_model

    wfile = path / WEIGHTS
    if not wfile.is_file():
        raise EdgetlError(f"{path} has a manifest but no {WEIGHTS}; the bundle is incomplete, re-run `edgetl finetune`")
    try:
        spec = ModelSpec(**manifest["model"])
    except TypeError as exc:
        raise EdgetlError(f"{path / MANIFEST}: its 'model' section is damaged ({exc}); re-run `edgetl finetune`") from None
    try:
        model, backbone = build_model(spec, pretrained=False, bundle_dir=str(path))
    except EdgetlError:
        raise
    except Exception as exc:  # e.g. the encoder/ folder of a text or speech bundle is missing or damaged
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise EdgetlError(
            f"{path}: cannot rebuild the model from the bundle ({reason}); the bundle is damaged or "
            f"incomplete, re-run `edgetl finetune`"
        ) from None
    try:
        state = load_file(str(wfile))
    except Exception as exc:
        raise EdgetlError(
            f"{wfile} is not a readable safetensors file ({type(exc).__name__}); the bundle is damaged, re-run `edgetl finetune`"
        ) from None
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise EdgetlError(
            f"{wfile} holds non-finite weights (nan or inf in {', '.join(bad[:3])}); the run that wrote it "
            f"diverged: fine-tune again with lower learning rates"
        )
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:
        raise EdgetlError(f"{wfile} does not match the architecture in {MANIFEST} ({str(exc).splitlines()[0][:120]})") from None
    return model.eval(), backbone.processor


def load_bundle(path: str | Path) -> Bundle:
    """Open a bundle folder written by ``edgetl finetune``."""
    path = Path(path)
    manifest = read_manifest(path)
    if manifest["task"] == "transcription":  # issue 15: export has its own path (export/asr_export.py)
        raise EdgetlError(
            f"{path} is a speech recognition bundle: predict and benchmark do not take those yet; "
            f"transcribe with `edgetl transcribe --model {path} CLIP...`, export with `edgetl export {path}`"
        )
    return Bundle(path, manifest)


def write_manifest(path: Path, manifest: BundleManifest) -> None:
    write_json(path / MANIFEST, manifest.to_json())


@dataclass(frozen=True)
class BundleManifest:
    """A bundle's ``edgetl.json``, typed: what training wrote and every later stage reads.

    ``from_json`` checks every field export, predict and the benchmark read (one line naming the first bad
    one); ``to_json`` gives back the dict, with sections this version does not model kept in ``extra``."""

    family: str
    arch: str
    task: str
    model: Mapping[str, Any]  # the ModelSpec that rebuilds the network
    preprocess: Mapping[str, Any]
    input: TensorSpec
    output: TensorSpec
    data: Mapping[str, Any]
    metrics: Mapping[str, Any]
    training: Mapping[str, Any]
    modality: str = "image"
    labels: tuple[str, ...] = ()
    created: str | None = None
    weights_source: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[Mapping[str, Any], ...] = ()
    versions: Mapping[str, Any] = field(default_factory=dict)
    figures: Mapping[str, str] = field(default_factory=dict)  # name -> PNG path inside the bundle (train/figures.py)
    version: int = BUNDLE_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any, where: Any) -> BundleManifest:
        fix = "re-run `edgetl finetune` to rewrite it"
        if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise EdgetlError(f"{where} is not an edgetl bundle manifest (format is {found!r})")
        version = data.get("version", BUNDLE_VERSION)
        if not isinstance(version, int) or version > BUNDLE_VERSION:
            raise EdgetlError(
                f"{where}: it was written by a newer edgetl (bundle version {version}, this edgetl reads up to "
                f"{BUNDLE_VERSION}); upgrade edgetl"
            )
        check_manifest(data, BUNDLE_FIELDS, where, fix)
        known = {f.name for f in fields(cls)} | {"format"}
        return cls(
            family=data["family"],
            arch=data["arch"],
            task=data["task"],
            model=data["model"],
            preprocess=data["preprocess"],
            input=TensorSpec.from_json(data["input"], where, "input"),
            output=TensorSpec.from_json(data["output"], where, "output"),
            data=data["data"],
            metrics=data["metrics"],
            training=data["training"],
            modality=data.get("modality", "image"),
            labels=tuple(data.get("labels") or ()),
            created=data.get("created"),
            weights_source=data.get("weights_source") or {},
            history=tuple(data.get("history") or ()),
            versions=data.get("versions") or {},
            figures=data.get("figures") if isinstance(data.get("figures"), dict) else {},
            version=version,
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": BUNDLE_FORMAT, "version": self.version}
        if self.created is not None:
            out["created"] = self.created
        out.update(
            {
                "modality": self.modality,
                "family": self.family,
                "arch": self.arch,
                "task": self.task,
                "labels": list(self.labels),
                "model": dict(self.model),
                "weights_source": dict(self.weights_source),
                "preprocess": dict(self.preprocess),
                "input": self.input.to_json(),
                "output": self.output.to_json(),
                "training": dict(self.training),
                "data": dict(self.data),
                "metrics": dict(self.metrics),
                "history": [dict(h) for h in self.history],
                "versions": dict(self.versions),
                "figures": dict(self.figures),
            }
        )
        return {**out, **self.extra}
