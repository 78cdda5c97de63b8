"""The popularity counter array: a banked count-min sketch plus a heavy-hitter table.

The unit equals :class:`hotline.host.popularity.PopularityCounter` processing
the same keys one at a time in stream order, whatever its parallelism.  It is
built from ``banks`` independent shards (a key's bank is a hash of the key and
the top bits of all its counter and heavy-hitter indices), each with its own
input queue and a one-operation-per-cycle read-modify-write pipeline, so up to
``banks`` keys are processed per cycle while each bank sees its keys in
stream order.  See :class:`PopularityCounterArray` for the interface and the
micro-architecture.
"""

from __future__ import annotations

from functools import reduce

from amaranth.hdl import Array, Cat, Const, Elaboratable, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import HotlineConfig
from .checks import require_config
from ..hashing import counter_hashes
from .multififo import MultiWriteFIFO

__all__ = ["Op", "CounterLayouts", "CounterBank", "PopularityCounterArray"]


class Op(enum.Enum, shape=2):
    """Operation of a ``keys`` beat."""
    UPDATE = 0   #: learn the valid lanes' keys, in lane order
    QUERY = 1    #: return the estimates of the valid lanes' keys (one ``estimates`` beat)
    CLEAR = 2    #: zero every counter and empty the heavy-hitter table
    READOUT = 3  #: stream the whole heavy-hitter table out of ``readout``


def _clog2(n: int) -> int:
    return (n - 1).bit_length()


class CounterLayouts:
    """The data layouts of the counter array for one config.

    Parameters
    ----------
    cfg : HotlineConfig

    Members
    -------
    key : StructLayout
        ``{row, table}``; its packed value is ``table << row_bits | row``.
    keys : StructLayout
        ``keys`` stream payload: ``{op: Op, keys: ArrayLayout(key, W), mask: W}``.
    estimates : StructLayout
        ``estimates`` stream payload: ``{counts: ArrayLayout(C, W), mask: W}``.
    readout : StructLayout
        ``readout`` stream payload: ``{valid: 1, key: key, count: C, last: 1}``.
    entry : StructLayout
        One heavy-hitter way in memory: ``{valid: 1, key: key_bits, count: C}``.
    op : StructLayout
        One bank-queue operation: ``{key, n, query, slot, lane}``; ``n`` is
        the increment of an update (a run of ``n`` equal keys), ``slot`` and
        ``lane`` say where a query's answer goes.
    query_slots : int
        QUERY beats that may be in flight at once (``fifo_depth``).
    """

    def __init__(self, cfg: HotlineConfig):
        c, k = cfg.counter, cfg.keys
        self.query_slots = c.fifo_depth
        self.key = data.StructLayout({"row": k.row_bits, "table": k.table_bits})
        self.keys = data.StructLayout({
            "op": Op,
            "keys": data.ArrayLayout(self.key, c.lanes),
            "mask": c.lanes,
        })
        self.estimates = data.StructLayout({
            "counts": data.ArrayLayout(c.counter_bits, c.lanes),
            "mask": c.lanes,
        })
        self.readout = data.StructLayout({
            "valid": 1,
            "key": self.key,
            "count": c.counter_bits,
            "last": 1,
        })
        self.entry = data.StructLayout({"valid": 1, "key": k.key_bits, "count": c.counter_bits})
        self.op = data.StructLayout({
            "key": k.key_bits,
            "n": range(c.lanes + 1),
            "query": 1,
            "slot": range(self.query_slots),
            "lane": range(c.lanes),
        })
        self._lanes = c.lanes
        self._key_bits = k.key_bits
        self._counter_bits = c.counter_bits

    # -- packing helpers for testbenches and drivers (plain ints <-> payload bits) --

    def pack_keys(self, op, keys, mask=None) -> int:
        """The ``keys`` payload bits of one beat.

        Parameters
        ----------
        op : Op or int
        keys : sequence of int
            Up to W packed keys (``table << row_bits | row``); missing lanes are 0.
        mask : int, optional
            Lane mask; by default the lanes given in ``keys``.
        """
        W = self._lanes
        keys = [int(k) for k in keys]
        if len(keys) > W:
            raise ValueError(f"a beat holds at most {W} keys, not {len(keys)}")
        if mask is None:
            mask = (1 << len(keys)) - 1
        if not 0 <= mask < (1 << W):
            raise ValueError(f"mask {mask:#x} does not fit in {W} lanes")
        kb = self._key_bits
        for k in keys:
            if not 0 <= k < (1 << kb):
                raise ValueError(f"key {k:#x} does not fit in {kb} bits")
        lanes = sum(k << (i * kb) for i, k in enumerate(keys))
        return (int(Op(op).value)
                | lanes << self.keys["keys"].offset
                | mask << self.keys["mask"].offset)

    def unpack_estimates(self, bits: int):
        """``(counts list of W ints, mask int)`` of an ``estimates`` payload."""
        C, W = self._counter_bits, self._lanes
        base = self.estimates["counts"].offset
        counts = [(bits >> (base + i * C)) & ((1 << C) - 1) for i in range(W)]
        mask = (bits >> self.estimates["mask"].offset) & ((1 << W) - 1)
        return counts, mask

    def unpack_readout(self, bits: int):
        """``(valid, key, count, last)`` of a ``readout`` payload."""
        r = self.readout

        def field(name, width):
            return (bits >> r[name].offset) & ((1 << width) - 1)
        return (field("valid", 1), field("key", self._key_bits),
                field("count", self._counter_bits), field("last", 1))


