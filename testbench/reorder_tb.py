"""cocotb testbench of the micro-batch reorder unit, checked against the golden model.

Run through :func:`hotline.testbench.runner.run_bench` (see
``tests/test_reorder_cosim.py``).  :class:`TB` owns the clock, the reset, the
input driver (with random valid gaps) and one monitor per output (each with
its own random backpressure); :func:`check_batches` compares what the unit
emitted with :func:`hotline.host.reorder.reorder_batch` batch by batch and
names the first mismatch, its position and the seed.

The ``bench_throughput`` test only runs when ``HOTLINE_REORDER_BENCH`` names
a JSON file to write (``scripts/bench_reorder.py`` does that).
"""

from __future__ import annotations

import json
import os
import random

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from amaranth.hdl import Shape
from amaranth.lib import data

from ..config import HotlineConfig
from ..host.hotmap import HotMap
from ..host.reorder import reorder_batch
from ..rtl.reorder import ReorderLayouts, dedupe_hash
from .runner import config_from_env, seed_from_env, stream_ports

OUTPUTS = ("popular", "non_popular", "cold", "status")


# ---- payload packing -----------------------------------------------------------------------

def _width(shape) -> int:
    return shape.size if isinstance(shape, data.Layout) else Shape.cast(shape).width


def unpack(shape, value: int):
    """An int of a layout's bits -> nested dict / list / int."""
    if isinstance(shape, data.StructLayout):
        return {name: unpack(f.shape, (value >> f.offset) & ((1 << f.width) - 1)) for name, f in shape}
    if isinstance(shape, data.ArrayLayout):
        w = _width(shape.elem_shape)
        return [unpack(shape.elem_shape, (value >> (i * w)) & ((1 << w) - 1)) for i in range(shape.length)]
    return value & ((1 << _width(shape)) - 1)


def pack(shape, value) -> int:
    """Inverse of :func:`unpack` (missing struct fields are 0; an int is taken as raw bits)."""
    if isinstance(shape, data.Layout) and isinstance(value, int):
        if value < 0 or value >> shape.size:
            raise ValueError(f"value {value} does not fit in {shape.size} bits")
        return value
    if isinstance(shape, data.StructLayout):
        out = 0
        for name, f in shape:
            if name in value:
                out |= pack(f.shape, value[name]) << f.offset
        return out
    if isinstance(shape, data.ArrayLayout):
        w = _width(shape.elem_shape)
        return sum(pack(shape.elem_shape, v) << (i * w) for i, v in enumerate(value))
    v = int(value)
    if v < 0 or v >> _width(shape):
        raise ValueError(f"value {v} does not fit in {_width(shape)} bits")
    return v


# ---- stimulus ------------------------------------------------------------------------------

_ZIPF_CDF = {}


def bounded_zipf(rng: np.random.Generator, a: float, rows: int, size) -> np.ndarray:
    """Ranks 0 .. rows-1 with P(k) proportional to (k+1)**-a (a true bounded Zipf, not a
    clipped one, which would pile the tail onto the last row)."""
    key = (float(a), int(rows))
    if key not in _ZIPF_CDF:
        w = np.arange(1, rows + 1, dtype=np.float64) ** -a
        cdf = np.cumsum(w)
        _ZIPF_CDF[key] = cdf / cdf[-1]
    cdf = _ZIPF_CDF[key]
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), rows - 1)


def zipf_batch(rng: np.random.Generator, cfg: HotlineConfig, B: int, rows: int, a: float) -> np.ndarray:
    """B samples; key j of a sample is from table ``j % tables``, row Zipf(a) over ``rows`` rows."""
    T = cfg.reorder.keys_per_sample
    row = bounded_zipf(rng, a, min(rows, 1 << cfg.keys.row_bits), (B, T))
    # Scramble rows per table so popular rows are not all small numbers.
    row = (row * 2654435761 + 97) % (1 << cfg.keys.row_bits)
    table = (np.arange(T) % cfg.keys.tables)[None, :]
    return (table.astype(np.uint64) << np.uint64(cfg.keys.row_bits)) | row.astype(np.uint64)


