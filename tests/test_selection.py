"""Hot-set selection methods and the budget sweep, against brute-force definitions."""

from collections import Counter

import numpy as np
import pytest

from hotline.config import HotlineConfig
from hotline.hashing import pack_keys
from hotline.host.popularity import PopularityCounter
from hotline.host.selection import (batch_distinct_keys, budget_rows, evaluate_hot_set, key_ranks,
                                    rank_exact, rank_readout, rank_sketch, select_exact,
                                    select_readout, select_sketch, sweep)


def brute_top(keys, n):
    """Top-n distinct keys by a Counter, count descending then key ascending."""
    counts = Counter(int(k) for k in np.ravel(keys))
    return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:n]


def zipf_samples(rng, n, tables=5, rows=300, s=1.1, cfg=None):
    """[n, tables] packed keys, Zipf-ish per table."""
    cfg = cfg or HotlineConfig()
    p = np.arange(1, rows + 1, dtype=float) ** -s
    r = rng.choice(rows, size=(n, tables), p=p / p.sum())
    t = np.broadcast_to(np.arange(tables), (n, tables))
    return pack_keys(t, r, cfg.keys.row_bits)


def test_select_exact_is_brute_force_top_n(seed):
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 60, size=2000)      # many ties among 60 keys
    for n in (0, 1, 7, 59, 60, 100):
        got = select_exact(keys, n).tolist()
        assert got == brute_top(keys, n)
        assert len(got) == min(n, np.unique(keys).size)


def test_ties_are_by_smaller_key_whatever_the_order(seed):
    rng = np.random.default_rng(seed)
    keys = np.repeat(np.arange(50, dtype=np.uint64) * 7919, 3)     # every key 3 times
    assert rank_exact(rng.permutation(keys)).tolist() == sorted(set(keys.tolist()))
    assert rank_exact(keys[::-1]).tolist() == rank_exact(keys).tolist()


def collision_free_keys(model, n):
    """The first n keys of table 0, 1, ... that hit distinct counters in every sketch row."""
    cfg = model.cfg
    cand = pack_keys(np.repeat(np.arange(3), 200), np.tile(np.arange(200), 3), cfg.keys.row_bits)
    idx = [model.hashes.counter_index(cand, d) for d in range(cfg.counter.depth)]
    used = [set() for _ in idx]
    keep = []
    for i, key in enumerate(cand.tolist()):
        if all(int(ix[i]) not in u for ix, u in zip(idx, used)):
            keep.append(key)
            for ix, u in zip(idx, used):
                u.add(int(ix[i]))
            if len(keep) == n:
                return np.array(keep, dtype=np.uint64)
    raise AssertionError("not enough collision-free keys")


def test_sketch_equals_exact_when_collision_free(seed):
    rng = np.random.default_rng(seed)
    base = HotlineConfig().replace(counter={"log2_counters": 14, "counter_bits": 10, "banks": 8,
                                            "hh_sets": 64, "hh_ways": 4, "threshold": 4})
    for conservative in (True, False):
        cfg = base.replace(counter={"conservative_update": conservative})
        model = PopularityCounter(cfg)
        uniq = collision_free_keys(model, 80)
        p = np.arange(1, uniq.size + 1, dtype=float) ** -1.1
        keys = rng.permutation(np.repeat(uniq, rng.multinomial(3000, p / p.sum())))
        assert Counter(keys.tolist()).most_common(1)[0][1] < cfg.counter.counter_max
        model.learn(keys)
        seen = np.unique(keys)
        assert np.array_equal(model.estimate(seen), np.unique(keys, return_counts=True)[1])
        for n in (1, 10, 50, seen.size, seen.size + 5):
            assert select_sketch(model, seen, n).tolist() == brute_top(keys, n)
        assert rank_sketch(model, keys).tolist() == rank_exact(keys).tolist()


def test_sketch_with_collisions_respects_budget_and_candidates(seed):
    rng = np.random.default_rng(seed)
    cfg = HotlineConfig().replace(counter={"log2_counters": 5, "banks": 2, "hh_sets": 4, "hh_ways": 2,
                                           "counter_bits": 6, "threshold": 3})
    keys = zipf_samples(rng, 500, cfg=cfg).ravel()
    model = PopularityCounter(cfg)
    model.learn(keys)
    cand = np.unique(keys)[::3]
    allowed = set(cand.tolist()) | set(model.readout()[0].tolist())
    for n in (0, 5, 50, 10_000):
        hot = select_sketch(model, cand, n)
        assert hot.size == min(n, len(allowed))
        assert set(hot.tolist()) <= allowed
        assert np.unique(hot).size == hot.size
    # without the readout only the candidates are ranked; ranking follows the estimates
    ranked = rank_sketch(model, cand, include_readout=False)
    assert set(ranked.tolist()) == set(cand.tolist())
    est = model.estimate(ranked)
    assert np.all(np.diff(est) <= 0)
    tie = np.diff(est) == 0
    assert np.all(ranked[1:][tie] > ranked[:-1][tie])


def test_readout_ranking(seed):
    rng = np.random.default_rng(seed)
    cfg = HotlineConfig().replace(counter={"hh_sets": 8, "hh_ways": 2, "banks": 8, "threshold": 2})
    keys = zipf_samples(rng, 2000, cfg=cfg).ravel()
    model = PopularityCounter(cfg)
    model.learn(keys)
    table_keys, counts = model.readout()
    expect = [k for k, _ in sorted(zip(table_keys.tolist(), counts.tolist()), key=lambda kv: (-kv[1], kv[0]))]
    assert rank_readout(model).tolist() == expect
    assert select_readout(model, 3).tolist() == expect[:3]
    assert select_readout(model, 1000).size == len(expect) <= 16


