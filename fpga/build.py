"""Board builds with the open ECP5 flow: bitstream plus a JSON report.

``hotline fpga build --profile ecp5-85f --board ulx3s-85f --unit all`` builds a
board top (:class:`BoardTop`: the units under a :class:`~.harness.PortHarness`,
the board oscillator through an ECP5 PLL to the profile's clock) with
amaranth-boards and the PyPI tools, then writes ``report.json`` beside the
bitstream: post-route Fmax per clock against its constraint, used/available
LUT4 (TRELLIS_COMB), FF, DP16KD, MULT18X18D and distributed RAM, the tool
versions, and wall times.
"""

from __future__ import annotations

import json
import os
import platform as _platform
import re
import subprocess
import time
from pathlib import Path

from amaranth.hdl import (ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module,
                          ResetSignal, Signal)
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from ..config import HotlineConfig
from ..profiles import Profile, load_profile
from .boards import BOARDS, board_platform, toolchain_env
from .harness import PortHarness
from .pll import ecp5_pll, ecp5_pll_settings

__all__ = ["UNIT_CHOICES", "BoardTop", "build", "parse_nextpnr_report", "parse_nextpnr_globals",
           "summarize_critical_paths", "RESOURCE_KEYS", "ROUTERS", "DEFAULT_ROUTER"]

UNIT_CHOICES = ("counter", "reorder", "gather", "all", "top", "selftest")

#: nextpnr-ecp5's routers.  router1 (nextpnr's own default) is the default here.  With the
#: reset on a global (:class:`BoardTop`) router1 routes the test suite's small top in 63 s
#: and router2 in 84 s (it was 928 to 1,623 s of router1 with the reset in the fabric); on
#: the counter array out of context router2's overuse stopped falling (about 7k wires after
#: 36 iterations) where router1 finishes.
ROUTERS = ("router1", "router2")
DEFAULT_ROUTER = "router1"

#: Report key -> nextpnr utilisation cell type.
RESOURCE_KEYS = {
    "lut4": "TRELLIS_COMB",
    "ff": "TRELLIS_FF",
    "dp16kd": "DP16KD",
    "mult18": "MULT18X18D",
    "dram": "TRELLIS_RAMW",
    "io": "TRELLIS_IO",
    "pll": "EHXPLLL",
}


def _units(unit: str, cfg: HotlineConfig) -> dict:
    from ..rtl import build_unit
    if unit not in UNIT_CHOICES or unit == "selftest":
        raise ValueError(f"unknown unit {unit!r}; choose one of: "
                         f"{', '.join(u for u in UNIT_CHOICES if u != 'selftest')}")
    names = ("counter", "reorder", "gather") if unit == "all" else (unit,)
    return {name: build_unit(name, cfg) for name in names}


class BoardTop(Elaboratable):
    """The units on a board: clock through a PLL, reset held until lock, UART pins as I/O.

    The reset leaves its synchronizer through a ``DCCA`` onto one of the ECP5's global
    networks, which reach every slice's LSR.  Left in the fabric, a net that reaches
    every flip-flop was the most congested net of the design (nextpnr router2's
    heatmap): router1 spent 15 to 27 minutes on the test suite's small top (1 minute
    with the DCCA), and the whole ``ecp5-85f`` accelerator had not routed after 53
    minutes (with the DCCA it routes: README, "Measured figures").

    Parameters
    ----------
    units : dict of str -> wiring.Component
    clock_mhz : float
        The ``sync`` clock; the board oscillator feeds an ``EHXPLLL`` unless it
        already runs at this frequency.
    """

    def __init__(self, units: dict | None, clock_mhz: float, *, selftest=None):
        self.harness = PortHarness(units) if selftest is None else None
        self.selftest = selftest
        self.clock_mhz = clock_mhz
        self.pll = None

    def elaborate(self, platform):
        m = Module()
        clk_io = platform.request(platform.default_clk, dir="-")
        m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_io)
        f_in = platform.default_clk_frequency / 1e6
        m.domains.sync = ClockDomain("sync")
        locked = Signal()
        if abs(f_in - self.clock_mhz) < 1e-6:
            m.d.comb += [ClockSignal("sync").eq(clk_buf.i), locked.eq(1)]
        else:
            self.pll = ecp5_pll_settings(f_in, self.clock_mhz)
            inst, pll_locked = ecp5_pll(self.pll, clk_buf.i)
            m.submodules.pll = inst
            m.d.comb += locked.eq(pll_locked)
        # The reset onto a global network (see the class docstring).
        m.domains.rsync = ClockDomain("rsync", local=True)
        m.d.comb += ClockSignal("rsync").eq(ClockSignal("sync"))
        m.submodules.reset_sync = ResetSynchronizer(~locked, domain="rsync")
        m.submodules.reset_dcc = Instance("DCCA", i_CLKI=ResetSignal("rsync"), i_CE=Const(1),
                                          o_CLKO=ResetSignal("sync"))

        uart = platform.request("uart", 0)
        if self.selftest is not None:
            m.submodules.core = core = self.selftest
            m.d.comb += [core.rx.eq(uart.rx.i), uart.tx.o.eq(core.tx)]
            return m
        m.submodules.harness = self.harness
        m.d.comb += [self.harness.si.eq(uart.rx.i), uart.tx.o.eq(self.harness.so)]
        return m


