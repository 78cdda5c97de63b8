"""The counter array's golden model against a plain per-key reference written from the spec."""

import numpy as np
import pytest

from hotline.config import HotlineConfig
from hotline.hashing import H3
from hotline.host.popularity import PopularityCounter


class Reference:
    """The contract of the design brief, one key at a time, with scalar hashes."""

    def __init__(self, cfg):
        c, k = cfg.counter, cfg.keys
        self.c = c
        seed = cfg.hash_seed
        self.bank = H3.from_seed(k.key_bits, c.bank_bits, seed, "counter.bank")
        self.rows = [H3.from_seed(k.key_bits, c.log2_counters - c.bank_bits, seed, f"counter.row{d}")
                     for d in range(c.depth)]
        self.hh_set = H3.from_seed(k.key_bits, c.hh_set_bits - c.bank_bits, seed, "counter.hh_set")
        self.counters = [[0] * c.counters for _ in range(c.depth)]
        self.ways = [[None] * c.hh_ways for _ in range(c.hh_sets)]
        self.counts = [[0] * c.hh_ways for _ in range(c.hh_sets)]

    def index(self, key, d):
        return (self.bank(key) << (self.c.log2_counters - self.c.bank_bits)) | self.rows[d](key)

    def update(self, key):
        idx = [self.index(key, d) for d in range(self.c.depth)]
        if self.c.conservative_update:
            # raise only the counters below the new estimate
            est = min(min(self.counters[d][i] for d, i in enumerate(idx)) + 1, self.c.counter_max)
            for d, i in enumerate(idx):
                self.counters[d][i] = max(self.counters[d][i], est)
        else:
            for d, i in enumerate(idx):
                self.counters[d][i] = min(self.counters[d][i] + 1, self.c.counter_max)
            est = min(self.counters[d][i] for d, i in enumerate(idx))
        s = (self.bank(key) << (self.c.hh_set_bits - self.c.bank_bits)) | self.hh_set(key)
        ways, counts = self.ways[s], self.counts[s]
        if key in ways:
            counts[ways.index(key)] = est
        elif est >= self.c.threshold:
            free = [w for w in range(len(ways)) if ways[w] is None]
            if free:
                w = free[0]
            else:
                w = min(range(len(ways)), key=lambda w: (counts[w], w))
                if counts[w] >= est:
                    return
            ways[w], counts[w] = key, est

    def estimate(self, key):
        return min(self.counters[d][self.index(key, d)] for d in range(self.c.depth))


def small_cfg(**counter):
    base = dict(lanes=2, depth=2, log2_counters=6, counter_bits=8, banks=2, hh_sets=8, hh_ways=2,
                threshold=3, fifo_depth=4, conservative_update=False)
    base.update(counter)
    return HotlineConfig().replace(keys={"tables": 4, "row_bits": 12}, counter=base)


def zipf_keys(rng, n, tables=4, rows=300, a=1.2):
    t = rng.integers(0, tables, n).astype(np.uint64)
    r = (rng.zipf(a, n) % rows).astype(np.uint64)
    return (t << np.uint64(12)) | r


def assert_same(model, ref, keys_seen, seed):
    assert np.array_equal(model.counters, np.array(ref.counters)), f"seed {seed}: counters differ"
    valid, keys, counts = model.table()
    for s in range(len(ref.ways)):
        for w in range(len(ref.ways[s])):
            exp_key = ref.ways[s][w]
            got = (int(keys[s, w]), int(counts[s, w])) if valid[s, w] else None
            exp = None if exp_key is None else (exp_key, ref.counts[s][w])
            assert got == exp, f"seed {seed}: heavy-hitter set {s} way {w}: got {got}, expected {exp}"
    probe = np.unique(np.asarray(keys_seen, dtype=np.uint64))
    assert model.estimate(probe).tolist() == [ref.estimate(int(k)) for k in probe]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("cfg_kw", [
    {}, {"depth": 1, "banks": 1}, {"counter_bits": 3, "threshold": 2},
    {"hh_ways": 4, "hh_sets": 4, "banks": 4, "depth": 4},
    {"conservative_update": True}, {"conservative_update": True, "counter_bits": 3, "threshold": 2},
    {"conservative_update": True, "depth": 4, "log2_counters": 4, "banks": 2},
], ids=["plain", "d1", "saturating", "d4", "cu", "cu-saturating", "cu-collisions"])
def test_matches_reference_on_zipf(seed, cfg_kw):
    cfg = small_cfg(**cfg_kw)
    rng = np.random.default_rng(seed)
    keys = zipf_keys(rng, 4000)
    model, ref = PopularityCounter(cfg), Reference(cfg)
    # uneven chunks (some large, some tiny): results must not depend on how the stream is cut
    cuts = np.sort(np.concatenate([rng.integers(0, keys.size, 9), rng.integers(0, 200, 6)]))
    for chunk in np.split(keys, cuts):
        model.learn(chunk)
    for k in keys.tolist():
        ref.update(k)
    assert model.keys_learned == keys.size
    assert_same(model, ref, keys, seed)


