"""The training modes on the same data, seed and model initialisation.

``hybrid`` (the baseline, as the reference DLRM does it)
    Tables in host memory.  Every step looks up the batch's rows on the host
    and copies the looked-up rows ``[B, T, D]`` (one per lookup) to the
    compute device, where the MLPs run; the gradients of the batch's unique
    rows come back and the host applies the sparse update.
``hybrid-dedup`` (the de-duplicating baseline)
    As ``hybrid``, but the host copies only the batch's unique rows
    ``[U, D]`` plus the inverse index ``[B, T]``, and the device expands
    them: what any hybrid can do without an accelerator.
``device``
    Everything on the compute device (the upper bound when the tables fit).
``hotline``
    Learns popularity over the first steps (``learn_fraction``; those steps
    train like ``hybrid-dedup``) through the accelerator driver, picks the hot set
    for ``hot_budget_bytes``, keeps the hot rows on the device in one hot
    table indexed by slot, and then for each mini-batch: classify; start the
    gather of the non-popular micro-batch's cold rows on the DMA worker (a
    thread, plus a CUDA stream on CUDA); train the popular micro-batch
    meanwhile; wait for the gather; train the non-popular micro-batch;
    ONE optimizer step for the mini-batch (both micro-batches' gradients
    accumulated, the loss normalised by the full mini-batch size, so the maths
    equals the baseline's step); scatter the updated cold rows (and their
    optimizer state) back to host memory on the DMA worker.

Read-after-write hazard: a cold row updated by batch i and read by batch i+1
must be read after its write-back.  Gathers and scatters
run on two workers (the DMA engine's read and write channels), so nothing but
an explicit order stops a gather from overtaking a write-back: every gather
job waits for the previous batch's scatter job before it reads a row
(``HotlineTrainer._gather_job``), so batch i+1's gather sees batch i's
updates while batch i's scatter still overlaps batch i+1's classification.

Data parallel (:mod:`hotline.host.distributed`): every rank sees the whole
global mini-batch's keys (so popularity, hot set and cold keys agree), trains
its own shard of samples, and all-reduces the dense gradients and the
gradients of the batch's unique rows before the identical update on every rank.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ConfigError, HotlineConfig
from ..hashing import pack_keys
from .distributed import DistContext
from .driver import make_accelerator
from .embedding import StackedTables, resolve_device
from .metrics import ByteCounter, Timers, log_loss, roc_auc
from .model import build_model
from .optim import make_optimizers
from .train_config import TrainConfig

__all__ = ["Trainer", "HybridTrainer", "HybridDedupTrainer", "DeviceTrainer", "HotlineTrainer", "make_trainer",
           "learn_steps_for", "narrow_index", "rows_at", "hw_config_for", "TRAINERS"]


def _next_pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


def narrow_index(values: np.ndarray, bound: int) -> np.ndarray:
    """``values`` (all in ``[0, bound)``) in the narrowest signed dtype that holds them:
    index arrays cross the host-device link at the width the hardware would use."""
    for dt in (np.int16, np.int32):
        if bound <= np.iinfo(dt).max:
            return values.astype(dt)
    return values.astype(np.int64)


def rows_at(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for an index of any shape, via ``index_select``: its backward is
    ``index_add_``, deterministic on every thread count (the backward of advanced indexing
    accumulates in a thread-dependent order on CPU, so float32 runs would not repeat)."""
    return torch.index_select(table, 0, index.reshape(-1)).view(*index.shape, table.shape[1])


def learn_steps_for(cfg: TrainConfig, total_steps: int) -> int:
    """Steps of the popularity-learning phase: ``ceil(learn_fraction * total_steps)``, at least 1."""
    return max(1, math.ceil(cfg.learn_fraction * total_steps))


