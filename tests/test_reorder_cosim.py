"""Cosimulation of the reorder unit (Verilator + cocotb) against the golden model."""

import pytest

from hotline.config import HotlineConfig
from hotline.testbench.runner import run_bench

# Small hot maps so loading is quick; small batch limits so overflow is easy to reach;
# a 2-bit batch tag so the de-dup table wipe happens every 3 batches.
PARAMS = {
    "w1_t3": dict(keys={"tables": 4, "row_bits": 10},
                  reorder={"lanes": 1, "keys_per_sample": 3, "hotmap_log2_buckets": 3,
                           "hotmap_ways": 2, "hotmap_hashes": 3, "max_batch_keys": 32,
                           "max_batch_samples": 32, "dedupe_ways": 1, "dedupe_epoch_bits": 2,
                           "sample_buffer": 2}),
    "w4_t26": dict(keys={"tables": 26, "row_bits": 10},
                   reorder={"lanes": 4, "keys_per_sample": 26, "hotmap_log2_buckets": 4,
                            "hotmap_ways": 4, "hotmap_hashes": 2, "max_batch_keys": 256,
                            "max_batch_samples": 32, "dedupe_ways": 4, "dedupe_epoch_bits": 2,
                            "sample_buffer": 3}),
    "w4_t1": dict(keys={"tables": 2, "row_bits": 12},
                  reorder={"lanes": 4, "keys_per_sample": 1, "hotmap_log2_buckets": 3,
                           "hotmap_ways": 1, "hotmap_hashes": 4, "max_batch_keys": 16,
                           "max_batch_samples": 64, "dedupe_ways": 2, "dedupe_epoch_bits": 2,
                           "sample_buffer": 4}),
}


@pytest.mark.cosim
@pytest.mark.parametrize("name", list(PARAMS), ids=list(PARAMS))
def test_reorder_cosim(name):
    cfg = HotlineConfig.from_dict(PARAMS[name])
    run_bench("reorder", cfg, "hotline.testbench.reorder_tb", f"reorder_{name}")


@pytest.mark.parametrize("reorder", [
    {"lanes": 3, "keys_per_sample": 7, "dedupe_ways": 1, "max_batch_keys": 1, "max_batch_samples": 1,
     "hotmap_log2_buckets": 2, "hotmap_ways": 1, "hotmap_hashes": 3, "sample_buffer": 1},
    {"lanes": 1, "keys_per_sample": 1, "hotmap_log2_buckets": 1, "max_batch_keys": 2},
    {"lanes": 8, "keys_per_sample": 5, "hotmap_hashes": 4, "hotmap_ways": 8, "dedupe_ways": 16,
     "hotmap_log2_buckets": 2, "max_batch_keys": 8, "dedupe_epoch_bits": 16},
], ids=["w3_t7_tiny", "w1_t1", "w8_t5"])
def test_reorder_elaborates(reorder):
    """Odd sizes (one-slot limits, more lanes than keys, wide buckets) convert to Verilog
    with the documented ports."""
    from hotline.rtl import unit_verilog
    cfg = HotlineConfig.from_dict({"keys": {"tables": 3, "row_bits": 6}, "reorder": reorder})
    text = unit_verilog("reorder", cfg)
    for port in ("keys_valid", "keys_ready", "keys_payload", "popular_payload", "non_popular_valid",
                 "cold_payload", "status_payload", "load_payload", "load_ready", "clk", "rst"):
        assert port in text, port


def test_reorder_rejects_bad_config():
    from hotline.rtl.reorder import ReorderUnit
    with pytest.raises(TypeError, match=r"cfg must be a HotlineConfig"):
        ReorderUnit({"reorder": {}})
