"""The micro-batch reorder unit: classify samples, remap keys, de-duplicate cold keys.

Streams (``W = reorder.lanes``, ``T = reorder.keys_per_sample``,
``S = beats_per_sample = ceil(T / W)``):

``keys`` (in)
    A mini-batch, sample by sample; every sample is exactly ``S`` beats and
    key ``j`` of a sample is lane ``j % W`` of its beat ``j // W`` (lanes past
    ``T`` in the last beat are ignored).  Payload ``keys`` (W packed keys) and
    ``last``, sampled on the final beat of each sample: this sample ends the
    batch.  Sample ids are the positions in the batch, counted by the unit.
``popular`` / ``non_popular`` (out)
    The samples of each class in arrival order, ``S`` beats per sample: ``sid``,
    ``last`` (final beat of the sample) and W remapped keys ``(hot, index)``:
    ``index`` is the hot slot when ``hot``, else ``u``; lanes past ``T`` are 0.
``cold`` (out)
    The batch's distinct cold keys in first-occurrence order, up to W per
    beat: ``count`` keys in lanes ``0 .. count-1``, the first with number ``u``.
``status`` (out)
    One beat per batch after all its other outputs: samples emitted on each
    output, distinct cold keys emitted, ``key_overflow``, ``sample_overflow``.
``load`` (in)
    Hot-map slot writes (address, word), as :class:`~hotline.rtl.hotmap.HotMapLookup`.

The outputs must be drained independently (each to its own sink); the unit
buffers ``sample_buffer`` samples per class, not a whole batch.

Overflow: the first key position that is either in sample ``max_batch_samples``
or the first occurrence of one distinct cold key more than ``max_batch_keys``
stops the batch: that sample and everything after it up to the batch's ``last``
is consumed and dropped (the cold keys first seen before it are still emitted)
and the status flags the error.  The next batch starts clean.  This is what
:func:`hotline.host.reorder.reorder_batch` models.

Pipeline: input -> hot-map lookup (request/response streams) -> de-dup stage
D1 -> output buffers.  D1 holds one beat; its cold keys are combined within
the beat (a lane equal to an earlier lane takes that lane's ``u``), then each
distinct one probes the de-dup hash table (linear probing over buckets of
``dedupe_ways`` slots, all ways compared at once).  A key found there takes
its ``u``; a new key claims a free slot (lanes claiming in one bucket in the
same cycle take distinct ways in lane order; a claim is written at once so
that the other lanes' later probes see it), and once every lane is resolved
the new keys are numbered in lane order and their slots written with ``u``.
Every read port is transparent to every write port, so the beat after reads
the table as these writes leave it: back-to-back repeats need no other
forwarding.  A beat whose probes all end in their home bucket takes one
cycle; a longer probe only stalls, it never changes a result.  Entries carry
a batch tag (epoch), so a new batch is an O(1) clear; when the tag wraps, and
after a reset, the table is wiped once (``dedupe_buckets / W`` cycles).  A
reset does not clear the hot map.  Each output buffer takes every beat speculatively and
commits or rolls back the sample once its class is known, so the two outputs
keep arrival order without a copy step.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import HotlineConfig
from .checks import require_config
from ..hashing import H3
from .hotmap import HotMapLookup, hotmap_load_layout

__all__ = ["ReorderUnit", "reorder_layouts", "ReorderLayouts", "dedupe_hash"]


def _clog2(n: int) -> int:
    return (n - 1).bit_length()


def dedupe_hash(cfg: HotlineConfig) -> H3:
    """Home bucket of a cold key in the de-dup table (internal to the unit: results never depend on it)."""
    return H3.from_seed(cfg.keys.key_bits, _clog2(cfg.reorder.dedupe_buckets), cfg.hash_seed,
                        "reorder.dedupe")


class ReorderLayouts:
    """The payload layouts of :class:`ReorderUnit` for a config (also used by the testbench).

    Members
    -------
    keys_in, remap, sample_out, cold_out, status, load : StructLayout
        Payloads of ``keys``, of one remapped key, of ``popular`` /
        ``non_popular``, of ``cold``, of ``status`` and of ``load``.
    """

    def __init__(self, cfg: HotlineConfig):
        r, K, W = cfg.reorder, cfg.keys.key_bits, cfg.reorder.lanes
        self.keys_in = data.StructLayout({"keys": data.ArrayLayout(K, W), "last": 1})
        self.remap = data.StructLayout({"index": r.index_bits, "hot": 1})
        self.sample_out = data.StructLayout({"keys": data.ArrayLayout(self.remap, W),
                                             "sid": r.sid_bits, "last": 1})
        self.cold_out = data.StructLayout({"keys": data.ArrayLayout(K, W), "u": r.u_bits,
                                           "count": W.bit_length()})
        n_s, n_k = r.max_batch_samples.bit_length(), r.max_batch_keys.bit_length()
        self.status = data.StructLayout({"popular": n_s, "non_popular": n_s, "cold": n_k,
                                         "key_overflow": 1, "sample_overflow": 1})
        self.load = hotmap_load_layout(cfg)


def reorder_layouts(cfg: HotlineConfig) -> ReorderLayouts:
    return ReorderLayouts(cfg)


class _SpeculativeFIFO(wiring.Component):
    """A FIFO whose writes become visible only when committed; a rollback discards them.

    Members
    -------
    w_en, w_data : In
        Write one beat (only when ``w_space``).
    commit : In
        Make everything written so far, this cycle's beat included, visible.
    rollback : In
        Discard every uncommitted beat, this cycle's included.
    w_space : Out
        Room for one more beat.
    out : Out(stream)
        Committed beats in order.
    """

    def __init__(self, layout, depth: int):
        self._depth = depth
        self._layout = layout
        super().__init__({
            "w_en": In(1), "w_data": In(layout), "commit": In(1), "rollback": In(1),
            "w_space": Out(1), "out": Out(stream.Signature(layout)),
        })

    def elaborate(self, platform):
        m = Module()
        D = self._depth
        bits = _clog2(D)
        m.submodules.mem = mem = Memory(shape=self._layout, depth=D, init=[])
        wp = mem.write_port()
        rp = mem.read_port(domain="comb")  # a few samples deep: distributed RAM
        wr = Signal(bits + 1)
        committed = Signal(bits + 1)
        rd = Signal(bits + 1)
        wr_after = Signal(bits + 1)
        m.d.comb += [
            self.w_space.eq((wr - rd)[:bits + 1] < D),
            wp.addr.eq(wr[:bits]), wp.data.eq(self.w_data), wp.en.eq(self.w_en),
            wr_after.eq(wr + self.w_en),
            rp.addr.eq(rd[:bits]),
            self.out.payload.eq(rp.data),
            self.out.valid.eq(rd != committed),
        ]
        with m.If(self.rollback):
            m.d.sync += wr.eq(committed)
        with m.Else():
            m.d.sync += wr.eq(wr_after)
        with m.If(self.commit):
            m.d.sync += committed.eq(wr_after)
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += rd.eq(rd + 1)
        return m


class ReorderUnit(wiring.Component):
    """The micro-batch reorder unit (see the module docstring for the streams).

    Parameters
    ----------
    cfg : HotlineConfig
        Sizes from ``reorder`` (lanes, keys per sample, hot-map geometry,
        batch limits, de-dup table, buffers) and ``keys``.

    Members
    -------
    keys : In(stream of ReorderLayouts.keys_in)
    popular, non_popular : Out(stream of ReorderLayouts.sample_out)
    cold : Out(stream of ReorderLayouts.cold_out)
    status : Out(stream of ReorderLayouts.status)
    load : In(stream of ReorderLayouts.load)
    """

    def __init__(self, cfg: HotlineConfig):
        require_config(self, cfg)
        self.cfg = cfg
        self.layouts = lay = ReorderLayouts(cfg)
        super().__init__({
            "keys": In(stream.Signature(lay.keys_in)),
            "popular": Out(stream.Signature(lay.sample_out)),
            "non_popular": Out(stream.Signature(lay.sample_out)),
            "cold": Out(stream.Signature(lay.cold_out)),
            "status": Out(stream.Signature(lay.status)),
            "load": In(stream.Signature(lay.load)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, r, lay = self.cfg, self.cfg.reorder, self.layouts
        W, K, T, S = r.lanes, cfg.keys.key_bits, r.keys_per_sample, r.beats_per_sample
        NB = r.dedupe_buckets
        bbits = _clog2(NB)
        DW = r.dedupe_ways
        E = r.dedupe_epoch_bits
        max_epoch = (1 << E) - 1
        MAXK, MAXS = r.max_batch_keys, r.max_batch_samples
        last_lanes = T - (S - 1) * W  # valid lanes in a sample's final beat

        # ---- front end: count beats and samples, look the keys up ---------------------------
        m.submodules.lookup = lookup = HotMapLookup(cfg)
        wiring.connect(m, wiring.flipped(self.load), lookup.load)

        side_layout = data.StructLayout({
            "keys": data.ArrayLayout(K, W), "lane_valid": W, "sid": r.sid_bits,
            "sample_last": 1, "batch_last": 1, "too_many": 1})
        m.submodules.side = side = fifo.SyncFIFO(width=side_layout.size, depth=4)
        beat = Signal(range(S))
        sid = Signal(range(MAXS + 1))  # saturates at MAXS: "too many samples"
        sample_last = Signal()
        m.d.comb += sample_last.eq(beat == S - 1)
        accept = Signal()
        m.d.comb += [
            lookup.req.valid.eq(self.keys.valid & side.w_rdy),
            self.keys.ready.eq(lookup.req.ready & side.w_rdy),
            accept.eq(self.keys.valid & self.keys.ready),
            lookup.req.payload.eq(self.keys.payload.keys),
            side.w_en.eq(accept),
        ]
        side_in = data.View(side_layout, side.w_data)
        m.d.comb += [
            side_in.keys.eq(self.keys.payload.keys),
            side_in.lane_valid.eq(Mux(sample_last, (1 << last_lanes) - 1, (1 << W) - 1)),
            side_in.sid.eq(sid[:r.sid_bits]),
            side_in.sample_last.eq(sample_last),
            side_in.batch_last.eq(sample_last & self.keys.payload.last),
            side_in.too_many.eq(sid == MAXS),
        ]
        with m.If(accept):
            m.d.sync += beat.eq(Mux(sample_last, 0, beat + 1))
            with m.If(sample_last):
                with m.If(self.keys.payload.last):
                    m.d.sync += sid.eq(0)
                with m.Elif(sid != MAXS):
                    m.d.sync += sid.eq(sid + 1)

        # D0: the lookup response with its side data, ready to enter D1.
        head = data.View(side_layout, side.r_data)
        d0_valid = Signal()
        m.d.comb += d0_valid.eq(lookup.resp.valid & side.r_rdy)

        # ---- D1: de-duplicate the beat's cold keys -------------------------------------------
        dentry = data.StructLayout({"epoch": E, "key": K, "u": r.u_bits})
        dmem = Memory(shape=data.ArrayLayout(dentry, DW), depth=NB, init=[])
        m.submodules.dedupe = dmem
        wps = [dmem.write_port(granularity=1) for _ in range(W)]
        rps = [dmem.read_port(transparent_for=wps) for _ in range(W)]
        home = dedupe_hash(cfg)

        d1_valid = Signal()
        d1 = Signal(side_layout)
        d1_hot = Signal(W)
        d1_slot = Signal(data.ArrayLayout(r.slot_bits, W))
        resolved = Signal(W)
        found = Signal(W)
        found_u = Signal(data.ArrayLayout(r.u_bits, W))
        claimed = Signal(W)
        bucket = Signal(data.ArrayLayout(bbits, W))
        cway = Signal(data.ArrayLayout(max(1, _clog2(DW)), W))

        epoch = Signal(E, init=1)
        next_u = Signal(range(MAXK + 1))
        dropping = Signal()
        key_of = Signal()
        samp_of = Signal()
        n_pop = Signal(range(MAXS + 1))
        n_non = Signal(range(MAXS + 1))
        sample_hot = Signal(init=1)  # AND of the hot bits of the sample's earlier beats
        # Reset starts with a wipe: the memory keeps its contents through a reset, the tag does not.
        sweeping = Signal(init=1)
        sweep_ctr = Signal(range(max(2, -(-NB // W))))

        active = Signal()  # this beat is de-duplicated (not dropped)
        m.d.comb += active.eq(d1_valid & ~dropping & ~d1.too_many)
        keys_ = [d1.keys[l] for l in range(W)]
        cold = [Signal(name=f"cold{l}") for l in range(W)]
        for l in range(W):
            m.d.comb += cold[l].eq(active & d1.lane_valid[l] & ~d1_hot[l])

        # Combine equal cold keys within the beat: lane l copies its first equal lane.
        same = {}  # (m, l) -> lanes m < l hold the same cold key
        leader = []
        for l in range(W):
            eqs = []
            for mm in range(l):
                s = Signal(name=f"same{mm}_{l}")
                m.d.comb += s.eq(cold[mm] & cold[l] & (keys_[mm] == keys_[l]))
                same[(mm, l)] = s
                eqs.append(s)
            ld = Signal(name=f"leader{l}")
            m.d.comb += ld.eq(cold[l] & ~Cat(*eqs).any() if eqs else cold[l])
            leader.append(ld)

        pending = [Signal(name=f"pending{l}") for l in range(W)]
        found_now = [Signal(name=f"found_now{l}") for l in range(W)]
        match_u = [Signal(r.u_bits, name=f"match_u{l}") for l in range(W)]
        want = [Signal(name=f"want{l}") for l in range(W)]
        free = [Signal(DW, name=f"free{l}") for l in range(W)]
        claim_now = [Signal(name=f"claim_now{l}") for l in range(W)]
        claim_way = [Signal(max(1, _clog2(DW)), name=f"claim_way{l}") for l in range(W)]
        cont = [Signal(name=f"cont{l}") for l in range(W)]
        for l in range(W):
            rd = rps[l].data
            cur = [rd[w].epoch == epoch for w in range(DW)]
            matches = [cur[w] & (rd[w].key == keys_[l]) for w in range(DW)]
            mu = Const(0, r.u_bits)
            for w in range(DW):
                mu = mu | (rd[w].u & matches[w].replicate(r.u_bits))
            m.d.comb += [
                pending[l].eq(leader[l] & ~resolved[l]),
                found_now[l].eq(pending[l] & Cat(*matches).any()),
                match_u[l].eq(mu),
                want[l].eq(pending[l] & ~Cat(*matches).any()),
                free[l].eq(~Cat(*cur)),
            ]
            # Earlier lanes claiming in the same bucket this cycle take the first free ways.
            before = [want[mm] & (bucket[mm] == bucket[l]) for mm in range(l)]
            k = Const(0, 1)
            for b in before:
                k = k + b
            k_sig = Signal(range(W + 1), name=f"k{l}")
            m.d.comb += k_sig.eq(k)
            n_free = Const(0, 1)
            for w in range(DW):
                n_free = n_free + free[l][w]
            m.d.comb += [
                claim_now[l].eq(want[l] & (k_sig < n_free)),
                cont[l].eq(want[l] & ~(k_sig < n_free)),
            ]
            # The way: the k-th set bit of free.
            run = Const(0, 1)
            way_expr = Const(0, claim_way[l].shape())
            for w in range(DW):
                hitw = free[l][w] & (run == k_sig)
                way_expr = Mux(hitw, w, way_expr)
                run = run + free[l][w]
            m.d.comb += claim_way[l].eq(way_expr)

        all_resolved = Signal()
        m.d.comb += all_resolved.eq(Cat(*(~pending[l] | found_now[l] | claim_now[l]
                                          for l in range(W))).all())

        # Numbering: the beat's new keys in lane order from next_u.
        new = [Signal(name=f"new{l}") for l in range(W)]
        rank = [Signal(range(W + 1), name=f"rank{l}") for l in range(W)]
        u_lead = [Signal(r.u_bits, name=f"u_lead{l}") for l in range(W)]
        u_lane = [Signal(r.u_bits, name=f"u_lane{l}") for l in range(W)]
        over = [Signal(name=f"over{l}") for l in range(W)]
        acc = Const(0, 1)
        for l in range(W):
            m.d.comb += [new[l].eq(leader[l] & (claimed[l] | claim_now[l])), rank[l].eq(acc)]
            acc = acc + new[l]
        n_new = Signal(range(W + 1))
        m.d.comb += n_new.eq(acc)
        avail = Signal(range(MAXK + 1))
        m.d.comb += avail.eq(MAXK - next_u)
        for l in range(W):
            m.d.comb += [
                over[l].eq(new[l] & (rank[l] >= avail)),
                u_lead[l].eq(Mux(found[l], found_u[l], Mux(found_now[l], match_u[l], next_u + rank[l]))),
            ]
            src = u_lead[l]
            for mm in reversed(range(l)):  # the first equal lane wins
                src = Mux(same[(mm, l)], u_lead[mm], src)
            m.d.comb += u_lane[l].eq(src)
        overflow = Signal()
        m.d.comb += overflow.eq(Cat(*over).any())
        n_emit = Signal(range(W + 1))
        m.d.comb += n_emit.eq(Mux(overflow, avail, n_new))

        # ---- outputs -------------------------------------------------------------------------
        depth = 1 << _clog2(max(2, r.sample_buffer * S))
        m.submodules.pop_buf = pop_buf = _SpeculativeFIFO(lay.sample_out, depth)
        m.submodules.non_buf = non_buf = _SpeculativeFIFO(lay.sample_out, depth)
        wiring.connect(m, pop_buf.out, wiring.flipped(self.popular))
        wiring.connect(m, non_buf.out, wiring.flipped(self.non_popular))
        m.submodules.cold_fifo = cold_fifo = fifo.SyncFIFOBuffered(width=lay.cold_out.size, depth=4)
        m.submodules.status_fifo = status_fifo = fifo.SyncFIFOBuffered(width=lay.status.size, depth=2)
        m.d.comb += [
            self.cold.valid.eq(cold_fifo.r_rdy), self.cold.payload.eq(cold_fifo.r_data),
            cold_fifo.r_en.eq(self.cold.ready),
            self.status.valid.eq(status_fifo.r_rdy), self.status.payload.eq(status_fifo.r_data),
            status_fifo.r_en.eq(self.status.ready),
        ]

        room = Signal()
        m.d.comb += room.eq(pop_buf.w_space & non_buf.w_space & cold_fifo.w_rdy
                            & (~d1.batch_last | status_fifo.w_rdy))
        complete = Signal()
        m.d.comb += complete.eq(d1_valid & all_resolved & room)
        start_sweep = Signal()
        m.d.comb += start_sweep.eq(complete & d1.batch_last & (epoch == max_epoch))
        take = Signal()
        m.d.comb += take.eq(d0_valid & (~d1_valid | complete) & ~sweeping & ~start_sweep)
        m.d.comb += [lookup.resp.ready.eq(take), side.r_en.eq(take)]

        # Read addresses: the home buckets of the next beat, or the next probe.
        for l in range(W):
            with m.If(take):
                m.d.comb += rps[l].addr.eq(home.amaranth(head.keys[l]))
            with m.Else():
                m.d.comb += rps[l].addr.eq(Mux(cont[l], bucket[l] + 1, bucket[l]))

        # Writes: sweep, placeholder claims, final entries.
        for l in range(W):
            wp = wps[l]
            if DW > 1:
                claim_en = Const(1, DW) << claim_way[l]
                reg_en = Const(1, DW) << cway[l]
            else:
                claim_en = reg_en = Const(1, 1)
            for w in range(DW):
                m.d.comb += [wp.data[w].epoch.eq(epoch), wp.data[w].key.eq(keys_[l]),
                             wp.data[w].u.eq(Mux(complete, next_u + rank[l], 0))]
            with m.If(sweeping):
                for w in range(DW):
                    m.d.comb += wp.data[w].eq(0)
                m.d.comb += [wp.addr.eq(sweep_ctr * W + l), wp.en.eq((1 << DW) - 1)]
            with m.Elif(claim_now[l] & ~(complete & over[l])):
                m.d.comb += [wp.addr.eq(bucket[l]), wp.en.eq(claim_en)]
            with m.Elif(complete & claimed[l] & ~over[l]):
                m.d.comb += [wp.addr.eq(bucket[l]), wp.en.eq(reg_en)]

        with m.If(sweeping):
            m.d.sync += sweep_ctr.eq(sweep_ctr + 1)
            with m.If(sweep_ctr == -(-NB // W) - 1):
                m.d.sync += [sweeping.eq(0), sweep_ctr.eq(0)]

        # D1 lane state while the beat stays.
        with m.If(take):
            m.d.sync += [
                d1_valid.eq(1), d1.eq(head),
                d1_hot.eq(Cat(*(lookup.resp.payload[l].hit for l in range(W)))),
                resolved.eq(0), found.eq(0), claimed.eq(0),
            ]
            for l in range(W):
                m.d.sync += [d1_slot[l].eq(lookup.resp.payload[l].slot),
                             bucket[l].eq(home.amaranth(head.keys[l]))]
        with m.Else():
            with m.If(complete):
                m.d.sync += d1_valid.eq(0)
            for l in range(W):
                with m.If(found_now[l]):
                    m.d.sync += [resolved[l].eq(1), found[l].eq(1), found_u[l].eq(match_u[l])]
                with m.If(claim_now[l]):
                    m.d.sync += [resolved[l].eq(1), claimed[l].eq(1), cway[l].eq(claim_way[l])]
                with m.If(cont[l]):
                    m.d.sync += bucket[l].eq(bucket[l] + 1)

        # The remapped beat and the sample's class.
        out_beat = Signal(lay.sample_out)
        beat_hot = Signal()
        m.d.comb += [out_beat.sid.eq(d1.sid), out_beat.last.eq(d1.sample_last),
                     beat_hot.eq(sample_hot & (d1_hot | ~d1.lane_valid).all())]
        for l in range(W):
            with m.If(d1.lane_valid[l]):
                m.d.comb += [out_beat.keys[l].hot.eq(d1_hot[l]),
                             out_beat.keys[l].index.eq(Mux(d1_hot[l], d1_slot[l], u_lane[l]))]
        drop = Signal()  # this beat is not emitted
        m.d.comb += drop.eq(dropping | d1.too_many | overflow)
        emit = Signal()
        m.d.comb += emit.eq(complete & ~drop)
        is_pop = Signal()
        m.d.comb += is_pop.eq(emit & d1.sample_last & beat_hot)
        is_non = Signal()
        m.d.comb += is_non.eq(emit & d1.sample_last & ~beat_hot)
        for buf, mine, other in ((pop_buf, is_pop, is_non), (non_buf, is_non, is_pop)):
            m.d.comb += [buf.w_en.eq(emit), buf.w_data.eq(out_beat), buf.commit.eq(mine),
                         buf.rollback.eq(other | (complete & overflow))]

        # Cold keys: the beat's new keys packed by their number.
        cold_beat = data.View(lay.cold_out, cold_fifo.w_data)
        m.d.comb += [cold_beat.u.eq(next_u), cold_beat.count.eq(n_emit),
                     cold_fifo.w_en.eq(complete & active & (n_emit != 0))]
        for j in range(W):
            kj = Const(0, K)
            for l in range(j, W):  # rank[l] <= l
                kj = kj | (keys_[l] & (new[l] & (rank[l] == j)).replicate(K))
            m.d.comb += cold_beat.keys[j].eq(kj)

        # Batch bookkeeping and the status word.
        pop_after = Signal.like(n_pop)
        non_after = Signal.like(n_non)
        u_after = Signal.like(next_u)
        key_of_after = Signal()
        samp_of_after = Signal()
        m.d.comb += [
            pop_after.eq(n_pop + is_pop), non_after.eq(n_non + is_non),
            u_after.eq(next_u + Mux(active, n_emit, 0)),
            key_of_after.eq(key_of | (active & overflow)),
            samp_of_after.eq(samp_of | (d1_valid & d1.too_many)),
        ]
        status = data.View(lay.status, status_fifo.w_data)
        m.d.comb += [status.popular.eq(pop_after), status.non_popular.eq(non_after),
                     status.cold.eq(u_after), status.key_overflow.eq(key_of_after),
                     status.sample_overflow.eq(samp_of_after),
                     status_fifo.w_en.eq(complete & d1.batch_last)]
        with m.If(complete):
            m.d.sync += sample_hot.eq(Mux(d1.sample_last, 1, beat_hot))
            with m.If(d1.batch_last):
                m.d.sync += [n_pop.eq(0), n_non.eq(0), next_u.eq(0), key_of.eq(0), samp_of.eq(0),
                             dropping.eq(0), epoch.eq(Mux(epoch == max_epoch, 1, epoch + 1))]
                with m.If(epoch == max_epoch):
                    m.d.sync += sweeping.eq(1)
            with m.Else():
                m.d.sync += [n_pop.eq(pop_after), n_non.eq(non_after), next_u.eq(u_after),
                             key_of.eq(key_of_after), samp_of.eq(samp_of_after),
                             dropping.eq(dropping | (active & overflow))]
        return m
