"""The accelerator as one device: registers, a command queue, the units, one AXI4 master.

:class:`HotlineTop` is what a driver talks to.  Its AXI4-Lite slave holds the
registers of :mod:`hotline.regmap` (generated from the one SystemRDL source);
a command is staged in ``CMD_*`` and pushed by ``CMD_SUBMIT``; the command
processor takes commands from the queue in order, moves their data between
host memory (the AXI4 master) and the units, and leaves one completion (tag,
status, two results) in the completion FIFO, raising ``irq`` as
``IRQ_ENABLE`` says.

Ordering.  The command processor runs one command at a time, except that a
``GATHER``/``SCATTER`` leaves it once its keys are on chip: the gather DMA
moves the rows while the commands after it run, and its completion comes
when the rows are done, possibly after theirs (match completions by tag).
The device orders what depends on the DMA: a ``GATHER``, ``SCATTER`` or
``SET_TABLES`` waits until the DMA is idle, so a gather after a scatter reads
the rows the scatter wrote, and tables change only between DMA commands.
Every other command (``CLASSIFY`` of the next batch, ``LEARN``,
``LOAD_HOTMAP``...) may run beside the DMA; that it touches none of the host
memory the DMA command reads or writes (its staging buffer and the tables)
is the driver's part of the rules (:class:`hotline.host.device_backend.DeviceAccelerator`
keeps them apart).  Everything else sees the effects of the commands before
it.

Commands (``hotline.regmap.Opcode``):

``NOP``
    Completes OK.
``LEARN``
    ``COUNT`` 64-bit keys at ``ADDR_A`` (``table << row_bits | row``) into the
    popularity counter array.  RESULT0: keys learned; RESULT1: keys dropped
    because they are out of range (a table ``>= keys.tables`` or bits above
    the key).  A failed read (SLVERR/DECERR) loses the words of that beat and
    ends the command with ``AXI_ERROR``.
``ESTIMATE``
    The sketch estimate of each of ``COUNT`` keys at ``ADDR_A``, written as
    64-bit words to ``ADDR_B`` (an out-of-range key gets ``2**64 - 1``).
    RESULT0: estimates written; RESULT1: out-of-range keys.
``READOUT``
    The heavy-hitter table, set by set, way by way, as 64-bit entries
    ``valid << 63 | count << 40 | key`` to ``ADDR_B``; the first ``COUNT``
    entries are written, the rest only counted.  RESULT0: entries written;
    RESULT1: valid entries in the table.
``CLEAR``
    Zero the counter array.
``LOAD_HOTMAP``
    ``COUNT`` hot-map image words (:mod:`hotline.host.hotmap`'s image, one
    word per slot, slot address = word index) from ``ADDR_A`` into the
    reorder unit's hot map.  ``COUNT`` above the hot map's slots is
    ``BAD_ARGUMENT``.
``SET_TABLES``
    ``COUNT`` table descriptors of two 64-bit words each from ``ADDR_A``
    (word 0: base address; word 1: row stride in bytes in bits [31:0], rows
    in bits [63:32]) for tables ``0 .. COUNT-1`` of the gather DMA; ``ARG`` =
    bytes per row.  A descriptor whose stride or rows do not fit the DMA's
    registers leaves its table with 0 rows and ends the command with
    ``BAD_ARGUMENT``.
``CLASSIFY``
    ``COUNT`` samples of ``ARG`` keys (``ARG`` must be ``keys_per_sample``)
    as 64-bit words at ``ADDR_A`` through the reorder unit.  With
    ``N = COUNT * ARG``, results at ``ADDR_B``: ``N`` remap words (sample
    ``s``, key ``j`` at word ``s * ARG + j``: ``hot << 63 | index``, index
    the hot slot or the cold key's ``u``; words of dropped samples are not
    written), then ``COUNT`` words for the popular sample ids (in order),
    ``COUNT`` for the non-popular ids, then the distinct cold keys (key
    ``u`` at word ``u``).  RESULT0: ``popular | non_popular << 16``; RESULT1:
    distinct cold keys, bit 30 the sample overflow, bit 31 the key overflow
    (either ends the command with ``CAPACITY``).  A key with bits above the
    key width ends it with ``BAD_ROW``.
``GATHER`` / ``SCATTER``
    ``COUNT`` (at most ``max_batch_keys``) packed keys at ``ADDR_A``: the
    row of key ``u`` is copied to (gather) or from (scatter) the staging
    buffer at ``ADDR_B + u * row_bytes`` by the gather DMA, with the tables
    of ``SET_TABLES``.  The keys are read into an on-chip buffer first and
    checked (a key with bits above the key width: ``BAD_ARGUMENT``, nothing
    moved), then the DMA moves the rows while the next commands run (see
    Ordering).  RESULT0: rows
    moved; RESULT1: keys that failed; the first failure gives the status
    (``BAD_ROW`` for a table or row out of range or a bad row size,
    ``AXI_ERROR`` for a failed read or write; the other rows are moved).

Host memory: the key reader (:class:`~hotline.rtl.axi_engines.WordReader`),
the addressed word writer (:class:`~hotline.rtl.axi_engines.WordWriter`,
behind a 4-entry FIFO) and the gather DMA share the one AXI4 master through
:class:`~hotline.rtl.axi_fabric.AXI4IdMux`: the master's IDs are one bit wider
than the DMA's (:func:`axi_id_bits`), the top bit naming the source, and
address requests are granted round robin.  A ``CLASSIFY`` serializes the reorder unit's outputs
(cold keys first, then popular, then non-popular words) into the writer, one
word a cycle; its results land at addresses computed from the sample id, so
the outputs' interleaving does not matter.

An address that is not 8-byte aligned, or that does not fit the AXI address
width, ends a command with ``BAD_ARGUMENT`` before it touches anything.  A
submit while the queue is full is dropped and sets ``IRQ_STATUS.OVERFLOW``.
"""

from __future__ import annotations

