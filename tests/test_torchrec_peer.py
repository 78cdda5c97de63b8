"""The TorchRec peer trains TorchRec's DLRM with the same maths as the hybrid baseline.

It starts from the same parameters (our MLP weights copied in, the top MLP's pair
columns permuted into TorchRec's order, our tables loaded into FBGEMM's fused kernel),
so with SGD or row-wise Adagrad its per-step losses and its tables follow ``hybrid``'s
to float32 rounding.  Skipped where TorchRec is not installed (an optional extra:
``pip install -e '.[torchrec]' && pip install --no-deps torchrec==1.9.2``).
"""

import os

import numpy as np
import pytest
import torch

from hotline.host import torchrec_peer
from hotline.host.data import synthetic_criteo
from hotline.host.train_config import TrainConfig
from hotline.host.trainer import make_trainer

SEED = int(os.environ.get("HOTLINE_SEED", "1234"))

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(not torchrec_peer.available(),
                       reason=f"torchrec is not installed ({torchrec_peer.why_unavailable()}); "
                              f"pip install -e '.[torchrec]' && pip install --no-deps torchrec==1.9.2"),
]


def tiny(**kw) -> TrainConfig:
    base = dict(embedding_dim=4, bottom_mlp=(8, 4), top_mlp=(8, 1), batch_size=64, lr=0.05,
                device="cpu", steps=25, seed=SEED % 1000, eval_batch_size=512, timeline_steps=0)
    base.update(kw)
    return TrainConfig(**base)


def test_pair_order_maps_torchrec_columns_to_dlrm_columns():
    f = 5
    perm = torchrec_peer._pair_order(f)
    li, lj = torch.tril_indices(f, f, offset=-1)
    ui, uj = torch.triu_indices(f, f, offset=1)
    assert sorted(perm.tolist()) == list(range(f * (f - 1) // 2))
    for k in range(perm.numel()):
        assert {int(ui[k]), int(uj[k])} == {int(li[perm[k]]), int(lj[perm[k]])}


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad"])
def test_torchrec_peer_follows_hybrid(optimizer):
    print(f"seed {SEED}")
    ds = synthetic_criteo(2000, seed=SEED, table_sizes=(50, 300, 7, 1000))
    cfg = tiny(optimizer=optimizer)
    peer = torchrec_peer.TorchRecPeer(cfg, ds.table_sizes, ds.num_dense, total_steps=cfg.steps)
    hyb = make_trainer("hybrid", cfg, ds.table_sizes, ds.num_dense, total_steps=cfg.steps)
    flat = hyb.host.flat[:, :cfg.embedding_dim]
    start = torch.cat([t.clone() for t in peer.tables()])
    assert torch.equal(start, flat), "the peer does not start from our tables"
    peer.train(ds, cfg.steps)
    hyb.train(ds, cfg.steps)
    losses = np.abs(np.array(peer.losses) - np.array(hyb.losses))
    assert losses.max() < 1e-5, f"per-step losses differ by up to {losses.max():.3e} (seed {SEED})"
    moved = (torch.cat(peer.tables()) - start).abs().max().item()
    assert moved > 1e-3, "training did not move the tables (a vacuous comparison)"
    diff = (torch.cat(peer.tables()) - hyb.host.flat[:, :cfg.embedding_dim]).abs().max().item()
    assert diff < 1e-5, f"tables differ by {diff:.3e} after {cfg.steps} steps (seed {SEED})"
    a, b = peer.evaluate(ds), hyb.evaluate(ds)
    assert abs(a["test_log_loss"] - b["test_log_loss"]) < 1e-5
    s = peer.summary()
    assert s["mode"] == "torchrec" and s["steps"] == cfg.steps and s["samples_per_s"] > 0
    assert s["h2d_row_bytes_per_sample"] == 0.0


def test_torchrec_peer_rejects_what_it_cannot_train():
    with pytest.raises(ValueError, match="float32 only"):
        torchrec_peer.TorchRecPeer(tiny(dtype="float64"), (5, 6), 3, total_steps=1)
    with pytest.raises(ValueError, match="interaction_itself"):
        torchrec_peer.TorchRecPeer(tiny(interaction_itself=True), (5, 6), 3, total_steps=1)
