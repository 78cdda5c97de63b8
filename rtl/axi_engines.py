"""Host-memory word engines on an AXI4 master: read an array of 64-bit words, write one back.

The accelerator top moves keys, hot-map images, estimates and readouts between
host memory and the units as arrays of little-endian 64-bit words.
:class:`WordReader` drives the AR/R channels and :class:`WordWriter` the
AW/W/B channels of one AXI4 master, so one of each can share a port without
an arbiter.  Both move one word per cycle at most.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import BURST_INCR

__all__ = ["WordReader", "WordWriter", "WORD_BYTES"]

WORD_BYTES = 8


def _log2(n: int) -> int:
    return (n - 1).bit_length()


class WordReader(wiring.Component):
    """Read ``count`` 64-bit words from ``addr`` (8-byte aligned) onto ``words``, in order.

    Bursts are INCR, full bus width, at most ``max_burst`` beats, never across
    a 4 KiB boundary; up to ``max_outstanding`` bursts are in flight.  A beat
    answered SLVERR or DECERR delivers none of its words (they are counted in
    ``errors``); the read still runs to its end.

    Parameters
    ----------
    addr_bits, data_bits, id_bits : int
        The AXI4 port's widths (``data_bits`` >= 64).
    max_burst, max_outstanding : int
    flags : callable or None
        ``flags(word) -> Value``: checks computed on each word as it enters the
        output FIFO and delivered beside it (``words.payload.flags``, that
        value's width; 1 bit of 0 when ``None``), so a consumer's decisions
        start from registers, not from a comparison after the FIFO's RAM.

    Members
    -------
    start : In(1)
        Begin a read of ``count`` words at ``addr`` (sampled now; only when idle).
    addr : In(addr_bits)
    count : In(32)
    words : Out(stream.Signature(StructLayout({"data": 64, "flags": n})))
        The words read, in address order, with their flags.  The payload and
        ``valid`` come from registers (the output FIFO has a registered read
        port).
    busy : Out(1)
        From ``start`` until the last beat has been answered and delivered.
    errors : Out(32)
        Failed beats of the current (or last) read.
    ar_*, r_*: the AR and R channel members of an AXI4 master (connect with
        :meth:`connect_axi`).
    """

    def __init__(self, *, addr_bits: int, data_bits: int, id_bits: int, max_burst: int = 16,
                 max_outstanding: int = 8, flags=None):
        if data_bits < 64:
            self._MustUse__silence = True
            raise ValueError(f"WordReader needs a bus of at least 64 bits, not {data_bits}")
        if flags is not None and not callable(flags):
            self._MustUse__silence = True
            raise TypeError(f"flags must be a function of the word or None, not {flags!r}")
        self.addr_bits, self.data_bits, self.id_bits = addr_bits, data_bits, id_bits
        self.max_burst, self.max_outstanding = max_burst, max_outstanding
        self._flags = flags
        n_flags = len(flags(Signal(64))) if flags is not None else 1
        self.word_layout = data.StructLayout({"data": 64, "flags": n_flags})
        super().__init__({
            "start": In(1), "addr": In(addr_bits), "count": In(32),
            "words": Out(stream.Signature(self.word_layout)),
            "busy": Out(1), "errors": Out(32),
            "araddr": Out(addr_bits), "arlen": Out(8), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_bits), "rresp": In(2), "rlast": In(1), "rvalid": In(1),
            "rready": Out(1),
        })

    def connect_axi(self, m, axi):
        """Drive ``axi``'s AR/R members (an ``Out(AXI4Signature)`` port) from this reader."""
        size = _log2(self.data_bits // 8)
        m.d.comb += [
            axi.araddr.eq(self.araddr), axi.arlen.eq(self.arlen), axi.arvalid.eq(self.arvalid),
            axi.arsize.eq(size), axi.arburst.eq(BURST_INCR), axi.arid.eq(0),
            axi.arcache.eq(0b0011), axi.arprot.eq(0), axi.arlock.eq(0), axi.arqos.eq(0),
            self.arready.eq(axi.arready),
            self.rdata.eq(axi.rdata), self.rresp.eq(axi.rresp), self.rlast.eq(axi.rlast),
            self.rvalid.eq(axi.rvalid), axi.rready.eq(self.rready),
        ]

    def elaborate(self, platform):
        m = Module()
        L = self.data_bits // 64                      # words per beat
        bb = self.data_bits // 8                      # bytes per beat
        sb = _log2(bb)
        lw = max(1, _log2(L))

        # ---- AR: beat addresses from the aligned start -------------------------
        ar_addr = Signal(self.addr_bits)              # next burst's byte address (beat aligned)
        ar_left = Signal(33)                          # beats still to request
        outstanding = Signal(range(self.max_outstanding + 1))
        to_4k = Signal(13)
        m.d.comb += to_4k.eq((4096 - ar_addr[:12]) >> sb)
        blen = Signal(9)
        m.d.comb += blen.eq(Mux(ar_left < self.max_burst, ar_left, self.max_burst))
        ar_next = Signal(9)
        m.d.comb += ar_next.eq(Mux(to_4k < blen, to_4k, blen))
        # The next burst's length lands in a register a cycle after ``ar_addr`` and
        # ``ar_left`` change (``ar_ok`` marks it current), so no comparison chain feeds the
        # address adder: bursts are at least a cycle apart, which costs nothing against
        # their R beats.  "Beats still to request / to arrive" are registered flags, so
        # ARVALID, RREADY and ``busy`` need no wide comparison with zero.
        ar_beats = Signal(9)
        ar_ok = Signal()
        ar_more = Signal()
        r_more = Signal()
        m.d.sync += [ar_beats.eq(ar_next), ar_ok.eq(1)]
        m.d.comb += [
            self.araddr.eq(ar_addr), self.arlen.eq(ar_beats - 1),
            self.arvalid.eq(ar_more & ar_ok & (outstanding != self.max_outstanding)),
        ]
        ar_fire = Signal()
        r_burst_done = Signal()
        m.d.comb += ar_fire.eq(self.arvalid & self.arready)
        with m.If(ar_fire):
            m.d.sync += [ar_addr.eq(ar_addr + (ar_beats << sb)), ar_left.eq(ar_left - ar_beats),
                         ar_more.eq(ar_left != ar_beats), ar_ok.eq(0)]
        m.d.sync += outstanding.eq(outstanding + ar_fire - r_burst_done)

        # ---- R: one held beat, words out one per cycle ----------------------------
        # The held beat's words are stepped through one per cycle; the first ``skip`` are
        # before ``addr`` and the ``count`` after them are delivered.  Both are counted
        # down rather than compared against a word index, and "words still to deliver" is
        # a registered flag, so no adder or wide comparison sits on the path from the held
        # word to RREADY.
        beat = Signal(self.data_bits)
        beat_ok = Signal()
        have = Signal()
        lane = Signal(lw)
        beats_left = Signal(33)                       # R beats still to arrive
        skip_left = Signal(lw)                        # leading words still to pass over
        words_left = Signal(32)                       # words still to deliver
        w_more = Signal()                             # words_left != 0, registered
        m.d.comb += r_burst_done.eq(self.rvalid & self.rready & self.rlast)

        in_range = Signal()
        m.d.comb += in_range.eq((skip_left == 0) & w_more)
        word = Signal(64)
        m.d.comb += word.eq(beat.word_select(lane, 64) if L > 1 else beat)
        # The words leave through two small FIFOs with registered read ports.  RREADY
        # depends on registered state only, never on the consumer's ready, which drives
        # only the second FIFO's read side; that FIFO's write side is ready from its
        # registered level, so the placer can put the R-channel logic by the AXI port and
        # the delivery registers by the consumer without a combinational loop between
        # them (that loop crossed the chip twice).  The word and its flags reach the
        # consumer from flip-flops.
        m.submodules.out = out = fifo.SyncFIFOBuffered(width=self.word_layout.size, depth=5)
        m.submodules.deliver = dq = fifo.SyncFIFOBuffered(width=self.word_layout.size, depth=3)
        flags = self._flags(word) if self._flags is not None else Const(0, 1)
        m.d.comb += [out.w_en.eq(have & beat_ok & in_range & out.w_rdy),
                     out.w_data.eq(Cat(word, flags)),
                     dq.w_en.eq(out.r_rdy), dq.w_data.eq(out.r_data), out.r_en.eq(dq.w_rdy),
                     self.words.valid.eq(dq.r_rdy), self.words.payload.eq(dq.r_data),
                     dq.r_en.eq(self.words.ready)]
        step = Signal()                               # the held word is done this cycle
        m.d.comb += step.eq(have & (~(beat_ok & in_range) | out.w_rdy))
        last_lane = Signal()
        m.d.comb += last_lane.eq(lane == L - 1)
        free = Signal()
        m.d.comb += free.eq(~have | (step & last_lane))
        m.d.comb += self.rready.eq(free & r_more)
        with m.If(step):
            m.d.sync += lane.eq(lane + 1)
            with m.If(skip_left != 0):
                m.d.sync += skip_left.eq(skip_left - 1)
            with m.Elif(w_more):
                m.d.sync += [words_left.eq(words_left - 1), w_more.eq(words_left != 1)]
            with m.If(last_lane):
                m.d.sync += [have.eq(0), lane.eq(0)]
        with m.If(self.rvalid & self.rready):
            m.d.sync += [beat.eq(self.rdata), beat_ok.eq(~self.rresp[1]), have.eq(1), lane.eq(0),
                         beats_left.eq(beats_left - 1), r_more.eq(beats_left != 1)]
            with m.If(self.rresp[1]):
                m.d.sync += self.errors.eq(self.errors + 1)

        # ---- start ------------------------------------------------------------
        with m.If(self.start & ~self.busy):
            base = Signal(self.addr_bits)
            skip = Signal(lw)
            m.d.comb += [base.eq(Cat(Const(0, sb), self.addr[sb:])),
                         skip.eq(self.addr[3:sb] if L > 1 else 0)]
            total = Signal(34)
            m.d.comb += total.eq(skip + self.count)
            nbeats = Signal(33)
            m.d.comb += nbeats.eq(Mux(self.count == 0, 0, (total + L - 1) >> (lw if L > 1 else 0)))
            m.d.sync += [ar_addr.eq(base), ar_left.eq(nbeats), beats_left.eq(nbeats),
                         ar_more.eq(nbeats != 0), r_more.eq(nbeats != 0), ar_ok.eq(0),
                         skip_left.eq(skip), words_left.eq(self.count),
                         w_more.eq(self.count != 0), lane.eq(0), have.eq(0),
                         self.errors.eq(0)]
        m.d.comb += self.busy.eq(ar_more | r_more | have | (out.level != 0) | (dq.level != 0))
        return m


class WordWriter(wiring.Component):
    """Write 64-bit words, each to its own address (8-byte aligned).

    Every write is one single-beat INCR write of the full bus width with the
    strobes of its words' bytes, so no burst can cross 4 KiB and nothing
    outside the words is written; because every word carries its address, one
    writer serves several output arrays at once.  On a bus wider than 64 bits,
    consecutive words that land in one beat (different lanes of the same
    bus-width-aligned address) are merged into one write: a word for another
    beat, for a lane the pending beat already holds, or no word in a cycle
    sends the pending beat.  So a run of consecutive words costs one AW and one
    W beat per bus width instead of one per word, and the order of the writes
    to any byte is kept.  A write answered SLVERR or DECERR is counted in
    ``errors`` (once per write, however many words it carried).

    Members
    -------
    start : In(1)
        Zero ``errors`` (only when idle).
    words : In(stream.Signature(StructLayout({"addr": addr_bits, "data": 64})))
    busy : Out(1)
        A word is being written or a response is awaited.
    errors : Out(32)
    aw_*, w_*, b_*: the AW, W and B members of an AXI4 master (:meth:`connect_axi`).
    """

    def __init__(self, *, addr_bits: int, data_bits: int, id_bits: int, max_outstanding: int = 16):
        if data_bits < 64:
            self._MustUse__silence = True
            raise ValueError(f"WordWriter needs a bus of at least 64 bits, not {data_bits}")
        self.addr_bits, self.data_bits, self.id_bits = addr_bits, data_bits, id_bits
        self.max_outstanding = max_outstanding
        self.word_layout = data.StructLayout({"addr": addr_bits, "data": 64})
        super().__init__({
            "start": In(1),
            "words": In(stream.Signature(self.word_layout)),
            "busy": Out(1), "errors": Out(32),
            "awaddr": Out(addr_bits), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
        })

    def connect_axi(self, m, axi):
        size = _log2(self.data_bits // 8)
        m.d.comb += [
            axi.awaddr.eq(self.awaddr), axi.awlen.eq(0), axi.awsize.eq(size),
            axi.awburst.eq(BURST_INCR), axi.awid.eq(0), axi.awcache.eq(0b0011), axi.awprot.eq(0),
            axi.awlock.eq(0), axi.awqos.eq(0), axi.awvalid.eq(self.awvalid),
            self.awready.eq(axi.awready),
            axi.wdata.eq(self.wdata), axi.wstrb.eq(self.wstrb), axi.wlast.eq(1),
            axi.wvalid.eq(self.wvalid), self.wready.eq(axi.wready),
            self.bresp.eq(axi.bresp), self.bvalid.eq(axi.bvalid), axi.bready.eq(self.bready),
        ]

    def elaborate(self, platform):
        m = Module()
        L = self.data_bits // 64
        sb = _log2(self.data_bits // 8)
        # A write goes into an AW queue and a W queue at once; each channel drains its own
        # queue, so a subordinate that takes W a cycle after AW still takes a write a cycle.
        m.submodules.awq = awq = fifo.SyncFIFOBuffered(width=self.addr_bits - sb, depth=4)
        pending = Signal(range(self.max_outstanding + 1))
        addr = self.words.payload.addr
        issued = Signal()
        room = Signal()
        m.d.comb += [
            room.eq(awq.w_rdy & (pending != self.max_outstanding)),
            self.awaddr.eq(Cat(Const(0, sb), awq.r_data)),
            self.awvalid.eq(awq.r_rdy), awq.r_en.eq(self.awready),
        ]
        if L == 1:
            m.submodules.wq = wq = fifo.SyncFIFOBuffered(width=64, depth=4)
            m.d.comb += [
                issued.eq(self.words.valid & room & wq.w_rdy),
                self.words.ready.eq(issued),
                awq.w_en.eq(issued), awq.w_data.eq(addr[sb:]),
                wq.w_en.eq(issued), wq.w_data.eq(self.words.payload.data),
                self.wdata.eq(wq.r_data), self.wstrb.eq(Const(0xFF, 8)),
            ]
            has_pending_beat = Const(0)
        else:
            # the beat being merged: its address, data and one strobe bit per word lane
            m.submodules.wq = wq = fifo.SyncFIFOBuffered(width=self.data_bits + L, depth=4)
            p_have = Signal()
            p_beat = Signal(self.addr_bits - sb)
            p_data = Signal(self.data_bits)
            p_strb = Signal(L)
            lane_bit = Signal(L)
            merge = Signal()
            load = Signal()
            m.d.comb += [
                lane_bit.eq(Const(1, L) << addr[3:sb]),
                merge.eq(self.words.valid & p_have & (addr[sb:] == p_beat) &
                         ((p_strb & lane_bit) == 0)),
                issued.eq(p_have & ~merge & room & wq.w_rdy),
                load.eq(self.words.valid & ~merge & (~p_have | issued)),
                self.words.ready.eq(merge | load),
                awq.w_en.eq(issued), awq.w_data.eq(p_beat),
                wq.w_en.eq(issued), wq.w_data.eq(Cat(p_data, p_strb)),
                self.wdata.eq(wq.r_data[:self.data_bits]),
                self.wstrb.eq(Cat(*[wq.r_data[self.data_bits + i].replicate(8) for i in range(L)])),
            ]
            with m.If(merge):
                m.d.sync += [p_data.word_select(addr[3:sb], 64).eq(self.words.payload.data),
                             p_strb.eq(p_strb | lane_bit)]
            with m.If(load):
                m.d.sync += [p_have.eq(1), p_beat.eq(addr[sb:]), p_strb.eq(lane_bit),
                             p_data.word_select(addr[3:sb], 64).eq(self.words.payload.data)]
            with m.Elif(issued):
                m.d.sync += p_have.eq(0)
            has_pending_beat = p_have
        m.d.comb += [self.wvalid.eq(wq.r_rdy), wq.r_en.eq(self.wready)]
        m.d.comb += self.bready.eq(1)
        b_fire = Signal()
        m.d.comb += b_fire.eq(self.bvalid)
        m.d.sync += pending.eq(pending + issued - b_fire)
        with m.If(b_fire & self.bresp[1]):
            m.d.sync += self.errors.eq(self.errors + 1)
        with m.If(self.start & ~self.busy):
            m.d.sync += self.errors.eq(0)
        m.d.comb += self.busy.eq(self.words.valid | has_pending_beat | (pending != 0) |
                                 awq.r_rdy | wq.r_rdy)
        return m
