"""Tests of the host-side hot-map builder and its golden lookup."""

import os
import random

import numpy as np
import pytest

from hotline.config import ConfigError, HotlineConfig
from hotline.hashing import H3, hotmap_hashes, pack_keys
from hotline.host.hotmap import FastH3, HotMap, HotMapError, entry_bits


def _seed():
    text = os.environ.get("HOTLINE_SEED")
    seed = int(text, 0) if text else random.SystemRandom().randrange(1 << 32)
    print(f"seed {seed} (replay with HOTLINE_SEED={seed})")
    return seed


def small_cfg(log2_buckets=4, ways=2, hashes=2, tables=4, row_bits=12, seed=None):
    kw = dict(keys={"tables": tables, "row_bits": row_bits},
              reorder={"hotmap_log2_buckets": log2_buckets, "hotmap_ways": ways,
                       "hotmap_hashes": hashes})
    cfg = HotlineConfig.from_dict(kw)
    return cfg if seed is None else cfg.replace(hash_seed=seed)


def random_keys(rng, cfg, n):
    """n distinct packed keys of cfg's key space."""
    space = cfg.keys.tables << cfg.keys.row_bits
    return rng.choice(space, size=n, replace=False).astype(np.uint64)


def kuhn_fits(cfg, keys):
    """Independent check: can every key get its own slot in one of its candidate buckets?"""
    r = cfg.reorder
    hs = hotmap_hashes(cfg)
    cands = [[h(int(k)) + i * r.hotmap_buckets for i, h in enumerate(hs)] for k in keys]
    owner = {}  # (bucket, way) -> key index

    def augment(k, seen):
        for b in cands[k]:
            for w in range(r.hotmap_ways):
                if (b, w) in seen:
                    continue
                seen.add((b, w))
                if (b, w) not in owner or augment(owner[(b, w)], seen):
                    owner[(b, w)] = k
                    return True
        return False

    return all(augment(k, set()) for k in range(len(keys)))


def decode(cfg, image):
    """Decode an image word by word from the documented layout (independent of HotMap)."""
    r, kb = cfg.reorder, cfg.keys.key_bits
    way_bits = (r.hotmap_ways - 1).bit_length()
    out = {}
    for addr, word in enumerate(image.tolist()):
        if word & 1:
            h = addr >> (r.hotmap_log2_buckets + way_bits)
            bucket = (addr >> way_bits) & (r.hotmap_buckets - 1)
            key = (word >> 1) & ((1 << kb) - 1)
            slot = word >> (1 + kb)
            out[key] = (h, bucket, slot)
    return out


def assert_lookup_matches(hm, keys, slots, seed):
    hit, got = hm.lookup(keys)
    miss = np.flatnonzero(~hit)
    assert not len(miss), (f"hot key {int(keys[miss[0]]):#x} (position {miss[0]}) not found; "
                           f"seed {seed}")
    bad = np.flatnonzero(got != slots)
    assert not len(bad), (f"key {int(keys[bad[0]]):#x} (position {bad[0]}) -> slot {got[bad[0]]}, "
                          f"expected {slots[bad[0]]}; seed {seed}")


@pytest.mark.parametrize("load", [0.25, 0.6, 0.85], ids=["load25", "load60", "load85"])
@pytest.mark.parametrize("geom", [(6, 4, 2), (5, 2, 3), (4, 1, 4)], ids=["b64w4h2", "b32w2h3", "b16w1h4"])
def test_members_found_nonmembers_not(load, geom):
    seed = _seed()
    rng = np.random.default_rng(seed)
    cfg = small_cfg(*geom, seed=int(rng.integers(1 << 63)))
    n = int(cfg.reorder.hotmap_capacity * load)
    keys = random_keys(rng, cfg, n + 4000)
    hot, others = keys[:n], keys[n:]
    slots = rng.permutation(1 << cfg.reorder.slot_bits)[:n]
    try:
        hm = HotMap.build(cfg, hot, slots)
    except HotMapError:
        # Only allowed when no placement exists at all (checked independently).
        assert not kuhn_fits(cfg, hot), f"build failed on a set that fits; seed {seed}"
        return
    assert len(hm) == n
    assert_lookup_matches(hm, hot, slots, seed)
    hit, slot = hm.lookup(others)
    assert not hit.any(), f"non-member {int(others[np.argmax(hit)]):#x} found; seed {seed}"
    assert not slot.any(), "a miss must return slot 0"
    # The image decodes, by the documented layout, to the same map, each key in its own bucket.
    dec = decode(cfg, hm.image)
    assert len(dec) == n
    hs = hotmap_hashes(cfg)
    for k, s in zip(hot.tolist(), slots.tolist()):
        h, bucket, slot = dec[k]
        assert slot == s and hs[h](k) == bucket, f"key {k:#x} misplaced in the image; seed {seed}"


