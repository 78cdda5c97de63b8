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

def test_gather_memories_match_the_elaborated_unit():
    """gather_memories lists exactly the memories the RTL builds (depth x width)."""
    import re
    from collections import Counter

    from amaranth.back import rtlil

    from hotline.fpga.resources import gather_memories
    from hotline.rtl.gather import GatherDMA

    for bits in (64, 512):
        cfg = HotlineConfig().replace(gather={"data_bits": bits, "max_outstanding": 8})
        text = rtlil.convert(GatherDMA(cfg))
        built = Counter((int(d), int(w)) for w, d in
                        re.findall(r"^\s*memory width (\d+) size (\d+)", text, re.M))
        listed = Counter()
        for _name, count, depth, width in gather_memories(cfg):
            listed[depth, width] += count
        assert built == listed, (bits, built, listed)
        names = [n for n, *_ in gather_memories(cfg)]
        assert "rbuf" in names and "table_mem" in names
        rbuf = next(m for m in gather_memories(cfg) if m[0] == "rbuf")
        assert rbuf[2:] == (cfg.gather.rbuf_beats, bits)
