"""Data-parallel helpers over ``torch.distributed`` (gloo on CPU, NCCL on CUDA).

Every rank reads the same global mini-batch, trains on its own contiguous
shard of it (:meth:`DistContext.shard`) with the loss normalised by the global
batch size, and sums gradients with all-reduce: the dense MLP gradients and
the gradients of the batch's unique embedding rows (hot and cold).  Since the
key stream is the same on every rank, so are popularity, hot set and cold
keys, and each rank applies the identical update to its replica of the
tables.  The result equals one process training the whole mini-batch (up to
the order of floating-point sums).

Start with ``torchrun --nproc_per_node=N``: :func:`init_from_env` reads the
variables torchrun sets.  :func:`spawn` starts N local processes on a free
port (tests).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistContext", "init_from_env", "spawn", "free_port"]


@dataclass
class DistContext:
    """Rank and world size of a data-parallel run (``world_size == 1``: no communication).

    Parameters
    ----------
    rank, world_size : int
    """

    rank: int = 0
    world_size: int = 1

    def __post_init__(self):
        if not (isinstance(self.world_size, int) and self.world_size >= 1):
            raise ValueError(f"world_size must be a positive integer, not {self.world_size!r}")
        if not (isinstance(self.rank, int) and 0 <= self.rank < self.world_size):
            raise ValueError(f"rank must be in [0, {self.world_size}), not {self.rank!r}")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> tuple[int, int]:
        """This rank's contiguous range ``[lo, hi)`` of ``n`` samples (sizes differ by at most one)."""
        base, extra = divmod(n, self.world_size)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (1 if self.rank < extra else 0)

    def all_reduce_(self, tensors) -> None:
        """Sum each tensor over the ranks, in place (one flattened all-reduce)."""
        if not self.enabled:
            return
        tensors = [t for t in tensors if t is not None and t.numel()]
        if not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        off = 0
        for t in tensors:
            n = t.numel()
            t.copy_(flat[off:off + n].view_as(t))
            off += n

    def all_reduce_grads_(self, params) -> None:
        """Sum the ``.grad`` of each parameter over the ranks (missing grads count as zero)."""
        if not self.enabled:
            return
        params = list(params)
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.all_reduce_([p.grad for p in params])

    def sum_scalar(self, value: float, device="cpu") -> float:
        if not self.enabled:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return float(t.item())

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self, barrier: bool = True) -> None:
        """Leave the process group (a no-op for one process or when none is joined).

        With ``barrier`` (the default) every rank first waits for the others, so no rank tears
        down its gloo/NCCL threads while a peer still talks to it.  Pass ``barrier=False`` on
        an error path, where the other ranks may never arrive.  Leaving the group explicitly
        matters: a process that exits with the group still joined can abort in the
        communication library's thread teardown ("terminate called without an active
        exception") and so fail a run whose work was all done.
        """
        if not (self.enabled and dist.is_initialized()):
            return
        if barrier:
            dist.barrier()
        dist.destroy_process_group()


def init_from_env(device: torch.device | str = "cpu") -> DistContext:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...).

    Without those variables (or with ``WORLD_SIZE=1``) returns a single-process context.
    Backend: NCCL for a CUDA device, gloo otherwise.  Call :meth:`DistContext.close` when done.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank = int(os.environ["RANK"])
    device = torch.device(device)
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world)


def free_port() -> int:
    """A TCP port on localhost that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn_entry(rank, fn, world_size, port, args):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size)
    try:
        fn(DistContext(rank=rank, world_size=world_size), *args)
    finally:
        dist.destroy_process_group()


def spawn(fn, world_size: int, *args) -> None:
    """Run ``fn(ctx, *args)`` in ``world_size`` local processes joined by gloo on a free port.

    ``fn`` must be importable (a module-level function).  Raises if any process fails.
    """
    import torch.multiprocessing as mp
    mp.spawn(_spawn_entry, args=(fn, world_size, free_port(), args), nprocs=world_size, join=True)
