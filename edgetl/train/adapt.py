"""Unsupervised domain adaptation: the pieces the recipe adds when ``--adapt-to`` names unlabelled target data.

Each method is a plain function of the target batch's outputs (or features), added to the source loss:

- ``adabn``: no loss; BatchNorm statistics re-estimated on the target after training (Li et al. 2016).
  BatchNorm backbones only (MobileNet-class vision): the text and Whisper encoders use LayerNorm.
- ``entropy``: information maximisation on target logits, as in SHOT (Liang et al. 2020): each prediction
  confident (low entropy), all of them together diverse (high entropy of the mean), so it cannot collapse
  to one class.
- ``mcc``: minimum class confusion (Jin et al. 2020): the classes' correlation over the target batch,
  weighted by certainty, off-diagonal mass minimised.
- ``dann``: a domain discriminator on the pooled features behind a gradient-reversal layer, its weight
  warmed up from 0 to 1 as 2 / (1 + exp(-10 p)) - 1 over training progress p (Ganin et al. 2016).
- self-training (``--self-train``, on top of any): pseudo-labels from a weakly augmented view where the
  model is at least ``--pseudo-threshold`` sure, learnt on a strongly augmented view (FixMatch, Sohn et al. 2020).

Distributed (train/distributed.py): every term is computed from per-sample outputs (target logits, the
discriminator's outputs) gathered from all ranks with only the local rows carrying gradients, so the batch-level
terms (the entropy of the mean prediction, MCC's class confusion) see the whole global batch, as in one process.

Model selection needs no target labels: ``information_maximisation`` on held-out target samples
(higher is better), recorded each epoch beside the source validation metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOSS_METHODS = ("entropy", "mcc", "dann")  # the ones that add a loss on target batches
MCC_TEMPERATURE = 2.5  # the MCC paper's and Transfer-Learning-Library's default
VALIDATOR = "target_im"  # the per-epoch, label-free selection score in the history
Gather = Callable[[torch.Tensor], torch.Tensor]  # this rank's rows of a per-sample tensor -> the global batch's rows


def _own(rows: torch.Tensor) -> torch.Tensor:
    return rows


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


# ------------------------------------------------------------------ losses
def entropy_loss(logits: torch.Tensor) -> torch.Tensor:
    """Mean per-sample entropy minus the entropy of the mean prediction (nats)."""
    p = F.softmax(logits, dim=1)
    per_sample = -(p * F.log_softmax(logits, dim=1)).sum(1).mean()
    mean = p.mean(0)
    return per_sample + (mean * torch.log(mean + 1e-6)).sum()


def mcc_loss(logits: torch.Tensor, temperature: float = MCC_TEMPERATURE) -> torch.Tensor:
    """Minimum class confusion of one target batch."""
    batch, classes = logits.shape
    p = F.softmax(logits / temperature, dim=1)
    certainty = -(p * torch.log(p + 1e-5)).sum(1).detach()
    w = 1 + torch.exp(-certainty)
    w = batch * w / w.sum()
    confusion = (p * w[:, None]).T @ p
    confusion = confusion / confusion.sum(1, keepdim=True)
    return (confusion.sum() - torch.trace(confusion)) / classes


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:  # type: ignore[override]
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.coeff * grad, None


def reverse_gradient(x: torch.Tensor, coeff: float) -> torch.Tensor:
    """Identity forward; the gradient times ``-coeff`` backward."""
    return _Reverse.apply(x, coeff)


def dann_coeff(progress: float) -> float:
    """DANN's warm-up of the reversal weight: 0 at the start, near 1 by the end."""
    return 2.0 / (1.0 + math.exp(-10.0 * min(1.0, max(0.0, progress)))) - 1.0


