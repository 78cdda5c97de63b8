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

Structure (every memory has at most the two ports of a block RAM):

``input -> hot-map lookup -> split -> beat queue ---------------------> assemble -> outputs``
``                                 -> cold queue -> serializer -> de-dup engine --^``

The hot map (:class:`~hotline.rtl.hotmap.HotMapLookup`) answers W lanes per
cycle from W copies of each hash table (one write port for the load, one
read port each).  The split
register writes every beat (hot bits, slots, framing) into the *beat queue*
and the beats with cold keys (not in a sample past ``max_batch_samples``)
also into the *cold queue*, both block-RAM FIFOs of ``dedupe_queue`` beats.
A serializer feeds those beats' cold keys, one per cycle in lane order, to
the :class:`~hotline.rtl.dedupe.DedupeEngine`: a single hash table of
``dedupe_buckets x dedupe_ways`` entries in RAM banks with one read and one
write port each, pipelined over five stages with forwarding of the five
previous decisions and a replay when a bucket is full, so it numbers the
keys exactly in arrival order.  It sends each new cold key out on ``cold``
(one key per beat, ``count`` 1) and each beat's numbers back on a small
FIFO; the assembler pairs them with the beat at the head of the beat
queue.  Only cold keys pass the one-key-per-cycle engine (about a quarter of
the keys of a Criteo-like batch, far fewer when many samples are popular),
so the unit runs at one beat per cycle on average and stalls its input only
when a cold-heavy stretch fills the queues.  Entries carry a batch tag
(epoch), so a new batch is an O(1) clear; a reset starts with a wipe of the
table (``min(dedupe_buckets, 512)`` cycles; keys wait in the queues meanwhile), and the
first cold key after the tag wraps (every ``2**dedupe_epoch_bits - 1``
batches) makes the engine wipe it again first.  A
reset does not clear the hot map.  Each output buffer takes every beat
speculatively and commits or rolls back the sample once its class is known,
so the two outputs keep arrival order without a copy step.  The engine may
emit the next batch's cold keys before this batch's status beat.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import HotlineConfig
from .checks import require_config
from .dedupe import DedupeEngine, dedupe_hash
from .hotmap import HotMapLookup, hotmap_load_layout

__all__ = ["ReorderUnit", "reorder_layouts", "ReorderLayouts", "dedupe_hash"]


