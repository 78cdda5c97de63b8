"""The reorder unit's de-dup engine: numbers a batch's distinct cold keys, one key per cycle.

Only cold keys reach it (about a quarter of the keys on Criteo-like batches),
so one key per cycle behind a queue keeps the unit at W lookups per cycle on
average; cold-heavy bursts stall the unit's input through the queue.

Table: ``dedupe_buckets x (dedupe_ways x entry)``, entry ``(epoch, key, u)``,
in banks of at most 512 buckets (the depth of a block RAM in its widest
shape, so no bank has a multiplexer between RAMs after its outputs), each a
RAM with one read port and one write port (a block RAM of two ports); every
bank reads each cycle and the key's bank is chosen after a register.
A key's home bucket is :func:`dedupe_hash`; a full bucket continues into the
next one (linear probing over buckets, all ways compared at once).  Entries
carry a batch tag (epoch), so a new batch is an O(1) clear; a reset starts
with a wipe of the table (all banks at once, ``min(dedupe_buckets, 512)``
cycles) and the first key after the tag wraps (every
``2**dedupe_epoch_bits - 1`` batches) waits for another.

Pipeline, one key per cycle, all stages move together:

``S0``  the key at the issue pointer of a 16-entry item queue (LUT RAM) issues
        the read of its bucket (its home, or the next bucket when it is being
        retried);
``S1``  the RAMs read;
``SX``  their words go straight into registers (next to the RAMs: a DP16KD's
        clock-to-output is slow);
``S2``  the word of the key's bank is registered and compared with the key
        (per way: same epoch, same key), and the key's address and key are
        compared with the five keys decided just before (whose writes the read
        may have missed, or met in its own cycle; the four older ones are
        folded into registered flags here);
``S3``  decide, in key order: a key equal to one of those five at the same
        bucket takes its ``u`` (forwarding); otherwise a matching way gives
        ``u``; otherwise the first way free both in the word and after the
        five earlier claims is claimed with ``u = next_u`` and written a cycle
        later from registers (the
        new key also goes out on ``cold``); a full bucket retries the key one
        bucket further and replays every younger key after it (a flush: the
        item queue keeps keys until they are decided), so decisions are
        always in arrival order and ``u`` is exact first-occurrence order;
``S4``  the registered decision goes out: the new key to ``cold``, the beat's
        numbers (gathered per lane) to ``uvec`` after its last key.

A new key when ``max_batch_keys`` are numbered is the batch's overflow: it is
flagged and every later key of the batch is dropped (no claim, no output).
The ``u`` of the keys of one input beat are gathered and leave together on
``uvec`` with the batch's running count of distinct cold keys.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import HotlineConfig
from ..hashing import H3
from .checks import require_config

__all__ = ["DedupeEngine", "dedupe_hash", "dedupe_item_layout", "dedupe_uvec_layout",
           "dedupe_cold_layout", "ITEM_QUEUE"]

#: Depth of the engine's item queue (keys issued but not yet decided stay in it).
ITEM_QUEUE = 16


def _clog2(n: int) -> int:
    return (n - 1).bit_length()


def dedupe_hash(cfg: HotlineConfig) -> H3:
    """Home bucket of a cold key in the de-dup table (internal to the unit: results never depend on it)."""
    return H3.from_seed(cfg.keys.key_bits, _clog2(cfg.reorder.dedupe_buckets), cfg.hash_seed,
                        "reorder.dedupe")


def dedupe_item_layout(cfg: HotlineConfig) -> data.StructLayout:
    """One cold key: ``key``, its ``lane`` in its beat, ``last`` (the beat's last cold key),
    the batch tag ``epoch`` and ``wipe`` (wipe the table before this key)."""
    r = cfg.reorder
    return data.StructLayout({"key": cfg.keys.key_bits, "lane": max(1, _clog2(r.lanes)), "last": 1,
                              "epoch": r.dedupe_epoch_bits, "wipe": 1})


def dedupe_uvec_layout(cfg: HotlineConfig) -> data.StructLayout:
    """The numbers of one beat's cold keys: ``u`` per lane, ``over`` (the beat holds the
    batch's overflow key) and ``count`` (distinct cold keys of the batch so far)."""
    r = cfg.reorder
    return data.StructLayout({"u": data.ArrayLayout(r.u_bits, r.lanes), "over": 1,
                              "count": r.max_batch_keys.bit_length()})


def dedupe_cold_layout(cfg: HotlineConfig) -> data.StructLayout:
    """A new cold key and its number."""
    return data.StructLayout({"key": cfg.keys.key_bits, "u": cfg.reorder.u_bits})


class DedupeEngine(wiring.Component):
    """One-key-per-cycle exact de-duplication of cold keys (see the module docstring).

    Parameters
    ----------
    cfg : HotlineConfig
    collision_probe : bool
        For tests: the RAM model returns the ways written in the very cycle of a read
        of their bucket with every bit inverted (the RAMs are ``no_rw_check``: such a
        read is left open on the FPGA), to show the engine never uses them.

    Members
    -------
    items : In(stream of dedupe_item_layout)
        Cold keys in arrival order, every beat's keys ending with ``last``.
    uvec : Out(stream of dedupe_uvec_layout)
        One beat per input beat with cold keys, in order.
    cold : Out(stream of dedupe_cold_layout)
        The new keys in ``u`` order (overflowed batches stop at ``max_batch_keys``).
    """

    def __init__(self, cfg: HotlineConfig, *, collision_probe: bool = False):
        require_config(self, cfg)
        self.cfg = cfg
        self.collision_probe = bool(collision_probe)
        super().__init__({
            "items": In(stream.Signature(dedupe_item_layout(cfg))),
            "uvec": Out(stream.Signature(dedupe_uvec_layout(cfg))),
            "cold": Out(stream.Signature(dedupe_cold_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, r = self.cfg, self.cfg.reorder
        K, W, E, DW, NB = cfg.keys.key_bits, r.lanes, r.dedupe_epoch_bits, r.dedupe_ways, r.dedupe_buckets
        MAXK = r.max_batch_keys
        bbits = max(1, _clog2(NB))
        Q = ITEM_QUEUE
        qbits = _clog2(Q)
        home = dedupe_hash(cfg)
        item_l = dedupe_item_layout(cfg)
        qitem = data.StructLayout({"item": item_l, "home": bbits})
        dentry = data.StructLayout({"epoch": E, "key": K, "u": r.u_bits})

        # ---- outputs: small LUT-RAM FIFOs ---------------------------------------------------
        m.submodules.uvec_fifo = ufifo = fifo.SyncFIFO(width=dedupe_uvec_layout(cfg).size, depth=16)
        m.submodules.cold_fifo = cfifo = fifo.SyncFIFO(width=dedupe_cold_layout(cfg).size, depth=16)
        # Each goes out through a head register: consumers see flip-flops, not the LUT RAM's
        # read multiplexer.
        for src, port in ((ufifo, self.uvec), (cfifo, self.cold)):
            load = Signal()
            m.d.comb += [load.eq(src.r_rdy & (~port.valid | port.ready)), src.r_en.eq(load)]
            with m.If(load):
                m.d.sync += [port.valid.eq(1), port.payload.eq(src.r_data)]
            with m.Elif(port.ready):
                m.d.sync += port.valid.eq(0)
        # Registered "room": at most one push per FIFO per cycle, so a level below depth-1
        # now leaves room next cycle too.
        adv = Signal()
        room = Signal()
        m.d.sync += room.eq((ufifo.level < 12) & (cfifo.level < 12))
        m.d.comb += adv.eq(room)

        # ---- item queue ----------------------------------------------------------------------
        m.submodules.queue = qmem = Memory(shape=qitem, depth=Q, init=[])
        qw = qmem.write_port()
        qr = qmem.read_port(domain="comb")
        wr = Signal(qbits + 1)
        iss = Signal(qbits + 1)
        ret = Signal(qbits + 1)
        # Registered room (one push a cycle at most, so "two free" a cycle ago is enough).
        q_room = Signal()
        m.d.sync += q_room.eq((wr - ret)[:qbits + 1] < Q - 1)
        m.d.comb += [
            self.items.ready.eq(q_room),
            qw.addr.eq(wr[:qbits]), qw.en.eq(self.items.valid & self.items.ready),
            qw.data.item.eq(self.items.payload), qw.data.home.eq(home.amaranth(self.items.payload.key)),
        ]
        with m.If(qw.en):
            m.d.sync += wr.eq(wr + 1)
        m.d.comb += qr.addr.eq(iss[:qbits])
        head = qr.data
        avail = Signal()
        m.d.comb += avail.eq(iss != wr)

        # ---- the table ----------------------------------------------------------------------
        # In banks of at most 512 buckets, the depth of a block RAM in its widest shape, so
        # no bank is several RAMs deep with a multiplexer after their slow outputs; every
        # bank reads each cycle and the bank is chosen after a register.
        BD = min(NB, 512)
        NBANK = NB // BD
        lbits = max(1, _clog2(BD))
        tws, trds = [], []
        for b in range(NBANK):
            # A read in the cycle of a write to its bucket is left open (no bypass logic after
            # the RAM); S2 and S3 never use the way being written then (see ``stale``).
            tmem = Memory(shape=data.ArrayLayout(dentry, DW), depth=BD, init=[], attrs={"no_rw_check": 1})
            m.submodules[f"table{b}" if NBANK > 1 else "table"] = tmem
            tws.append(tmem.write_port(granularity=1))
            trds.append(tmem.read_port())

        def bank_of(addr):
            return addr[lbits:] if NBANK > 1 else Const(0, 1)

        # Pipeline registers.
        def stage(name):
            return {"valid": Signal(name=f"{name}_valid"), "ptr": Signal(qbits + 1, name=f"{name}_ptr"),
                    "item": Signal(item_l, name=f"{name}_item"), "addr": Signal(bbits, name=f"{name}_addr")}
        s1, sx, s2, s3 = stage("s1"), stage("sx"), stage("s2"), stage("s3")
        # Each bank's output goes straight into its sx_data (placed by the RAM; a DP16KD's
        # clock-to-output is slow), then the key's bank into s2_data by the compare logic.
        sx_data = [Signal(data.ArrayLayout(dentry, DW), name=f"sx_data{b}", reset_less=True)
                   for b in range(NBANK)]
        s2_data = Signal(data.ArrayLayout(dentry, DW), reset_less=True)
        s3_match = Signal(DW)
        s3_occ = Signal(DW)
        s3_u = Signal(data.ArrayLayout(r.u_bits, DW))
        NH = 5
        s3_fa = Signal(NH)  # same batch and bucket as decision j (0 = the latest)
        s3_fk = Signal(NH)  # ... and the same key
        s3_pre_mask = Signal(DW)    # ways claimed by decisions 1 to 3 in this bucket
        s3_pre_found = Signal()     # decision 1, 2 or 3 resolved this key here ...
        s3_pre_u = Signal(r.u_bits)  # ... with this number
        # The last five decisions (shifted at every advance): claimed way, resolved, u, and
        # for the comparisons in S2: batch, bucket, key.
        hist = [{"claim": Signal(DW, name=f"h{j}_claim"), "res": Signal(name=f"h{j}_res"),
                 "u": Signal(r.u_bits, name=f"h{j}_u"), "valid": Signal(name=f"h{j}_valid"),
                 "epoch": Signal(E, name=f"h{j}_epoch"), "addr": Signal(bbits, name=f"h{j}_addr"),
                 "key": Signal(K, name=f"h{j}_key")} for j in range(NH)]

        retry = Signal()
        retry_addr = Signal(bbits)
        wiping = Signal(init=1)   # a reset starts with a wipe
        wiped = Signal()
        wipe_ctr = Signal(lbits)   # all banks are wiped at once
        cur_epoch = Signal(E)   # batch of the last decided key (0: none since the last wipe)
        next_u = Signal(range(MAXK + 1))
        nu_p1 = Signal(range(MAXK + 2), init=1)   # next_u + 1
        at_max = Signal()                          # next_u == MAXK
        at_max_p1 = Signal(init=int(MAXK == 1))    # next_u + 1 == MAXK
        s3_newb = Signal()   # S3's key is the first since a wipe or of a new batch
        dropping = Signal()

        # ---- S3: decide ----------------------------------------------------------------------
        it3 = s3["item"]
        # The four older decisions of the window were folded in S2 (s3_pre_*); only the
        # decision of the previous cycle (hist[0]) is looked at here.
        fwd_mask = Signal(DW)
        fwd_found = Signal()
        fwd_u = Signal(r.u_bits)
        fsel0 = Signal()
        m.d.comb += [fwd_mask.eq(s3_pre_mask | (hist[0]["claim"] & s3_fa[0].replicate(DW))),
                     fsel0.eq(s3_fk[0] & s3_fa[0] & hist[0]["res"]),
                     fwd_found.eq(fsel0 | s3_pre_found),
                     fwd_u.eq(Mux(fsel0, hist[0]["u"], s3_pre_u))]
        mem_match = Signal(DW)
        m.d.comb += mem_match.eq(s3_match & ~fwd_mask)
        mu = Const(0, r.u_bits)
        for w in range(DW):
            mu = mu | (s3_u[w] & mem_match[w].replicate(r.u_bits))
        found = Signal()
        u_found = Signal(r.u_bits)
        m.d.comb += [found.eq(fwd_found | mem_match.any()), u_found.eq(Mux(fwd_found, fwd_u, mu))]
        free = Signal(DW)
        m.d.comb += free.eq(~(s3_occ | fwd_mask))
        first_free = Signal(DW)  # one-hot lowest free way
        m.d.comb += first_free.eq(free & (~free + 1))
        new_batch = Signal()
        m.d.comb += new_batch.eq(s3_newb)
        nu = Signal.like(next_u)
        full = Signal()
        drop = Signal()
        m.d.comb += [nu.eq(Mux(new_batch, 0, next_u)), full.eq(~new_batch & at_max),
                     drop.eq(~new_batch & dropping)]

        live = Signal()   # S3 holds a key and the pipeline moves
        m.d.comb += live.eq(s3["valid"] & adv)
        cont = Signal()   # the bucket is full: retry one further, replay the younger keys
        claim = Signal()
        over = Signal()
        decided = Signal()
        m.d.comb += [
            cont.eq(live & ~drop & ~found & ~free.any()),
            claim.eq(live & ~drop & ~found & free.any() & ~full),
            over.eq(live & ~drop & ~found & free.any() & full),
            decided.eq(live & ~cont),
        ]
        u3 = Signal(r.u_bits)
        m.d.comb += u3.eq(Mux(found, u_found, nu))

        # Writes: the wipe, or a claim.
        # A claim is written a cycle later from registers (the RAMs are spread over the chip;
        # the forwarding window covers the extra cycle).  No claim is pending when a wipe
        # starts (the pipeline is empty a cycle before).
        w_en = [Signal(DW, name=f"w_en{b}") for b in range(NBANK)]
        w_addr = Signal(lbits)
        w_epoch = Signal(E)
        w_key = Signal(K)
        w_u = Signal(r.u_bits)
        m.d.sync += [w_addr.eq(s3["addr"][:lbits]), w_epoch.eq(it3.epoch), w_key.eq(it3.key), w_u.eq(nu)]
        for b in range(NBANK):
            m.d.sync += w_en[b].eq(Mux(claim & (bank_of(s3["addr"]) == b), first_free, 0))
        for b, tw in enumerate(tws):
            m.d.comb += tw.addr.eq(Mux(wiping, wipe_ctr, w_addr))
            for w in range(DW):
                m.d.comb += [tw.data[w].epoch.eq(Mux(wiping, 0, w_epoch)),
                             tw.data[w].key.eq(Mux(wiping, 0, w_key)),
                             tw.data[w].u.eq(Mux(wiping, 0, w_u))]
            m.d.comb += tw.en.eq(Mux(wiping, (1 << DW) - 1, w_en[b]))

        # The count after this key, as multiplexers over registered next_u + 1 and the
        # registered comparisons with max_batch_keys (no adder or compare after the decision).
        count_after = Signal.like(next_u)
        m.d.comb += count_after.eq(Mux(new_batch, claim, Mux(claim, nu_p1, next_u)))
        with m.If(decided):
            m.d.sync += [
                cur_epoch.eq(it3.epoch), next_u.eq(count_after), dropping.eq(drop | over),
                nu_p1.eq(Mux(new_batch, Mux(claim, 2, 1), Mux(claim, nu_p1 + 1, nu_p1))),
                at_max.eq(Mux(new_batch, Mux(claim, int(MAXK == 1), 0), Mux(claim, at_max_p1, at_max))),
                at_max_p1.eq(Mux(new_batch, Mux(claim, int(MAXK == 2), int(MAXK == 1)),
                                 Mux(claim, nu_p1 + 1 == MAXK, at_max_p1))),
            ]
            with m.If(it3.wipe):
                m.d.sync += wiped.eq(0)

        # S4: the decision, registered, goes out: new keys, and the beat's numbers.
        s4_dec, s4_claim, s4_over, s4_last = Signal(), Signal(), Signal(), Signal()
        s4_u = Signal(r.u_bits)
        s4_key = Signal(K)
        s4_lane = Signal.like(it3.lane)
        s4_count = Signal.like(next_u)
        m.d.sync += [s4_dec.eq(decided), s4_claim.eq(claim), s4_over.eq(over), s4_last.eq(it3.last),
                     s4_u.eq(u3), s4_key.eq(it3.key), s4_lane.eq(it3.lane), s4_count.eq(count_after)]
        cold_in = data.View(dedupe_cold_layout(cfg), cfifo.w_data)
        m.d.comb += [cold_in.key.eq(s4_key), cold_in.u.eq(s4_u), cfifo.w_en.eq(s4_claim)]
        acc_u = Signal(data.ArrayLayout(r.u_bits, W))
        acc_over = Signal()
        uv = data.View(dedupe_uvec_layout(cfg), ufifo.w_data)
        for l in range(W):
            m.d.comb += uv.u[l].eq(Mux(s4_lane == l, s4_u, acc_u[l]))
        m.d.comb += [uv.over.eq(acc_over | s4_over), uv.count.eq(s4_count),
                     ufifo.w_en.eq(s4_dec & s4_last)]
        with m.If(s4_dec):
            m.d.sync += acc_over.eq(Mux(s4_last, 0, acc_over | s4_over))
            for l in range(W):
                with m.If(s4_lane == l):
                    m.d.sync += acc_u[l].eq(s4_u)

        # History of decisions (a decision is this cycle's S3 when it is decided).
        with m.If(adv):
            m.d.sync += [
                hist[0]["valid"].eq(decided), hist[0]["claim"].eq(Mux(claim, first_free, 0)),
                hist[0]["res"].eq(decided & ~drop & (found | claim)), hist[0]["u"].eq(u3),
                hist[0]["epoch"].eq(it3.epoch), hist[0]["addr"].eq(s3["addr"]), hist[0]["key"].eq(it3.key),
            ]
            for j in range(1, NH):
                m.d.sync += [hist[j][k].eq(hist[j - 1][k]) for k in hist[j]]

        # ---- S0: issue -----------------------------------------------------------------------
        need_wipe = Signal()
        m.d.comb += need_wipe.eq(avail & head.item.wipe & ~wiped)
        issue = Signal()
        m.d.comb += issue.eq(adv & avail & ~need_wipe & ~wiping & ~cont)
        addr0 = Signal(bbits)
        m.d.comb += addr0.eq(Mux(retry, retry_addr, head.home))
        for trd in trds:
            m.d.comb += [trd.addr.eq(addr0[:lbits]), trd.en.eq(adv)]
        with m.If(cont):
            m.d.sync += [iss.eq(s3["ptr"]), retry.eq(1), retry_addr.eq(s3["addr"] + 1)]
        with m.Elif(issue):
            m.d.sync += [iss.eq(iss + 1), retry.eq(0)]
        with m.If(decided):
            m.d.sync += ret.eq(s3["ptr"] + 1)

        with m.If(need_wipe & ~wiping & ~s1["valid"] & ~sx["valid"] & ~s2["valid"] & ~s3["valid"]):
            m.d.sync += [wiping.eq(1), wipe_ctr.eq(0)]
        with m.If(wiping):
            m.d.sync += wipe_ctr.eq(wipe_ctr + 1)
            with m.If(wipe_ctr == BD - 1):
                # (after the reset's own wipe no key is waiting for one)
                m.d.sync += [wiping.eq(0), wiped.eq(need_wipe), cur_epoch.eq(0)]

        if self.collision_probe:
            # Ways written at the edge of a read of the same row: inverted in the read word
            # (held, like the word, while the read port is not enabled).
            ew = data.ArrayLayout(dentry, DW).size // DW
            probe_mask = []
            for b in range(NBANK):
                ways = Signal(DW, name=f"probe_ways{b}")
                with m.If(adv):
                    m.d.sync += ways.eq(Mux(tws[b].addr == addr0[:lbits], tws[b].en, 0))
                probe_mask.append(Cat(*(ways[w].replicate(ew) for w in range(DW))))

        # ---- stage moves ---------------------------------------------------------------------
        with m.If(adv):
            m.d.sync += [
                s1["valid"].eq(issue), s1["ptr"].eq(iss), s1["item"].eq(head.item), s1["addr"].eq(addr0),
                sx["valid"].eq(s1["valid"] & ~cont), sx["ptr"].eq(s1["ptr"]), sx["item"].eq(s1["item"]),
                sx["addr"].eq(s1["addr"]),
                s2["valid"].eq(sx["valid"] & ~cont), s2["ptr"].eq(sx["ptr"]), s2["item"].eq(sx["item"]),
                s2["addr"].eq(sx["addr"]),
                s3["valid"].eq(s2["valid"] & ~cont), s3["ptr"].eq(s2["ptr"]), s3["item"].eq(s2["item"]),
                s3["addr"].eq(s2["addr"]),
            ]
            for b in range(NBANK):
                m.d.sync += sx_data[b].eq(trds[b].data if not self.collision_probe else
                                          trds[b].data.as_value() ^ probe_mask[b])
            with m.Switch(bank_of(sx["addr"])):
                for b in range(NBANK):
                    with m.Case(b):
                        m.d.sync += s2_data.eq(sx_data[b])
            # S2: compare the word, and with the keys decided in the five cycles' window.
            it2 = s2["item"]
            # The batch of the key decided before this one: S3's key (decided now, or flushed
            # by a retry), else the last decided one.
            m.d.sync += s3_newb.eq(Mux(s3["valid"], it2.epoch != it3.epoch, it2.epoch != cur_epoch))
            # Window after the shift: j=0 <- S3 now, j <- hist[j-1] for j = 1 .. 4.
            others = [(s3["valid"], s3["item"].epoch, s3["addr"], s3["item"].key)] + [
                (hist[j]["valid"], hist[j]["epoch"], hist[j]["addr"], hist[j]["key"]) for j in range(NH - 1)]
            # Decision 4 (written a cycle after it) may have written its way at the very edge
            # of this key's read: the RAMs leave such a read open (no_rw_check), so that way
            # of the word is not used.  With
            # the key's batch, forwarding stands in for it (below); from an older batch it is
            # free for this key, as whatever it held before.
            v3, ep3, ad3, _ = others[NH - 1]
            stale = hist[NH - 2]["claim"] & (v3 & (ep3 != it2.epoch) & (ad3 == s2["addr"])).replicate(DW)
            occ = [s2_data[w].epoch == it2.epoch for w in range(DW)]
            m.d.sync += [s3_occ.eq(Cat(*occ) & ~stale),
                         s3_match.eq(Cat(*(occ[w] & (s2_data[w].key == it2.key) for w in range(DW))) & ~stale)]
            for w in range(DW):
                m.d.sync += s3_u[w].eq(s2_data[w].u)
            fa, fk = [], []
            for v, ep, ad, ky in others:
                fa.append(v & (ep == it2.epoch) & (ad == s2["addr"]))
                fk.append(ky == it2.key)
            m.d.sync += [s3_fa.eq(Cat(*fa)), s3_fk.eq(Cat(*fk))]
            # Decisions 1 to 4 of S3's window are hist[0] to hist[3] now: fold them in (the
            # latest first; a key resolved twice in a bucket has one number anyway).
            pm = Const(0, DW)
            for j in range(1, NH):
                pm = pm | (hist[j - 1]["claim"] & fa[j].replicate(DW))
            sel = [fk[j] & fa[j] & hist[j - 1]["res"] for j in range(1, NH)]
            pre_u = hist[NH - 2]["u"]
            for j in reversed(range(1, NH - 1)):
                pre_u = Mux(sel[j - 1], hist[j - 1]["u"], pre_u)
            m.d.sync += [s3_pre_mask.eq(pm), s3_pre_found.eq(Cat(*sel).any()), s3_pre_u.eq(pre_u)]
        return m
