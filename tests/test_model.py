"""DLRM model, optimizers, metrics and the train config, against independent references."""

import itertools
import math
import os

import numpy as np
import pytest
import torch

from hotline.config import ConfigError
from hotline.host.metrics import ByteCounter, Timers, log_loss, roc_auc
from hotline.host.model import DLRM, dot_interaction, init_embedding_
from hotline.host.optim import DenseAdagrad, DenseSGD, RowWiseAdagrad, SparseSGD, make_optimizers
from hotline.host.train_config import TrainConfig, parse_bytes

SEED = int(os.environ.get("HOTLINE_SEED", "2024"))


@pytest.fixture
def rng():
    print(f"seed {SEED}")
    return np.random.default_rng(SEED)


# -- model -----------------------------------------------------------------------------------


@pytest.mark.parametrize("itself", [False, True], ids=["pairs", "with-self"])
def test_dot_interaction_matches_loops(rng, itself):
    b, t, d = 3, 4, 5
    x = torch.from_numpy(rng.standard_normal((b, d)))
    emb = torch.from_numpy(rng.standard_normal((b, t, d)))
    out = dot_interaction(x, emb, itself)
    feats = [x] + [emb[:, i] for i in range(t)]
    expect = [x]
    for i in range(t + 1):                       # DLRM: lower triangle, row by row
        for j in range(i + 1 if itself else i):
            expect.append((feats[i] * feats[j]).sum(1, keepdim=True))
    expect = torch.cat(expect, 1)
    assert out.shape == expect.shape
    torch.testing.assert_close(out, expect, rtol=0, atol=1e-12)


def test_dlrm_shapes_and_reference_sizes():
    cfg = TrainConfig()
    assert cfg.interaction_size(26) == 16 + 27 * 26 // 2 == 367      # DLRM's Criteo top input
    m = DLRM(13, 26, cfg)
    widths = [(l.in_features, l.out_features) for l in m.modules() if isinstance(l, torch.nn.Linear)]
    assert widths == [(13, 512), (512, 256), (256, 64), (64, 16), (367, 512), (512, 256), (256, 1)]
    out = m(torch.zeros(5, 13), torch.zeros(5, 26, 16))
    assert out.shape == (5,)
    # bottom MLP ends in a ReLU, the top MLP ends in the bare logit
    assert isinstance(list(m.bottom)[-1], torch.nn.ReLU)
    assert isinstance(list(m.top)[-1], torch.nn.Linear)


