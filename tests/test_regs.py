"""The register map: generated files are fresh, and the CSR block behaves as the map says.

The CSR block is checked against a Python model written from the map's field
kinds, through an AXI4-Lite driver with random valid/ready pauses, on random
and adversarial accesses (read-only and reserved bits, unmapped addresses,
partial strobes, a hardware set racing a clearing write).
"""

import random

import pytest
from amaranth.sim import Simulator

from hotline import regmap
from hotline.rtl.csr import CSRBlock, RESP_DECERR, RESP_OKAY, port_name


def test_generated_files_are_fresh():
    pytest.importorskip("systemrdl")
    pytest.importorskip("peakrdl_markdown")
    pytest.importorskip("peakrdl_cheader")
    from hotline.regs.generate import generate
    stale = generate(check=True)
    assert not stale, f"stale: {stale}; run python -m hotline.regs.generate"


def test_map_is_consistent():
    offsets = [r.offset for r in regmap.REGISTERS]
    assert len(set(offsets)) == len(offsets) and all(o % 4 == 0 for o in offsets)
    assert max(offsets) < 1 << regmap.ADDRESS_BITS
    for reg in regmap.REGISTERS:
        used = 0
        for f in reg.fields:
            assert f.mask & used == 0, f"{reg.name}.{f.name} overlaps"
            assert f.lsb + f.width <= 32
            used |= f.mask
    assert regmap.ID == 0 and regmap.BY_NAME["ID"].reset == regmap.MAGIC == 0x484F544C
    assert regmap.Opcode.NOP == 0 and regmap.Status.OK == 0
    f = regmap.BY_NAME["CMD_OPCODE"].field("TAG")
    assert f.get(f.put(0xAB) | 0x12) == 0xAB
    with pytest.raises(ValueError, match="does not fit"):
        f.put(256)
    with pytest.raises(KeyError):
        regmap.BY_NAME["CMD_OPCODE"].field("NOPE")


class Model:
    """What every register must read, from the map alone."""

    def __init__(self):
        self.value = {}
        for reg in regmap.REGISTERS:
            for f in reg.fields:
                if f.kind in ("storage", "w1c", "const"):
                    self.value[reg.name, f.name] = f.reset
        self.status = {}

    def write(self, addr, data, strb):
        reg = next((r for r in regmap.REGISTERS if r.offset == addr & ~3 & ((1 << regmap.ADDRESS_BITS) - 1)), None)
        if reg is None:
            return RESP_DECERR, []
        bits = sum(0xFF << (8 * i) for i in range(4) if strb >> i & 1)
        pulses = []
        for f in reg.fields:
            w, s = f.get(data), f.get(bits)
            if f.kind == "storage":
                self.value[reg.name, f.name] = (self.value[reg.name, f.name] & ~s) | (w & s)
            elif f.kind == "w1c":
                self.value[reg.name, f.name] &= ~(w & s)
            elif f.kind == "pulse":
                pulses.append((reg.name, f.name, w & s))
        return RESP_OKAY, pulses

    def read(self, addr):
        reg = next((r for r in regmap.REGISTERS if r.offset == addr & ~3 & ((1 << regmap.ADDRESS_BITS) - 1)), None)
        if reg is None:
            return RESP_DECERR, 0
        word = 0
        for f in reg.fields:
            if f.kind == "status":
                word |= f.put(self.status.get((reg.name, f.name), 0))
            elif f.kind != "pulse":
                word |= f.put(self.value[reg.name, f.name])
        return RESP_OKAY, word


def _run(bench_fn, seed):
    dut = CSRBlock(addr_width=16)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    async def bench(ctx):
        await bench_fn(ctx, dut, random.Random(seed))
    sim.add_testbench(bench)
    sim.run()


async def _write(ctx, dut, rng, addr, data, strb=0xF):
    bus = dut.axil
    for _ in range(rng.choice([0, 0, 1, 3])):
        await ctx.tick()
    ctx.set(bus.awaddr, addr)
    ctx.set(bus.wdata, data)
    ctx.set(bus.wstrb, strb)
    ctx.set(bus.awvalid, 1)
    ctx.set(bus.wvalid, 1)
    ctx.set(bus.bready, 0)
    await ctx.tick().until(bus.awready)
    ctx.set(bus.awvalid, 0)
    ctx.set(bus.wvalid, 0)
    for _ in range(rng.choice([0, 1, 4])):
        await ctx.tick()
    ctx.set(bus.bready, 1)
    (resp,) = await ctx.tick().sample(bus.bresp).until(bus.bvalid)
    ctx.set(bus.bready, 0)
    return resp


async def _read(ctx, dut, rng, addr):
    bus = dut.axil
    for _ in range(rng.choice([0, 0, 2])):
        await ctx.tick()
    ctx.set(bus.araddr, addr)
    ctx.set(bus.arvalid, 1)
    ctx.set(bus.rready, 0)
    await ctx.tick().until(bus.arready)
    ctx.set(bus.arvalid, 0)
    for _ in range(rng.choice([0, 1, 3])):
        await ctx.tick()
    ctx.set(bus.rready, 1)
    data, resp = await ctx.tick().sample(bus.rdata, bus.rresp).until(bus.rvalid)
    ctx.set(bus.rready, 0)
    return data, resp


