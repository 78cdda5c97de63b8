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
    top = SimTop(CFG, mem_bytes=1 << 16)
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
