"""Transfer strategies as explicit, per-epoch decisions.

Layer groups come from the family, ordered input -> output. A strategy says, for
each epoch, how many of the top groups train with the head, and where the LR
schedule restarts. Frozen groups also keep their BatchNorm statistics frozen.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import FinetuneConfig


def trainable_groups(cfg: FinetuneConfig, epoch: int, n_groups: int) -> int:
    """How many of the top backbone groups train at ``epoch`` (0-based)."""
    if cfg.strategy == "linear":
        return 0
    if cfg.strategy == "full":
        return n_groups
    if cfg.strategy == "partial":
        return min(cfg.unfreeze, n_groups)
    if cfg.strategy == "gradual":
        return min(n_groups, epoch // cfg.gradual_every)
    return 0 if epoch < cfg.phase1_epochs else n_groups  # two-phase


def trainable_names(n_trainable: int, n_groups: int) -> list[str]:
    """The parameter groups that train when the top ``n_trainable`` of ``n_groups`` do: "backbone.N" ..., "head"."""
    return [f"backbone.{i}" for i in range(n_groups - n_trainable, n_groups)] + ["head"]


def segments(cfg: FinetuneConfig) -> list[tuple[int, int]]:
    """Epoch ranges [start, end) over which one warm-up + cosine schedule runs."""
    if cfg.strategy == "two-phase":
        return [(0, cfg.phase1_epochs), (cfg.phase1_epochs, cfg.epochs)]
    return [(0, cfg.epochs)]


def lr_factor(cfg: FinetuneConfig, epoch: int, step: int, steps_per_epoch: int) -> float:
    """Warm-up then cosine decay within the epoch's segment."""
    start, end = next((s, e) for s, e in segments(cfg) if s <= epoch < e)
    total = max(1, (end - start) * steps_per_epoch)
    t = (epoch - start) * steps_per_epoch + step
    warm = min(total - 1, int(round(cfg.warmup_epochs * steps_per_epoch)))
    if t < warm:
        return (t + 1) / (warm + 1)
    progress = (t - warm) / max(1, total - warm)
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))


def _params(model: nn.Module, names: list[str]) -> list[tuple[str, nn.Parameter]]:
    out = []
    for name in names:
        out += [(f"{name}.{n}", p) for n, p in model.get_submodule(name).named_parameters()]
    return out


def param_groups(model: nn.Module, groups: list[list[str]], cfg: FinetuneConfig) -> list[dict]:
    """AdamW groups with discriminative LRs: head at lr_head, backbone groups at lr_backbone
    (times layer_decay per step down when set). Biases and norm weights get no weight decay."""
    n = len(groups)
    spec: list[tuple[str, list[tuple[str, nn.Parameter]], float]] = []
    for i, names in enumerate(groups):
        decay = cfg.layer_decay ** (n - 1 - i) if cfg.layer_decay else 1.0
        spec.append((f"backbone.{i}", _params(model.backbone, names), cfg.lr_backbone * decay))
    head = list(model.head.named_parameters())
    spec.append(("head", head, cfg.lr_head))
    out = []
    for name, params, lr in spec:
        for wd_name, wd in (("decay", cfg.weight_decay), ("no_decay", 0.0)):
            chosen = [p for n_, p in params if (p.ndim > 1) == (wd_name == "decay")]
            if chosen:
                out.append({"params": chosen, "lr": lr, "base_lr": lr, "weight_decay": wd, "name": f"{name}.{wd_name}"})
    return out


def head_lr_scale(cfg: FinetuneConfig, epoch: int) -> float:
    """Two-phase: once the backbone is unfrozen, the head's LR drops 10x."""
    return 0.1 if cfg.strategy == "two-phase" and epoch >= cfg.phase1_epochs else 1.0


def apply_freezing(model: nn.Module, groups: list[list[str]], n_trainable: int, train_bn: bool = True) -> None:
    """requires_grad and train/eval mode per group: the top ``n_trainable`` groups train.

    With ``train_bn=False`` every BatchNorm layer keeps its pretrained running
    statistics (eval mode) while its affine parameters may still train."""
    first_trainable = len(groups) - n_trainable
    model.backbone.train(n_trainable > 0)
    for i, names in enumerate(groups):
        train = i >= first_trainable
        for name in names:
            module = model.backbone.get_submodule(name)
            module.train(train)
            for p in module.parameters():
                p.requires_grad_(train)
    if not train_bn:
        for module in model.backbone.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
    for p in model.head.parameters():
        p.requires_grad_(True)
    model.head.train(True)


def set_lrs(optimizer: torch.optim.Optimizer, factor: float, head_scale: float) -> None:
    for group in optimizer.param_groups:
        scale = head_scale if group["name"].startswith("head") else 1.0
        group["lr"] = group["base_lr"] * factor * scale
