"""Tests of the reorder golden model against a plain per-key reference."""

import os
import random

import numpy as np
import pytest

from hotline.config import HotlineConfig
from hotline.host.hotmap import HotMap
from hotline.host.reorder import (BatchOverflow, classify, dedupe_first_occurrence,
                                  reorder_batch)


def _seed():
    text = os.environ.get("HOTLINE_SEED")
    seed = int(text, 0) if text else random.SystemRandom().randrange(1 << 32)
    print(f"seed {seed} (replay with HOTLINE_SEED={seed})")
    return seed


def make_cfg(T=5, max_keys=64, max_samples=32, tables=6, row_bits=10):
    return HotlineConfig.from_dict({
        "keys": {"tables": tables, "row_bits": row_bits},
        "reorder": {"keys_per_sample": T, "hotmap_log2_buckets": 5, "hotmap_ways": 4,
                    "max_batch_keys": max_keys, "max_batch_samples": max_samples}})


def zipf_batch(rng, cfg, B, rows=300, a=1.3):
    T = cfg.reorder.keys_per_sample
    rows_ = np.minimum(rng.zipf(a, size=(B, T)) - 1, rows - 1)
    tables = np.arange(T)[None, :] % cfg.keys.tables
    return (tables.astype(np.uint64) << np.uint64(cfg.keys.row_bits)) | rows_.astype(np.uint64)


def reference(hot_slot: dict, keys, max_keys=None, max_samples=None):
    """Sequential key-by-key model: the definition in the issue, with the overflow rule."""
    B, T = keys.shape
    hot = np.zeros((B, T), bool)
    index = np.zeros((B, T), np.int64)
    seen, cold = {}, []
    pop, non = [], []
    key_of, samp_of = False, max_samples is not None and B > max_samples
    for s in range(B):
        if max_samples is not None and s >= max_samples:
            break
        stop = False
        for t in range(T):
            k = int(keys[s, t])
            if k in hot_slot:
                hot[s, t], index[s, t] = True, hot_slot[k]
            else:
                if k not in seen:
                    if max_keys is not None and len(seen) == max_keys:
                        key_of = stop = True
                        break
                    seen[k] = len(seen)
                    cold.append(k)
                index[s, t] = seen[k]
        if stop:
            break
        (pop if hot[s].all() else non).append(s)
    return dict(popular=pop, non_popular=non, hot=hot, index=index, cold=cold,
                key_overflow=key_of, sample_overflow=samp_of)


