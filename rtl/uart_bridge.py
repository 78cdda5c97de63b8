"""UART-to-register bridge: the host reads and writes 32-bit registers over a UART.

The bridge receives request frames on ``rx``, performs each as one AXI4-Lite
read or write on ``m_axil``, and answers with one response frame on ``tx``.
The frame formats, status codes, CRC and the error and resynchronisation
rules are in :mod:`hotline.uart_protocol` (whose :class:`BridgeModel` is the
reference this RTL is cosimulated against).

Datapath::

    rx -> UartRx -> frame parser (sync, opcode, address, data, CRC-8 checked
                    byte by byte; idle-gap counter) -> AXI4-Lite master
                    (AW+W then B, or AR then R) -> response (sync, status,
                    data, CRC-8) -> UartTx -> tx

A bad frame never reaches the AXI master: the parser only starts a bus
access once the whole frame, CRC included, has been received and checked.
"""

from __future__ import annotations

from amaranth import Cat, C, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import HotlineConfig
from ..uart_protocol import (CRC_POLY, REQ_SYNC, RESP_SYNC, RESPONSE_LEN, Opcode, Status,
                             crc8)
from .axi import AXI4LiteSignature, RESP_DECERR, RESP_SLVERR
from .uart import UartRx, UartTx, uart_divisor

__all__ = ["UartBridge", "crc8_next", "MIN_GAP_BITS"]

#: Shortest idle gap (bit times) that ends a frame: longer than the 9-bit high runs of a
#: back-to-back byte stream, with margin for a 2% baud-rate error.
MIN_GAP_BITS = 12

assert CRC_POLY == 0x07  # crc8_next below is derived from the protocol's table


def crc8_next(crc, byte):
    """The CRC-8 register after ``byte``, as an Amaranth expression (a XOR network).

    CRC-8 with initial value 0 and no final XOR is linear over GF(2), so output
    bit ``j`` is the parity of the input bits ``i`` whose single-bit byte
    ``1 << i`` has bit ``j`` set in :func:`hotline.uart_protocol.crc8`.
    """
    v = crc ^ byte
    columns = [crc8(bytes([1 << i])) for i in range(8)]
    return Cat(*[Cat(*[v[i] for i in range(8) if columns[i] >> j & 1]).xor() for j in range(8)])


