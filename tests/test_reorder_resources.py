"""Block-RAM budget of the reorder unit at the ecp5-85f default sizes."""

from hotline.config import HotlineConfig
from hotline.fpga.resources import ECP5_85F_BLOCKS, ecp5_bram_blocks, reorder_blocks, reorder_memories


def test_reorder_defaults_fit_the_ecp5_budget():
    cfg = HotlineConfig()
    r = cfg.reorder
    assert (r.max_batch_keys, r.max_batch_samples, r.lanes, r.keys_per_sample) == (4096, 1024, 4, 26)
    est = reorder_blocks(cfg)
    # The unit's share of the chip: at most 64 of the 208 DP16KD.
    assert est["blocks"] <= 64 < ECP5_85F_BLOCKS and est["fits_ecp5_85f"]
    names = [name for name, *_ in reorder_memories(cfg)]
    assert names[:4] == ["hot-map table copy", "de-dup table", "beat queue", "cold-beat queue"]
    # One read-only copy of each hash table per lane.
    assert reorder_memories(cfg)[0][1] == r.hotmap_hashes * r.lanes


def test_reorder_memories_follow_the_config():
    small = HotlineConfig.from_dict({"keys": {"tables": 4, "row_bits": 10},
                                     "reorder": {"lanes": 2, "keys_per_sample": 3, "hotmap_log2_buckets": 3,
                                                 "max_batch_keys": 32, "dedupe_queue": 64}})
    mems = {name: (count, depth, width) for name, count, depth, width in reorder_memories(small)}
    r, K = small.reorder, small.keys.key_bits
    assert mems["de-dup table"] == (1, r.dedupe_buckets, r.dedupe_ways * (r.dedupe_epoch_bits + K + r.u_bits))
    assert mems["hot-map table copy"] == (r.hotmap_hashes * 2, 8, r.hotmap_ways * (1 + K + r.slot_bits))
    assert mems["beat queue"][1] == mems["cold-beat queue"][1] == 64
    assert reorder_blocks(small)["blocks"] < reorder_blocks(HotlineConfig())["blocks"]


def test_true_dual_port_shapes():
    assert ecp5_bram_blocks(512, 36) == 1
    assert ecp5_bram_blocks(512, 36, true_dual_port=True) == 2
