"""Block-RAM estimates used to size configs for an ECP5-85F."""

import pytest

from hotline.config import HotlineConfig
from hotline.fpga.resources import counter_array_blocks, ecp5_bram_blocks


@pytest.mark.parametrize("depth, width, blocks", [
    (16384, 1, 1), (1024, 18, 1), (512, 36, 1), (2048, 9, 1),   # the native shapes
    (1024, 19, 2), (4096, 16, 4), (8192, 9, 4), (100, 100, 3), (1, 1, 1),
])
def test_ecp5_tiling(depth, width, blocks):
    assert ecp5_bram_blocks(depth, width) == blocks


def test_counter_array_bits_match_sizes():
    cfg = HotlineConfig().replace(counter={"log2_counters": 10, "depth": 2, "counter_bits": 8,
                                           "banks": 2, "hh_sets": 16, "hh_ways": 2})
    est = counter_array_blocks(cfg)
    entry = 1 + cfg.keys.key_bits + 8
    assert est["bits"] == 2 * 1024 * 8 + 16 * 2 * entry
    with pytest.raises(ValueError):
        ecp5_bram_blocks(0, 4)


def test_counter_memories_match_the_rtl():
    """The memory list names the RTL's memories with their real widths; defaults fit 64 blocks."""
    from amaranth.lib import data

    from hotline.fpga.resources import counter_array_memories
    from hotline.rtl.popularity import CounterLayouts
    cfg = HotlineConfig()
    L = CounterLayouts(cfg)
    mems = {name: (count, depth, width, prim)
            for name, count, depth, width, prim in counter_array_memories(cfg)}
    c = cfg.counter
    assert mems["bank beat queue"] == (c.banks, c.fifo_depth, data.Layout.cast(L.beat).size,
                                       "LUTRAM")
    assert mems["heavy-hitter bank"][2] == data.Layout.cast(L.hh_word).size
    assert mems["query-beat queue"][2] == data.Layout.cast(L.qbeat).size
    est = counter_array_blocks(cfg)
    assert est["blocks"] <= 64, est
