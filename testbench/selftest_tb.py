"""cocotb testbench of the board self-test image (``hotline_selftest``).

cocotbext-uart's UartSource/UartSink play the host's serial port; the host
side is the same :func:`hotline.host.selftest.run_selftest` a real board runs,
so this cosimulates the whole path: UART frames, the bridge, the address
split, the accelerator's registers and commands, the arbiter and the on-chip
RAM.
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.uart import UartSink, UartSource

from ..host.selftest import RAM_BASE, SelfTestError, run_selftest
from ..uart_protocol import RESPONSE_LEN, Status, decode_response, encode_read, encode_write
from .runner import config_from_env, seed_from_env


class UartRegs:
    """``async read32/write32`` over cocotbext-uart (one request at a time)."""

    def __init__(self, dut, baud: int):
        self.source = UartSource(dut.rx, baud=baud)
        self.sink = UartSink(dut.tx, baud=baud)
        for end in (self.source, self.sink):
            end.log.setLevel("WARNING")
        self.accesses = 0

    async def _access(self, frame: bytes) -> int:
        await self.source.write(frame)
        raw = bytearray()
        while len(raw) < RESPONSE_LEN:
            raw += await self.sink.read(1)
        raw = bytes(raw)
        status, value = decode_response(raw)
        self.accesses += 1
        if status is not Status.OK:
            raise SelfTestError(f"bridge answered {status.name}")
        return value

    async def read32(self, addr: int) -> int:
        return await self._access(encode_read(addr))

    async def write32(self, addr: int, value: int) -> None:
        await self._access(encode_write(addr, value))


@cocotb.test()
async def test_selftest_over_uart(dut):
    cfg = config_from_env()
    seed = seed_from_env(dut._log)
    params = json.loads(os.environ["HOTLINE_SELFTEST"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    regs = UartRegs(dut, params["baud"])
    await ClockCycles(dut.clk, 10)
    report = await run_selftest(regs, cfg, keys=params["keys"], seed=seed, log=dut._log.info)
    assert report["ok"] and report["heavy_hitters"] > 0
    # a bad address on the RAM side of the split is answered with an error status
    try:
        await regs.read32(RAM_BASE + params["ram_bytes"])
    except SelfTestError as exc:
        assert "DECERR" in str(exc) or "SLVERR" in str(exc)
    else:
        raise AssertionError("a read past the on-chip RAM did not fail")
