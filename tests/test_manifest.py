"""Typed manifests: checked field by field, versioned, and written back as they were read."""

from __future__ import annotations

import copy

import pytest

from edgetl_runtime.errors import EdgetlError
from edgetl_runtime.manifest import VERSION, ArtifactManifest, TensorSpec

MANIFEST = {
    "format": "edgetl-artifact", "version": 1, "name": "tflite-int8-ioint8", "target": "tflite", "runtime": "litert",
    "precision": "int8", "modality": "image", "task": "classification", "labels": ["blue", "green", "red"],
    "preprocess": {"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.25] * 3, "resize": 36, "interpolation": "bilinear"},
    "model_file": "model.tflite", "files": {"model.tflite": 123},
    "input": {"name": "pixel_values", "shape": [1, 3, 32, 32], "dtype": "int8", "layout": "NCHW",
              "quantization": {"scale": 0.02, "zero_point": -3}},
    "output": {"name": "logits", "shape": [1, 3], "dtype": "float32"},
    "runtime_config": {"num_threads": 2}, "parity": {"passed": True}, "guard": {"rung": "default"},
}  # fmt: skip


def test_round_trip_keeps_every_field():
    m = ArtifactManifest.from_json(copy.deepcopy(MANIFEST), "manifest.json")
    assert m.input.quantization is not None and m.input.quantization.zero_point == -3
    assert m.input.names == ["pixel_values"] and m.input.fixed_batch == 1 and m.labels == ("blue", "green", "red")
    assert m.extra == {"parity": {"passed": True}, "guard": {"rung": "default"}}
    assert m.to_json() == MANIFEST


def test_text_input_spec():
    spec = TensorSpec.from_json({"name": ["input_ids", "attention_mask"], "shape": ["batch", 64], "dtype": "int32",
                                 "buckets": [8, 16, 64], "pad_id": 0}, "m", "input")  # fmt: skip
    assert spec.names == ["input_ids", "attention_mask"] and spec.fixed_batch is None and spec.fixed_length == 64
    assert spec.buckets == (8, 16, 64)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(version=VERSION + 1), "written by a newer edgetl .* upgrade edgetl-runtime"),
        (lambda m: m.pop("model_file"), "field 'model_file' is missing; re-run `edgetl export`"),
        (lambda m: m["input"].update(shape="1x3"), "field 'input.shape' is a str, expected list"),
        (lambda m: m.update(task="detection"), "field 'task' is 'detection'"),
        (lambda m: m.update(format="edgetl-bundle"), "field 'format' is 'edgetl-bundle'"),
        (lambda m: m["input"].update(quantization={"scale": 1.0}), "needs scale and zero_point"),
    ],
)
def test_malformed_manifests_are_one_line(change, message):
    bad = copy.deepcopy(MANIFEST)
    change(bad)
    with pytest.raises(EdgetlError, match=message) as err:
        ArtifactManifest.from_json(bad, "art/manifest.json")
    assert "\n" not in str(err.value) and str(err.value).startswith("art/manifest.json: ")
