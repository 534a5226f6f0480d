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

Text models convert with one signature per sequence-length bucket (8, 16, 32, ...
up to max_length, sharing one copy of the weights; the manifest lists them and the
predictor pads a text up to the smallest bucket that holds it), so short texts do
not pay for max_length. The accuracy guard may ask for OCTAV clipping or 3x the
calibration samples, and for conv / fully-connected ops kept in float (per-op
``NO_QUANTIZE`` recipes); calibration ranges are computed once per sample count. Their int8 is static int8 on the
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
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..offline import quiet, scoped_env
from . import embed

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

    notice = _KnownDowncast()
    logging.getLogger().addFilter(notice)
    try:
        with torch.no_grad():
            if ctx.text:  # one signature per sequence length bucket, sharing the weights
                full = ctx.example_inputs()
                conv = None
                for length in ctx.sequence_buckets:
                    xs = tuple(torch.from_numpy(np.ascontiguousarray(x[:, :length])) for x in full)
                    conv = (litert_torch.signature if conv is None else conv.signature)(bucket_key(length), _module(ctx), xs)
                conv.convert().export(str(path))
            else:
                xs = (torch.from_numpy(_to_layout(ctx.example_input(), ctx.options.layout)),)
                litert_torch.convert(_module(ctx), xs).export(str(path))
    finally:
        logging.getLogger().removeFilter(notice)


def bucket_key(length: int) -> str:
    return f"len{length}"


def _signatures(path: Path) -> dict[str, list[str]]:
    """Each signature key of a converted model and its input names in positional order."""
    from ai_edge_litert.interpreter import Interpreter

    sigs = Interpreter(model_path=str(path)).get_signature_list()
    return {key: sorted(sig["inputs"], key=lambda n: (len(n), n)) for key, sig in sigs.items()}  # args_0, ..., args_10


def _calibration_set(ctx, fp32: Path, samples: int | None = None) -> dict[str, list[dict[str, np.ndarray]]]:
    """The calibration samples keyed by signature and its input names, in its dtypes. Texts go to the smallest
    length bucket that holds them (a bucket no text falls in gets every text, cut to its length)."""
    from ai_edge_litert.interpreter import Interpreter

    from edgetl_runtime.text import trim_padding

    it = Interpreter(model_path=str(fp32))
    sigs = _signatures(fp32)
    feeds = ctx.calibration_feeds(samples)
    if not ctx.text:
        key, names = next(iter(sigs.items()))
        details = it.get_signature_runner(key).get_input_details()
        return {
            key: [
                {
                    sig: np.ascontiguousarray(_to_layout(f[n], ctx.options.layout), dtype=details[sig]["dtype"])
                    for sig, n in zip(names, ctx.input_names)
                }
                for f in feeds
            ]
        }
    rows = [trim_padding(f) for f in feeds]
    width = [r[ctx.input_names[0]].shape[1] for r in rows]
    out, lower = {}, 0
    for length in ctx.sequence_buckets:
        key = bucket_key(length)
        details = it.get_signature_runner(key).get_input_details()
        mine = [r for r, w in zip(rows, width) if lower < w <= length] or rows
        out[key] = [
            {
                sig: np.ascontiguousarray(_pad_to(r[n][:, :length], length, ctx, i), dtype=details[sig]["dtype"])
                for i, (sig, n) in enumerate(zip(sigs[key], ctx.input_names))
            }
            for r in mine
        ]
        lower = length
    return out


def _pad_to(x: np.ndarray, length: int, ctx, position: int) -> np.ndarray:
    """Right-pad token ids (with the pad id) or a mask (with 0) to ``length`` columns."""
    pad = int(ctx.bundle.processor.pad_token_id or 0) if position == 0 else 0
    return np.concatenate([x, np.full((len(x), length - x.shape[1]), pad, dtype=x.dtype)], axis=1) if x.shape[1] < length else x


