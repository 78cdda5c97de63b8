"""The hash functions: NumPy, scalar and Amaranth evaluations agree; H3 is linear."""

import numpy as np
import pytest
from amaranth.sim import Simulator
from amaranth import Module, Signal

from hotline.config import HotlineConfig
from hotline.hashing import H3, counter_hashes, hotmap_hashes, pack_keys, unpack_keys


def test_numpy_matches_scalar():
    rng = np.random.default_rng(7)
    h = H3.from_seed(38, 13, 99, "test")
    keys = rng.integers(0, 1 << 38, 500, dtype=np.uint64)
    assert h.numpy(keys).tolist() == [h(int(k)) for k in keys]
    assert int(h.numpy(keys).max()) < (1 << 13)


def test_h3_is_xor_linear():
    rng = np.random.default_rng(8)
    h = H3.from_seed(38, 16, 5, "lin")
    a = rng.integers(0, 1 << 38, 200, dtype=np.uint64)
    b = rng.integers(0, 1 << 38, 200, dtype=np.uint64)
    assert (h.numpy(a ^ b) == (h.numpy(a) ^ h.numpy(b))).all()


def test_seeds_and_purposes_give_different_hashes():
    assert H3.from_seed(38, 16, 1, "a").masks != H3.from_seed(38, 16, 2, "a").masks
    assert H3.from_seed(38, 16, 1, "a").masks != H3.from_seed(38, 16, 1, "b").masks
    assert H3.from_seed(38, 16, 1, "a") == H3.from_seed(38, 16, 1, "a")


def test_bad_widths():
    with pytest.raises(ValueError, match="input width"):
        H3.from_seed(0, 4, 1, "x")
    with pytest.raises(ValueError, match="output width"):
        H3.from_seed(8, 40, 1, "x")


def test_amaranth_matches_numpy():
    """The RTL expression of a hash equals the golden model's, checked in Amaranth's simulator."""
    rng = np.random.default_rng(9)
    h = H3.from_seed(20, 7, 3, "sim")
    keys = rng.integers(0, 1 << 20, 64, dtype=np.uint64).tolist()
    m = Module()
    key = Signal(20)
    out = Signal(7)
    m.d.comb += out.eq(h.amaranth(key))
    sim = Simulator(m)
    got = []

    async def bench(ctx):
        for k in keys:
            ctx.set(key, k)
            got.append(ctx.get(out))

    sim.add_testbench(bench)
    sim.run()
    assert got == [h(k) for k in keys]


def test_counter_indices_share_bank_bits():
    cfg = HotlineConfig().replace(counter={"log2_counters": 10, "banks": 4, "hh_sets": 64})
    h = counter_hashes(cfg)
    keys = np.random.default_rng(1).integers(0, 1 << 37, 1000, dtype=np.uint64)
    bank = h.bank.numpy(keys)
    for d in range(cfg.counter.depth):
        idx = h.counter_index(keys, d)
        assert (idx >> (10 - 2) == bank).all() and idx.max() < 1024
    assert (h.set_index(keys) >> (6 - 2) == bank).all()
    assert len(hotmap_hashes(cfg)) == cfg.reorder.hotmap_hashes


def test_pack_unpack():
    t = np.array([0, 3, 25]); r = np.array([0, 12345, (1 << 32) - 1])
    k = pack_keys(t, r, 32)
    assert k.tolist() == [0, (3 << 32) | 12345, (25 << 32) | ((1 << 32) - 1)]
    t2, r2 = unpack_keys(k, 32)
    assert t2.tolist() == t.tolist() and r2.tolist() == r.tolist()