class UartBridge(wiring.Component):
    """UART-to-AXI4-Lite bridge for board bring-up.

    Parameters
    ----------
    cfg : HotlineConfig or None
        Accepted so the bridge is a unit like the others (``hotline verilog
        uart_bridge``); it has no config section and uses none of it.
    clk_hz : int
        Clock frequency in Hz (100 MHz by default).
    baud : int
        Baud rate (115200 by default); ``clk_hz / baud`` must be at least 8 and
        within 2% of an integer (:func:`hotline.rtl.uart.uart_divisor`).
    addr_width : int
        Address width of ``m_axil`` (4 to 32).  A request for an address that
        does not fit, or is not a multiple of 4, is answered ``BAD_ADDR``.
    gap_bits : int
        Idle time of the receive line, in bit times, that ends a frame: a
        request that pauses this long is ``TRUNCATED``, and after a bad frame
        the bridge drains bytes until the line has been idle this long before
        it answers (12 to 65535; 100 by default, under 1 ms at 115200 baud).  At
        least 12 because a continuous byte stream has high runs of up to 9 bit
        times (eight 1 data bits and the stop bit): a receiver that lost byte
        alignment after a framing error must not take such a run for the end
        of the burst (with a 2-bit gap the cosim showed exactly that).

    Members
    -------
    rx : In(1)
        Serial input from the host (idles high; asynchronous, synchronised inside).
    tx : Out(1)
        Serial output to the host.
    m_axil : Out(AXI4LiteSignature(addr_width=addr_width, data_width=32))
        The register bus; one access at a time, WSTRB all ones, PROT 0.

    Attributes
    ----------
    divisor : int
        Clock cycles per bit.
    gap_cycles : int
        ``gap_bits * divisor``.
    """

    def __init__(self, cfg: HotlineConfig | None = None, *, clk_hz: int = 100_000_000,
                 baud: int = 115200, addr_width: int = 32, gap_bits: int = 100):
        try:
            if cfg is not None and not isinstance(cfg, HotlineConfig):
                raise TypeError(f"cfg must be a HotlineConfig or None, not {type(cfg).__name__}")
            self.divisor = uart_divisor(clk_hz, baud)
            for name, value, lo, hi in (("addr_width", addr_width, 4, 32),
                                        ("gap_bits", gap_bits, MIN_GAP_BITS, 65535)):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise TypeError(f"{name} must be an integer, not {type(value).__name__} "
                                    f"{value!r}")
                if not lo <= value <= hi:
                    raise ValueError(f"{name} must be between {lo} and {hi}, not {value}")
        except (TypeError, ValueError):
            self._MustUse__silence = True   # never elaborated: no "unused" warning later
            raise
        self.clk_hz = clk_hz
        self.baud = baud
        self.addr_width = addr_width
        self.gap_bits = gap_bits
        self.gap_cycles = gap_bits * self.divisor
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "m_axil": Out(AXI4LiteSignature(addr_width=addr_width, data_width=32)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.urx = urx = UartRx(self.divisor)
        m.submodules.utx = utx = UartTx(self.divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        bus = self.m_axil

        rx_valid = urx.data.valid
        rx_byte = urx.data.payload.data
        rx_ferr = urx.data.payload.framing_error

        # ---- idle gap: the line high and no byte in progress for gap_cycles
        idle_left = Signal(range(self.gap_cycles + 1), init=self.gap_cycles)
        gap = idle_left == 0
        with m.If(urx.busy | ~urx.line | rx_valid):
            m.d.sync += idle_left.eq(self.gap_cycles)
        with m.Elif(~gap):
            m.d.sync += idle_left.eq(idle_left - 1)

        # ---- request registers
        rcrc = Signal(8)                  # CRC of the request so far
        is_write = Signal()
        nbyte = Signal(range(8))          # payload byte index
        payload = Signal(64)              # address (bytes 0-3), write data (bytes 4-7)
        addr = payload[:32]
        wdata = payload[32:]
        status = Signal(8)                # status of the response (or of the pending error)
        rdata = Signal(32)                # data of the response
        overrun = Signal()                # a byte arrived while busy
        rcrc_next = crc8_next(rcrc, rx_byte)

        # ---- response
        idx = Signal(range(RESPONSE_LEN))
        tcrc = Signal(8)
        words = Cat(C(RESP_SYNC, 8), status, rdata)
        m.d.comb += utx.data.payload.eq(Mux(idx == RESPONSE_LEN - 1, tcrc,
                                            words.word_select(idx, 8)))

        # ---- AXI4-Lite master (one access at a time)
        aw_done = Signal()
        w_done = Signal()
        ar_done = Signal()
        m.d.comb += [
            bus.awaddr.eq(addr), bus.awprot.eq(0), bus.wdata.eq(wdata), bus.wstrb.eq(0b1111),
            bus.araddr.eq(addr), bus.arprot.eq(0),
        ]

        def bus_status(resp):
            return Mux(resp == RESP_SLVERR, Status.SLVERR,
                       Mux(resp == RESP_DECERR, Status.DECERR, Status.OK))

        def fail(code):
            """Drop the frame; answer ``code`` once the line has been idle for the gap."""
            m.d.sync += status.eq(code)
            m.next = "DRAIN"

        def respond(code):
            m.d.sync += [status.eq(code), idx.eq(0)]
            m.next = "RESPOND"

        addr_bad = (addr[:2] != 0)
        if self.addr_width < 32:
            addr_bad = addr_bad | (addr[self.addr_width:] != 0)

        # A byte that arrives while a request is executed or answered is dropped and
        # remembered (the FSM's clear at the end of the response comes later, so wins).
        serving = Signal()
        with m.If(rx_valid & serving):
            m.d.sync += overrun.eq(1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(rx_valid):
                    with m.If(rx_ferr):
                        fail(Status.FRAMING)
                    with m.Elif(rx_byte == REQ_SYNC):
                        m.d.sync += rcrc.eq(crc8(bytes([REQ_SYNC])))
                        m.next = "OPCODE"
                    with m.Else():
                        fail(Status.BAD_SYNC)

            with m.State("OPCODE"):
                with m.If(rx_valid):
                    m.d.sync += [rcrc.eq(rcrc_next), nbyte.eq(0)]
                    with m.If(rx_ferr):
                        fail(Status.FRAMING)
                    with m.Elif(rx_byte == Opcode.READ32):
                        m.d.sync += is_write.eq(0)
                        m.next = "PAYLOAD"
                    with m.Elif(rx_byte == Opcode.WRITE32):
                        m.d.sync += is_write.eq(1)
                        m.next = "PAYLOAD"
                    with m.Else():
                        fail(Status.BAD_OPCODE)
                with m.Elif(gap):
                    respond(Status.TRUNCATED)

            with m.State("PAYLOAD"):
                with m.If(rx_valid):
                    m.d.sync += [rcrc.eq(rcrc_next), nbyte.eq(nbyte + 1),
                                 payload.word_select(nbyte, 8).eq(rx_byte)]
                    with m.If(rx_ferr):
                        fail(Status.FRAMING)
                    with m.Elif(nbyte == Mux(is_write, 7, 3)):
                        m.next = "CHECK"
                with m.Elif(gap):
                    respond(Status.TRUNCATED)

            with m.State("CHECK"):
                with m.If(rx_valid):
                    with m.If(rx_ferr):
                        fail(Status.FRAMING)
                    with m.Elif(rx_byte != rcrc):
                        fail(Status.BAD_CRC)
                    with m.Elif(addr_bad):
                        respond(Status.BAD_ADDR)
                    with m.Elif(is_write):
                        m.d.sync += [aw_done.eq(0), w_done.eq(0)]
                        m.next = "WRITE"
                    with m.Else():
                        m.d.sync += ar_done.eq(0)
                        m.next = "READ"
                with m.Elif(gap):
                    respond(Status.TRUNCATED)

            with m.State("WRITE"):
                m.d.comb += [serving.eq(1), bus.awvalid.eq(~aw_done), bus.wvalid.eq(~w_done),
                             bus.bready.eq(1)]
                with m.If(bus.awvalid & bus.awready):
                    m.d.sync += aw_done.eq(1)
                with m.If(bus.wvalid & bus.wready):
                    m.d.sync += w_done.eq(1)
                with m.If(bus.bvalid):
                    respond(bus_status(bus.bresp))

            with m.State("READ"):
                m.d.comb += [serving.eq(1), bus.arvalid.eq(~ar_done), bus.rready.eq(1)]
                with m.If(bus.arvalid & bus.arready):
                    m.d.sync += ar_done.eq(1)
                with m.If(bus.rvalid):
                    respond(bus_status(bus.rresp))
                    with m.If(bus.rresp[1] == 0):
                        m.d.sync += rdata.eq(bus.rdata)

            with m.State("RESPOND"):
                m.d.comb += [serving.eq(1), utx.data.valid.eq(1)]
                with m.If(utx.data.ready):
                    m.d.sync += [idx.eq(idx + 1),
                                 tcrc.eq(crc8_next(Mux(idx == 0, 0, tcrc), utx.data.payload))]
                    with m.If(idx == RESPONSE_LEN - 1):
                        m.d.sync += rdata.eq(0)
                        with m.If(overrun | rx_valid):
                            m.d.sync += overrun.eq(0)
                            fail(Status.OVERRUN)
                        with m.Else():
                            m.next = "IDLE"

            with m.State("DRAIN"):
                with m.If(gap):
                    respond(status)

        return m
