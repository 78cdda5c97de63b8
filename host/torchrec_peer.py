"""A peer that users actually pick: TorchRec's DLRM on the same data, seed and sizes.

:class:`TorchRecPeer` trains ``torchrec.models.dlrm.DLRM`` (an
``EmbeddingBagCollection`` of one table per categorical feature, fed
``KeyedJaggedTensor`` batches of one index per sample and feature) the way
TorchRec users train it: wrapped in ``DistributedModelParallel`` (a
one-process group when none is running), every table sharded
``table_wise`` onto the compute kernel ``fused`` (FBGEMM's table-batched
embedding: lookup, backward and the sparse optimizer step in one operator,
``EXACT_SGD`` or ``EXACT_ROWWISE_ADAGRAD``), and the dense parameters under
the matching ``torch.optim`` optimizer.  Everything lives on the compute
device, so the peer is TorchRec's counterpart of the ``device`` mode.

It starts from this project's parameters (:func:`hotline.host.model.build_model`
and :func:`hotline.host.model.init_table_` from ``cfg.seed``): the MLP weights
are copied in (the top MLP's first layer permuted, since TorchRec orders the
feature pairs as the upper triangle and DLRM as the lower one) and so are the
tables, so with the same learning rate its losses follow the other modes'
to float32 rounding.  Only ``float32`` (FBGEMM's training kernels).

TorchRec, FBGEMM and their dependencies are an optional extra:
``pip install -e '.[torchrec]' && pip install --no-deps torchrec==1.9.2``
(see ``pyproject.toml``); importing this module works without them and
:func:`available` says whether they load.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from .embedding import resolve_device
from .metrics import ByteCounter, Timers, log_loss, roc_auc
from .model import build_model, init_table_
from .train_config import TrainConfig

__all__ = ["TorchRecPeer", "available", "why_unavailable"]

_IMPORT_ERROR = None


def _import():
    global _IMPORT_ERROR
    try:
        import fbgemm_gpu  # noqa: F401
        import torchrec  # noqa: F401
    except Exception as e:   # ImportError, or a library that does not load against this torch
        _IMPORT_ERROR = f"{type(e).__name__}: {e}".splitlines()[0]
        return False
    return True


def available() -> bool:
    """Whether TorchRec and FBGEMM import here."""
    return _import()


def why_unavailable() -> str | None:
    """The one-line import error when :func:`available` is False."""
    return None if _import() else _IMPORT_ERROR


def _pair_order(features: int) -> torch.Tensor:
    """For each of TorchRec's pair columns (upper triangle, row-major), the column of the
    same pair in DLRM's order (lower triangle, row-major)."""
    li, lj = torch.tril_indices(features, features, offset=-1)
    ours = {(int(i), int(j)): c for c, (i, j) in enumerate(zip(li, lj))}
    ui, uj = torch.triu_indices(features, features, offset=1)
    return torch.tensor([ours[(int(j), int(i))] for i, j in zip(ui, uj)], dtype=torch.long)


