"""What each export target supports, checked before any work starts (ultralytics' ``export_formats`` table)."""

from __future__ import annotations

from dataclasses import dataclass

PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8")


@dataclass(frozen=True)
class Target:
    name: str
    module: str  # imported only when this target is used
    runtime: str
    precisions: tuple[str, ...]
    layouts: tuple[str, ...] = ("nchw",)
    int8_io: bool = False  # can full-int8 artifacts take int8 input/output?
    fixed_sequence: bool = False  # text: the sequence length is fixed at the bundle's max_length (else dynamic)
    notes: str = ""


TARGETS: dict[str, Target] = {
    "onnx": Target(
        "onnx",
        "edgetl.export.onnx_export",
        "onnxruntime",
        PRECISIONS,
        notes="int8-dynamic: ORT dynamic quantisation; int8: static QDQ, calibrated",
    ),
    "openvino": Target(
        "openvino",
        "edgetl.export.openvino_export",
        "openvino",
        PRECISIONS,
        notes="fp16: compressed weights; int8-dynamic: NNCF int8 weight-only; int8: NNCF PTQ, calibrated",
    ),
    "tflite": Target(
        "tflite",
        "edgetl.export.tflite_export",
        "litert",
        PRECISIONS,
        layouts=("nchw", "nhwc"),
        int8_io=True,
        fixed_sequence=True,
        notes="fp16: weight-only float16; int8-dynamic: ai-edge-quantizer dynamic_wi8_afp32; "
        "int8: static_wi8_ai8, calibrated, float or int8 I/O",
    ),
}
