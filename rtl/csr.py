"""The accelerator's control and status registers: an AXI4-Lite slave built from the register map.

:class:`CSRBlock` takes its registers from :data:`hotline.regmap.REGISTERS`,
which is generated from the one SystemRDL source (``hotline/regs/hotline.rdl``),
so the hardware, the driver's constants, the Markdown reference and the C
header cannot disagree.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import regmap
from .axi import AXI4LiteSignature

__all__ = ["CSRBlock", "port_name", "RESP_OKAY", "RESP_DECERR"]

RESP_OKAY = 0b00
RESP_DECERR = 0b11


def port_name(reg: str, field: str) -> str:
    """The CSR block's port of a field: ``cmd_opcode_tag``."""
    return f"{reg}_{field}".lower()


class CSRBlock(wiring.Component):
    """AXI4-Lite slave (32-bit data) holding the registers of ``registers``.

    Parameters
    ----------
    registers : tuple of hotline.regmap.Register
        Default: the whole map, :data:`hotline.regmap.REGISTERS`.
    addr_width : int
        Width of the AXI addresses; the block decodes the low
        :data:`hotline.regmap.ADDRESS_BITS` bits and ignores the rest (so it
        repeats through a larger window).

    Members
    -------
    axil : In(AXI4LiteSignature(addr_width, 32))
        The slave port.  One outstanding write and one outstanding read: a
        write needs AW and W together, is answered on B the cycle after; a
        read is answered on R the cycle after AR.  An address that holds no
        register answers DECERR (a write there changes nothing); a write to a
        read-only register or bit is ignored and answered OKAY; bits that no
        field covers read 0.  Writes honour ``wstrb`` per byte.
    <reg>_<field> : per field kind
        ``storage``: Out(width), the value software wrote (reset value after reset).
        ``status``: In(width), read by software.
        ``pulse``: Out(width), the written bits for one cycle.
        ``w1c``: Out(width) the sticky bits, and ``<reg>_<field>_set``: In(width),
        a hardware pulse that sets them (a set in the same cycle as a clearing
        write wins).
    ``const`` fields have no port.
    """

    def __init__(self, registers=None, *, addr_width: int = 32):
        regs = tuple(regmap.REGISTERS if registers is None else registers)
        if not isinstance(addr_width, int) or addr_width < regmap.ADDRESS_BITS or addr_width > 64:
            self._MustUse__silence = True
            raise ValueError(f"addr_width must be {regmap.ADDRESS_BITS} to 64, not {addr_width!r}")
        self.registers = regs
        self.addr_width = addr_width
        members = {"axil": In(AXI4LiteSignature(addr_width=addr_width, data_width=32))}
        for reg in regs:
            for f in reg.fields:
                name = port_name(reg.name, f.name)
                if f.kind in ("storage", "pulse", "w1c"):
                    members[name] = Out(f.width, init=f.reset if f.kind != "pulse" else 0)
                if f.kind == "status":
                    members[name] = In(f.width)
                if f.kind == "w1c":
                    members[name + "_set"] = In(f.width)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        bus = self.axil
        lo = 2                                   # 32-bit words
        hi = regmap.ADDRESS_BITS

        def word_of(addr):
            return addr[lo:hi]

        # ---- write channel -----------------------------------------------------
        bvalid = Signal()
        bresp = Signal(2)
        accept_w = Signal()
        m.d.comb += [
            accept_w.eq(bus.awvalid & bus.wvalid & ~bvalid),
            bus.awready.eq(accept_w),
            bus.wready.eq(accept_w),
            bus.bvalid.eq(bvalid),
            bus.bresp.eq(bresp),
        ]
        with m.If(bvalid & bus.bready):
            m.d.sync += bvalid.eq(0)
        waddr = word_of(bus.awaddr)
        strobe_bits = Cat(*[bus.wstrb[i // 8] for i in range(32)])
        hit_w = Const(0)

        pulses = []
        for reg in self.registers:
            sel = Signal(name=f"w_{reg.name.lower()}")
            m.d.comb += sel.eq(accept_w & (waddr == reg.offset >> lo))
            hit_w = hit_w | (waddr == reg.offset >> lo)
            for f in reg.fields:
                if f.kind == "const" or f.kind == "status":
                    continue
                port = getattr(self, port_name(reg.name, f.name))
                wbits = bus.wdata[f.lsb:f.lsb + f.width]
                sbits = strobe_bits[f.lsb:f.lsb + f.width]
                if f.kind == "storage":
                    with m.If(sel):
                        m.d.sync += port.eq((port & ~sbits) | (wbits & sbits))
                elif f.kind == "pulse":
                    pulses.append(port)
                    m.d.sync += port.eq(Mux(sel, wbits & sbits, 0))
                elif f.kind == "w1c":
                    setp = getattr(self, port_name(reg.name, f.name) + "_set")
                    clear = Mux(sel, wbits & sbits, 0)
                    m.d.sync += port.eq((port & ~clear) | setp)
        with m.If(accept_w):
            m.d.sync += [bvalid.eq(1), bresp.eq(Mux(hit_w, RESP_OKAY, RESP_DECERR))]

        # ---- read channel -----------------------------------------------------
        rvalid = Signal()
        rdata = Signal(32)
        rresp = Signal(2)
        accept_r = Signal()
        m.d.comb += [
            accept_r.eq(bus.arvalid & ~rvalid),
            bus.arready.eq(accept_r),
            bus.rvalid.eq(rvalid),
            bus.rdata.eq(rdata),
            bus.rresp.eq(rresp),
        ]
        with m.If(rvalid & bus.rready):
            m.d.sync += rvalid.eq(0)
        raddr = word_of(bus.araddr)
        with m.If(accept_r):
            m.d.sync += [rvalid.eq(1), rdata.eq(0), rresp.eq(RESP_DECERR)]
            with m.Switch(raddr):
                for reg in self.registers:
                    with m.Case(reg.offset >> lo):
                        word = Const(0, 32)
                        for f in reg.fields:
                            if f.kind == "const":
                                value = Const(f.reset, f.width)
                            elif f.kind == "pulse":
                                continue             # write-only: reads 0
                            else:
                                value = getattr(self, port_name(reg.name, f.name))
                            word = word | (value.as_unsigned() << f.lsb)
                        m.d.sync += [rdata.eq(word[:32]), rresp.eq(RESP_OKAY)]
        return m