class TorchRecPeer:
    """TorchRec's DLRM trained side by side with the other modes.

    Parameters
    ----------
    cfg : TrainConfig
        ``dtype`` must be float32; ``interaction_itself`` must be off (TorchRec's
        ``InteractionArch`` has no diagonal).
    table_sizes : sequence of int
    num_dense : int
    total_steps : int
        Kept for symmetry with the trainers.

    Members
    -------
    model : DistributedModelParallel
    losses : list of float
    step, samples_trained : int
    train_seconds : float
    """

    mode = "torchrec"

    def __init__(self, cfg: TrainConfig, table_sizes, num_dense: int, *, total_steps: int):
        if not _import():
            raise RuntimeError(f"the torchrec peer needs torchrec and fbgemm-gpu ({_IMPORT_ERROR}); "
                               f"install the extra: pip install -e '.[torchrec]' && pip install --no-deps torchrec==1.9.2")
        if cfg.dtype != "float32":
            raise ValueError(f"the torchrec peer trains in float32 only, not {cfg.dtype}")
        if len(cfg.top_mlp) < 2:
            raise ValueError("the torchrec peer needs a top MLP of at least 2 layers (TorchRec's OverArch)")
        if cfg.interaction_itself:
            raise ValueError("the torchrec peer has no interaction_itself (TorchRec's InteractionArch)")
        import torch.distributed as dist
        from fbgemm_gpu.split_embedding_configs import EmbOptimType
        from torchrec import EmbeddingBagCollection, EmbeddingBagConfig
        from torchrec.distributed import DistributedModelParallel
        from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
        from torchrec.distributed.planner import EmbeddingShardingPlanner, ParameterConstraints, Topology
        from torchrec.distributed.types import ShardingEnv
        from torchrec.models.dlrm import DLRM as TorchRecDLRM
        from torchrec.optim.keyed import KeyedOptimizerWrapper
        from torchrec.optim.optimizers import in_backward_optimizer_filter

        self.cfg = cfg
        self.table_sizes = tuple(int(n) for n in table_sizes)
        self.num_dense = int(num_dense)
        self.total_steps = int(total_steps)
        self.device = resolve_device(cfg.device)
        if not dist.is_initialized():
            # one process: an in-memory store, no port
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo",
                                    store=dist.HashStore(), rank=0, world_size=1)
        t = len(self.table_sizes)
        self.keys = [f"f{i}" for i in range(t)]
        tables = [EmbeddingBagConfig(name=f"t{i}", embedding_dim=cfg.embedding_dim, num_embeddings=n,
                                     feature_names=[self.keys[i]])
                  for i, n in enumerate(self.table_sizes)]
        ebc = EmbeddingBagCollection(tables=tables, device=torch.device("meta"))
        model = TorchRecDLRM(embedding_bag_collection=ebc, dense_in_features=self.num_dense,
                             dense_arch_layer_sizes=list(cfg.bottom_mlp),
                             over_arch_layer_sizes=list(cfg.top_mlp), dense_device=self.device)
        if cfg.optimizer == "sgd":
            fused = {"optimizer": EmbOptimType.EXACT_SGD, "learning_rate": cfg.lr}
        else:
            fused = {"optimizer": EmbOptimType.EXACT_ROWWISE_ADAGRAD, "learning_rate": cfg.lr,
                     "eps": cfg.adagrad_eps}
        sharder = EmbeddingBagCollectionSharder(fused_params=fused)
        constraints = {f"t{i}": ParameterConstraints(sharding_types=["table_wise"], compute_kernels=["fused"])
                       for i in range(t)}
        env = ShardingEnv.from_process_group(dist.group.WORLD)
        planner = EmbeddingShardingPlanner(
            topology=Topology(world_size=1, local_world_size=1, compute_device=self.device.type),
            batch_size=cfg.batch_size, constraints=constraints, debug=False)
        plan = planner.collective_plan(model, [sharder], dist.group.WORLD)
        self.model = DistributedModelParallel(model, env=env, device=self.device, sharders=[sharder],
                                              plan=plan)
        self._load_our_init()
        dense_params = dict(in_backward_optimizer_filter(self.model.named_parameters()))
        if cfg.optimizer == "sgd":
            make = lambda p: torch.optim.SGD(p, lr=cfg.lr)  # noqa: E731
        else:
            make = lambda p: torch.optim.Adagrad(p, lr=cfg.lr, eps=cfg.adagrad_eps,  # noqa: E731
                                                 initial_accumulator_value=cfg.adagrad_init)
        self.dense_opt = KeyedOptimizerWrapper(dense_params, make)
        self.bytes = ByteCounter()
        self.timers = Timers(sync=(lambda: torch.cuda.current_stream(self.device).synchronize())
                             if self.device.type == "cuda" else None)
        self.step = 0
        self.losses = []
        self.samples_trained = 0
        self.train_seconds = 0.0

    # -- parameters ---------------------------------------------------------------------------

    def _state(self) -> dict:
        """``state_dict()`` with each table's local shard (one rank holds whole tables)."""
        out = {}
        for k, v in self.model.state_dict().items():
            out[k] = v.local_shards()[0].tensor if hasattr(v, "local_shards") else v
        return out

    @torch.no_grad()
    def _load_our_init(self) -> None:
        """This project's initial MLP weights and tables, into TorchRec's modules."""
        ours = build_model(self.num_dense, len(self.table_sizes), self.cfg).state_dict()
        state = self._state()
        # bottom MLP: Linear k of ours is bottom.{2k}; TorchRec: dense_arch.model._mlp.{k}._linear
        nb = len(self.cfg.bottom_mlp)
        mapping = {}
        for k in range(nb):
            for w in ("weight", "bias"):
                mapping[f"dense_arch.model._mlp.{k}._linear.{w}"] = f"bottom.{2 * k}.{w}"
        ntop = len(self.cfg.top_mlp)
        for k in range(ntop - 1):
            for w in ("weight", "bias"):
                mapping[f"over_arch.model.0._mlp.{k}._linear.{w}"] = f"top.{2 * k}.{w}"
        for w in ("weight", "bias"):
            mapping[f"over_arch.model.1.{w}"] = f"top.{2 * (ntop - 1)}.{w}"
        first_top = ("over_arch.model.0._mlp.0._linear.weight" if ntop > 1 else "over_arch.model.1.weight")
        d = self.cfg.embedding_dim
        perm = _pair_order(len(self.table_sizes) + 1)
        for theirs, mine in mapping.items():
            if theirs not in state:
                raise RuntimeError(f"TorchRec's DLRM has no parameter {theirs!r} (its layout changed?)")
            src = ours[mine]
            if theirs == first_top:     # pair columns: DLRM's lower-triangle order -> TorchRec's upper
                src = torch.cat([src[:, :d], src[:, d:][:, perm]], dim=1)
            if state[theirs].shape != src.shape:
                raise RuntimeError(f"{theirs}: TorchRec {list(state[theirs].shape)} != ours {list(src.shape)}")
            state[theirs].copy_(src)
        for i in range(len(self.table_sizes)):
            w = state[f"sparse_arch.embedding_bag_collection.embedding_bags.t{i}.weight"]
            init_table_(w, i, self.cfg.seed)      # in place: the fused kernel's weights

    def tables(self) -> list:
        """Each table's rows ``[n_t, D]`` (views of the fused kernel's storage)."""
        state = self._state()
        return [state[f"sparse_arch.embedding_bag_collection.embedding_bags.t{i}.weight"]
                for i in range(len(self.table_sizes))]

    # -- batches ----------------------------------------------------------------------------------

    def _kjt(self, sparse: np.ndarray, count: bool = True):
        from torchrec import KeyedJaggedTensor
        sparse = np.asarray(sparse)
        b, t = sparse.shape
        values = torch.from_numpy(np.ascontiguousarray(sparse.T.reshape(-1)).astype(np.int64))
        lengths = torch.ones(b * t, dtype=torch.int32)
        if count:
            self.bytes.to_device("inputs", values.numel() * 8 + lengths.numel() * 4)
        return KeyedJaggedTensor.from_lengths_sync(keys=self.keys, values=values,
                                                   lengths=lengths).to(self.device, non_blocking=True)

    def _dense(self, array, count: bool = True) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(array)).to(torch.float32)
        if count:
            self.bytes.to_device("inputs", t.numel() * 4)
        return t.to(self.device, non_blocking=True)

    # -- training ---------------------------------------------------------------------------------

    def train_step(self, batch) -> float:
        with self.timers("h2d"):
            kjt = self._kjt(batch.sparse)
            dense = self._dense(batch.dense)
            labels = self._dense(batch.labels)
        with self.timers("compute"):
            logits = self.model(dense, kjt).squeeze(-1)
            loss = F.binary_cross_entropy_with_logits(logits, labels)
            loss.backward()          # the fused kernels update the tables here
        with self.timers("optimizer"):
            self.dense_opt.step()
            self.dense_opt.zero_grad()
        return float(loss.item())

    def train(self, dataset, steps: int, progress=None) -> None:
        """Train ``steps`` mini-batches from :attr:`step` on, wrapping over epochs (as the trainers)."""
        b = self.cfg.batch_size
        per_epoch = len(dataset) // b
        if per_epoch == 0:
            raise ValueError(f"the training data has {len(dataset)} samples, fewer than one batch of {b}")
        self.model.train()
        t_start = time.perf_counter()
        for _ in range(steps):
            start = (self.step % per_epoch) * b
            with self.timers("data"):
                batch = dataset.batch(start, b)
            loss = self.train_step(batch)
            self.losses.append(loss)
            self.step += 1
            self.samples_trained += b
            if progress is not None:
                progress(self, loss)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.train_seconds += time.perf_counter() - t_start

    @torch.no_grad()
    def predict(self, dataset):
        """``(labels, probabilities)`` of every sample of ``dataset``."""
        self.model.eval()
        labels, probs = [], []
        n = len(dataset)
        for start in range(0, n, self.cfg.eval_batch_size):
            batch = dataset.batch(start, min(self.cfg.eval_batch_size, n - start))
            logits = self.model(self._dense(batch.dense, False), self._kjt(batch.sparse, False))
            probs.append(torch.sigmoid(logits.squeeze(-1)).double().cpu().numpy())
            labels.append(np.asarray(batch.labels))
        self.model.train()
        if not probs:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(labels), np.concatenate(probs)

    def evaluate(self, dataset) -> dict:
        labels, probs = self.predict(dataset)
        return {"test_samples": int(labels.size), "test_log_loss": log_loss(labels, probs),
                "test_auc": roc_auc(labels, probs)}

    def close(self) -> None:
        pass

    def summary(self) -> dict:
        import fbgemm_gpu
        import torchrec
        n = max(1, self.samples_trained)
        secs = max(self.train_seconds, 1e-12)
        return {
            "mode": self.mode, "device": str(self.device), "dtype": self.cfg.dtype,
            "optimizer": self.cfg.optimizer, "world_size": 1, "steps": self.step,
            "batch_size": self.cfg.batch_size, "samples": self.samples_trained,
            "train_seconds": round(self.train_seconds, 4),
            "samples_per_s": round(self.samples_trained / secs, 2),
            "h2d_bytes_per_sample": round(self.bytes.total_h2d() / n, 2),
            "h2d_row_bytes_per_sample": 0.0,
            "d2h_bytes_per_sample": round(self.bytes.total_d2h() / n, 2),
            "time_s": self.timers.as_dict(),
            "final_train_loss": float(np.mean(self.losses[-10:])) if self.losses else float("nan"),
            "torchrec": getattr(torchrec, "__version__", "?"),
            "fbgemm_gpu": getattr(fbgemm_gpu, "__version__", "?"),
            "sharding": "table_wise, compute kernel fused (FBGEMM TBE), tables on " + self.device.type,
        }