def hw_config_for(cfg: TrainConfig, table_sizes, total_steps: int,
                  base: HotlineConfig | None = None, *, fixed: bool = False) -> HotlineConfig:
    """The hardware config a training run needs.

    Without ``base`` (the default config is the starting point) everything is
    derived to fit: ``keys.tables = T``, ``reorder.keys_per_sample = T``,
    ``max_batch_samples >= B``, ``max_batch_keys >= B*T`` (a batch can never
    overflow the de-dup store), a hot map of at least twice the most hot rows
    the budget allows, and a sketch of ``2**S >= learned keys`` counters
    (up to ``2**22``).  With a user ``base`` its sizes are kept where they can
    work (``max_batch_keys``, the counter array): only ``keys_per_sample``,
    ``max_batch_samples`` and the hot-map size grow; a batch that overflows
    ``max_batch_keys`` then trains through the hybrid path (counted as
    ``overflow_batches``).  With ``fixed`` (the ``sim`` and ``fpga`` backends:
    hardware that exists) nothing grows: ``base`` (by default the ``ecp5-85f``
    profile, which is the default config) is used as it is, and it must take
    the data's samples (``keys_per_sample`` = tables); where its hot map or
    batch limits bind, the trainer says so and counts the cost.

    Raises
    ------
    ConfigError
        The tables cannot be addressed (too many, or ``keys.row_bits`` too small).
    """
    user = base is not None
    base = HotlineConfig() if base is None else base
    sizes = tuple(int(n) for n in table_sizes)
    t = len(sizes)
    if t > 64:
        raise ConfigError(f"the accelerator handles at most 64 tables, the data has {t}")
    need_bits = max(1, (max(sizes) - 1).bit_length())
    if base.keys.row_bits < need_bits:
        raise ConfigError(f"keys.row_bits {base.keys.row_bits} cannot index a table of {max(sizes)} "
                          f"rows (needs {need_bits})")
    if (user or fixed) and base.keys.tables < t:
        raise ConfigError(f"keys.tables {base.keys.tables} is smaller than the model's {t} tables")
    if fixed:
        if base.reorder.keys_per_sample != t:
            raise ConfigError(f"the hardware takes samples of reorder.keys_per_sample="
                              f"{base.reorder.keys_per_sample} keys; the data has {t} tables "
                              f"(build the hardware for this data: -c FILE)")
        return base
    b = cfg.batch_size
    learned = learn_steps_for(cfg, total_steps) * b * t
    max_hot = cfg.hot_budget_bytes // cfg.row_bytes
    max_hot = min(max_hot, learned if cfg.hot_candidates == "learned" else base.counter.hh_entries)
    r = base.reorder
    lb = r.hotmap_log2_buckets
    while r.hotmap_hashes * (1 << lb) * r.hotmap_ways < 2 * max_hot and lb < 24:
        lb += 1
    reorder = {"keys_per_sample": t, "hotmap_log2_buckets": lb,
               "max_batch_samples": max(r.max_batch_samples, _next_pow2(b))}
    keys, counter = {}, {}
    if not user:
        keys["tables"] = t
        reorder["max_batch_keys"] = max(r.max_batch_keys, _next_pow2(b * t))
        counter["log2_counters"] = min(22, max(base.counter.log2_counters,
                                               math.ceil(math.log2(max(2, learned)))))
        # A derived config sizes the in-process golden model, not a chip: use the plain
        # (vectorised) count-min update, which learns ~15x faster than the sequential
        # conservative update; with the learned keys as hot-set candidates both pick
        # the same set whenever the budget holds every learned key.
        counter["conservative_update"] = False
        counter["counter_bits"] = max(base.counter.counter_bits, 16)  # no ties among saturated hot keys
    return base.replace(keys=keys, reorder=reorder, counter=counter)