def _min(a, b):
    return Mux(a < b, a, b)


class CounterBank(Elaboratable):
    """One shard of the counter array: input queue, D sketch rows, heavy-hitter sets.

    The bank takes one operation per cycle from its queue.  Cycle t (issue):
    hash the key, present the D row addresses and the set address to the
    synchronous read ports (one memory per sketch row, one per heavy-hitter
    way).  Cycle t+1 (execute): minimum ``m`` over the rows, estimate
    ``e = min(m + n, 2**C - 1)`` (a query: ``m``), new counters (``+n``
    saturating, or ``max(c, e)`` with ``conservative_update``), heavy-hitter
    hit / admit / evict, write back.  An operation issued in cycle t+1 on the
    same address reads the value being written through the transparent read
    ports, so back-to-back operations on one key are exact without stalling.

    Parameters
    ----------
    cfg : HotlineConfig
    layouts : CounterLayouts

    Members
    -------
    fifo : MultiWriteFIFO
        The input queue (``layouts.op`` entries, ``fifo_depth`` deep, W writers).
    run : Signal, in
        Issue operations from the queue.
    clearing : Signal, in
        Write zero at ``clear_addr`` into every row and heavy-hitter way memory.
    clear_addr : Signal, in
        The address being cleared (truncated to each memory's depth).
    ro_load, ro_addr : Signal, in
        Readout: read heavy-hitter set ``ro_addr`` (local to the bank) now.
    ro_hold : Signal, in
        Readout: keep the heavy-hitter read data as it is.
    hh_data : list of Signal(layouts.entry), out
        The heavy-hitter read ports' data, one per way (for readout).
    busy : Signal, out
        An operation is queued or executing.
    q_valid, q_slot, q_lane, q_est : Signal, out
        A query's answer this cycle and where it goes.
    """

    def __init__(self, cfg: HotlineConfig, layouts: CounterLayouts):
        c = cfg.counter
        self.cfg = cfg
        self.layouts = layouts
        self.hashes = counter_hashes(cfg)
        self.row_depth = c.counters // c.banks
        self.set_depth = c.hh_sets // c.banks
        self.clear_depth = max(self.row_depth, self.set_depth)
        self.fifo = MultiWriteFIFO(layouts.op, c.fifo_depth, c.lanes)
        self.run = Signal()
        self.clearing = Signal()
        self.clear_addr = Signal(range(self.clear_depth))
        self.ro_load = Signal()
        self.ro_hold = Signal()
        self.ro_addr = Signal(range(self.set_depth))
        self.hh_data = [Signal(layouts.entry, name=f"hh_data{w}") for w in range(c.hh_ways)]
        self.busy = Signal()
        self.q_valid = Signal()
        self.q_slot = Signal(range(layouts.query_slots))
        self.q_lane = Signal(range(c.lanes))
        self.q_est = Signal(c.counter_bits)

    def elaborate(self, platform):
        m = Module()
        c = self.cfg.counter
        L = self.layouts
        cmax = c.counter_max
        row_bits = _clog2(self.row_depth)
        set_bits = _clog2(self.set_depth)
        m.submodules.fifo = fifo = self.fifo

        # ---- issue -------------------------------------------------------
        head = fifo.r_data
        issue = Signal()
        m.d.comb += [issue.eq(fifo.r_valid & self.run), fifo.r_ready.eq(self.run)]
        key = head.key
        row_addr = [self.hashes.rows[d].amaranth(key) for d in range(c.depth)]
        set_addr = self.hashes.hh_set.amaranth(key)

        ex_valid = Signal()
        # data registers need no reset (only ex_valid does)
        ex_op = Signal(L.op, reset_less=True)
        ex_row = [Signal(row_bits, name=f"ex_row{d}", reset_less=True) for d in range(c.depth)]
        ex_set = Signal(set_bits, reset_less=True)
        m.d.sync += [ex_valid.eq(issue), ex_op.eq(head), ex_set.eq(set_addr)]
        m.d.sync += [ex_row[d].eq(row_addr[d]) for d in range(c.depth)]

        # ---- execute: sketch rows ------------------------------------------
        # With m the minimum of the key's counters, an update of n equal keys
        # gives the estimate e = min(m + n, 2**C - 1) (the last of the run's n
        # estimates); a query gives m.  Plain count-min adds n to every counter
        # (saturating), conservative update raises each counter to max(c, e).
        update = Signal()
        m.d.comb += update.eq(ex_valid & ~ex_op.query)
        ports = []
        for d in range(c.depth):
            m.submodules[f"row{d}"] = mem = Memory(shape=c.counter_bits, depth=self.row_depth, init=[])
            wp = mem.write_port()
            rp = mem.read_port(transparent_for=(wp,))
            m.d.comb += [rp.addr.eq(row_addr[d]), rp.en.eq(1)]
            ports.append((rp, wp))
        low = Signal(c.counter_bits)
        m.d.comb += low.eq(reduce(_min, [rp.data for rp, _ in ports]))
        low_n = low + ex_op.n
        est = Signal(c.counter_bits)
        m.d.comb += est.eq(Mux(ex_op.query, low, Mux(low_n > cmax, cmax, low_n)))
        for d, (rp, wp) in enumerate(ports):
            new = Signal(c.counter_bits, name=f"new{d}")
            if c.conservative_update:
                m.d.comb += new.eq(Mux(rp.data < est, est, rp.data))
            else:
                total = rp.data + ex_op.n
                m.d.comb += new.eq(Mux(total > cmax, cmax, total))
            m.d.comb += [
                wp.en.eq(update | self.clearing),
                wp.addr.eq(Mux(self.clearing, self.clear_addr[:row_bits], ex_row[d])),
                wp.data.eq(Mux(self.clearing, 0, new)),
            ]

        # ---- execute: heavy-hitter set -----------------------------------
        # One memory per way (same address): each word stays narrow, and only
        # the way that changes is written.
        ways = c.hh_ways
        entries = []
        hh_wps = []
        for w in range(ways):
            m.submodules[f"hh_way{w}"] = mem = Memory(shape=L.entry, depth=self.set_depth, init=[])
            wp = mem.write_port()
            rp = mem.read_port(transparent_for=(wp,))
            m.d.comb += [
                rp.addr.eq(Mux(self.ro_load, self.ro_addr, set_addr)),
                rp.en.eq(~self.ro_hold),
                self.hh_data[w].eq(rp.data),
            ]
            entries.append(rp.data)
            hh_wps.append(wp)
        hit = [Signal(name=f"hit{w}") for w in range(ways)]
        m.d.comb += [hit[w].eq(entries[w].valid & (entries[w].key == ex_op.key)) for w in range(ways)]
        any_hit = Signal()
        any_free = Signal()
        m.d.comb += [any_hit.eq(reduce(lambda a, b: a | b, hit)),
                     any_free.eq(~reduce(lambda a, b: a & b, [e.valid for e in entries]))]
        # lowest free way
        first_free = Const(0, range(ways))
        for w in reversed(range(ways)):
            first_free = Mux(~entries[w].valid, w, first_free)
        # smallest count, the lowest way among equals (strict < keeps the earlier way)
        small_way = Const(0, range(ways))
        small_cnt = entries[0].count
        for w in range(1, ways):
            better = entries[w].count < small_cnt
            small_way = Mux(better, w, small_way)
            small_cnt = Mux(better, entries[w].count, small_cnt)
        victim = Signal(range(ways))
        admit = Signal()
        m.d.comb += [
            victim.eq(Mux(any_free, first_free, small_way)),
            admit.eq(~any_hit & (est >= c.threshold) & (any_free | (small_cnt < est))),
        ]
        new_entry = Signal(L.entry)
        m.d.comb += [new_entry.valid.eq(1), new_entry.key.eq(ex_op.key), new_entry.count.eq(est)]
        for w, wp in enumerate(hh_wps):
            # a hit rewrites its own way (same key, new count); an admission its victim
            m.d.comb += [
                wp.en.eq((update & (hit[w] | (admit & (victim == w)))) | self.clearing),
                wp.addr.eq(Mux(self.clearing, self.clear_addr[:set_bits], ex_set)),
                wp.data.eq(Mux(self.clearing, 0, new_entry.as_value())),
            ]

        # ---- query answers and status ------------------------------------
        m.d.comb += [
            self.q_valid.eq(ex_valid & ex_op.query),
            self.q_slot.eq(ex_op.slot),
            self.q_lane.eq(ex_op.lane),
            self.q_est.eq(est),
            self.busy.eq(fifo.r_valid | ex_valid),
        ]
        return m


