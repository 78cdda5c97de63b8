"""AXI4 and AXI4-Lite interface signatures, defined once for every unit.

The signatures are flat (one member per AXI signal, named as in the AXI
specification, lower case) and seen from the master: a master has
``m_axi: Out(AXI4Signature(...))``, a slave ``s_axi: In(...)``.  Exported with
:func:`hotline.rtl.export.to_verilog` (which joins paths with ``_``) a member
``m_axi`` becomes the ports ``m_axi_arvalid``, ``m_axi_araddr``,
``m_axi_rdata`` ..., the names cocotbext-axi's ``AxiBus.from_prefix(dut,
"m_axi")`` and ``AxiLiteBus.from_prefix`` bind to.
"""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AXI4Signature", "AXI4LiteSignature", "BURST_INCR", "RESP_OKAY", "RESP_EXOKAY",
           "RESP_SLVERR", "RESP_DECERR"]

#: AxBURST encodings.
BURST_FIXED, BURST_INCR, BURST_WRAP = 0, 1, 2
#: xRESP encodings; bit 1 set means an error.
RESP_OKAY, RESP_EXOKAY, RESP_SLVERR, RESP_DECERR = 0, 1, 2, 3


def _check_width(name: str, value, lo: int, hi: int, pow2: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__} {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, not {value}")
    if pow2 and value & (value - 1):
        raise ValueError(f"{name} must be a power of two, not {value}")


class AXI4Signature(wiring.Signature):
    """An AXI4 memory-mapped interface (AW, W, B, AR, R), seen from the master.

    Parameters
    ----------
    addr_width : int
        Width of ``awaddr``/``araddr`` (12 to 64).
    data_width : int
        Width of ``wdata``/``rdata``, a power of two from 8 to 1024; ``wstrb``
        has one bit per byte.
    id_width : int
        Width of the ID signals (1 to 32).

    Members
    -------
    aw* : Out
        ``awid, awaddr, awlen, awsize, awburst, awlock, awcache, awprot, awqos,
        awvalid``; ``awready`` is In.
    w* : Out
        ``wdata, wstrb, wlast, wvalid``; ``wready`` is In.
    b* : In
        ``bid, bresp, bvalid``; ``bready`` is Out.
    ar* : Out
        Same as AW with the ``ar`` prefix; ``arready`` is In.
    r* : In
        ``rid, rdata, rresp, rlast, rvalid``; ``rready`` is Out.
    """

    def __init__(self, *, addr_width: int, data_width: int, id_width: int):
        _check_width("addr_width", addr_width, 12, 64)
        _check_width("data_width", data_width, 8, 1024, pow2=True)
        _check_width("id_width", id_width, 1, 32)
        self.addr_width = addr_width
        self.data_width = data_width
        self.id_width = id_width
        members = {}
        for ch in ("aw", "ar"):
            members.update({
                f"{ch}id": Out(id_width), f"{ch}addr": Out(addr_width), f"{ch}len": Out(8),
                f"{ch}size": Out(3), f"{ch}burst": Out(2), f"{ch}lock": Out(1),
                f"{ch}cache": Out(4), f"{ch}prot": Out(3), f"{ch}qos": Out(4),
                f"{ch}valid": Out(1), f"{ch}ready": In(1),
            })
        members.update({
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1),
            "wvalid": Out(1), "wready": In(1),
            "bid": In(id_width), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "rid": In(id_width), "rdata": In(data_width), "rresp": In(2), "rlast": In(1),
            "rvalid": In(1), "rready": Out(1),
        })
        super().__init__(members)

    def __eq__(self, other):
        if type(other) is wiring.FlippedSignature:
            return False  # a flipped AXI4 signature is the slave side, never equal
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.data_width == self.data_width and other.id_width == self.id_width)

    def __hash__(self):
        return hash((type(self), self.addr_width, self.data_width, self.id_width))

    def __repr__(self):
        return (f"AXI4Signature(addr_width={self.addr_width}, data_width={self.data_width}, "
                f"id_width={self.id_width})")


class AXI4LiteSignature(wiring.Signature):
    """An AXI4-Lite interface (for CSRs), seen from the master.

    Parameters
    ----------
    addr_width : int
        Width of ``awaddr``/``araddr`` (4 to 64).
    data_width : int
        32 or 64.

    Members
    -------
    awaddr, awprot, awvalid / awready; wdata, wstrb, wvalid / wready;
    bresp, bvalid / bready; araddr, arprot, arvalid / arready;
    rdata, rresp, rvalid / rready.
        Directions as in :class:`AXI4Signature`.
    """

    def __init__(self, *, addr_width: int, data_width: int = 32):
        _check_width("addr_width", addr_width, 4, 64)
        if data_width not in (32, 64):
            raise ValueError(f"data_width of AXI4-Lite must be 32 or 64, not {data_width!r}")
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        if type(other) is wiring.FlippedSignature:
            return False
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __hash__(self):
        return hash((type(self), self.addr_width, self.data_width))

    def __repr__(self):
        return f"AXI4LiteSignature(addr_width={self.addr_width}, data_width={self.data_width})"