import enum

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import regmap
from ..config import ConfigError, HotlineConfig
from ..regmap import Opcode, Status
from .axi import AXI4LiteSignature, AXI4Signature
from .axi_fabric import AXI4IdMux
from .axi_engines import WordReader, WordWriter
from .checks import require_config
from .csr import CSRBlock
from .gather import GatherDMA
from .hotmap import hotmap_addr_bits
from .popularity import Op, PopularityCounterArray
from .reorder import ReorderUnit
from ..host.gather import ErrorKind

__all__ = ["HotlineTop", "axi_id_bits", "READOUT_KEY_BITS", "READOUT_COUNT_SHIFT", "CSR_ADDR_BITS",
           "QUEUE_DEPTH", "DONE_DEPTH"]

#: Readout entry: key in bits [39:0], count in [62:40], valid in bit 63.
READOUT_KEY_BITS = 40
READOUT_COUNT_SHIFT = 40
CSR_ADDR_BITS = 16
QUEUE_DEPTH = 4
DONE_DEPTH = 8


def _log2(n: int) -> int:
    return (n - 1).bit_length()


def axi_id_bits(cfg: HotlineConfig) -> int:
    """ID width of the top's AXI4 master: the gather DMA's IDs and one bit for the source."""
    return cfg.gather.id_bits + 1


class _Sink(enum.IntEnum):
    """Bit of the top's one-hot ``sink`` register: the state that takes the reader's words."""
    LEARN = 0
    ESTIMATE = 1
    LOADMAP = 2
    TABLES = 3
    CLASSIFY = 4
    GKEYS = 5


