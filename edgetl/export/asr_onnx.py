"""Whisper's two graphs as ONNX (fp32, fp16, int8-dynamic) and as OpenVINO IR, for ``asr_export.py``."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

from .asr_graphs import DECODER_INPUTS, DECODER_OUTPUTS, ENCODER_INPUTS, ENCODER_OUTPUTS, cache_shape

GRAPHS = ("encoder", "decoder")
OPSET = 17


def export_graphs(whisper: Any, out: Path) -> None:
    """``out/encoder.onnx`` and ``out/decoder.onnx`` in fp32, checked by ``onnx.checker``."""
    import onnx
    import torch

    from .asr_graphs import WhisperDecoderGraph, WhisperEncoderGraph

    c = whisper.config
    features = torch.zeros(1, c.num_mel_bins, 2 * c.max_source_positions)
    encoder, decoder = WhisperEncoderGraph(whisper).eval(), WhisperDecoderGraph(whisper).eval()
    past = torch.zeros(cache_shape(whisper, 3))
    with torch.no_grad():
        cross = encoder(features)
        ids = torch.tensor([[int(c.decoder_start_token_id)] * 2])
        steps = {
            "encoder": (encoder, (features,), ENCODER_INPUTS, ENCODER_OUTPUTS, None),
            "decoder": (
                decoder,
                (ids, past, past, *cross),
                DECODER_INPUTS,
                DECODER_OUTPUTS,
                {"input_ids": {1: "tokens"}, "past_key": {3: "past"}, "past_value": {3: "past"},
                 "present_key": {3: "total"}, "present_value": {3: "total"}},
            ),
        }  # fmt: skip
        for name, (module, args, inputs, outputs, axes) in steps.items():
            path = out / f"{name}.onnx"
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
                warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
                warnings.filterwarnings("ignore", category=DeprecationWarning)  # the exporter's own logging helper
                torch.onnx.export(
                    module, args, str(path), dynamo=False, opset_version=OPSET, input_names=inputs,
                    output_names=outputs, dynamic_axes=axes, do_constant_folding=True,
                )  # fmt: skip
            onnx.checker.check_model(str(path), full_check=True)


def finish_onnx(out: Path, precision: str) -> dict[str, Any]:
    """Turn the fp32 graphs in ``out`` into ``precision`` in place; the manifest's converter facts."""
    import onnx
    import onnxruntime

    converter: dict[str, Any] = {"name": "torch.onnx.export (TorchScript) of edgetl's cached Whisper graphs", "opset": OPSET}
    for g in GRAPHS:
        path = out / f"{g}.onnx"
        if precision == "fp16":
            from onnxconverter_common import float16

            from .onnx_export import _fix_float_casts

            model = float16.convert_float_to_float16(onnx.load(str(path)), keep_io_types=True, disable_shape_infer=False)
            _fix_float_casts(model)
            onnx.save(model, str(path))
            converter["fp16"] = "onnxconverter-common float16, float32 inputs and outputs"
        elif precision == "int8-dynamic":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            fp32 = out / f"{g}.fp32.onnx"
            path.replace(fp32)
            quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gather"])
            fp32.unlink()
            converter["quantizer"] = "onnxruntime quantize_dynamic: int8 MatMul and embedding weights, activations at run time"
    return {
        "model_file": "encoder.onnx",
        "graphs": {g: f"{g}.onnx" for g in GRAPHS},
        "converter": converter,
        "versions": {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
    }


def to_openvino(out: Path, precision: str) -> dict[str, Any]:
    """OpenVINO IR of the fp32 ONNX graphs in ``out`` (which are removed), in ``precision``."""
    import nncf

    from edgetl_runtime.openvino_rt import import_openvino

    from .openvino_export import quiet

    ov = import_openvino()
    converter: dict[str, Any] = {"name": "openvino.convert_model (ONNX frontend) of edgetl's cached Whisper graphs"}
    for g in GRAPHS:
        model = ov.convert_model(str(out / f"{g}.onnx"))
        if precision == "int8-dynamic":
            with quiet("nncf"):
                model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
            converter["quantizer"] = "nncf.compress_weights INT8_ASYM (weight-only)"
        ov.save_model(model, str(out / f"{g}.xml"), compress_to_fp16=precision == "fp16")
        (out / f"{g}.onnx").unlink()
    return {
        "model_file": "encoder.xml",
        "graphs": {g: f"{g}.xml" for g in GRAPHS},
        "converter": converter,
        "runtime_config": {"device": "CPU", "INFERENCE_PRECISION_HINT": "f32"},
        "versions": {"openvino": ov.get_version(), "nncf": nncf.__version__},
    }
