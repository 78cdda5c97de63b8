"""UART receiver/transmitter and the bridge's parameter checks, in Amaranth's simulator."""

import random

import pytest
from amaranth import Module, Signal
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from hotline.config import HotlineConfig
from hotline.rtl.export import unit_verilog
from hotline.rtl.uart import MIN_DIVISOR, UartRx, UartTx, uart_divisor
from hotline.rtl.uart_bridge import MIN_GAP_BITS, UartBridge, crc8_next
from hotline.uart_protocol import crc8


def test_divisor_checks():
    assert uart_divisor(100_000_000, 115200) == 868
    assert uart_divisor(25_000_000, 115200) == 217
    assert uart_divisor(100_000_000, 3_000_000) == 33
    with pytest.raises(ValueError, match="at least 8"):
        uart_divisor(25_000_000, 4_000_000)
    with pytest.raises(ValueError, match=r"baud 1150000 is 4\.3% off at clk_hz 12000000 \(divisor 10\)"):
        uart_divisor(12_000_000, 1_150_000)
    assert uart_divisor(12_000_000, 1_180_000) == 10       # 1.7% off: accepted
    with pytest.raises(ValueError, match="baud must be positive"):
        uart_divisor(100_000_000, 0)
    with pytest.raises(TypeError, match="clk_hz must be a number"):
        uart_divisor("100e6", 115200)
    with pytest.raises(ValueError, match="divisor must be at least 8"):
        UartRx(4)
    with pytest.raises(TypeError, match="divisor must be an integer"):
        UartTx(16.0)


def test_bridge_parameter_checks():
    b = UartBridge(clk_hz=25_000_000, baud=115200, addr_width=16, gap_bits=MIN_GAP_BITS)
    assert (b.divisor, b.gap_cycles) == (217, 217 * MIN_GAP_BITS)
    assert len(b.m_axil.awaddr) == 16 and len(b.m_axil.wdata) == 32
    Fragment.get(b, None)
    text = unit_verilog("uart_bridge", HotlineConfig())        # the unit, default parameters
    import re
    ports = set(re.split(r"[\s,]+", re.search(r"module hotline_uart_bridge\(([^;]*)\);", text).group(1)))
    for port in ("clk", "rst", "rx", "tx", "m_axil_awaddr", "m_axil_wstrb", "m_axil_bresp",
                 "m_axil_araddr", "m_axil_rdata", "m_axil_rready"):
        assert port in ports, f"port {port} missing from {sorted(ports)}"
    with pytest.raises(ValueError, match="addr_width must be between 4 and 32, not 33"):
        UartBridge(addr_width=33)
    with pytest.raises(ValueError, match="gap_bits must be between 12 and 65535, not 2"):
        UartBridge(gap_bits=2)
    with pytest.raises(TypeError, match="gap_bits must be an integer"):
        UartBridge(gap_bits=12.5)
    with pytest.raises(ValueError, match="the UART needs at least 8"):
        UartBridge(clk_hz=1_000_000, baud=460800)
    with pytest.raises(TypeError, match="cfg must be a HotlineConfig or None"):
        UartBridge({"clk_hz": 1})


def test_crc8_next_matches_the_protocol(seed):
    rng = random.Random(seed)
    crc, byte = Signal(8), Signal(8)
    out = Signal(8)
    m = Module()
    m.d.comb += out.eq(crc8_next(crc, byte))
    pairs = [(0, b) for b in range(256)] + [(rng.randrange(256), rng.randrange(256))
                                              for _ in range(256)]

    async def bench(ctx):
        for c, b in pairs:
            ctx.set(crc, c)
            ctx.set(byte, b)
            assert ctx.get(out) == crc8(bytes([b]), c), (c, b)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


class _Loop:
    """A UartRx whose line a testbench drives at any bit time (in clock cycles, may be
    fractional) and a UartTx whose line is decoded by an ideal receiver."""

    def __init__(self, divisor):
        self.rx = UartRx(divisor)
        self.tx = UartTx(divisor)
        m = Module()
        m.submodules.rx = self.rx
        m.submodules.tx = self.tx
        self.m = m


def _drive_bytes(ctx_line, data, bit_cycles, bad_stop=()):
    """Level of the line at each cycle for ``data`` sent back to back at ``bit_cycles``."""
    bits = []
    for i, b in enumerate(data):
        bits += [0] + [(b >> k) & 1 for k in range(8)] + [0 if i in bad_stop else 1]
    n = int(len(bits) * bit_cycles) + 1
    return [bits[min(int(t / bit_cycles), len(bits) - 1)] for t in range(n)] + [1] * 4


@pytest.mark.parametrize("rate", [1.0, 0.98, 1.02])
def test_rx_receives_at_the_edges_of_the_rate_tolerance(rate, seed):
    """Bytes sent 2% fast or slow (the most uart_divisor accepts), a bad stop bit, a glitch."""
    rng = random.Random(seed)
    div = 16
    loop = _Loop(div)
    data = bytes(rng.randrange(256) for _ in range(24)) + b"\x00\xff\x55\xaa"
    # a bad stop bit, then the line idles a byte time (back to back, the next bytes
    # would be misaligned: the receiver waits for the line to go high, then for a start bit)
    levels = [1] * 8 + _drive_bytes(None, data[:6], div * rate, bad_stop={5}) + [1] * 10 * div
    levels += _drive_bytes(None, data[6:], div * rate)
    levels += [1] * 40 + [0] * (div // 2 - 3) + [1] * 60        # a glitch: no byte
    got = []

    async def bench(ctx):
        for level in levels:
            ctx.set(loop.rx.rx, level)
            await ctx.tick()
            if ctx.get(loop.rx.data.valid):
                got.append((ctx.get(loop.rx.data.payload.data),
                            ctx.get(loop.rx.data.payload.framing_error)))

    sim = Simulator(loop.m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == [(b, int(i == 5)) for i, b in enumerate(data)]


def test_tx_bit_timing_and_back_to_back_bytes(seed):
    rng = random.Random(seed)
    div = MIN_DIVISOR
    loop = _Loop(div)
    data = bytes(rng.randrange(256) for _ in range(6))
    line = []

    async def bench(ctx):
        i = 0
        while i < len(data) or ctx.get(loop.tx.busy) or len(line) < 5:
            ctx.set(loop.tx.data.valid, i < len(data))
            ctx.set(loop.tx.data.payload, data[i] if i < len(data) else 0)
            ready = ctx.get(loop.tx.data.ready)
            await ctx.tick()
            line.append(ctx.get(loop.tx.tx))
            if ready and i < len(data):
                i += 1
        for _ in range(3 * div):
            await ctx.tick()
            line.append(ctx.get(loop.tx.tx))

    sim = Simulator(loop.m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    start = line.index(0)
    want = []
    for b in data:                          # exactly div cycles per bit, no idle between bytes
        for bit in [0] + [(b >> k) & 1 for k in range(8)] + [1]:
            want += [bit] * div
    assert line[start:start + len(want)] == want
    assert all(v == 1 for v in line[start + len(want):] + line[:start])