def _text_int8_recipe(qt, ops: tuple[str, ...] = ("FULLY_CONNECTED",), embedding: bool = True) -> None:
    """Static int8 for the matrix multiplies (``ops``) of a transformer, int8 weights for its embedding table."""
    from ai_edge_quantizer import qtyping, recipe

    int8_weights = qtyping.TensorQuantizationConfig(num_bits=8, symmetric=True, granularity=qtyping.QuantGranularity.CHANNELWISE)
    int8_activations = qtyping.TensorQuantizationConfig(num_bits=8, symmetric=False)
    for op in ops:
        qt.update_quantization_recipe(
            regex=".*",
            operation_name=getattr(qtyping.TFLOperationName, op),
            algorithm_key=recipe.AlgorithmName.MIN_MAX_UNIFORM_QUANT,
            op_config=qtyping.OpQuantizationConfig(
                activation_tensor_config=int8_activations,
                weight_tensor_config=int8_weights,
                compute_precision=qtyping.ComputePrecision.INTEGER,
                explicit_dequantize=False,
            ),
        )
    if not embedding:
        return
    qt.update_quantization_recipe(
        regex=".*",
        operation_name=qtyping.TFLOperationName.EMBEDDING_LOOKUP,
        algorithm_key=recipe.AlgorithmName.MIN_MAX_UNIFORM_QUANT,
        op_config=qtyping.OpQuantizationConfig(
            weight_tensor_config=int8_weights, compute_precision=qtyping.ComputePrecision.INTEGER, explicit_dequantize=False
        ),
    )


WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL")  # what the guard may keep in float
CALIBRATIONS = ("default", "octav", "minmax-3x-samples", "weight-ops-only")  # rung a of the guard for static int8


