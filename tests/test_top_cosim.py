"""Build the accelerator top with Verilator and run its cocotb bench.

Two parameter sets: a 64-bit bus (one key per beat) and a 128-bit bus (two
keys per beat, so key arrays start and end mid-beat), both with a counter
small enough that the heavy-hitter table fills and evicts.
"""

import pytest

from hotline.config import ConfigError, HotlineConfig
from hotline.testbench.runner import run_bench

PARAMS = {
    "w64": {"gather": {"data_bits": 64},
            "counter": {"log2_counters": 8, "banks": 2, "hh_sets": 16, "hh_ways": 2,
                        "threshold": 3}},
    "w128": {"gather": {"data_bits": 128, "addr_bits": 40},
             "keys": {"tables": 5, "row_bits": 12},
             "counter": {"log2_counters": 9, "banks": 4, "hh_sets": 32, "hh_ways": 4,
                         "threshold": 2, "counter_bits": 6}},
}


@pytest.mark.cosim
@pytest.mark.parametrize("name", list(PARAMS), ids=list(PARAMS))
def test_top_cosim(name):
    cfg = HotlineConfig().replace(**PARAMS[name])
    run_bench("top", cfg, "hotline.testbench.top_tb", f"top_{name}")


def test_top_rejects_configs_it_cannot_report():
    from hotline.rtl.top import HotlineTop
    with pytest.raises(ConfigError, match="counter_bits 24"):
        HotlineTop(HotlineConfig().replace(counter={"counter_bits": 24}))
    with pytest.raises(TypeError, match="cfg"):
        HotlineTop(None)
