"""The accelerator as one device: registers, a command queue, the units, one AXI4 master.

:class:`HotlineTop` is what a driver talks to.  Its AXI4-Lite slave holds the
registers of :mod:`hotline.regmap` (generated from the one SystemRDL source);
a command is staged in ``CMD_*`` and pushed by ``CMD_SUBMIT``; the command
processor takes commands from the queue one at a time, in order, moves their
data between host memory (the AXI4 master) and the units, and leaves one
completion (tag, status, two results) in the completion FIFO, raising ``irq``
as ``IRQ_ENABLE`` says.  Because commands run strictly in order, a command
sees every effect of the commands before it: the device enforces the ordering
that keeps training exact.

Commands built so far (``hotline.regmap.Opcode``):

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

The reorder and gather commands (``LOAD_HOTMAP``, ``CLASSIFY``, ``GATHER``,
``SCATTER``, ``SET_TABLES``) are not wired into the top yet: they complete
with ``BAD_OPCODE`` and do nothing, like an unknown opcode.

An address that is not 8-byte aligned, or that does not fit the AXI address
width, ends a command with ``BAD_ARGUMENT`` before it touches anything.  A
submit while the queue is full is dropped and sets ``IRQ_STATUS.OVERFLOW``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from .. import regmap
from ..config import ConfigError, HotlineConfig
from ..regmap import Opcode, Status
from .axi import AXI4LiteSignature, AXI4Signature
from .axi_engines import WordReader, WordWriter
from .checks import require_config
from .csr import CSRBlock
from .popularity import Op, PopularityCounterArray

__all__ = ["HotlineTop", "READOUT_KEY_BITS", "READOUT_COUNT_SHIFT", "CSR_ADDR_BITS",
           "QUEUE_DEPTH", "DONE_DEPTH"]

#: Readout entry: key in bits [39:0], count in [62:40], valid in bit 63.
READOUT_KEY_BITS = 40
READOUT_COUNT_SHIFT = 40
CSR_ADDR_BITS = 16
QUEUE_DEPTH = 4
DONE_DEPTH = 8


def _log2(n: int) -> int:
    return (n - 1).bit_length()


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
                                       id_width=g.id_bits)),
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
        m.submodules.reader = reader = WordReader(addr_bits=g.addr_bits, data_bits=g.data_bits,
                                                  id_bits=g.id_bits)
        m.submodules.writer = writer = WordWriter(addr_bits=g.addr_bits, data_bits=g.data_bits,
                                                  id_bits=g.id_bits)
        reader.connect_axi(m, self.m_axi)
        writer.connect_axi(m, self.m_axi)

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
        cmd = Signal(desc)
        status = Signal(8)
        result0 = Signal(32)
        result1 = Signal(32)
        sent = Signal(32)                 # words taken from the reader / entries seen
        answered = Signal(32)             # estimates received
        finish = Signal()
        m.d.comb += [
            doneq.w_data.eq(Cat(cmd.tag, status, cmd.opcode, result0, result1)),
            doneq.w_en.eq(finish),
            csr.irq_status_done_set.eq(finish),
            csr.irq_status_error_set.eq(finish & (status != Status.OK)),
        ]
        busy = Signal()
        level = Signal(range(QUEUE_DEPTH + 1))
        m.d.comb += [
            level.eq(cmdq.level),
            csr.queue_status_level.eq(level), csr.queue_status_full.eq(~cmdq.w_rdy),
            csr.queue_status_busy.eq(busy | (cmdq.level != 0)),
            csr.queue_status_done_level.eq(doneq.level),
            self.irq.eq(((csr.irq_status_done & csr.irq_enable_done) |
                         (csr.irq_status_error & csr.irq_enable_error)) != 0),
        ]

        # key checks: bits above the key, or a table past the last
        def key_ok(word):
            ok = word[k.key_bits:] == 0
            if k.tables < (1 << k.table_bits):
                ok = ok & (word[k.row_bits:k.key_bits] < k.tables)
            return ok

        aligned_a = (cmd.addr_a[:3] == 0) & (cmd.addr_a[g.addr_bits:] == 0 if g.addr_bits < 64
                                              else Const(1))
        aligned_b = (cmd.addr_b[:3] == 0) & (cmd.addr_b[g.addr_bits:] == 0 if g.addr_bits < 64
                                              else Const(1))

        keys_beat = counter.keys.payload
        word = reader.words.payload
        good = Signal()
        m.d.comb += good.eq(key_ok(word))

        with m.FSM(name="cmd"):
            with m.State("IDLE"):
                # a completion slot must be free before a command starts
                with m.If(cmdq.r_rdy & (doneq.level < DONE_DEPTH)):
                    m.d.comb += cmdq.r_en.eq(1)
                    m.d.sync += [cmd.eq(cmdq.r_data), status.eq(Status.OK), result0.eq(0),
                                 result1.eq(0), sent.eq(0), answered.eq(0)]
                    m.next = "DECODE"
            with m.State("DECODE"):
                m.d.comb += busy.eq(1)
                with m.Switch(cmd.opcode):
                    with m.Case(Opcode.NOP):
                        m.next = "FINISH"
                    with m.Case(Opcode.LEARN):
                        with m.If(~aligned_a):
                            m.d.sync += status.eq(Status.BAD_ARGUMENT)
                            m.next = "FINISH"
                        with m.Else():
                            m.d.comb += [reader.start.eq(1), reader.addr.eq(cmd.addr_a),
                                         reader.count.eq(cmd.count)]
                            m.next = "LEARN"
                    with m.Case(Opcode.ESTIMATE):
                        with m.If(~aligned_a | ~aligned_b):
                            m.d.sync += status.eq(Status.BAD_ARGUMENT)
                            m.next = "FINISH"
                        with m.Else():
                            m.d.comb += [reader.start.eq(1), reader.addr.eq(cmd.addr_a),
                                         reader.count.eq(cmd.count),
                                         writer.start.eq(1), writer.addr.eq(cmd.addr_b)]
                            m.next = "ESTIMATE"
                    with m.Case(Opcode.READOUT):
                        with m.If(~aligned_b):
                            m.d.sync += status.eq(Status.BAD_ARGUMENT)
                            m.next = "FINISH"
                        with m.Else():
                            m.d.comb += [writer.start.eq(1), writer.addr.eq(cmd.addr_b)]
                            m.next = "READOUT_OP"
                    with m.Case(Opcode.CLEAR):
                        m.next = "CLEAR_OP"
                    with m.Default():
                        m.d.sync += status.eq(Status.BAD_OPCODE)
                        m.next = "FINISH"

            with m.State("LEARN"):
                m.d.comb += busy.eq(1)
                # one key per counter beat (lane 0); a bad key is dropped here
                m.d.comb += [
                    keys_beat.op.eq(Op.UPDATE), keys_beat.keys[0].eq(word), keys_beat.mask.eq(1),
                    counter.keys.valid.eq(reader.words.valid & good),
                    reader.words.ready.eq(~good | counter.keys.ready),
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
                    counter.keys.valid.eq(reader.words.valid),
                    reader.words.ready.eq(counter.keys.ready),
                ]
                with m.If(reader.words.valid & reader.words.ready):
                    m.d.sync += sent.eq(sent + 1)
                    with m.If(~good):
                        m.d.sync += result1.eq(result1 + 1)
                est = counter.estimates.payload
                m.d.comb += [
                    writer.words.valid.eq(counter.estimates.valid),
                    writer.words.payload.eq(Mux(est.mask[0], est.counts[0], Const((1 << 64) - 1, 64))),
                    counter.estimates.ready.eq(writer.words.ready),
                ]
                with m.If(counter.estimates.valid & counter.estimates.ready):
                    m.d.sync += [answered.eq(answered + 1), result0.eq(result0 + 1)]
                with m.If(~reader.busy & (answered == sent) & ~counter.estimates.valid):
                    m.next = "DRAIN"

            with m.State("READOUT_OP"):
                m.d.comb += [busy.eq(1), keys_beat.op.eq(Op.READOUT), counter.keys.valid.eq(1)]
                with m.If(counter.keys.ready):
                    m.next = "READOUT"
            with m.State("READOUT"):
                m.d.comb += busy.eq(1)
                ro = counter.readout.payload
                entry = Cat(ro.key.as_value(), Const(0, READOUT_KEY_BITS - k.key_bits),
                            ro.count, Const(0, 63 - READOUT_COUNT_SHIFT - c.counter_bits),
                            ro.valid)
                room = Signal()
                m.d.comb += room.eq(sent < cmd.count)
                m.d.comb += [
                    writer.words.valid.eq(counter.readout.valid & room),
                    writer.words.payload.eq(entry),
                    counter.readout.ready.eq(~room | writer.words.ready),
                ]
                with m.If(counter.readout.valid & counter.readout.ready):
                    m.d.sync += sent.eq(sent + 1)
                    with m.If(room):
                        m.d.sync += result0.eq(result0 + 1)
                    with m.If(ro.valid):
                        m.d.sync += result1.eq(result1 + 1)
                    with m.If(ro.last):
                        m.next = "DRAIN"

            with m.State("CLEAR_OP"):
                m.d.comb += [busy.eq(1), keys_beat.op.eq(Op.CLEAR), counter.keys.valid.eq(1)]
                with m.If(counter.keys.ready):
                    m.next = "DRAIN"

            with m.State("DRAIN"):
                # the command's effects are complete: the counter idle, every write answered
                m.d.comb += busy.eq(1)
                # an engine's error count is zeroed when a command starts it: count only
                # the engines this command used
                uses_reader = (cmd.opcode == Opcode.LEARN) | (cmd.opcode == Opcode.ESTIMATE)
                uses_writer = (cmd.opcode == Opcode.ESTIMATE) | (cmd.opcode == Opcode.READOUT)
                with m.If(~counter.busy & ~writer.busy & ~reader.busy):
                    with m.If((uses_reader & (reader.errors != 0)) |
                              (uses_writer & (writer.errors != 0))):
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
            m.d.sync += port.eq(Mux(clear, 0, port + inc))

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
        # the reorder unit and the gather DMA are not in the top yet: their counters read 0
        m.d.comb += [csr.perf_reorder_busy_value.eq(0), csr.perf_reorder_stall_value.eq(0),
                     csr.perf_gather_busy_value.eq(0), csr.perf_gather_stall_value.eq(0)]
        return m
