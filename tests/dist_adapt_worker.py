"""One rank of test_distributed's domain-adaptation gradient check: the adaptation's loss of a global batch from
this rank's share, backpropagated as the recipe does (world size x loss, then DDP's average, done here by hand),
written as the averaged gradients, one file per case. Run with no distributed environment it is the one-process
reference.

    python dist_adapt_worker.py OUT_DIR METHOD,SELF_TRAIN,SOURCE_BATCH,TARGET_BATCH ...
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from edgetl.train import distributed
from edgetl.train.adapt import Adaptation


def case(w: distributed.World, method: str, self_train: bool, n_source: int, n_target: int, out: str) -> None:
    torch.manual_seed(0)  # the same global batch and modules on every rank
    x_source, x_target, x_strong = torch.randn(n_source, 5), torch.randn(n_target, 5), torch.randn(n_target, 5)
    backbone, head = torch.nn.Linear(5, 6), torch.nn.Linear(6, 3)
    ad = Adaptation(method, self_train, weight=0.7, threshold=0.4, datasets={}, num_features=6, seed=0)
    modules = {"backbone": backbone, "head": head, **ad.modules()}
    for m in modules.values():
        m.eval()  # the discriminator's dropout masks are drawn per rank: the gradients are compared without them
    source, source_weight = distributed.shard(list(range(n_source)), w)
    target, target_weight = distributed.shard(list(range(n_target)), w)
    fs, ft = backbone(x_source[source]), backbone(x_target[target])
    loss, facts = ad.loss(
        fs, ft, head(ft), head(backbone(x_strong[target])), 0.6,
        gather_source=lambda rows: distributed.gather_live(rows, w, source_weight > 0),
        gather_target=lambda rows: distributed.gather_live(rows, w, target_weight > 0),
    )  # fmt: skip
    (loss * w.size).backward()
    grads = {}
    for name, m in modules.items():
        for p_name, p in m.named_parameters():
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            if w.active:
                torch.distributed.all_reduce(g)
                g = g / w.size
            grads[f"{name}.{p_name}"] = g.numpy()
    if w.main:
        np.savez(out, loss=float(loss), **{f"fact.{k}": v for k, v in facts.items()}, **grads)


def main(out_dir: str, cases: list[str]) -> None:
    w = distributed.world()
    for name in cases:
        method, self_train, n_source, n_target = name.split(",")
        case(w, method, self_train == "1", int(n_source), int(n_target), f"{out_dir}/{name}.npz")
    distributed.finish()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
