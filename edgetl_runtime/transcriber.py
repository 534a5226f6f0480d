"""Speech recognition on the device: greedy Whisper decoding over an exported artifact, without torch.

An ONNX or OpenVINO transcription artifact holds two graphs (``edgetl/export/asr_graphs.py``): the encoder,
run once per 30 s window, gives every decoder layer's cross-attention keys and values; the decoder takes the
prompt, then one token at a time, with its self-attention cache. The loop here is what transformers'
``generate`` does for Whisper with greedy search and no timestamps: the manifest's ``suppress`` tokens are
never chosen, ``begin_suppress`` not as the first, and decoding stops at end-of-text or ``max_new_tokens``.
A CTranslate2 artifact decodes inside CTranslate2 (``ctranslate2_rt.py``). Texts come from ``tokenizers``.

    t = load_transcriber("runs/asr/export/onnx-int8-dynamic")
    t.transcribe(["clip.wav"])       # files or 16 kHz float32 arrays, any length (30 s windows, joined)
    t.stats[-1]                       # encoder_s, first_token_s, per_token_s, tokens of the last window
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .audio import SAMPLE_RATE, check_preprocess, load_audio, log_mel, split_windows
from .base import DeviceOptions, check_artifact_files, read_artifact_manifest
from .errors import DeviceUnavailable, EdgetlError

ENCODER_FILE = {"onnxruntime": "encoder.onnx", "openvino": "encoder.xml", "litert": "encoder.tflite"}
DECODER_FILE = {"onnxruntime": "decoder.onnx", "openvino": "decoder.xml", "litert": "decoder.tflite"}
RUNTIMES = ("onnxruntime", "openvino", "litert", "ctranslate2")


@dataclass
class Decoding:
    """How the artifact decodes (the manifest's ``decoding``): prompt, end, suppressed tokens, cache shape."""

    prompt: list[int]
    eos: int
    suppress: list[int]
    begin_suppress: list[int]
    max_new_tokens: int
    layers: int
    heads: int
    head_dim: int

    @classmethod
    def of(cls, manifest: dict[str, Any], where: Path) -> Decoding:
        d = manifest.get("decoding")
        try:
            return cls(**{k: d[k] for k in cls.__dataclass_fields__})  # type: ignore[index]
        except (TypeError, KeyError) as exc:
            raise EdgetlError(f"{where}: the manifest's 'decoding' lacks {exc}; re-run `edgetl export`") from None


class Graphs(Protocol):
    """The two graphs of a runtime: ``encode`` once per window, ``step`` per token."""

    device: str

    def encode(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def step(
        self, ids: np.ndarray, past_k: np.ndarray, past_v: np.ndarray, cross_k: np.ndarray, cross_v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


class OnnxGraphs:
    def __init__(self, folder: Path, options: DeviceOptions) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if options.threads:
            opts.intra_op_num_threads, opts.inter_op_num_threads = options.threads, 1
        providers = options.onnxruntime_providers
        missing = [p for p in providers if p not in ort.get_available_providers()]
        if missing:
            raise DeviceUnavailable(f"onnxruntime {ort.__version__} here lacks {', '.join(missing)}")
        self.encoder = ort.InferenceSession(str(folder / ENCODER_FILE["onnxruntime"]), opts, providers=providers)
        self.decoder = ort.InferenceSession(str(folder / DECODER_FILE["onnxruntime"]), opts, providers=providers)
        self.device = self.decoder.get_providers()[0]

    def encode(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k, v = self.encoder.run(None, {"input_features": features})
        return k, v

    def step(
        self, ids: np.ndarray, past_k: np.ndarray, past_v: np.ndarray, cross_k: np.ndarray, cross_v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        feeds = {"input_ids": ids, "past_key": past_k, "past_value": past_v, "cross_key": cross_k, "cross_value": cross_v}
        logits, k, v = self.decoder.run(None, feeds)
        return logits, k, v


class OpenVinoGraphs:
    def __init__(self, folder: Path, options: DeviceOptions) -> None:
        from .openvino_rt import import_openvino

        ov = import_openvino()
        core = ov.Core()
        device = options.openvino_device
        if device.split(".")[0] not in {d.split(".")[0] for d in core.available_devices}:
            raise DeviceUnavailable(f"OpenVINO {ov.__version__} here has no {device} device")
        cfg: dict[str, Any] = {"INFERENCE_NUM_THREADS": int(options.threads)} if options.threads else {}
        if device == "CPU":
            cfg["INFERENCE_PRECISION_HINT"] = "f32"  # the artifact's precision is in its weights, not the CPU's bf16 default
        self.encoder = core.compile_model(
            core.read_model(str(folder / ENCODER_FILE["openvino"])), device, cfg
        ).create_infer_request()
        self.decoder = core.compile_model(
            core.read_model(str(folder / DECODER_FILE["openvino"])), device, cfg
        ).create_infer_request()
        self.device = device

    def encode(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.encoder.infer({"input_features": features})
        return out["cross_key"].copy(), out["cross_value"].copy()

    def step(
        self, ids: np.ndarray, past_k: np.ndarray, past_v: np.ndarray, cross_k: np.ndarray, cross_v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = self.decoder.infer(
            {"input_ids": ids, "past_key": past_k, "past_value": past_v, "cross_key": cross_k, "cross_value": cross_v}
        )
        return out["logits"].copy(), out["present_key"].copy(), out["present_value"].copy()


class LiteRtGraphs:
    """The LiteRT graphs: the decoder holds a cache of a fixed number of slots and takes one token per call, so
    ``step`` feeds the prompt a token at a time and keeps the cache itself (a step with an empty past starts a
    new window); the presents it returns are that cache."""

    def __init__(self, folder: Path, options: DeviceOptions, slots: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        threads = options.threads or None
        self.encoder = Interpreter(model_path=str(folder / ENCODER_FILE["litert"]), num_threads=threads)
        self.decoder = Interpreter(model_path=str(folder / DECODER_FILE["litert"]), num_threads=threads)
        self._encode, self._step = self.encoder.get_signature_runner(), self.decoder.get_signature_runner()
        self.slots, self.position = slots, 0
        self.cache: tuple[np.ndarray, np.ndarray] | None = None
        self.device = "CPU/XNNPACK"

    def encode(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self._encode(args_0=np.ascontiguousarray(features, dtype=np.float32))
        return out["output_0"].copy(), out["output_1"].copy()

    def step(
        self, ids: np.ndarray, past_k: np.ndarray, past_v: np.ndarray, cross_k: np.ndarray, cross_v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if past_k.shape[3] == 0 or self.cache is None:  # a new window
            shape = (*past_k.shape[:3], self.slots, past_k.shape[4])
            self.cache, self.position = (np.zeros(shape, np.float32), np.zeros(shape, np.float32)), 0
        if self.position + ids.shape[1] > self.slots:
            raise EdgetlError(f"the decoder's cache holds {self.slots} tokens; this window needs more")
        k, v = self.cache
        logits = np.zeros((1, 0), np.float32)
        for token in ids[0]:
            out = self._step(args_0=np.array([[token]], np.int32), args_1=np.array([self.position], np.int32),
                             args_2=k, args_3=v, args_4=cross_k, args_5=cross_v)  # fmt: skip
            logits, k, v = out["output_0"], out["output_1"].copy(), out["output_2"].copy()
            self.position += 1
        self.cache = (k, v)
        return logits.copy(), k, v


class Transcriber:
    """A transcription artifact loaded for greedy decoding (see the module docstring)."""

    def __init__(self, path: str | Path, options: DeviceOptions | None = None) -> None:
        from tokenizers import Tokenizer

        self.path = Path(path)
        self.manifest = read_artifact_manifest(self.path)
        if self.manifest.get("task") != "transcription":
            raise EdgetlError(f"{self.path} is a {self.manifest.get('task')} artifact; load it with edgetl_runtime.load")
        check_artifact_files(self.path, self.manifest)
        self.runtime = str(self.manifest.get("runtime"))
        if self.runtime not in RUNTIMES:
            raise EdgetlError(f"{self.path}: runtime {self.runtime!r} cannot transcribe; expected {', '.join(RUNTIMES)}")
        self.seconds, self.n_mels = check_preprocess(self.manifest["preprocess"], str(self.path))
        self.decoding = Decoding.of(self.manifest, self.path)
        self.tokenizer = Tokenizer.from_file(str(self.path / self.manifest["tokenizer"]["file"]))
        options = options or DeviceOptions()
        self.stats: list[dict[str, float]] = []  # one entry per window decoded, newest last
        self.graphs: Graphs | None = None
        self.ct2: Any = None
        if self.runtime == "onnxruntime":
            self.graphs = OnnxGraphs(self.path, options)
        elif self.runtime == "openvino":
            self.graphs = OpenVinoGraphs(self.path, options)
        elif self.runtime == "litert":
            slots = (self.manifest.get("runtime_config") or {}).get("cache_slots")
            if not isinstance(slots, int) or slots < 1:
                raise EdgetlError(f"{self.path}: the manifest's runtime_config lacks cache_slots; re-run `edgetl export`")
            self.graphs = LiteRtGraphs(self.path, options, slots)
        else:
            from .ctranslate2_rt import Ct2Whisper

            self.ct2 = Ct2Whisper(self.path, options.threads)
        d = self.decoding
        self._mask, self._begin = np.array(d.suppress, dtype=np.int64), np.array(d.begin_suppress, dtype=np.int64)
        self._empty = np.zeros((d.layers, 1, d.heads, 0, d.head_dim), dtype=np.float32)

    @property
    def device(self) -> str:
        """Where the graphs run: the ONNX provider or OpenVINO device; CTranslate2 here runs on the CPU."""
        return str(self.graphs.device) if self.graphs is not None else "cpu"

    def features(self, clip: np.ndarray) -> np.ndarray:
        """16 kHz samples (at most one window) -> [1, n_mels, frames] log-mel."""
        return log_mel(clip, self.seconds, self.n_mels)[None]

    def window_tokens(self, clip: np.ndarray, max_new_tokens: int | None = None) -> list[int]:
        """Greedy tokens of one window (prompt and end-of-text left out); timings appended to ``stats``."""
        d = self.decoding
        limit = min(max_new_tokens or d.max_new_tokens, d.max_new_tokens)
        t0 = time.perf_counter()
        feats = self.features(clip)
        if self.ct2 is not None:
            return self._ct2_tokens(feats, limit, t0)
        assert self.graphs is not None
        cross_k, cross_v = self.graphs.encode(feats)
        t1 = time.perf_counter()
        ids, past_k, past_v = np.array([d.prompt], dtype=np.int64), self._empty, self._empty
        out: list[int] = []
        steps: list[float] = []
        while len(out) < limit:
            s = time.perf_counter()
            logits, past_k, past_v = self.graphs.step(ids, past_k, past_v, cross_k, cross_v)
            row = logits[0].astype(np.float32, copy=True)
            row[self._mask] = -np.inf
            if not out:
                row[self._begin] = -np.inf
            token = int(np.argmax(row))
            steps.append(time.perf_counter() - s)
            if token == d.eos:
                break
            out.append(token)
            ids = np.array([[token]], dtype=np.int64)
        self.stats.append(_stats(t1 - t0, steps, len(out), time.perf_counter() - t0))
        return out

    def _ct2_tokens(self, feats: np.ndarray, limit: int, t0: float) -> list[int]:
        encoded = self.ct2.encode(feats)
        t1 = time.perf_counter()
        out = self.ct2.generate(encoded, self.decoding.prompt, limit)[0]
        t2 = time.perf_counter()
        steps = [(t2 - t1) / max(1, len(out) + 1)] * (len(out) + 1)  # CTranslate2 decodes inside one call
        self.stats.append(_stats(t1 - t0, steps, len(out), t2 - t0))
        return list(out)

    def token_ids(self, clips: list[np.ndarray], max_new_tokens: int | None = None) -> list[list[int]]:
        """Greedy tokens of each clip of at most one window (the parity check's view)."""
        for clip in clips:
            if len(clip) > self.seconds * SAMPLE_RATE:
                raise EdgetlError(
                    f"a clip lasts {len(clip) / SAMPLE_RATE:.1f} s, more than the {self.seconds:g} s window; cut it"
                )
        return [self.window_tokens(np.asarray(c, dtype=np.float32), max_new_tokens) for c in clips]

    def transcribe(self, inputs: list[Any]) -> list[str]:
        """The text of each input (an audio file or 16 kHz float32 samples), any length: longer clips are cut
        into windows at quiet moments and the texts joined."""
        texts = []
        for item in inputs:
            clip = load_audio(item, SAMPLE_RATE) if isinstance(item, (str, Path)) else np.asarray(item, dtype=np.float32)
            pieces = [self.decode(self.window_tokens(p)) for p in split_windows(clip, self.seconds)]
            texts.append(" ".join(p for p in pieces if p))
        return texts

    def decode(self, tokens: list[int]) -> str:
        return str(self.tokenizer.decode(tokens, skip_special_tokens=True)).strip()


def _stats(encoder_s: float, steps: list[float], tokens: int, total_s: float) -> dict[str, float]:
    """One window's timings: encoder (features included), the prompt step, the mean later step, all."""
    return {
        "encoder_s": encoder_s,
        "first_token_s": steps[0] if steps else 0.0,
        "per_token_s": float(np.mean(steps[1:])) if len(steps) > 1 else 0.0,
        "tokens": float(tokens),
        "total_s": total_s,
    }


TORCH_TRANSCRIBER = ("edgetl.torch_predictor", "TorchTranscriber")  # needs edgetl and torch: named, never imported here


def load_transcriber(path: str | Path, options: DeviceOptions | None = None, runtime: str | None = None) -> Any:
    """A transcription artifact folder (``edgetl export`` of a transcription bundle), ready to transcribe;
    ``runtime="torch"`` opens a transcription bundle with PyTorch ``generate`` instead (needs edgetl and torch),
    ``runtime="faster-whisper"`` a CTranslate2 artifact with faster-whisper (``faster_whisper_anchor.py``)."""
    if runtime == "faster-whisper":  # a benchmark's anchor on a CTranslate2 artifact
        from .faster_whisper_anchor import FasterWhisper

        return FasterWhisper(path, options)
    if runtime == "torch":
        import importlib

        module, name = TORCH_TRANSCRIBER
        return getattr(importlib.import_module(module), name)(path, options or DeviceOptions())
    return Transcriber(path, options)
