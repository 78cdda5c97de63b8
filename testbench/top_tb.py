"""cocotb testbench of the accelerator top (``hotline_top``).

The driver's side is cocotbext-axi's :class:`AxiLiteMaster` on the register
slave ``s_axil``; host memory is the gather bench's :class:`GatherRam` (an
``AxiRam`` with injectable SLVERR/DECERR ranges) on ``m_axi``; random pauses
on every channel of both.  Every result is compared with the golden model
(:class:`hotline.host.popularity.PopularityCounter`) fed the same commands, and
the whole of host memory is compared with what the commands may write.

Run through ``tests/test_top_cosim.py``.
"""

from __future__ import annotations

import random

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiResp

from .. import regmap
from ..host.popularity import PopularityCounter
from ..regmap import Opcode, Status
from ..rtl.top import QUEUE_DEPTH, READOUT_COUNT_SHIFT, READOUT_KEY_BITS
from .gather_tb import GatherRam, pauses
from .runner import config_from_env, seed_from_env

MEM_BYTES = 1 << 20
R = regmap.BY_NAME


class TopTB:
    """Clock, reset, register master and host memory of one ``hotline_top``."""

    def __init__(self, dut, cfg, seed: int):
        self.dut, self.cfg = dut, cfg
        self.rng = random.Random(seed)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        for obj in (self.csr.write_if, self.csr.read_if):
            obj.log.setLevel("WARNING")
        self.ram = GatherRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, MEM_BYTES)
        self.mem = self.ram.array

    def set_pauses(self, p: float):
        chans = [self.ram.ar_sink, self.ram.read_if.r_channel, self.ram.write_if.aw_channel,
                 self.ram.write_if.w_channel, self.ram.write_if.b_channel,
                 self.csr.write_if.aw_channel, self.csr.write_if.w_channel,
                 self.csr.write_if.b_channel, self.csr.read_if.ar_channel,
                 self.csr.read_if.r_channel]
        for ch in chans:
            if p:
                ch.set_pause_generator(pauses(random.Random(self.rng.random()), p))
            else:
                ch.clear_pause_generator()

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    async def read(self, addr: int) -> int:
        return int.from_bytes((await self.csr.read(addr, 4)).data, "little")

    async def write(self, addr: int, value: int):
        await self.csr.write(addr, value.to_bytes(4, "little"))

    async def submit(self, opcode: int, *, tag: int = 0, addr_a: int = 0, addr_b: int = 0,
                     count: int = 0, arg: int = 0):
        await self.write(regmap.CMD_OPCODE, opcode | tag << 8)
        await self.write(regmap.CMD_ADDR_A_LO, addr_a & 0xFFFF_FFFF)
        await self.write(regmap.CMD_ADDR_A_HI, addr_a >> 32)
        await self.write(regmap.CMD_ADDR_B_LO, addr_b & 0xFFFF_FFFF)
        await self.write(regmap.CMD_ADDR_B_HI, addr_b >> 32)
        await self.write(regmap.CMD_COUNT, count)
        await self.write(regmap.CMD_ARG, arg)
        await self.write(regmap.CMD_SUBMIT, 1)

    async def completion(self, timeout_cycles: int = 200_000):
        """Wait for the head completion, pop it: ``(tag, status, opcode, result0, result1)``."""
        head = R["DONE_HEAD"]
        for _ in range(timeout_cycles // 8):
            word = await self.read(regmap.DONE_HEAD)
            if head.field("VALID").get(word):
                r0 = await self.read(regmap.DONE_RESULT0)
                r1 = await self.read(regmap.DONE_RESULT1)
                await self.write(regmap.DONE_POP, 1)
                return (head.field("TAG").get(word), head.field("STATUS").get(word),
                        head.field("OPCODE").get(word), r0, r1)
            await ClockCycles(self.dut.clk, 8)
        raise AssertionError("no completion")

    async def run(self, opcode, **kw):
        await self.submit(opcode, **kw)
        return await self.completion()

    def put_words(self, addr: int, words) -> None:
        words = np.asarray(words, dtype=np.uint64)
        self.mem[addr:addr + 8 * words.size] = words.view(np.uint8)

    def get_words(self, addr: int, n: int) -> np.ndarray:
        return self.mem[addr:addr + 8 * n].copy().view(np.uint64)


def zipf_keys(cfg, rng: np.random.Generator, n: int, a: float = 1.2) -> np.ndarray:
    k = cfg.keys
    tables = rng.integers(0, k.tables, n, dtype=np.uint64)
    rows = np.minimum(rng.zipf(a, n) - 1, (1 << k.row_bits) - 1).astype(np.uint64)
    return tables << np.uint64(k.row_bits) | rows


def bad_keys(cfg, rng: np.random.Generator, n: int) -> np.ndarray:
    """Keys the device must drop: a table past the last, or bits above the key."""
    k = cfg.keys
    out = []
    for _ in range(n):
        if k.tables < (1 << k.table_bits) and rng.random() < 0.5:
            t = int(rng.integers(k.tables, 1 << k.table_bits))
            out.append(t << k.row_bits | int(rng.integers(0, 1 << k.row_bits)))
        else:
            out.append(int(rng.integers(1, 1 << (64 - k.key_bits))) << k.key_bits)
    return np.array(out, dtype=np.uint64)


def entries_of(golden: PopularityCounter) -> np.ndarray:
    """The readout entries the device writes: every way of every set, valid or not."""
    valid, keys, counts = (a.ravel() for a in golden.table())
    return (valid.astype(np.uint64) << np.uint64(63) | counts.astype(np.uint64) <<
            np.uint64(READOUT_COUNT_SHIFT) | keys.astype(np.uint64))


async def _start(dut, pause: float = 0.3):
    cfg = config_from_env()
    seed = seed_from_env(dut._log)
    tb = TopTB(dut, cfg, seed)
    tb.set_pauses(pause)
    await tb.reset()
    return tb, cfg, np.random.default_rng(seed)


@cocotb.test()
async def test_registers(dut):
    """Reset values, capabilities, read-only fields ignore writes, reserved bits read 0."""
    tb, cfg, rng = await _start(dut)
    assert await tb.read(regmap.ID) == regmap.MAGIC
    assert R["VERSION"].field("MAJOR").get(await tb.read(regmap.VERSION)) == 1
    caps = await tb.read(regmap.CAPS_KEYS)
    f = R["CAPS_KEYS"]
    assert (f.field("TABLES").get(caps), f.field("ROW_BITS").get(caps),
            f.field("LANES").get(caps)) == (cfg.keys.tables, cfg.keys.row_bits, cfg.counter.lanes)
    caps = await tb.read(regmap.CAPS_COUNTER)
    f = R["CAPS_COUNTER"]
    assert f.field("LOG2_COUNTERS").get(caps) == cfg.counter.log2_counters
    assert f.field("HH_WAYS").get(caps) == cfg.counter.hh_ways
    bus = await tb.read(regmap.CAPS_BUS)
    assert R["CAPS_BUS"].field("DATA_BITS").get(bus) == cfg.gather.data_bits
    assert R["CAPS_BUS"].field("QUEUE_DEPTH").get(bus) == QUEUE_DEPTH
    for reg in regmap.REGISTERS:
        if reg.name.startswith("PERF_") and reg.name != "PERF_CTRL":
            continue                                      # counting
        value = await tb.read(reg.offset)
        assert value & ~sum(fl.mask for fl in reg.fields) == 0, reg.name
        if all(fl.kind in ("storage", "const", "w1c", "pulse") for fl in reg.fields):
            assert value == reg.reset, f"{reg.name} resets to {value:#x}, not {reg.reset:#x}"
    # read-only and reserved bits ignore writes; storage takes them
    for name in ("ID", "VERSION", "CAPS_KEYS", "CAPS_BUS", "QUEUE_STATUS", "DONE_HEAD",
                 "IRQ_ENABLE", "CMD_ARG", "CMD_OPCODE"):
        reg = R[name]
        before = await tb.read(reg.offset)
        await tb.write(reg.offset, 0xFFFF_FFFF)
        after = await tb.read(reg.offset)
        writable = sum(fl.mask for fl in reg.fields if fl.kind == "storage")
        assert after == (before & ~writable) | writable, f"{name}: {before:#x} -> {after:#x}"
    await tb.write(regmap.CMD_ARG, 0)
    await tb.write(regmap.CMD_OPCODE, 0)
    await tb.write(regmap.IRQ_ENABLE, 0)
    # an address with no register answers DECERR (the map repeats every 2**ADDRESS_BITS bytes)
    for addr in (0x008, 0x1FC, 0x00C | 1 << regmap.ADDRESS_BITS):
        resp = await tb.csr.read(addr, 4)
        assert resp.resp == AxiResp.DECERR, hex(addr)
        assert int.from_bytes(resp.data, "little") == 0
    assert (await tb.csr.write(0x1F8, b"\xff" * 4)).resp == AxiResp.DECERR
    # nothing touched host memory
    assert not tb.mem.any()


@cocotb.test()
async def test_learn_readout_estimate(dut):
    """learn -> readout -> estimate -> clear against the golden model, bad keys mixed in."""
    tb, cfg, rng = await _start(dut)
    golden = PopularityCounter(cfg)
    out_at = 0x40000
    for rnd in range(3):
        # a start one word past a bus-width boundary on the second round: on a bus wider
        # than 64 bits the reader must pass over the beat's leading words
        keys_at = 0x1000 + 8 * rnd
        good = zipf_keys(cfg, rng, int(rng.integers(50, 400)))
        bad = bad_keys(cfg, rng, int(rng.integers(0, 8)))
        words = np.concatenate([good, bad])
        perm = rng.permutation(words.size)
        words = words[perm]
        is_good = np.concatenate([np.ones(good.size, bool), np.zeros(bad.size, bool)])[perm]
        tb.put_words(keys_at, words)
        tag = int(rng.integers(0, 256))
        got = await tb.run(Opcode.LEARN, tag=tag, addr_a=keys_at, count=words.size)
        assert got == (tag, Status.OK, Opcode.LEARN, good.size, bad.size), got
        golden.learn(words[is_good])
        # readout of the whole table (room for every entry)
        n_entries = cfg.counter.hh_entries
        before = tb.mem.copy()
        got = await tb.run(Opcode.READOUT, tag=rnd, addr_b=out_at, count=n_entries + 5)
        want = entries_of(golden)
        assert got[1:] == (Status.OK, Opcode.READOUT, n_entries, int((want >> np.uint64(63)).sum()))
        assert np.array_equal(tb.get_words(out_at, n_entries), want), "readout differs"
        changed = np.nonzero(tb.mem != before)[0]
        assert changed.size == 0 or (changed.min() >= out_at and changed.max() < out_at + 8 * n_entries)
        # a short readout writes only COUNT entries
        short = int(rng.integers(0, n_entries))
        tb.put_words(out_at, np.full(n_entries, 0xDEAD, np.uint64))
        got = await tb.run(Opcode.READOUT, addr_b=out_at, count=short)
        assert got[3] == short
        assert np.array_equal(tb.get_words(out_at, short), want[:short])
        assert (tb.get_words(out_at + 8 * short, n_entries - short) == 0xDEAD).all()
        # estimates of learned, unseen and bad keys
        probe = np.concatenate([good[:50], zipf_keys(cfg, rng, 30, 1.01), bad])
        tb.put_words(keys_at, probe)
        got = await tb.run(Opcode.ESTIMATE, addr_a=keys_at, addr_b=out_at, count=probe.size)
        assert got[1:] == (Status.OK, Opcode.ESTIMATE, probe.size, bad.size), got
        want = np.full(probe.size, np.uint64(2**64 - 1))
        ok = np.arange(probe.size) < probe.size - bad.size
        want[ok] = golden.estimate(probe[ok]).astype(np.uint64)
        got_est = tb.get_words(out_at, probe.size)
        diff = np.nonzero(got_est != want)[0]
        assert diff.size == 0, (f"estimates differ at {diff[:10]}: got {got_est[diff[:10]]}, "
                                f"want {want[diff[:10]]} (keys {probe[diff[:10]]})")
    got = await tb.run(Opcode.CLEAR)
    assert got[1] == Status.OK
    golden = PopularityCounter(cfg)
    got = await tb.run(Opcode.READOUT, addr_b=out_at, count=cfg.counter.hh_entries)
    assert got[4] == 0 and not tb.get_words(out_at, cfg.counter.hh_entries).any()
    got = await tb.run(Opcode.LEARN, addr_a=keys_at, count=0)
    assert got[1:] == (Status.OK, Opcode.LEARN, 0, 0)


@cocotb.test()
async def test_bad_commands_change_nothing(dut):
    """Unknown opcodes, misaligned or too-wide addresses, arguments out of range."""
    tb, cfg, rng = await _start(dut)
    tb.put_words(0x2000, zipf_keys(cfg, rng, 64))
    before = tb.mem.copy()
    for op in (200, 255, 10):
        got = await tb.run(op, tag=7, addr_a=0x2000, addr_b=0x8000, count=64)
        assert got == (7, Status.BAD_OPCODE, op, 0, 0), got
    r = cfg.reorder
    T = r.keys_per_sample
    for op, kw in ((Opcode.CLASSIFY, {"count": 4, "arg": T + 1}),          # wrong sample width
                   (Opcode.CLASSIFY, {"count": 0, "arg": T}),              # empty batch
                   (Opcode.CLASSIFY, {"count": 4, "arg": T, "addr_b": 0x8004}),
                   (Opcode.GATHER, {"count": r.max_batch_keys + 1}),       # over the key buffer
                   (Opcode.SCATTER, {"count": 4, "addr_a": 0x2002}),
                   (Opcode.LOAD_HOTMAP, {"count": r.hotmap_capacity + 1}),
                   (Opcode.SET_TABLES, {"count": cfg.keys.tables + 1, "arg": 64}),
                   (Opcode.SET_TABLES, {"count": 1, "arg": 0}),            # row bytes 0
                   (Opcode.SET_TABLES, {"count": 1, "arg": cfg.gather.max_row_bytes + 1})):
        args = {"addr_a": 0x2000, "addr_b": 0x8000, **kw}
        got = await tb.run(op, tag=9, **args)
        assert got == (9, Status.BAD_ARGUMENT, op, 0, 0), (op, kw, got)
    for kw in ({"addr_a": 0x2004}, {"addr_a": 0x2001}):
        got = await tb.run(Opcode.LEARN, count=4, **kw)
        assert got[1] == Status.BAD_ARGUMENT
    got = await tb.run(Opcode.ESTIMATE, addr_a=0x2000, addr_b=0x8002, count=4)
    assert got[1] == Status.BAD_ARGUMENT
    if cfg.gather.addr_bits < 64:
        got = await tb.run(Opcode.ESTIMATE, addr_a=0x2000, addr_b=1 << cfg.gather.addr_bits,
                           count=4)
        assert got[1] == Status.BAD_ARGUMENT
    got = await tb.run(Opcode.READOUT, addr_b=0x8004, count=4)
    assert got[1] == Status.BAD_ARGUMENT
    assert np.array_equal(tb.mem, before)
    # the counter learned nothing: a readout is empty
    got = await tb.run(Opcode.READOUT, addr_b=0x8000, count=cfg.counter.hh_entries)
    assert got[4] == 0


@cocotb.test()
async def test_queue_full_and_irq(dut):
    """A submit while the queue is full is dropped and flagged; completions keep order;
    the interrupt follows IRQ_STATUS & IRQ_ENABLE."""
    tb, cfg, rng = await _start(dut, pause=0.0)
    n = 2000
    tb.put_words(0x1000, zipf_keys(cfg, rng, n))
    await tb.write(regmap.IRQ_ENABLE, 0b11)
    assert int(dut.irq.value) == 0
    # submit long commands back to back: one runs, QUEUE_DEPTH wait, the rest are dropped
    submitted = QUEUE_DEPTH + 3
    for tag in range(submitted):
        await tb.submit(Opcode.LEARN, tag=tag, addr_a=0x1000, count=n)
    status = await tb.read(regmap.IRQ_STATUS)
    assert R["IRQ_STATUS"].field("OVERFLOW").get(status) == 1
    qs = await tb.read(regmap.QUEUE_STATUS)
    assert R["QUEUE_STATUS"].field("BUSY").get(qs) == 1
    tags = []
    while True:
        word = await tb.read(regmap.DONE_HEAD)
        if not R["DONE_HEAD"].field("VALID").get(word):
            qs = await tb.read(regmap.QUEUE_STATUS)
            # idle now: but a command may have completed between the two reads
            if not R["QUEUE_STATUS"].field("BUSY").get(qs) and \
                    not R["DONE_HEAD"].field("VALID").get(await tb.read(regmap.DONE_HEAD)):
                break
            await ClockCycles(dut.clk, 50)
            continue
        assert int(dut.irq.value) == 1
        tags.append(R["DONE_HEAD"].field("TAG").get(word))
        await tb.write(regmap.DONE_POP, 1)
    accepted = len(tags)
    assert tags == list(range(accepted)), tags
    assert QUEUE_DEPTH + 1 <= accepted < submitted
    # W1C: clear DONE and OVERFLOW; irq drops
    await tb.write(regmap.IRQ_STATUS, 0b101)
    assert await tb.read(regmap.IRQ_STATUS) == 0
    await RisingEdge(dut.clk)
    assert int(dut.irq.value) == 0
    # an error completion raises ERROR; with only ERROR enabled irq follows it
    await tb.write(regmap.IRQ_ENABLE, 0b10)
    got = await tb.run(0x77)
    assert got[1] == Status.BAD_OPCODE
    assert R["IRQ_STATUS"].field("ERROR").get(await tb.read(regmap.IRQ_STATUS)) == 1
    assert int(dut.irq.value) == 1
    got = await tb.run(Opcode.NOP)
    assert got[1] == Status.OK


@cocotb.test()
async def test_axi_errors(dut):
    """SLVERR/DECERR while reading keys or writing results: AXI_ERROR, the failed words
    lost, nothing written outside the command's buffer."""
    tb, cfg, rng = await _start(dut)
    bb = cfg.gather.data_bits // 8
    for resp in (AxiResp.SLVERR, AxiResp.DECERR):
        golden = PopularityCounter(cfg)
        await tb.run(Opcode.CLEAR)
        keys = zipf_keys(cfg, rng, 300)
        tb.put_words(0x4000, keys)
        tb.ram.fault_resp = resp
        lo = 0x4000 + 8 * 100
        tb.ram.faults[:] = [(lo, lo + 8 * 20)]
        got = await tb.run(Opcode.LEARN, addr_a=0x4000, count=keys.size)
        assert got[1] == Status.AXI_ERROR
        # whole beats that meet the fault are lost
        addr = 0x4000 + 8 * np.arange(keys.size)
        beat = addr // bb * bb
        lost = (beat < lo + 8 * 20) & (beat + bb > lo)
        assert got[3] == int((~lost).sum())
        golden.learn(keys[~lost])
        tb.ram.faults.clear()
        got = await tb.run(Opcode.READOUT, addr_b=0x10000, count=cfg.counter.hh_entries)
        assert got[1] == Status.OK
        assert np.array_equal(tb.get_words(0x10000, cfg.counter.hh_entries), entries_of(golden))
        # a write fault in the middle of an estimate's output
        out = 0x20000
        tb.mem[out - 64:out + 8 * 300 + 64] = 0xA5
        before = tb.mem.copy()
        tb.ram.faults[:] = [(out + 8 * 10, out + 8 * 12)]
        got = await tb.run(Opcode.ESTIMATE, addr_a=0x4000, addr_b=out, count=keys.size)
        tb.ram.faults.clear()
        assert got[1] == Status.AXI_ERROR and got[3] == keys.size
        changed = np.nonzero(tb.mem != before)[0]
        assert changed.min() >= out and changed.max() < out + 8 * keys.size
        est = tb.get_words(out, keys.size)
        want = golden.estimate(keys).astype(np.uint64)
        ok = np.ones(keys.size, bool)
        ok[10:12] = False
        assert np.array_equal(est[ok], want[ok])
    assert tb.ram.fault_answers


@cocotb.test()
async def test_perf_counters(dut):
    tb, cfg, rng = await _start(dut, pause=0.0)
    await tb.write(regmap.PERF_CTRL, 1)
    c0 = await tb.read(regmap.PERF_CYCLES)
    n = 200
    tb.put_words(0x1000, zipf_keys(cfg, rng, n))
    await tb.run(Opcode.LEARN, addr_a=0x1000, count=n)
    await tb.run(Opcode.ESTIMATE, addr_a=0x1000, addr_b=0x9000, count=n)
    c1 = await tb.read(regmap.PERF_CYCLES)
    assert c1 > c0 > 0
    bb = cfg.gather.data_bits // 8
    beats = -(-8 * n // bb)
    assert await tb.read(regmap.PERF_AXI_RD_BEATS) == 2 * beats
    assert await tb.read(regmap.PERF_AXI_RD_BYTES) == 2 * beats * bb
    # the estimates are consecutive words: on a bus wider than a word the writer merges
    # the ones that share a beat (a gap in the stream sends a beat early)
    wr_beats = await tb.read(regmap.PERF_AXI_WR_BEATS)
    if bb == 8:
        assert wr_beats == n
    else:
        assert beats <= wr_beats < n, (wr_beats, beats, n)
    assert await tb.read(regmap.PERF_AXI_WR_BYTES) == 8 * n
    busy = await tb.read(regmap.PERF_COUNTER_BUSY)
    assert 0 < busy < c1
    await tb.write(regmap.PERF_CTRL, 1)
    assert await tb.read(regmap.PERF_AXI_RD_BEATS) == 0



@cocotb.test()
async def test_flow_learn_to_scatter(dut):
    """learn -> readout -> load hot map -> classify -> set tables -> gather -> scatter, every
    result against the golden models and every byte of host memory accounted for; then an
    AXI error during a gather and during a classify end with AXI_ERROR."""
    from ..host.hotmap import HotMap
    from ..host.reorder import classify
    tb, cfg, rng = await _start(dut)
    k, r, g = cfg.keys, cfg.reorder, cfg.gather
    T = r.keys_per_sample
    golden = PopularityCounter(cfg)
    # learn a skewed stream, pick the hot set from the readout as the driver does
    stream = zipf_keys(cfg, rng, 600, a=1.3)
    tb.put_words(0x1000, stream)
    got = await tb.run(Opcode.LEARN, addr_a=0x1000, count=stream.size)
    assert got[1:4] == (Status.OK, Opcode.LEARN, stream.size)
    golden.learn(stream)
    ro_at = 0x8000
    got = await tb.run(Opcode.READOUT, addr_b=ro_at, count=cfg.counter.hh_entries)
    assert np.array_equal(tb.get_words(ro_at, cfg.counter.hh_entries), entries_of(golden))
    hot = golden.hot_set(1 << 20, 1)
    hm = HotMap.build(cfg, hot)
    img_at = 0x10000
    tb.put_words(img_at, hm.image)
    got = await tb.run(Opcode.LOAD_HOTMAP, addr_a=img_at, count=hm.image.size)
    assert got[1:4] == (Status.OK, Opcode.LOAD_HOTMAP, hm.image.size)
    # classify a batch drawn from the same distribution (some samples all hot)
    B = 24
    keys = zipf_keys(cfg, rng, B * T, a=1.6).reshape(B, T)
    keys[:3] = rng.choice(hot, (3, T))                      # popular samples for sure
    cb = classify(cfg, hm, keys)
    k_at, out_at = 0x20000, 0x30000
    tb.put_words(k_at, keys.ravel())
    before = tb.mem.copy()
    got = await tb.run(Opcode.CLASSIFY, tag=3, addr_a=k_at, addr_b=out_at, count=B, arg=T)
    U = cb.cold_keys.size
    assert got == (3, Status.OK, Opcode.CLASSIFY, cb.popular.size | cb.non_popular.size << 16, U), got
    remap = cb.hot.astype(np.uint64) << np.uint64(63) | cb.index.astype(np.uint64)
    expect = before.copy()
    words = {out_at: remap.ravel(), out_at + 8 * B * T: cb.popular.astype(np.uint64),
             out_at + 8 * (B * T + B): cb.non_popular.astype(np.uint64),
             out_at + 8 * (B * T + 2 * B): cb.cold_keys}
    for at, w in words.items():
        expect[at:at + 8 * w.size] = w.view(np.uint8)
    assert np.array_equal(tb.mem, expect), "classify wrote other bytes than its results"
    # the gather DMA: tables in host memory, rows of 24 bytes (not a multiple of the bus)
    rows_n, rb = 50, 24
    bases = [0x40000 + t * 0x1000 for t in range(k.tables)]
    table_rows = {}
    for t, base in enumerate(bases):
        data = rng.integers(0, 256, rows_n * rb, dtype=np.uint8)
        tb.mem[base:base + data.size] = data
        table_rows[t] = data.reshape(rows_n, rb)
    desc = np.zeros((k.tables, 2), dtype=np.uint64)
    desc[:, 0] = bases
    desc[:, 1] = rb | rows_n << 32
    tb.put_words(0x3F000, desc.ravel())
    got = await tb.run(Opcode.SET_TABLES, addr_a=0x3F000, count=k.tables, arg=rb)
    assert got[1:4] == (Status.OK, Opcode.SET_TABLES, k.tables)
    cold = cb.cold_keys
    cold = cold[(cold & np.uint64((1 << k.row_bits) - 1)) < rows_n]   # rows that exist
    ck_at, stage = 0x38000, 0x60000
    tb.put_words(ck_at, cold)
    before = tb.mem.copy()
    got = await tb.run(Opcode.GATHER, addr_a=ck_at, addr_b=stage, count=cold.size)
    assert got[1:] == (Status.OK, Opcode.GATHER, cold.size, 0), got
    t_of = (cold >> np.uint64(k.row_bits)).astype(int)
    r_of = (cold & np.uint64((1 << k.row_bits) - 1)).astype(int)
    exp_rows = np.stack([table_rows[t][i] for t, i in zip(t_of, r_of)]) if cold.size else \
        np.zeros((0, rb), np.uint8)
    expect = before.copy()
    expect[stage:stage + cold.size * rb] = exp_rows.ravel()
    assert np.array_equal(tb.mem, expect), "gather wrote other bytes than its rows"
    # scatter new rows back
    new = rng.integers(0, 256, (cold.size, rb), dtype=np.uint8)
    tb.mem[stage:stage + new.size] = new.ravel()
    before = tb.mem.copy()
    got = await tb.run(Opcode.SCATTER, addr_a=ck_at, addr_b=stage, count=cold.size)
    assert got[1:] == (Status.OK, Opcode.SCATTER, cold.size, 0), got
    expect = before.copy()
    for j, (t, i) in enumerate(zip(t_of, r_of)):
        expect[bases[t] + i * rb:bases[t] + (i + 1) * rb] = new[j]
    assert np.array_equal(tb.mem, expect), "scatter wrote other bytes than its rows"
    # a row out of range: BAD_ROW, the other rows still move
    bad = np.array([cold[0], rows_n], dtype=np.uint64)       # table 0, row rows_n
    tb.put_words(ck_at, bad)
    got = await tb.run(Opcode.GATHER, addr_a=ck_at, addr_b=stage, count=2)
    assert got[1:] == (Status.BAD_ROW, Opcode.GATHER, 1, 1), got
    # AXI errors: a table row that answers SLVERR, a key array that answers SLVERR
    tb.put_words(ck_at, cold[:4])
    lo = bases[int(t_of[1])] + int(r_of[1]) * rb
    tb.ram.faults[:] = [(lo, lo + rb)]
    got = await tb.run(Opcode.GATHER, addr_a=ck_at, addr_b=stage, count=4)
    assert got[1] == Status.AXI_ERROR and got[3] <= 3 and got[4] >= 1, got
    tb.ram.faults[:] = [(k_at + 8 * 5, k_at + 8 * 6)]
    before = tb.mem.copy()
    got = await tb.run(Opcode.CLASSIFY, addr_a=k_at, addr_b=out_at, count=B, arg=T)
    assert got[1] == Status.AXI_ERROR, got
    tb.ram.faults.clear()
    # it wrote only inside its result regions
    changed = np.flatnonzero(tb.mem != before)
    end = out_at + 8 * (B * T + 2 * B + r.max_batch_keys)
    assert changed.size == 0 or (changed.min() >= out_at and changed.max() < end)
    # and the device still works: the same classify again gives the same results
    got = await tb.run(Opcode.CLASSIFY, tag=4, addr_a=k_at, addr_b=out_at, count=B, arg=T)
    assert got == (4, Status.OK, Opcode.CLASSIFY, cb.popular.size | cb.non_popular.size << 16, U)


@cocotb.test()
async def test_classify_beside_dma(dut):
    """SCATTER, CLASSIFY, GATHER, SET_TABLES submitted back to back: the classify runs
    while the scatter's rows move (its completion comes first), the gather waits for the
    scatter (it reads the rows the scatter wrote), SET_TABLES waits for the gather (both
    DMA commands used the old tables), and every result and byte of host memory is what
    the golden models and the commands' definitions say."""
    from ..host.hotmap import HotMap
    from ..host.reorder import classify
    tb, cfg, rng = await _start(dut)
    k, r = cfg.keys, cfg.reorder
    T = r.keys_per_sample
    golden = PopularityCounter(cfg)
    stream = zipf_keys(cfg, rng, 400, a=1.3)
    tb.put_words(0x1000, stream)
    assert (await tb.run(Opcode.LEARN, addr_a=0x1000, count=stream.size))[1] == Status.OK
    golden.learn(stream)
    hm = HotMap.build(cfg, golden.hot_set(1 << 20, 1))
    tb.put_words(0x10000, hm.image)
    assert (await tb.run(Opcode.LOAD_HOTMAP, addr_a=0x10000, count=hm.image.size))[1] == Status.OK
    # tables of rows_n rows of rb bytes, old at 0x80000, a copy at 0xC0000 for SET_TABLES;
    # rows long enough that the scatter outlasts the classify sharing the bus with it
    rows_n, rb = 24, 512
    n_tab = min(k.tables, 8)
    old = [0x80000 + t * rows_n * rb for t in range(n_tab)]
    new = [0xC0000 + t * rows_n * rb for t in range(n_tab)]
    for a, b in zip(old, new):
        data = rng.integers(0, 256, rows_n * rb, dtype=np.uint8)
        tb.mem[a:a + data.size] = data
        tb.mem[b:b + data.size] = data
    for at, bases in ((0x3E000, old), (0x3F000, new)):
        desc = np.zeros((n_tab, 2), dtype=np.uint64)
        desc[:, 0] = bases
        desc[:, 1] = rb | rows_n << 32
        tb.put_words(at, desc.ravel())
    got = await tb.run(Opcode.SET_TABLES, addr_a=0x3E000, count=n_tab, arg=rb)
    assert got[1] == Status.OK, got
    # distinct rows to scatter (many, so the DMA runs long), then gather back
    flat = rng.permutation(n_tab * rows_n)[:min(n_tab * rows_n, 160)]
    t_of, r_of = flat // rows_n, flat % rows_n
    mkeys = (t_of.astype(np.uint64) << np.uint64(k.row_bits)) | r_of.astype(np.uint64)
    mk_at, stage, stage2 = 0x38000, 0x40000, 0x60000
    tb.put_words(mk_at, mkeys)
    rows_new = rng.integers(0, 256, (mkeys.size, rb), dtype=np.uint8)
    tb.mem[stage:stage + rows_new.size] = rows_new.ravel()
    B = 12
    keys = zipf_keys(cfg, rng, B * T, a=1.6).reshape(B, T)
    cb = classify(cfg, hm, keys)
    k_at, out_at = 0x20000, 0x30000
    tb.put_words(k_at, keys.ravel())
    before = tb.mem.copy()
    await tb.submit(Opcode.SCATTER, tag=10, addr_a=mk_at, addr_b=stage, count=mkeys.size)
    await tb.submit(Opcode.CLASSIFY, tag=11, addr_a=k_at, addr_b=out_at, count=B, arg=T)
    await tb.submit(Opcode.GATHER, tag=12, addr_a=mk_at, addr_b=stage2, count=mkeys.size)
    await tb.submit(Opcode.SET_TABLES, tag=13, addr_a=0x3F000, count=n_tab, arg=rb)
    done = [await tb.completion() for _ in range(4)]
    order = [d[0] for d in done]
    by_tag = {d[0]: d for d in done}
    assert order.index(11) < order.index(10), f"the classify did not finish first: {order}"
    assert order.index(10) < order.index(12) < order.index(13), f"DMA order broken: {order}"
    assert by_tag[10][1:] == (Status.OK, Opcode.SCATTER, mkeys.size, 0), by_tag[10]
    assert by_tag[12][1:] == (Status.OK, Opcode.GATHER, mkeys.size, 0), by_tag[12]
    assert by_tag[13][1:4] == (Status.OK, Opcode.SET_TABLES, n_tab), by_tag[13]
    assert by_tag[11] == (11, Status.OK, Opcode.CLASSIFY,
                          cb.popular.size | cb.non_popular.size << 16, cb.cold_keys.size)
    expect = before.copy()
    for j, (t, i) in enumerate(zip(t_of, r_of)):
        expect[old[t] + i * rb:old[t] + (i + 1) * rb] = rows_new[j]    # the old tables only
    expect[stage2:stage2 + rows_new.size] = rows_new.ravel()            # read after the scatter
    remap = cb.hot.astype(np.uint64) << np.uint64(63) | cb.index.astype(np.uint64)
    for at, w in {out_at: remap.ravel(), out_at + 8 * B * T: cb.popular.astype(np.uint64),
                  out_at + 8 * (B * T + B): cb.non_popular.astype(np.uint64),
                  out_at + 8 * (B * T + 2 * B): cb.cold_keys}.items():
        expect[at:at + 8 * w.size] = w.view(np.uint8)
    assert np.array_equal(tb.mem, expect), "the overlapped commands wrote other bytes"
    # the new tables are in force now: a gather reads the copies
    got = await tb.run(Opcode.GATHER, tag=14, addr_a=mk_at, addr_b=stage2, count=mkeys.size)
    assert got[1:] == (Status.OK, Opcode.GATHER, mkeys.size, 0), got
    copies = np.stack([tb.mem[new[t] + i * rb:new[t] + (i + 1) * rb] for t, i in zip(t_of, r_of)])
    assert np.array_equal(tb.mem[stage2:stage2 + rows_new.size], copies.ravel())