def test_reset_values_and_reserved_bits(seed):
    async def bench(ctx, dut, rng):
        model = Model()
        for reg in regmap.REGISTERS:
            data, resp = await _read(ctx, dut, rng, reg.offset)
            assert resp == RESP_OKAY
            assert data == model.read(reg.offset)[1], reg.name
            assert data & ~sum(f.mask for f in reg.fields) == 0
        # write all ones everywhere but the doorbells: reserved bits stay 0,
        # read-only registers keep their value
        for reg in regmap.REGISTERS:
            if any(f.kind == "pulse" for f in reg.fields):
                continue
            await _write(ctx, dut, rng, reg.offset, 0xFFFF_FFFF)
            model.write(reg.offset, 0xFFFF_FFFF, 0xF)
            data, _ = await _read(ctx, dut, rng, reg.offset)
            assert data == model.read(reg.offset)[1], reg.name
            assert data & ~sum(f.mask for f in reg.fields) == 0, reg.name
        assert (await _read(ctx, dut, rng, regmap.ID))[0] == regmap.MAGIC
    _run(bench, seed)


def test_random_accesses_against_the_model(seed):
    print(f"seed {seed}")
    mapped = [r.offset for r in regmap.REGISTERS]
    status_fields = [(r.name, f) for r in regmap.REGISTERS for f in r.fields if f.kind == "status"]
    w1c_fields = [(r.name, f) for r in regmap.REGISTERS for f in r.fields if f.kind == "w1c"]

    async def bench(ctx, dut, rng):
        model = Model()
        for _ in range(400):
            # hardware inputs change at random
            for reg_name, f in rng.sample(status_fields, 3):
                v = rng.getrandbits(f.width)
                ctx.set(getattr(dut, port_name(reg_name, f.name)), v)
                model.status[reg_name, f.name] = v
            if rng.random() < 0.2:
                reg_name, f = rng.choice(w1c_fields)
                v = rng.getrandbits(f.width) | 1
                setp = getattr(dut, port_name(reg_name, f.name) + "_set")
                ctx.set(setp, v)
                await ctx.tick()
                ctx.set(setp, 0)
                model.value[reg_name, f.name] |= v
            addr = rng.choice(mapped) if rng.random() < 0.9 else rng.randrange(0, 1 << 16, 4)
            if rng.random() < 0.1:
                addr |= rng.randrange(1, 4)              # unaligned: the low bits are ignored
            if rng.random() < 0.5:
                data, strb = rng.getrandbits(32), rng.choice([0xF, 0xF, 0x1, 0x6, 0x8, 0x0])
                resp = await _write(ctx, dut, rng, addr, data, strb)
                want, pulses = model.write(addr, data, strb)
                assert resp == want, hex(addr)
            else:
                data, resp = await _read(ctx, dut, rng, addr)
                want_resp, want = model.read(addr)
                assert (resp, data) == (want_resp, want), f"{addr:#x}: {data:#x} != {want:#x}"
    _run(bench, seed)


def test_doorbell_pulses_once_and_w1c_set_beats_clear(seed):
    async def bench(ctx, dut, rng):
        go = dut.cmd_submit_go
        seen = []
        await _write(ctx, dut, rng, regmap.CMD_SUBMIT, 1)
        # the pulse came and went while the B response was awaited: read it back from history
        # by writing again and watching every cycle
        ctx.set(dut.axil.awaddr, regmap.CMD_SUBMIT)
        ctx.set(dut.axil.wdata, 1)
        ctx.set(dut.axil.wstrb, 0xF)
        ctx.set(dut.axil.awvalid, 1)
        ctx.set(dut.axil.wvalid, 1)
        ctx.set(dut.axil.bready, 1)
        for _ in range(6):
            await ctx.tick()
            seen.append(ctx.get(go))
            if ctx.get(dut.axil.awready):
                ctx.set(dut.axil.awvalid, 0)
                ctx.set(dut.axil.wvalid, 0)
        ctx.set(dut.axil.awvalid, 0)
        ctx.set(dut.axil.wvalid, 0)
        assert seen.count(1) == 1, seen
        assert (await _read(ctx, dut, rng, regmap.CMD_SUBMIT))[0] == 0   # write-only
        # a write of 0 pulses nothing
        seen.clear()
        await _write(ctx, dut, rng, regmap.CMD_SUBMIT, 0)
        # set DONE, then a clearing write racing a new set keeps it set
        ctx.set(dut.irq_status_done_set, 1)
        await ctx.tick()
        ctx.set(dut.irq_status_done_set, 0)
        assert ctx.get(dut.irq_status_done) == 1
        await _write(ctx, dut, rng, regmap.IRQ_STATUS, 1)
        assert ctx.get(dut.irq_status_done) == 0
        ctx.set(dut.irq_status_done_set, 1)
        bus = dut.axil
        ctx.set(bus.awaddr, regmap.IRQ_STATUS)
        ctx.set(bus.wdata, 1)
        ctx.set(bus.wstrb, 0xF)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wvalid, 1)
        await ctx.tick().until(bus.awready)
        ctx.set(bus.awvalid, 0)
        ctx.set(bus.wvalid, 0)
        ctx.set(dut.irq_status_done_set, 0)
        ctx.set(bus.bready, 1)
        await ctx.tick().until(bus.bvalid)
        assert ctx.get(dut.irq_status_done) == 1
    _run(bench, seed)


def test_bad_addr_width():
    with pytest.raises(ValueError, match="addr_width"):
        CSRBlock(addr_width=4)
