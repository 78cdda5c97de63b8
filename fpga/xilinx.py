"""The datacenter profile's Xilinx side: a Vivado build plan and open-tool utilisation.

Nothing here runs Vivado.  :func:`vivado_plan` writes what a Vivado user runs
(``build_top.sh`` calling ``vivado -mode batch -source top.tcl``, the XDC, the
Verilog of the whole design) for the profile's board through amaranth-boards;
:func:`synth_xilinx` runs yosys's ``synth_xilinx`` on each unit's Verilog and
reports LUT, FF, block RAM, UltraRAM and DSP counts, the open toolchain's view
of the same design (no place-and-route, so no Fmax).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from ..config import HotlineConfig
from ..profiles import Profile, load_profile
from .boards import toolchain_env
from .harness import PortHarness

__all__ = ["XILINX_BOARDS", "mmcm_settings", "XilinxBoardTop", "vivado_plan", "synth_xilinx",
           "XILINX_CELLS"]


def _kcu105():
    from amaranth_boards.kcu105 import KCU105Platform
    return KCU105Platform


#: Board name -> platform class factory (Vivado toolchain).
XILINX_BOARDS = {"kcu105": _kcu105}

#: Report key -> yosys cell types counted for it.
XILINX_CELLS = {
    "lut": ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6"),
    "ff": ("FDRE", "FDSE", "FDCE", "FDPE"),
    "bram36": ("RAMB36E2", "RAMB36E1"),
    "bram18": ("RAMB18E2", "RAMB18E1"),
    "uram": ("URAM288", "URAM288_BASE"),
    "dsp": ("DSP48E2", "DSP48E1"),
    "lutram": ("RAM32M", "RAM32M16", "RAM64M", "RAM64M8", "RAM32X1D", "RAM64X1D",
               "RAM128X1D", "RAM256X1D", "RAM64X1S", "RAM32X1S", "RAM128X1S", "RAM256X1S"),
    "srl": ("SRL16E", "SRLC32E"),
}


def mmcm_settings(f_in_mhz: float, f_out_mhz: float, vco=(800.0, 1200.0)):
    """``(mult, divclk, out_div)`` of an UltraScale MMCM giving ``f_out_mhz`` from ``f_in_mhz``."""
    best = None
    for d in range(1, 11):
        for mult in range(2, 65):
            f_vco = f_in_mhz * mult / d
            if not vco[0] <= f_vco <= vco[1]:
                continue
            for o in range(1, 129):
                err = abs(f_vco / o - f_out_mhz)
                if best is None or (err, -f_vco) < best[0]:
                    best = ((err, -f_vco), (mult, d, o))
    if best is None or best[0][0] > 0.005 * f_out_mhz:
        raise ValueError(f"no MMCM setting gives {f_out_mhz} MHz from {f_in_mhz} MHz")
    return best[1]


class XilinxBoardTop(Elaboratable):
    """The units on a Xilinx board: board clock through an MMCM, LFSR-fed harness, one LED."""

    def __init__(self, units: dict, clock_mhz: float):
        self.harness = PortHarness(units, source="lfsr")
        self.clock_mhz = clock_mhz
        self.mmcm = None

    def elaborate(self, platform):
        m = Module()
        clk_io = platform.request(platform.default_clk, dir="-")
        m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_io)
        f_in = platform.default_clk_frequency / 1e6
        mult, div, out = self.mmcm = mmcm_settings(f_in, self.clock_mhz)
        m.domains.sync = ClockDomain("sync")
        fb = Signal(name="mmcm_fb")
        clk0 = Signal(name="mmcm_clkout0")
        locked = Signal(name="mmcm_locked")
        m.submodules.mmcm = Instance(
            "MMCME3_BASE",
            p_CLKIN1_PERIOD=round(1000 / f_in, 3), p_CLKFBOUT_MULT_F=float(mult),
            p_DIVCLK_DIVIDE=div, p_CLKOUT0_DIVIDE_F=float(out),
            i_CLKIN1=clk_buf.i, i_CLKFBIN=fb, o_CLKFBOUT=fb, o_CLKOUT0=clk0,
            o_LOCKED=locked, i_RST=0, i_PWRDWN=0)
        m.submodules.bufg = Instance("BUFG", i_I=clk0, o_O=ClockSignal("sync"))
        # Vivado derives the MMCM output clock from the board clock's constraint
        m.submodules.reset_sync = ResetSynchronizer(~locked, domain="sync")
        m.submodules.harness = self.harness
        led = platform.request("led", 0)
        m.d.comb += led.o.eq(self.harness.so)
        return m


def _units(unit: str, cfg: HotlineConfig) -> dict:
    from .build import _units as units
    return units(unit, cfg)


def vivado_plan(*, profile: str | Profile, out_dir, unit: str = "all",
                config: HotlineConfig | None = None) -> dict:
    """Write the Vivado build plan of ``unit`` for the profile's Xilinx board; never runs Vivado.

    Returns ``{"dir", "files", "board", "device", "clock_mhz", "mmcm"}``.
    """
    prof = load_profile(profile) if isinstance(profile, str) else profile
    if prof.target.vendor != "xilinx":
        raise ValueError(f"profile {prof.name!r} targets {prof.target.device}, not a Xilinx part")
    boards = [b for b in prof.target.boards if b in XILINX_BOARDS]
    if not boards:
        raise ValueError(f"profile {prof.name!r} names no Xilinx board this project knows "
                         f"(known: {', '.join(XILINX_BOARDS)})")
    cfg = prof.config if config is None else config
    plat = XILINX_BOARDS[boards[0]]()(toolchain="Vivado")
    top = XilinxBoardTop(_units(unit, cfg), prof.target.clock_mhz)
    plan = plat.build(top, name="top", do_build=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan.extract(str(out))
    info = {"dir": str(out), "files": sorted(p.name for p in out.iterdir()), "board": boards[0],
            "device": f"{plat.device}-{plat.package}-{plat.speed}",
            "clock_mhz": prof.target.clock_mhz,
            "mmcm": dict(zip(("mult", "divclk", "clkout0_div"), top.mmcm)),
            "note": "generated only: Vivado was not run"}
    (out / "plan.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def _parse_stat(log_text: str) -> dict:
    """Cell counts of the last module that yosys ``stat`` printed in ``log_text``."""
    start = log_text.rfind("\n=== ")
    section = log_text[start:] if start >= 0 else log_text
    counts = {}
    for m in re.finditer(r"^\s+(\d+)\s+([A-Za-z][A-Za-z0-9_]*)\s*$", section, re.M):
        counts[m.group(2)] = counts.get(m.group(2), 0) + int(m.group(1))
    return counts


def synth_xilinx(*, profile: str | Profile, out_dir, units=("counter", "reorder", "gather"),
                 config: HotlineConfig | None = None, family: str | None = None,
                 log=print) -> dict:
    """yosys ``synth_xilinx`` utilisation of each unit for the profile's Xilinx family.

    Writes ``synth_xilinx.json`` in ``out_dir``; returns ``{unit: {key: count}}``
    with the keys of :data:`XILINX_CELLS`, plus wall time and the yosys version.
    """
    from ..rtl import unit_verilog
    prof = load_profile(profile) if isinstance(profile, str) else profile
    fam = family or prof.target.family
    cfg = prof.config if config is None else config
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = toolchain_env()
    result = {"profile": prof.name, "family": fam, "device": prof.target.device, "units": {}}
    for name in units:
        vfile = out / f"hotline_{name}.v"
        vfile.write_text(unit_verilog(name, cfg))
        t0 = time.time()
        script = (f"read_verilog -sv {vfile.name}; synth_xilinx -flatten -noiopad -family {fam} "
                  f"-top hotline_{name}; stat")
        proc = subprocess.run([env["YOSYS"], "-q", "-l", f"{name}.log", "-p", script],
                              cwd=out, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"synth_xilinx of {name} failed; see {out / (name + '.log')}")
        counts = _parse_stat((out / f"{name}.log").read_text())
        entry = {key: sum(counts.get(c, 0) for c in cells) for key, cells in XILINX_CELLS.items()}
        entry["wall_s"] = round(time.time() - t0, 1)
        result["units"][name] = entry
        log(f"synth_xilinx {name}: {entry}")
    total = {k: sum(u[k] for u in result["units"].values()) for k in XILINX_CELLS}
    result["total"] = total
    ver = subprocess.run([env["YOSYS"], "-V"], capture_output=True, text=True, env=env)
    result["yosys"] = ver.stdout.strip()
    (out / "synth_xilinx.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
