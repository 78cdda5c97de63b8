"""The embedding gather/scatter DMA: an AXI4 master that moves embedding rows.

Gather copies the row of every key ``(t, r, u)`` from the host table
(``base[t] + r * stride[t]``) to the packed staging buffer
(``staging + u * row_bytes``); scatter copies it back.  The result in memory
and the reported status equal :func:`hotline.host.gather.transfer` run on the
same keys, whatever the memory latency, pauses or errors.

Datapath (every queue is in order, so rows retire in stream order)::

    keys -> address pipeline (table RAM, range check, row*stride and u*row_bytes
            as registered 16x16 partial products summed over registered adder
            levels, base/staging additions, two stages of row geometry)
         -> row queue -> AR generator (bursts split at 4 KiB and max_burst_beats
                         into a two-entry burst buffer; each burst reserves its
                         space in the read buffer before it is issued)
         -> R receiver -> read buffer (rbuf, output registered) + per-row
            "complete, error?" flags
         -> writer: once a row has fully arrived, byte-realigns it from its source
            offset to its destination offset (one output word per cycle, no
            extra cycle per row, the shift in two registered stages; WSTRB masks
            the row's ends) -> WLAST merge -> W head buffer -> W channel
         -> AW generator (bursts split as for AR) -> B tracking -> retirement
            (counts, first error), key by key in stream order.

Timing (ECP5-85F, speed 6, ``/work/tools/ooc_synth.sh``): every control loop
is at most one short carry chain between registers: the splitters keep
look-ahead registers instead of ``min(rem, max_beats, page_left)``, the
outstanding-reads check is a registered flag chosen from three precomputed
compares, the credit check compares registered burst sizes, read-buffer
credits come back one cycle after the word leaves, and the block RAM outputs
land in registers.

Reads run ahead of writes (up to ``max_outstanding`` read bursts in flight), so
reads and writes overlap; a row is written only after all of its data arrived
without error (store and forward per row), which is what guarantees that a row
whose read failed is never written, partly or wholly.
"""

from __future__ import annotations

from amaranth import C, Cat, Const, Module, Mux, Signal, Value, signed
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
           "burst_start_layout", "memory_plan", "COUNT_BITS"]

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


def burst_start_layout(word_bits: int, row_words: range, max_beats: int,
                       page_words: int) -> data.StructLayout:
    """Where a row's bursts start, with the burst splitter's look-ahead precomputed.

    ``w`` is the row's first word address and ``rem`` its word count; the
    other fields are derived from them (:func:`_burst_start` computes them in
    two pipeline stages) so that :class:`_BurstSplitter` never needs more than
    one carry chain between two registers: ``pl`` words are left in the 4 KiB
    page, ``le_m`` is ``pl <= max_beats``, ``le_2m`` is ``pl <= 2 * max_beats``,
    ``pm`` is ``pl - max_beats`` and ``y`` is ``rem - min(pl, max_beats) - 1``
    (negative when the first burst is the row's last).
    """
    pb = exact_log2(page_words)
    sb = max(pb + 1, max_beats.bit_length(), len(Signal(row_words))) + 2
    return data.StructLayout({
        "w": word_bits, "rem": row_words, "pl": range(page_words + 1), "le_m": 1, "le_2m": 1,
        "pm": signed(sb), "y": signed(sb),
    })


def _burst_start(m, en, lay, w, rem, max_beats, page_words, name):
    """Two registered stages (advancing on ``en``) from (``w``, ``rem``) to a
    :func:`burst_start_layout` value; returns the stage-1 and stage-2 views."""
    M, PW = max_beats, page_words
    pb = exact_log2(PW)
    a = Signal(lay, name=f"{name}_a")
    b = Signal(lay, name=f"{name}_b")
    lo = w[:pb]
    with m.If(en):
        m.d.sync += [
            a.w.eq(w), a.rem.eq(rem),
            a.pl.eq(PW - lo),
            a.le_m.eq(lo >= PW - M if M < PW else 1),
            a.le_2m.eq(lo >= PW - 2 * M if 2 * M < PW else 1),
            a.pm.eq(PW - M - lo),
            b.w.eq(a.w), b.rem.eq(a.rem), b.pl.eq(a.pl), b.le_m.eq(a.le_m),
            b.le_2m.eq(a.le_2m), b.pm.eq(a.pm),
            b.y.eq(Mux(a.le_m, a.rem - a.pl - 1, a.rem - (M + 1))),
        ]
    return a, b