def _clog2(n: int) -> int:
    return (n - 1).bit_length()


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
        # Registered room: at most one write a cycle, so "fewer than D - 1 in use" a cycle ago
        # still leaves a free entry now (reads and rollbacks only free more).  The buffer holds
        # at least D - 1 beats.
        m.d.sync += self.w_space.eq((wr - rd)[:bits + 1] < D - 1)
        m.d.comb += [
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


def _bram_tail(m, name, q, width):
    """A 4-entry FIFO after the block-RAM FIFO ``q``: the RAM's output goes straight into a
    register (no logic after the RAM's slow clock-to-output), and ``q`` is read on credit
    (the small FIFO's registered level), so the consumer's ready never reaches the RAM."""
    m.submodules[f"{name}_tail"] = tail = fifo.SyncFIFO(width=width, depth=4)
    p_valid = Signal(name=f"{name}_p_valid")
    p_data = Signal(width, name=f"{name}_p_data", reset_less=True)
    pop = Signal(name=f"{name}_pop")
    m.d.comb += [pop.eq(q.r_rdy & (tail.level + p_valid <= 2)), q.r_en.eq(pop),
                 tail.w_en.eq(p_valid), tail.w_data.eq(p_data)]
    m.d.sync += p_valid.eq(pop)
    with m.If(pop):
        m.d.sync += p_data.eq(q.r_data)
    return tail


def _head_reg(m, name, src, width):
    """A register at the head of the LUT-RAM FIFO ``src``: the consumer sees flip-flops, not
    the FIFO's read multiplexer.  Returns ``(valid, data, take)``; drive ``take`` (consume the
    head) only while ``valid``."""
    valid = Signal(name=f"{name}_hvalid")
    dat = Signal(width, name=f"{name}_hdata", reset_less=True)
    take = Signal(name=f"{name}_take")
    load = Signal(name=f"{name}_load")
    m.d.comb += [load.eq(src.r_rdy & (~valid | take)), src.r_en.eq(load)]
    with m.If(load):
        m.d.sync += [valid.eq(1), dat.eq(src.r_data)]
    with m.Elif(take):
        m.d.sync += valid.eq(0)
    return valid, dat, take


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
        E = r.dedupe_epoch_bits
        max_epoch = (1 << E) - 1
        MAXS = r.max_batch_samples
        last_lanes = T - (S - 1) * W  # valid lanes in a sample's final beat

        # ---- front end: count beats and samples, look the keys up ---------------------------
        m.submodules.lookup = lookup = HotMapLookup(cfg)
        wiring.connect(m, wiring.flipped(self.load), lookup.load)

        side_layout = data.StructLayout({
            "keys": data.ArrayLayout(K, W), "lane_valid": W, "sid": r.sid_bits,
            "sample_last": 1, "batch_last": 1, "too_many": 1})
        # Covers the lookup's latency (5) plus the split register, so the input runs at one
        # beat per cycle.
        m.submodules.side = side = fifo.SyncFIFO(width=side_layout.size, depth=8)
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

        # ---- split: every beat into the beat queue, beats with cold keys also into the cold
        # queue (both block-RAM FIFOs of dedupe_queue beats) --------------------------------
        beat_layout = data.StructLayout({
            "hot": W, "slot": data.ArrayLayout(r.slot_bits, W), "lane_valid": W, "sid": r.sid_bits,
            "sample_last": 1, "batch_last": 1, "too_many": 1, "has_cold": 1})
        cbeat_layout = data.StructLayout({"keys": data.ArrayLayout(K, W), "cold": W, "epoch": E, "wipe": 1})
        m.submodules.beat_q = beat_q = fifo.SyncFIFOBuffered(width=beat_layout.size, depth=r.dedupe_queue + 1)
        m.submodules.cold_q = cold_q = fifo.SyncFIFOBuffered(width=cbeat_layout.size, depth=r.dedupe_queue + 1)

        head = data.View(side_layout, side.r_data)
        d0_valid = Signal()
        d0 = Signal(side_layout, reset_less=True)
        d0_hot = Signal(W, reset_less=True)
        d0_slot = Signal(data.ArrayLayout(r.slot_bits, W), reset_less=True)
        d0_cold = Signal(W)
        m.d.comb += d0_cold.eq(d0.lane_valid & ~d0_hot & ~d0.too_many.replicate(W))
        d0_has_cold = Signal()
        m.d.comb += d0_has_cold.eq(d0_cold.any())
        # The split register always empties the next cycle: a beat is taken only while both
        # queues had room for two more a cycle ago (at most one write a cycle), a registered
        # flag that keeps the queues' levels off the lookup's stall path.
        q_room = Signal()
        m.d.sync += q_room.eq((beat_q.w_level < r.dedupe_queue - 2) & (cold_q.w_level < r.dedupe_queue - 2))
        d0_go = Signal()
        m.d.comb += d0_go.eq(d0_valid)
        take = Signal()
        m.d.comb += [take.eq(lookup.resp.valid & side.r_rdy & q_room),
                     lookup.resp.ready.eq(take), side.r_en.eq(take)]
        m.d.sync += d0_valid.eq(take)
        with m.If(take):
            m.d.sync += [d0.eq(head), d0_hot.eq(Cat(*(lookup.resp.payload[l].hit for l in range(W))))]
            for l in range(W):
                m.d.sync += d0_slot[l].eq(lookup.resp.payload[l].slot)

        # The batch tag: bumped after every batch; when it wraps the next cold key tells the
        # de-dup engine to wipe its table first.
        epoch = Signal(E, init=1)
        wipe_pending = Signal()   # (a reset wipes the de-dup table by itself)
        bq_in = data.View(beat_layout, beat_q.w_data)
        cq_in = data.View(cbeat_layout, cold_q.w_data)
        m.d.comb += [
            bq_in.hot.eq(d0_hot), bq_in.slot.eq(d0_slot), bq_in.lane_valid.eq(d0.lane_valid),
            bq_in.sid.eq(d0.sid), bq_in.sample_last.eq(d0.sample_last), bq_in.batch_last.eq(d0.batch_last),
            bq_in.too_many.eq(d0.too_many), bq_in.has_cold.eq(d0_has_cold),
            beat_q.w_en.eq(d0_go),
            cq_in.keys.eq(d0.keys), cq_in.cold.eq(d0_cold), cq_in.epoch.eq(epoch), cq_in.wipe.eq(wipe_pending),
            cold_q.w_en.eq(d0_go & d0_has_cold),
        ]
        with m.If(d0_go):
            with m.If(d0_has_cold):
                m.d.sync += wipe_pending.eq(0)
            with m.If(d0.batch_last):
                m.d.sync += epoch.eq(Mux(epoch == max_epoch, 1, epoch + 1))
                with m.If(epoch == max_epoch):
                    m.d.sync += wipe_pending.eq(1)

        # ---- serializer: the cold keys of each beat, one per cycle, into the de-dup engine --
        m.submodules.dedupe = dd = DedupeEngine(cfg)
        ser_valid = Signal()
        ser = Signal(cbeat_layout, reset_less=True)
        rem = Signal(W)          # cold lanes not yet sent
        first = Signal()         # the next key is the beat's first
        low = Signal(W)          # lowest remaining lane, one-hot
        m.d.comb += low.eq(rem & (~rem + 1))
        lane = Signal(range(W) if W > 1 else 1)
        for l in reversed(range(W)):
            with m.If(low[l]):
                m.d.comb += lane.eq(l)
        key_sel = Const(0, K)
        for l in range(W):
            key_sel = key_sel | (ser.keys[l] & low[l].replicate(K))
        is_last = Signal()
        m.d.comb += is_last.eq((rem & ~low) == 0)
        m.d.comb += [
            dd.items.valid.eq(ser_valid),
            dd.items.payload.key.eq(key_sel), dd.items.payload.lane.eq(lane),
            dd.items.payload.last.eq(is_last), dd.items.payload.epoch.eq(ser.epoch),
            dd.items.payload.wipe.eq(ser.wipe & first),
        ]
        sent = Signal()
        m.d.comb += sent.eq(ser_valid & dd.items.ready)
        load_next = Signal()
        cq_tail = _bram_tail(m, "cq", cold_q, cbeat_layout.size)
        m.d.comb += [load_next.eq(cq_tail.r_rdy & (~ser_valid | (sent & is_last))),
                     cq_tail.r_en.eq(load_next)]
        cq_out = data.View(cbeat_layout, cq_tail.r_data)
        with m.If(load_next):
            m.d.sync += [ser_valid.eq(1), ser.eq(cq_out), rem.eq(cq_out.cold), first.eq(1)]
        with m.Elif(sent):
            m.d.sync += [rem.eq(rem & ~low), first.eq(0)]
            with m.If(is_last):
                m.d.sync += ser_valid.eq(0)

        # ---- assemble: each beat with its cold keys' numbers, into the output buffers ------
        # The head beat comes through a register, a small FIFO (see _bram_tail) and a head
        # register, so the assembler's decisions start at flip-flops.
        complete = Signal()
        bq_tail = _bram_tail(m, "bq", beat_q, beat_layout.size)
        bq_valid, bq_bits, bq_take = _head_reg(m, "bq", bq_tail, beat_layout.size)
        bq = data.View(beat_layout, bq_bits)
        m.d.comb += bq_take.eq(complete)
        uvec = dd.uvec.payload
        # (one entry more than sample_buffer samples: the registered room keeps one spare)
        depth = 1 << _clog2(max(2, r.sample_buffer * S + 1))
        m.submodules.pop_buf = pop_buf = _SpeculativeFIFO(lay.sample_out, depth)
        m.submodules.non_buf = non_buf = _SpeculativeFIFO(lay.sample_out, depth)
        wiring.connect(m, pop_buf.out, wiring.flipped(self.popular))
        wiring.connect(m, non_buf.out, wiring.flipped(self.non_popular))
        m.submodules.status_fifo = status_fifo = fifo.SyncFIFOBuffered(width=lay.status.size, depth=2)
        m.d.comb += [
            self.status.valid.eq(status_fifo.r_rdy), self.status.payload.eq(status_fifo.r_data),
            status_fifo.r_en.eq(self.status.ready),
        ]
        # Cold keys: one per beat, straight from the engine.
        m.d.comb += [self.cold.valid.eq(dd.cold.valid), dd.cold.ready.eq(self.cold.ready),
                     self.cold.payload.keys[0].eq(dd.cold.payload.key),
                     self.cold.payload.u.eq(dd.cold.payload.u), self.cold.payload.count.eq(1)]

        dropping = Signal()
        key_of = Signal()
        samp_of = Signal()
        n_pop = Signal(range(MAXS + 1))
        n_non = Signal(range(MAXS + 1))
        n_cold = Signal.like(uvec.count)
        sample_hot = Signal(init=1)  # AND of the hot bits of the sample's earlier beats

        room = Signal()
        m.d.comb += room.eq(pop_buf.w_space & non_buf.w_space & (~bq.batch_last | status_fifo.w_rdy))
        m.d.comb += complete.eq(bq_valid & (~bq.has_cold | dd.uvec.valid) & room)
        m.d.comb += dd.uvec.ready.eq(complete & bq.has_cold)

        overflow = Signal()   # this beat holds the batch's stop position
        m.d.comb += overflow.eq(bq.has_cold & uvec.over & ~dropping)
        out_beat = Signal(lay.sample_out)
        beat_hot = Signal()
        m.d.comb += [out_beat.sid.eq(bq.sid), out_beat.last.eq(bq.sample_last),
                     beat_hot.eq(sample_hot & (bq.hot | ~bq.lane_valid).all())]
        for l in range(W):
            with m.If(bq.lane_valid[l]):
                m.d.comb += [out_beat.keys[l].hot.eq(bq.hot[l]),
                             out_beat.keys[l].index.eq(Mux(bq.hot[l], bq.slot[l], uvec.u[l]))]
        drop = Signal()  # this beat is not emitted
        m.d.comb += drop.eq(dropping | bq.too_many | overflow)
        emit = Signal()
        m.d.comb += emit.eq(complete & ~drop)
        is_pop = Signal()
        m.d.comb += is_pop.eq(emit & bq.sample_last & beat_hot)
        is_non = Signal()
        m.d.comb += is_non.eq(emit & bq.sample_last & ~beat_hot)
        for buf, mine, other in ((pop_buf, is_pop, is_non), (non_buf, is_non, is_pop)):
            m.d.comb += [buf.w_en.eq(emit), buf.w_data.eq(out_beat), buf.commit.eq(mine),
                         buf.rollback.eq(other | (complete & overflow))]

        # Batch bookkeeping and the status word.
        pop_after = Signal.like(n_pop)
        non_after = Signal.like(n_non)
        # n + 1 kept in a register, so the counts after this beat are a multiplexer, not an adder
        pop_p1 = Signal.like(n_pop, init=1)
        non_p1 = Signal.like(n_non, init=1)
        cold_after = Signal.like(n_cold)
        key_of_after = Signal()
        samp_of_after = Signal()
        m.d.comb += [
            pop_after.eq(Mux(is_pop, pop_p1, n_pop)), non_after.eq(Mux(is_non, non_p1, n_non)),
            cold_after.eq(Mux(bq.has_cold & ~dropping, uvec.count, n_cold)),
            key_of_after.eq(key_of | overflow),
            samp_of_after.eq(samp_of | bq.too_many),
        ]
        status = data.View(lay.status, status_fifo.w_data)
        m.d.comb += [status.popular.eq(pop_after), status.non_popular.eq(non_after),
                     status.cold.eq(cold_after), status.key_overflow.eq(key_of_after),
                     status.sample_overflow.eq(samp_of_after),
                     status_fifo.w_en.eq(complete & bq.batch_last)]
        with m.If(complete):
            m.d.sync += sample_hot.eq(Mux(bq.sample_last, 1, beat_hot))
            with m.If(bq.batch_last):
                m.d.sync += [n_pop.eq(0), n_non.eq(0), n_cold.eq(0), key_of.eq(0), samp_of.eq(0),
                             dropping.eq(0), pop_p1.eq(1), non_p1.eq(1)]
            with m.Else():
                m.d.sync += [pop_p1.eq(Mux(is_pop, pop_p1 + 1, pop_p1)),
                             non_p1.eq(Mux(is_non, non_p1 + 1, non_p1))]
                m.d.sync += [n_pop.eq(pop_after), n_non.eq(non_after), n_cold.eq(cold_after),
                             key_of.eq(key_of_after), samp_of.eq(samp_of_after),
                             dropping.eq(dropping | overflow)]
        return m
