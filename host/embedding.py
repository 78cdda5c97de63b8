"""Where embedding rows live: stacked tables on one device, and the device hot table.

:class:`StackedTables` keeps every table one after the other in one 2-D
tensor ``flat [sum(n_t), W]`` (``W = dim + state_columns``: a row and its
optimizer state side by side), on the host (pinned when the compute device is
CUDA, so copies can be asynchronous) or on the device.  :meth:`views` gives
the per-table views the driver's gather and scatter take.
"""

from __future__ import annotations

import numpy as np
import torch

from .model import init_embedding_

__all__ = ["StackedTables", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch.cuda.is_available() is False "
                         "(use --device cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


class StackedTables:
    """All embedding tables stacked in one tensor.

    Parameters
    ----------
    table_sizes : sequence of int
        Rows per table.
    dim : int
        Embedding width.
    state_columns : int
        Optimizer-state values kept beside each row.
    dtype : torch.dtype
    seed : int
        DLRM initialisation seed (:func:`hotline.host.model.init_embedding_`).
    state_init : float
        Initial value of the state columns.
    device : torch.device
        Where ``flat`` lives (initialised on the host, then moved).
    pin : bool
        Pin the host memory (for asynchronous copies to a CUDA device).

    Members
    -------
    flat : Tensor [N, W]
    offsets : numpy.ndarray int64 [T]
        First row of each table in ``flat``.
    width : int
        ``dim + state_columns``.
    """

    def __init__(self, table_sizes, dim: int, state_columns: int, dtype, seed: int,
                 state_init: float = 0.0, device="cpu", pin: bool = False):
        sizes = tuple(int(n) for n in table_sizes)
        if not sizes or any(n < 1 for n in sizes):
            raise ValueError(f"table_sizes must be positive row counts, not {table_sizes!r}")
        self.table_sizes = sizes
        self.dim = int(dim)
        self.state_columns = int(state_columns)
        self.width = self.dim + self.state_columns
        self.offsets = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
        flat = torch.empty((sum(sizes), self.width), dtype=dtype,
                           pin_memory=bool(pin and torch.cuda.is_available()))
        init_embedding_(flat, sizes, self.dim, seed, state_init)
        self.flat = flat if torch.device(device).type == "cpu" else flat.to(device)
        self._views = None

    @property
    def device(self) -> torch.device:
        return self.flat.device

    def rehome(self, flat: torch.Tensor) -> None:
        """Keep the tables in ``flat`` from now on (same shape and dtype; e.g. device-visible
        host memory that an accelerator's DMA reaches); the caller copied the rows."""
        if flat.shape != self.flat.shape or flat.dtype != self.flat.dtype:
            raise ValueError(f"rehome needs {self.flat.dtype} {list(self.flat.shape)}, not "
                             f"{flat.dtype} {list(flat.shape)}")
        self.flat = flat
        self._views = None

    def views(self) -> list:
        """Per-table views of ``flat`` (host tables only): what the driver's gather/scatter take."""
        if self.flat.device.type != "cpu":
            raise ValueError("views() is for host tables")
        if self._views is None:
            self._views = [self.flat[o:o + n] for o, n in zip(self.offsets.tolist(), self.table_sizes)]
        return self._views

    def global_rows(self, sparse: np.ndarray) -> np.ndarray:
        """Row of ``flat`` for each (sample, table) entry of ``sparse [B, T]`` (int64)."""
        sparse = np.asarray(sparse)
        if sparse.ndim != 2 or sparse.shape[1] != len(self.table_sizes):
            raise ValueError(f"sparse must be [B, {len(self.table_sizes)}], not {sparse.shape}")
        return sparse.astype(np.int64, copy=False) + self.offsets

    def embeddings(self) -> torch.Tensor:
        """The embedding values ``[N, dim]`` (a view)."""
        return self.flat[:, :self.dim]