def _mul_pipe(m, en, a, b, width, name, chunk=16):
    """``(a * b)[:width]`` as a pipeline advancing on ``en``.

    The operands are cut into ``chunk``-bit pieces (each partial product fits
    one 18x18 DSP multiplier), the partial products are registered, then summed
    two at a time, one registered adder level per stage.  Returns the product
    signal and its latency in stages.
    """
    def pieces(v):
        return [(i, v[i:i + chunk]) for i in range(0, len(v), chunk)]

    terms = []
    for i, ac in pieces(a):
        for j, bc in pieces(b):
            sh = i + j
            if sh >= width:
                continue
            p = Signal(min(width - sh, len(ac) + len(bc)), name=f"{name}_p{i}_{j}")
            with m.If(en):
                m.d.sync += p.eq(ac * bc)
            terms.append((sh, p))
    latency = 1
    level = 0
    while len(terms) > 1:
        terms.sort(key=lambda t: t[0])
        nxt = []
        for k in range(0, len(terms) - 1, 2):
            (s0, p0), (s1, p1) = terms[k], terms[k + 1]
            top = min(width, max(s0 + len(p0), s1 + len(p1)) + 1)
            s = Signal(top - s0, name=f"{name}_s{level}_{k}")
            with m.If(en):
                m.d.sync += s.eq(p0 + (p1 << (s1 - s0)))
            nxt.append((s0, s))
        if len(terms) % 2:
            s0, p0 = terms[-1]
            d = Signal(len(p0), name=f"{name}_d{level}")
            with m.If(en):
                m.d.sync += d.eq(p0)
            nxt.append((s0, d))
        terms = nxt
        latency += 1
        level += 1
    out = Signal(width, name=name)
    if terms:
        sh, p = terms[0]
        m.d.comb += out.eq(p << sh)
    return out, latency


def _delay(m, en, sig, n, name):
    """``sig`` delayed by ``n`` registered stages advancing on ``en``."""
    for i in range(n):
        d = Signal(Value.cast(sig).shape(), name=f"{name}_{i}")
        with m.If(en):
            m.d.sync += d.eq(sig)
        sig = d
    return sig


class _TwoEntryBuffer:
    """A two-entry register queue whose ``in_ready`` depends on registers only.

    ``in_ready`` is "fewer than two entries at the start of the cycle", so a
    push and a pop in the same cycle keep one word per cycle flowing while the
    producer never sees the consumer's handshake combinationally.
    """

    def __init__(self, m, shape, name):
        self.push = Signal(name=f"{name}_push")
        self.pop = Signal(name=f"{name}_pop")
        self.w_data = Signal(shape, name=f"{name}_w_data")
        self.head = Signal(shape, name=f"{name}_head")
        tail = Signal(shape, name=f"{name}_tail")
        cnt = Signal(range(3), name=f"{name}_cnt")
        self.valid = Signal(name=f"{name}_valid")
        self.in_ready = Signal(name=f"{name}_in_ready")
        m.d.comb += [self.in_ready.eq(cnt != 2), self.valid.eq(cnt != 0)]
        with m.If(self.pop):
            m.d.sync += cnt.eq(cnt - 1 + self.push)
            with m.If(cnt == 2):
                m.d.sync += self.head.eq(tail)
            with m.If(self.push & (cnt == 1)):
                m.d.sync += self.head.eq(self.w_data)
            with m.If(self.push & (cnt == 2)):
                m.d.sync += tail.eq(self.w_data)
        with m.Elif(self.push):
            m.d.sync += cnt.eq(cnt + 1)
            with m.If(cnt == 0):
                m.d.sync += self.head.eq(self.w_data)
            with m.Else():
                m.d.sync += tail.eq(self.w_data)


