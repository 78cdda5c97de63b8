"""The embedding gather/scatter DMA: an AXI4 master that moves embedding rows.

Gather copies the row of every key ``(t, r, u)`` from the host table
(``base[t] + r * stride[t]``) to the packed staging buffer
(``staging + u * row_bytes``); scatter copies it back.  The result in memory
and the reported status equal :func:`hotline.host.gather.transfer` run on the
same keys, whatever the memory latency, pauses or errors.

Datapath (every queue is in order, so rows retire in stream order)::

    keys -> address pipeline (table RAM, range check, row*stride, u*row_bytes)
         -> row queue -> AR generator (bursts split at 4 KiB and max_burst_beats;
                         each burst reserves its space in the read buffer first)
         -> R receiver -> read buffer (rbuf) + per-row "complete, error?" flags
         -> writer: once a row has fully arrived, byte-realigns it from its source
            offset to its destination offset (one output word per cycle, no
            extra cycle per row; WSTRB masks the row's ends) -> W stage
         -> AW generator (bursts split as for AR) -> B tracking -> retirement
            (counts, first error), key by key in stream order.

Reads run ahead of writes (up to ``max_outstanding`` read bursts in flight), so
reads and writes overlap; a row is written only after all of its data arrived
without error (store and forward per row), which is what guarantees that a row
whose read failed is never written, partly or wholly.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, C
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..config import HotlineConfig
from .checks import require_config
from ..host.gather import ErrorKind, u_bits
from .axi import AXI4Signature, BURST_INCR

__all__ = ["GatherDMA", "table_config_layout", "key_layout", "command_layout", "status_layout",
           "COUNT_BITS"]

#: Width of the command's key count and of every status counter.
COUNT_BITS = 32
#: Width of the error kind field (see :class:`hotline.host.gather.ErrorKind`).
KIND_BITS = 3


def key_layout(cfg: HotlineConfig) -> data.StructLayout:
    """One key of a gather/scatter command: table, row and staging position ``u``."""
    return data.StructLayout({"table": cfg.keys.table_bits, "row": cfg.keys.row_bits,
                              "u": u_bits(cfg)})


def table_config_layout(cfg: HotlineConfig) -> data.StructLayout:
    """One write of the table registers: base address, row stride (bytes), row count."""
    return data.StructLayout({"table": cfg.keys.table_bits, "base": cfg.gather.addr_bits,
                              "stride": cfg.gather.stride_bits, "rows": cfg.keys.row_bits + 1})


def command_layout(cfg: HotlineConfig) -> data.StructLayout:
    """A command: ``op`` (0 gather, 1 scatter) over the next ``count`` keys."""
    return data.StructLayout({"op": 1, "count": COUNT_BITS})


def status_layout(cfg: HotlineConfig) -> data.StructLayout:
    """The completion status of a command (see :class:`hotline.host.gather.GatherResult`)."""
    return data.StructLayout({
        "op": 1, "rows_moved": COUNT_BITS, "errors": COUNT_BITS,
        "first_error_kind": KIND_BITS, "first_error_index": COUNT_BITS,
        "first_error_key": key_layout(cfg),
    })


def _min(*values):
    out = values[0]
    for v in values[1:]:
        out = Mux(v < out, v, out)
    return out


class _BurstSplitter:
    """Issues one row's bursts on an AXI address channel (AR or AW), inside ``elaborate``.

    A row of ``rem`` words from word address ``cur`` goes out as INCR bursts of
    at most ``max_beats`` words that never cross a 4 KiB page.  The caller
    drives ``load`` (take a new row: ``active`` from ``start_active``, and its
    first word and word count) and ``can_issue`` (room downstream), and reads
    ``n`` (words of the burst being offered), ``issue`` and ``fin`` (this burst
    ends the row).

    Parameters
    ----------
    m : Module
    name : str
        Prefix of the signals (``ar`` or ``aw``).
    valid, ready, addr, length : Signal
        The channel's ``*valid``, ``*ready``, ``*addr`` and ``*len``.
    word_bits, row_words, max_beats, page_words, lane_bits : int / range
        Word-address width, range of a row's word count, longest burst, words
        in 4 KiB, log2 of the bus width in bytes.
    """

    def __init__(self, m, name, *, valid, ready, addr, length, word_bits, row_words, max_beats,
                 page_words, lane_bits):
        self.active = Signal(name=f"{name}_active")
        self.cur = Signal(word_bits, name=f"{name}_cur")
        self.rem = Signal(row_words, name=f"{name}_rem")
        self.n = Signal(range(max(max_beats, page_words) + 1), name=f"{name}_n")
        self.can_issue = Signal(name=f"{name}_can_issue")
        self.issue = Signal(name=f"{name}_issue")
        self.fin = Signal(name=f"{name}_fin")
        self.load = Signal(name=f"{name}_load")
        self.start_active = Signal(name=f"{name}_start_active")
        self.start_cur = Signal(word_bits, name=f"{name}_start_cur")
        self.start_rem = Signal(row_words, name=f"{name}_start_rem")
        m.d.comb += [
            self.n.eq(_min(self.rem, C(max_beats), page_words - self.cur[:exact_log2(page_words)])),
            self.issue.eq(self.active & (~valid | ready) & self.can_issue),
            self.fin.eq(self.issue & (self.rem == self.n)),
        ]
        with m.If(self.issue):
            m.d.sync += [
                valid.eq(1),
                addr.eq(Cat(C(0, lane_bits), self.cur)),
                length.eq(self.n - 1),
                self.cur.eq(self.cur + self.n),
                self.rem.eq(self.rem - self.n),
            ]
        with m.Elif(ready):
            m.d.sync += valid.eq(0)
        with m.If(self.load):
            m.d.sync += [self.active.eq(self.start_active), self.cur.eq(self.start_cur),
                         self.rem.eq(self.start_rem)]
        with m.Elif(self.fin):
            m.d.sync += self.active.eq(0)


class GatherDMA(wiring.Component):
    """Embedding gather/scatter DMA, an AXI4 memory-mapped master.

    Parameters
    ----------
    cfg : HotlineConfig
        Uses ``cfg.gather`` (bus widths, outstanding bursts, burst length, row
        size limit, read buffer), ``cfg.keys`` (table count, row width) and
        ``cfg.reorder.max_batch_keys`` (width of ``u``).

    Members
    -------
    m_axi : Out(AXI4Signature)
        The memory bus.  Every burst is INCR with ID 0 and full-width beats; no
        burst crosses a 4 KiB boundary.  Each read burst reserves its space in the
        read buffer before its AR is issued, so RREADY never stalls read data.
    table_cfg : In(stream.Signature(table_config_layout))
        Writes the base, stride and row count of one table; accepted only
        while idle.  A table index at or above ``cfg.keys.tables`` is ignored.
        Tables not written since reset have 0 rows.
    row_bytes : In(unsigned)
        Bytes per row, sampled when a command is accepted.  0 or more than
        ``cfg.gather.max_row_bytes`` makes every key of the command a ``SIZE``
        error.
    staging : In(addr_bits)
        Staging buffer address, sampled when a command is accepted.
    outstanding_limit : In(range(max_outstanding + 1))
        Runtime cap on read bursts in flight; 0 (or anything above the
        configured ``max_outstanding``) means the configured maximum.
    cmd : In(stream.Signature(command_layout))
        ``op`` (0 gather, 1 scatter) and ``count``; the unit then takes exactly
        ``count`` keys from ``keys``.  The next command is accepted only after
        the previous one has completed (all its writes acknowledged), so a
        scatter after a gather reads what the gather wrote.
    keys : In(stream.Signature(key_layout))
        ``(table, row, u)`` per row.
    done : Out(stream.Signature(status_layout))
        One status per command, after its last write response: rows moved,
        error count, and the kind, stream position and key of the first error.
    busy : Out(1)
        A command is being processed or its status awaits ``done.ready``.

    Errors: a table index ``>= cfg.keys.tables``, a row ``>= rows[t]``, a bad
    ``row_bytes``, an SLVERR/DECERR on any read beat of a row (the row is then
    not written at all) or on a write response of a row (bytes the memory
    accepted stay written) make that key an error.  The unit **finishes the
    rest of the command**: it skips the failed row, moves the others and
    reports the counts and the first error in stream order.  A row's source
    must not overlap the destination of a row of the same command (reads run
    ahead of writes).
    """

    def __init__(self, cfg: HotlineConfig):
        require_config(self, cfg)
        self.cfg = cfg
        g = cfg.gather
        self.size_bits = g.max_row_bytes.bit_length()
        super().__init__({
            "m_axi": Out(AXI4Signature(addr_width=g.addr_bits, data_width=g.data_bits,
                                       id_width=g.id_bits)),
            "table_cfg": In(stream.Signature(table_config_layout(cfg))),
            "row_bytes": In(self.size_bits),
            "staging": In(g.addr_bits),
            "outstanding_limit": In(range(g.max_outstanding + 1)),
            "cmd": In(stream.Signature(command_layout(cfg))),
            "keys": In(stream.Signature(key_layout(cfg))),
            "done": Out(stream.Signature(status_layout(cfg))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, g = self.cfg, self.cfg.gather
        W = g.data_bytes
        LW = exact_log2(W)
        A = g.addr_bits
        WA = A - LW                          # word address width
        L_BITS = self.size_bits
        BEATS = range(g.max_row_beats + 1)   # beats of one row
        MAXB = g.max_burst_beats
        PAGE_WORDS = 4096 // W
        ones_w = Const((1 << W) - 1, W)
        axi = self.m_axi
        klay = key_layout(cfg)

        # ---------------------------------------------------------------- command
        IDLE, RUN, DONE = 0, 1, 2
        state = Signal(2, init=IDLE)
        op = Signal()
        count = Signal(COUNT_BITS)
        L = Signal(L_BITS)                   # row bytes of the running command
        staging = Signal(A)
        size_bad = Signal()
        accepted = Signal(COUNT_BITS)
        retired = Signal(COUNT_BITS)
        moved = Signal(COUNT_BITS)
        errors = Signal(COUNT_BITS)
        first_kind = Signal(KIND_BITS)
        first_index = Signal(COUNT_BITS)
        first_key = Signal(klay)

        m.d.comb += [
            self.cmd.ready.eq(state == IDLE),
            self.busy.eq(state != IDLE),
            self.done.valid.eq(state == DONE),
            self.done.payload.op.eq(op),
            self.done.payload.rows_moved.eq(moved),
            self.done.payload.errors.eq(errors),
            self.done.payload.first_error_kind.eq(first_kind),
            self.done.payload.first_error_index.eq(first_index),
            self.done.payload.first_error_key.eq(first_key),
        ]
        with m.Switch(state):
            with m.Case(IDLE):
                with m.If(self.cmd.valid):
                    m.d.sync += [
                        state.eq(RUN),
                        op.eq(self.cmd.payload.op),
                        count.eq(self.cmd.payload.count),
                        L.eq(self.row_bytes),
                        staging.eq(self.staging),
                        size_bad.eq((self.row_bytes == 0) | (self.row_bytes > g.max_row_bytes)),
                        accepted.eq(0), retired.eq(0), moved.eq(0), errors.eq(0),
                        first_kind.eq(ErrorKind.NONE), first_index.eq(0), first_key.eq(0),
                    ]
            with m.Case(RUN):
                # retired only reaches count after every write response came back.
                with m.If((accepted == count) & (retired == count)):
                    m.d.sync += state.eq(DONE)
            with m.Case(DONE):
                with m.If(self.done.ready):
                    m.d.sync += state.eq(IDLE)

        # ---------------------------------------------------------- table registers
        entry = data.StructLayout({"base": A, "stride": g.stride_bits,
                                   "rows": cfg.keys.row_bits + 1})
        m.submodules.table_mem = table_mem = Memory(shape=entry, depth=cfg.keys.tables, init=[])
        twp = table_mem.write_port()
        trp = table_mem.read_port(domain="sync")
        tc = self.table_cfg.payload
        m.d.comb += [
            self.table_cfg.ready.eq(state == IDLE),
            twp.addr.eq(tc.table),
            twp.data.base.eq(tc.base),
            twp.data.stride.eq(tc.stride),
            twp.data.rows.eq(tc.rows),
            twp.en.eq(self.table_cfg.valid & (state == IDLE) & (tc.table < cfg.keys.tables)),
        ]
        # Memories are not reset: a per-table bit (reset to 0) says the entry was written.
        tvalid = Signal(cfg.keys.tables)
        with m.If(twp.en):
            m.d.sync += tvalid.bit_select(tc.table, 1).eq(1)

        # ---------------------------------------------------------------- FIFOs
        depth_rows = g.max_outstanding + 8
        desc = data.StructLayout({
            "kind": KIND_BITS, "src_w": WA, "dst_w": WA, "nr": BEATS, "nw": BEATS,
            "first": 1, "o": LW + 1, "do": LW,
        })
        wrow = data.StructLayout({"dst_w": WA, "nw": BEATS, "nowrite": 1, "kind": KIND_BITS})
        btrack_lay = data.StructLayout({"nowrite": 1, "kind": KIND_BITS})
        m.submodules.keyq = keyq = SyncFIFOBuffered(width=klay.size,
                                                     depth=2 * g.max_outstanding + 24)
        m.submodules.rowq = rowq = SyncFIFO(width=desc.size, depth=4)
        m.submodules.rdesc = rdesc = SyncFIFOBuffered(width=desc.size, depth=depth_rows)
        m.submodules.rcnt = rcnt = SyncFIFOBuffered(width=len(Signal(BEATS)), depth=depth_rows)
        # Plain SyncFIFO: it takes a write whenever it is not full (see the R receiver).
        m.submodules.rdone = rdone = SyncFIFO(width=1, depth=depth_rows)
        # One spare entry: SyncFIFOBuffered can refuse a write one entry short of full.
        m.submodules.rbuf = rbuf = SyncFIFOBuffered(width=W * 8, depth=g.rbuf_beats + 1)
        m.submodules.wrowq = wrowq = SyncFIFO(width=wrow.size, depth=4)
        m.submodules.wdata = wdataq = SyncFIFO(width=W * 8 + W, depth=4)
        m.submodules.wlen = wlenq = SyncFIFO(width=len(Signal(range(MAXB + 1))), depth=8)
        m.submodules.btrack = btrack = SyncFIFOBuffered(width=btrack_lay.size,
                                                        depth=g.max_outstanding)
        m.submodules.blast = blast = SyncFIFOBuffered(width=1, depth=g.max_outstanding)

        # ------------------------------------------------ address pipeline (3 stages)
        adv = Signal()      # the whole pipeline moves when its output can be taken
        take = Signal()
        k = self.keys.payload
        m.d.comb += [
            take.eq((state == RUN) & (accepted != count) & adv & keyq.w_rdy),
            self.keys.ready.eq(take),
            keyq.w_data.eq(k.as_value()),
            keyq.w_en.eq(take & self.keys.valid),
            trp.addr.eq(k.table),
            trp.en.eq(adv),
        ]
        fire0 = take & self.keys.valid
        with m.If(fire0):
            m.d.sync += accepted.eq(accepted + 1)

        v1, key1, tbad1, tset1 = Signal(), Signal(klay), Signal(), Signal()
        v2, key2, kind2 = Signal(), Signal(klay), Signal(KIND_BITS)
        base2, prod_r2, prod_u2 = Signal(A), Signal(A), Signal(A)
        v3, kind3, tab3, stg3 = Signal(), Signal(KIND_BITS), Signal(A), Signal(A)
        with m.If(adv):
            m.d.sync += [
                v1.eq(fire0), key1.eq(k), tbad1.eq(k.table >= cfg.keys.tables),
                tset1.eq(tvalid.bit_select(k.table, 1)),
                v2.eq(v1), key2.eq(key1),
                kind2.eq(Mux(size_bad, ErrorKind.SIZE,
                             Mux(tbad1, ErrorKind.TABLE,
                                 Mux(~tset1 | (key1.row >= trp.data.rows), ErrorKind.ROW,
                                     ErrorKind.NONE)))),
                base2.eq(trp.data.base),
                prod_r2.eq(key1.row * trp.data.stride),
                prod_u2.eq(key1.u * L),
                v3.eq(v2), kind3.eq(kind2),
                tab3.eq(base2 + prod_r2),
                stg3.eq(staging + prod_u2),
            ]
        m.d.comb += adv.eq(~v3 | rowq.w_rdy)

        # Row geometry, from the source and destination offsets in the bus word.
        src3 = Mux(op, stg3, tab3)
        dst3 = Mux(op, tab3, stg3)
        so, do = src3[:LW], dst3[:LW]
        d3 = Signal(desc)
        m.d.comb += [
            d3.kind.eq(kind3),
            d3.src_w.eq(src3[LW:]),
            d3.dst_w.eq(dst3[LW:]),
            # An erroneous row reads nothing.
            d3.nr.eq(Mux(kind3 == ErrorKind.NONE, (so + L + (W - 1)) >> LW, 0)),
            d3.nw.eq((do + L + (W - 1)) >> LW),
            # Output word k is bytes [o, o + W) of (word k-1+first, word k+first).
            d3.first.eq(so > do),
            d3.o.eq(Mux(so > do, so - do, so + W - do)),
            d3.do.eq(do),
            rowq.w_data.eq(d3.as_value()),
            rowq.w_en.eq(v3 & adv),
        ]

        # ------------------------------------------------------------ AR generator
        limit = Signal(range(g.max_outstanding + 1))
        m.d.comb += limit.eq(Mux((self.outstanding_limit == 0)
                                 | (self.outstanding_limit > g.max_outstanding),
                                 g.max_outstanding, self.outstanding_limit))
        credits = Signal(range(g.rbuf_beats + 1), init=g.rbuf_beats)
        outstanding = Signal(range(g.max_outstanding + 1))

        ar = _BurstSplitter(m, "ar", valid=axi.arvalid, ready=axi.arready, addr=axi.araddr,
                            length=axi.arlen, word_bits=WA, row_words=BEATS, max_beats=MAXB,
                            page_words=PAGE_WORDS, lane_bits=LW)
        rq = data.View(desc, rowq.r_data)
        m.d.comb += [
            ar.can_issue.eq((credits >= ar.n) & (outstanding < limit)),
            ar.load.eq((~ar.active | ar.fin) & rowq.r_rdy & rdesc.w_rdy & rcnt.w_rdy),
            ar.start_active.eq(rq.nr != 0), ar.start_cur.eq(rq.src_w), ar.start_rem.eq(rq.nr),
            rowq.r_en.eq(ar.load),
            rdesc.w_data.eq(rowq.r_data),
            rdesc.w_en.eq(ar.load),
            rcnt.w_data.eq(rq.nr),
            rcnt.w_en.eq(ar.load & (rq.nr != 0)),
        ]

        # -------------------------------------------------------------- R receiver
        # R is never back-pressured: every beat's space in rbuf was reserved before its
        # AR went out, a row's count is queued (rcnt) before its first AR, and rdone
        # holds no more rows than rdesc.  Only rows that read something pass here.
        rx_cnt = Signal(BEATS)
        rx_err = Signal()
        nrh = Signal(BEATS)
        m.d.comb += nrh.eq(rcnt.r_data)
        r_fire = axi.rvalid & axi.rready
        r_err = rx_err | axi.rresp[1]
        m.d.comb += [
            axi.rready.eq(rcnt.r_rdy),
            rbuf.w_data.eq(axi.rdata),
            rbuf.w_en.eq(r_fire),
        ]
        with m.If(r_fire):
            with m.If(rx_cnt + 1 == nrh):
                m.d.comb += [rdone.w_data.eq(r_err), rdone.w_en.eq(1), rcnt.r_en.eq(1)]
                m.d.sync += [rx_cnt.eq(0), rx_err.eq(0)]
            with m.Else():
                m.d.sync += [rx_cnt.eq(rx_cnt + 1), rx_err.eq(r_err)]

        rbuf_pop = rbuf.r_en & rbuf.r_rdy
        m.d.sync += [
            credits.eq(credits - Mux(ar.issue, ar.n, 0) + rbuf_pop),
            outstanding.eq(outstanding + ar.issue - (r_fire & axi.rlast)),
        ]

        # ------------------------------------------------------ writer / realigner
        # A row of nw output words takes nw steps; output word k is bytes [o, o + W) of
        # (beat k-1+first, beat k+first).  A two-word head buffer in front of rbuf lets
        # the first step of a row with first = 1 take beats 0 and 1 at once, so
        # realignment costs no extra cycle per row.
        wr_active = Signal()
        wr_discard = Signal()
        wr_s = Signal(range(g.max_row_beats + 2))
        wr_steps = Signal(range(g.max_row_beats + 2))
        wr_nr = Signal(BEATS)
        wr_nw = Signal(BEATS)
        wr_first = Signal()
        wr_o = Signal(LW + 1)
        wr_fmask = Signal(W)
        wr_lmask = Signal(W)
        prev = Signal(W * 8)
        hb0, hb1 = Signal(W * 8), Signal(W * 8)   # head buffer, hb0 oldest
        hc = Signal(range(3))

        k = wr_s
        two_first = (k == 0) & wr_first & ~wr_discard
        need = Signal(2)    # beats this step consumes
        m.d.comb += need.eq(Mux(wr_discard, 1,
                                Mux(k == 0, Mux(wr_first & (wr_nr >= 2), 2, 1),
                                    Mux(k + wr_first < wr_nr, 1, 0))))
        emit = ~wr_discard
        step = Signal()
        m.d.comb += step.eq(wr_active & (hc >= need) & (~emit | wdataq.w_rdy))
        lo_word = Mux(two_first, hb0, prev)
        hi_word = Mux(two_first, hb1, hb0)
        wword = (Cat(lo_word, hi_word) >> Cat(C(0, 3), wr_o))[:W * 8]
        wstrb = (ones_w & Mux(k == 0, wr_fmask, ones_w)
                 & Mux(k == wr_nw - 1, wr_lmask, ones_w))
        m.d.comb += [
            wdataq.w_data.eq(Cat(wword, wstrb)),
            wdataq.w_en.eq(step & emit),
        ]
        with m.If(step):
            m.d.sync += [wr_s.eq(wr_s + 1), prev.eq(hi_word)]

        # Head buffer: drop what the step consumed, refill from rbuf.
        used = Mux(step, need, 0)
        after = Signal(range(3))
        fill = Signal()
        m.d.comb += [
            after.eq(hc - used),
            fill.eq(rbuf.r_rdy & (after < 2)),
            rbuf.r_en.eq(fill),
        ]
        m.d.sync += hc.eq(after + fill)
        with m.If(fill & (after == 0)):
            m.d.sync += hb0.eq(rbuf.r_data)
        with m.Elif(used != 0):
            m.d.sync += hb0.eq(hb1)
        with m.If(fill & (after == 1)):
            m.d.sync += hb1.eq(rbuf.r_data)

        hd = data.View(desc, rdesc.r_data)
        reads = hd.kind == ErrorKind.NONE       # rows that read have an rdone entry
        bad = ~reads | rdone.r_data[0]
        kind_in = Mux(~reads, hd.kind, Mux(rdone.r_data[0], ErrorKind.READ, ErrorKind.NONE))
        wr_load = Signal()
        m.d.comb += wr_load.eq((~wr_active | (step & (wr_s + 1 == wr_steps)))
                               & rdesc.r_rdy & (~reads | rdone.r_rdy) & wrowq.w_rdy)
        wq = Signal(wrow)
        m.d.comb += [
            rdesc.r_en.eq(wr_load),
            rdone.r_en.eq(wr_load & reads),
            wq.dst_w.eq(hd.dst_w), wq.nw.eq(hd.nw), wq.nowrite.eq(bad), wq.kind.eq(kind_in),
            wrowq.w_data.eq(wq.as_value()),
            wrowq.w_en.eq(wr_load),
        ]
        steps_in = Mux(bad, hd.nr, hd.nw)
        last_byte = (hd.do + L - 1)[:LW]
        with m.If(wr_load):
            m.d.sync += [
                wr_active.eq(steps_in != 0),
                wr_discard.eq(bad),
                wr_s.eq(0),
                wr_steps.eq(steps_in),
                wr_nr.eq(hd.nr),
                wr_nw.eq(hd.nw),
                wr_first.eq(hd.first),
                wr_o.eq(hd.o),
                wr_fmask.eq((ones_w << hd.do)[:W]),
                wr_lmask.eq(ones_w >> (~last_byte)[:LW]),  # W-1-last_byte
            ]
        with m.Elif(step & (wr_s + 1 == wr_steps)):
            m.d.sync += wr_active.eq(0)

        # ------------------------------------------------------------ AW generator
        aw = _BurstSplitter(m, "aw", valid=axi.awvalid, ready=axi.awready, addr=axi.awaddr,
                            length=axi.awlen, word_bits=WA, row_words=BEATS, max_beats=MAXB,
                            page_words=PAGE_WORDS, lane_bits=LW)
        wh = data.View(wrow, wrowq.r_data)
        bt_in = Signal(btrack_lay)
        m.d.comb += [
            aw.can_issue.eq(wlenq.w_rdy & blast.w_rdy),
            aw.load.eq((~aw.active | aw.fin) & wrowq.r_rdy & btrack.w_rdy),
            aw.start_active.eq(~wh.nowrite), aw.start_cur.eq(wh.dst_w), aw.start_rem.eq(wh.nw),
            wrowq.r_en.eq(aw.load),
            bt_in.nowrite.eq(wh.nowrite), bt_in.kind.eq(wh.kind),
            btrack.w_data.eq(bt_in.as_value()),
            btrack.w_en.eq(aw.load),
            wlenq.w_data.eq(aw.n),
            wlenq.w_en.eq(aw.issue),
            blast.w_data.eq(aw.rem == aw.n),
            blast.w_en.eq(aw.issue),
        ]

        # ----------------------------------------------------------------- W stage
        w_cnt = Signal(range(MAXB + 1))
        w_load = Signal()
        w_last = w_cnt + 1 == wlenq.r_data
        m.d.comb += [
            w_load.eq((~axi.wvalid | axi.wready) & wdataq.r_rdy & wlenq.r_rdy),
            wdataq.r_en.eq(w_load),
            wlenq.r_en.eq(w_load & w_last),
        ]
        with m.If(w_load):
            m.d.sync += [
                axi.wvalid.eq(1),
                axi.wdata.eq(wdataq.r_data[:W * 8]),
                axi.wstrb.eq(wdataq.r_data[W * 8:]),
                axi.wlast.eq(w_last),
                w_cnt.eq(Mux(w_last, 0, w_cnt + 1)),
            ]
        with m.Elif(axi.wready):
            m.d.sync += axi.wvalid.eq(0)

        # -------------------------------------------------------------- retirement
        bh = data.View(btrack_lay, btrack.r_data)
        b_err = Signal()
        retire = Signal()
        retire_kind = Signal(KIND_BITS)
        b_fire = axi.bvalid & axi.bready
        b_row_err = b_err | axi.bresp[1]
        with m.If(btrack.r_rdy & keyq.r_rdy):
            with m.If(bh.nowrite):
                m.d.comb += [retire.eq(1), retire_kind.eq(bh.kind)]
            with m.Else():
                m.d.comb += axi.bready.eq(blast.r_rdy)
                with m.If(b_fire):
                    m.d.comb += blast.r_en.eq(1)
                    with m.If(blast.r_data[0]):
                        m.d.comb += [retire.eq(1),
                                     retire_kind.eq(Mux(b_row_err, ErrorKind.WRITE,
                                                        ErrorKind.NONE))]
                        m.d.sync += b_err.eq(0)
                    with m.Else():
                        m.d.sync += b_err.eq(b_row_err)
        m.d.comb += [btrack.r_en.eq(retire), keyq.r_en.eq(retire)]
        with m.If(retire):
            m.d.sync += retired.eq(retired + 1)
            with m.If(retire_kind == ErrorKind.NONE):
                m.d.sync += moved.eq(moved + 1)
            with m.Else():
                m.d.sync += errors.eq(errors + 1)
                with m.If(errors == 0):
                    m.d.sync += [first_kind.eq(retire_kind), first_index.eq(retired),
                                 first_key.eq(keyq.r_data)]

        # ------------------------------------------------------- constant AXI fields
        for ch in ("ar", "aw"):
            m.d.comb += [
                getattr(axi, f"{ch}id").eq(0),
                getattr(axi, f"{ch}size").eq(LW),
                getattr(axi, f"{ch}burst").eq(BURST_INCR),
                getattr(axi, f"{ch}lock").eq(0),
                getattr(axi, f"{ch}cache").eq(0b0011),   # normal, bufferable
                getattr(axi, f"{ch}prot").eq(0b010),     # unprivileged, non-secure, data
                getattr(axi, f"{ch}qos").eq(0),
            ]
        return m
