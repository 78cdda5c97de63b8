"""Small AXI building blocks: two 2:1 AXI4 muxes, an AXI4-Lite to AXI4 adapter, an
AXI4-Lite address splitter and an on-chip AXI4 RAM.

:class:`AXI4IdMux` joins the accelerator top's two managers (its word engines
and the gather DMA) at full rate, any number of transactions outstanding, by
an extra ID bit.  The others exist for the board self-test image
(:mod:`hotline.fpga.selftest`), where the accelerator's host-memory port is
on-chip block RAM that the host fills through the UART bridge; they favour
being obviously correct over speed: :class:`AXI4Arbiter` passes one burst at a
time per direction.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .axi import AXI4LiteSignature, AXI4Signature, BURST_INCR, RESP_DECERR, RESP_OKAY

__all__ = ["AXI4IdMux", "AXI4Arbiter", "AXI4LiteToAXI4", "AXI4LiteSplitter", "AXI4RAM"]

_AR = ("arid", "araddr", "arlen", "arsize", "arburst", "arlock", "arcache", "arprot", "arqos")
_AW = ("awid", "awaddr", "awlen", "awsize", "awburst", "awlock", "awcache", "awprot", "awqos")


def _log2(n: int) -> int:
    return (n - 1).bit_length()


class AXI4IdMux(wiring.Component):
    """Two AXI4 managers onto one subordinate port, told apart by one more ID bit.

    Manager ``i``'s ``ARID``/``AWID`` leave with ``i`` as the new top bit, and a
    response goes back to the manager its ``RID``/``BID`` top bit names, so both
    may have any number of reads and writes outstanding and responses may come
    in any order the subordinate likes (AXI orders only responses of one ID).
    AR and AW are granted per handshake, round robin when both ask.  Write data
    follow the order of the granted AW (no write interleaving, as AXI4 says): a
    FIFO of ``w_order_depth`` grants picks the manager whose W beats pass, up to
    its ``WLAST``; an AW waits while that FIFO is full.  A manager must not make
    its AW wait for W (neither of the top's does).

    Parameters
    ----------
    sig : AXI4Signature
        The managers' signature; the subordinate port's has ``id_width + 1``.
    w_order_depth : int
        Write bursts granted but not yet through W.

    Members
    -------
    s0, s1 : In(sig)
    m : Out(AXI4Signature(..., id_width=sig.id_width + 1))
    """

    def __init__(self, sig: AXI4Signature, *, w_order_depth: int = 8):
        if not (isinstance(w_order_depth, int) and w_order_depth >= 2):
            raise ValueError(f"w_order_depth must be an integer >= 2, not {w_order_depth!r}")
        self.sig = sig
        self.w_order_depth = w_order_depth
        out = AXI4Signature(addr_width=sig.addr_width, data_width=sig.data_width,
                            id_width=sig.id_width + 1)
        super().__init__({"s0": In(sig), "s1": In(sig), "m": Out(out)})

    def elaborate(self, platform):
        m = Module()
        ss = (self.s0, self.s1)
        out = self.m
        iw = self.sig.id_width

        def grant(ch, names, extra_ready=1):
            valid = [getattr(s, f"{ch}valid") for s in ss]
            last = Signal(name=f"{ch}_last")
            pick = Signal(name=f"{ch}_pick")
            m.d.comb += pick.eq(Mux(valid[0] & valid[1], ~last, valid[1]))
            for name in names:
                if name == f"{ch}id":
                    m.d.comb += getattr(out, name).eq(Cat(Mux(pick, getattr(ss[1], name),
                                                              getattr(ss[0], name)), pick))
                else:
                    m.d.comb += getattr(out, name).eq(Mux(pick, getattr(ss[1], name),
                                                          getattr(ss[0], name)))
            fire = Signal(name=f"{ch}_fire")
            m.d.comb += [
                getattr(out, f"{ch}valid").eq((valid[0] | valid[1]) & extra_ready),
                fire.eq(getattr(out, f"{ch}valid") & getattr(out, f"{ch}ready")),
            ]
            for i, s in enumerate(ss):
                m.d.comb += getattr(s, f"{ch}ready").eq(getattr(out, f"{ch}ready") & extra_ready &
                                                        (pick == i))
            with m.If(fire):
                m.d.sync += last.eq(pick)
            return pick, fire

        # ---- reads: AR per handshake, R back by RID's top bit ---------------------
        grant("ar", _AR)
        r_to = out.rid[iw]
        for i, s in enumerate(ss):
            m.d.comb += [s.rid.eq(out.rid[:iw]), s.rdata.eq(out.rdata), s.rresp.eq(out.rresp),
                         s.rlast.eq(out.rlast), s.rvalid.eq(out.rvalid & (r_to == i))]
        m.d.comb += out.rready.eq(Mux(r_to, ss[1].rready, ss[0].rready))

        # ---- writes: AW per handshake (room in the W order FIFO), W in AW order -----
        m.submodules.w_order = wo = fifo.SyncFIFO(width=1, depth=self.w_order_depth)
        pick, fire = grant("aw", _AW, extra_ready=wo.w_rdy)
        m.d.comb += [wo.w_en.eq(fire), wo.w_data.eq(pick)]
        w_from = wo.r_data
        m.d.comb += [
            out.wdata.eq(Mux(w_from, ss[1].wdata, ss[0].wdata)),
            out.wstrb.eq(Mux(w_from, ss[1].wstrb, ss[0].wstrb)),
            out.wlast.eq(Mux(w_from, ss[1].wlast, ss[0].wlast)),
            out.wvalid.eq(wo.r_rdy & Mux(w_from, ss[1].wvalid, ss[0].wvalid)),
            wo.r_en.eq(out.wvalid & out.wready & out.wlast),
        ]
        b_to = out.bid[iw]
        for i, s in enumerate(ss):
            m.d.comb += [s.wready.eq(wo.r_rdy & (w_from == i) & out.wready),
                         s.bid.eq(out.bid[:iw]), s.bresp.eq(out.bresp),
                         s.bvalid.eq(out.bvalid & (b_to == i))]
        m.d.comb += out.bready.eq(Mux(b_to, ss[1].bready, ss[0].bready))
        return m


class AXI4Arbiter(wiring.Component):
    """Two AXI4 masters onto one slave; one read burst and one write burst at a time.

    A read burst is granted (round robin when both ask) at its AR handshake
    and held until its RLAST; a write burst from its AW handshake through its
    W beats to its B response.  IDs pass unchanged.

    Members
    -------
    s0, s1 : In(AXI4Signature)
        The masters.
    m : Out(AXI4Signature)
        The slave side.
    """

    def __init__(self, sig: AXI4Signature):
        self.sig = sig
        super().__init__({"s0": In(sig), "s1": In(sig), "m": Out(sig)})

    def elaborate(self, platform):
        m = Module()
        ss = (self.s0, self.s1)
        out = self.m

        # ---- reads ------------------------------------------------------------
        r_busy = Signal()
        r_owner = Signal()
        r_last_owner = Signal()
        pick = Signal()
        # round robin: prefer the master that was not served last
        m.d.comb += pick.eq(Mux(ss[0].arvalid & ss[1].arvalid, ~r_last_owner, ss[1].arvalid))
        sel = Mux(r_busy, r_owner, pick)
        for name in _AR:
            m.d.comb += getattr(out, name).eq(Mux(sel, getattr(ss[1], name), getattr(ss[0], name)))
        m.d.comb += out.arvalid.eq(~r_busy & Mux(pick, ss[1].arvalid, ss[0].arvalid))
        for i, s in enumerate(ss):
            m.d.comb += [
                s.arready.eq(~r_busy & (pick == i) & out.arready),
                s.rid.eq(out.rid), s.rdata.eq(out.rdata), s.rresp.eq(out.rresp),
                s.rlast.eq(out.rlast), s.rvalid.eq(r_busy & (r_owner == i) & out.rvalid),
            ]
        m.d.comb += out.rready.eq(r_busy & Mux(r_owner, ss[1].rready, ss[0].rready))
        with m.If(out.arvalid & out.arready):
            m.d.sync += [r_busy.eq(1), r_owner.eq(pick), r_last_owner.eq(pick)]
        with m.If(out.rvalid & out.rready & out.rlast):
            m.d.sync += r_busy.eq(0)

        # ---- writes -----------------------------------------------------------
        w_busy = Signal()          # AW granted, W beats or B outstanding
        w_data_done = Signal()
        w_owner = Signal()
        w_last_owner = Signal()
        wpick = Signal()
        m.d.comb += wpick.eq(Mux(ss[0].awvalid & ss[1].awvalid, ~w_last_owner, ss[1].awvalid))
        for name in _AW:
            m.d.comb += getattr(out, name).eq(Mux(wpick, getattr(ss[1], name), getattr(ss[0], name)))
        m.d.comb += out.awvalid.eq(~w_busy & Mux(wpick, ss[1].awvalid, ss[0].awvalid))
        wsel = w_owner
        m.d.comb += [
            out.wdata.eq(Mux(wsel, ss[1].wdata, ss[0].wdata)),
            out.wstrb.eq(Mux(wsel, ss[1].wstrb, ss[0].wstrb)),
            out.wlast.eq(Mux(wsel, ss[1].wlast, ss[0].wlast)),
            out.wvalid.eq(w_busy & ~w_data_done & Mux(wsel, ss[1].wvalid, ss[0].wvalid)),
        ]
        for i, s in enumerate(ss):
            m.d.comb += [
                s.awready.eq(~w_busy & (wpick == i) & out.awready),
                s.wready.eq(w_busy & ~w_data_done & (w_owner == i) & out.wready),
                s.bid.eq(out.bid), s.bresp.eq(out.bresp),
                s.bvalid.eq(w_busy & (w_owner == i) & out.bvalid),
            ]
        m.d.comb += out.bready.eq(w_busy & Mux(w_owner, ss[1].bready, ss[0].bready))
        with m.If(out.awvalid & out.awready):
            m.d.sync += [w_busy.eq(1), w_owner.eq(wpick), w_last_owner.eq(wpick),
                         w_data_done.eq(0)]
        with m.If(out.wvalid & out.wready & out.wlast):
            m.d.sync += w_data_done.eq(1)
        with m.If(out.bvalid & out.bready):
            m.d.sync += w_busy.eq(0)
        return m


class AXI4LiteToAXI4(wiring.Component):
    """An AXI4-Lite master (32-bit) as single-beat AXI4 bursts on a wider bus.

    Members
    -------
    s : In(AXI4LiteSignature(addr_bits, 32))
    m : Out(AXI4Signature(addr_bits, data_bits, id_bits))
    """

    def __init__(self, *, addr_bits: int, data_bits: int, id_bits: int):
        self.data_bits = data_bits
        super().__init__({
            "s": In(AXI4LiteSignature(addr_width=addr_bits, data_width=32)),
            "m": Out(AXI4Signature(addr_width=addr_bits, data_width=data_bits, id_width=id_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        s, o = self.s, self.m
        n = self.data_bits // 32
        wl = max(1, _log2(n))
        size = 2                                      # 4-byte transfers (narrow)
        waddr_lane = s.awaddr[2:2 + wl] if n > 1 else Const(0, 1)
        raddr_lane = Signal(wl)
        m.d.comb += [
            o.awid.eq(0), o.awaddr.eq(s.awaddr), o.awlen.eq(0), o.awsize.eq(size),
            o.awburst.eq(BURST_INCR), o.awcache.eq(0b0011), o.awprot.eq(s.awprot),
            o.awvalid.eq(s.awvalid), s.awready.eq(o.awready),
            o.wdata.eq(Cat(*[s.wdata] * n)),
            o.wstrb.eq(s.wstrb << (waddr_lane * 4)) if n > 1 else o.wstrb.eq(s.wstrb),
            o.wlast.eq(1), o.wvalid.eq(s.wvalid), s.wready.eq(o.wready),
            s.bresp.eq(o.bresp), s.bvalid.eq(o.bvalid), o.bready.eq(s.bready),
            o.arid.eq(0), o.araddr.eq(s.araddr), o.arlen.eq(0), o.arsize.eq(size),
            o.arburst.eq(BURST_INCR), o.arcache.eq(0b0011), o.arprot.eq(s.arprot),
            o.arvalid.eq(s.arvalid), s.arready.eq(o.arready),
            s.rdata.eq(o.rdata.word_select(raddr_lane, 32) if n > 1 else o.rdata),
            s.rresp.eq(o.rresp), s.rvalid.eq(o.rvalid), o.rready.eq(s.rready),
        ]
        # the write strobes must land with the data: the adapter needs W with AW, which
        # the UART bridge (one access at a time, AW and W together) provides
        if n > 1:
            with m.If(o.arvalid & o.arready):
                m.d.sync += raddr_lane.eq(s.araddr[2:2 + wl])
        return m


class AXI4LiteSplitter(wiring.Component):
    """One AXI4-Lite master onto two slaves by address: ``addr >> split_bit`` 0 or 1.

    One access at a time (the UART bridge makes one at a time).

    Members
    -------
    s : In(AXI4LiteSignature(addr_bits))
    m0, m1 : Out(AXI4LiteSignature(addr_bits))
    """

    def __init__(self, *, addr_bits: int, split_bit: int):
        self.split_bit = split_bit
        sig = AXI4LiteSignature(addr_width=addr_bits, data_width=32)
        super().__init__({"s": In(sig), "m0": Out(sig), "m1": Out(sig)})

    def elaborate(self, platform):
        m = Module()
        s = self.s
        ws = s.awaddr[self.split_bit]
        rs = s.araddr[self.split_bit]
        w_sel = Signal()
        r_sel = Signal()
        with m.If(s.awvalid & s.awready):
            m.d.sync += w_sel.eq(ws)
        with m.If(s.arvalid & s.arready):
            m.d.sync += r_sel.eq(rs)
        for i, o in enumerate((self.m0, self.m1)):
            m.d.comb += [
                o.awaddr.eq(s.awaddr), o.awprot.eq(s.awprot), o.awvalid.eq(s.awvalid & (ws == i)),
                o.wdata.eq(s.wdata), o.wstrb.eq(s.wstrb), o.wvalid.eq(s.wvalid & (ws == i)),
                o.bready.eq(s.bready & (w_sel == i)),
                o.araddr.eq(s.araddr), o.arprot.eq(s.arprot), o.arvalid.eq(s.arvalid & (rs == i)),
                o.rready.eq(s.rready & (r_sel == i)),
            ]
        m.d.comb += [
            s.awready.eq(Mux(ws, self.m1.awready, self.m0.awready)),
            s.wready.eq(Mux(ws, self.m1.wready, self.m0.wready)),
            s.bvalid.eq(Mux(w_sel, self.m1.bvalid, self.m0.bvalid)),
            s.bresp.eq(Mux(w_sel, self.m1.bresp, self.m0.bresp)),
            s.arready.eq(Mux(rs, self.m1.arready, self.m0.arready)),
            s.rvalid.eq(Mux(r_sel, self.m1.rvalid, self.m0.rvalid)),
            s.rdata.eq(Mux(r_sel, self.m1.rdata, self.m0.rdata)),
            s.rresp.eq(Mux(r_sel, self.m1.rresp, self.m0.rresp)),
        ]
        return m


class AXI4RAM(wiring.Component):
    """On-chip RAM behind an AXI4 slave: INCR bursts, byte strobes, one beat per cycle.

    One read port and one write port (a simple dual-port block RAM), so reads
    and writes run at once.  The address wraps at ``size_bytes`` except that
    an access at or above it answers DECERR and writes nothing.

    Parameters
    ----------
    sig : AXI4Signature
    size_bytes : int
        A power of two, at least one bus word.
    """

    def __init__(self, sig: AXI4Signature, size_bytes: int):
        if size_bytes & (size_bytes - 1) or size_bytes < sig.data_width // 8:
            self._MustUse__silence = True
            raise ValueError(f"size_bytes must be a power of two of at least one bus word, "
                             f"not {size_bytes}")
        self.sig = sig
        self.size_bytes = size_bytes
        super().__init__({"s": In(sig)})

    def elaborate(self, platform):
        m = Module()
        s = self.s
        dw = self.sig.data_width
        bb = dw // 8
        sb = _log2(bb)
        depth = self.size_bytes // bb
        ab = max(1, _log2(depth))
        m.submodules.mem = mem = Memory(shape=dw, depth=depth, init=[])
        wp = mem.write_port(granularity=8)
        rp = mem.read_port()

        def in_range(addr):
            return (addr >> _log2(self.size_bytes)) == 0 if len(addr) > _log2(self.size_bytes) \
                else Const(1)

        # ---- reads -----------------------------------------------------------
        r_left = Signal(9)              # beats still to read out of the RAM
        r_addr = Signal(ab)
        r_id = Signal.like(s.arid)
        r_ok = Signal()
        rvalid = Signal()
        rlast = Signal()
        issue = Signal()
        # a new burst waits until the last beat of the previous one is taken (its ID and
        # response are registered per burst)
        m.d.comb += s.arready.eq((r_left == 0) & ~rvalid)
        advance = Signal()
        m.d.comb += advance.eq(~rvalid | s.rready)
        m.d.comb += [issue.eq((r_left != 0) & advance), rp.en.eq(advance), rp.addr.eq(r_addr)]
        with m.If(s.arvalid & s.arready):
            m.d.sync += [r_left.eq(s.arlen + 1), r_addr.eq(s.araddr[sb:sb + ab]), r_id.eq(s.arid),
                         r_ok.eq(in_range(s.araddr))]
        with m.If(issue):
            m.d.sync += [r_left.eq(r_left - 1), r_addr.eq(r_addr + 1)]
        with m.If(advance):
            m.d.sync += [rvalid.eq(issue), rlast.eq(r_left == 1)]
        m.d.comb += [s.rvalid.eq(rvalid), s.rlast.eq(rlast), s.rid.eq(r_id),
                     s.rdata.eq(Mux(r_ok, rp.data, 0)),
                     s.rresp.eq(Mux(r_ok, RESP_OKAY, RESP_DECERR))]
        # no new AR until this burst's beats are all out of the RAM

        # ---- writes ------------------------------------------------------------
        w_active = Signal()
        w_addr = Signal(ab)
        w_id = Signal.like(s.awid)
        w_ok = Signal()
        bvalid = Signal()
        m.d.comb += s.awready.eq(~w_active & ~bvalid)
        with m.If(s.awvalid & s.awready):
            m.d.sync += [w_active.eq(1), w_addr.eq(s.awaddr[sb:sb + ab]), w_id.eq(s.awid),
                         w_ok.eq(in_range(s.awaddr))]
        m.d.comb += s.wready.eq(w_active)
        wfire = Signal()
        m.d.comb += wfire.eq(s.wvalid & s.wready)
        m.d.comb += [wp.addr.eq(w_addr), wp.data.eq(s.wdata),
                     wp.en.eq(Mux(wfire & w_ok, s.wstrb, 0))]
        with m.If(wfire):
            m.d.sync += w_addr.eq(w_addr + 1)
            with m.If(s.wlast):
                m.d.sync += [w_active.eq(0), bvalid.eq(1)]
        with m.If(s.bvalid & s.bready):
            m.d.sync += bvalid.eq(0)
        m.d.comb += [s.bvalid.eq(bvalid), s.bid.eq(w_id),
                     s.bresp.eq(Mux(w_ok, RESP_OKAY, RESP_DECERR))]
        return m
