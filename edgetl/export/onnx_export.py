"""ONNX: a single-file model from the PyTorch bundle, then ONNX Runtime quantisation.

Input names and shapes come from the bundle's input spec: ``pixel_values``
(optional dynamic batch) for images, ``input_ids`` + ``attention_mask`` with
dynamic batch and sequence length for text.

- fp32: ``torch.onnx.export`` (TorchScript exporter: ~10x faster than dynamo here and
  byte-stable), opset 17, ``onnx.checker`` full check;
- fp16: float16 weights and compute, float32 inputs/outputs (onnxconverter-common;
  Cast-to-float nodes inside the converted graph, as transformers' attention masks
  have, are retargeted to float16, which that converter leaves undone);
- int8-dynamic: ``quantize_dynamic`` (int8 weights, activations quantised at run time);
- int8: ``quantize_static`` to QDQ, per-channel int8 weights, activations calibrated
  on the bundle's training images (or ``--calibration DIR``). The first convolution
  stays in float: on the digits bundles it alone halves the accuracy drop
  (linear head 5.4 -> 2.2 points, two-phase 0.9 -> 0.6 over 646 held-out images)
  for a layer with 3 input channels, i.e. a small share of the compute.

The accuracy guard (``guard.py``) may ask for other calibration methods (percentile,
entropy, 3x the samples; MinMax only for text; only the weight layers quantised,
attention, norms and adds left in float) and for Conv/MatMul/Gemm nodes kept in
float (``nodes_to_exclude``). Tensor ranges are computed once per method
(``calibration_cache_path``); the ranking of layers edits the fully quantised QDQ
model instead of re-quantising (``_float_surgery``), the artifact kept is quantised
by ORT with ``nodes_to_exclude``.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import embed

MODEL_FILE = "model.onnx"
OUTPUT = "logits"


def _export_fp32(ctx, path: Path) -> None:
    import torch

    model = ctx.bundle.model.eval()
    xs = tuple(torch.from_numpy(x) for x in ctx.example_inputs())
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # transformers' mask helpers, traced as intended
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
        torch.onnx.export(
            model,
            xs,
            str(path),
            dynamo=False,
            opset_version=ctx.options.opset,
            input_names=ctx.input_names,
            output_names=[OUTPUT],
            dynamic_axes=ctx.dynamic_axes(OUTPUT),
            do_constant_folding=True,
        )


class _Reader:
    """onnxruntime CalibrationDataReader over named-input samples, one at a time."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self.data, self.i = feeds, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.data):
            return None
        self.i += 1
        return self.data[self.i - 1]

    def rewind(self) -> None:
        self.i = 0


def _fix_float_casts(model) -> int:
    """Retarget Cast(to=float) nodes whose output the float16 conversion made float16; returns how many."""
    from onnx import TensorProto

    half = {vi.name for vi in model.graph.value_info if vi.type.tensor_type.elem_type == TensorProto.FLOAT16}
    fixed = 0
    for node in model.graph.node:
        if node.op_type == "Cast" and node.output[0] in half:
            for attr in node.attribute:
                if attr.name == "to" and attr.i == TensorProto.FLOAT:
                    attr.i, fixed = TensorProto.FLOAT16, fixed + 1
    return fixed


def _first_conv(model) -> list[str]:
    """Name of the graph's first Conv node (kept in float by static int8), if any."""
    return [node.name for node in model.graph.node if node.op_type == "Conv"][:1]


QUANTISED_OPS = ("Conv", "MatMul", "Gemm")  # the layers the guard may keep in float, in graph order
CALIBRATIONS = {  # rung a of the guard for static int8: name -> (method, extra options, sample factor)
    "default": ("MinMax", {}, 1),
    "percentile": ("Percentile", {"CalibPercentile": 99.999}, 1),
    "entropy": ("Entropy", {}, 1),
    "minmax-3x-samples": ("MinMax", {}, 3),
    "weight-matmuls-only": ("MinMax", {}, 3),  # only Conv/MatMul/Gemm with weights quantised; attention, norms, adds float
}


def _activation_matmuls(model) -> list[str]:
    """MatMul nodes with no constant input: attention scores and mixing, whose ranges int8 serves worst."""
    constants = {t.name for t in model.graph.initializer} | {
        o for n in model.graph.node if n.op_type == "Constant" for o in n.output
    }
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and not any(i in constants for i in n.input)]


def _prepared(ctx) -> Path:
    """The fp32 model after ORT's quantisation pre-processing (shape inference, fusions), made once per export."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = ctx.work / "pre.onnx"
    if not pre.is_file():

        def build(path: Path) -> None:
            quant_pre_process(str(_fp32(ctx)), str(path), skip_symbolic_shape=True)

        ctx.converted(pre, build)
    return pre


def _fp32(ctx) -> Path:
    """The fp32 model, exported from PyTorch once per bundle and options in this process."""
    fp32 = ctx.work / "fp32.onnx"
    return fp32 if fp32.is_file() else ctx.converted(fp32, lambda path: _export_fp32(ctx, path))


def ladder(ctx):
    """What the guard may try: ORT's other calibration methods (static int8), and every Conv/MatMul/Gemm node."""
    import onnx

    from .guard import Ladder

    model = onnx.load(str(_prepared(ctx)))
    nodes = [n.name for n in model.graph.node if n.op_type in QUANTISED_OPS]
    static = ctx.options.precision == "int8"
    first = set(_first_conv(model)) if static else set()
    # texts calibrate at their own lengths: ORT's histogram methods (percentile, entropy) cannot stack those
    variants = [
        c
        for c in CALIBRATIONS
        if c != "default"
        and not (ctx.text and CALIBRATIONS[c][0] != "MinMax")
        and not (c == "weight-matmuls-only" and not _activation_matmuls(model))
    ]
    return Ladder(calibrations=variants if static else [], float_candidates=[n for n in nodes if n not in first])


