"""The board self-test image: the accelerator, its host memory on chip, registers over UART.

For bring-up on an ECP5 board without PCIe (the ULX3S): :class:`SelfTestCore`
puts the accelerator top (:class:`hotline.rtl.top.HotlineTop`) behind the
UART-to-register bridge (:class:`hotline.rtl.uart_bridge.UartBridge`) and gives
its AXI4 host-memory port a block RAM (:class:`hotline.rtl.axi_fabric.AXI4RAM`).
The host sees one 32-bit address space over the UART:

``0x0000_0000 + offset``
    The accelerator's registers (:mod:`hotline.regmap`).
``0x1000_0000 + offset``
    The on-chip RAM, byte ``offset`` of what the accelerator sees at address
    ``offset`` (keys to learn, readouts, estimates).

:func:`hotline.host.selftest.run_selftest` drives it through any register
transport: the UART on a real board, or cocotbext-uart in cosimulation
(``tests/test_selftest_cosim.py``).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import HotlineConfig
from ..rtl.axi import AXI4Signature
from ..rtl.axi_fabric import AXI4Arbiter, AXI4LiteSplitter, AXI4LiteToAXI4, AXI4RAM
from ..rtl.top import HotlineTop, axi_id_bits
from ..rtl.uart_bridge import UartBridge

__all__ = ["SelfTestCore", "RAM_BASE", "SPLIT_BIT", "DEFAULT_RAM_BYTES"]

SPLIT_BIT = 28
RAM_BASE = 1 << SPLIT_BIT
DEFAULT_RAM_BYTES = 64 * 1024


def _connect_lite(m, master, slave, addr=None):
    """Drive AXI4-Lite ``slave`` (In side) from ``master`` (Out side), widths adapted."""
    aw = master.awaddr if addr is None else addr(master.awaddr)
    ar = master.araddr if addr is None else addr(master.araddr)
    m.d.comb += [
        slave.awaddr.eq(aw), slave.awprot.eq(master.awprot), slave.awvalid.eq(master.awvalid),
        master.awready.eq(slave.awready),
        slave.wdata.eq(master.wdata), slave.wstrb.eq(master.wstrb), slave.wvalid.eq(master.wvalid),
        master.wready.eq(slave.wready),
        master.bresp.eq(slave.bresp), master.bvalid.eq(slave.bvalid), slave.bready.eq(master.bready),
        slave.araddr.eq(ar), slave.arprot.eq(master.arprot), slave.arvalid.eq(master.arvalid),
        master.arready.eq(slave.arready),
        master.rdata.eq(slave.rdata), master.rresp.eq(slave.rresp), master.rvalid.eq(slave.rvalid),
        slave.rready.eq(master.rready),
    ]


class SelfTestCore(wiring.Component):
    """Bridge + accelerator + on-chip host memory (see the module docstring).

    Parameters
    ----------
    cfg : HotlineConfig
    clk_hz, baud : int
        The bridge's clock and UART rate.
    ram_bytes : int
        On-chip host memory (a power of two).

    Members
    -------
    rx : In(1), tx : Out(1)
        The UART.
    irq : Out(1)
        The accelerator's interrupt (to an LED on a board).
    """

    def __init__(self, cfg: HotlineConfig, *, clk_hz: int = 100_000_000, baud: int = 115200,
                 ram_bytes: int = DEFAULT_RAM_BYTES):
        if ram_bytes > RAM_BASE or ram_bytes & (ram_bytes - 1):
            self._MustUse__silence = True
            raise ValueError(f"ram_bytes must be a power of two of at most {RAM_BASE:#x}, "
                             f"not {ram_bytes}")
        self.cfg = cfg
        self.clk_hz, self.baud, self.ram_bytes = clk_hz, baud, ram_bytes
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "irq": Out(1)})

    def elaborate(self, platform):
        m = Module()
        g = self.cfg.gather
        sig = AXI4Signature(addr_width=g.addr_bits, data_width=g.data_bits,
                            id_width=axi_id_bits(self.cfg))
        m.submodules.bridge = bridge = UartBridge(clk_hz=self.clk_hz, baud=self.baud,
                                                  addr_width=32)
        m.submodules.split = split = AXI4LiteSplitter(addr_bits=32, split_bit=SPLIT_BIT)
        m.submodules.top = top = HotlineTop(self.cfg)
        m.submodules.l2a = l2a = AXI4LiteToAXI4(addr_bits=g.addr_bits, data_bits=g.data_bits,
                                                id_bits=axi_id_bits(self.cfg))
        m.submodules.arb = arb = AXI4Arbiter(sig)
        m.submodules.ram = ram = AXI4RAM(sig, self.ram_bytes)
        m.d.comb += [bridge.rx.eq(self.rx), self.tx.eq(bridge.tx), self.irq.eq(top.irq)]
        wiring.connect(m, bridge.m_axil, split.s)
        _connect_lite(m, split.m0, top.s_axil, lambda a: a[:len(top.s_axil.awaddr)])
        _connect_lite(m, split.m1, l2a.s, lambda a: a[:SPLIT_BIT])
        wiring.connect(m, top.m_axi, arb.s0)
        wiring.connect(m, l2a.m, arb.s1)
        wiring.connect(m, arb.m, ram.s)
        return m
