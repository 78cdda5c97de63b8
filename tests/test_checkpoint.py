"""Training 2N steps equals training N, checkpointing, resuming in a fresh trainer, training N."""

import os

import numpy as np
import pytest
import torch

from hotline.host.checkpoint import load_checkpoint, resume, save_checkpoint
from hotline.host.data import synthetic_criteo
from hotline.host.train_config import TrainConfig
from hotline.host.trainer import make_trainer

SEED = int(os.environ.get("HOTLINE_SEED", "5"))
SIZES = (4, 9, 40, 300, 2000, 3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    return synthetic_criteo(2000, seed=SEED, table_sizes=SIZES, num_dense=4)


def cfg_for(optimizer, steps):
    return TrainConfig(embedding_dim=4, bottom_mlp=(8, 4), top_mlp=(8, 1), batch_size=64,
                       lr=0.1, dtype="float64", device="cpu", steps=steps, learn_fraction=0.25,
                       hot_budget_bytes=150 * 8 * (4 + (optimizer == "adagrad")),
                       optimizer=optimizer, seed=SEED, timeline_steps=0)


def make(mode, cfg, ds):
    return make_trainer(mode, cfg, ds.table_sizes, ds.num_dense, total_steps=cfg.steps)


def close(tr):
    if hasattr(tr, "close"):
        tr.close()


@pytest.mark.parametrize("mode,optimizer,first", [
    ("hotline", "sgd", 6),        # resume in the hot phase (learning took steps 0-2)
    ("hotline", "adagrad", 2),    # resume in the middle of learning: popularity state travels
    ("hotline", "adagrad", 3),    # resume exactly at the switch to the hot phase
    ("hybrid", "adagrad", 5),
    ("device", "sgd", 5),
], ids=["hotline-sgd-hot", "hotline-adagrad-learning", "hotline-adagrad-switch",
        "hybrid-adagrad", "device-sgd"])
def test_resume_equals_uninterrupted(tmp_path, data, mode, optimizer, first):
    print(f"seed {SEED}")
    total = 12
    cfg = cfg_for(optimizer, total)
    whole = make(mode, cfg, data)
    whole.train(data, total)
    want = whole.parameters_cpu()

    part = make(mode, cfg, data)
    part.train(data, first)
    path = save_checkpoint(part, tmp_path / "ck.pt")
    close(part)
    again = make(mode, cfg, data)
    resume(again, path)
    assert again.step == first
    again.train(data, total - first)
    got = again.parameters_cpu()
    for k in want:
        if not torch.equal(got[k], want[k]):
            d = (got[k] - want[k]).abs().reshape(-1)
            i = int(d.argmax())
            pytest.fail(f"{mode}: {k}[{i}] differs by {d[i].item():.3e} after resuming at step "
                        f"{first} (seed {SEED})")
    assert again.losses == whole.losses
    if mode == "hotline":
        assert np.array_equal(again.hot_keys, whole.hot_keys) and whole.hot_keys.size > 0
        assert again.summary()["popular_fraction"] == whole.summary()["popular_fraction"]
    close(whole)
    close(again)


def test_checkpoint_holds_hot_map_and_written_back_rows(tmp_path, data):
    cfg = cfg_for("sgd", 12)
    tr = make("hotline", cfg, data)
    tr.train(data, 6)
    state = load_checkpoint(save_checkpoint(tr, tmp_path / "ck.pt"))
    assert state["hot_phase"] and np.array_equal(state["hot_keys"], tr.hot_keys)
    assert np.array_equal(state["accelerator"]["hot_keys"], tr.hot_keys)
    # the hot rows in the saved tables are the device hot table's current values
    rows = tr.acc.gather([t.clone() for t in tr.host.views()], tr.hot_keys)
    assert torch.equal(rows, tr.hot_table.cpu())
    flat = state["tables"]
    views = [flat[o:o + n] for o, n in zip(tr.host.offsets.tolist(), tr.host.table_sizes)]
    assert torch.equal(tr.acc.gather(views, tr.hot_keys), tr.hot_table.cpu())
    tr.close()


def test_checkpoint_errors(tmp_path, data):
    cfg = cfg_for("sgd", 12)
    tr = make("hybrid", cfg, data)
    tr.train(data, 2)
    path = save_checkpoint(tr, tmp_path / "ck.pt")
    with pytest.raises(ValueError, match="different train config"):
        resume(make("hybrid", cfg.replace(lr=0.2), data), path)
    with pytest.raises(ValueError, match="mode 'hybrid'"):
        other = make("device", cfg, data)
        resume(other, path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="cannot be read"):
        load_checkpoint(bad)


def test_float32_multithreaded_runs_repeat_exactly():
    """Resuming exactly needs a repeatable step: no thread-order-dependent sums (float32, 2 threads)."""
    ds = synthetic_criteo(4096, seed=SEED, table_sizes=(4, 9, 40, 300, 2000, 3), num_dense=4)
    cfg = cfg_for("sgd", 6).replace(dtype="float32", batch_size=512, embedding_dim=16,
                                    bottom_mlp=(16,), top_mlp=(8, 1), learn_fraction=0.3)
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = []
        for _ in range(3):
            tr = make("hotline", cfg, ds)
            tr.train(ds, cfg.steps)
            runs.append(tr.parameters_cpu())
            tr.close()
    finally:
        torch.set_num_threads(n)
    for other in runs[1:]:
        for k in runs[0]:
            assert torch.equal(runs[0][k], other[k]), f"{k} differs between identical runs"
