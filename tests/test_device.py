"""The register-level driver on the Verilated top and over mmap'ed files.

The ``sim`` transport runs the generated Verilog through a compiled Verilator
harness; every result is compared with the golden model, step by step.
"""

import numpy as np
import pytest

from hotline import regmap
from hotline.config import HotlineConfig
from hotline.host.device import Device, DeviceError, MMIOTransport
from hotline.host.popularity import PopularityCounter
from hotline.regmap import Opcode, Status

CFG = HotlineConfig().replace(
    gather={"data_bits": 64},
    counter={"log2_counters": 9, "banks": 2, "hh_sets": 16, "hh_ways": 2, "threshold": 3})


@pytest.fixture(scope="module")
def sim():
    from hotline.host.sim import SimTop
    top = SimTop(CFG, mem_bytes=1 << 20)
    yield top
    top.close()


def zipf(rng, n, a=1.2):
    t = rng.integers(0, CFG.keys.tables, n, dtype=np.uint64)
    r = np.minimum(rng.zipf(a, n) - 1, 2**32 - 1).astype(np.uint64)
    return t << np.uint64(32) | r


@pytest.mark.cosim
def test_sim_learn_readout_estimate_equal_golden(sim, seed):
    rng = np.random.default_rng(seed)
    dev = Device(sim, CFG)
    dev.clear()
    golden = PopularityCounter(CFG)
    for step in range(4):
        keys = zipf(rng, int(rng.integers(100, 1500)))
        assert dev.learn(keys) == keys.size
        golden.learn(keys)
        valid, hk, hc = dev.table()
        gv, gk, gc = (a.ravel() for a in golden.table())
        assert np.array_equal(valid, gv) and np.array_equal(hk[valid], gk[gv]) \
            and np.array_equal(hc[valid], gc[gv]), f"step {step}: heavy hitters differ"
        probe = np.unique(keys)
        assert np.array_equal(dev.estimate(probe), golden.estimate(probe).astype(np.uint64))
    perf = dev.perf()
    assert perf["cycles"] > 0 and perf["axi_rd_beats"] > 0 and perf["counter_busy"] > 0
    # bad input: a key out of range is reported, a queue overflow raises
    with pytest.raises(DeviceError, match="out of range"):
        dev.learn(np.array([CFG.keys.tables << 32], dtype=np.uint64))
    with pytest.raises(DeviceError, match="needs .* bytes"):
        dev.learn(np.zeros(sim.mem.size, dtype=np.uint64))
    done = dev.command(Opcode.NOP)
    assert done.status == Status.OK
    with pytest.raises(DeviceError, match="BAD_OPCODE"):
        dev.command(0x5A)


@pytest.mark.cosim
def test_sim_classify_finishes_beside_a_scatter(sim, seed):
    """A CLASSIFY submitted behind a long SCATTER runs while the DMA moves the rows: its
    completion comes first and is handed to its own waiter (the scatter's is kept for
    its), the results equal the golden model's, and a GATHER after the scatter reads the
    rows it wrote."""
    from hotline.host.hotmap import HotMap
    from hotline.host.reorder import classify
    rng = np.random.default_rng(seed)
    dev = Device(sim, CFG, scratch_bytes=1 << 16)
    dev.clear()
    golden = PopularityCounter(CFG)
    stream = zipf(rng, 800, a=1.3)
    dev.learn(stream)
    golden.learn(stream)
    hm = HotMap.build(CFG, golden.hot_set(1 << 20, 1))
    dev.load_hotmap(hm.image)
    # 4 tables of 64 rows of 512 bytes; the DMA's key list and staging apart from scratch
    ops, tabs, stage, stage2 = 0x10000, 0x20000, 0x40000, 0x60000
    rows_n, rb, n_tab = 64, 512, 4
    base = sim.mem_base
    bases = np.array([base + tabs + t * rows_n * rb for t in range(n_tab)], dtype=np.uint64)
    sim.mem[tabs:tabs + n_tab * rows_n * rb] = rng.integers(0, 256, n_tab * rows_n * rb, dtype=np.uint8)
    dev.set_tables(bases, np.full(n_tab, rb), np.full(n_tab, rows_n), rb, at=ops)
    flat = rng.permutation(n_tab * rows_n)
    t_of, r_of = flat // rows_n, flat % rows_n
    mkeys = t_of.astype(np.uint64) << np.uint64(32) | r_of.astype(np.uint64)
    rows_new = rng.integers(0, 256, (mkeys.size, rb), dtype=np.uint8)
    sim.mem[stage:stage + rows_new.size] = rows_new.ravel()
    scatter = dev.start_move(Opcode.SCATTER, mkeys, base + stage, at=ops)
    s_tag = scatter[1]
    keys = zipf(rng, 8 * CFG.reorder.keys_per_sample, a=1.6).reshape(8, -1)
    cb, done = dev.classify(keys)
    want = classify(CFG, hm, keys)
    for f in ("popular", "non_popular", "hot", "index", "cold_keys"):
        assert np.array_equal(np.asarray(getattr(cb, f)), np.asarray(getattr(want, f))), f
    assert dev.finish_move(scatter) == mkeys.size
    assert list(dev.finished)[-2:] == [(done[0], Opcode.CLASSIFY), (s_tag, Opcode.SCATTER)], \
        "the classify did not finish while the scatter ran"
    for j, (t, i) in enumerate(zip(t_of, r_of)):
        at = tabs + (t * rows_n + i) * rb
        assert np.array_equal(sim.mem[at:at + rb], rows_new[j]), f"row {j} was not scattered"
    assert dev.move(Opcode.GATHER, mkeys, base + stage2, at=ops) == mkeys.size
    assert np.array_equal(sim.mem[stage2:stage2 + rows_new.size], rows_new.ravel())
    with pytest.raises(DeviceError, match="do not fit"):
        dev.move(Opcode.GATHER, mkeys, base + stage2, at=sim.mem.size - 8)


