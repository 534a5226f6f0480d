"""Whisper's two graphs as LiteRT (TFLite) flatbuffers, for ``asr_export.py``: the encoder as for ONNX, and the
decoder with a fixed-size self-attention cache (``WhisperFixedCacheDecoderGraph``: LiteRT takes no dynamic
shapes), converted by ``litert_torch.convert``; fp16 and int8-dynamic through ai-edge-quantizer."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

GRAPHS = ("encoder", "decoder")


def export_tflite(whisper: Any, out: Path, precision: str, slots: int) -> dict[str, Any]:
    """``out/encoder.tflite`` and ``out/decoder.tflite`` in ``precision``; the manifest's converter facts."""
    import litert_torch
    import torch

    from ..offline import quiet, scoped_env
    from .asr_graphs import WhisperEncoderGraph, WhisperFixedCacheDecoderGraph, cache_shape
    from .tflite_export import _quiet_converter

    _quiet_converter()
    c = whisper.config
    encoder = WhisperEncoderGraph(whisper).eval()
    decoder = WhisperFixedCacheDecoderGraph(whisper, slots).eval()
    with torch.no_grad():
        features = torch.zeros(1, c.num_mel_bins, 2 * c.max_source_positions)
        cross = encoder(features)
        # two tensors, not one twice: the converter would take the key and value caches for one input
        keys, values = torch.zeros(cache_shape(whisper, slots)), torch.zeros(cache_shape(whisper, slots))
        step = (torch.tensor([[int(c.decoder_start_token_id)]]), torch.tensor([0]), keys, values, *cross)
        inductor = out / ".torchinductor"  # litert_torch's torch inductor cache: in the work folder, then gone
        for name, module, args in (("encoder", encoder, (features,)), ("decoder", decoder, step)):
            with quiet(), scoped_env("TORCHINDUCTOR_CACHE_DIR", str(inductor)):
                litert_torch.convert(module, args).export(str(out / f"{name}.tflite"))
        shutil.rmtree(inductor, ignore_errors=True)
    converter: dict[str, Any] = {"name": "litert_torch.convert of edgetl's Whisper graphs (fixed-size decoder cache)"}
    if precision != "fp32":
        from ai_edge_quantizer import qtyping, recipe
        from ai_edge_quantizer import quantizer as aeq

        for g in GRAPHS:
            path = out / f"{g}.tflite"
            qt = aeq.Quantizer(str(path))
            if precision == "fp16":
                qt.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                          algorithm_key=recipe.AlgorithmName.FLOAT_CASTING)  # fmt: skip
                converter["quantizer"] = "ai_edge_quantizer weight-only float16 (FLOAT_CASTING), float32 compute"
            else:
                qt.load_quantization_recipe(recipe.dynamic_wi8_afp32())
                converter["quantizer"] = "ai_edge_quantizer recipe.dynamic_wi8_afp32 (int8 weights, dynamic-range activations)"
            with quiet():
                qt.quantize().export_model(str(path), overwrite=True)
    import ai_edge_litert

    return {
        "model_file": "encoder.tflite",
        "graphs": {g: f"{g}.tflite" for g in GRAPHS},
        "converter": converter,
        "runtime_config": {"cache_slots": slots, "token_inputs": "int32"},
        "versions": {
            "litert-torch": _version("litert-torch"),
            "ai-edge-litert": getattr(ai_edge_litert, "__version__", None) or _version("ai-edge-litert"),
            "ai-edge-quantizer": _version("ai-edge-quantizer"),
        },  # fmt: skip
    }


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None