def first_diff(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    d = np.argwhere(a != b)
    return None if not len(d) else f"at {tuple(d[0])}: got {a[tuple(d[0])]}, expected {b[tuple(d[0])]}"


def check_classified(cb, ref, seed, rows=None):
    rows = slice(None) if rows is None else rows
    for name, got, exp in (("popular", cb.popular, ref["popular"]),
                           ("non_popular", cb.non_popular, ref["non_popular"]),
                           ("hot", cb.hot[rows], ref["hot"][rows]),
                           ("index", cb.index[rows], ref["index"][rows]),
                           ("cold_keys", cb.cold_keys.astype(np.int64), np.array(ref["cold"], np.int64))):
        diff = first_diff(got, exp)
        assert diff is None, f"{name} mismatch {diff}; seed {seed}"


@pytest.mark.parametrize("T", [1, 3, 26])
def test_classify_random_zipf(T):
    seed = _seed()
    rng = np.random.default_rng(seed)
    cfg = make_cfg(T=T, max_keys=4096, max_samples=256, tables=26)
    for trial in range(4):
        B = int(rng.integers(1, 200))
        keys = zipf_batch(rng, cfg, B, a=float(rng.uniform(1.1, 2.5)))
        uniq = np.unique(keys)
        hot_keys = rng.permutation(uniq)[: min(len(uniq) * 3 // 4, 200)]
        slots = rng.permutation(256)[: len(hot_keys)]
        hm = HotMap.build(cfg, hot_keys, slots)
        cb = classify(cfg, hm, keys)
        ref = reference(dict(zip(hot_keys.tolist(), slots.tolist())), keys)
        check_classified(cb, ref, seed)
        assert cb.popular.dtype == np.int64 and cb.index.dtype == np.int64
        assert cb.cold_keys.dtype == np.uint64 and cb.hot.dtype == bool


def test_all_hot_all_cold_and_last_key_cold():
    seed = _seed()
    rng = np.random.default_rng(seed)
    cfg = make_cfg(T=4, max_keys=256)
    keys = zipf_batch(rng, cfg, 20)
    uniq = np.unique(keys)
    hm = HotMap.build(cfg, uniq)
    cb = classify(cfg, hm, keys)
    assert cb.popular.tolist() == list(range(20)) and len(cb.cold_keys) == 0
    cb = classify(cfg, HotMap.build(cfg, np.zeros(0, np.uint64)), keys)
    assert cb.non_popular.tolist() == list(range(20)) and not cb.hot.any()
    assert len(cb.cold_keys) == len(uniq)
    # Every sample hot but its last key, which is a fresh cold key.
    keys2 = keys.copy()
    keys2[:, -1] = (np.uint64(5) << np.uint64(cfg.keys.row_bits)) | np.arange(20, dtype=np.uint64) + np.uint64(500)
    hot = np.unique(keys2[:, :-1])
    cb = classify(cfg, HotMap.build(cfg, hot), keys2)
    assert len(cb.popular) == 0 and cb.index[:, -1].tolist() == list(range(20))
    check_classified(cb, reference({int(k): i for i, k in enumerate(hot)}, keys2), seed)


def test_heavy_repetition():
    cfg = make_cfg(T=5)
    keys = np.array([[7, 7, 7, 3, 7], [3, 3, 9, 7, 9], [9, 7, 3, 1, 1]], dtype=np.uint64)
    cb = classify(cfg, HotMap.build(cfg, np.array([1], np.uint64), [42]), keys)
    assert cb.cold_keys.tolist() == [7, 3, 9]
    assert cb.index.tolist() == [[0, 0, 0, 1, 0], [1, 1, 2, 0, 2], [2, 0, 1, 42, 42]]
    assert cb.hot[2].tolist() == [False, False, False, True, True]


def test_overflow_errors_and_hardware_model():
    seed = _seed()
    rng = np.random.default_rng(seed)
    cfg = make_cfg(T=3, max_keys=8, max_samples=16)
    hm = HotMap.build(cfg, np.array([1, 2, 3], np.uint64))
    hot = {1: 0, 2: 1, 3: 2}
    # Too many distinct cold keys.
    keys = rng.integers(1, 40, size=(10, 3)).astype(np.uint64)
    n_cold = len(set(keys.reshape(-1).tolist()) - set(hot))
    assert n_cold > 8
    with pytest.raises(BatchOverflow) as info:
        classify(cfg, hm, keys)
    assert info.value.unique_cold == n_cold and info.value.max_batch_keys == 8
    res = reorder_batch(cfg, hm, keys)
    ref = reference(hot, keys, max_keys=8, max_samples=16)
    n = len(ref["popular"]) + len(ref["non_popular"])
    check_classified(res.batch, ref, seed, rows=slice(0, n))
    assert res.status.key_overflow and not res.status.sample_overflow
    assert res.status.cold == 8 and res.status.popular + res.status.non_popular == n
    # Too many samples (no key overflow).
    keys = np.ones((20, 3), np.uint64)
    with pytest.raises(BatchOverflow) as info:
        classify(cfg, hm, keys)
    assert info.value.samples == 20 and info.value.max_batch_samples == 16
    res = reorder_batch(cfg, hm, keys)
    assert res.status.sample_overflow and not res.status.key_overflow
    assert res.status.popular == 16 and res.batch.popular.tolist() == list(range(16))
    # Both: cold keys overflow only after the sample limit -> only the sample flag.
    keys = np.full((20, 3), 1, np.uint64)
    keys[17:, :] = np.arange(100, 109, dtype=np.uint64).reshape(3, 3)
    res = reorder_batch(cfg, hm, keys)
    assert res.status.sample_overflow and not res.status.key_overflow and res.status.cold == 0
    # An exactly full batch is fine.
    keys = np.arange(100, 124, dtype=np.uint64).reshape(8, 3)
    keys[:, 1:] = 1
    cb = classify(cfg, hm, keys)
    assert len(cb.cold_keys) == 8


def test_random_overflow_against_reference():
    seed = _seed()
    rng = np.random.default_rng(seed)
    for trial in range(30):
        T = int(rng.integers(1, 6))
        cfg = make_cfg(T=T, max_keys=int(2 ** rng.integers(0, 6)), max_samples=int(2 ** rng.integers(0, 6)))
        B = int(rng.integers(1, 50))
        keys = rng.integers(0, 60, size=(B, T)).astype(np.uint64)
        hot_keys = rng.permutation(60)[: int(rng.integers(0, 60))].astype(np.uint64)
        hm = HotMap.build(cfg, hot_keys)
        res = reorder_batch(cfg, hm, keys)
        ref = reference({int(k): i for i, k in enumerate(hot_keys)}, keys,
                        cfg.reorder.max_batch_keys, cfg.reorder.max_batch_samples)
        n = len(ref["popular"]) + len(ref["non_popular"])
        check_classified(res.batch, ref, seed, rows=slice(0, n))
        st = res.status
        assert (st.key_overflow, st.sample_overflow) == (ref["key_overflow"], ref["sample_overflow"]), \
            f"trial {trial}: flags; seed {seed}"
        assert st.cold == len(ref["cold"]) and st.popular == len(ref["popular"])
        if not st.error:
            check_classified(classify(cfg, hm, keys), ref, seed)


def test_bad_input():
    cfg = make_cfg(T=3)
    hm = HotMap.build(cfg, np.array([1], np.uint64))
    with pytest.raises(ValueError, match=r"keys_per_sample=3"):
        classify(cfg, hm, np.zeros((4, 2), np.uint64))
    with pytest.raises(ValueError, match=r"keys_per_sample=3"):
        classify(cfg, hm, np.zeros(3, np.uint64))
    with pytest.raises(TypeError, match=r"integer array"):
        classify(cfg, hm, np.zeros((4, 3), np.float32))
    with pytest.raises(TypeError, match=r"HotMap"):
        classify(cfg, {1: 0}, np.zeros((4, 3), np.uint64))
    with pytest.raises(ValueError, match=r"different keys/hash_seed"):
        classify(cfg.replace(hash_seed=1), hm, np.zeros((4, 3), np.uint64))
    with pytest.raises(ValueError, match=r"past keys.tables"):
        classify(cfg, hm, np.full((4, 3), 1 << 40, np.uint64))
    cb = classify(cfg, hm, np.zeros((0, 3), np.uint64))
    assert len(cb.popular) == 0 and len(cb.cold_keys) == 0


def test_dedupe_both_paths():
    seed = _seed()
    rng = np.random.default_rng(seed)
    for hi in (50, 1 << 63):  # small values take the packed sort, huge ones the argsort
        vals = rng.integers(0, 40, size=1000).astype(np.uint64) * np.uint64(hi // 40 or 1)
        u, first = dedupe_first_occurrence(vals)
        seen = {}
        exp = [seen.setdefault(v, len(seen)) for v in vals.tolist()]
        assert u.tolist() == exp, f"seed {seed}"
        assert vals[first].tolist() == list(seen)