def _weight_op_scopes(path: Path, ops: tuple[str, ...]) -> list[str]:
    """The scope (output tensor names, as ai-edge-quantizer matches them) of every ``ops`` op, in graph order."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as tfl

    model = tfl.read_model(str(path))
    graph = model.subgraphs[0]
    return [
        tfl.get_op_scope(op, graph.tensors)
        for i, op in enumerate(graph.operators)
        if tfl.get_op_name_by_index(model, 0, i) in ops
    ]


def ladder(ctx):
    """What the guard may try: OCTAV clipping, more calibration samples and int8 on the weight ops alone (static
    int8), and every conv,
    fully-connected and batch-matmul op (text int8: its fully-connected ops) kept in float."""
    from .guard import Ladder

    ops = ("FULLY_CONNECTED",) if ctx.text else WEIGHT_OPS
    static = ctx.options.precision == "int8"
    return Ladder(
        calibrations=[c for c in CALIBRATIONS if c != "default"]
        if static and not ctx.text
        else (["minmax-3x-samples"] if static else []),
        float_candidates=_weight_op_scopes(_fp32(ctx), ops),
    )


def _fp32(ctx) -> Path:
    """The fp32 flatbuffer, converted once per export (the guard's attempts re-quantise it)."""
    path = ctx.work / "fp32.tflite"
    if not path.is_file():

        def build(p: Path) -> None:
            with scoped_env("TORCHINDUCTOR_CACHE_DIR", str(ctx.work / "torchinductor")):
                _convert_fp32(ctx, p)

        ctx.converted(path, build, tuple(ctx.sequence_buckets or ()))
    return path


def _keep_float(qt, scopes: tuple[str, ...]) -> None:
    from ai_edge_quantizer import qtyping, recipe

    for scope in scopes:
        qt.update_quantization_recipe(
            regex="^" + re.escape(scope) + "$",
            operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
            algorithm_key=recipe.AlgorithmName.NO_QUANTIZE,
        )


def _quantize(ctx, fp32: Path, out: Path, converter: dict[str, Any]) -> None:
    from ai_edge_quantizer import qtyping, recipe
    from ai_edge_quantizer import quantizer as aeq

    precision = ctx.options.precision
    plan = ctx.plan
    qt = aeq.Quantizer(str(fp32))
    if precision == "fp16":
        qt.add_weight_only_config(
            regex=".*",
            operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
            num_bits=16,
            algorithm_key=recipe.AlgorithmName.FLOAT_CASTING,
        )
        converter["quantizer"] = "ai_edge_quantizer weight-only float16 (FLOAT_CASTING), float32 compute"
    elif precision == "int8-dynamic":
        qt.load_quantization_recipe(recipe.dynamic_wi8_afp32())
        converter["quantizer"] = "ai_edge_quantizer recipe.dynamic_wi8_afp32 (int8 weights, dynamic-range activations)"
    elif ctx.text or plan.calibration == "weight-ops-only":
        if ctx.text:
            _text_int8_recipe(qt)
            converter["quantizer"] = (
                "ai_edge_quantizer static int8 on FULLY_CONNECTED (int8 weights per channel, calibrated int8 "
                "activations), int8 embedding table, other ops float32; float32 I/O"
            )
        else:  # a ladder variant: int8 convolutions and matmuls, everything between them float
            _text_int8_recipe(qt, WEIGHT_OPS, embedding=False)
            converter["quantizer"] = (
                "ai_edge_quantizer static int8 on conv / fully-connected / batch-matmul ops (int8 weights per "
                "channel, calibrated int8 activations), other ops float32; float32 I/O"
            )
    else:
        steps = recipe.static_wi8_ai8()
        if plan.calibration == "octav":  # OCTAV's clipping of weight and activation ranges instead of min/max
            steps = [{**step, "algorithm_key": recipe.AlgorithmName.OCTAV.value} for step in steps]
        qt.load_quantization_recipe(steps)
        io = ctx.options.io
        if io != "int8":
            for op in (qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT):
                qt.update_quantization_recipe(regex=".*", operation_name=op, algorithm_key=recipe.AlgorithmName.NO_QUANTIZE)
        converter["quantizer"] = f"ai_edge_quantizer recipe.static_wi8_ai8 (int8 weights and activations, {io} I/O)"
    _keep_float(qt, plan.float_layers)
    if plan.float_layers:
        converter["float_ops"] = len(plan.float_layers)
    if plan.calibration != "default":
        converter["calibration"] = plan.calibration
    result = None
    if qt.need_calibration:  # ranges per calibration set, computed once: the guard's attempts share them
        samples = ctx.options.calibration_samples * (3 if plan.calibration == "minmax-3x-samples" else 1)
        key = ("tflite-ranges", samples)
        if key not in ctx.cache:
            calib = _calibration_set(ctx, fp32, samples)
            with quiet():
                ctx.cache[key] = (qt.calibrate(calib), len(next(iter(calib.values()))))
        result, used = ctx.cache[key]
        converter.update(ctx.calibration_record(used))
    with quiet():  # its progress bar and size report, once per attempt of the guard
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
    converter: dict[str, Any] = {"name": "litert_torch.convert"}
    # importing litert_torch makes torch inductor's cache folder ($TMPDIR/torchinductor_$USER):
    # _fp32 points it into the work folder so nothing is written outside the artifact
    fp32 = _fp32(ctx)
    if precision == "fp32":
        shutil.copyfile(fp32, out)
    else:
        with warnings.catch_warnings():  # its calibrator keeps intermediate tensors on purpose
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
            _quantize(ctx, fp32, out, converter)

    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(out))
    inp, outp = it.get_input_details()[0], it.get_output_details()[0]
    runtime_config: dict[str, Any] = {"num_threads": None}
    if ctx.text:  # a signature per length bucket; several inputs, found through each signature's names
        sigs = _signatures(out)
        runtime_config["signatures"] = {
            str(n): {"key": bucket_key(n), "inputs": sigs[bucket_key(n)]} for n in ctx.sequence_buckets
        }
        input_spec = ctx.input_spec(dtype=str(np.dtype(inp["dtype"])), shape=[1, "sequence"], buckets=list(ctx.sequence_buckets))
    else:
        nhwc = ctx.options.layout == "nhwc"
        shape = list(ctx.example_input().shape)  # [1, C, H, W] images, [1, n_mels, frames] audio (NCT)
        input_spec = {
            **_spec(inp),
            "shape": [1, *shape[2:], shape[1]] if nhwc else shape,
            "layout": "NHWC" if nhwc else ctx.input_spec()["layout"],
        }
    info = {
        "model_file": MODEL_FILE,
        "input": input_spec,
        "output": {**_spec(outp), "shape": [1, ctx.bundle.manifest["model"]["num_outputs"]]},
        "converter": converter,
        "runtime_config": runtime_config,
        "versions": {p: importlib.metadata.version(p) for p in ("litert-torch", "ai-edge-litert", "ai-edge-quantizer")},
    }
    return embed.tflite(ctx, out, info)  # appended to the final flatbuffer, never to the cached conversion