class HotlineTop(wiring.Component):
    """The accelerator top (see the module docstring for the commands).

    Parameters
    ----------
    cfg : HotlineConfig
        The units' sizes; the AXI4 master has ``gather``'s address, data and ID widths.

    Members
    -------
    s_axil : In(AXI4LiteSignature(16, 32))
        Registers (:mod:`hotline.regmap`).
    m_axi : Out(AXI4Signature)
        Host memory.
    irq : Out(1)
        ``|(IRQ_STATUS & IRQ_ENABLE)``, level.
    """

    def __init__(self, cfg: HotlineConfig):
        require_config(self, cfg)
        k, c, g = cfg.keys, cfg.counter, cfg.gather
        problems = []
        if k.key_bits > READOUT_KEY_BITS:
            problems.append(f"keys of {k.key_bits} bits do not fit a readout entry's "
                            f"{READOUT_KEY_BITS}")
        if c.counter_bits > 63 - READOUT_COUNT_SHIFT:
            problems.append(f"counter.counter_bits {c.counter_bits} does not fit a readout "
                            f"entry's {63 - READOUT_COUNT_SHIFT} count bits")
        if problems:
            self._MustUse__silence = True
            raise ConfigError("; ".join(problems))
        self.cfg = cfg
        super().__init__({
            "s_axil": In(AXI4LiteSignature(addr_width=CSR_ADDR_BITS, data_width=32)),
            "m_axi": Out(AXI4Signature(addr_width=g.addr_bits, data_width=g.data_bits,
                                       id_width=axi_id_bits(cfg))),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        k, c, r, g = cfg.keys, cfg.counter, cfg.reorder, cfg.gather
        W = c.lanes

        m.submodules.csr = csr = CSRBlock(addr_width=CSR_ADDR_BITS)
        wiring.connect(m, wiring.flipped(self.s_axil), csr.axil)
        m.submodules.counter = counter = PopularityCounterArray(cfg)
        # key checks: bits above the key, or a table past the last
        def key_ok(word):
            ok = word[k.key_bits:] == 0
            if k.tables < (1 << k.table_bits):
                ok = ok & (word[k.row_bits:k.key_bits] < k.tables)
            return ok

        def fits(value, bits):
            return value[bits:] == 0 if bits < len(value) else Const(1)

        # Every check on a word read from host memory is made as it enters the reader's
        # output FIFO and leaves it registered beside the word (see ``word_flags`` below).
        word_flags = data.StructLayout({"good": 1, "high": 1, "stride_ok": 1, "rows_ok": 1})

        def check_word(w):
            return Cat(key_ok(w),                              # good: a valid key
                       w[k.key_bits:] != 0,                    # high: bits above the key
                       fits(w[:32], g.stride_bits),           # SET_TABLES stride fits
                       w[32:] <= (1 << k.row_bits))            # SET_TABLES rows fit

        m.submodules.reader = reader = WordReader(addr_bits=g.addr_bits, data_bits=g.data_bits,
                                                  id_bits=g.id_bits, flags=check_word)
        m.submodules.writer = writer = WordWriter(addr_bits=g.addr_bits, data_bits=g.data_bits,
                                                  id_bits=g.id_bits)
        m.submodules.reorder = reorder = ReorderUnit(cfg)
        m.submodules.gather = gather = GatherDMA(cfg)
        # The word engines and the gather DMA share the AXI4 master through an ID mux (one
        # more ID bit names the source), so a DMA command's rows move while the command
        # processor runs the commands after it.
        eng_sig = AXI4Signature(addr_width=g.addr_bits, data_width=g.data_bits, id_width=g.id_bits)
        eng = eng_sig.create(path=("eng",))
        reader.connect_axi(m, eng)
        writer.connect_axi(m, eng)
        m.submodules.axi_mux = axi_mux = AXI4IdMux(eng_sig)
        wiring.connect(m, eng, axi_mux.s0)
        wiring.connect(m, gather.m_axi, axi_mux.s1)
        wiring.connect(m, axi_mux.m, wiring.flipped(self.m_axi))
        # every word the writer sends goes through a small FIFO, so its address and data stay
        # put while AW and W are accepted one after the other
        m.submodules.wq = wq = fifo.SyncFIFOBuffered(width=writer.word_layout.size, depth=4)
        m.d.comb += [writer.words.valid.eq(wq.r_rdy), writer.words.payload.eq(wq.r_data),
                     wq.r_en.eq(writer.words.ready)]
        wq_in = data.View(writer.word_layout, wq.w_data)

        # ---- capabilities ------------------------------------------------------
        m.d.comb += [
            csr.caps_keys_tables.eq(k.tables), csr.caps_keys_row_bits.eq(k.row_bits),
            csr.caps_keys_lanes.eq(W),
            csr.caps_counter_depth.eq(c.depth), csr.caps_counter_log2_counters.eq(c.log2_counters),
            csr.caps_counter_counter_bits.eq(c.counter_bits),
            csr.caps_counter_log2_hh_sets.eq(_log2(c.hh_sets)),
            csr.caps_counter_hh_ways.eq(c.hh_ways),
            csr.caps_reorder_log2_hotmap_slots.eq(_log2(r.hotmap_capacity)),
            csr.caps_reorder_log2_max_batch_keys.eq(_log2(r.max_batch_keys)),
            csr.caps_reorder_log2_max_batch_samples.eq(_log2(r.max_batch_samples)),
            csr.caps_reorder_keys_per_sample.eq(r.keys_per_sample),
            csr.caps_bus_data_bits.eq(g.data_bits), csr.caps_bus_max_row_bytes.eq(g.max_row_bytes),
            csr.caps_bus_queue_depth.eq(QUEUE_DEPTH),
        ]

        # ---- command queue and completion FIFO ----------------------------------
        desc = data.StructLayout({"opcode": 8, "tag": 8, "addr_a": 64, "addr_b": 64,
                                  "count": 32, "arg": 32})
        done = data.StructLayout({"tag": 8, "status": 8, "opcode": 8, "result0": 32,
                                  "result1": 32})
        m.submodules.cmdq = cmdq = fifo.SyncFIFOBuffered(width=desc.size, depth=QUEUE_DEPTH)
        # unbuffered: DONE_HEAD.VALID rises with the push (a buffered FIFO shows a pushed
        # entry a cycle late, and a host could see neither it nor BUSY)
        m.submodules.doneq = doneq = fifo.SyncFIFO(width=done.size, depth=DONE_DEPTH)
        staged = Signal(desc)
        m.d.comb += [
            staged.opcode.eq(csr.cmd_opcode_opcode), staged.tag.eq(csr.cmd_opcode_tag),
            staged.addr_a.eq(Cat(csr.cmd_addr_a_lo_addr, csr.cmd_addr_a_hi_addr)),
            staged.addr_b.eq(Cat(csr.cmd_addr_b_lo_addr, csr.cmd_addr_b_hi_addr)),
            staged.count.eq(csr.cmd_count_count), staged.arg.eq(csr.cmd_arg_arg),
            cmdq.w_data.eq(staged), cmdq.w_en.eq(csr.cmd_submit_go & cmdq.w_rdy),
            csr.irq_status_overflow_set.eq(csr.cmd_submit_go & ~cmdq.w_rdy),
        ]
        head = Signal(done)
        m.d.comb += [
            head.eq(doneq.r_data),
            csr.done_head_valid.eq(doneq.r_rdy), csr.done_head_tag.eq(head.tag),
            csr.done_head_status.eq(head.status), csr.done_head_opcode.eq(head.opcode),
            csr.done_result0_value.eq(head.result0), csr.done_result1_value.eq(head.result1),
            doneq.r_en.eq(csr.done_pop_pop),
        ]

        # ---- command processor ----------------------------------------------------
        T, S = r.keys_per_sample, r.beats_per_sample
        K = k.key_bits
        cmd = Signal(desc)
        status = Signal(8)
        result0 = Signal(32)
        result1 = Signal(32)
        sent = Signal(32)                 # words taken from the reader / entries seen
        wptr = Signal(g.addr_bits)        # next word address of ESTIMATE / READOUT
        ro_left = Signal(32)              # readout entries still to write
        finish = Signal()
        # A GATHER/SCATTER leaves the command processor once the DMA has taken it; the DMA's
        # completion (``g_fin``) is pushed later, beside the commands that ran meanwhile.  A
        # completion slot is kept for it from the start of the command (see IDLE), and the
        # command processor's own push wins a tie (the DMA's done waits a cycle).
        g_busy = Signal()                 # a GATHER/SCATTER is in the DMA
        g_tag = Signal(8)
        g_op = Signal(8)
        g_status = Signal(8)
        g_fin = Signal()
        g_sent = Signal(32)               # keys handed to the DMA (their ``u``)
        gd = gather.done.payload
        m.d.comb += [gather.done.ready.eq(g_busy & ~finish),
                     g_fin.eq(gather.done.valid & gather.done.ready)]
        with m.If(gd.errors == 0):
            m.d.comb += g_status.eq(Status.OK)
        with m.Elif((gd.first_error_kind == ErrorKind.READ) | (gd.first_error_kind == ErrorKind.WRITE)):
            m.d.comb += g_status.eq(Status.AXI_ERROR)
        with m.Else():
            m.d.comb += g_status.eq(Status.BAD_ROW)
        with m.If(g_fin):
            m.d.sync += g_busy.eq(0)
        m.d.comb += [
            doneq.w_data.eq(Mux(finish, Cat(cmd.tag, status, cmd.opcode, result0, result1),
                                Cat(g_tag, g_status, g_op, gd.rows_moved, gd.errors))),
            doneq.w_en.eq(finish | g_fin),
            csr.irq_status_done_set.eq(finish | g_fin),
            csr.irq_status_error_set.eq((finish & (status != Status.OK)) |
                                        (g_fin & (g_status != Status.OK))),
        ]
        busy = Signal()
        level = Signal(range(QUEUE_DEPTH + 1))
        m.d.comb += [
            level.eq(cmdq.level),
            csr.queue_status_level.eq(level), csr.queue_status_full.eq(~cmdq.w_rdy),
            csr.queue_status_busy.eq(busy | g_busy | (cmdq.level != 0)),
            csr.queue_status_done_level.eq(doneq.level),
            self.irq.eq(((csr.irq_status_done & csr.irq_enable_done) |
                         (csr.irq_status_error & csr.irq_enable_error)) != 0),
        ]

        # The command processor hands key beats to the counter through a small FIFO with
        # registered outputs and a registered ``w_rdy``, so the counter's front-end stall
        # chain never reaches the state machine (``ck`` is the FIFO's write side).
        beat_layout = counter.keys.payload.shape()
        m.submodules.kslice = kslice = fifo.SyncFIFOBuffered(width=beat_layout.size, depth=3)
        ck = stream.Signature(beat_layout).create(path=("ck",))
        m.d.comb += [kslice.w_en.eq(ck.valid), kslice.w_data.eq(ck.payload),
                     ck.ready.eq(kslice.w_rdy),
                     counter.keys.valid.eq(kslice.r_rdy), counter.keys.payload.eq(kslice.r_data),
                     kslice.r_en.eq(counter.keys.ready)]
        keys_beat = ck.payload
        word = reader.words.payload.data
        wflags = data.View(word_flags, reader.words.payload.flags)
        good = wflags.good

        def put(addr, value):
            """Push one (address, word) into the writer's FIFO (caller checks wq.w_rdy)."""
            return [wq.w_en.eq(1), wq_in.addr.eq(addr), wq_in.data.eq(value)]

        # ---- gather/scatter: key buffer and table registers ---------------------------
        gk = gather.keys.payload
        m.submodules.kbuf = kbuf = fifo.SyncFIFOBuffered(width=K, depth=r.max_batch_keys)
        row_bytes = Signal(range(g.max_row_bytes + 1))
        m.d.comb += [gather.row_bytes.eq(row_bytes), gather.staging.eq(cmd.addr_b),
                     gather.outstanding_limit.eq(0),
                     gather.cmd.payload.op.eq(cmd.opcode == Opcode.SCATTER),
                     gather.cmd.payload.count.eq(cmd.count),
                     gk.table.eq(kbuf.r_data[k.row_bits:K]), gk.row.eq(kbuf.r_data[:k.row_bits]),
                     gk.u.eq(g_sent), gather.keys.valid.eq(kbuf.r_rdy & g_busy),
                     kbuf.r_en.eq(gather.keys.ready & g_busy)]
        with m.If(gather.keys.valid & gather.keys.ready):
            m.d.sync += g_sent.eq(g_sent + 1)
        base_word = Signal(64)
        have_base = Signal()
        tcfg = gather.table_cfg.payload

        # ---- classify: pack keys into beats, serialize the outputs into the writer -------
        n_keys = Signal(32)               # COUNT * T
        got = Signal(32)                  # words the packer took (read or padded)
        got_all = Signal()                # got == n_keys (registered)
        pos = Signal(range(T))            # key position in the sample
        lane = Signal(range(max(2, r.lanes)))
        samples_in = Signal(32)
        beat_full = Signal()
        beat_keys = Signal(data.ArrayLayout(K, r.lanes))
        beat_last = Signal()
        rk = reorder.keys
        m.d.comb += [rk.valid.eq(beat_full), rk.payload.keys.eq(beat_keys),
                     rk.payload.last.eq(beat_last)]
        with m.If(rk.valid & rk.ready):
            m.d.sync += beat_full.eq(0)
        remap_base = Signal(g.addr_bits)
        pop_base = Signal(g.addr_bits)
        non_base = Signal(g.addr_bits)
        cold_base = Signal(g.addr_bits)
        cold_written = Signal(32)
        st_seen = Signal()
        st = Signal(reorder.layouts.status)
        bad_keys = Signal()
        m.d.comb += reorder.status.ready.eq(~st_seen)
        with m.If(reorder.status.valid & ~st_seen):
            m.d.sync += [st.eq(reorder.status.payload), st_seen.eq(1)]

        class _Ser:
            pass

        sers = []
        last_lanes = T - (S - 1) * r.lanes
        # Each micro-batch output reaches its serializer through a small FIFO with a
        # registered read port, so the reorder unit's LUT-RAM read of a sample does not
        # run on through the ``sid * T`` multiplier into the serializer's index adder.
        out_layout = reorder.layouts.sample_out
        for name, out, ids in (("pop", reorder.popular, pop_base), ("non", reorder.non_popular, non_base)):
            q = fifo.SyncFIFOBuffered(width=data.Layout.cast(out_layout).size, depth=3)
            m.submodules[f"{name}_q"] = q
            src = stream.Signature(out_layout).create(path=(f"{name}_src",))
            m.d.comb += [q.w_en.eq(out.valid), q.w_data.eq(out.payload), out.ready.eq(q.w_rdy),
                         src.valid.eq(q.r_rdy), src.payload.eq(q.r_data), q.r_en.eq(src.ready)]
            z = _Ser()
            z.src, z.ids, z.q = src, ids, q
            z.have = Signal(name=f"{name}_have")
            z.beat = Signal(reorder.layouts.sample_out, name=f"{name}_beat")
            z.idx = Signal(32, name=f"{name}_idx")           # sid * T + b * W
            z.b = Signal(range(S), name=f"{name}_b")         # beat in the sample (next to load)
            z.lane = Signal(range(max(2, r.lanes)), name=f"{name}_lane")
            z.nvalid = Signal(range(r.lanes + 1), name=f"{name}_nvalid")
            z.id_phase = Signal(name=f"{name}_id_phase")
            z.n_ids = Signal(32, name=f"{name}_n_ids")
            z.req = Signal(name=f"{name}_req")
            z.addr = Signal(g.addr_bits, name=f"{name}_addr")
            z.word = Signal(64, name=f"{name}_word")
            z.grant = Signal(name=f"{name}_grant")
            # the next beat loads in the cycle the last word of this one is granted
            z.done_now = Signal(name=f"{name}_done_now")
            m.d.comb += z.done_now.eq(z.grant & (z.id_phase | ((z.lane == z.nvalid - 1) & ~z.beat.last)))
            m.d.comb += src.ready.eq(~z.have | z.done_now)
            entry = z.beat.keys[z.lane]
            m.d.comb += [
                z.req.eq(z.have),
                z.addr.eq(Mux(z.id_phase, z.ids + (z.n_ids << 3),
                              remap_base + ((z.idx + z.lane) << 3))),
                z.word.eq(Mux(z.id_phase, z.beat.sid, Cat(entry.index, Const(0, 63 - len(entry.index)),
                                                          entry.hot))),
            ]
            with m.If(z.grant):
                with m.If(z.id_phase):
                    m.d.sync += [z.n_ids.eq(z.n_ids + 1), z.have.eq(0)]
                with m.Elif(z.lane == z.nvalid - 1):
                    with m.If(z.beat.last):
                        m.d.sync += z.id_phase.eq(1)
                    with m.Else():
                        m.d.sync += z.have.eq(0)
                with m.Else():
                    m.d.sync += z.lane.eq(z.lane + 1)
            with m.If(src.valid & src.ready):
                p = src.payload
                m.d.sync += [z.have.eq(1), z.beat.eq(p), z.lane.eq(0), z.id_phase.eq(0),
                             z.idx.eq(p.sid * T + z.b * r.lanes),
                             z.nvalid.eq(Mux(p.last, last_lanes, r.lanes)),
                             z.b.eq(Mux(p.last, 0, z.b + 1))]
            sers.append(z)
        cold = reorder.cold
        cls_active = Signal()
        cold_grant = Signal()
        m.d.comb += cold.ready.eq(cold_grant)
        with m.If(cls_active & wq.w_rdy):
            with m.If(cold.valid):
                m.d.comb += [cold_grant.eq(1),
                             *put(cold_base + (cold.payload.u << 3), cold.payload.keys[0])]
            with m.Elif(sers[0].req):
                m.d.comb += [sers[0].grant.eq(1), *put(sers[0].addr, sers[0].word)]
            with m.Elif(sers[1].req):
                m.d.comb += [sers[1].grant.eq(1), *put(sers[1].addr, sers[1].word)]
        with m.If(cold_grant):
            m.d.sync += cold_written.eq(cold_written + 1)
        # packer: one key per cycle from the reader (or a 0 for each word a failed read lost)
        pad = Signal()
        m.d.comb += pad.eq(~reader.busy & ~reader.start & ~got_all)
        in_valid = Signal()
        in_word = Signal(64)
        in_take = Signal()
        m.d.comb += [in_valid.eq(Mux(pad, 1, reader.words.valid)), in_word.eq(Mux(pad, 0, word))]

        # DRAIN ends when the units are idle.  Nothing starts work in DRAIN, so once every
        # unit is idle they stay idle, and the check can come from registers: ``drained`` is
        # "all idle in the previous cycle, which was already in DRAIN" (never the first DRAIN
        # cycle, when a word put in the state before may not show in ``wq`` yet).  An
        # engine's error count is zeroed when a command starts it: count only the engines
        # this command used.
        in_drain = Signal()
        drained = Signal()
        engine_errors = Signal()
        op = cmd.opcode
        uses_reader = ((op == Opcode.LEARN) | (op == Opcode.ESTIMATE) |
                       (op == Opcode.LOAD_HOTMAP) | (op == Opcode.SET_TABLES) |
                       (op == Opcode.CLASSIFY))
        uses_writer = (op == Opcode.ESTIMATE) | (op == Opcode.READOUT) | (op == Opcode.CLASSIFY)
        m.d.sync += [
            drained.eq(in_drain & (kslice.level == 0) & ~counter.busy & ~writer.busy & ~reader.busy &
                       (wq.level == 0)),
            engine_errors.eq((uses_reader & (reader.errors != 0)) |
                             (uses_writer & (writer.errors != 0))),
        ]

        # Each command's argument checks are made on the queue's (registered) head as the
        # command is taken, so DECODE only dispatches on the opcode and one flag.
        nxt = data.View(desc, cmdq.r_data)
        n_al_a = (nxt.addr_a[:3] == 0) & fits(nxt.addr_a, g.addr_bits)
        n_al_b = (nxt.addr_b[:3] == 0) & fits(nxt.addr_b, g.addr_bits)
        n_bad = Signal()
        with m.Switch(nxt.opcode):
            with m.Case(Opcode.LEARN):
                m.d.comb += n_bad.eq(~n_al_a)
            with m.Case(Opcode.ESTIMATE):
                m.d.comb += n_bad.eq(~n_al_a | ~n_al_b)
            with m.Case(Opcode.READOUT):
                m.d.comb += n_bad.eq(~n_al_b)
            with m.Case(Opcode.LOAD_HOTMAP):
                m.d.comb += n_bad.eq(~n_al_a | (nxt.count > r.hotmap_capacity))
            with m.Case(Opcode.SET_TABLES):
                m.d.comb += n_bad.eq(~n_al_a | (nxt.count > k.tables) | (nxt.arg == 0) |
                                     (nxt.arg > g.max_row_bytes))
            with m.Case(Opcode.CLASSIFY):
                m.d.comb += n_bad.eq(~n_al_a | ~n_al_b | (nxt.arg != T) | (nxt.count == 0) |
                                     (nxt.count[20:] != 0))
            with m.Case(Opcode.GATHER, Opcode.SCATTER):
                m.d.comb += n_bad.eq(~n_al_a | ~n_al_b | (nxt.count > r.max_batch_keys))
        arg_bad = Signal()
        # registered "still to do" flags for the state machine's exits (see their states)
        ro_room = Signal()                # READOUT: ro_left != 0
        inflight = Signal(16)             # ESTIMATE: keys sent minus estimates received
        est_zero = Signal()               # ... inflight == 0, a cycle ago
        ev_sent = Signal()                # ... a key went in / an estimate came out, a cycle ago
        ev_got = Signal()
        rd_idle = Signal()                # ... the reader was idle a cycle ago
        rd_idle2 = Signal()               # ... and two cycles ago
        cold_eq = Signal()                # CLASSIFY: every cold key written (registered)
        # the status is final once seen, and no cold key comes after the last: "equal a
        # cycle ago" is "equal now"
        m.d.sync += cold_eq.eq(st_seen & (cold_written == st.cold))

        # The state that takes the reader's words, one-hot and registered as the reader
        # starts (words come several cycles later, and none after the state's exit, which
        # waits for the reader to idle), so the reader's ready is an AND-OR of registered
        # flags and each sink's own ready: no decode of the state machine, and nothing of
        # the word itself (LEARN takes a dropped key only when the counter could take one).
        sink = Signal(len(_Sink))
        m.d.comb += reader.words.ready.eq(
            ((sink[_Sink.LEARN] | sink[_Sink.ESTIMATE]) & ck.ready) |
            (sink[_Sink.LOADMAP] & reorder.load.ready) |
            (sink[_Sink.TABLES] & (~have_base | gather.table_cfg.ready)) |
            (sink[_Sink.CLASSIFY] & (~beat_full | rk.ready)) |
            sink[_Sink.GKEYS])

        with m.FSM(name="cmd"):
            with m.State("IDLE"):
                # A completion slot must be free before a command starts (one more is kept
                # for a DMA command in flight).  While the DMA runs, a command that uses its
                # key buffer or tables (GATHER, SCATTER, SET_TABLES) waits; any other starts.
                dma_dep = ((nxt.opcode == Opcode.GATHER) | (nxt.opcode == Opcode.SCATTER) |
                           (nxt.opcode == Opcode.SET_TABLES))
                with m.If(cmdq.r_rdy & ~(g_busy & dma_dep) &
                          (doneq.level < Mux(g_busy, DONE_DEPTH - 1, DONE_DEPTH))):
                    m.d.comb += cmdq.r_en.eq(1)
                    m.d.sync += [cmd.eq(cmdq.r_data), arg_bad.eq(n_bad), inflight.eq(0),
                                 est_zero.eq(1), rd_idle.eq(0), rd_idle2.eq(0), ev_sent.eq(0),
                                 ev_got.eq(0), got_all.eq(0), status.eq(Status.OK), result0.eq(0),
                                 result1.eq(0), sent.eq(0), got.eq(0), pos.eq(0),
                                 lane.eq(0), samples_in.eq(0), cold_written.eq(0), st_seen.eq(0),
                                 bad_keys.eq(0), have_base.eq(0),
                                 sers[0].n_ids.eq(0), sers[1].n_ids.eq(0), sink.eq(0)]
                    m.next = "DECODE"
            with m.State("DECODE"):
                m.d.comb += busy.eq(1)
                m.d.sync += [wptr.eq(cmd.addr_b), ro_left.eq(cmd.count), ro_room.eq(cmd.count != 0)]
                with m.Switch(cmd.opcode):
                    with m.Case(Opcode.NOP):
                        m.next = "FINISH"
                    with m.Case(Opcode.LEARN):
                        with m.If(arg_bad):
                            m.d.sync += status.eq(Status.BAD_ARGUMENT)
                            m.next = "FINISH"
                        with m.Else():
                            m.d.comb += [reader.start.eq(1), reader.addr.eq(cmd.addr_a),
                                         reader.count.eq(cmd.count)]
                            m.next = "LEARN"
                            m.d.sync += sink.eq(1 << _Sink.LEARN)
                    with m.Case(Opcode.ESTIMATE):
                        with m.If(arg_bad):
                            m.d.sync += status.eq(Status.BAD_ARGUMENT)
                            m.next = "FINISH"
                        with m.Else():
                            m.d.comb += [reader.start.eq(1), reader.addr.eq(cmd.addr_a),
                                         reader.count.eq(cmd.count), writer.start.eq(1)]
                            m.next = "ESTIMATE"
                            m.d.sync += sink.eq(1 << _Sink.ESTIMATE)
                    with m.Case(Opcode.READOUT):
                        with m.If(arg_bad):
                            m.d.sync += status.eq(Status.BAD_ARGUMENT)
                            m.next = "FINISH"
                        with m.Else():
                            m.d.comb += writer.start.eq(1)
                            m.next = "READOUT_OP"
                    with m.Case(Opcode.CLEAR):
                        m.next = "CLEAR_OP"
                    with m.Case(Opcode.LOAD_HOTMAP):
                        with m.If(arg_bad):
                            m.d.sync += status.eq(Status.BAD_ARGUMENT)
                            m.next = "FINISH"
                        with m.Else():
                            m.d.comb += [reader.start.eq(1), reader.addr.eq(cmd.addr_a),
                                         reader.count.eq(cmd.count)]
                            m.next = "LOADMAP"
                            m.d.sync += sink.eq(1 << _Sink.LOADMAP)
                    with m.Case(Opcode.SET_TABLES):
                        with m.If(arg_bad):
                            m.d.sync += status.eq(Status.BAD_ARGUMENT)
                            m.next = "FINISH"
                        with m.Else():
                            m.d.comb += [reader.start.eq(1), reader.addr.eq(cmd.addr_a),
                                         reader.count.eq(cmd.count << 1)]
                            m.d.sync += sink.eq(1 << _Sink.TABLES)
                            m.d.sync += row_bytes.eq(cmd.arg)
                            m.next = "TABLES"
                    with m.Case(Opcode.CLASSIFY):
                        with m.If(arg_bad):
                            m.d.sync += status.eq(Status.BAD_ARGUMENT)
                            m.next = "FINISH"
                        with m.Else():
                            m.d.sync += [n_keys.eq(cmd.count * T), remap_base.eq(cmd.addr_b)]
                            m.next = "CLS_PREP0"
                    with m.Case(Opcode.GATHER, Opcode.SCATTER):
                        with m.If(arg_bad):
                            m.d.sync += status.eq(Status.BAD_ARGUMENT)
                            m.next = "FINISH"
                        with m.Else():
                            m.d.comb += [reader.start.eq(1), reader.addr.eq(cmd.addr_a),
                                         reader.count.eq(cmd.count)]
                            m.next = "GKEYS"
                            m.d.sync += sink.eq(1 << _Sink.GKEYS)
                    with m.Default():
                        m.d.sync += status.eq(Status.BAD_OPCODE)
                        m.next = "FINISH"

            with m.State("LEARN"):
                m.d.comb += busy.eq(1)
                # one key per counter beat (lane 0); a bad key is dropped here
                m.d.comb += [
                    keys_beat.op.eq(Op.UPDATE), keys_beat.keys[0].eq(word), keys_beat.mask.eq(1),
                    ck.valid.eq(reader.words.valid & good),
                ]
                with m.If(reader.words.valid & reader.words.ready):
                    with m.If(good):
                        m.d.sync += result0.eq(result0 + 1)
                    with m.Else():
                        m.d.sync += result1.eq(result1 + 1)
                with m.If(~reader.busy & ~reader.start):
                    m.next = "DRAIN"

            with m.State("ESTIMATE"):
                m.d.comb += busy.eq(1)
                # every key is a QUERY beat (a bad one with its mask bit clear), so
                # exactly one estimates beat answers each word, in order
                m.d.comb += [
                    keys_beat.op.eq(Op.QUERY), keys_beat.keys[0].eq(word),
                    keys_beat.mask.eq(good),
                    ck.valid.eq(reader.words.valid),
                ]
                with m.If(reader.words.valid & reader.words.ready & ~good):
                    m.d.sync += result1.eq(result1 + 1)
                est = counter.estimates.payload
                m.d.comb += counter.estimates.ready.eq(wq.w_rdy)
                with m.If(counter.estimates.valid & wq.w_rdy):
                    m.d.comb += put(wptr, Mux(est.mask[0], est.counts[0], Const((1 << 64) - 1, 64)))
                    m.d.sync += [result0.eq(result0 + 1), wptr.eq(wptr + 8)]
                # Keys in the counter not yet answered, counted from handshakes registered a
                # cycle earlier (so no stall chain reaches the counter's adder).  The exit
                # tests registers only: ``est_zero`` sees the handshakes up to three cycles
                # ago, and the reader idle two cycles ago (it stays idle: nothing restarts it
                # here) means no key went in since; a late estimate only delays the exit.
                m.d.sync += [ev_sent.eq(reader.words.valid & reader.words.ready),
                             ev_got.eq(counter.estimates.valid & wq.w_rdy),
                             inflight.eq(inflight + ev_sent - ev_got),
                             est_zero.eq(inflight == 0), rd_idle.eq(~reader.busy),
                             rd_idle2.eq(rd_idle)]
                with m.If(rd_idle2 & ~reader.busy & est_zero & ~counter.estimates.valid):
                    m.next = "DRAIN"

            with m.State("READOUT_OP"):
                m.d.comb += [busy.eq(1), keys_beat.op.eq(Op.READOUT), ck.valid.eq(1)]
                with m.If(ck.ready):
                    m.next = "READOUT"
            with m.State("READOUT"):
                m.d.comb += busy.eq(1)
                ro = counter.readout.payload
                entry = Cat(ro.key.as_value(), Const(0, READOUT_KEY_BITS - k.key_bits),
                            ro.count, Const(0, 63 - READOUT_COUNT_SHIFT - c.counter_bits),
                            ro.valid)
                room = Signal()
                m.d.comb += room.eq(ro_room)
                m.d.comb += counter.readout.ready.eq(~room | wq.w_rdy)
                with m.If(counter.readout.valid & counter.readout.ready):
                    m.d.sync += sent.eq(sent + 1)
                    with m.If(room):
                        m.d.comb += put(wptr, entry)
                        m.d.sync += [result0.eq(result0 + 1), wptr.eq(wptr + 8),
                                     ro_left.eq(ro_left - 1), ro_room.eq(ro_left != 1)]
                    with m.If(ro.valid):
                        m.d.sync += result1.eq(result1 + 1)
                    with m.If(ro.last):
                        m.next = "DRAIN"

            with m.State("CLEAR_OP"):
                m.d.comb += [busy.eq(1), keys_beat.op.eq(Op.CLEAR), ck.valid.eq(1)]
                with m.If(ck.ready):
                    m.next = "DRAIN"

            with m.State("LOADMAP"):
                m.d.comb += busy.eq(1)
                ld = reorder.load.payload
                m.d.comb += [reorder.load.valid.eq(reader.words.valid),
                             ld.addr.eq(sent), ld.data.eq(word)]
                with m.If(reader.words.valid & reader.words.ready):
                    m.d.sync += [sent.eq(sent + 1), result0.eq(result0 + 1)]
                with m.If(~reader.busy & ~reader.start):
                    m.next = "DRAIN"

            with m.State("TABLES"):
                m.d.comb += busy.eq(1)
                stride_ok = wflags.stride_ok
                rows_ok = wflags.rows_ok
                m.d.comb += [
                    tcfg.table.eq(sent), tcfg.base.eq(base_word),
                    tcfg.stride.eq(word[:32]),
                    tcfg.rows.eq(Mux(stride_ok & rows_ok, word[32:], 0)),
                    gather.table_cfg.valid.eq(have_base & reader.words.valid),
                ]
                with m.If(reader.words.valid & reader.words.ready):
                    with m.If(~have_base):
                        m.d.sync += [base_word.eq(word), have_base.eq(1)]
                    with m.Else():
                        m.d.sync += [have_base.eq(0), sent.eq(sent + 1), result0.eq(result0 + 1)]
                        with m.If(~stride_ok | ~rows_ok | ~fits(base_word, g.addr_bits)):
                            m.d.sync += [status.eq(Status.BAD_ARGUMENT), result1.eq(result1 + 1)]
                with m.If(~reader.busy & ~reader.start):
                    m.next = "DRAIN"

            with m.State("CLS_PREP0"):
                m.d.comb += busy.eq(1)
                m.d.sync += pop_base.eq(remap_base + (n_keys << 3))
                m.next = "CLS_PREP1"
            with m.State("CLS_PREP1"):
                m.d.comb += busy.eq(1)
                m.d.sync += [non_base.eq(pop_base + (cmd.count << 3)),
                             cold_base.eq(pop_base + (cmd.count << 4))]
                m.d.comb += [reader.start.eq(1), reader.addr.eq(cmd.addr_a),
                             reader.count.eq(n_keys)]
                m.next = "CLASSIFY"
                m.d.sync += sink.eq(1 << _Sink.CLASSIFY)
            with m.State("CLASSIFY"):
                m.d.comb += [busy.eq(1), cls_active.eq(1)]
                m.d.comb += in_take.eq(in_valid & ~got_all & (~beat_full | rk.ready))
                with m.If(in_take):
                    m.d.sync += [got.eq(got + 1), got_all.eq(got + 1 == n_keys),
                                 beat_keys[lane].eq(in_word[:K])]
                    with m.If(~pad & wflags.high):
                        m.d.sync += bad_keys.eq(1)
                    end_sample = pos == T - 1
                    with m.If((lane == r.lanes - 1) | end_sample):
                        m.d.sync += [beat_full.eq(1), lane.eq(0),
                                     beat_last.eq(end_sample & (samples_in == cmd.count - 1))]
                    with m.Else():
                        m.d.sync += lane.eq(lane + 1)
                    with m.If(end_sample):
                        m.d.sync += [pos.eq(0), samples_in.eq(samples_in + 1)]
                    with m.Else():
                        m.d.sync += pos.eq(pos + 1)
                outputs_idle = ~sers[0].have & ~sers[1].have & ~reorder.popular.valid & \
                    ~reorder.non_popular.valid & (sers[0].q.level == 0) & \
                    (sers[1].q.level == 0) & ~cold.valid
                with m.If(st_seen & got_all & ~beat_full & outputs_idle & cold_eq):
                    m.d.sync += [result0.eq(st.popular | (st.non_popular << 16)),
                                 result1.eq(st.cold | (st.sample_overflow << 30) |
                                            (st.key_overflow << 31))]
                    with m.If(bad_keys):
                        m.d.sync += status.eq(Status.BAD_ROW)
                    with m.Elif(st.sample_overflow | st.key_overflow):
                        m.d.sync += status.eq(Status.CAPACITY)
                    m.next = "DRAIN"

            with m.State("GKEYS"):
                m.d.comb += busy.eq(1)
                # kbuf holds max_batch_keys: never full (the reader's ready is 1 here)
                m.d.comb += [kbuf.w_en.eq(reader.words.valid), kbuf.w_data.eq(word[:K])]
                with m.If(reader.words.valid & wflags.high):
                    m.d.sync += status.eq(Status.BAD_ARGUMENT)
                with m.If(~reader.busy & ~reader.start):
                    with m.If(reader.errors != 0):
                        m.d.sync += [status.eq(Status.AXI_ERROR), result1.eq(reader.errors)]
                        m.next = "GDISCARD"
                    with m.Elif(status != Status.OK):
                        m.next = "GDISCARD"
                    with m.Else():
                        m.next = "GCMD"
            with m.State("GDISCARD"):
                m.d.comb += [busy.eq(1), kbuf.r_en.eq(1)]
                with m.If(kbuf.level == 0):
                    m.next = "FINISH"
            with m.State("GCMD"):
                # the DMA is idle (IDLE waited for it) and latches the command's op, count,
                # staging address and row size as it takes it; its keys follow from kbuf
                m.d.comb += [busy.eq(1), gather.cmd.valid.eq(1)]
                with m.If(gather.cmd.ready):
                    m.d.sync += [g_busy.eq(1), g_tag.eq(cmd.tag), g_op.eq(cmd.opcode), g_sent.eq(0)]
                    m.next = "IDLE"

            with m.State("DRAIN"):
                # the command's effects are complete: the units idle, every write answered
                # (``drained``, registered below)
                m.d.comb += [busy.eq(1), in_drain.eq(1)]
                with m.If(drained):
                    with m.If(engine_errors):
                        m.d.sync += status.eq(Status.AXI_ERROR)
                    m.next = "FINISH"
            with m.State("FINISH"):
                m.d.comb += [busy.eq(1), finish.eq(1)]
                m.next = "IDLE"

        # ---- performance counters ---------------------------------------------------
        axi = self.m_axi
        clear = csr.perf_ctrl_clear
        bb = g.data_bits // 8

        def counter_reg(port, inc):
            # Each event is registered where it is made and counted a cycle later: the
            # events come from deep inside the units (the counter's stall chain was the
            # whole accelerator's critical path, routed across the chip to this adder).
            if isinstance(inc, int):
                ev = inc
            else:
                ev = Signal(Value.cast(inc).shape(), name=f"{port.name}_ev")
                m.d.sync += ev.eq(inc)
            m.d.sync += port.eq(Mux(clear, 0, port + ev))

        wbytes = Signal(range(bb + 1))
        m.d.comb += wbytes.eq(sum((axi.wstrb[i] for i in range(bb)), Const(0, range(bb + 1))))
        rd_fire = axi.rvalid & axi.rready
        wr_fire = axi.wvalid & axi.wready
        counter_reg(csr.perf_cycles_value, 1)
        counter_reg(csr.perf_counter_busy_value, counter.busy)
        counter_reg(csr.perf_counter_stall_value, counter.keys.valid & ~counter.keys.ready)
        counter_reg(csr.perf_axi_rd_beats_value, rd_fire)
        counter_reg(csr.perf_axi_rd_bytes_value, Mux(rd_fire, bb, 0))
        counter_reg(csr.perf_axi_wr_beats_value, wr_fire)
        counter_reg(csr.perf_axi_wr_bytes_value, Mux(wr_fire, wbytes, 0))
        cls_busy = Signal()
        m.d.comb += cls_busy.eq(cls_active | reorder.popular.valid | reorder.non_popular.valid |
                                (sers[0].q.level != 0) | (sers[1].q.level != 0) |
                                reorder.cold.valid | rk.valid)
        counter_reg(csr.perf_reorder_busy_value, cls_busy)
        counter_reg(csr.perf_reorder_stall_value, rk.valid & ~rk.ready)
        counter_reg(csr.perf_gather_busy_value, gather.busy)
        counter_reg(csr.perf_gather_stall_value, gather.keys.valid & ~gather.keys.ready)
        return m
