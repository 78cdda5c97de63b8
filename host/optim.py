"""Optimizers: SGD and Adagrad for the dense parameters, SGD and row-wise Adagrad for embedding rows.

Written out here rather than taken from ``torch.optim`` so that every trainer
mode runs the same arithmetic on the same rows wherever they live (host
tables, the device, a staging buffer of gathered cold rows).

Embedding rows carry their optimizer state beside them: a row is stored as
``W = dim + state_columns`` values, ``[:dim]`` the parameters and ``[dim:]``
the state (row-wise Adagrad: one accumulator per row).  So gather and scatter
move a row and its state together, and the hot table on the device keeps
each hot row's state beside it.  Sparse updates only touch the rows given.
"""

from __future__ import annotations

import torch

from .train_config import TrainConfig

__all__ = ["DenseSGD", "DenseAdagrad", "SparseSGD", "RowWiseAdagrad", "make_optimizers"]


class _Dense:
    def __init__(self, params, lr: float):
        self.params = [p for p in params]
        if not self.params:
            raise ValueError("the optimizer got no parameters")
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"lr must be a positive number, not {lr!r}")
        self.lr = float(lr)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class DenseSGD(_Dense):
    """Plain SGD, ``p -= lr * grad`` (DLRM's default; no momentum, no weight decay).

    Parameters
    ----------
    params : iterable of Tensor
    lr : float
    """

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-self.lr)


class DenseAdagrad(_Dense):
    """Adagrad: ``s += g*g; p -= lr * g / (sqrt(s) + eps)`` per element.

    Parameters
    ----------
    params : iterable of Tensor
    lr, eps, init : float
        Learning rate, epsilon, initial accumulator value.
    """

    def __init__(self, params, lr: float, eps: float = 1e-8, init: float = 0.0):
        super().__init__(params, lr)
        self.eps = float(eps)
        self.state = [torch.full_like(p, float(init)) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        for p, s in zip(self.params, self.state):
            if p.grad is None:
                continue
            s.addcmul_(p.grad, p.grad)
            p.addcdiv_(p.grad, s.sqrt().add_(self.eps), value=-self.lr)

    def state_dict(self) -> dict:
        return {"sum": [s.detach().cpu().clone() for s in self.state]}

    def load_state_dict(self, state: dict) -> None:
        sums = state.get("sum")
        if sums is None or len(sums) != len(self.state):
            raise ValueError("Adagrad state does not match the parameters")
        for s, v in zip(self.state, sums):
            if s.shape != v.shape:
                raise ValueError(f"Adagrad state shape {list(v.shape)} != parameter {list(s.shape)}")
            s.copy_(v)


class SparseSGD:
    """SGD on embedding rows: ``row -= lr * grad`` (no state columns).

    Parameters
    ----------
    dim : int
        Embedding width.
    lr : float
    """

    state_columns = 0

    def __init__(self, dim: int, lr: float):
        self.dim = int(dim)
        self.lr = float(lr)

    @torch.no_grad()
    def update_(self, rows: torch.Tensor, grad: torch.Tensor) -> None:
        """Update ``rows [U, W]`` in place with ``grad [U, dim]`` (one gradient per unique row)."""
        self._check(rows, grad)
        rows[:, :self.dim].add_(grad, alpha=-self.lr)

    def _check(self, rows, grad):
        if rows.dim() != 2 or rows.shape[1] != self.dim + self.state_columns:
            raise ValueError(f"rows must be [U, {self.dim + self.state_columns}], not {list(rows.shape)}")
        if grad.shape != (rows.shape[0], self.dim):
            raise ValueError(f"grad must be [{rows.shape[0]}, {self.dim}], not {list(grad.shape)}")


class RowWiseAdagrad(SparseSGD):
    """Row-wise Adagrad (as in FBGEMM / TorchRec): one accumulator per row.

    ``s += mean(g*g over the row); row -= lr * g / (sqrt(s) + eps)``; the
    accumulator is column ``dim`` of the stored row.

    Parameters
    ----------
    dim : int
    lr, eps : float
    """

    state_columns = 1

    def __init__(self, dim: int, lr: float, eps: float = 1e-8):
        super().__init__(dim, lr)
        self.eps = float(eps)

    @torch.no_grad()
    def update_(self, rows: torch.Tensor, grad: torch.Tensor) -> None:
        self._check(rows, grad)
        s = rows[:, self.dim]
        s.add_(grad.mul(grad).mean(dim=1))
        rows[:, :self.dim].addcdiv_(grad, s.sqrt().add_(self.eps).unsqueeze(1), value=-self.lr)


def make_optimizers(cfg: TrainConfig, params):
    """The dense and the sparse optimizer a :class:`TrainConfig` asks for."""
    if cfg.optimizer == "sgd":
        return DenseSGD(params, cfg.lr), SparseSGD(cfg.embedding_dim, cfg.lr)
    if cfg.optimizer == "adagrad":
        return (DenseAdagrad(params, cfg.lr, cfg.adagrad_eps, cfg.adagrad_init),
                RowWiseAdagrad(cfg.embedding_dim, cfg.lr, cfg.adagrad_eps))
    raise ValueError(f"unknown optimizer {cfg.optimizer!r} (sgd or adagrad)")