def _fits(parsed: dict, limit: float) -> bool:
    """LUT4, FF, DP16KD and MULT18X18D each within ``limit`` of the part."""
    return all(r["fraction"] <= limit for k, r in parsed["resources"].items()
               if k in ("lut4", "ff", "dp16kd", "mult18"))


def _tools(env: dict) -> dict:
    return {"yosys": _tool_version(env, "YOSYS", "-V"),
            "nextpnr": _tool_version(env, "NEXTPNR_ECP5", "--version"),
            "amaranth": _amaranth_version(), "python": _platform.python_version()}


def _tool_version(env: dict, var: str, flag: str) -> str:
    try:
        out = subprocess.run([env[var], flag], capture_output=True, text=True, timeout=120,
                             env=env)
    except (OSError, subprocess.SubprocessError) as exc:  # pragma: no cover
        return f"unknown ({exc})"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[-1].strip() if text else "unknown"


_GLOBAL_RE = re.compile(r"routing clock net (\S+) using global (\d+)")


def parse_nextpnr_globals(log_path) -> dict:
    """The nets nextpnr routed on global networks, from its log: ``{net: global index}``.

    Read off the ``routing clock net NAME using global N`` lines (nextpnr-ecp5 calls
    every net on a global a clock, the reset too).  An absent log gives ``{}``.
    """
    path = Path(log_path)
    if not path.is_file():
        return {}
    found = {}
    for line in path.read_text(errors="replace").splitlines():
        m = _GLOBAL_RE.search(line)
        if m:
            found[m.group(1)] = int(m.group(2))
    return found


def _pin(segment: dict, side: str) -> str:
    """``cell.port`` of one end (``"from"`` or ``"to"``) of a critical-path segment."""
    e = segment.get(side) or {}
    return f"{e.get('cell', '?')}.{e.get('port', '?')}"


def summarize_critical_paths(data: dict, routes: int = 4) -> list[dict]:
    """Each clock's critical path from nextpnr's ``--report`` JSON, in a few numbers.

    Returns one ``{"from", "to", "delay_ns", "logic_ns", "routing_ns", "cells",
    "start", "end", "longest_routes"}`` per entry of ``critical_paths``: the path's
    total delay split into cell delays (clock-to-out, logic, setup) and routing,
    the number of cells it passes, its start and end as ``cell.port``, and the
    ``routes`` longest routes as ``[net, ns, from-loc, to-loc]`` (the locations
    show how far a route crosses the chip).  An absent list gives ``[]``.
    """
    out = []
    for cp in data.get("critical_paths", []) or []:
        segs = cp.get("path", []) or []
        if not segs:
            continue
        logic = sum(float(s.get("delay", 0)) for s in segs if s.get("type") != "routing")
        rts = [s for s in segs if s.get("type") == "routing"]
        routing = sum(float(s.get("delay", 0)) for s in rts)
        longest = sorted(rts, key=lambda s: -float(s.get("delay", 0)))[:routes]
        out.append({
            "from": cp.get("from"), "to": cp.get("to"),
            "delay_ns": round(logic + routing, 3), "logic_ns": round(logic, 3),
            "routing_ns": round(routing, 3),
            "cells": len({(s.get("to") or {}).get("cell") for s in segs}),
            "start": _pin(segs[0], "from"), "end": _pin(segs[-1], "to"),
            "longest_routes": [[s.get("net", "?"), round(float(s.get("delay", 0)), 3),
                                (s.get("from") or {}).get("loc"), (s.get("to") or {}).get("loc")]
                               for s in longest],
        })
    return out