def _float_surgery(qdq, pre, nodes: set[str]) -> None:
    """Run ``nodes`` of a QDQ model in float: each takes its float inputs again (the tensors before their
    Quantize/Dequantize pairs, and the float weights of the pre-processed model), and what no longer feeds
    anything is dropped. The guard ranks layers with this (ORT's ``quantize_static`` spends seconds per call on
    weights); the model it keeps is made by ``nodes_to_exclude``."""
    original = {n.name: list(n.input) for n in pre.graph.node if n.name in nodes}
    present = (
        {o for n in qdq.graph.node for o in n.output}
        | {i.name for i in qdq.graph.input}
        | {t.name for t in qdq.graph.initializer}
    )
    floats = {t.name: t for t in pre.graph.initializer}
    for node in qdq.graph.node:
        if node.name in original:
            del node.input[:]
            node.input.extend(original[node.name])
            for name in original[node.name]:
                if name and name not in present and name in floats:
                    qdq.graph.initializer.append(floats[name])
                    present.add(name)
    while True:  # drop nodes whose outputs nothing reads
        used = {i for n in qdq.graph.node for i in n.input} | {o.name for o in qdq.graph.output}
        dead = [n for n in qdq.graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            qdq.graph.node.remove(n)
    used = {i for n in qdq.graph.node for i in n.input}
    for t in [t for t in qdq.graph.initializer if t.name not in used]:
        qdq.graph.initializer.remove(t)


def _calibrated(ctx, name: str) -> tuple[Any, Path, int]:
    """(ORT calibration method, the cache file of its tensor ranges, samples) for a calibration variant: the
    ranges are computed once and reused by every attempt of the guard's mixed-precision rung."""
    from onnxruntime.quantization import CalibrationMethod

    method, _, factor = CALIBRATIONS[name]
    return getattr(CalibrationMethod, method), ctx.work / f"ranges-{name}.json", ctx.options.calibration_samples * factor


def export(ctx) -> dict[str, Any]:
    import onnx

    out = ctx.out / MODEL_FILE
    precision = ctx.options.precision
    plan = ctx.plan
    converter: dict[str, Any] = {"name": "torch.onnx.export (torchscript)", "opset": ctx.options.opset}
    if precision == "fp32":
        shutil.copyfile(_fp32(ctx), out)
    elif precision == "fp16":
        from onnxconverter_common import float16

        fp32 = _fp32(ctx)
        with warnings.catch_warnings():  # tiny constants clipped to float16's range: expected
            warnings.filterwarnings("ignore", message=".*will be truncated to", category=UserWarning)
            half = float16.convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
        _fix_float_casts(half)
        onnx.save(half, str(out))
        converter["quantizer"] = "onnxconverter_common.float16 (keep_io_types)"
    elif precision == "int8-dynamic":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(_prepared(ctx)), str(out), weight_type=QuantType.QUInt8, nodes_to_exclude=list(plan.float_layers))
        converter["quantizer"] = "onnxruntime.quantize_dynamic (uint8 weights)"
        converter["float_nodes"] = list(plan.float_layers)
    else:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        pre = _prepared(ctx)
        method, cache, samples = _calibrated(ctx, plan.calibration)
        full = ctx.work / f"qdq-{plan.calibration}.onnx"  # every candidate quantised: what the guard's ranking edits
        if plan.quick and full.is_file():
            qdq = onnx.load(str(full))
            _float_surgery(qdq, onnx.load(str(pre)), set(plan.float_layers))
            onnx.save(qdq, str(out))
            return _describe(
                ctx, out, {**converter, "float_nodes": list(plan.float_layers), "ranking": "float surgery"}, check=False
            )
        if cache.is_file():
            reader, used = None, int(cache.with_suffix(".n").read_text())
        else:
            calib = ctx.calibration_feeds(samples)
            reader, used = _Reader(calib), len(calib)
        pre_model = onnx.load(str(pre))
        keep_float = _first_conv(pre_model) + list(plan.float_layers)
        if plan.calibration == "weight-matmuls-only":
            keep_float += [n for n in _activation_matmuls(pre_model) if n not in keep_float]
        ops = list(QUANTISED_OPS) if plan.calibration == "weight-matmuls-only" else None  # the recipe of the TFLite text int8
        quantize_static(
            str(pre),
            str(out),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=method,
            nodes_to_exclude=keep_float,
            calibration_cache_path=str(cache),
            op_types_to_quantize=ops,
            extra_options=dict(CALIBRATIONS[plan.calibration][1]),
        )
        cache.with_suffix(".n").write_text(str(used))
        if not plan.float_layers and not full.is_file():
            shutil.copyfile(out, full)
        converter["quantizer"] = f"onnxruntime.quantize_static (QDQ, per-channel int8 weights, uint8 activations, {method.name})"
        converter["float_nodes"] = keep_float
        converter.update(ctx.calibration_record(used))
    return _describe(ctx, out, converter)


def _describe(ctx, out: Path, converter: dict[str, Any], check: bool = True) -> dict[str, Any]:
    """Check the written model (onnx.checker), describe it for the manifest and embed that description in it."""
    import onnx
    import onnxruntime

    if check:
        onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    info = {
        "model_file": MODEL_FILE,
        "input": ctx.input_spec(),
        "output": ctx.output_spec(OUTPUT),
        "converter": converter,
        "runtime_config": {"providers": ["CPUExecutionProvider"]},
        "versions": {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
    }
    return embed.onnx(ctx, out, info)
