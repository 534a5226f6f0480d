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

Telemetry is off (see ``edgetl.offline``); the predictor runs with
INFERENCE_PRECISION_HINT=f32 so an fp32 IR computes in fp32 (the CPU default
on AMX machines is bf16).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

MODEL_FILE = "model.xml"
OUTPUT = "logits"


def _stable_names(model) -> None:
    """Name the model and every op by position: OpenVINO and NNCF name them from
    per-process counters, which would make two identical exports differ."""
    model.set_friendly_name("edgetl")
    for i, op in enumerate(model.get_ordered_ops()):
        op.set_friendly_name(f"{op.get_type_name()}_{i}")


def export(ctx) -> dict[str, Any]:
    from ..offline import telemetry_opt_out

    with telemetry_opt_out():
        return _export(ctx)


def _export(ctx) -> dict[str, Any]:
    import nncf
    import openvino as ov
    import torch

    precision = ctx.options.precision
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
    converter: dict[str, Any] = {"name": "openvino.convert_model (PyTorch frontend)"}
    if precision == "int8-dynamic":
        model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        converter["quantizer"] = "nncf.compress_weights INT8_ASYM (weight-only)"
    elif precision == "int8":
        calib = ctx.calibration_feeds()
        items = [f[ctx.input_names[0]] for f in calib] if len(ctx.input_names) == 1 else calib
        extra = {"model_type": nncf.ModelType.TRANSFORMER} if ctx.text else {}
        model = nncf.quantize(model, nncf.Dataset(items), subset_size=len(calib), fast_bias_correction=True, **extra)
        converter["quantizer"] = "nncf.quantize (PTQ, performance preset, fast bias correction" + \
            (", transformer model type)" if ctx.text else ")")
        converter.update(ctx.calibration_record(len(calib)))
    _stable_names(model)
    ov.save_model(model, str(ctx.out / MODEL_FILE), compress_to_fp16=(precision == "fp16"))
    return {
        "model_file": MODEL_FILE,
        "input": ctx.input_spec(),
        "output": ctx.output_spec(OUTPUT),
        "converter": converter,
        "runtime_config": {"device": "CPU", "INFERENCE_PRECISION_HINT": "f32"},
        "versions": {"openvino": ov.get_version(), "nncf": nncf.__version__},
    }
