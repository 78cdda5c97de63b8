"""The board self-test image in cosimulation: UART frames in, golden-model results out.

The host side is :func:`hotline.host.selftest.run_selftest`, the routine a
real board runs (``hotline board selftest``), over cocotbext-uart.
"""

import json

import pytest

from hotline.config import HotlineConfig
from hotline.testbench.runner import run_bench

CFG = HotlineConfig().replace(
    gather={"data_bits": 64, "addr_bits": 32},
    counter={"log2_counters": 8, "banks": 2, "hh_sets": 8, "hh_ways": 2, "threshold": 2})
PARAMS = {"clk_hz": 100_000_000, "baud": 6_250_000, "ram_bytes": 4096, "keys": 24}


@pytest.mark.cosim
def test_selftest_image_over_uart():
    from hotline.fpga.selftest import SelfTestCore
    core = SelfTestCore(CFG, clk_hz=PARAMS["clk_hz"], baud=PARAMS["baud"],
                        ram_bytes=PARAMS["ram_bytes"])
    run_bench("selftest", CFG, "hotline.testbench.selftest_tb", "selftest",
              component=core, extra_env={"HOTLINE_SELFTEST": json.dumps(PARAMS)})


def test_selftest_core_checks_ram_size():
    from hotline.fpga.selftest import SelfTestCore
    with pytest.raises(ValueError, match="ram_bytes"):
        SelfTestCore(CFG, ram_bytes=3000)
