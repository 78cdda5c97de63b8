"""The driver's golden backend against the reference semantics, written as plain Python loops."""

import os

import numpy as np
import pytest
import torch

from hotline.config import HotlineConfig
from hotline.hashing import pack_keys
from hotline.host.driver import BackendUnavailable, GoldenAccelerator, make_accelerator
from hotline.host.popularity import PopularityCounter

SEED = int(os.environ.get("HOTLINE_SEED", "77"))
T = 5
SIZES = (7, 30, 200, 1000, 3)


def small_cfg(**reorder) -> HotlineConfig:
    r = dict(keys_per_sample=T, hotmap_log2_buckets=8, max_batch_keys=1024, max_batch_samples=128)
    r.update(reorder)
    return HotlineConfig().replace(keys={"tables": T, "row_bits": 16}, reorder=r,
                                   counter={"log2_counters": 10, "hh_sets": 64, "threshold": 2})


@pytest.fixture
def rng():
    print(f"seed {SEED}")
    return np.random.default_rng(SEED)


def zipf_keys(rng, b, cfg):
    rows = np.stack([np.minimum(rng.zipf(1.3, b) - 1, n - 1) for n in SIZES], axis=1)
    return pack_keys(np.arange(T)[None, :], rows, cfg.keys.row_bits)


def reference_classify(hot: dict, keys: np.ndarray):
    """Popular iff every key is hot; arrival order kept; cold u by first occurrence, row-major."""
    popular, non_popular, cold_keys, u_of = [], [], [], {}
    index = np.zeros(keys.shape, dtype=np.int64)
    is_hot = np.zeros(keys.shape, dtype=bool)
    for b in range(keys.shape[0]):
        all_hot = True
        for t in range(keys.shape[1]):
            k = int(keys[b, t])
            if k in hot:
                is_hot[b, t] = True
                index[b, t] = hot[k]
            else:
                all_hot = False
                if k not in u_of:
                    u_of[k] = len(cold_keys)
                    cold_keys.append(k)
                index[b, t] = u_of[k]
        (popular if all_hot else non_popular).append(b)
    return popular, non_popular, is_hot, index, cold_keys


def first_mismatch(a, b):
    bad = np.argwhere(np.asarray(a) != np.asarray(b))
    return tuple(bad[0]) if bad.size else None


