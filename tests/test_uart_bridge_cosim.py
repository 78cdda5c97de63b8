"""Build the UART-to-register bridge with Verilator and run its cocotb bench.

Two parameter sets: a divisor of exactly 16 with a 32-bit bus (addresses
anywhere in 4 GiB, aliased onto the bench's RAM), and a divisor of 33.3
(3 Mbaud at 100 MHz: the bridge runs 1% fast of cocotbext-uart) with a 12-bit
bus and the shortest idle gap allowed (12 bit times).
"""

import pytest

from hotline.testbench.uart_bridge_tb import run_uart_bench

PARAMS = {
    "div16_a32": {"clk_hz": 100_000_000, "baud": 6_250_000, "addr_width": 32, "gap_bits": 24},
    "div33_a12": {"clk_hz": 100_000_000, "baud": 3_000_000, "addr_width": 12, "gap_bits": 12},
}


@pytest.mark.cosim
@pytest.mark.parametrize("name", list(PARAMS), ids=list(PARAMS))
def test_uart_bridge_cosim(name):
    run_uart_bench(f"uart_bridge_{name}", PARAMS[name])
