"""DLRM in PyTorch: bottom MLP, pairwise dot interaction, top MLP.

The dense part (:class:`DLRM`) and the embedding tables are separate, as in
TorchRec: where the tables live (host memory, device memory, a hot table on
the device plus cold rows in host memory) is the trainer's placement choice,
so :meth:`DLRM.forward` takes the already looked-up rows ``emb [B, T, D]``.
:func:`init_embedding_` fills tables with DLRM's initialisation, deterministic
from a seed, so every mode starts from the same parameters.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from .train_config import TrainConfig

__all__ = ["MLP", "DLRM", "dot_interaction", "init_embedding_", "init_table_", "build_model"]


class MLP(nn.Sequential):
    """Linear layers with ReLU after each (after all but the last if ``last_relu`` is off).

    Parameters
    ----------
    in_features : int
    widths : sequence of int
        Output width of each layer.
    last_relu : bool
        Whether the last layer has a ReLU too (DLRM's bottom MLP: yes; top: no,
        its output is the logit).
    generator : torch.Generator
        Source of DLRM's initialisation: weight ~ N(0, sqrt(2/(fan_in+fan_out))),
        bias ~ N(0, sqrt(1/fan_out)).
    """

    def __init__(self, in_features: int, widths, *, last_relu: bool, generator: torch.Generator,
                 dtype=torch.float32):
        layers = []
        n = in_features
        for i, m in enumerate(widths):
            with warnings.catch_warnings():   # n == 0 (no dense features): torch warns, harmlessly
                warnings.simplefilter("ignore", UserWarning)
                lin = nn.Linear(n, m, dtype=dtype)
            with torch.no_grad():
                lin.weight.normal_(0.0, math.sqrt(2.0 / (m + n)), generator=generator)
                lin.bias.normal_(0.0, math.sqrt(1.0 / m), generator=generator)
            layers.append(lin)
            if i < len(widths) - 1 or last_relu:
                layers.append(nn.ReLU())
            n = m
        super().__init__(*layers)


def dot_interaction(x: torch.Tensor, emb: torch.Tensor, itself: bool = False) -> torch.Tensor:
    """DLRM's dot interaction: ``[x, dot products of every pair of features]``.

    Parameters
    ----------
    x : Tensor [B, D]
        Bottom MLP output.
    emb : Tensor [B, T, D]
        Embedding rows, one per table.
    itself : bool
        Include the diagonal (each feature with itself).

    Returns
    -------
    Tensor [B, D + F*(F-1)/2] (or ``F*(F+1)/2`` with ``itself``), ``F = T + 1``;
    the pairs are the strict lower triangle in row-major order, as in DLRM.
    """
    feats = torch.cat([x.unsqueeze(1), emb], dim=1)
    z = torch.bmm(feats, feats.transpose(1, 2))
    f = feats.shape[1]
    li, lj = torch.tril_indices(f, f, offset=0 if itself else -1, device=x.device)
    return torch.cat([x, z[:, li, lj]], dim=1)


class DLRM(nn.Module):
    """The dense part of DLRM; embedding rows come in looked up.

    Parameters
    ----------
    num_dense : int
        Dense features per sample (13 for Criteo).
    tables : int
        Categorical features T (one embedding table each).
    cfg : TrainConfig
        Dims, MLP widths, interaction kind, dtype and seed.

    Members
    -------
    bottom, top : MLP
    """

    def __init__(self, num_dense: int, tables: int, cfg: TrainConfig):
        super().__init__()
        # num_dense may be 0: the bottom MLP then learns a constant vector (its biases)
        if isinstance(num_dense, bool) or not isinstance(num_dense, int) or num_dense < 0:
            raise ValueError(f"num_dense must be a non-negative integer, not {num_dense!r}")
        if isinstance(tables, bool) or not isinstance(tables, int) or tables < 1:
            raise ValueError(f"tables must be a positive integer, not {tables!r}")
        self.cfg = cfg
        self.num_dense = num_dense
        self.tables = tables
        dtype = getattr(torch, cfg.dtype)
        gen = torch.Generator().manual_seed(cfg.seed)
        self.bottom = MLP(num_dense, cfg.bottom_mlp, last_relu=True, generator=gen, dtype=dtype)
        self.top = MLP(cfg.interaction_size(tables), cfg.top_mlp, last_relu=False, generator=gen,
                       dtype=dtype)

    def forward(self, dense: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Logits ``[B]`` for dense features ``[B, num_dense]`` and rows ``[B, T, D]``."""
        x = self.bottom(dense)
        return self.top(dot_interaction(x, emb, self.cfg.interaction_itself)).squeeze(1)


def build_model(num_dense: int, tables: int, cfg: TrainConfig, device="cpu") -> DLRM:
    """A :class:`DLRM` initialised from ``cfg.seed`` and moved to ``device``."""
    return DLRM(num_dense, tables, cfg).to(device)


def init_embedding_(flat: torch.Tensor, table_sizes, dim: int, seed: int,
                    state_init: float = 0.0) -> None:
    """Fill stacked tables with DLRM's initialisation, in place.

    Parameters
    ----------
    flat : Tensor [sum(table_sizes), W]
        The tables one after the other; columns ``[:dim]`` are the row,
        columns ``[dim:]`` the optimizer state beside it.
    table_sizes : sequence of int
    dim : int
    seed : int
        Table t is drawn from its own generator (seed, t), so the values do not
        depend on how the tables are laid out.
    state_init : float
        Initial value of the state columns.

    Each row of table t is uniform in ``[-sqrt(1/n_t), sqrt(1/n_t)]`` (DLRM).
    """
    if flat.dim() != 2 or flat.shape[1] < dim:
        raise ValueError(f"flat must be [rows, >= {dim}], not {list(flat.shape)}")
    total = sum(int(n) for n in table_sizes)
    if flat.shape[0] != total:
        raise ValueError(f"flat has {flat.shape[0]} rows, the tables {total}")
    off = 0
    with torch.no_grad():
        for t, n in enumerate(table_sizes):
            n = int(n)
            init_table_(flat[off:off + n, :dim], t, seed)
            off += n
        if flat.shape[1] > dim:
            flat[:, dim:].fill_(state_init)


def init_table_(rows: torch.Tensor, t: int, seed: int) -> None:
    """Fill table ``t``'s rows ``[n_t, dim]`` with DLRM's initialisation, in place: uniform in
    ``[-sqrt(1/n_t), sqrt(1/n_t)]`` from the generator ``(seed, t)``, the values
    :func:`init_embedding_` gives that table (a peer that keeps each table apart uses it)."""
    n = int(rows.shape[0])
    a = math.sqrt(1.0 / n)
    gen = torch.Generator().manual_seed((seed * 1_000_003 + 7919 * (t + 1)) % (2**63))
    block = torch.empty(tuple(rows.shape), dtype=rows.dtype)
    with torch.no_grad():
        block.uniform_(-a, a, generator=gen)
        rows.copy_(block)
