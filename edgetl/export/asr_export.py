"""Exporting a transcription bundle: Whisper's encoder and cached decoder, proven token for token.

Targets and precisions (``ASR_TARGETS``):

- ``onnx``: edgetl's own graphs (``asr_graphs.py``) through ``torch.onnx.export`` (TorchScript exporter, opset
  17). Not Optimum's: its Whisper export needs optimum-onnx, which pins transformers <4.58 and optimum 2.1, and
  its decoder hands the cross-attention cache back through every step; here the encoder graph computes the
  cross keys/values once and the numpy loop on the device knows five tensors by name. fp16: onnxconverter-common,
  float32 inputs and outputs; int8-dynamic: ORT ``quantize_dynamic`` (int8 MatMul weights, activations
  quantised at run time) of both graphs.
- ``openvino``: the fp32 ONNX graphs read by OpenVINO; fp16: compressed weights; int8-dynamic: NNCF int8
  weight-only compression.
- ``ctranslate2``: CTranslate2's own Transformers converter (``asr_ctranslate2.py``): what faster-whisper runs.
- ``tflite``: ``litert_torch.convert`` of the encoder graph and of a decoder with a fixed-size cache (prompt +
  max_new_tokens slots, ``asr_tflite.py``); fp16 and int8-dynamic by ai-edge-quantizer.

Parity: the artifact's greedy tokens on the bundle's held-out clips (test, else val) against PyTorch
``generate`` of the bundle (``Recognizer.token_ids``), and the WER of both. fp32 ONNX, OpenVINO and TFLite must
match every clip token for token; every precision must keep WER within the budget (default 1 point) of PyTorch's.
A candidate that fails is kept as ``NAME.rejected`` and the export exits 3, as for classification.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edgetl_runtime import ARTIFACT_MANIFEST, DeviceOptions
from edgetl_runtime.audio import SAMPLE_RATE, load_audio
from edgetl_runtime.base import peak_rss_mb
from edgetl_runtime.metrics import DEFAULT_BUDGET

from ..atomic import atomic_dir, write_json
from ..bundle import ASR_DIR, MANIFEST, SPLITS, library_versions
from ..errors import EdgetlError
from ..family.speech_asr import MAX_NEW_TOKENS, strip_eos
from .convert_log import CONVERT_LOG, captured
from .parity import ExportRejected

ASR_TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {  # target -> (runtime, precisions)
    "onnx": ("onnxruntime", ("fp32", "fp16", "int8-dynamic")),
    "openvino": ("openvino", ("fp32", "fp16", "int8-dynamic")),
    "ctranslate2": ("ctranslate2", ("fp32", "fp16", "int8-dynamic")),
    "tflite": ("litert", ("fp32", "fp16", "int8-dynamic")),
}
PARITY_CLIPS = 200  # held-out clips the check decodes at most by default


def is_transcription_bundle(path: str | Path) -> bool:
    try:
        return json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8")).get("task") == "transcription"
    except (OSError, ValueError, AttributeError):
        return False


class TranscriptionBundle:
    """A transcription bundle for export: its manifest, Whisper folder, held-out clips and PyTorch's tokens on them."""

    def __init__(self, path: str | Path, parity_samples: int | None = None) -> None:
        self.path = Path(path)
        try:
            self.manifest = json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
            splits = json.loads((self.path / SPLITS).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EdgetlError(
                f"{self.path} is not a finished transcription bundle ({type(exc).__name__}); run `edgetl finetune`"
            ) from None
        self.folder = self.path / ASR_DIR
        if not (self.folder / "config.json").is_file():
            raise EdgetlError(f"{self.folder} is missing; the bundle is damaged: re-run `edgetl finetune`")
        rows = splits.get("test") or splits.get("val") or []
        if not rows:
            raise EdgetlError(f"{self.path / SPLITS} lists no val or test clips to prove an export on")
        rows = rows[: parity_samples or PARITY_CLIPS]
        self.texts = [str(r["text"]) for r in rows]
        self.clips = [load_audio(r["path"], SAMPLE_RATE) for r in rows]
        self._reference: dict[str, Any] | None = None
        self._recognizer: Any = None
        self._onnx: dict[str, bytes] = {}

    @property
    def recognizer(self) -> Any:
        if self._recognizer is None:
            from ..family.speech_asr import load_recognizer

            self._recognizer = load_recognizer(str(self.folder))
        return self._recognizer

    def reference(self) -> dict[str, Any]:
        """PyTorch greedy tokens, texts and error rates on the held-out clips (once per bundle)."""
        if self._reference is None:
            from ..data.transcripts import error_rates

            rec = self.recognizer
            eos = rec.generation.eos_token_id
            tokens = [strip_eos(row, eos) for row in rec.token_ids(self.clips, max_new_tokens=MAX_NEW_TOKENS)]
            heard = [rec.tokenizer.decode(t, skip_special_tokens=True).strip() for t in tokens]
            self._reference = {"tokens": tokens, "texts": heard, **error_rates(self.texts, heard)}
        return self._reference

    def decoding(self) -> dict[str, Any]:
        """The manifest's ``decoding``: what ``generate`` does, for the device's loop to do the same."""
        rec = self.recognizer
        g, c = rec.generation, rec.model.config
        names = (
            ["<|notimestamps|>"] if not getattr(g, "is_multilingual", False) else ["<|en|>", "<|transcribe|>", "<|notimestamps|>"]
        )
        prompt = [int(g.decoder_start_token_id), *(int(rec.tokenizer.token_to_id(n)) for n in names)]
        return {
            "prompt": prompt,
            "eos": int(g.eos_token_id),
            "suppress": [int(t) for t in g.suppress_tokens or []],
            "begin_suppress": [int(t) for t in g.begin_suppress_tokens or []],
            "max_new_tokens": rec.token_limit,
            "layers": int(c.decoder_layers),
            "heads": int(c.decoder_attention_heads),
            "head_dim": int(c.d_model // c.decoder_attention_heads),
        }

    def onnx_fp32(self, out: Path) -> None:
        """encoder.onnx and decoder.onnx in fp32 into ``out``, exported once per bundle in this process."""
        if not self._onnx:
            from .asr_onnx import export_graphs

            export_graphs(self.recognizer.model, out)
            self._onnx = {n: (out / n).read_bytes() for n in ("encoder.onnx", "decoder.onnx")}
        for name, data in self._onnx.items():
            (out / name).write_bytes(data)


def validate_asr(target: str, precision: str) -> None:
    if target not in ASR_TARGETS:
        raise EdgetlError(f"a transcription bundle exports to {', '.join(ASR_TARGETS)}, not '{target}'")
    if precision not in ASR_TARGETS[target][1]:
        raise EdgetlError(f"{target} transcription artifacts come in {', '.join(ASR_TARGETS[target][1])}, not '{precision}'")


def export_transcriber(tb: TranscriptionBundle, target: str, precision: str, options: Any) -> Any:
    """One proven transcription artifact in ``BUNDLE/export/TARGET-PRECISION`` (``options``: ExportOptions)."""
    from .api import Artifact, _keep_rejected, artifact_folders, drop_rejected

    validate_asr(target, precision)
    name = f"{target}-{precision}"
    dest, rejected = artifact_folders(tb.path, name)
    started = time.time()
    with atomic_dir(dest) as tmp:
        with captured(tmp / CONVERT_LOG, live=options.verbose) as log:
            work = tmp / ".work"
            work.mkdir()
            info = _convert(tb, target, precision, work)
            manifest = _manifest(tb, target, name, precision, options, info, work)
            write_json(work / ARTIFACT_MANIFEST, manifest)
            manifest["parity"] = parity(tb, work, options.threads)
            manifest["export_seconds"] = round(time.time() - started, 2)
            manifest["export_peak_rss_mb"] = round(peak_rss_mb(), 1)
            problem = _problem(manifest["parity"], target, precision, options.max_accuracy_drop)
            if problem:
                manifest["rejected"] = problem
                _keep_rejected(work, rejected, manifest)
                raise ExportRejected(f"{target} {name}: {problem}; the candidate is kept for inspection in {rejected}")
            write_json(work / ARTIFACT_MANIFEST, manifest)
            for f in work.iterdir():
                f.replace(tmp / f.name)
            work.rmdir()
    log.path = dest / CONVERT_LOG
    drop_rejected(rejected)
    return Artifact(dest, manifest, log)


def _convert(tb: TranscriptionBundle, target: str, precision: str, out: Path) -> dict[str, Any]:
    if target == "ctranslate2":
        from .asr_ctranslate2 import convert

        info = convert(tb.folder, out, precision.removesuffix("-dynamic"))
        info.setdefault("model_file", "model.bin")
        return info
    if target == "tflite":
        from .asr_tflite import export_tflite

        d = tb.decoding()
        info = export_tflite(tb.recognizer.model, out, precision, len(d["prompt"]) + d["max_new_tokens"])
        shutil.copyfile(tb.folder / "tokenizer.json", out / "tokenizer.json")
        return info
    from . import asr_onnx

    tb.onnx_fp32(out)
    if target == "onnx":
        info = asr_onnx.finish_onnx(out, precision)
    else:
        info = asr_onnx.to_openvino(out, precision)
    shutil.copyfile(tb.folder / "tokenizer.json", out / "tokenizer.json")
    return info


def _manifest(
    tb: TranscriptionBundle, target: str, name: str, precision: str, options: Any, info: dict[str, Any], folder: Path
) -> dict[str, Any]:
    m = tb.manifest
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file() and p.name != ARTIFACT_MANIFEST}
    n_mels = int(m["preprocess"]["n_mels"])
    return {
        "format": "edgetl-artifact",
        "version": 1,
        "name": name,
        "target": target,
        "runtime": ASR_TARGETS[target][0],
        "precision": precision,
        "modality": "audio",
        "task": "transcription",
        "labels": [],
        "preprocess": {**m["preprocess"], "n_fft": 400, "hop_length": 160},
        "bundle": {"path": str(tb.path), "arch": f"{m['family']}:{m['arch']}", "created": m.get("created")},
        "options": asdict(options),
        "files": files,
        "size_bytes": sum(files.values()),
        "log": CONVERT_LOG,
        "input": {
            "name": "input_features",
            "shape": [1, n_mels, int(m["preprocess"]["frames"])],
            "dtype": "float32",
            "layout": "NCT",
        },
        "output": {"name": "tokens", "shape": [1, "tokens"], "dtype": "int64"},
        "tokenizer": {"file": "tokenizer.json", "library": "tokenizers"},
        "decoding": tb.decoding(),
        **info,
        "versions": {**library_versions(), **info.get("versions", {})},
    }


def parity(tb: TranscriptionBundle, folder: Path, threads: int | None) -> dict[str, Any]:
    """The artifact's tokens, texts and WER on the held-out clips against PyTorch's, with its timings."""
    from edgetl_runtime.transcriber import load_transcriber

    from ..data.transcripts import error_rates

    ref = tb.reference()
    t = load_transcriber(folder, DeviceOptions(threads=threads))
    tokens = t.token_ids(tb.clips, MAX_NEW_TOKENS)
    heard = [t.decode(x) for x in tokens]
    rates = error_rates(tb.texts, heard)
    same = [a == b for a, b in zip(tokens, ref["tokens"])]
    diverged = [_first_difference(a, b) for a, b in zip(tokens, ref["tokens"]) if a != b]
    return {
        "clips": len(tb.clips),
        "token_match": sum(same) / len(same),
        "mismatched_clips": len(same) - sum(same),
        "first_divergence": min(diverged) if diverged else None,
        "wer": rates["wer"],
        "cer": rates["cer"],
        "reference_wer": ref["wer"],
        "reference_cer": ref["cer"],
        "wer_drop_points": round(100 * (rates["wer"] - ref["wer"]), 3),
        "examples": [{"reference": r, "artifact": h} for r, h, s in zip(ref["texts"], heard, same) if not s][:5],
        "encoder_ms_p50": round(1000 * float(np.median([s["encoder_s"] for s in t.stats])), 3),
        "per_token_ms_p50": round(1000 * float(np.median([s["per_token_s"] for s in t.stats])), 3),
    }


def _first_difference(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def _problem(report: dict[str, Any], target: str, precision: str, budget: Any) -> str | None:
    """Why the artifact fails its check, or None."""
    if not all(math.isfinite(report[k]) for k in ("wer", "cer")):
        return "its error rates are not finite"
    if precision == "fp32" and target in ("onnx", "openvino", "tflite") and report["mismatched_clips"]:
        return (
            f"fp32 decodes {report['mismatched_clips']} of {report['clips']} held-out clips differently from PyTorch "
            f"(first at token {report['first_divergence']})"
        )
    limit = DEFAULT_BUDGET["transcription"] if budget == "auto" else budget  # WER points (100 x)
    if limit is not None and report["wer_drop_points"] > limit:
        return f"WER {100 * report['wer']:.2f} is {report['wer_drop_points']:.2f} points above PyTorch's, over the budget of {limit:g}"
    return None