def test_bad_input_errors():
    model = PopularityCounter()
    with pytest.raises(ValueError, match="names table"):
        select_sketch(model, [np.uint64(63) << np.uint64(32)], 4)
    with pytest.raises(ValueError, match="negative"):
        select_exact([-1, 2], 1)
    with pytest.raises(ValueError, match="budget_rows"):
        select_exact([1, 2], -1)
    with pytest.raises(TypeError, match="counter"):
        select_sketch(object(), [1], 1)
    with pytest.raises(ValueError, match="row_bytes"):
        budget_rows(100, 0)
    with pytest.raises(TypeError, match="budget_bytes"):
        budget_rows(True, 4)
    assert budget_rows(2**20, 64) == 16384 and budget_rows(63, 64) == 0
    with pytest.raises(ValueError, match="twice"):
        key_ranks([1, 2, 1], [1])
    with pytest.raises(ValueError, match="sample_keys"):
        sweep(np.arange(5), [1], [1], batch_size=2, row_bytes=4)
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_hot_set(np.ones((2, 2), dtype=np.uint64), [1], batch_size=0, row_bytes=4)


def test_key_ranks():
    ranking = np.array([50, 10, 30], dtype=np.uint64)
    assert key_ranks(ranking, [[10, 99], [50, 30]]).tolist() == [[1, 3], [0, 2]]
    assert key_ranks([], [5, 6]).tolist() == [0, 0]


def test_sweep_equals_direct_evaluation(seed):
    rng = np.random.default_rng(seed)
    samples = zipf_samples(rng, 1000, tables=6, rows=200)
    learn = zipf_samples(rng, 300, tables=6, rows=200)
    ranking = rank_exact(learn)
    budgets = [0, 1, 17, 100, 400, ranking.size, ranking.size + 100]
    cache = batch_distinct_keys(samples, 96)
    for distinct in (None, cache):
        rows = sweep(samples, ranking, budgets, batch_size=96, row_bytes=64, batch_distinct=distinct)
        for b, row in zip(budgets, rows):
            direct = evaluate_hot_set(samples, ranking[:b], batch_size=96, row_bytes=64)
            assert row["budget_rows"] == b
            for field in direct:
                assert row[field] == pytest.approx(direct[field], abs=1e-12), (b, field)
    # nothing hot: every distinct key of a batch is sent; all hot: nothing is
    none = sweep(samples, ranking, [0], batch_size=96, row_bytes=64)[0]
    per_batch = [np.unique(samples[i:i + 96]).size for i in range(0, 1000, 96)]
    assert none["bytes_per_sample"] == pytest.approx(sum(per_batch) * 64 / 1000)
    assert none["popular_fraction"] == 0.0
    full = sweep(samples, rank_exact(samples), [10**6], batch_size=96, row_bytes=64)[0]
    assert full["popular_fraction"] == 1.0 and full["bytes_per_sample"] == 0.0


def test_zipf_law_sweep_matches_simulation(seed):
    from hotline.host.data.synthetic import zipf_ranks
    from hotline.host.selection import zipf_law_sweep
    rng = np.random.default_rng(seed)
    sizes, s, n, batch = (40, 300, 6000), 1.1, 60_000, 256
    ranks = np.stack([zipf_ranks(rng, m, s, n) for m in sizes], axis=1)
    keys = pack_keys(np.broadcast_to(np.arange(len(sizes)), ranks.shape), ranks, 32)
    # every row of every table, most probable first: the law's own ranking
    prob = np.concatenate([np.arange(1, m + 1) ** -s / (np.arange(1, m + 1) ** -s).sum() for m in sizes])
    rows = np.concatenate([pack_keys(np.full(m, t), np.arange(m), 32) for t, m in enumerate(sizes)])
    ranking = rows[np.lexsort((rows, -prob))]
    law = zipf_law_sweep(sizes, s, [0, 10, 100, 1000, 4000, sum(sizes), 10**6], batch_size=batch,
                         row_bytes=64)
    assert [r["hot_rows"] for r in law][-2:] == [sum(sizes)] * 2
    assert all(r["hot_rows"] <= r["budget_rows"] for r in law)
    emp = sweep(keys, ranking, [r["hot_rows"] for r in law], batch_size=batch, row_bytes=64)
    for a, e in zip(law, emp):
        assert a["popular_fraction"] == pytest.approx(e["popular_fraction"], abs=0.01)
        assert a["hot_access_fraction"] == pytest.approx(e["hot_access_fraction"], abs=0.01)
        # cold rows per batch: about Poisson, mean over the batches; 4 sigma plus 2 %
        c, batches = a["cold_rows_per_batch"], -(-n // batch)
        assert c == pytest.approx(e["cold_rows_per_batch"], abs=4 * np.sqrt(c / batches) + 0.02 * c)
    assert law[0]["popular_fraction"] == 0.0 and law[-1]["bytes_per_sample"] == 0.0
    with pytest.raises(ValueError, match="exponent"):
        zipf_law_sweep(sizes, -1.0, [1], batch_size=batch, row_bytes=64)