def parse_nextpnr_report(path) -> dict:
    """Fmax and utilisation from nextpnr's ``--report`` JSON.

    Returns ``{"clocks": {name: {"achieved_mhz", "constraint_mhz", "met"}},
    "resources": {key: {"used", "available", "fraction"}}, "timing_met": bool,
    "critical_paths": [...]}`` with the keys of :data:`RESOURCE_KEYS` (the paths as
    :func:`summarize_critical_paths` gives them).
    """
    data = json.loads(Path(path).read_text())
    clocks = {}
    for name, f in data.get("fmax", {}).items():
        achieved, constraint = float(f["achieved"]), float(f["constraint"])
        clocks[name] = {"achieved_mhz": round(achieved, 2), "constraint_mhz": round(constraint, 2),
                        "met": achieved >= constraint}
    util = data.get("utilization", {})
    resources = {}
    for key, cell in RESOURCE_KEYS.items():
        u = util.get(cell, {"used": 0, "available": 0})
        avail = int(u["available"])
        resources[key] = {"used": int(u["used"]), "available": avail,
                          "fraction": round(int(u["used"]) / avail, 4) if avail else 0.0}
    return {"clocks": clocks, "resources": resources,
            "timing_met": bool(clocks) and all(c["met"] for c in clocks.values()),
            "critical_paths": summarize_critical_paths(data)}


def _build_ooc(prof, unit: str, cfg: HotlineConfig, out: Path, clock: float, seed: int,
               router: str, log) -> dict:
    """Out-of-context synthesis and place-and-route of one unit on the profile's part."""
    from ..rtl import UNITS, unit_verilog
    if unit not in UNITS:
        raise ValueError(f"--board ooc builds one unit ({', '.join(UNITS)}), not {unit!r}")
    env = toolchain_env()
    t = prof.target
    device = {"LFE5U-85F": "--85k", "LFE5UM5G-85F": "--um5g-85k", "LFE5U-45F": "--45k",
              "LFE5U-25F": "--25k"}.get(t.device)
    if device is None:
        raise ValueError(f"no nextpnr-ecp5 device option for {t.device}")
    (out / "unit.v").write_text(unit_verilog(unit, cfg, f"hotline_{unit}"))
    log(f"hotline fpga build: {unit} out of context on {t.device} ({t.package}, speed {t.speed}) "
        f"at {clock:g} MHz in {out}")
    t0 = time.time()
    proc = subprocess.run([env["YOSYS"], "-q", "-l", "yosys.log", "-p",
                           f"read_verilog -sv unit.v; synth_ecp5 -abc9 -top hotline_{unit} "
                           f"-json unit.json; stat"], cwd=out, env=env, capture_output=True,
                          text=True)
    t1 = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"yosys failed; see {out}/yosys.log")
    proc = subprocess.run([env["NEXTPNR_ECP5"], device, "--package", t.package, "--speed", t.speed,
                           "--freq", f"{clock:g}", "--out-of-context", "--timing-allow-fail",
                           "--seed", str(seed), "--router", router,
                           "--json", "unit.json", "--report", "report.json",
                           "--log", "nextpnr.log", "--quiet"],
                          cwd=out, env=env, capture_output=True, text=True)
    t2 = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"nextpnr failed; see {out}/nextpnr.log")
    return {"t": (t0, t1, t2), "env": env,
            "part": {"device": t.device, "package": t.package, "speed": t.speed}}


