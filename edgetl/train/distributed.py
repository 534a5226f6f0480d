"""Data parallelism on torch.distributed: which rank this process is, how a batch is split, and the collectives the
recipe needs.

A run is distributed when the environment says so (``WORLD_SIZE`` > 1, as torchrun, ``accelerate launch
--multi_gpu`` (torchrun's agent; on a CPU too) and ``edgetl finetune --nproc`` set it); rendezvous is torch's
``env://`` (``MASTER_ADDR``, ``MASTER_PORT``), so multi-node works as torchrun documents it. The backend is gloo for
CPU tensors and, where torch has CUDA and a GPU, NCCL for CUDA tensors (``cpu:gloo,cuda:nccl``: the model's
gradients on a GPU go through NCCL, the small CPU-side collectives of metrics and objects through gloo).

Every rank reads the data and builds the same seeded epoch plan; each global batch of the plan is dealt out to the
ranks (``shard``), and each rank's loss is weighted so that DDP's gradient average equals the gradient of the whole
batch's mean loss, whatever the shard sizes. Evaluation is split into contiguous spans and gathered in rank order,
so every rank computes the same metrics and takes the same decisions (best epoch, early stopping).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np

from ..errors import EdgetlError

TIMEOUT_ENV = "EDGETL_DIST_TIMEOUT"  # seconds a collective waits for a silent rank (a dead one is noticed at once)
DEFAULT_TIMEOUT_S = 600


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str = "none"

    @property
    def main(self) -> bool:
        """Rank 0: the only one that writes the run folder and prints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


_world = World()


def world() -> World:
    """This process's place in the run, joining the process group the first time a distributed environment asks."""
    global _world
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1 and _one_of_many_by_accelerate():
        raise EdgetlError(
            "accelerate launch --cpu starts a single process unless it is given an MPI hostfile: launch with "
            "accelerate launch --multi_gpu --num_processes N (it runs on the CPU with gloo), torchrun or "
            "edgetl finetune --nproc N"
        )
    if size <= 1 or _world.active:
        return _world
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    if not dist.is_initialized():
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT", "RANK") if k not in os.environ]
        if missing:
            raise EdgetlError(
                f"WORLD_SIZE={size} but {', '.join(missing)} is not set; launch with torchrun, accelerate launch or "
                f"edgetl finetune --nproc N"
            )
        timeout = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))
        try:
            dist.init_process_group(_backend(), rank=rank, world_size=size, timeout=timeout)
        except (RuntimeError, ValueError) as exc:
            raise EdgetlError(
                f"rank {rank} of {size} could not join the run at {os.environ['MASTER_ADDR']}:"
                f"{os.environ['MASTER_PORT']} ({_first_line(exc)}); check that every node uses the same rendezvous "
                f"address and port"
            ) from None
    _world = World(rank, size, int(os.environ.get("LOCAL_RANK", "0")), dist.get_backend())
    return _world


def _backend() -> str:
    import torch
    import torch.distributed as dist

    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"


def _one_of_many_by_accelerate() -> bool:
    """``accelerate launch --cpu --num_processes N`` without mpirun: a rendezvous address but one process, which
    would train alone while the user waits for N."""
    cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("true", "1")
    mpi = any(k in os.environ for k in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"))
    return cpu and "MASTER_ADDR" in os.environ and not mpi


def is_main_process() -> bool:
    """Rank 0, or not distributed, by the environment alone (no process group needed)."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def finish() -> None:
    """Leave the process group (after the last collective)."""
    global _world
    if _world.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()  # no rank tears its connections down while another still talks (gloo aborts on that)
            dist.destroy_process_group()
    _world = World()


def shard(batch: list[int], w: World) -> tuple[list[int], float]:
    """This rank's samples of a global batch (every size-th, from its rank) and its loss weight, so that the
    average over ranks of weight x shard-mean loss is the mean loss of the whole batch. A rank left without a sample
    takes the batch's first one at weight 0: every rank must take part in each step's gradient average."""
    if not w.active:
        return batch, 1.0
    mine = batch[w.rank :: w.size]
    if not mine:
        return batch[:1], 0.0
    return mine, len(mine) * w.size / len(batch)


def span(n: int, w: World) -> range:
    """This rank's contiguous share of ``n`` evaluation samples; gathered in rank order they are all of them, in
    order."""
    if not w.active:
        return range(n)
    per = -(-n // w.size)
    return range(min(n, w.rank * per), min(n, (w.rank + 1) * per))


def gather_rows(part: np.ndarray, w: World) -> np.ndarray:
    """Every rank's rows, concatenated in rank order, on every rank."""
    if not w.active:
        return part
    import torch.distributed as dist

    parts: list[Any] = [None] * w.size
    dist.all_gather_object(parts, part)
    kept = [p for p in parts if len(p)]
    return np.concatenate(kept) if kept else part


def gather_live(rows: Any, w: World, real: bool = True) -> Any:
    """A per-sample tensor's rows from every rank, in rank order, on every rank, with only this rank's rows carrying
    gradients (``real`` False: this rank's rows are a stand-in and are left out). A loss ``L`` of the whole batch
    computed from them has, on each rank, the exact partial derivatives for its own rows; backpropagating
    ``world size x L`` and DDP's gradient average then give exactly L's gradient, as one process would, with no
    collective inside the backward pass."""
    if not w.active:
        return rows
    import torch
    import torch.distributed as dist

    mine = rows if real else rows[:0]
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(w.size)]
    dist.all_gather(sizes, torch.tensor([len(mine)], dtype=torch.int64))
    counts = [int(n) for n in sizes]
    padded = rows.new_zeros((max(counts), *rows.shape[1:]))
    padded[: len(mine)] = mine.detach()
    parts = [torch.empty_like(padded) for _ in range(w.size)]
    dist.all_gather(parts, padded)
    return torch.cat([mine if r == w.rank else parts[r][: counts[r]] for r in range(w.size)])


def all_sum(values: list[float], w: World) -> list[float]:
    """Sums over ranks (float64)."""
    if not w.active:
        return values
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def all_max(value: float, w: World) -> float:
    if not w.active:
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def from_main(obj: Any, w: World) -> Any:
    """Rank 0's ``obj`` on every rank (the others pass anything, e.g. None)."""
    if not w.active:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(w: World) -> None:
    if w.active:
        import torch.distributed as dist

        dist.barrier()


def lost_peer(exc: BaseException, w: World) -> EdgetlError | None:
    """The one line for a collective that failed because another rank stopped (killed, or failed on its own
    error, which that rank reports); None for any other exception."""
    if not w.active:
        return None
    import torch.distributed as dist

    text = str(exc)
    peer = isinstance(exc, dist.DistError) or (
        isinstance(exc, RuntimeError) and any(s in text for s in ("gloo", "NCCL", "Connection closed", "Connection reset"))
    )
    if not peer:
        return None
    return EdgetlError(
        f"rank {w.rank} of {w.size}: another process of this run stopped ({_first_line(exc)}); the run folder keeps "
        f"the last finished epoch: start the run again with --resume"
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