@pytest.mark.parametrize("cu", [False, True])
def test_one_repeated_key_saturates(cu):
    cfg = small_cfg(counter_bits=4, threshold=5, conservative_update=cu)
    model = PopularityCounter(cfg)
    key = np.uint64((2 << 12) | 77)
    model.learn(np.full(100, key))
    assert model.estimate([key]).tolist() == [15]
    keys, counts = model.readout()
    assert keys.tolist() == [int(key)] and counts.tolist() == [15]


def test_below_threshold_not_admitted_and_clear():
    cfg = small_cfg(threshold=4)
    model = PopularityCounter(cfg)
    model.learn([5, 5, 5])
    assert model.readout()[0].size == 0
    model.learn([5])
    assert model.readout()[0].tolist() == [5]
    model.clear()
    assert model.readout()[0].size == 0 and not model.counters.any()
    assert model.estimate([5]).tolist() == [0]


def test_eviction_of_smallest_count():
    cfg = small_cfg(hh_sets=2, banks=1, hh_ways=2, threshold=1, log2_counters=10, depth=4)
    model, ref = PopularityCounter(cfg), Reference(cfg)
    # keys that share one heavy-hitter set force admissions into a full set
    same_set = [k for k in range(4096) if ref.hh_set(k) == 0][:6]
    stream = [same_set[0]] * 5 + [same_set[1]] * 2 + [same_set[2]] * 3 + [same_set[3]] + same_set[4:] * 4
    model.learn(stream)
    for k in stream:
        ref.update(k)
    assert_same(model, ref, stream, "fixed")
    keys, counts = model.readout()
    assert same_set[0] in keys.tolist()          # the heaviest key survives
    assert same_set[1] not in keys.tolist()      # the smallest count was evicted


def test_conservative_update_is_tighter():
    """Conservative update never overestimates more than plain count-min, and is exact for a lone key."""
    rng = np.random.default_rng(11)
    keys = zipf_keys(rng, 5000)
    plain = PopularityCounter(small_cfg(log2_counters=6, depth=2, counter_bits=16))
    cu = PopularityCounter(small_cfg(log2_counters=6, depth=2, counter_bits=16, conservative_update=True))
    plain.learn(keys)
    cu.learn(keys)
    uniq, true = np.unique(keys, return_counts=True)
    e_plain, e_cu = plain.estimate(uniq), cu.estimate(uniq)
    assert (e_cu >= true).all() and (e_cu <= e_plain).all() and e_cu.sum() < e_plain.sum()


def test_hot_set_budget_and_candidates():
    cfg = small_cfg(hh_sets=8, hh_ways=2, threshold=1, log2_counters=10, depth=4, counter_bits=16)
    model = PopularityCounter(cfg)
    rng = np.random.default_rng(4)
    keys = zipf_keys(rng, 20000)
    model.learn(keys)
    hot = model.hot_set(budget_bytes=10 * 64, row_bytes=64)
    assert hot.size == 10
    cnt = dict(zip(*model.readout()))
    vals = [cnt[k] for k in hot.tolist()]
    assert vals == sorted(vals, reverse=True)
    # ranking by estimates over candidates can exceed the table's capacity
    many = model.hot_set(budget_bytes=100 * 64, row_bytes=64, candidates=keys)
    assert many.size == 100 and len(set(many.tolist())) == 100
    est = model.estimate(many)
    assert (np.diff(est) <= 0).all()
    assert model.hot_set(0, 64).size == 0
    with pytest.raises(ValueError, match="row_bytes must be a positive integer"):
        model.hot_set(100, 0)
    with pytest.raises(ValueError, match="budget_bytes must be a non-negative integer"):
        model.hot_set(-1, 64)


def test_rejects_bad_keys():
    model = PopularityCounter(small_cfg())
    with pytest.raises(ValueError, match="names table 4, but there are 4 tables"):
        model.learn([4 << 12])
    with pytest.raises(ValueError, match="negative"):
        model.learn(np.array([-1]))
    with pytest.raises(TypeError, match="must be integers"):
        model.learn(np.array([1.5]))
    with pytest.raises(TypeError, match="HotlineConfig"):
        PopularityCounter({"lanes": 2})
    assert model.keys_learned == 0 and not model.counters.any()


def test_state_round_trip():
    cfg = small_cfg(conservative_update=True)
    rng = np.random.default_rng(5)
    first, second = zipf_keys(rng, 3000), zipf_keys(rng, 3000)
    a = PopularityCounter(cfg)
    a.learn(first)
    saved = a.state_dict()
    b = PopularityCounter(cfg)
    b.load_state_dict(saved)
    a.learn(second)
    b.learn(second)
    for x, y in zip(a.table(), b.table()):
        assert np.array_equal(x, y)
    assert np.array_equal(a.counters, b.counters) and a.keys_learned == b.keys_learned
    with pytest.raises(ValueError, match="does not match the config"):
        PopularityCounter(small_cfg(log2_counters=7)).load_state_dict(saved)