class _BurstSplitter:
    """Issues rows' bursts on an AXI address channel (AR or AW), inside ``elaborate``.

    A row of ``rem`` words from word address ``w`` goes out as INCR bursts of
    at most ``max_beats`` words that never cross a 4 KiB page, one burst per
    cycle at most.  Rows enter through a two-entry buffer (``push`` with
    ``start``, a :func:`burst_start_layout` value, while ``in_ready``); the
    splitter cuts them into bursts into a second two-entry buffer, whose head
    (``n`` words, ``last``: it ends its row) the caller gates with
    ``can_issue``; ``issue`` says the head goes out on the channel.

    Every next-state value is at most one carry chain away from registers: the
    splitter keeps the words left in the page (``pl``) and ``y = rem - c - 1``
    (``c = min(pl, max_beats)``, the next non-final burst) with their
    look-ahead flags, instead of computing ``min(rem, max_beats, page_left)``
    from the address; and the issue decision only sees registered burst sizes.

    Parameters
    ----------
    m : Module
    name : str
        Prefix of the signals (``ar`` or ``aw``).
    valid, ready, addr, length : Signal
        The channel's ``*valid``, ``*ready``, ``*addr`` and ``*len``.
    lay : data.StructLayout
        The :func:`burst_start_layout`.
    max_beats, page_words, lane_bits : int
        Longest burst, words in 4 KiB, log2 of the bus width in bytes.
    """

    def __init__(self, m, name, *, valid, ready, addr, length, lay, max_beats, page_words,
                 lane_bits):
        M, PW = max_beats, page_words
        pb = exact_log2(PW)
        nmax = min(M, PW)
        burst = data.StructLayout({"w": lay.members["w"], "n": range(nmax + 1), "last": 1})
        inb = _TwoEntryBuffer(m, lay, f"{name}_in")
        outb = _TwoEntryBuffer(m, burst, f"{name}_out")
        self.push, self.start, self.in_ready = inb.push, inb.w_data, inb.in_ready
        self.can_issue = Signal(name=f"{name}_can_issue")
        self.issue = Signal(name=f"{name}_issue")
        self.n = outb.head.n
        self.last = outb.head.last
        st = Signal(lay, name=f"{name}_st")
        active = Signal(name=f"{name}_active")
        gen = Signal(name=f"{name}_gen")
        last = Signal(name=f"{name}_gen_last")
        c = Signal(range(nmax + 1), name=f"{name}_c")
        load = Signal(name=f"{name}_load")
        lo, hi = st.w[:pb], st.w[pb:]
        m.d.comb += [
            last.eq(st.y[-1]),
            c.eq(Mux(st.le_m, st.pl, M)),
            gen.eq(active & outb.in_ready),
            outb.push.eq(gen),
            outb.w_data.w.eq(st.w),
            outb.w_data.n.eq(Mux(last, st.rem, c)),
            outb.w_data.last.eq(last),
            load.eq((~active | (gen & last)) & inb.valid),
            inb.pop.eq(load),
            self.issue.eq(outb.valid & (~valid | ready) & self.can_issue),
            outb.pop.eq(self.issue),
        ]
        # Address channel.
        with m.If(self.issue):
            m.d.sync += [
                valid.eq(1),
                addr.eq(Cat(C(0, lane_bits), outb.head.w)),
                length.eq(outb.head.n - 1),
            ]
        with m.Elif(ready):
            m.d.sync += valid.eq(0)
        # Row state.
        with m.If(load):
            m.d.sync += [st.eq(inb.head), active.eq(1)]
        with m.Elif(gen & last):
            m.d.sync += active.eq(0)
        with m.Elif(gen):
            # A burst that is not the row's last is c words long.
            c_next = Mux(st.le_m, nmax, Mux(st.le_2m, st.pm, M))
            m.d.sync += [
                st.rem.eq(st.rem - c),
                st.y.eq(st.y - c_next),
                st.pl.eq(Mux(st.le_m, PW, st.pm)),
                st.le_m.eq(Mux(st.le_m, int(PW <= M), st.le_2m)),
                st.le_2m.eq(Mux(st.le_m, int(PW <= 2 * M), st.pl <= 3 * M)),
                st.pm.eq(Mux(st.le_m, PW - M, st.pm - M)),
            ]
            with m.If(st.le_m):     # the burst ends its page
                m.d.sync += [lo.eq(0), hi.eq(hi + 1)]
            with m.Else():
                m.d.sync += lo.eq(lo + M)


