"""OpenVINO IR (xml + bin) converted from the PyTorch bundle.

Input names and shapes come from the bundle's input spec (images and audio
log-mel features: a static shape, optional dynamic batch; text: ``input_ids`` +
``attention_mask`` with dynamic batch and sequence length).

- fp32: ``openvino.convert_model``, saved uncompressed;
- fp16: the same IR with weights compressed to float16;
- int8-dynamic: NNCF int8 weight-only compression (activations stay float);
- int8: NNCF post-training quantisation of the IR, calibrated on the bundle's
  training images, texts or audio clips (or ``--calibration``); text models with
  NNCF's transformer model type (its scheme for attention blocks). Speech models
  keep the default preset: on the keyword bundle (whisper-tiny.en, 280 held-out
  clips) the transformer type gave 3.4x the mean output error (0.254 vs 0.075),
  the same agreement (1.0) and the same batch-1 latency (2.7 ms, one thread).

The accuracy guard (``guard.py``): for int8 it tries NNCF's full bias correction, the
mixed preset and 3x the samples, then ``nncf.quantize_with_accuracy_control`` on the
held-out samples (bias correction ties layers together, so keeping one in float
means re-quantising: NNCF's own search does that properly); for int8-dynamic it keeps
the most sensitive weight ops in float by restoring their fp32 constants.

Telemetry is off (see ``edgetl.offline``); the predictor runs with
INFERENCE_PRECISION_HINT=f32 so an fp32 IR computes in fp32 (the CPU default
on AMX machines is bf16).
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from typing import Any

from ..offline import quiet
from . import embed

MODEL_FILE = "model.xml"
OUTPUT = "logits"


def _stable_names(model) -> None:
    """Name the model and every op by position: OpenVINO and NNCF name them from
    per-process counters, which would make two identical exports differ."""
    model.set_friendly_name("edgetl")
    for i, op in enumerate(model.get_ordered_ops()):
        op.set_friendly_name(f"{op.get_type_name()}_{i}")


WEIGHT_OPS = ("Convolution", "GroupConvolution", "MatMul")  # what the guard may keep in float (int8-dynamic)
CALIBRATIONS = {  # rung a of the guard for static int8: name -> nncf.quantize options (and a sample factor)
    "default": ({}, 1),
    "full-bias-correction": ({"fast_bias_correction": False}, 1),
    "mixed-preset": ({"preset": "MIXED"}, 1),
    "3x-samples": ({}, 3),
}


def export(ctx) -> dict[str, Any]:
    from ..offline import telemetry_opt_out

    with telemetry_opt_out():
        return _export(ctx)


def _converted(ctx):
    """The fp32 model with stable op names, converted from PyTorch once per export and read afresh per attempt."""
    import openvino as ov

    path = ctx.work / "fp32.xml"
    if not path.is_file():
        ov.save_model(_convert(ctx), str(path), compress_to_fp16=False)
    return ov.Core().read_model(str(path))


def ladder(ctx):
    """What the guard may try: NNCF's other calibration settings (static int8), and every weight op
    (convolution, matmul) kept in float."""
    from .guard import Ladder

    if ctx.options.precision == "int8":  # bias correction makes float layers a re-quantisation: NNCF's own search
        return Ladder(calibrations=[c for c in CALIBRATIONS if c != "default"], accuracy_control=True)
    return Ladder(
        float_candidates=[
            op.get_friendly_name()
            for op in _converted(ctx).get_ordered_ops()
            if op.get_type_name() in WEIGHT_OPS and _weight_source(op) is not None
        ]
    )


def _weight_source(op):
    """The constant (possibly compressed: Constant -> Convert -> Subtract -> Multiply) an op's weight input comes
    from, or None for an op between two activations."""
    node = op.input_value(1).get_node() if op.get_input_size() > 1 else None
    while node is not None and node.get_type_name() in ("Convert", "Subtract", "Multiply", "FakeQuantize", "Reshape"):
        node = node.input_value(0).get_node()
    return node if node is not None and node.get_type_name() == "Constant" else None


def _keep_float(model, fp32, names: set[str]) -> None:
    """Run ``names`` in float in a weight-compressed model: their weights become the fp32 model's constants."""
    import openvino as ov

    originals = {op.get_friendly_name(): op for op in fp32.get_ordered_ops() if op.get_friendly_name() in names}
    for op in model.get_ordered_ops():
        if op.get_friendly_name() not in names:
            continue
        weight = _weight_source(originals[op.get_friendly_name()])
        if weight is not None and op.input_value(1).get_node().get_type_name() != "Constant":
            op.input(1).replace_source_output(ov.opset13.constant(weight.get_data()).output(0))
    model.validate_nodes_and_infer_types()


def _float_ops(model) -> list[str]:
    """Weight ops of a quantised model that no FakeQuantize feeds: the ones accuracy control reverted."""
    out = []
    for op in model.get_ordered_ops():
        if op.get_type_name() in WEIGHT_OPS and _weight_source(op) is not None:
            if not any(op.input_value(i).get_node().get_type_name() == "FakeQuantize" for i in range(op.get_input_size())):
                out.append(op.get_friendly_name())
    return out


