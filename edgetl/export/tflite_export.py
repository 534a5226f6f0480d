"""TFLite (LiteRT) flatbuffer converted from the PyTorch bundle with litert-torch,
then quantised with ai-edge-quantizer.

- fp32: ``litert_torch.convert``; NCHW input (the converter adds one TRANSPOSE to
  its channels-last graph) or NHWC input (``--layout nhwc``: the model is wrapped
  in a permute, which the converter folds away: a clean channels-last graph);
- fp16: weight-only float16 (FLOAT_CASTING), float32 compute and I/O;
- int8-dynamic: ``recipe.dynamic_wi8_afp32`` (int8 weights, activations
  quantised at run time);
- int8: ``recipe.static_wi8_ai8`` calibrated on the bundle's training images (or
  ``--calibration DIR``); float32 input/output by default (QUANTIZE/DEQUANTIZE
  inside the graph), or int8 input/output with ``--io int8``: their scale and
  zero point go into the manifest so every predictor can (de)quantise.

Text models convert with a fixed shape [1, max_length] (recorded in the
manifest; predictors pad to it). Their int8 is static int8 on the
fully-connected layers only (int8 weights and calibrated int8 activations) plus
an int8 embedding table, other ops in float: quantising every op
(``static_wi8_ai8``) cost MiniLM-L6 15 points of accuracy on language ID
(attention scores, masks and LayerNorm do not fit one int8 range), this keeps
it within 0.2 points and runs 3x faster than fp32 (benchmarks/results/text_export_parity.md). The converter downcasts the int64 token inputs
to int32 (its default without x64); the manifest says so, and the predictor casts.
"""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..offline import scoped_env

MODEL_FILE = "model.tflite"


def _module(ctx):
    import torch

    model = ctx.bundle.model.eval()
    if ctx.options.layout != "nhwc":
        return model

    class NHWCInput(torch.nn.Module):
        """NHWC float input -> the NCHW model."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x.permute(0, 3, 1, 2))

    return NHWCInput(model).eval()


def _to_layout(x: np.ndarray, layout: str) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if layout == "nhwc" else np.ascontiguousarray(x)


class _KnownDowncast(logging.Filter):
    """Drop the converter's notice that int64 token inputs become int32: expected, and in the manifest."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "downcasts 64-bit model I/O" not in record.getMessage()


def _quiet_converter() -> None:
    """torch warns about an Enum registration while litert_torch imports: not the user's concern. (The
    converter's C++ oneDNN notice goes through absl before any setting here can reach it, and stays.)"""
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)


def _convert_fp32(ctx, path: Path) -> None:
    _quiet_converter()
    import litert_torch
    import torch

    if ctx.text:
        xs = tuple(torch.from_numpy(x) for x in ctx.example_inputs())
    else:
        xs = (torch.from_numpy(_to_layout(ctx.example_input(), ctx.options.layout)),)
    notice = _KnownDowncast()
    logging.getLogger().addFilter(notice)
    try:
        with torch.no_grad():
            litert_torch.convert(_module(ctx), xs).export(str(path))
    finally:
        logging.getLogger().removeFilter(notice)


def _signature(path: Path) -> tuple[str, list[str]]:
    """(signature key, its input names in positional order) of a converted model."""
    from ai_edge_litert.interpreter import Interpreter

    sigs = Interpreter(model_path=str(path)).get_signature_list()
    key = "serving_default" if "serving_default" in sigs else next(iter(sigs))
    names = sigs[key]["inputs"]
    return key, sorted(names, key=lambda n: (len(n), n))  # args_0, args_1, ..., args_10


def _calibration_set(ctx, fp32: Path) -> dict[str, list[dict[str, np.ndarray]]]:
    """The calibration samples keyed by the converted model's signature input names, in its dtypes."""
    from ai_edge_litert.interpreter import Interpreter

    key, names = _signature(fp32)
    details = Interpreter(model_path=str(fp32)).get_signature_runner(key).get_input_details()
    rows = []
    for feed in ctx.calibration_feeds():
        xs = [feed[n] for n in ctx.input_names]
        if not ctx.text:
            xs = [_to_layout(x, ctx.options.layout) for x in xs]
        rows.append({sig: np.ascontiguousarray(x, dtype=details[sig]["dtype"]) for sig, x in zip(names, xs)})
    return {key: rows}