def hot_set_from(rng, cfg, keys_list, fraction: float) -> np.ndarray:
    """The most frequent keys of some batches, up to ``fraction`` of the hot-map capacity."""
    allk = np.concatenate([k.reshape(-1) for k in keys_list])
    uniq, counts = np.unique(allk, return_counts=True)
    n = min(len(uniq), int(cfg.reorder.hotmap_capacity * fraction))
    order = np.lexsort((rng.random(len(uniq)), -counts))
    return uniq[order[:n]]


def build_hotmap(rng, cfg, hot_keys) -> HotMap:
    """A hot map with random distinct slots; drops keys until the placement fits."""
    hot_keys = np.asarray(hot_keys, dtype=np.uint64)
    while True:
        slots = rng.permutation(1 << cfg.reorder.slot_bits)[: len(hot_keys)]
        try:
            return HotMap.build(cfg, hot_keys, slots)
        except Exception:
            hot_keys = hot_keys[: len(hot_keys) * 15 // 16]


def colliding_cold_keys(cfg, n: int, avoid=()) -> np.ndarray:
    """n keys with the same de-dup home bucket (forces long probes)."""
    h = dedupe_hash(cfg)
    space = cfg.keys.tables << cfg.keys.row_bits
    cand = np.arange(min(space, 1 << 20), dtype=np.uint64)
    cand = cand[~np.isin(cand, np.asarray(avoid, dtype=np.uint64))]
    b = h.numpy(cand)
    target = np.bincount(b).argmax()
    return cand[b == target][:n]


def neighbour_bucket_keys(cfg, per_bucket: int, buckets: int, avoid=()) -> np.ndarray:
    """``per_bucket`` keys homed in each of ``buckets`` consecutive de-dup buckets, in bucket
    order: their probe chains run into each other's buckets."""
    h = dedupe_hash(cfg)
    space = cfg.keys.tables << cfg.keys.row_bits
    cand = np.arange(min(space, 1 << 20), dtype=np.uint64)
    cand = cand[~np.isin(cand, np.asarray(avoid, dtype=np.uint64))]
    b = h.numpy(cand)
    nb = cfg.reorder.dedupe_buckets
    counts = np.bincount(b, minlength=nb)
    start = int(np.argmax([min(counts[(s + i) % nb] for i in range(buckets)) for s in range(nb)]))
    out = [cand[b == (start + i) % nb][:per_bucket] for i in range(buckets)]
    return np.concatenate(out)


# ---- the testbench -------------------------------------------------------------------------

class TB:
    """Clock, reset, input driver and output monitors of one ReorderUnit.

    Parameters
    ----------
    dut : cocotb handle
    cfg : HotlineConfig
    seed : int
        Seeds the gap/backpressure pattern and the test data.

    Members
    -------
    idle : float
        Probability of an idle cycle (no valid) before an input beat.
    backpressure : dict
        Per output, the probability that ready is low in a cycle.
    beats : dict
        Per output, the unpacked payloads received, in order.
    cycle : int
        Clock cycles since start.
    in_cycles : list of int
        The cycle at which each input beat was accepted.
    last_out_cycle : int
        The cycle of the latest beat received on any output.
    """

    def __init__(self, dut, cfg: HotlineConfig, seed: int):
        self.dut, self.cfg = dut, cfg
        self.lay = ReorderLayouts(cfg)
        self.rand = random.Random(seed)
        self.rng = np.random.default_rng(seed)
        self.idle = 0.0
        self.backpressure = {name: 0.0 for name in OUTPUTS}
        self.beats = {name: [] for name in OUTPUTS}
        self.cycle = 0
        self.in_cycles = []
        self.last_out_cycle = 0
        self._queue = []
        self._layouts = {"popular": self.lay.sample_out, "non_popular": self.lay.sample_out,
                         "cold": self.lay.cold_out, "status": self.lay.status}
        dut.keys_valid.value = 0
        dut.keys_payload.value = 0
        dut.load_valid.value = 0
        dut.load_payload.value = 0
        for name in OUTPUTS:
            getattr(dut, f"{name}_ready").value = 0
        Clock(dut.clk, 10, unit="ns").start()
        cocotb.start_soon(self._count())
        cocotb.start_soon(self._drive())
        for name in OUTPUTS:
            cocotb.start_soon(self._monitor(name))

    async def reset(self):
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        # The de-dup engine wipes its table after a reset (keys sent meanwhile wait, which the
        # throughput bench must not count).
        for _ in range(self.cfg.reorder.dedupe_buckets + 4):
            await RisingEdge(self.dut.clk)

    async def _count(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1

    async def _drive(self):
        dut = self.dut
        self._driving = False
        while True:
            await RisingEdge(dut.clk)
            # Signals read at the edge hold their values from before it.
            if self._driving and int(dut.keys_ready.value) and not int(dut.rst.value):
                self._queue.pop(0)
                self.in_cycles.append(self.cycle)
                self._driving = False
            if not self._driving and self._queue and self.rand.random() >= self.idle:
                dut.keys_payload.value = self._queue[0]
                self._driving = True
            dut.keys_valid.value = int(self._driving)

    def abort(self):
        """Forget the queued input and everything received (before a reset)."""
        self._queue.clear()
        self._driving = False
        self.dut.keys_valid.value = 0
        for v in self.beats.values():
            v.clear()

    async def _monitor(self, name):
        dut = self.dut
        valid, ready, payload = stream_ports(dut, name)
        layout = self._layouts[name]
        while True:
            await RisingEdge(dut.clk)
            if int(valid.value) and int(ready.value):
                self.beats[name].append(unpack(layout, int(payload.value)))
                self.last_out_cycle = self.cycle
            ready.value = int(self.rand.random() >= self.backpressure[name])

    async def load_hotmap(self, hotmap: HotMap):
        """Write every word of the image (empty ones too, so a reload clears old keys)."""
        dut = self.dut
        for addr, word in enumerate(hotmap.image.tolist()):
            dut.load_payload.value = pack(self.lay.load, {"addr": addr, "data": word})
            dut.load_valid.value = 1
            await RisingEdge(dut.clk)
            while not int(dut.load_ready.value):
                await RisingEdge(dut.clk)
        dut.load_valid.value = 0
        await RisingEdge(dut.clk)

    def queue_batch(self, keys: np.ndarray):
        """Queue one batch, sample by sample; lanes past T carry junk and ``last`` is
        random on non-final beats (both must be ignored)."""
        r = self.cfg.reorder
        W, T, S = r.lanes, r.keys_per_sample, r.beats_per_sample
        B = keys.shape[0]
        space = self.cfg.keys.tables << self.cfg.keys.row_bits
        for s in range(B):
            for b in range(S):
                lanes = [int(k) for k in keys[s, b * W:(b + 1) * W]]
                lanes += [self.rand.randrange(space) for _ in range(W - len(lanes))]
                final = b == S - 1
                last = (s == B - 1) if final else self.rand.random() < 0.5
                self._queue.append(pack(self.lay.keys_in, {"keys": lanes, "last": int(last)}))

    async def wait_status(self, n: int, timeout_cycles: int = 200000):
        """Wait until n status beats have arrived (all batches done)."""
        start = self.cycle
        while len(self.beats["status"]) < n:
            await RisingEdge(self.dut.clk)
            assert self.cycle - start < timeout_cycles, (
                f"timeout: {len(self.beats['status'])} of {n} status beats after {timeout_cycles} "
                f"cycles; input left {len(self._queue)} beats, outputs "
                f"{ {k: len(v) for k, v in self.beats.items()} }")
        # The status comes before the output buffers drain: wait for every beat it
        # announces, then a few cycles more so an extra beat would show up.
        S = self.cfg.reorder.beats_per_sample
        while True:
            sts = self.beats["status"]
            need = {"popular": S * sum(st["popular"] for st in sts),
                    "non_popular": S * sum(st["non_popular"] for st in sts)}
            cold_have = sum(b["count"] for b in self.beats["cold"])
            if (all(len(self.beats[k]) >= v for k, v in need.items())
                    and cold_have >= sum(st["cold"] for st in sts)):
                break
            await RisingEdge(self.dut.clk)
            assert self.cycle - start < timeout_cycles, (
                f"timeout: outputs {({k: len(v) for k, v in self.beats.items()})} short of {need}")
        for _ in range(30):
            await RisingEdge(self.dut.clk)

    async def run_batches(self, hotmap: HotMap, batches, seed: int):
        """Send the batches back to back, wait for them, compare with the golden model."""
        done = len(self.beats["status"])
        for keys in batches:
            self.queue_batch(keys)
        await self.wait_status(done + len(batches))
        check_batches(self.cfg, hotmap, batches, self.beats, seed, first_status=done)


def _fmt(x):
    return {k: v for k, v in x.items()} if isinstance(x, dict) else x


def check_batches(cfg, hotmap, batches, beats, seed, first_status=0):
    """Compare the unit's outputs for ``batches`` with the golden model; consumes ``beats``."""
    r = cfg.reorder
    W, T, S = r.lanes, r.keys_per_sample, r.beats_per_sample

    def take_samples(name, n, bi):
        out = []
        for i in range(n):
            chunk = beats[name][:S]
            assert len(chunk) == S, f"batch {bi}: {name} ran out of beats at sample {i}; seed {seed}"
            del beats[name][:S]
            sid = chunk[0]["sid"]
            for b, beat in enumerate(chunk):
                assert beat["sid"] == sid and beat["last"] == int(b == S - 1), (
                    f"batch {bi}: {name} sample {i} beat {b} framing {beat['sid']}/{beat['last']}; seed {seed}")
            lanes = [k for beat in chunk for k in beat["keys"]]
            assert all(k == {"index": 0, "hot": 0} for k in lanes[T:]), (
                f"batch {bi}: {name} sample {sid} has non-zero padding lanes; seed {seed}")
            out.append((sid, lanes[:T]))
        return out

    statuses = beats["status"][first_status:]
    assert len(statuses) == len(batches)
    for bi, keys in enumerate(batches):
        gold = reorder_batch(cfg, hotmap, keys)
        st = statuses[bi]
        exp = {"popular": gold.status.popular, "non_popular": gold.status.non_popular,
               "cold": gold.status.cold, "key_overflow": int(gold.status.key_overflow),
               "sample_overflow": int(gold.status.sample_overflow)}
        assert st == exp, f"batch {bi}: status {st}, expected {exp}; seed {seed}"
        for name, sids in (("popular", gold.batch.popular), ("non_popular", gold.batch.non_popular)):
            got = take_samples(name, st[name], bi)
            for i, (sid, lanes) in enumerate(got):
                assert sid == sids[i], (f"batch {bi}: {name} sample #{i} has sid {sid}, expected "
                                        f"{sids[i]}; seed {seed}")
                for t, lane in enumerate(lanes):
                    e_hot, e_idx = int(gold.batch.hot[sid, t]), int(gold.batch.index[sid, t])
                    assert (lane["hot"], lane["index"]) == (e_hot, e_idx), (
                        f"batch {bi}: {name} sample {sid} key {t} (key {int(keys[sid, t]):#x}) -> "
                        f"hot={lane['hot']} index={lane['index']}, expected hot={e_hot} "
                        f"index={e_idx}; seed {seed}")
        # Cold keys: consecutive u from 0, count lanes per beat.
        got_cold = []
        while len(got_cold) < st["cold"]:
            assert beats["cold"], f"batch {bi}: cold stream ran out at u={len(got_cold)}; seed {seed}"
            beat = beats["cold"].pop(0)
            assert beat["u"] == len(got_cold) and 1 <= beat["count"] <= W, (
                f"batch {bi}: cold beat u={beat['u']} count={beat['count']}, expected u={len(got_cold)}; "
                f"seed {seed}")
            got_cold += beat["keys"][:beat["count"]]
        assert len(got_cold) == st["cold"], f"batch {bi}: cold beats overshoot the count; seed {seed}"
        exp_cold = gold.batch.cold_keys.tolist()
        for u, (g, e) in enumerate(zip(got_cold, exp_cold)):
            assert g == e, f"batch {bi}: cold key u={u} is {g:#x}, expected {e:#x}; seed {seed}"
    for name in ("popular", "non_popular", "cold"):
        assert not beats[name], f"{name} has {len(beats[name])} extra beats; seed {seed}"
    del beats["status"][first_status:first_status + len(batches)]


# ---- tests ---------------------------------------------------------------------------------

def _setup(dut):
    cfg = config_from_env()
    seed = seed_from_env(dut._log)
    return cfg, seed, TB(dut, cfg, seed)


def _random_stress(tb):
    tb.idle = tb.rand.choice([0.0, 0.2, 0.6])
    for name in OUTPUTS:
        tb.backpressure[name] = tb.rand.choice([0.0, 0.3, 0.7])
    tb.dut._log.info(f"idle {tb.idle}, backpressure {tb.backpressure}")


def _sizes(cfg):
    r = cfg.reorder
    return min(r.max_batch_samples, 48), max(8, (1 << cfg.keys.row_bits) // 8)


@cocotb.test()
async def zipf_random(dut):
    """Random hot set, Zipf batches back to back; gaps and backpressure change per round."""
    cfg, seed, tb = _setup(dut)
    await tb.reset()
    bmax, rows = _sizes(cfg)
    for rnd in range(5):
        batches = [zipf_batch(tb.rng, cfg, int(tb.rng.integers(1, bmax + 1)), rows,
                              float(tb.rng.uniform(1.05, 2.0))) for _ in range(4)]
        hm = build_hotmap(tb.rng, cfg, hot_set_from(tb.rng, cfg, batches, tb.rng.uniform(0.3, 0.9)))
        await tb.load_hotmap(hm)
        _random_stress(tb)
        # Some batches may overflow max_batch_keys; the model says what to expect.
        await tb.run_batches(hm, batches, seed)


@cocotb.test()
async def hot_cold_extremes(dut):
    """All-hot, all-cold, and one-cold-key-last batches, with stress."""
    cfg, seed, tb = _setup(dut)
    await tb.reset()
    r = cfg.reorder
    bmax, rows = _sizes(cfg)
    base = zipf_batch(tb.rng, cfg, bmax, rows, 1.3)
    hot = np.unique(base)[: int(r.hotmap_capacity * 0.8)]
    hm = build_hotmap(tb.rng, cfg, hot)
    hot = hm.keys
    all_hot = tb.rng.choice(hot, size=(bmax, r.keys_per_sample))
    cold_pool = np.setdiff1d(np.arange(cfg.keys.tables << cfg.keys.row_bits, dtype=np.uint64), hot)
    n_cold = max(1, min(r.max_batch_keys // r.keys_per_sample, bmax))
    all_cold = tb.rng.choice(cold_pool[:r.max_batch_keys], size=(n_cold, r.keys_per_sample))
    last_cold = all_hot.copy()
    last_cold[:, -1] = cold_pool[np.arange(bmax) % r.max_batch_keys]
    await tb.load_hotmap(hm)
    for stress in (False, True):
        if stress:
            _random_stress(tb)
        await tb.run_batches(hm, [all_hot, all_cold, last_cold, all_hot[:1], all_cold[:1]], seed)


@cocotb.test()
async def dedupe_hazards(dut):
    """Heavy repetition: same-beat, back-to-back and distant repeats, and keys that all share
    one de-dup home bucket (long probes)."""
    cfg, seed, tb = _setup(dut)
    await tb.reset()
    r = cfg.reorder
    T = r.keys_per_sample
    bmax, _ = _sizes(cfg)
    hm = build_hotmap(tb.rng, cfg, np.arange(0, 64, 3, dtype=np.uint64))
    await tb.load_hotmap(hm)
    coll = colliding_cold_keys(cfg, min(r.max_batch_keys, 3 * r.dedupe_ways + 5), avoid=hm.keys)
    pool_small = np.concatenate([coll[:4], hm.keys[:3]])
    batches = [
        tb.rng.choice(pool_small, size=(bmax, T)),                 # few keys, lots of repeats
        np.full((bmax, T), coll[0], dtype=np.uint64),              # one key everywhere
        np.resize(coll, (max(1, len(coll) // T), T)).astype(np.uint64),  # all in one bucket
        tb.rng.choice(np.concatenate([coll, hm.keys]), size=(bmax, T)),
        np.resize(np.repeat(coll, 2), (bmax, T)).astype(np.uint64),  # pairs of repeats
    ]
    for stress in (False, True, True):
        if stress:
            _random_stress(tb)
        await tb.run_batches(hm, batches, seed)


@cocotb.test()
async def dedupe_window(dut):
    """The de-dup engine's pipeline: keys repeated 1 to 6 cold keys apart (inside and just
    past its forwarding window), keys homed in neighbouring buckets whose probe chains
    overlap (flush and replay), one bucket hammered far past its ways, hot keys between
    them, and cold-key-free batches in between so the batch tag wraps without a cold key
    (the wipe must still come before the next cold key)."""
    cfg, seed, tb = _setup(dut)
    await tb.reset()
    r = cfg.reorder
    T = r.keys_per_sample
    bmax, _ = _sizes(cfg)
    hm = build_hotmap(tb.rng, cfg, np.arange(0, 64, 5, dtype=np.uint64))
    await tb.load_hotmap(hm)
    per = r.dedupe_ways + 1
    nbr = neighbour_bucket_keys(cfg, per, 3, avoid=hm.keys)
    coll = colliding_cold_keys(cfg, 4 * r.dedupe_ways + 3, avoid=np.concatenate([hm.keys, nbr]))
    keys = np.concatenate([nbr, coll])[: max(2, r.max_batch_keys - 1)]
    seq = []
    for i, k in enumerate(keys):   # k, then earlier keys again at distances 1..6
        seq.append(k)
        for d in (1, 2, 3, 4, 5, 6):
            if i - d >= 0 and tb.rng.random() < 0.4:
                seq.append(keys[i - d])
        if tb.rng.random() < 0.3:
            seq.append(tb.rng.choice(hm.keys))
    seq = np.array(seq, dtype=np.uint64)
    n = max(1, min(bmax, len(seq) // T))
    window = np.resize(seq, (n, T)).astype(np.uint64)
    reversed_ = window[::-1].copy()
    hot_only = tb.rng.choice(hm.keys, size=(2, T))
    wrap = (1 << r.dedupe_epoch_bits) - 1
    batches = [window, reversed_] + [hot_only] * (wrap + 1) + [window, hot_only, reversed_]
    for stress in (False, True):
        if stress:
            _random_stress(tb)
        await tb.run_batches(hm, batches, seed)


@cocotb.test()
async def overflow_recovery(dut):
    """Over-full batches (cold keys; samples) each followed by a good batch."""
    cfg, seed, tb = _setup(dut)
    await tb.reset()
    r = cfg.reorder
    T = r.keys_per_sample
    hm = build_hotmap(tb.rng, cfg, np.arange(0, 40, dtype=np.uint64))
    await tb.load_hotmap(hm)
    space = cfg.keys.tables << cfg.keys.row_bits
    fresh = np.arange(1000, 1000 + 4 * r.max_batch_keys + 8 * T, dtype=np.uint64) % np.uint64(space)
    n_over = -(-(r.max_batch_keys + 1) // T)
    too_many_keys = fresh[: n_over * T].reshape(n_over, T)
    just_fits = fresh[: r.max_batch_keys].copy()
    just_fits = np.resize(just_fits, (-(-r.max_batch_keys // T), T))
    too_many_samples = tb.rng.choice(hm.keys, size=(r.max_batch_samples + 3, T))
    good = tb.rng.choice(np.concatenate([hm.keys, fresh[:5]]), size=(min(8, r.max_batch_samples), T))
    # Overflow in the middle of a sample, with repeats after it and popular samples before it.
    mixed = np.concatenate([tb.rng.choice(hm.keys, size=(2, T)), too_many_keys, too_many_keys[:2]])
    if len(mixed) > r.max_batch_samples:
        mixed = mixed[: r.max_batch_samples]
    batches = [too_many_keys, good, just_fits, too_many_samples, good, mixed, good]
    for stress in (False, True):
        if stress:
            _random_stress(tb)
        await tb.run_batches(hm, batches, seed)


@cocotb.test()
async def reset_midway(dut):
    """A reset in the middle of a batch; the same batches afterwards are still right
    (the de-dup table keeps its contents through a reset, its batch tag does not)."""
    cfg, seed, tb = _setup(dut)
    await tb.reset()
    bmax, rows = _sizes(cfg)
    batches = [zipf_batch(tb.rng, cfg, bmax, rows, 1.1) for _ in range(2)]
    hm = build_hotmap(tb.rng, cfg, hot_set_from(tb.rng, cfg, batches, 0.3))
    await tb.load_hotmap(hm)
    await tb.run_batches(hm, batches, seed)
    for keys in batches:
        tb.queue_batch(keys)
    total = len(tb._queue)
    while len(tb._queue) > total // 2:
        await RisingEdge(dut.clk)
    tb.abort()
    await tb.reset()
    tb.abort()  # drop anything sampled while reset was going in
    _random_stress(tb)
    await tb.run_batches(hm, batches + batches[:1], seed)


@cocotb.test()
async def full_rate(dut):
    """Without gaps or backpressure, all-hot batches go at one beat per cycle, across batches."""
    cfg, seed, tb = _setup(dut)
    await tb.reset()
    r = cfg.reorder
    bmax, rows = _sizes(cfg)
    hm = build_hotmap(tb.rng, cfg, np.arange(0, 200, 7, dtype=np.uint64))
    await tb.load_hotmap(hm)
    # Epochs 1 .. 2**E-1 before the wipe: this many batches run without one.
    n = min(3, (1 << r.dedupe_epoch_bits) - 2)
    batches = [tb.rng.choice(hm.keys, size=(bmax, r.keys_per_sample)) for _ in range(n)]
    start = len(tb.in_cycles)
    await tb.run_batches(hm, batches, seed)
    acc = tb.in_cycles[start:]
    span = acc[-1] - acc[0] + 1
    assert span == len(acc), f"{len(acc)} beats took {span} cycles (expected one per cycle); seed {seed}"


@cocotb.test(skip=not os.environ.get("HOTLINE_REORDER_BENCH"))
async def bench_throughput(dut):
    """Sustained lookups per cycle on Zipf batches, no gaps or backpressure (for the benchmark):
    the window runs from the first input beat accepted to the last output beat, drain included."""
    cfg, seed, tb = _setup(dut)
    await tb.reset()
    r = cfg.reorder
    params = json.loads(os.environ.get("HOTLINE_REORDER_BENCH_PARAMS", "{}"))
    B = params.get("batch", 64)
    nb = params.get("batches", 6)
    rows = params.get("rows", 1 << cfg.keys.row_bits)
    a = params.get("zipf", 1.2)
    learn = [zipf_batch(tb.rng, cfg, B, rows, a) for _ in range(4)]
    hm = build_hotmap(tb.rng, cfg, hot_set_from(tb.rng, cfg, learn, params.get("fill", 0.9)))
    await tb.load_hotmap(hm)
    batches = [zipf_batch(tb.rng, cfg, B, rows, a) for _ in range(nb)]
    start = len(tb.in_cycles)
    await tb.run_batches(hm, batches, seed)
    acc = tb.in_cycles[start:]
    span = tb.last_out_cycle - acc[0] + 1
    in_span = acc[-1] - acc[0] + 1
    gold = [reorder_batch(cfg, hm, k) for k in batches]
    result = {
        "lanes": r.lanes, "keys_per_sample": r.keys_per_sample, "batches": nb, "batch": B,
        "beats": len(acc), "cycles": span, "input_cycles": in_span,
        "lookups": int(sum(k.size for k in batches)),
        "lookups_per_cycle": sum(k.size for k in batches) / span,
        "beats_per_cycle": len(acc) / span,
        "errors": sum(int(g.status.error) for g in gold),
        "hot_fraction": float(np.mean([g.batch.hot.mean() for g in gold])),
        "cold_unique_per_batch": float(np.mean([g.status.cold for g in gold])),
        "popular_fraction": float(np.mean([g.status.popular / len(k) for g, k in zip(gold, batches)])),
        "hot_keys": len(hm), "seed": seed,
    }
    with open(os.environ["HOTLINE_REORDER_BENCH"], "w") as f:
        json.dump(result, f)
