"""OpenVINO IR (xml + bin) converted from the PyTorch bundle.

- fp32: ``openvino.convert_model`` with a static input shape, saved uncompressed;
- fp16: the same IR with weights compressed to float16;
- int8-dynamic: NNCF int8 weight-only compression (activations stay float);
- int8: NNCF post-training quantisation of the IR, calibrated on the bundle's
  training images (or ``--calibration DIR``).

Telemetry is off (see ``edgetl.offline``); the predictor runs with
INFERENCE_PRECISION_HINT=f32 so an fp32 IR computes in fp32 (the CPU default
on AMX machines is bf16).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

MODEL_FILE = "model.xml"
INPUT, OUTPUT = "pixel_values", "logits"


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
    x = ctx.example_input()
    shape = list(x.shape)
    if ctx.options.dynamic_batch:
        shape[0] = -1
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        model = ov.convert_model(ctx.bundle.model.eval(), example_input=torch.from_numpy(x), input=[shape])
    model.inputs[0].get_tensor().set_names({INPUT})
    model.outputs[0].get_tensor().set_names({OUTPUT})
    converter: dict[str, Any] = {"name": "openvino.convert_model (PyTorch frontend)"}
    if precision == "int8-dynamic":
        model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        converter["quantizer"] = "nncf.compress_weights INT8_ASYM (weight-only)"
    elif precision == "int8":
        calib = ctx.calibration()
        model = nncf.quantize(model, nncf.Dataset([calib[i:i + 1] for i in range(len(calib))]),
                              subset_size=len(calib), fast_bias_correction=True)
        converter["quantizer"] = "nncf.quantize (PTQ, performance preset, fast bias correction)"
        converter["calibration_samples"] = int(len(calib))
        converter["calibration_source"] = ctx.options.calibration or "bundle training split"
    _stable_names(model)
    ov.save_model(model, str(ctx.out / MODEL_FILE), compress_to_fp16=(precision == "fp16"))
    batch = "batch" if ctx.options.dynamic_batch else 1
    return {
        "model_file": MODEL_FILE,
        "input": {"name": INPUT, "shape": [batch, *shape[1:]], "dtype": "float32", "layout": "NCHW"},
        "output": {"name": OUTPUT, "shape": [batch, ctx.bundle.manifest["model"]["num_outputs"]], "dtype": "float32"},
        "converter": converter,
        "runtime_config": {"device": "CPU", "INFERENCE_PRECISION_HINT": "f32"},
        "versions": {"openvino": ov.get_version(), "nncf": nncf.__version__},
    }