def test_dlrm_init_is_seeded():
    cfg = TrainConfig(embedding_dim=4, bottom_mlp=(8, 4), top_mlp=(4, 1), seed=3)
    a, b = DLRM(3, 2, cfg).state_dict(), DLRM(3, 2, cfg).state_dict()
    c = DLRM(3, 2, cfg.replace(seed=4)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    # DLRM init: weight std sqrt(2/(fan_in+fan_out)); check the big layer statistically
    big = DLRM(13, 26, TrainConfig(seed=1)).top[0].weight
    assert abs(big.std().item() - math.sqrt(2 / (367 + 512))) < 0.003


def test_dlrm_zero_dense_features():
    cfg = TrainConfig(embedding_dim=4, bottom_mlp=(4,), top_mlp=(1,))
    m = DLRM(0, 2, cfg)
    assert m(torch.zeros(3, 0), torch.randn(3, 2, 4)).shape == (3,)


def test_init_embedding_ranges_and_layout_independence():
    sizes = (3, 50, 7)
    a = torch.empty(60, 4, dtype=torch.float64)
    init_embedding_(a, sizes, 4, seed=9)
    b = torch.empty(60, 5, dtype=torch.float64)        # with a state column
    init_embedding_(b, sizes, 4, seed=9, state_init=0.25)
    assert torch.equal(a, b[:, :4])
    assert torch.all(b[:, 4] == 0.25)
    off = 0
    for n in sizes:
        block = a[off:off + n]
        assert block.abs().max() <= math.sqrt(1 / n)
        off += n
    with pytest.raises(ValueError, match="rows"):
        init_embedding_(torch.empty(59, 4), sizes, 4, seed=9)


# -- optimizers --------------------------------------------------------------------------------


def test_dense_sgd_and_adagrad_match_torch(rng):
    for ours, ref in ((lambda p: DenseSGD(p, 0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
                      (lambda p: DenseAdagrad(p, 0.1, eps=1e-10),
                       lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-10))):
        w0 = torch.from_numpy(rng.standard_normal((4, 3)))
        p1, p2 = w0.clone().requires_grad_(), w0.clone().requires_grad_()
        o1, o2 = ours([p1]), ref([p2])
        for _ in range(5):
            g = torch.from_numpy(rng.standard_normal((4, 3)))
            p1.grad, p2.grad = g.clone(), g.clone()
            o1.step()
            o2.step()
        torch.testing.assert_close(p1, p2, rtol=0, atol=1e-12)


def test_sparse_sgd_formula(rng):
    rows = torch.from_numpy(rng.standard_normal((5, 3)))
    g = torch.from_numpy(rng.standard_normal((5, 3)))
    expect = rows.numpy() - 0.3 * g.numpy()
    SparseSGD(3, 0.3).update_(rows, g)
    np.testing.assert_allclose(rows.numpy(), expect, rtol=0, atol=1e-14)


def test_rowwise_adagrad_formula(rng):
    d = 3
    rows = torch.from_numpy(np.c_[rng.standard_normal((5, d)), rng.random(5)])
    w, s = rows.numpy()[:, :d].copy(), rows.numpy()[:, d].copy()
    opt = RowWiseAdagrad(d, 0.2, eps=1e-6)
    for _ in range(3):
        g = rng.standard_normal((5, d))
        s = s + (g * g).mean(1)                               # one accumulator per row
        w = w - 0.2 * g / (np.sqrt(s)[:, None] + 1e-6)
        opt.update_(rows, torch.from_numpy(g))
    np.testing.assert_allclose(rows.numpy()[:, :d], w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rows.numpy()[:, d], s, rtol=0, atol=1e-12)


def test_sparse_optimizer_checks_shapes():
    with pytest.raises(ValueError, match=r"rows must be \[U, 4\]"):
        RowWiseAdagrad(3, 0.1).update_(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="grad must be"):
        SparseSGD(3, 0.1).update_(torch.zeros(2, 3), torch.zeros(3, 3))
    dense, sparse = make_optimizers(TrainConfig(optimizer="adagrad"), [torch.zeros(2, requires_grad=True)])
    assert isinstance(dense, DenseAdagrad) and sparse.state_columns == 1


# -- metrics ------------------------------------------------------------------------------------


def brute_auc(labels, scores):
    pos = [s for s, l in zip(scores, labels) if l == 1]
    neg = [s for s, l in zip(scores, labels) if l == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("case", ["random", "ties", "perfect", "inverted", "all-equal"])
def test_auc_matches_pairwise_count(rng, case):
    n = 300
    labels = rng.integers(0, 2, n)
    scores = {"random": rng.random(n), "ties": rng.integers(0, 5, n).astype(float),
              "perfect": labels + rng.random(n) * 0.5, "inverted": -labels + rng.random(n) * 0.5,
              "all-equal": np.ones(n)}[case]
    got, want = roc_auc(labels, scores), brute_auc(labels, scores)
    assert abs(got - want) < 1e-12, f"{case}: {got} != {want} (seed {SEED})"


def test_auc_and_log_loss_edges():
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))
    with pytest.raises(ValueError, match="0 or 1"):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="same|one length"):
        roc_auc([0, 1], [0.1])
    y, p = np.array([1, 0, 1]), np.array([0.9, 0.2, 0.4])
    want = -(math.log(0.9) + math.log(0.8) + math.log(0.4)) / 3
    assert abs(log_loss(y, p) - want) < 1e-12
    assert np.isfinite(log_loss([1, 0], [0.0, 1.0]))            # clipped, not inf


def test_timers_and_bytes():
    t = Timers()
    t.record = True
    with t("a"):
        pass
    with t("b", lane="dma"):
        pass
    assert set(t.totals) == {"a", "b"} and [e[1] for e in t.events] == ["main", "dma"]
    bc = ByteCounter()
    bc.to_device("rows", 10)
    bc.to_device("hot_load", 5)
    bc.to_host("rows", 3)
    assert bc.total_h2d() == 15 and bc.total_h2d(exclude=("hot_load",)) == 10 and bc.total_d2h() == 3


# -- train config ------------------------------------------------------------------------------------


def test_train_config_yaml_round_trip(tmp_path):
    cfg = TrainConfig(optimizer="adagrad", bottom_mlp=(32, 16), hot_budget_bytes="1MiB", steps=7)
    assert cfg.hot_budget_bytes == 2**20
    path = tmp_path / "t.yaml"
    cfg.save(path)
    assert TrainConfig.load(path) == cfg
    partial = TrainConfig.from_yaml("steps: 3\n", base=TrainConfig.demo())
    assert partial.steps == 3 and partial.batch_size == TrainConfig.demo().batch_size


@pytest.mark.parametrize("field,value,match", [
    ("bottom_mlp", (8, 4), "bottom_mlp must end with embedding_dim"),
    ("top_mlp", (8, 2), "top_mlp must end with 1"),
    ("optimizer", "adam", "train.optimizer"),
    ("lr", 0, "train.lr"),
    ("batch_size", 0, "train.batch_size"),
    ("learn_fraction", 1.5, "train.learn_fraction"),
    ("mode", "gpu", "train.mode"),
    ("hot_budget_bytes", "lots", "hot_budget_bytes"),
    ("dtype", "float16", "train.dtype"),
])
def test_train_config_rejects_bad_values(field, value, match):
    with pytest.raises((ConfigError, TypeError), match=match):
        TrainConfig(**{field: value})


def test_train_config_unknown_field_and_bytes():
    with pytest.raises(ConfigError, match="unknown train config field 'stepz'"):
        TrainConfig.from_dict({"stepz": 3})
    assert parse_bytes("64MiB") == 64 * 2**20 and parse_bytes("1.5GB") == 1_500_000_000
    assert parse_bytes(123) == 123
    with pytest.raises(ConfigError, match="--hot-budget"):
        parse_bytes("12 parsecs", "--hot-budget")