@pytest.mark.cosim
def test_sim_register_errors(sim):
    from hotline.host.sim import SimError
    with pytest.raises(SimError, match="DECERR"):
        sim.read32(0x008)
    with pytest.raises(DeviceError, match="counter array"):
        Device(sim, CFG.replace(counter={"hh_ways": 4}))


@pytest.mark.cosim
def test_sim_answers_right_after_reset(sim):
    """The simulated top's reset comes from a register, as on a board; reset() waits for it."""
    for _ in range(2):
        sim.reset()
        assert sim.read32(regmap.ID) == regmap.MAGIC


def test_sim_verilog_has_the_tops_ports():
    """The simulated module (registered reset) has exactly the top's ports."""
    import re
    from hotline.host.sim import sim_verilog
    from hotline.rtl.export import unit_verilog

    def ports(text):
        head = re.search(r"^module hotline_top\(([^;]*)\);", text, re.M)
        body = text[head.end():text.index("\nendmodule", head.end())]
        decl = {name: (d, width) for d, width, name in
                re.findall(r"^  (input|output) (\[\d+:0\] )?(\S+);", body, re.M)}
        names = [p.strip() for p in head.group(1).replace("\n", "").split(",")]
        return {n: decl[n] for n in names}

    sim_ports, top_ports = ports(sim_verilog(CFG)), ports(unit_verilog("top", CFG, "hotline_top"))
    assert "rst" in sim_ports and len(sim_ports) > 50
    assert sim_ports == top_ports


def test_mmio_transport_over_files(tmp_path):
    """The mmap transport reads and writes the bytes of its files, little-endian words."""
    regs = tmp_path / "resource0"
    regs.write_bytes(bytes(1 << regmap.ADDRESS_BITS))
    mem = tmp_path / "dma"
    mem.write_bytes(bytes(4096))
    t = MMIOTransport(str(regs), str(mem), mem_base=0x1000_0000)
    t.write32(regmap.CMD_COUNT, 0xDEADBEEF)
    assert t.read32(regmap.CMD_COUNT) == 0xDEADBEEF
    t.mem[8:16] = np.arange(8, dtype=np.uint8)
    t.close()
    raw = regs.read_bytes()
    assert raw[regmap.CMD_COUNT:regmap.CMD_COUNT + 4] == (0xDEADBEEF).to_bytes(4, "little")
    assert mem.read_bytes()[8:16] == bytes(range(8))
    # a register file holding an ID other than the accelerator's is refused
    t = MMIOTransport(str(regs), str(mem))
    with pytest.raises(DeviceError, match="no Hotline accelerator"):
        Device(t, CFG)
    t.write32(regmap.ID, regmap.MAGIC)
    with pytest.raises(DeviceError, match="counter array"):
        Device(t, CFG)
    t.close()
    with pytest.raises(DeviceError, match="cannot open"):
        MMIOTransport(str(tmp_path / "nope"), str(mem))
