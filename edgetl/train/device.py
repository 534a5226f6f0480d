"""Where training runs: ``--device auto | cpu | cuda | cuda:N``.

``auto`` takes the GPU when torch sees one, else the CPU. Distributed ranks on CUDA take one GPU each,
``cuda:LOCAL_RANK`` (NCCL cannot put two ranks of one run on the same GPU). The data pipeline, the feature cache
on disk, checkpoints and the bundle stay on the CPU; the model, its batches and the adaptation's modules move.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..errors import EdgetlError

if TYPE_CHECKING:
    import torch

DEVICES = "auto, cpu, cuda or cuda:N"
_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def valid_device(requested: str) -> bool:
    return bool(_PATTERN.fullmatch(requested))


def resolve(requested: str, local_rank: int = 0, world_size: int = 1) -> torch.device:
    """The device this process trains on; a clear error when the one asked for is not there."""
    import torch

    if not valid_device(requested):
        raise EdgetlError(f"--device {requested!r}: choose {DEVICES}")
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        built = f"torch {torch.__version__} is built without CUDA" if torch.version.cuda is None else "torch sees no GPU"
        raise EdgetlError(f"--device {requested}: {built} on this machine; train with --device cpu (or auto)")
    count = torch.cuda.device_count()
    if ":" in requested:
        if world_size > 1:
            raise EdgetlError(
                f"--device {requested} names one GPU, and each of the {world_size} ranks takes its own "
                f"(cuda:LOCAL_RANK): pass --device cuda"
            )
        index = int(requested.split(":")[1])
    else:
        index = local_rank
    if index >= count:
        raise EdgetlError(
            f"this process would train on cuda:{index}, and torch sees {count} GPU{'s' if count != 1 else ''} here: "
            f"start at most {count} process{'es' if count != 1 else ''} per machine, or train with --device cpu"
        )
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def move(x: Any, device: torch.device) -> Any:
    """A batch's tensors (a tensor, or a tuple/list of them, e.g. input_ids and attention_mask) on ``device``."""
    import torch

    if device.type == "cpu":
        return x
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, (tuple, list)):
        return type(x)(move(v, device) for v in x)
    return x


def peak_memory_mb(device: torch.device) -> float | None:
    """The most GPU memory torch held for tensors during the run (None on the CPU: peak RSS says it)."""
    import torch

    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