def _accuracy_control(ctx, model, items, extra):
    """``nncf.quantize_with_accuracy_control`` with edgetl's metric on the guard's held-out samples: NNCF ranks
    its quantisers by their cost and reverts the worst (with their bias corrections) until the budget holds."""
    import nncf
    import numpy as np

    gset, task = ctx.guard_set, ctx.bundle.task
    n = len(gset.rows)
    rows = [r[ctx.input_names[0]] if isinstance(r, dict) and len(ctx.input_names) == 1 else r for r in gset.rows]
    ref_mae = float(np.mean(np.abs(gset.reference.reshape(n, -1) - gset.targets.reshape(n, -1))))
    items_with_targets = list(zip(rows, gset.targets))  # NNCF validates on subsets: each sample carries its target

    def validate(compiled, data):
        pairs = list(data)
        outputs = np.concatenate([compiled(x)[0] for x, _ in pairs])
        targets = np.asarray([t for _, t in pairs])
        if task == "classification":  # accuracy as a fraction: the budget is in points
            return float(np.mean(outputs.argmax(1) == targets.astype(np.int64))), None
        return -float(np.mean(np.abs(outputs.reshape(len(pairs), -1) - targets.reshape(len(pairs), -1)))) / max(
            ref_mae, 1e-12
        ), None

    with quiet("nncf"):
        return nncf.quantize_with_accuracy_control(
            model,
            nncf.Dataset(items),
            nncf.Dataset(items_with_targets, lambda pair: pair[0]),
            validate,
            max_drop=ctx.budget / 100.0,
            drop_type=nncf.DropType.ABSOLUTE,
            subset_size=len(items),
            **extra,
        )


def _convert(ctx):
    import openvino as ov
    import torch

    xs = [torch.from_numpy(x) for x in ctx.example_inputs()]
    shape = ctx.input_shape()
    example = xs[0] if len(xs) == 1 else tuple(xs)
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.trace")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        model = ov.convert_model(ctx.bundle.model.eval(), example_input=example, input=[list(shape) for _ in xs])
    for port, name in zip(model.inputs, ctx.input_names):
        port.get_tensor().set_names({name})
    model.outputs[0].get_tensor().set_names({OUTPUT})
    _stable_names(model)
    return model


def _quantized(ctx, model, converter: dict[str, Any]):
    """Every layer quantised: NNCF weight compression (int8-dynamic) or calibrated PTQ (int8, ``ctx.plan``'s variant)."""
    import nncf

    if ctx.options.precision == "int8-dynamic":
        with quiet("nncf"):
            model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        converter["quantizer"] = "nncf.compress_weights INT8_ASYM (weight-only)"
        return model
    options, factor = CALIBRATIONS[ctx.plan.calibration]
    calib = ctx.calibration_feeds(ctx.options.calibration_samples * factor)
    items = [f[ctx.input_names[0]] for f in calib] if len(ctx.input_names) == 1 else calib
    extra: dict[str, Any] = {"model_type": nncf.ModelType.TRANSFORMER} if ctx.text else {}
    extra.update({k: getattr(nncf.QuantizationPreset, v) if k == "preset" else v for k, v in options.items()})
    extra.setdefault("fast_bias_correction", True)
    if ctx.plan.accuracy_control:
        model = _accuracy_control(ctx, model, items, extra)
        converter["float_ops"] = _float_ops(model)
        converter["mixed_precision"] = "nncf.quantize_with_accuracy_control on the held-out samples"
    else:
        with quiet("nncf"):
            model = nncf.quantize(model, nncf.Dataset(items), subset_size=len(calib), **extra)
    converter["quantizer"] = (
        "nncf.quantize (PTQ, "
        + ("mixed" if "preset" in options else "performance")
        + " preset, "
        + ("fast" if extra["fast_bias_correction"] else "full")
        + " bias correction"
        + (", transformer model type)" if ctx.text else ")")
    )
    converter.update(ctx.calibration_record(len(calib)))
    return model


def _export(ctx) -> dict[str, Any]:
    import nncf
    import openvino as ov

    precision = ctx.options.precision
    plan = ctx.plan
    model = _converted(ctx)
    converter: dict[str, Any] = {"name": "openvino.convert_model (PyTorch frontend)"}
    if precision == "int8":
        model = _quantized(ctx, model, converter)
    elif precision == "int8-dynamic":
        full = ctx.work / "int8-dynamic.xml"  # every weight compressed, once per export: the guard's attempts edit it
        if full.is_file():
            converter.update(json.loads(full.with_suffix(".json").read_text()))
            model = ov.Core().read_model(str(full))
        else:
            model = _quantized(ctx, model, converter)
            ov.save_model(model, str(full), compress_to_fp16=False)
            full.with_suffix(".json").write_text(json.dumps(converter))
        if plan.float_layers:
            _keep_float(model, _converted(ctx), set(plan.float_layers))
            converter["float_ops"] = list(plan.float_layers)
            converter["mixed_precision"] = "the compressed model with these ops' fp32 weights restored"
    _stable_names(model)
    info = {
        "model_file": MODEL_FILE,
        "input": ctx.input_spec(),
        "output": ctx.output_spec(OUTPUT),
        "converter": converter,
        "runtime_config": {"device": "CPU", "INFERENCE_PRECISION_HINT": "f32"},
        "versions": {"openvino": ov.get_version(), "nncf": nncf.__version__},
    }
    embed.openvino(ctx, model, info)  # into its rt_info, saved with it
    ov.save_model(model, str(ctx.out / MODEL_FILE), compress_to_fp16=(precision == "fp16"))
    return info