class DomainDiscriminator(nn.Module):
    """Source (1) or target (0), from pooled features: two hidden layers of 256, as in DANN."""

    def __init__(self, num_features: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(num_features, hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Dropout(0.5), nn.Linear(hidden, 1),
        )  # fmt: skip

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(1)


def dann_loss(
    disc: DomainDiscriminator, source: torch.Tensor, target: torch.Tensor, coeff: float,
    gather_source: Gather = _own, gather_target: Gather = _own,
) -> torch.Tensor:  # fmt: skip
    """Binary cross-entropy of the discriminator over the (global) source and target rows; the backbone gets the
    reversed gradient. The discriminator sees this rank's rows only: its outputs are what is gathered."""
    out = disc(reverse_gradient(torch.cat([source, target]), coeff))
    s, t = gather_source(out[: len(source)]), gather_target(out[len(source) :])
    domain = torch.cat([torch.ones(len(s), device=s.device), torch.zeros(len(t), device=t.device)])
    return F.binary_cross_entropy_with_logits(torch.cat([s, t]), domain)


def self_training_loss(weak: torch.Tensor, strong: torch.Tensor, threshold: float) -> tuple[torch.Tensor, float]:
    """Cross-entropy of the strong view against the weak view's confident argmax; and the share kept."""
    p = F.softmax(weak.detach(), dim=1)
    confidence, pseudo = p.max(1)
    mask = (confidence >= threshold).float()
    loss = (F.cross_entropy(strong, pseudo, reduction="none") * mask).mean()
    return loss, float(mask.mean())


# -------------------------------------------------------------- validation
def information_maximisation(logits: np.ndarray) -> float:
    """Entropy of the mean prediction minus the mean entropy, over log(classes): 1 when every prediction is
    certain and the classes are used evenly, 0 or less for uncertain or collapsed predictions."""
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(1, keepdims=True)
    mean = p.mean(0)
    spread = -(mean * np.log(mean + 1e-12)).sum()
    per_sample = -(p * np.log(p + 1e-12)).sum(1).mean()
    return float((spread - per_sample) / math.log(logits.shape[1]))


# ------------------------------------------------------------------- AdaBN
def batchnorm_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every BatchNorm running statistic."""
    return {
        k: v.clone() for k, v in module.state_dict().items() if k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    }


@torch.no_grad()
def reestimate_batchnorm(module: nn.Module, batches: Iterator[tuple[torch.Tensor, ...]]) -> None:
    """AdaBN: every BatchNorm's running mean and variance become the plain average over ``batches``
    (momentum None); weights untouched, the module left in eval mode."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    module.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    for inputs in batches:
        module(*inputs)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    module.eval()


class TargetCycle:
    """Target batches for the training steps: a fresh seeded order each pass, as many passes as needed."""

    def __init__(self, size: int, batch_size: int, seed: int) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed

    def plan(self, epoch: int, steps: int) -> list[list[int]]:
        """``steps`` batches of target indices for ``epoch`` (depends only on seed and epoch: resume-safe)."""
        gen = torch.Generator().manual_seed(self.seed * 7_919 + epoch)
        order: list[int] = []
        while len(order) < steps * self.batch_size:
            order += torch.randperm(self.size, generator=gen).tolist()
        return [order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(steps)]


class Adaptation:
    """What a run with ``--adapt-to`` carries beside the source recipe: the target datasets (a weak view for the
    losses, a strong one for self-training, held-out target samples for the validator, the labelled report split),
    the method's extra module (DANN's discriminator) and the per-step target loss."""

    def __init__(
        self, method: str, self_train: bool, weight: float, threshold: float, datasets: dict, num_features: int, seed: int
    ) -> None:
        self.method = method
        self.self_train = self_train
        self.weight = weight
        self.threshold = threshold
        self.datasets = datasets  # "target" (weak), "target_plain", "target_val"; "target_strong" when self-training;
        # "target_test" when the target has a labelled test split
        self.discriminator = DomainDiscriminator(num_features) if method == "dann" else None
        self.seed = seed

    @property
    def per_step(self) -> bool:
        """Whether training steps draw target batches."""
        return self.method in LOSS_METHODS or self.self_train

    def modules(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator} if self.discriminator is not None else {}

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        if self.discriminator is None:
            return []
        params = list(self.discriminator.parameters())
        return [{"params": params, "lr": lr, "base_lr": lr, "weight_decay": weight_decay, "name": "domain.decay"}]

    def set_epoch(self, epoch: int) -> None:
        for name in ("target", "target_strong"):
            if name in self.datasets:
                self.datasets[name].set_epoch(epoch)
        if self.discriminator is not None:
            self.discriminator.train()

    def plan(self, epoch: int, steps: int, batch_size: int) -> list[list[int]]:
        return TargetCycle(len(self.datasets["target"]), batch_size, self.seed).plan(epoch, steps)

    def loss(
        self, source_features: torch.Tensor, target_features: torch.Tensor, target_logits: torch.Tensor,
        strong_logits: torch.Tensor | None, progress: float, gather_source: Gather = _own, gather_target: Gather = _own,
    ) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
        """The target terms of one step over the global batch, and what they were (for the history). ``gather_*``
        bring the other ranks' rows (without gradients) when distributed."""
        parts: dict[str, torch.Tensor] = {}
        logits = gather_target(target_logits) if self.method in ("entropy", "mcc") or self.self_train else target_logits
        if self.method == "entropy":
            parts["entropy"] = entropy_loss(logits)
        elif self.method == "mcc":
            parts["mcc"] = mcc_loss(logits)
        elif self.method == "dann":
            assert self.discriminator is not None
            parts["domain"] = dann_loss(
                self.discriminator, source_features, target_features, dann_coeff(progress), gather_source, gather_target
            )
        total = self.weight * sum(parts.values(), torch.zeros((), device=target_logits.device))
        facts = {k: float(v.detach()) for k, v in parts.items()}
        if self.self_train and strong_logits is not None:
            pseudo, kept = self_training_loss(logits, gather_target(strong_logits), self.threshold)
            total = total + pseudo
            facts.update({"pseudo": float(pseudo.detach()), "pseudo_kept": kept})
        return total, facts