def _layouts(cfg: HotlineConfig) -> dict:
    """The internal queue entry layouts (row descriptors, write rows, B tracking)."""
    g = cfg.gather
    LW = exact_log2(g.data_bytes)
    beats = range(g.max_row_beats + 1)
    blay = burst_start_layout(g.addr_bits - LW, beats, g.max_burst_beats, 4096 // g.data_bytes)
    return {
        "burst_start": blay,
        "desc": data.StructLayout({"kind": KIND_BITS, "src": blay, "dst": blay, "first": 1,
                                   "o": LW + 1, "do": LW}),
        "rdesc": data.StructLayout({"kind": KIND_BITS, "nr": beats, "dst": blay, "first": 1,
                                    "o": LW + 1, "do": LW}),
        "wrow": data.StructLayout({"dst": blay, "nowrite": 1, "kind": KIND_BITS}),
        "btrack": data.StructLayout({"nowrite": 1, "kind": KIND_BITS}),
    }


def _fifo_plan(cfg: HotlineConfig) -> dict:
    """Every queue of the unit: ``name -> (width, depth, buffered)``.

    ``buffered`` queues are :class:`SyncFIFOBuffered` (synchronous read: block
    RAM or LUT RAM, ``depth - 1`` memory words plus an output register), the
    others :class:`SyncFIFO` (asynchronous read: LUT RAM of ``depth`` words).
    """
    g = cfg.gather
    lays = _layouts(cfg)
    beats_w = len(Signal(range(g.max_row_beats + 1)))
    depth_rows = g.max_outstanding + 8
    return {
        "keyq": (key_layout(cfg).size, 2 * g.max_outstanding + 24, True),
        "rowq": (lays["desc"].size, 4, False),
        "rdesc": (lays["rdesc"].size, depth_rows, True),
        "rcnt": (beats_w, depth_rows, True),
        # Plain SyncFIFO: it takes a write whenever it is not full (see the R receiver).
        "rdone": (1, depth_rows, False),
        # One spare entry: SyncFIFOBuffered can refuse a write one entry short of full.
        "rbuf": (g.data_bits, g.rbuf_beats + 1, True),
        "wrowq": (lays["wrow"].size, 4, False),
        # Words in the byte shifter and the W head buffer count against it.
        "wdata": (g.data_bits + g.data_bytes, 8, False),
        "wlen": (len(Signal(range(g.max_burst_beats + 1))), 8, False),
        "btrack": (lays["btrack"].size, g.max_outstanding, True),
        "blast": (1, g.max_outstanding, True),
    }


def memory_plan(cfg: HotlineConfig) -> list[tuple[str, int, int, bool]]:
    """Every memory of :class:`GatherDMA` as ``(name, depth, width, sync_read)``.

    Each has one write and one read port (the table registers: a write port
    and a synchronous read port), so it maps onto one ECP5 DP16KD tiling or
    onto TRELLIS_DPR16X4 LUT RAM.  ``sync_read`` memories may go to block RAM;
    the others are read asynchronously and can only be LUT RAM.
    """
    g = cfg.gather
    table = ("table_mem", cfg.keys.tables,
             g.addr_bits + g.stride_bits + cfg.keys.row_bits + 1, True)
    out = [table]
    for name, (width, depth, buffered) in _fifo_plan(cfg).items():
        depth = depth - 1 if buffered else depth
        if depth > 0:
            out.append((name, depth, width, buffered))
    return out


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
        blay = _layouts(cfg)["burst_start"]

        # ---------------------------------------------------------------- command
        IDLE, RUN, DONE = 0, 1, 2
        state = Signal(2, init=IDLE)
        op = Signal()
        to_accept = Signal(COUNT_BITS)       # keys of the command still to take
        more = Signal()                      # to_accept != 0
        to_retire = Signal(COUNT_BITS)       # keys of the command not yet retired
        L = Signal(L_BITS)                   # row bytes of the running command
        staging = Signal(A)
        size_bad = Signal()
        retired = Signal(COUNT_BITS)
        moved = Signal(COUNT_BITS)
        errors = Signal(COUNT_BITS)
        any_error = Signal()
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
                    n = self.cmd.payload.count
                    m.d.sync += [
                        state.eq(RUN),
                        op.eq(self.cmd.payload.op),
                        to_accept.eq(n), more.eq(n != 0), to_retire.eq(n),
                        L.eq(self.row_bytes),
                        staging.eq(self.staging),
                        size_bad.eq((self.row_bytes == 0) | (self.row_bytes > g.max_row_bytes)),
                        retired.eq(0), moved.eq(0), errors.eq(0), any_error.eq(0),
                        first_kind.eq(ErrorKind.NONE), first_index.eq(0), first_key.eq(0),
                    ]
            with m.Case(RUN):
                # to_retire only reaches 0 after every write response came back.
                with m.If(~more & (to_retire == 0)):
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
        lays = _layouts(cfg)
        desc, rdesc_lay, wrow, btrack_lay = (lays[k] for k in ("desc", "rdesc", "wrow", "btrack"))
        fifos = {}
        for name, (width, depth, buffered) in _fifo_plan(cfg).items():
            fifos[name] = (SyncFIFOBuffered if buffered else SyncFIFO)(width=width, depth=depth)
            m.submodules[name] = fifos[name]
        keyq, rowq, rdesc, rcnt, rdone, rbuf, wrowq, wdataq, wlenq, btrack, blast = (
            fifos[k] for k in ("keyq", "rowq", "rdesc", "rcnt", "rdone", "rbuf", "wrowq", "wdata",
                               "wlen", "btrack", "blast"))
        WD_DEPTH = wdataq.depth

        # ---------------------------------------------------------- address pipeline
        # Every stage moves when the last one can hand its row to rowq (adv).
        # s0: key in, table RAM read.  s1: range checks, partial products of
        # row * stride and u * row_bytes.  Then the registered adder levels of the
        # products, the two address additions, and two stages of row geometry.
        adv = Signal()
        take = Signal()
        k = self.keys.payload
        m.d.comb += [
            take.eq((state == RUN) & more & adv & keyq.w_rdy),
            self.keys.ready.eq(take),
            keyq.w_data.eq(k.as_value()),
            keyq.w_en.eq(take & self.keys.valid),
            trp.addr.eq(k.table),
            trp.en.eq(adv),
        ]
        fire0 = take & self.keys.valid
        with m.If(fire0):
            m.d.sync += [to_accept.eq(to_accept - 1), more.eq(to_accept != 1)]

        v1, key1, tbad1, tset1 = Signal(), Signal(klay), Signal(), Signal()
        kind2 = Signal(KIND_BITS)
        with m.If(adv):
            m.d.sync += [
                v1.eq(fire0), key1.eq(k), tbad1.eq(k.table >= cfg.keys.tables),
                tset1.eq(tvalid.bit_select(k.table, 1)),
                kind2.eq(Mux(size_bad, ErrorKind.SIZE,
                             Mux(tbad1, ErrorKind.TABLE,
                                 Mux(~tset1 | (key1.row >= trp.data.rows), ErrorKind.ROW,
                                     ErrorKind.NONE)))),
            ]
        prod_r, lat_r = _mul_pipe(m, adv, key1.row, trp.data.stride, A, "prod_r")
        prod_u, lat_u = _mul_pipe(m, adv, key1.u, L, A, "prod_u")
        lat = max(lat_r, lat_u)
        prod_r = _delay(m, adv, prod_r, lat - lat_r, "prod_r_dly")
        prod_u = _delay(m, adv, prod_u, lat - lat_u, "prod_u_dly")
        base_p = _delay(m, adv, trp.data.base, lat, "base_dly")
        kind_p = _delay(m, adv, kind2, lat - 1, "kind_dly")
        v_p = _delay(m, adv, v1, lat, "v_dly")
        # Table and staging addresses.
        va, kinda, taba, stga = Signal(), Signal(KIND_BITS), Signal(A), Signal(A)
        with m.If(adv):
            m.d.sync += [va.eq(v_p), kinda.eq(kind_p), taba.eq(base_p + prod_r),
                         stga.eq(staging + prod_u)]
        # Row geometry from the source and destination offsets in the bus word.
        src = Mux(op, stga, taba)
        dst = Mux(op, taba, stga)
        so, do = src[:LW], dst[:LW]
        vb, vc = Signal(), Signal()
        kindb, kindc = Signal(KIND_BITS), Signal(KIND_BITS)
        firstb, ob, dob = Signal(), Signal(LW + 1), Signal(LW)
        firstc, oc, doc = Signal(), Signal(LW + 1), Signal(LW)
        nr, nw = Signal(BEATS), Signal(BEATS)
        # An erroneous row reads nothing.
        m.d.comb += [
            nr.eq(Mux(kinda == ErrorKind.NONE, (so + L + (W - 1)) >> LW, 0)),
            nw.eq((do + L + (W - 1)) >> LW),
        ]
        with m.If(adv):
            m.d.sync += [
                vb.eq(va), kindb.eq(kinda), vc.eq(vb), kindc.eq(kindb),
                # Output word k is bytes [o, o + W) of (word k-1+first, word k+first).
                firstb.eq(so > do),
                ob.eq(Mux(so > do, so - do, so + W - do)),
                dob.eq(do),
                firstc.eq(firstb), oc.eq(ob), doc.eq(dob),
            ]
        _, src_c = _burst_start(m, adv, blay, src[LW:], nr, MAXB, PAGE_WORDS, "src_start")
        _, dst_c = _burst_start(m, adv, blay, dst[LW:], nw, MAXB, PAGE_WORDS, "dst_start")
        d3 = Signal(desc)
        m.d.comb += [
            d3.kind.eq(kindc), d3.src.eq(src_c), d3.dst.eq(dst_c),
            d3.first.eq(firstc), d3.o.eq(oc), d3.do.eq(doc),
            rowq.w_data.eq(d3.as_value()),
            rowq.w_en.eq(vc & adv),
            adv.eq(~vc | rowq.w_rdy),
        ]

        # ------------------------------------------------------------ AR generator
        # Credits: free rbuf words not yet promised to a read burst.  Words popped
        # from rbuf come back one cycle late (pop_q), which keeps the update short.
        limit = Signal(range(g.max_outstanding + 1))
        m.d.sync += limit.eq(Mux((self.outstanding_limit == 0)
                                 | (self.outstanding_limit > g.max_outstanding),
                                 g.max_outstanding, self.outstanding_limit))
        credits = Signal(range(g.rbuf_beats + 1), init=g.rbuf_beats)
        outstanding = Signal(range(g.max_outstanding + 1))
        pop_q = Signal()

        ar = _BurstSplitter(m, "ar", valid=axi.arvalid, ready=axi.arready, addr=axi.araddr,
                            length=axi.arlen, lay=blay, max_beats=MAXB,
                            page_words=PAGE_WORDS, lane_bits=LW)
        rq = data.View(desc, rowq.r_data)
        rd_in = Signal(rdesc_lay)
        reads_q = rq.kind == ErrorKind.NONE       # rows that read something
        ar_take = Signal()
        # Reads in flight: out_ok = outstanding < limit, registered; its next value
        # is picked from three compares of the current count (one more, the same,
        # one less), so the issue decision never waits on a carry chain of it.
        ret = axi.rvalid & axi.rready & axi.rlast
        out_ok = Signal()
        m.d.sync += out_ok.eq(Mux(ar.issue & ~ret, outstanding + 1 < limit,
                                  Mux(~ar.issue & ret, outstanding - 1 < limit,
                                      outstanding < limit)))
        m.d.comb += [
            ar.can_issue.eq((credits >= ar.n) & out_ok),
            ar_take.eq(rowq.r_rdy & rdesc.w_rdy & rcnt.w_rdy & ar.in_ready),
            ar.push.eq(ar_take & reads_q),
            ar.start.eq(rq.src),
            rowq.r_en.eq(ar_take),
            rd_in.kind.eq(rq.kind), rd_in.nr.eq(rq.src.rem), rd_in.dst.eq(rq.dst),
            rd_in.first.eq(rq.first), rd_in.o.eq(rq.o), rd_in.do.eq(rq.do),
            rdesc.w_data.eq(rd_in.as_value()),
            rdesc.w_en.eq(ar_take),
            rcnt.w_data.eq(rq.src.rem - 1),
            rcnt.w_en.eq(ar_take & reads_q),
        ]

        # -------------------------------------------------------------- R receiver
        # R is never back-pressured: every beat's space in rbuf was reserved before its
        # AR went out, a row's count is queued (rcnt) before its first AR, and rdone
        # holds no more rows than rdesc.  Only rows that read something pass here.
        rx_cnt = Signal(BEATS)
        rx_err = Signal()
        r_fire = axi.rvalid & axi.rready
        r_err = rx_err | axi.rresp[1]
        m.d.comb += [
            axi.rready.eq(rcnt.r_rdy),
            rbuf.w_data.eq(axi.rdata),
            rbuf.w_en.eq(r_fire),
        ]
        with m.If(r_fire):
            with m.If(rx_cnt == rcnt.r_data):     # rcnt holds words - 1
                m.d.comb += [rdone.w_data.eq(r_err), rdone.w_en.eq(1), rcnt.r_en.eq(1)]
                m.d.sync += [rx_cnt.eq(0), rx_err.eq(0)]
            with m.Else():
                m.d.sync += [rx_cnt.eq(rx_cnt + 1), rx_err.eq(r_err)]

        cred_p = credits + pop_q
        m.d.sync += [
            credits.eq(Mux(ar.issue, cred_p - ar.n, cred_p)),
            outstanding.eq(outstanding + ar.issue - ret),
        ]

        # ------------------------------------------------------ writer / realigner
        # A row of nw output words takes nw steps; output word k is bytes [o, o + W) of
        # (beat k-1+first, beat k+first).  A three-word head buffer in front of rbuf
        # lets the first step of a row with first = 1 take beats 0 and 1 at once, so
        # realignment costs no extra cycle per row; it refills from rbuf whenever it
        # held at most two words at the start of the cycle.  The control state is
        # kept as registered flags (first step, last step, words left >= 1, >= 2).
        wr_active = Signal()
        wr_discard = Signal()
        wr_left = Signal(range(g.max_row_beats + 2))   # steps left, this one included
        wr_lastst = Signal()                           # wr_left == 1
        wr_k0 = Signal()                               # first step of the row
        wr_bl = Signal(BEATS)                          # beats of the row not yet taken
        wr_ge1, wr_ge2 = Signal(), Signal()            # wr_bl >= 1, >= 2
        wr_first = Signal()
        wr_o = Signal(LW + 1)
        wr_fmask = Signal(W)
        wr_lmask = Signal(W)
        prev = Signal(W * 8)
        hb = [Signal(W * 8, name=f"hb{i}") for i in range(3)]   # head buffer, hb0 oldest
        hc = Signal(range(4))
        wd_cnt = Signal(range(WD_DEPTH + 1))     # words in the shifter, wdataq, W head

        two_first = wr_k0 & wr_first & ~wr_discard
        need = Signal(2)    # beats this step consumes
        m.d.comb += need.eq(Mux(wr_discard, 1,
                                Mux(wr_k0, Mux(wr_first & wr_ge2, 2, 1), wr_ge1)))
        emit = ~wr_discard
        step = Signal()
        m.d.comb += step.eq(wr_active & (hc >= need) & (wr_discard | (wd_cnt != WD_DEPTH)))
        lo_word = Mux(two_first, hb[0], prev)
        hi_word = Mux(two_first, hb[1], hb[0])
        wstrb = (ones_w & Mux(wr_k0, wr_fmask, ones_w) & Mux(wr_lastst, wr_lmask, ones_w))
        with m.If(step):
            m.d.sync += [prev.eq(hi_word), wr_k0.eq(0), wr_left.eq(wr_left - 1),
                         wr_lastst.eq(wr_left == 2)]
            bl_next = wr_bl - need
            m.d.sync += [wr_bl.eq(bl_next), wr_ge1.eq(bl_next >= 1), wr_ge2.eq(bl_next >= 2)]

        # The byte shifter: two registered stages (high, then low bits of o).
        SH_LO = min(2, LW + 1)
        sh_v1, sh_v2 = Signal(), Signal()
        sh_w1 = Signal(2 * W * 8)
        sh_o1 = Signal(LW + 1)
        sh_s1, sh_s2 = Signal(W), Signal(W)
        sh_w2 = Signal((W + (1 << SH_LO)) * 8)
        sh_lo2 = Signal(SH_LO)
        o_hi = sh_o1 >> SH_LO
        m.d.sync += [
            sh_v1.eq(step & emit),
            sh_v2.eq(sh_v1),
            sh_w2.eq((sh_w1 >> Cat(C(0, 3 + SH_LO), o_hi))[:len(sh_w2)]),
            sh_lo2.eq(sh_o1[:SH_LO]),
            sh_s2.eq(sh_s1),
        ]
        with m.If(step):
            m.d.sync += [sh_w1.eq(Cat(lo_word, hi_word)), sh_o1.eq(wr_o), sh_s1.eq(wstrb)]
        wword = (sh_w2 >> Cat(C(0, 3), sh_lo2))[:W * 8]
        m.d.comb += [
            wdataq.w_data.eq(Cat(wword, sh_s2)),
            wdataq.w_en.eq(sh_v2),
        ]
        wd_pop = Signal()       # a word left the W head buffer for the bus (W stage)
        m.d.sync += wd_cnt.eq(wd_cnt + (step & emit) - wd_pop)

        # rbuf's block RAM output goes straight into a register (r1): the RAM's
        # clock-to-output is most of a cycle on its own.
        r1_v = Signal()
        r1_d = Signal(W * 8)
        fill = Signal()
        r1_load = Signal()
        m.d.comb += [
            fill.eq(r1_v & (hc != 3)),
            r1_load.eq(rbuf.r_rdy & (~r1_v | fill)),
            rbuf.r_en.eq(r1_load),
        ]
        m.d.sync += pop_q.eq(r1_load)     # a word left rbuf: its credit returns
        with m.If(r1_load):
            m.d.sync += [r1_v.eq(1), r1_d.eq(rbuf.r_data)]
        with m.Elif(fill):
            m.d.sync += r1_v.eq(0)

        # Head buffer: drop what the step consumed, refill from r1.
        used = Mux(step, need, 0)
        after = Signal(range(4))
        m.d.comb += after.eq(hc - used)
        m.d.sync += hc.eq(after + fill)
        for i in range(3):
            shifted = Mux(used == 0, hb[i],
                          Mux(used == 1, hb[i + 1] if i + 1 < 3 else hb[i],
                              hb[i + 2] if i + 2 < 3 else hb[i]))
            with m.If(fill & (after == i)):
                m.d.sync += hb[i].eq(r1_d)
            with m.Else():
                m.d.sync += hb[i].eq(shifted)

        hd = data.View(rdesc_lay, rdesc.r_data)
        reads = hd.kind == ErrorKind.NONE       # rows that read have an rdone entry
        bad = ~reads | rdone.r_data[0]
        kind_in = Mux(~reads, hd.kind, Mux(rdone.r_data[0], ErrorKind.READ, ErrorKind.NONE))
        wr_load = Signal()
        m.d.comb += wr_load.eq((~wr_active | (step & wr_lastst))
                               & rdesc.r_rdy & (~reads | rdone.r_rdy) & wrowq.w_rdy)
        wq = Signal(wrow)
        m.d.comb += [
            rdesc.r_en.eq(wr_load),
            rdone.r_en.eq(wr_load & reads),
            wq.dst.eq(hd.dst), wq.nowrite.eq(bad), wq.kind.eq(kind_in),
            wrowq.w_data.eq(wq.as_value()),
            wrowq.w_en.eq(wr_load),
        ]
        steps_in = Mux(bad, hd.nr, hd.dst.rem)
        last_byte = (hd.do + L - 1)[:LW]
        with m.If(wr_load):
            m.d.sync += [
                wr_active.eq(steps_in != 0),
                wr_discard.eq(bad),
                wr_left.eq(steps_in),
                wr_lastst.eq(steps_in == 1),
                wr_k0.eq(1),
                wr_bl.eq(hd.nr),
                wr_ge1.eq(hd.nr >= 1),
                wr_ge2.eq(hd.nr >= 2),
                wr_first.eq(hd.first),
                wr_o.eq(hd.o),
                wr_fmask.eq((ones_w << hd.do)[:W]),
                wr_lmask.eq(ones_w >> (~last_byte)[:LW]),  # W-1-last_byte
            ]
        with m.Elif(step & wr_lastst):
            m.d.sync += wr_active.eq(0)

        # ------------------------------------------------------------ AW generator
        aw = _BurstSplitter(m, "aw", valid=axi.awvalid, ready=axi.awready, addr=axi.awaddr,
                            length=axi.awlen, lay=blay, max_beats=MAXB,
                            page_words=PAGE_WORDS, lane_bits=LW)
        wh = data.View(wrow, wrowq.r_data)
        bt_in = Signal(btrack_lay)
        aw_take = Signal()
        m.d.comb += [
            aw.can_issue.eq(wlenq.w_rdy & blast.w_rdy),
            aw_take.eq(wrowq.r_rdy & btrack.w_rdy & aw.in_ready),
            aw.push.eq(aw_take & ~wh.nowrite),
            aw.start.eq(wh.dst),
            wrowq.r_en.eq(aw_take),
            bt_in.nowrite.eq(wh.nowrite), bt_in.kind.eq(wh.kind),
            btrack.w_data.eq(bt_in.as_value()),
            btrack.w_en.eq(aw_take),
            wlenq.w_data.eq(aw.n - 1),
            wlenq.w_en.eq(aw.issue),
            blast.w_data.eq(aw.last),
            blast.w_en.eq(aw.issue),
        ]

        # ----------------------------------------------------------------- W stage
        # A merge stage pairs each data word with its place in its burst (WLAST) into
        # a two-entry buffer whose refill depends on registers only; the W channel
        # register then loads from that buffer with one gate (no FIFO logic, no
        # burst count compare on the W handshake).
        wdb = _TwoEntryBuffer(m, W * 8 + W + 1, "wd_head")
        m_cnt = Signal(range(MAXB + 1))
        m_last = m_cnt == wlenq.r_data        # wlenq holds beats - 1
        m_fire = wdataq.r_rdy & wlenq.r_rdy & wdb.in_ready
        m.d.comb += [
            wdb.w_data.eq(Cat(wdataq.r_data, m_last)),
            wdb.push.eq(m_fire),
            wdataq.r_en.eq(m_fire),
            wlenq.r_en.eq(m_fire & m_last),
        ]
        with m.If(m_fire):
            m.d.sync += m_cnt.eq(Mux(m_last, 0, m_cnt + 1))
        w_load = Signal()
        m.d.comb += [
            w_load.eq((~axi.wvalid | axi.wready) & wdb.valid),
            wdb.pop.eq(w_load),
            wd_pop.eq(w_load),
        ]
        with m.If(w_load):
            m.d.sync += [
                axi.wvalid.eq(1),
                axi.wdata.eq(wdb.head[:W * 8]),
                axi.wstrb.eq(wdb.head[W * 8:W * 9]),
                axi.wlast.eq(wdb.head[W * 9]),
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
        # keyq's block RAM output goes straight into a register (kh), as for rbuf.
        kh_v = Signal()
        kh_d = Signal(klay.size)
        kh_load = Signal()
        m.d.comb += [kh_load.eq(keyq.r_rdy & (~kh_v | retire)), keyq.r_en.eq(kh_load)]
        with m.If(kh_load):
            m.d.sync += [kh_v.eq(1), kh_d.eq(keyq.r_data)]
        with m.Elif(retire):
            m.d.sync += kh_v.eq(0)
        with m.If(btrack.r_rdy & kh_v):
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
        m.d.comb += btrack.r_en.eq(retire)
        # The counts and the first error are updated one cycle after the retirement
        # (registered), off the B handshake's path; completion waits for them.
        ret_v = Signal()
        ret_kind = Signal(KIND_BITS)
        ret_key = Signal(klay.size)
        m.d.sync += ret_v.eq(retire)
        with m.If(retire):
            m.d.sync += [ret_kind.eq(retire_kind), ret_key.eq(kh_d)]
        with m.If(ret_v):
            m.d.sync += [retired.eq(retired + 1), to_retire.eq(to_retire - 1)]
            with m.If(ret_kind == ErrorKind.NONE):
                m.d.sync += moved.eq(moved + 1)
            with m.Else():
                m.d.sync += [errors.eq(errors + 1), any_error.eq(1)]
                with m.If(~any_error):
                    m.d.sync += [first_kind.eq(ret_kind), first_index.eq(retired),
                                 first_key.eq(ret_key)]

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