class Trainer:
    """What every mode shares: the model, the optimizers, the loop, metrics and evaluation.

    Parameters
    ----------
    cfg : TrainConfig
    table_sizes : sequence of int
        Rows per embedding table (from the dataset).
    num_dense : int
        Dense features per sample.
    total_steps : int
        Steps the whole run will take (fixes the learning phase and the timeline window).
    dist : DistContext, optional
        Data-parallel rank and world size (single process by default).

    Members
    -------
    model : DLRM
    step : int
        Steps trained so far (also the data position: batch ``step`` of the epoch).
    losses : list of float
        Training loss of every step (mean over the global mini-batch).
    bytes : ByteCounter
        Bytes copied host -> device and back.
    timers : Timers
        Wall-clock time per phase (main thread and DMA worker).
    """

    mode = "base"

    def __init__(self, cfg: TrainConfig, table_sizes, num_dense: int, *, total_steps: int,
                 dist: DistContext | None = None):
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"cfg must be a TrainConfig, not {type(cfg).__name__}")
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps must be a positive integer, not {total_steps!r}")
        self.cfg = cfg
        self.table_sizes = tuple(int(n) for n in table_sizes)
        self.num_dense = int(num_dense)
        self.total_steps = total_steps
        self.dist = dist if dist is not None else DistContext()
        self.device = resolve_device(cfg.device)
        self.dtype = getattr(torch, cfg.dtype)
        self.model = build_model(self.num_dense, len(self.table_sizes), cfg, self.device)
        self.dense_opt, self.sparse_opt = make_optimizers(cfg, self.model.parameters())
        self.bytes = ByteCounter()
        cuda = self.device.type == "cuda"
        self.timers = Timers(sync=(lambda: torch.cuda.current_stream(self.device).synchronize())
                             if cuda else None, sync_always=cfg.sync_timers)
        self._stage_h = None          # pinned staging buffer of the hybrid steps (CUDA)
        self.step = 0
        self.losses = []
        self.step_seconds = []
        self.samples_trained = 0
        self.train_seconds = 0.0

    # -- helpers -------------------------------------------------------------------------

    def _tables(self, device) -> StackedTables:
        return StackedTables(self.table_sizes, self.cfg.embedding_dim, self.sparse_opt.state_columns,
                             self.dtype, self.cfg.seed, self.cfg.adagrad_init, device=device,
                             pin=self.device.type == "cuda" and torch.device(device).type == "cpu")

    def _pinned(self, *shape) -> torch.Tensor | None:
        """A reused pinned host buffer of ``shape`` on CUDA (``None`` on CPU).  Reusing it in
        the next step is safe: every step ends by reading its loss on the host, which waits for
        the current stream and so for the copy out of the buffer."""
        if self.device.type != "cuda":
            return None
        n = math.prod(shape)
        if self._stage_h is None or self._stage_h.numel() < n:
            self._stage_h = torch.empty(max(n, 1), dtype=self.dtype, pin_memory=True)
        return self._stage_h[:n].view(*shape)

    def _to_device(self, array, kind: str, dtype=None) -> torch.Tensor:
        """Copy a host array to the compute device, counting its bytes as ``kind``."""
        t = array if isinstance(array, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(array))
        if dtype is not None and t.dtype != dtype:
            t = t.to(dtype)
        self.bytes.to_device(kind, t.numel() * t.element_size())
        return t.to(self.device, non_blocking=True)

    def _inputs(self, batch, lo: int, hi: int):
        dense = self._to_device(batch.dense[lo:hi], "inputs", self.dtype)
        labels = self._to_device(batch.labels[lo:hi], "inputs", self.dtype)
        return dense, labels

    def _loss_backward(self, dense, labels, emb, batch_size: int) -> torch.Tensor:
        """Forward and backward of some samples; the loss is normalised by the full batch size."""
        logits = self.model(dense, emb)
        loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="sum")
        (loss / batch_size).backward()
        return loss.detach()

    def _reduce_and_step(self, row_grads) -> None:
        """All-reduce dense and row gradients (one buffer), then the dense optimizer step."""
        params = list(self.model.parameters())
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.dist.all_reduce_([p.grad for p in params] + list(row_grads))
        self.dense_opt.step()
        self.dense_opt.zero_grad()

    def _row_grad(self, leaf: torch.Tensor) -> torch.Tensor:
        return leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)

    # -- the loop ---------------------------------------------------------------------------

    def train_step(self, batch) -> float:
        raise NotImplementedError

    def train(self, dataset, steps: int, progress=None) -> None:
        """Train ``steps`` mini-batches, continuing from :attr:`step` (wrapping over epochs).

        ``progress(trainer, loss)`` is called after each step.
        """
        b = self.cfg.batch_size
        per_epoch = len(dataset) // b
        if per_epoch == 0:
            raise ValueError(f"the training data has {len(dataset)} samples, fewer than one "
                             f"batch of {b}")
        t_start = time.perf_counter()
        for _ in range(steps):
            start = (self.step % per_epoch) * b
            with self.timers("data"):
                batch = dataset.batch(start, b)
            self.timers.step = self.step
            self.timers.record = self.step >= self.total_steps - self.cfg.timeline_steps
            t0 = time.perf_counter()
            loss = self.train_step(batch)
            self.step_seconds.append(time.perf_counter() - t0)
            self.losses.append(loss)
            self.step += 1
            self.samples_trained += b
            if progress is not None:
                progress(self, loss)
        self.settle()
        self.train_seconds += time.perf_counter() - t_start

    def settle(self) -> None:
        """Complete the outstanding work of the steps trained (end of :meth:`train`); rows may
        still live apart from the host tables (hotline's hot table) until :meth:`finish`."""
        self.finish()

    def finish(self) -> None:
        """Complete outstanding work so that the parameters are all in place."""

    # -- evaluation --------------------------------------------------------------------------

    def _eval_rows(self, sparse: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, dataset):
        """``(labels, probabilities)`` of every sample of ``dataset`` (NumPy)."""
        self.finish()
        labels, probs = [], []
        n = len(dataset)
        for start in range(0, n, self.cfg.eval_batch_size):
            batch = dataset.batch(start, min(self.cfg.eval_batch_size, n - start))
            dense = torch.from_numpy(np.ascontiguousarray(batch.dense)).to(self.device, self.dtype)
            logits = self.model(dense, self._eval_rows(batch.sparse))
            probs.append(torch.sigmoid(logits).double().cpu().numpy())
            labels.append(np.asarray(batch.labels))
        if not probs:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(labels), np.concatenate(probs)

    def evaluate(self, dataset) -> dict:
        """Test log loss and AUC on ``dataset``."""
        labels, probs = self.predict(dataset)
        return {"test_samples": int(labels.size), "test_log_loss": log_loss(labels, probs),
                "test_auc": roc_auc(labels, probs)}

    # -- parameters and state ----------------------------------------------------------------

    def _flat_cpu(self) -> torch.Tensor:
        raise NotImplementedError

    def parameters_cpu(self) -> dict:
        """Every parameter and optimizer state on the host: ``model.*``, ``embeddings``
        (rows with their state columns) and ``dense_state.*``."""
        self.finish()
        out = {f"model.{k}": v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        out["embeddings"] = self._flat_cpu().clone()
        for i, s in enumerate(self.dense_opt.state_dict().get("sum", [])):
            out[f"dense_state.{i}"] = s
        return out

    def state_dict(self) -> dict:
        """Everything needed to resume exactly (see :mod:`hotline.host.checkpoint`)."""
        self.finish()
        return {"mode": self.mode, "train_cfg": self.cfg.to_dict(),
                "table_sizes": list(self.table_sizes), "num_dense": self.num_dense,
                "total_steps": self.total_steps, "world_size": self.dist.world_size,
                "step": self.step, "samples_trained": self.samples_trained,
                "losses": list(self.losses), "step_seconds": list(self.step_seconds),
                "train_seconds": self.train_seconds,
                "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
                "dense_opt": self.dense_opt.state_dict(), "tables": self._flat_cpu().clone(),
                "bytes": self.bytes.state_dict(), "timers": self.timers.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if state["mode"] != self.mode:
            raise ValueError(f"checkpoint is of mode {state['mode']!r}, this trainer is {self.mode!r}")
        if TrainConfig.from_dict(state["train_cfg"]) != self.cfg:
            raise ValueError("checkpoint was written with a different train config")
        if tuple(state["table_sizes"]) != self.table_sizes or state["num_dense"] != self.num_dense:
            raise ValueError("checkpoint was written for different table sizes or dense features")
        if state["total_steps"] != self.total_steps:
            raise ValueError(f"checkpoint was written for a run of {state['total_steps']} steps, "
                             f"this one has {self.total_steps}")
        self.model.load_state_dict(state["model"])
        self.dense_opt.load_state_dict(state["dense_opt"])
        self._load_flat(state["tables"])
        self.step = int(state["step"])
        self.samples_trained = int(state["samples_trained"])
        self.losses = list(state["losses"])
        self.step_seconds = list(state["step_seconds"])
        self.train_seconds = float(state["train_seconds"])
        self.bytes.load_state_dict(state["bytes"])
        self.timers.load_state_dict(state["timers"])

    def _load_flat(self, flat: torch.Tensor) -> None:
        raise NotImplementedError

    # -- report ----------------------------------------------------------------------------------

    def summary(self) -> dict:
        """Metrics of the run so far (JSON-ready)."""
        n = max(1, self.samples_trained)
        secs = max(self.train_seconds, 1e-12)
        h2d = self.bytes.total_h2d(exclude=("hot_load",))
        return {
            "mode": self.mode, "device": str(self.device), "dtype": self.cfg.dtype,
            "optimizer": self.cfg.optimizer, "world_size": self.dist.world_size,
            "steps": self.step, "batch_size": self.cfg.batch_size, "samples": self.samples_trained,
            "train_seconds": round(self.train_seconds, 4),
            "samples_per_s": round(self.samples_trained / secs, 2),
            "h2d_bytes_per_sample": round(h2d / n, 2),
            "h2d_row_bytes_per_sample": round(self.bytes.h2d.get("rows", 0) / n, 2),
            "d2h_bytes_per_sample": round(self.bytes.total_d2h() / n, 2),
            "bytes": self.bytes.snapshot(),
            "time_s": self.timers.as_dict(),
            "final_train_loss": float(np.mean(self.losses[-10:])) if self.losses else float("nan"),
        }


class HybridTrainer(Trainer):
    """Tables in host memory, looked-up rows copied to the device every step (the baseline).

    As the reference DLRM does it: the host looks up one row per (sample,
    table) and ships ``[B, T, D]`` to the device; the device reduces the
    rows' gradients to the batch's unique rows (with the inverse index it is
    sent), which come back for the host's sparse update.
    """

    mode = "hybrid"
    #: Ship the unique rows ``[U, D]`` plus the inverse index instead of ``[B, T, D]``
    #: (:class:`HybridDedupTrainer`; also the learning steps of :class:`HotlineTrainer`).
    dedup = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.host = self._tables("cpu")

    def _hybrid_step(self, batch) -> float:
        b = len(batch)
        lo, hi = self.dist.shard(b)
        d = self.cfg.embedding_dim
        with self.timers("lookup"):
            gid = self.host.global_rows(batch.sparse)
            uniq, inv = np.unique(gid, return_inverse=True)
            inv = inv.reshape(gid.shape)
            uniq_t = torch.from_numpy(uniq)
            rows = self.host.flat.index_select(0, uniq_t)               # [U, W] with state
            # on CUDA the rows to copy are written straight into a pinned buffer
            if self.dedup:                                              # [U, D]: the unique rows
                stage = self._pinned(uniq.size, d)
                looked = rows[:, :d].contiguous() if stage is None else stage.copy_(rows[:, :d])
            else:                                                       # [Bl, T, D]: the lookups
                sel = torch.from_numpy(inv[lo:hi].reshape(-1))
                stage = self._pinned(sel.numel(), d)
                looked = torch.index_select(rows[:, :d], 0, sel, out=stage) if stage is not None \
                    else torch.index_select(rows[:, :d], 0, sel)
                looked = looked.view(hi - lo, inv.shape[1], d)
        with self.timers("h2d"):
            emb = self._to_device(looked, "rows")
            inv_dev = self._to_device(narrow_index(inv[lo:hi], uniq.size), "inputs").long()
            dense, labels = self._inputs(batch, lo, hi)
        with self.timers("compute"):
            if self.dedup:
                # the device expands the unique rows; index_select's backward is the same
                # index_add_ over the same inverse index as the hybrid step's reduction
                leaf = (emb.clone() if emb.data_ptr() == looked.data_ptr() else emb).requires_grad_(True)
                loss = self._loss_backward(dense, labels, rows_at(leaf, inv_dev), b)
                grad = self._row_grad(leaf)
            else:
                emb.requires_grad_(True)
                loss = self._loss_backward(dense, labels, emb, b)
                grad = torch.zeros((uniq.size, d), dtype=self.dtype, device=self.device)
                grad.index_add_(0, inv_dev.reshape(-1), emb.grad.reshape(-1, d))
            self._reduce_and_step([grad])
        with self.timers("d2h"):
            grad = grad.cpu()
            self.bytes.to_host("grads", grad.numel() * grad.element_size())
        with self.timers("sparse_update"):
            self.sparse_opt.update_(rows, grad)
            self.host.flat.index_copy_(0, uniq_t, rows)
        return self.dist.sum_scalar(loss.item(), self.device) / b

    def train_step(self, batch) -> float:
        return self._hybrid_step(batch)

    def _eval_rows(self, sparse):
        gid = torch.from_numpy(self.host.global_rows(sparse))
        return self.host.flat[:, :self.cfg.embedding_dim][gid].to(self.device, non_blocking=True)

    def _flat_cpu(self):
        return self.host.flat

    def _load_flat(self, flat):
        if flat.shape != self.host.flat.shape:
            raise ValueError(f"checkpoint tables {list(flat.shape)} != {list(self.host.flat.shape)}")
        self.host.flat.copy_(flat)


class HybridDedupTrainer(HybridTrainer):
    """A de-duplicating hybrid: tables in host memory, the batch's unique rows ``[U, D]``
    and the inverse index ``[B, T]`` copied to the device, which expands them.

    What any hybrid can do without an accelerator; the same maths as
    :class:`HybridTrainer` (the parity tests hold it to the same parameters).
    Data parallel: every rank receives the global mini-batch's unique rows.
    """

    mode = "hybrid-dedup"
    dedup = True


class DeviceTrainer(Trainer):
    """Everything on the compute device."""

    mode = "device"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tables = self._tables(self.device)

    def train_step(self, batch) -> float:
        b = len(batch)
        lo, hi = self.dist.shard(b)
        d = self.cfg.embedding_dim
        with self.timers("h2d"):
            gid = self._to_device(narrow_index(self.tables.global_rows(batch.sparse),
                                               self.tables.flat.shape[0]), "inputs").long()
            dense, labels = self._inputs(batch, lo, hi)
        with self.timers("compute"):
            uniq, inv = torch.unique(gid, return_inverse=True)
            rows = self.tables.flat.index_select(0, uniq)
            leaf = rows[:, :d].clone().requires_grad_(True)
            loss = self._loss_backward(dense, labels, rows_at(leaf, inv[lo:hi]), b)
            grad = self._row_grad(leaf)
            self._reduce_and_step([grad])
        with self.timers("sparse_update"):
            self.sparse_opt.update_(rows, grad)
            self.tables.flat.index_copy_(0, uniq, rows)
        return self.dist.sum_scalar(loss.item(), self.device) / b

    def _eval_rows(self, sparse):
        gid = torch.from_numpy(self.tables.global_rows(sparse)).to(self.device)
        return self.tables.flat[:, :self.cfg.embedding_dim][gid]

    def _flat_cpu(self):
        return self.tables.flat.cpu()

    def _load_flat(self, flat):
        if flat.shape != self.tables.flat.shape:
            raise ValueError(f"checkpoint tables {list(flat.shape)} != {list(self.tables.flat.shape)}")
        self.tables.flat.copy_(flat.to(self.device))


class HotlineTrainer(HybridTrainer):
    """The Hotline pipeline (see the module docstring).

    Extra parameters
    ----------------
    hw_cfg : HotlineConfig, optional
        A user hardware config (:func:`hw_config_for` derives one otherwise).
    backend : str
        Accelerator driver backend: ``golden``, ``sim`` or ``fpga``.
    fixed_hw : bool, optional
        Use ``hw_cfg`` (default: the ``ecp5-85f`` profile) exactly as it is
        (:func:`hw_config_for` with ``fixed``); the default for ``sim`` and
        ``fpga``, whose hardware exists.

    Members
    -------
    acc : hotline.host.driver.Accelerator
    hw_cfg : HotlineConfig
        The config the accelerator runs with.
    learn_steps : int
    hot_keys : numpy.ndarray
        The hot set (slot ``i`` holds ``hot_keys[i]``).
    hot_table : Tensor [H, W] on the device
        Hot rows with their optimizer state, by slot.
    """

    mode = "hotline"
    dedup = True     # the learning steps (and overflowing batches) ship unique rows

    def __init__(self, cfg, table_sizes, num_dense, *, total_steps, dist=None, hw_cfg=None,
                 backend: str = "golden", fixed_hw: bool | None = None):
        super().__init__(cfg, table_sizes, num_dense, total_steps=total_steps, dist=dist)
        # hardware that exists (sim, fpga) runs with its own sizes, nothing derived
        fixed = backend != "golden" if fixed_hw is None else bool(fixed_hw)
        self.hw_cfg = hw_config_for(cfg, self.table_sizes, total_steps, hw_cfg, fixed=fixed)
        row_bytes = self.host.width * self.host.flat.element_size()
        host_bytes = (self.host.flat.numel() * self.host.flat.element_size() +
                      self.hw_cfg.reorder.max_batch_keys * row_bytes) if fixed else 0
        self.acc = make_accelerator(backend, self.hw_cfg, host_bytes=host_bytes)
        if hasattr(self.acc, "adopt"):       # the DMA reaches the tables where they live
            self.host.rehome(self.acc.adopt(self.host.flat))
        self.capacity = {}                    # where the hardware's sizes bound the run
        self.learn_steps = learn_steps_for(cfg, total_steps)
        self.hot_phase = False
        self.hot_keys = np.zeros(0, dtype=np.uint64)
        self.hot_table = None
        self._table_ids = np.arange(len(self.table_sizes), dtype=np.uint64)[None, :]
        self._candidates = []
        # the DMA engine's two channels: gathers (reads) and scatters (write-backs) run on their
        # own workers, so a gather could overtake a write-back; _gather_job orders them
        self._gather_q = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hotline-gather")
        self._scatter_q = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hotline-scatter")
        self._pending_scatter = None
        self._hazard_wait = True      # tests switch it off to show the hazard test can fail
        self.popular_samples = 0
        self.hot_lookups = 0          # (sample, table) lookups the hot table served
        self.hot_phase_samples = 0
        self.hot_phase_seconds = 0.0
        self.overflow_batches = 0
        self._bytes_at_hot = None
        cuda = self.device.type == "cuda"
        self._copy_stream = torch.cuda.Stream(self.device) if cuda else None
        if cuda:   # persistent pinned staging buffers: the gather writes "in", the write-back reads "out"
            cap = self.hw_cfg.reorder.max_batch_keys
            self._stage_in = torch.empty((cap, self.host.width), dtype=self.dtype, pin_memory=True)
            self._stage_out = torch.empty((cap, self.host.width), dtype=self.dtype, pin_memory=True)

    # -- keys ------------------------------------------------------------------------------------

    def keys_of(self, batch) -> np.ndarray:
        """Packed keys ``[B, T]`` (uint64) of a batch."""
        return pack_keys(self._table_ids, np.asarray(batch.sparse), self.hw_cfg.keys.row_bits)

    # -- phases ------------------------------------------------------------------------------------

    def train_step(self, batch) -> float:
        if not self.hot_phase and self.step >= self.learn_steps:
            self._enter_hot_phase()
        if not self.hot_phase:
            keys = self.keys_of(batch)
            with self.timers("learn"):
                self.acc.learn(keys)
            if self.cfg.hot_candidates == "learned":
                self._candidates.append(np.unique(keys))
            return self._hybrid_step(batch)
        from .reorder import BatchOverflow
        t0 = time.perf_counter()
        try:
            loss = self._hotline_step(batch)
        except BatchOverflow:
            # the user's hardware config cannot de-dup this batch: train it through the hybrid
            # path, after the pending write-back so it reads current rows
            self.overflow_batches += 1
            self._drain()
            self._write_back_hot()
            loss = self._hybrid_step(batch)
            self._reload_hot()
        self.hot_phase_samples += len(batch)
        self.hot_phase_seconds += time.perf_counter() - t0
        return loss

    def _enter_hot_phase(self) -> None:
        with self.timers("choose_hot_set"):
            cands = None
            if self.cfg.hot_candidates == "learned":
                cands = (np.unique(np.concatenate(self._candidates)) if self._candidates
                         else np.zeros(0, dtype=np.uint64))
            hot = self.acc.choose_hot_set(self.cfg.hot_budget_bytes, self.cfg.row_bytes, cands)
            hot = self._load_hot_map(np.asarray(hot, dtype=np.uint64))
        self._candidates = []
        self.hot_keys = np.asarray(hot, dtype=np.uint64)
        self._reload_hot()
        self.hot_phase = True
        self._bytes_at_hot = self.bytes.snapshot()

    def _load_hot_map(self, hot: np.ndarray) -> np.ndarray:
        """Load the hot map with as much of ``hot`` (hottest first) as it holds; a hot map too
        small for the byte budget's rows is recorded in :attr:`capacity`."""
        from .hotmap import HotMapError
        wanted = hot.size
        cap = self.hw_cfg.reorder.hotmap_capacity
        hot = hot[:cap]
        while True:
            try:
                self.acc.load_hot_map(hot)
                break
            except HotMapError:
                if hot.size == 0:
                    raise
                hot = hot[:hot.size * 15 // 16]      # the cuckoo placement failed: fewer keys
        if hot.size < wanted:
            self.capacity["hot_map"] = {
                "hot_rows_chosen": int(wanted), "hot_rows_loaded": int(hot.size),
                "hot_map_slots": int(cap),
                "note": "the hot map holds fewer rows than the hot budget and the learned "
                        "popularity offer; the rest train as cold rows"}
        return hot

    def _reload_hot(self) -> None:
        """(Re)build the device hot table from the host rows of the hot keys."""
        with self.timers("load_hot"):
            rows = self.acc.gather(self.host, self.hot_keys)
            self.hot_table = self._to_device(rows, "hot_load")   # a fresh tensor on either device

    def _write_back_hot(self) -> None:
        """Copy the hot rows (with their state) back into the host tables."""
        if self.hot_table is None or not self.hot_keys.size:
            return
        rows = self.hot_table.cpu()
        self.bytes.to_host("hot_writeback", rows.numel() * rows.element_size())
        self.acc.scatter(self.host, self.hot_keys, rows)

    def _drain(self) -> None:
        if self._pending_scatter is not None:
            self._pending_scatter.result()
            self._pending_scatter = None

    def settle(self) -> None:
        # the hot table stays on the device: a training run in chunks pays no hot write-back
        # per chunk (every reader of the host tables calls finish() first)
        self._drain()

    def finish(self) -> None:
        self._drain()
        if self.hot_phase:
            self._write_back_hot()

    def close(self) -> None:
        self._drain()
        self._gather_q.shutdown(wait=True)
        self._scatter_q.shutdown(wait=True)
        self.acc.close()

    # -- DMA worker jobs ----------------------------------------------------------------------------

    def _gather_job(self, cold_keys: np.ndarray, prev_scatter):
        # RAW hazard: batch i's updated cold rows must be back in host memory before
        # batch i+1 reads any of them.
        if prev_scatter is not None and self._hazard_wait:
            prev_scatter.result()
        with self.timers("gather", lane="dma"):
            stage = self._stage_in if self._copy_stream is not None else None
            rows = self.acc.gather(self.host, cold_keys, out=stage)
        if self._copy_stream is None:
            return rows
        with self.timers("h2d_rows", lane="dma"):
            with torch.cuda.stream(self._copy_stream):
                dev = rows.to(self.device, non_blocking=True)
                done = torch.cuda.Event()
                done.record(self._copy_stream)
            done.synchronize()   # the pinned staging buffer is free again after this
        return dev

    def _scatter_job(self, cold_keys: np.ndarray, rows: torch.Tensor, ready) -> None:
        if ready is not None:
            ready.synchronize()
        with self.timers("scatter", lane="dma"):
            self.acc.scatter(self.host, cold_keys, rows)

    # -- one pipelined mini-batch --------------------------------------------------------------------

    def _hotline_step(self, batch) -> float:
        b = len(batch)
        lo, hi = self.dist.shard(b)
        d = self.cfg.embedding_dim
        keys = self.keys_of(batch)
        with self.timers("classify"):
            cb = self.acc.classify(keys)
        cold = cb.cold_keys
        gather = self._gather_q.submit(self._gather_job, cold, self._pending_scatter)
        with self.timers("prepare"):
            hot = np.asarray(cb.hot, dtype=bool)
            index = np.asarray(cb.index, dtype=np.int64)
            slots, inv_h = np.unique(index[hot], return_inverse=True)
            nh = slots.size
            combined = index + nh                     # cold key u -> row nh + u of [H_u; C_u]
            combined[hot] = inv_h                     # hot key -> its row among the unique hot rows
            popular = np.asarray(cb.popular, dtype=np.int64)
            non_popular = np.asarray(cb.non_popular, dtype=np.int64)
            pop = popular[(popular >= lo) & (popular < hi)] - lo
            npop = non_popular[(non_popular >= lo) & (non_popular < hi)] - lo
            comb = self._to_device(narrow_index(combined[lo:hi], nh + cold.size), "inputs").long()
            slots_dev = self._to_device(narrow_index(slots, max(1, self.hot_keys.size)), "inputs").long()
            pop_dev = self._to_device(narrow_index(pop, b), "inputs").long()
            npop_dev = self._to_device(narrow_index(npop, b), "inputs").long()
            dense, labels = self._inputs(batch, lo, hi)
            hot_rows = self.hot_table.index_select(0, slots_dev)        # [nh, W]
            h_leaf = hot_rows[:, :d].clone().requires_grad_(True)
        loss = torch.zeros((), dtype=self.dtype, device=self.device)
        with self.timers("popular"):
            if pop.size:
                loss = loss + self._loss_backward(dense[pop_dev], labels[pop_dev],
                                                  rows_at(h_leaf, comb[pop_dev]), b)
        with self.timers("wait_gather"):
            cold_rows = gather.result()                                    # [U, W] on the device
            if self._copy_stream is not None:
                cold_rows.record_stream(torch.cuda.current_stream(self.device))
        self.bytes.to_device("rows", cold_rows.numel() * cold_rows.element_size())
        with self.timers("non_popular"):
            c_leaf = cold_rows[:, :d].clone().requires_grad_(True)
            if npop.size:
                both = torch.cat([h_leaf, c_leaf])
                loss = loss + self._loss_backward(dense[npop_dev], labels[npop_dev],
                                                  rows_at(both, comb[npop_dev]), b)
        with self.timers("optimizer"):
            gh, gc = self._row_grad(h_leaf), self._row_grad(c_leaf)
            self._reduce_and_step([gh, gc])
            self.sparse_opt.update_(hot_rows, gh)
            self.hot_table.index_copy_(0, slots_dev, hot_rows)
            self.sparse_opt.update_(cold_rows, gc)
        with self.timers("writeback"):
            ready = None
            if self._copy_stream is not None:
                out = self._stage_out[:cold.size]
                out.copy_(cold_rows, non_blocking=True)
                ready = torch.cuda.Event()
                ready.record(torch.cuda.current_stream(self.device))
            else:
                out = cold_rows
            self.bytes.to_host("rows", out.numel() * out.element_size())
            self._pending_scatter = self._scatter_q.submit(self._scatter_job, cold, out, ready)
        self.popular_samples += int(popular.size)
        self.hot_lookups += int(hot.sum())
        return self.dist.sum_scalar(loss.item(), self.device) / b

    # -- state ---------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        state = super().state_dict()        # finish(): hot rows are written back first
        cands = (np.unique(np.concatenate(self._candidates)) if self._candidates
                 else np.zeros(0, dtype=np.uint64))
        state.update({"hw_cfg": self.hw_cfg.to_dict(), "accelerator": self.acc.state_dict(),
                      "hot_phase": self.hot_phase, "hot_keys": self.hot_keys.copy(),
                      "candidates": cands, "popular_samples": self.popular_samples,
                      "hot_lookups": self.hot_lookups,
                      "hot_phase_samples": self.hot_phase_samples,
                      "hot_phase_seconds": self.hot_phase_seconds,
                      "overflow_batches": self.overflow_batches,
                      "bytes_at_hot": self._bytes_at_hot})
        return state

    def load_state_dict(self, state: dict) -> None:
        if HotlineConfig.from_dict(state["hw_cfg"]) != self.hw_cfg:
            raise ValueError("checkpoint was written with a different hardware config")
        self._drain()
        super().load_state_dict(state)
        self.acc.load_state_dict(state["accelerator"])
        self.hot_phase = bool(state["hot_phase"])
        self.hot_keys = np.asarray(state["hot_keys"], dtype=np.uint64)
        cands = np.asarray(state["candidates"], dtype=np.uint64)
        self._candidates = [cands] if cands.size else []
        self.popular_samples = int(state["popular_samples"])
        self.hot_lookups = int(state.get("hot_lookups", 0))
        self.hot_phase_samples = int(state["hot_phase_samples"])
        self.hot_phase_seconds = float(state["hot_phase_seconds"])
        self.overflow_batches = int(state["overflow_batches"])
        self._bytes_at_hot = state["bytes_at_hot"]
        self.hot_table = None
        if self.hot_phase:
            self._reload_hot()

    # -- report ----------------------------------------------------------------------------------------

    def summary(self) -> dict:
        s = super().summary()
        n = max(1, self.hot_phase_samples)
        s.update({
            "backend": self.acc.backend, "learn_steps": min(self.learn_steps, self.step),
            "hot_rows": int(self.hot_keys.size),
            "hot_bytes": int(self.hot_keys.size) * self.cfg.row_bytes,
            "hot_budget_bytes": self.cfg.hot_budget_bytes,
            "hot_phase_samples": self.hot_phase_samples,
            "popular_fraction": round(self.popular_samples / n, 4) if self.hot_phase_samples else None,
            "hot_lookup_fraction": (round(self.hot_lookups / (n * len(self.table_sizes)), 4)
                                    if self.hot_phase_samples else None),
            "overflow_batches": self.overflow_batches, "capacity": dict(self.capacity),
            "accelerator_busy_s": {k: round(v, 6) for k, v in self.acc.busy.items()},
            "accelerator_cpu_s": {k: round(v, 6) for k, v in self.acc.cpu.items()},
            # CPU time of the accelerator model's calls over the run's wall time
            "accelerator_share": round(sum(self.acc.cpu.values()) / max(self.train_seconds, 1e-12), 4),
        })
        if self.hot_phase_samples and self._bytes_at_hot is not None:
            def delta(direction, exclude=()):
                now, then = getattr(self.bytes, direction), self._bytes_at_hot[direction]
                return sum(v - then.get(k, 0) for k, v in now.items() if k not in exclude)
            s["hot_phase_samples_per_s"] = round(self.hot_phase_samples / max(self.hot_phase_seconds, 1e-12), 2)
            s["hot_phase_h2d_bytes_per_sample"] = round(delta("h2d", ("hot_load",)) / n, 2)
            s["hot_phase_h2d_row_bytes_per_sample"] = round(
                (self.bytes.h2d.get("rows", 0) - self._bytes_at_hot["h2d"].get("rows", 0)) / n, 2)
            s["hot_phase_d2h_bytes_per_sample"] = round(delta("d2h", ("hot_writeback",)) / n, 2)
        return s


TRAINERS = {"hybrid": HybridTrainer, "hybrid-dedup": HybridDedupTrainer, "device": DeviceTrainer,
            "hotline": HotlineTrainer}


def make_trainer(mode: str, cfg: TrainConfig, table_sizes, num_dense: int, *, total_steps: int,
                 dist: DistContext | None = None, hw_cfg: HotlineConfig | None = None,
                 backend: str = "golden", fixed_hw: bool | None = None) -> Trainer:
    """The trainer of one mode (``hybrid``, ``hybrid-dedup``, ``device`` or ``hotline``)."""
    if mode not in TRAINERS:
        raise ValueError(f"mode must be one of {', '.join(TRAINERS)}, not {mode!r}")
    if mode == "hotline":
        return HotlineTrainer(cfg, table_sizes, num_dense, total_steps=total_steps, dist=dist,
                              hw_cfg=hw_cfg, backend=backend, fixed_hw=fixed_hw)
    return TRAINERS[mode](cfg, table_sizes, num_dense, total_steps=total_steps, dist=dist)