@pytest.mark.parametrize("case", ["zipf", "all-hot", "all-cold", "last-key-cold", "repeated"])
def test_classify_matches_reference(rng, case):
    cfg = small_cfg()
    acc = GoldenAccelerator(cfg)
    keys = zipf_keys(rng, 100, cfg)
    uniq = np.unique(keys)
    if case == "all-hot":
        hot_keys = uniq
    elif case == "all-cold":
        hot_keys = np.zeros(0, dtype=np.uint64)
    else:
        hot_keys = rng.permutation(uniq)[: uniq.size // 2]
    if case == "last-key-cold":
        hot_keys = np.unique(keys[:, :-1])
        keys[:, -1] = pack_keys(T - 1, 2 + np.arange(100) % 1, cfg.keys.row_bits)
        hot_keys = hot_keys[hot_keys != keys[0, -1]]
    if case == "repeated":
        keys = np.repeat(keys[:4], 25, axis=0)               # the same 4 samples over and over
    slots = rng.permutation(4 * max(1, hot_keys.size))[: hot_keys.size]
    acc.load_hot_map(hot_keys, slots)
    got = acc.classify(keys)
    pop, npop, is_hot, index, cold = reference_classify(
        {int(k): int(s) for k, s in zip(hot_keys, slots)}, keys)
    for name, g, w in (("popular", got.popular, pop), ("non_popular", got.non_popular, npop),
                       ("hot", got.hot, is_hot), ("index", got.index, index),
                       ("cold_keys", got.cold_keys, np.array(cold, dtype=np.uint64))):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, f"{case}: {name} shape {g.shape} != {w.shape} (seed {SEED})"
        pos = first_mismatch(g, w)
        assert pos is None, (f"{case}: {name} differs first at {pos}: {g[pos]} != {w[pos]} "
                             f"(input key {keys[pos[0], pos[1]] if name in ('hot', 'index') else ''}; "
                             f"seed {SEED})")
    if case == "all-hot":
        assert len(got.non_popular) == 0
    if case in ("all-cold", "last-key-cold"):
        assert len(got.popular) == 0


def test_classify_needs_a_hot_map():
    with pytest.raises(RuntimeError, match="load_hot_map"):
        GoldenAccelerator(small_cfg()).classify(np.zeros((2, T), dtype=np.uint64))


class Stacked:
    """A stacked layout: every table in one buffer (what the trainer's StackedTables is)."""

    def __init__(self, arrays):
        self.table_sizes = tuple(a.shape[0] for a in arrays)
        self.offsets = np.r_[0, np.cumsum(self.table_sizes)[:-1]]
        self.flat = torch.from_numpy(np.concatenate(arrays))

    def table(self, t):
        return self.flat[self.offsets[t]:self.offsets[t] + self.table_sizes[t]].numpy()


@pytest.mark.parametrize("kind", ["numpy", "torch", "stacked", "stacked_strided"])
def test_gather_scatter_match_loops(rng, kind):
    cfg = small_cfg()
    acc = GoldenAccelerator(cfg)
    w = 6
    np_tables = [rng.standard_normal((n, w)).astype(np.float32) for n in SIZES]
    if kind == "numpy":
        tables, view = np_tables, (lambda t: np_tables[t])
    elif kind == "torch":
        tables = [torch.from_numpy(t.copy()) for t in np_tables]
        view = lambda t: tables[t].numpy()               # noqa: E731
    else:
        tables = Stacked(np_tables)
        view = tables.table
    keys = np.unique(zipf_keys(rng, 60, cfg))
    keys = rng.permutation(keys)                       # any order, tables interleaved
    rows = np.asarray(acc.gather(tables, keys))
    for u, k in enumerate(keys):
        t, r = int(k) >> cfg.keys.row_bits, int(k) & 0xFFFF
        assert np.array_equal(rows[u], np_tables[t][r]), f"gather row {u} (key {int(k):#x}) wrong"
    # into a larger staging buffer: only the first U rows are written
    stage = np.full((keys.size + 3, w), 7.0, dtype=np.float32)
    acc.gather(tables, keys, out=stage)
    assert np.all(stage[keys.size:] == 7.0) and np.array_equal(stage[:keys.size], rows)
    # scatter new values; everything else stays
    new = rng.standard_normal((keys.size, w)).astype(np.float32)
    before = [view(t).copy() for t in range(T)]
    if kind == "stacked_strided":          # rows not contiguous: the row-copy fast path can't apply
        wide = np.zeros((keys.size, w + 2), dtype=np.float32)
        wide[:, 1:w + 1] = new
        src = torch.from_numpy(wide)[:, 1:w + 1]
    else:
        src = torch.from_numpy(new) if kind != "numpy" else new
    acc.scatter(tables, keys, src)
    touched = {(int(k) >> 16, int(k) & 0xFFFF): u for u, k in enumerate(keys)}
    for t in range(T):
        tab = view(t)
        for r in range(tab.shape[0]):
            want = new[touched[(t, r)]] if (t, r) in touched else before[t][r]
            assert np.array_equal(tab[r], want), f"scatter: table {t} row {r} wrong"


@pytest.mark.parametrize("width", [1, 6, 16])
def test_gather_scatter_equal_the_dma_model(rng, width):
    """The driver's golden gather/scatter (what the trainer runs) move the bytes that the
    DMA's byte-level model, the cosimulation oracle, moves for the same command: the
    stacked tables at ``base[t] = offsets[t] * row_bytes`` with ``stride = row_bytes``,
    cold key ``u`` to ``staging + u * row_bytes``; and both refuse the same bad row."""
    from hotline.host.gather import GATHER, SCATTER, ErrorKind, TableLayout, transfer
    from hotline.hashing import unpack_keys

    cfg = small_cfg()
    acc = GoldenAccelerator(cfg)
    tables = Stacked([rng.standard_normal((n, width)).astype(np.float32) for n in SIZES])
    row_bytes = width * 4
    table_bytes = tables.flat.numel() * 4
    layout = TableLayout(base=np.asarray(tables.offsets) * row_bytes,
                         stride=[row_bytes] * T, rows=tables.table_sizes)
    keys = rng.permutation(np.unique(zipf_keys(rng, 80, cfg)))      # distinct, tables interleaved
    t, r = unpack_keys(keys, cfg.keys.row_bits)
    dma_keys = np.stack([t, r, np.arange(keys.size)], axis=1)
    staging = table_bytes + 64
    mem = np.zeros(staging + keys.size * row_bytes, dtype=np.uint8)

    mem[:table_bytes] = tables.flat.numpy().view(np.uint8).reshape(-1)
    res = transfer(GATHER, mem, layout, dma_keys, staging, row_bytes, cfg=cfg)
    rows = acc.gather(tables, keys)
    assert res.rows_moved == keys.size
    assert np.array_equal(rows.numpy().view(np.uint8).reshape(-1), mem[staging:]), \
        f"gather: driver and DMA model staged different bytes; seed {SEED}"

    new = rng.standard_normal((keys.size, width)).astype(np.float32)
    mem[staging:] = new.view(np.uint8).reshape(-1)
    res = transfer(SCATTER, mem, layout, dma_keys, staging, row_bytes, cfg=cfg)
    acc.scatter(tables, keys, torch.from_numpy(new))
    assert res.rows_moved == keys.size
    assert np.array_equal(tables.flat.numpy().view(np.uint8).reshape(-1), mem[:table_bytes]), \
        f"scatter: driver and DMA model left different tables; seed {SEED}"

    # A row one past its table's end: the DMA flags it (ROW status, nothing written),
    # the driver refuses the whole call; both name the same key.
    bad = keys.copy()
    i = keys.size // 2
    bad[i] = pack_keys([t[i]], [SIZES[t[i]]], cfg.keys.row_bits)[0]
    dma_bad = dma_keys.copy()
    dma_bad[i, 1] = SIZES[t[i]]
    before = mem.copy()
    res = transfer(SCATTER, mem, layout, dma_bad, staging, row_bytes, cfg=cfg)
    assert res.first_error_kind == ErrorKind.ROW and res.first_error_index == i
    flat_before = tables.flat.clone()
    with pytest.raises(ValueError, match=f"position {i}: row {SIZES[t[i]]} is outside table {t[i]}"):
        acc.scatter(tables, bad, torch.from_numpy(new))
    assert torch.equal(tables.flat, flat_before), "a refused scatter wrote rows"
    assert res.rows_moved == keys.size - 1
    past_end = int(layout.base[t[i]]) + SIZES[t[i]] * row_bytes     # the next table's first row
    assert np.array_equal(mem[past_end:past_end + row_bytes], before[past_end:past_end + row_bytes])


def test_gather_scatter_bad_input():
    cfg = small_cfg()
    acc = GoldenAccelerator(cfg)
    tables = [np.zeros((n, 4), dtype=np.float32) for n in SIZES]
    with pytest.raises(ValueError, match="row 7 is outside table 0"):
        acc.gather(tables, pack_keys([0], [7], 16))
    with pytest.raises(ValueError, match="names table 5"):
        acc.gather(tables, pack_keys([5], [0], 16))
    with pytest.raises(ValueError, match="twice"):
        acc.scatter(tables, pack_keys([1, 1], [3, 3], 16), np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="rows must be at least"):
        acc.scatter(tables, pack_keys([1], [3], 16), np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="width"):
        acc.gather([np.zeros((3, 4)), np.zeros((3, 5))], pack_keys([0], [0], 16))
    with pytest.raises(ValueError, match="negative"):
        acc.gather(tables, np.array([-1]))
    with pytest.raises(ValueError, match="row 40 is outside table 1"):
        acc.gather(Stacked(tables), pack_keys([1, 1], [3, 40], 16))


def test_learn_and_hot_set_equal_the_counter_model(rng):
    cfg = small_cfg()
    acc = GoldenAccelerator(cfg)
    ref = PopularityCounter(cfg)
    for _ in range(3):
        keys = zipf_keys(rng, 80, cfg)
        acc.learn(keys)
        ref.learn(keys.ravel())
    cands = np.unique(zipf_keys(rng, 50, cfg))
    for budget in (0, 40, 400, 10**6):
        assert np.array_equal(acc.choose_hot_set(budget, 4), ref.hot_set(budget, 4))
        assert np.array_equal(acc.choose_hot_set(budget, 4, cands), ref.hot_set(budget, 4, cands))
    assert acc.calls["learn"] == 3 and acc.busy["learn"] > 0


def test_state_dict_round_trip(rng):
    cfg = small_cfg()
    a = GoldenAccelerator(cfg)
    a.learn(zipf_keys(rng, 200, cfg))
    hot = a.choose_hot_set(10**6, 4)
    a.load_hot_map(hot)
    b = GoldenAccelerator(cfg)
    b.load_state_dict(a.state_dict())
    probe = zipf_keys(rng, 50, cfg)
    assert np.array_equal(a.counter.estimate(probe.ravel()), b.counter.estimate(probe.ravel()))
    assert all(np.array_equal(x, y) for x, y in zip(a.counter.readout(), b.counter.readout()))
    ca, cb = a.classify(probe), b.classify(probe)
    assert np.array_equal(ca.index, cb.index) and np.array_equal(ca.cold_keys, cb.cold_keys)
    # learning goes on identically after the restore
    more = zipf_keys(rng, 50, cfg)
    a.learn(more)
    b.learn(more)
    assert np.array_equal(a.counter.counters, b.counter.counters)
    with pytest.raises(ValueError, match="different hardware config"):
        GoldenAccelerator(small_cfg(max_batch_keys=512)).load_state_dict(a.state_dict())


def test_make_accelerator_backends(monkeypatch, tmp_path):
    assert isinstance(make_accelerator("golden", small_cfg()), GoldenAccelerator)
    # fpga: without a device named in the environment, a clear error (no board here)
    for var in ("HOTLINE_FPGA_REGS", "HOTLINE_FPGA_MEM"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(BackendUnavailable, match="fpga backend needs a device: set HOTLINE_FPGA_REGS"):
        make_accelerator("fpga", small_cfg())
    # files that are not a device: the register-level driver finds no accelerator behind them
    from hotline import regmap
    from hotline.host.device import DeviceError
    regs, mem = tmp_path / "resource0", tmp_path / "dma"
    regs.write_bytes(bytes(1 << regmap.ADDRESS_BITS))
    mem.write_bytes(bytes(1 << 16))
    monkeypatch.setenv("HOTLINE_FPGA_REGS", str(regs))
    monkeypatch.setenv("HOTLINE_FPGA_MEM", str(mem))
    with pytest.raises(DeviceError, match="no Hotline accelerator: ID reads 0x00000000"):
        make_accelerator("fpga", small_cfg())
    with pytest.raises(BackendUnavailable, match="unknown accelerator backend 'gpu'"):
        make_accelerator("gpu", small_cfg())
    with pytest.raises(TypeError, match="HotlineConfig"):
        GoldenAccelerator({"keys": {}})