def build(*, board: str, unit: str = "all", profile: str | Profile = "ecp5-85f",
          config: HotlineConfig | None = None, out_dir="build/fpga", clock_mhz: float | None = None,
          seed: int = 1, router: str = DEFAULT_ROUTER, baud: int = 115200, log=print) -> dict:
    """Build a bitstream for ``unit`` on ``board``; returns (and writes) the report.

    Parameters
    ----------
    board : str
        A key of :data:`~.boards.BOARDS`, or ``"ooc"``: one unit out of context on the
        profile's part (synthesis and place-and-route without pins; no bitstream).
    unit : str
        ``counter``, ``reorder``, ``gather``, ``all`` (the three side by side), ``top``
        (the accelerator top), each under a :class:`~.harness.PortHarness`; or
        ``selftest``: the board self-test image (:mod:`.selftest`: the top, its host
        memory on chip, registers over the board's UART at ``baud``).
    profile : str or Profile
        Supplies the target clock, the utilisation limit and (unless ``config``
        is given) the sizes.
    config : HotlineConfig, optional
        Sizes to build instead of the profile's (for example a small CI config).
    out_dir : path
        Build folder; ``top.bit`` and ``report.json`` land there.
    clock_mhz : float, optional
        Override the profile's clock.
    seed : int
        nextpnr placement seed.
    router : str
        nextpnr's router: ``router1`` (nextpnr's default, and this one's) or ``router2``.
    """
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)}, not {router!r}")
    prof = load_profile(profile) if isinstance(profile, str) else profile
    if prof.target.family != "ecp5":
        raise ValueError(f"profile {prof.name!r} targets {prof.target.device}, not an ECP5; "
                         f"use 'hotline fpga vivado-plan' for Xilinx parts")
    if board not in BOARDS and board != "ooc":
        raise ValueError(f"unknown board {board!r} (known: {', '.join(BOARDS)}, or ooc)")
    cfg = prof.config if config is None else config
    clock = float(prof.target.clock_mhz if clock_mhz is None else clock_mhz)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if board == "ooc":
        ooc = _build_ooc(prof, unit, cfg, out, clock, seed, router, log)
        t0, t1, t2 = ooc["t"]
        parsed = parse_nextpnr_report(out / "report.json")
        limit = prof.target.max_utilisation
        report = {
            "board": "ooc", "board_part": ooc["part"], "profile": prof.name, "unit": unit,
            "units": [unit], "clock_mhz": clock, "pll": None, "harness_bits": None,
            **parsed, "max_utilisation": limit, "fits_profile_limit": _fits(parsed, limit),
            "config": cfg.to_dict(), "tools": _tools(ooc["env"]),
            "wall_s": {"yosys": round(t1 - t0, 1), "nextpnr": round(t2 - t1, 1),
                       "total": round(t2 - t0, 1)},
            "bitstream": None, "seed": seed, "router": router,
            "note": "out of context: no pins, no I/O buffers, no bitstream",
        }
        (out / "report.json").rename(out / "nextpnr_report.json")
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        return report
    env = toolchain_env()
    plat = board_platform(board)
    if unit == "selftest":
        from .selftest import SelfTestCore
        top = BoardTop(None, clock, selftest=SelfTestCore(cfg, clk_hz=int(clock * 1e6),
                                                          baud=baud))
    else:
        top = BoardTop(_units(unit, cfg), clock)

    t0 = time.time()
    plan = plat.build(top, name="top", do_build=False,
                      synth_opts="-abc9",
                      nextpnr_opts=f"--report report.json --timing-allow-fail --seed {seed} "
                                   f"--router {router}")
    plan.extract(str(out))
    script = "build_top.bat" if os.name == "nt" else "build_top.sh"
    log(f"hotline fpga build: {unit} on {board} ({plat.device}, {plat.package}, speed {plat.speed}) "
        f"at {clock:g} MHz in {out}")
    t_start = time.time()
    proc = subprocess.run(["sh", script], cwd=out, env=env, capture_output=True, text=True)
    t_end = time.time()
    (out / "build.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"the FPGA build failed (exit {proc.returncode}); see {out}/build.log: "
                           + " | ".join(tail))

    def mtime(name):
        p = out / name
        return p.stat().st_mtime if p.exists() else t_end
    t_yosys, t_pnr, t_pack = mtime("top.rpt"), mtime("top.tim"), mtime("top.bit")
    parsed = parse_nextpnr_report(out / "report.json")
    limit = prof.target.max_utilisation
    report = {
        "board": board,
        "board_part": {"device": plat.device, "package": plat.package, "speed": plat.speed},
        "profile": prof.name,
        "unit": unit,
        "units": list(top.harness.units) if top.harness else ["selftest"],
        "clock_mhz": clock,
        "pll": None if top.pll is None else {
            "clki_div": top.pll.clki_div, "clkfb_div": top.pll.clkfb_div,
            "clkop_div": top.pll.clkop_div, "f_out_mhz": top.pll.f_out_mhz},
        "harness_bits": ({"in": top.harness.in_bits, "out": top.harness.out_bits}
                         if top.harness else None),
        "baud": baud if unit == "selftest" else None,
        **parsed,
        "globals": parse_nextpnr_globals(out / "top.tim"),
        "max_utilisation": limit,
        "fits_profile_limit": _fits(parsed, limit),
        "config": cfg.to_dict(),
        "tools": _tools(env),
        "wall_s": {"elaborate": round(t_start - t0, 1),
                   "yosys": round(t_yosys - t_start, 1),
                   "nextpnr": round(t_pnr - t_yosys, 1),
                   "ecppack": round(t_pack - t_pnr, 1),
                   "total": round(t_end - t0, 1)},
        "bitstream": str(out / "top.bit"),
        "seed": seed, "router": router,
    }
    (out / "report.json").rename(out / "nextpnr_report.json")
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _amaranth_version() -> str:
    try:
        from importlib.metadata import version
        return version("amaranth")
    except Exception:  # pragma: no cover
        return "unknown"