def _text_int8_recipe(qt) -> None:
    """Static int8 for the matrix multiplies of a transformer, int8 weights for its embedding table."""
    from ai_edge_quantizer import qtyping, recipe

    int8_weights = qtyping.TensorQuantizationConfig(num_bits=8, symmetric=True, granularity=qtyping.QuantGranularity.CHANNELWISE)
    int8_activations = qtyping.TensorQuantizationConfig(num_bits=8, symmetric=False)
    qt.update_quantization_recipe(
        regex=".*", operation_name=qtyping.TFLOperationName.FULLY_CONNECTED, algorithm_key=recipe.AlgorithmName.MIN_MAX_UNIFORM_QUANT,
        op_config=qtyping.OpQuantizationConfig(activation_tensor_config=int8_activations, weight_tensor_config=int8_weights,
                                               compute_precision=qtyping.ComputePrecision.INTEGER, explicit_dequantize=False))
    qt.update_quantization_recipe(
        regex=".*", operation_name=qtyping.TFLOperationName.EMBEDDING_LOOKUP, algorithm_key=recipe.AlgorithmName.MIN_MAX_UNIFORM_QUANT,
        op_config=qtyping.OpQuantizationConfig(weight_tensor_config=int8_weights, compute_precision=qtyping.ComputePrecision.INTEGER,
                                               explicit_dequantize=False))


def _quantize(ctx, fp32: Path, out: Path, converter: dict[str, Any]) -> None:
    from ai_edge_quantizer import qtyping, recipe
    from ai_edge_quantizer import quantizer as aeq

    precision = ctx.options.precision
    qt = aeq.Quantizer(str(fp32))
    if precision == "fp16":
        qt.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                                  num_bits=16, algorithm_key=recipe.AlgorithmName.FLOAT_CASTING)
        converter["quantizer"] = "ai_edge_quantizer weight-only float16 (FLOAT_CASTING), float32 compute"
    elif precision == "int8-dynamic":
        qt.load_quantization_recipe(recipe.dynamic_wi8_afp32())
        converter["quantizer"] = "ai_edge_quantizer recipe.dynamic_wi8_afp32 (int8 weights, dynamic-range activations)"
    elif ctx.text:
        _text_int8_recipe(qt)
        converter["quantizer"] = ("ai_edge_quantizer static int8 on FULLY_CONNECTED (int8 weights per channel, calibrated int8 "
                                  "activations), int8 embedding table, other ops float32; float32 I/O")
    else:
        qt.load_quantization_recipe(recipe.static_wi8_ai8())
        io = ctx.options.io
        if io != "int8":
            for op in (qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT):
                qt.update_quantization_recipe(regex=".*", operation_name=op, algorithm_key=recipe.AlgorithmName.NO_QUANTIZE)
        converter["quantizer"] = f"ai_edge_quantizer recipe.static_wi8_ai8 (int8 weights and activations, {io} I/O)"
    result = None
    if qt.need_calibration:
        calib = _calibration_set(ctx, fp32)
        result = qt.calibrate(calib)
        converter.update(ctx.calibration_record(len(next(iter(calib.values())))))
    qt.quantize(result).export_model(str(out), overwrite=True)


def _spec(detail: dict[str, Any]) -> dict[str, Any]:
    dtype = np.dtype(detail["dtype"])
    spec: dict[str, Any] = {"name": detail["name"], "dtype": str(dtype)}
    if dtype == np.int8:
        scale, zero_point = detail["quantization"]
        spec["quantization"] = {"scale": float(scale), "zero_point": int(zero_point)}
    return spec


def export(ctx) -> dict[str, Any]:
    precision = ctx.options.precision
    out = ctx.out / MODEL_FILE
    work = ctx.out / ".work"
    work.mkdir()
    fp32 = out if precision == "fp32" else work / "fp32.tflite"
    converter: dict[str, Any] = {"name": "litert_torch.convert"}
    # importing litert_torch makes torch inductor's cache folder ($TMPDIR/torchinductor_$USER):
    # point it into the work folder so nothing is written outside the artifact
    with scoped_env("TORCHINDUCTOR_CACHE_DIR", str(work / "torchinductor")):
        _convert_fp32(ctx, fp32)
        if precision != "fp32":
            with warnings.catch_warnings():  # its calibrator keeps intermediate tensors on purpose
                warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
                _quantize(ctx, fp32, out, converter)
    shutil.rmtree(work)

    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(out))
    inp, outp = it.get_input_details()[0], it.get_output_details()[0]
    runtime_config: dict[str, Any] = {"num_threads": None}
    if ctx.text:  # several inputs: the predictor finds each through the signature
        key, names = _signature(out)
        runtime_config["signature"] = {"key": key, "inputs": names}
        input_spec = ctx.input_spec(dtype=str(np.dtype(inp["dtype"])))
    else:
        nhwc = ctx.options.layout == "nhwc"
        shape = list(ctx.example_input().shape)  # [1, C, H, W] images, [1, n_mels, frames] audio (NCT)
        input_spec = {**_spec(inp), "shape": [1, *shape[2:], shape[1]] if nhwc else shape,
                      "layout": "NHWC" if nhwc else ctx.input_spec()["layout"]}
    return {
        "model_file": MODEL_FILE,
        "input": input_spec,
        "output": {**_spec(outp), "shape": [1, ctx.bundle.manifest["model"]["num_outputs"]]},
        "converter": converter,
        "runtime_config": runtime_config,
        "versions": {p: importlib.metadata.version(p) for p in ("litert-torch", "ai-edge-litert", "ai-edge-quantizer")},
    }