def test_exact_iff_placement_exists():
    """On tiny tables the builder succeeds exactly when a matching exists, and then drops nothing."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    outcomes = set()
    for trial in range(150):
        cfg = small_cfg(log2_buckets=2, ways=2, hashes=2, seed=int(rng.integers(1 << 63)))
        n = int(rng.integers(6, cfg.reorder.hotmap_capacity + 1))
        keys = random_keys(rng, cfg, n)
        fits = kuhn_fits(cfg, keys)
        try:
            hm = HotMap.build(cfg, keys)
        except HotMapError as exc:
            assert not fits, f"trial {trial}: builder failed but a placement exists; seed {seed}"
            assert "no placement" in str(exc)
            outcomes.add(False)
            continue
        assert fits
        assert_lookup_matches(hm, keys, np.arange(n), seed)
        outcomes.add(True)
    assert outcomes == {True, False}, "the trials should cover both outcomes"


def test_over_capacity():
    cfg = small_cfg()
    keys = random_keys(np.random.default_rng(1), cfg, cfg.reorder.hotmap_capacity + 1)
    with pytest.raises(HotMapError, match=r"exceeds the hot map capacity of 64"):
        HotMap.build(cfg, keys)


def _group_by_buckets(cfg, keys):
    hs = hotmap_hashes(cfg)
    groups = {}
    for k in keys.tolist():
        groups.setdefault(tuple(h(k) for h in hs), []).append(k)
    return groups


def test_cuckoo_failure_same_buckets():
    """More keys sharing both candidate buckets than the two buckets hold."""
    cfg = small_cfg(log2_buckets=3, ways=2)
    keys = random_keys(np.random.default_rng(2), cfg, 8000)
    group = max(_group_by_buckets(cfg, keys).values(), key=len)
    assert len(group) > 2 * cfg.reorder.hotmap_ways
    fits = np.array(group[:2 * cfg.reorder.hotmap_ways], dtype=np.uint64)
    HotMap.build(cfg, fits)  # exactly full buckets are fine
    over = np.array(group[:2 * cfg.reorder.hotmap_ways + 1], dtype=np.uint64)
    with pytest.raises(HotMapError, match=r"reach only 2 buckets \(4 slots\).*no placement"):
        HotMap.build(cfg, over)


def test_cuckoo_failure_three_buckets():
    """Keys on bucket pairs (a, b) and (a, c): 3 buckets hold 3*ways, one more must fail."""
    cfg = small_cfg(log2_buckets=3, ways=2)
    ways = cfg.reorder.hotmap_ways
    keys = random_keys(np.random.default_rng(3), cfg, 12000)
    groups = _group_by_buckets(cfg, keys)
    for (a, b), g1 in groups.items():
        others = [(c, g) for (a2, c), g in groups.items() if a2 == a and c != b and len(g) >= 2 * ways]
        if len(g1) >= 2 * ways and others:
            g2 = others[0][1]
            break
    else:
        pytest.fail("no suitable bucket pairs")
    ok = np.array(g1[:ways + 1] + g2[:2 * ways - 1], dtype=np.uint64)  # 3*ways keys
    hm = HotMap.build(cfg, ok)
    assert hm.lookup(ok)[0].all()
    bad = np.array(g1[:ways + 1] + g2[:2 * ways], dtype=np.uint64)
    with pytest.raises(HotMapError, match=r"reach only 3 buckets"):
        HotMap.build(cfg, bad)


@pytest.mark.parametrize("geom", [(6, 4, 2), (5, 2, 3), (4, 1, 4)], ids=["b64w4h2", "b32w2h3", "b16w1h4"])
def test_find_equals_lookup(geom):
    """The driver's sorted-index ``find`` returns what the image probe ``lookup`` does, on
    members, non-members, neighbours of members (key +- 1), the ends of the key space,
    repeated keys and any array shape, for empty, partly full and loaded-from-image maps."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    cfg = small_cfg(*geom, seed=int(rng.integers(1 << 63)))
    top = (cfg.keys.tables << cfg.keys.row_bits) - 1
    for n in (0, 1, cfg.reorder.hotmap_capacity // 3, cfg.reorder.hotmap_capacity * 3 // 4):
        keys = random_keys(rng, cfg, n)
        slots = rng.permutation(1 << cfg.reorder.slot_bits)[:n]
        try:
            hm = HotMap.build(cfg, keys, slots)
        except HotMapError:
            continue
        for m in (hm, HotMap.from_image(cfg, hm.image)):
            near = np.concatenate([keys, keys + np.uint64(1), np.maximum(keys, 1) - np.uint64(1)])
            query = np.concatenate([near.clip(0, top), random_keys(rng, cfg, 300),
                                    np.array([0, top, top, 0], dtype=np.uint64)])
            query = rng.permutation(np.concatenate([query, query[: len(query) // 2]]))
            query = query[: len(query) // 6 * 6].reshape(-1, 2, 3)
            exp_hit, exp_slot = m.lookup(query)
            got_hit, got_slot = m.find(query)
            assert got_hit.shape == query.shape and got_slot.dtype == np.int64
            for name, got, exp in (("hit", got_hit, exp_hit), ("slot", got_slot, exp_slot)):
                bad = np.argwhere(got != exp)
                assert not len(bad), (f"find {name} differs at {tuple(bad[0])} (key "
                                      f"{int(query[tuple(bad[0])]):#x}), {n} keys; seed {seed}")
    with pytest.raises(ValueError, match=r"past keys.tables"):
        hm.find(np.array([top + 1], dtype=np.uint64))


def test_duplicates_and_bad_input():
    cfg = small_cfg()
    with pytest.raises(HotMapError, match=r"hot_keys has a duplicate: 0x5 at positions 0 and 2"):
        HotMap.build(cfg, np.array([5, 6, 5], dtype=np.uint64))
    with pytest.raises(HotMapError, match=r"slots has a duplicate"):
        HotMap.build(cfg, np.array([5, 6], dtype=np.uint64), slots=[1, 1])
    with pytest.raises(ValueError, match=r"slot 64 is outside"):
        HotMap.build(cfg, np.array([5, 6], dtype=np.uint64), slots=[0, 64])
    with pytest.raises(ValueError, match=r"slots has shape"):
        HotMap.build(cfg, np.array([5, 6], dtype=np.uint64), slots=[0])
    with pytest.raises(ValueError, match=r"table 4 is past keys.tables 4"):
        HotMap.build(cfg, pack_keys([4], [0], cfg.keys.row_bits))
    with pytest.raises(ValueError, match=r"negative key"):
        HotMap.build(cfg, np.array([-1, 2]))
    with pytest.raises(TypeError, match=r"integer array"):
        HotMap.build(cfg, np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"HotlineConfig"):
        HotMap.build({"reorder": {}}, np.array([1]))
    hm = HotMap.build(cfg, np.array([7], dtype=np.uint64))
    with pytest.raises(ValueError, match=r"past keys.tables"):
        hm.lookup(np.array([1 << 20], dtype=np.uint64))


def test_empty_set_and_shapes():
    cfg = small_cfg()
    hm = HotMap.build(cfg, np.zeros(0, dtype=np.uint64))
    assert len(hm) == 0 and not hm.image.any()
    hit, slot = hm.lookup(np.zeros((3, 5), dtype=np.uint64))  # key 0 is not in the map
    assert hit.shape == (3, 5) and not hit.any()
    hm = HotMap.build(cfg, np.array([0, 9], dtype=np.uint64), slots=[3, 4])
    hit, slot = hm.lookup(np.array([[0, 1], [9, 0]], dtype=np.uint64))
    assert hit.tolist() == [[True, False], [True, True]]
    assert slot.tolist() == [[3, 0], [4, 3]]
    assert 9 in hm and 8 not in hm


def test_from_image_roundtrip_and_checks():
    seed = _seed()
    rng = np.random.default_rng(seed)
    cfg = small_cfg(seed=int(rng.integers(1 << 63)))
    keys = random_keys(rng, cfg, 40)
    hm = HotMap.build(cfg, keys)
    hm2 = HotMap.from_image(cfg, hm.image)
    assert_lookup_matches(hm2, keys, np.arange(40), seed)
    # Move a word into an empty slot of a bucket that is not its own: now misplaced.
    hs = hotmap_hashes(cfg)
    way_bits = (cfg.reorder.hotmap_ways - 1).bit_length()
    img = hm.image.copy()
    a = int(np.flatnonzero(img & np.uint64(1))[0])
    key = (int(img[a]) >> 1) & ((1 << cfg.keys.key_bits) - 1)
    own = {(h << cfg.reorder.hotmap_log2_buckets) | f(key) for h, f in enumerate(hs)}
    b = next(i for i in range(len(img)) if img[i] == 0 and (i >> way_bits) not in own)
    img[b], img[a] = img[a], img[b]
    with pytest.raises(ValueError, match=r"not in its hash-"):
        HotMap.from_image(cfg, img)
    with pytest.raises(ValueError, match=r"has shape"):
        HotMap.from_image(cfg, hm.image[:-1])


def test_entry_width_limit():
    cfg = HotlineConfig.from_dict({"keys": {"tables": 64, "row_bits": 32},
                                   "reorder": {"hotmap_log2_buckets": 24, "hotmap_ways": 16,
                                               "hotmap_hashes": 4}})
    assert entry_bits(cfg) > 64
    with pytest.raises(ConfigError, match=r"more than the 64"):
        HotMap.build(cfg, np.zeros(0, dtype=np.uint64))


def test_config_checks():
    with pytest.raises(ConfigError, match=r"reorder.hotmap_ways must be a power of two"):
        HotlineConfig.from_dict({"reorder": {"hotmap_ways": 3}})
    with pytest.raises(ConfigError, match=r"reorder.dedupe_ways"):
        HotlineConfig.from_dict({"reorder": {"dedupe_ways": 6}})
    r = HotlineConfig.from_dict({"reorder": {"max_batch_keys": 4, "lanes": 8}}).reorder
    assert r.dedupe_slots >= 4 + 8 and r.dedupe_slots >= 2 * 4


def test_fast_h3_equals_h3():
    seed = _seed()
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 1 << 38, size=5000, dtype=np.uint64)
    hs = [H3.from_seed(38, bits, seed, f"t{bits}") for bits in (1, 10, 21)]
    for h, got in zip(hs, FastH3(hs)(keys)):
        assert np.array_equal(got, h.numpy(keys)), f"FastH3 differs; seed {seed}"


def test_default_config_build_is_fast_enough():
    """The default map (8192 slots) at 90 % load builds and finds everything."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    cfg = HotlineConfig()
    n = int(cfg.reorder.hotmap_capacity * 0.9)
    keys = random_keys(rng, cfg, n)
    hm = HotMap.build(cfg, keys)
    assert_lookup_matches(hm, keys, np.arange(n), seed)


def test_rtl_lookup_matches_golden():
    """The RTL lookup (Amaranth simulator) against HotMap.lookup, with request gaps and
    response backpressure; the latency is not assumed, only the order."""
    from amaranth.sim import Simulator
    from hotline.rtl.hotmap import HotMapLookup

    seed = _seed()
    rng = np.random.default_rng(seed)
    cfg = small_cfg(log2_buckets=3, ways=2, hashes=3, seed=int(rng.integers(1 << 63)))
    cfg = cfg.replace(reorder={"lanes": 3})
    keys = random_keys(rng, cfg, 40)
    hm = HotMap.build(cfg, keys, rng.permutation(1 << cfg.reorder.slot_bits)[:40])
    W = cfg.reorder.lanes
    queries = rng.choice(np.concatenate([keys, random_keys(rng, cfg, 60)]), size=(60, W))
    exp_hit, exp_slot = hm.lookup(queries)
    dut = HotMapLookup(cfg)
    got = []

    async def bench(ctx):
        for addr, word in enumerate(hm.image.tolist()):
            ctx.set(dut.load.payload.addr, addr)
            ctx.set(dut.load.payload.data.as_value(), word)  # the raw image word
            ctx.set(dut.load.valid, 1)
            await ctx.tick()
        ctx.set(dut.load.valid, 0)
        sent = 0
        while len(got) < len(queries):
            if sent < len(queries) and rng.random() < 0.7:
                ctx.set(dut.req.valid, 1)
                ctx.set(dut.req.payload, [int(k) for k in queries[sent]])
            else:
                ctx.set(dut.req.valid, 0)
            ready = rng.random() < 0.6
            ctx.set(dut.resp.ready, ready)
            req_fire = ctx.get(dut.req.valid) and ctx.get(dut.req.ready)
            if ready and ctx.get(dut.resp.valid):
                got.append([(r["hit"], r["slot"]) for r in ctx.get(dut.resp.payload)])
            await ctx.tick()
            sent += bool(req_fire)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for i, row in enumerate(got):
        for lane, (hit, slot) in enumerate(row):
            assert (hit, slot) == (int(exp_hit[i, lane]), int(exp_slot[i, lane])), (
                f"request {i} lane {lane} key {int(queries[i, lane]):#x}: rtl ({hit}, {slot}), "
                f"golden ({int(exp_hit[i, lane])}, {int(exp_slot[i, lane])}); seed {seed}")