class _Mode(enum.Enum, shape=2):
    RUN = 0
    CLEAR = 1
    READOUT = 2


class PopularityCounterArray(wiring.Component):
    """The popularity counter array (count-min sketch + heavy-hitter table).

    Every result equals :class:`hotline.host.popularity.PopularityCounter`
    fed the same operations in stream order, for plain count-min and for
    ``counter.conservative_update``.  A reset starts a CLEAR of its own (the
    memories keep their contents through ``rst``, so the unit wipes them):
    ``busy`` stays high and no operation starts for ``max(2**S, hh_sets) /
    banks`` cycles, and the unit then equals a fresh golden model, also after
    a reset in the middle of use.

    Parameters
    ----------
    cfg : HotlineConfig
        Sizes from ``cfg.counter`` and ``cfg.keys``; hashes from ``cfg.hash_seed``.

    Members
    -------
    keys : In(stream.Signature(layouts.keys))
        Operations, one per beat: ``op`` (:class:`Op`), W ``keys`` (each
        ``{row, table}``) and a lane ``mask``.  UPDATE learns the masked-in
        keys in lane order; QUERY asks for their estimates (one
        ``estimates`` beat per QUERY beat); CLEAR and READOUT act after
        every earlier beat is done and ignore ``keys``/``mask``.  A lane
        whose table is ``>= keys.tables`` is a bad key: it is dropped
        (counted in ``perf_bad_keys``; a QUERY answers it with its mask bit
        clear), whereas the golden model rejects such a key.
    estimates : Out(stream.Signature(layouts.estimates))
        Per QUERY beat, in order: W ``counts`` (0 where the mask bit is
        clear) and the ``mask`` of answered lanes.
    readout : Out(stream.Signature(layouts.readout))
        Per READOUT beat: every heavy-hitter entry, set 0 to ``hh_sets - 1``,
        way 0 to ``hh_ways - 1``, one per beat ``{valid, key, count, last}``
        (an empty way reads as valid 0, key 0, count 0); ``last`` marks the
        final entry.
    busy : Out(1)
        Something is queued, executing, clearing, reading out, or an
        estimate is waiting to be taken.
    perf_beats, perf_stalls : Out(32)
        Beats accepted; cycles with ``keys.valid`` and not ``keys.ready``
        (wrapping).
    perf_keys, perf_bad_keys : Out(32)
        UPDATE keys learned; bad keys dropped (wrapping).

    Micro-architecture
    ------------------
    * One input register (F1) holds a beat; ``keys.ready`` is high when it is
      empty or being dispatched this cycle.
    * Dispatch hashes each lane's bank.  For UPDATE it merges a lane into the
      next valid lane *of the same bank* when both carry the same key (a run
      of equal keys within a bank's part of the beat becomes one operation
      with increment ``n``): a run's estimates only grow, so the counters
      end as after the ``n`` updates (``+n`` saturating, or ``max(c, e)``
      with conservative update, ``e`` the run's last estimate) and the
      heavy-hitter set ends as after one update carrying ``e``; other banks
      share no state.  Equal keys with another key of their bank between
      them (A B A) are not merged.  The beat goes out
      only when every bank queue has room for all of its operations, and a
      QUERY beat also needs a free answer slot.
    * Each bank (:class:`CounterBank`) runs one operation per cycle through a
      read / modify-write pipeline with transparent read ports.  A bank
      therefore takes at most one key (or run) per cycle: a stream whose
      keys all hash to one bank runs at 1 operation per cycle, not W.
    * Query answers land in a reorder buffer of ``fifo_depth`` slots (slot
      reserved at dispatch, so a bank never waits on ``estimates``); the
      oldest slot is sent once all of its lanes are answered.
    * CLEAR waits for the banks to drain, then zeroes all memories in
      ``max(2**S, hh_sets) / banks`` cycles.  READOUT waits likewise, then
      reads the sets through the banks' heavy-hitter read ports, one entry
      per cycle with no bubble between sets, holding on backpressure.
    """

    def __init__(self, cfg: HotlineConfig):
        require_config(self, cfg)
        self.cfg = cfg
        self.layouts = L = CounterLayouts(cfg)
        self.hashes = counter_hashes(cfg)
        super().__init__({
            "keys": In(stream.Signature(L.keys)),
            "estimates": Out(stream.Signature(L.estimates)),
            "readout": Out(stream.Signature(L.readout)),
            "busy": Out(1),
            "perf_beats": Out(32),
            "perf_stalls": Out(32),
            "perf_keys": Out(32),
            "perf_bad_keys": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, c, L = self.cfg, self.cfg.counter, self.layouts
        W, B = c.lanes, c.banks
        banks = [CounterBank(cfg, L) for _ in range(B)]
        for b, bank in enumerate(banks):
            m.submodules[f"bank{b}"] = bank

        # Out of reset the unit clears its memories first (clr_addr resets to 0).
        mode = Signal(_Mode, init=_Mode.CLEAR)
        run = Signal()
        m.d.comb += run.eq(mode == _Mode.RUN)

        # ---- F1: the beat being dispatched ---------------------------------
        f1 = Signal(L.keys, reset_less=True)
        f1_valid = Signal()
        f1_consume = Signal()
        m.d.comb += self.keys.ready.eq(~f1_valid | f1_consume)
        with m.If(self.keys.valid & self.keys.ready):
            m.d.sync += [f1.eq(self.keys.payload), f1_valid.eq(1)]
        with m.Elif(f1_consume):
            m.d.sync += f1_valid.eq(0)
        is_update = Signal()
        is_query = Signal()
        is_clear = Signal()
        is_readout = Signal()
        m.d.comb += [
            is_update.eq(f1_valid & (f1.op == Op.UPDATE)),
            is_query.eq(f1_valid & (f1.op == Op.QUERY)),
            is_clear.eq(f1_valid & (f1.op == Op.CLEAR)),
            is_readout.eq(f1_valid & (f1.op == Op.READOUT)),
        ]

        # ---- lanes: validity, bank, run merging -------------------------------
        tables = cfg.keys.tables
        key = [f1.keys[i].as_value() for i in range(W)]
        lv = [Signal(name=f"lane_valid{i}") for i in range(W)]
        bad = [Signal(name=f"lane_bad{i}") for i in range(W)]
        bank = [Signal(range(B), name=f"lane_bank{i}") for i in range(W)]
        for i in range(W):
            in_range = (f1.keys[i].table < tables) if tables < (1 << cfg.keys.table_bits) else 1
            m.d.comb += [lv[i].eq(f1.mask[i] & in_range), bad[i].eq(f1.mask[i] & ~in_range),
                         bank[i].eq(self.hashes.bank.amaranth(key[i]))]
        eq = {}
        same = {}
        for i in range(W):
            for j in range(i + 1, W):
                eq[i, j] = Signal(name=f"eq{i}_{j}")
                same[i, j] = Signal(name=f"same_bank{i}_{j}")
                m.d.comb += [eq[i, j].eq(key[i] == key[j]), same[i, j].eq(bank[i] == bank[j])]
        # link[i, j]: lane i's key merges into lane j's operation (no lane of the
        # same bank with another key between them).
        link = {}
        for i in range(W):
            for j in range(i + 1, W):
                blocked = Const(0)
                for k in range(i + 1, j):
                    blocked = blocked | (lv[k] & same[i, k] & ~eq[i, k])
                link[i, j] = Signal(name=f"link{i}_{j}")
                m.d.comb += link[i, j].eq(lv[i] & lv[j] & eq[i, j] & ~blocked)
        emit = [Signal(name=f"emit{i}") for i in range(W)]
        incr = [Signal(range(W + 1), name=f"incr{i}") for i in range(W)]
        for i in range(W):
            merged = reduce(lambda a, b: a | b, [link[i, j] for j in range(i + 1, W)], Const(0))
            m.d.comb += [
                emit[i].eq(Mux(is_query, lv[i], lv[i] & ~merged)),
                incr[i].eq(1 + sum((link[j, i] for j in range(i)), Const(0, range(W + 1)))),
            ]

        # ---- query reorder buffer ------------------------------------------
        Q = L.query_slots
        # rob_pend: one bit per (slot, lane) still waiting for its answer, slot-major
        rob_pend = Signal(Q * W)
        rob_head = Signal(range(Q))
        rob_tail = Signal(range(Q))
        rob_count = Signal(range(Q + 1))
        rob_free = Signal()
        m.d.comb += rob_free.eq(rob_count != Q)

        # ---- dispatch ---------------------------------------------------------
        room = []
        for b, bnk in enumerate(banks):
            cnt = sum((emit[i] & (bank[i] == b) for i in range(W)), Const(0, range(W + 1)))
            room.append(cnt <= c.fifo_depth - bnk.fifo.level)
        fire = Signal()
        m.d.comb += fire.eq(run & (is_update | (is_query & rob_free)) &
                            reduce(lambda a, b: a & b, room))
        for b, bnk in enumerate(banks):
            m.d.comb += bnk.run.eq(run)
            for i in range(W):
                m.d.comb += [
                    bnk.fifo.w_en[i].eq(fire & emit[i] & (bank[i] == b)),
                    bnk.fifo.w_data[i].key.eq(key[i]),
                    bnk.fifo.w_data[i].n.eq(incr[i]),
                    bnk.fifo.w_data[i].query.eq(is_query),
                    bnk.fifo.w_data[i].slot.eq(rob_tail),
                    bnk.fifo.w_data[i].lane.eq(i),
                ]

        # ---- reorder buffer: allocate, fill, send ------------------------------
        alloc = Signal()
        m.d.comb += alloc.eq(fire & is_query)
        lane_mask = Signal(W)
        m.d.comb += lane_mask.eq(Cat(*lv))
        m.submodules.rob_mask = mask_mem = Memory(shape=W, depth=Q, init=[])
        mask_wp = mask_mem.write_port()
        mask_rp = mask_mem.read_port(domain="comb")
        m.d.comb += [mask_wp.en.eq(alloc), mask_wp.addr.eq(rob_tail), mask_wp.data.eq(lane_mask)]
        m.d.sync += rob_tail.eq(rob_tail + alloc)
        # each bank answers at most one (slot, lane) per cycle: a one-hot per bank
        answered = reduce(lambda a, b: a | b,
                          [Mux(bnk.q_valid, Const(1, Q * W) << (bnk.q_slot * W + bnk.q_lane), 0)
                           for bnk in banks])
        new_pend = Mux(alloc, lane_mask << (rob_tail * W), 0)
        m.d.sync += rob_pend.eq((rob_pend & ~answered)[:Q * W] | new_pend)
        # answers: one memory per lane, one write port per bank (a bank answers
        # one lane of one slot per cycle; no two banks answer the same one)
        rob_read = []
        for l in range(W):
            m.submodules[f"rob_lane{l}"] = mem = Memory(shape=c.counter_bits, depth=Q, init=[])
            for bnk in banks:
                port = mem.write_port()
                m.d.comb += [port.en.eq(bnk.q_valid & (bnk.q_lane == l)),
                             port.addr.eq(bnk.q_slot), port.data.eq(bnk.q_est)]
            rd = mem.read_port(domain="comb")
            m.d.comb += rd.addr.eq(rob_head)
            rob_read.append(rd.data)
        send = Signal()
        head_mask = Signal(W)
        m.d.comb += [
            self.estimates.valid.eq((rob_count != 0) & (rob_pend.word_select(rob_head, W) == 0)),
            mask_rp.addr.eq(rob_head),
            head_mask.eq(mask_rp.data),
            self.estimates.payload.mask.eq(head_mask),
            send.eq(self.estimates.valid & self.estimates.ready),
        ]
        for l in range(W):
            m.d.comb += self.estimates.payload.counts[l].eq(Mux(head_mask[l], rob_read[l], 0))
        m.d.sync += [rob_head.eq(rob_head + send), rob_count.eq(rob_count + alloc - send)]

        # ---- CLEAR / READOUT -------------------------------------------------
        drained = Signal()
        m.d.comb += drained.eq(~reduce(lambda a, b: a | b, [bnk.busy for bnk in banks]))
        clear_depth = banks[0].clear_depth
        set_depth = banks[0].set_depth
        clr_addr = Signal(range(clear_depth))
        ro_bank = Signal(range(B))
        ro_set = Signal(range(set_depth))
        ro_way = Signal(range(c.hh_ways))
        ro_have = Signal()
        ro_load = Signal()
        ro_addr = Signal(range(set_depth))
        clr_done = Signal()
        ro_done = Signal()
        for bnk in banks:
            m.d.comb += [
                bnk.clearing.eq(mode == _Mode.CLEAR),
                bnk.clear_addr.eq(clr_addr),
                bnk.ro_load.eq(ro_load),
                bnk.ro_addr.eq(ro_addr),
                bnk.ro_hold.eq((mode == _Mode.READOUT) & ~ro_load),
            ]

        with m.If(run & is_clear & drained):
            m.d.sync += [mode.eq(_Mode.CLEAR), clr_addr.eq(0)]
        with m.If(run & is_readout & drained):
            m.d.comb += [ro_load.eq(1), ro_addr.eq(0)]
            m.d.sync += [mode.eq(_Mode.READOUT), ro_bank.eq(0), ro_set.eq(0), ro_way.eq(0),
                         ro_have.eq(1)]
        with m.If(mode == _Mode.CLEAR):
            m.d.sync += clr_addr.eq(clr_addr + 1)
            with m.If(clr_addr == clear_depth - 1):
                m.d.comb += clr_done.eq(1)
                m.d.sync += mode.eq(_Mode.RUN)

        ways = c.hh_ways
        all_ways = Array(bnk.hh_data[w].as_value() for bnk in banks for w in range(ways))
        entry = data.View(L.entry, all_ways[ro_bank * ways + ro_way])
        last_set = (ro_bank == B - 1) & (ro_set == set_depth - 1)
        last_way = ro_way == c.hh_ways - 1
        m.d.comb += [
            self.readout.valid.eq(ro_have),
            self.readout.payload.valid.eq(entry.valid),
            self.readout.payload.key.eq(entry.key),
            self.readout.payload.count.eq(entry.count),
            self.readout.payload.last.eq(last_set & last_way),
        ]
        with m.If(self.readout.valid & self.readout.ready):
            with m.If(~last_way):
                m.d.sync += ro_way.eq(ro_way + 1)
            with m.Else():
                m.d.sync += ro_way.eq(0)
                with m.If(last_set):
                    m.d.comb += ro_done.eq(1)
                    m.d.sync += [mode.eq(_Mode.RUN), ro_have.eq(0)]
                with m.Elif(ro_set == set_depth - 1):
                    m.d.comb += [ro_load.eq(1), ro_addr.eq(0)]
                    m.d.sync += [ro_set.eq(0), ro_bank.eq(ro_bank + 1)]
                with m.Else():
                    m.d.comb += [ro_load.eq(1), ro_addr.eq(ro_set + 1)]
                    m.d.sync += ro_set.eq(ro_set + 1)

        # the wipe after a reset is no CLEAR beat: it must not consume the beat in F1
        m.d.comb += f1_consume.eq(fire | (clr_done & is_clear) | ro_done)

        # ---- status and performance counters ---------------------------------
        m.d.comb += self.busy.eq(f1_valid | ~drained | (rob_count != 0) | ~run)
        with m.If(self.keys.valid & self.keys.ready):
            m.d.sync += self.perf_beats.eq(self.perf_beats + 1)
        with m.If(self.keys.valid & ~self.keys.ready):
            m.d.sync += self.perf_stalls.eq(self.perf_stalls + 1)
        with m.If(fire):
            with m.If(is_update):
                m.d.sync += self.perf_keys.eq(self.perf_keys + sum(lv, Const(0, range(W + 1))))
            m.d.sync += self.perf_bad_keys.eq(self.perf_bad_keys + sum(bad, Const(0, range(W + 1))))
        return m

