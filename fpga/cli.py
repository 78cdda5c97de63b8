"""``hotline fpga``: board builds, their reports, and Xilinx build plans."""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["add_fpga_parser"]


def _cmd_build(args) -> int:
    from ..config import HotlineConfig
    from .boards import BOARDS
    from .build import build
    from .report import format_reports
    if args.board not in BOARDS and args.board != "ooc":
        raise ValueError(f"unknown board {args.board!r} (known: {', '.join(BOARDS)}, or ooc)")
    config = HotlineConfig.load(args.config) if args.config else None
    out = Path(args.output or f"build/fpga/{args.profile}-{args.board}-{args.unit}")
    rep = build(board=args.board, unit=args.unit, profile=args.profile, config=config,
                out_dir=out, clock_mhz=args.clock, seed=args.seed, router=args.router,
                log=lambda msg: print(msg, file=sys.stderr))
    rep["_path"] = str(out)
    print(format_reports([rep]))
    print(f"bitstream: {rep['bitstream'] or 'none (out of context)'}\n"
          f"report: {out / 'report.json'}", file=sys.stderr)
    if not rep["timing_met"]:
        print("hotline fpga build: timing NOT met at the profile's clock", file=sys.stderr)
    return 0


def _cmd_report(args) -> int:
    from .report import find_reports, format_reports
    reports = find_reports(args.path)
    if args.json:
        for r in reports:
            r.pop("_path", None)
        print(json.dumps(reports, indent=2))
    else:
        print(format_reports(reports))
    return 0


def _cmd_vivado_plan(args) -> int:
    from ..config import HotlineConfig
    from .xilinx import synth_xilinx, vivado_plan
    config = HotlineConfig.load(args.config) if args.config else None
    out = Path(args.output or f"build/fpga/{args.profile}-vivado-{args.unit}")
    info = vivado_plan(profile=args.profile, out_dir=out, unit=args.unit, config=config)
    print(f"Vivado build plan for {info['board']} ({info['device']}) at {info['clock_mhz']} MHz "
          f"in {out}: {', '.join(info['files'])} (generated only; run build_top.sh where "
          f"Vivado is installed)")
    if args.synth:
        units = ("counter", "reorder", "gather") if args.unit == "all" else (args.unit,)
        res = synth_xilinx(profile=args.profile, out_dir=out / "synth_xilinx", units=units,
                           config=config, log=lambda msg: print(msg, file=sys.stderr))
        keys = ("lut", "ff", "bram36", "bram18", "uram", "dsp", "lutram")
        print("| unit | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 1))
        for name, entry in [*res["units"].items(), ("total", res["total"])]:
            print(f"| {name} | " + " | ".join(f"{entry[k]:,}" for k in keys) + " |")
    return 0


def _cmd_selftest(args) -> int:
    import asyncio

    from ..config import HotlineConfig
    from ..host.selftest import AsyncTransport, SelfTestError, run_selftest
    from ..host.transport import UartTransport
    from ..profiles import load_profile
    cfg = HotlineConfig.load(args.config) if args.config else load_profile(args.profile).config
    try:
        port = UartTransport.open(args.port, args.baud, timeout=args.timeout)
    except OSError as exc:                 # pyserial's SerialException is an OSError
        raise RuntimeError(f"cannot open {args.port}: {str(exc).splitlines()[0]}") from None
    with port as t:
        try:
            report = asyncio.run(run_selftest(AsyncTransport(t), cfg, keys=args.keys,
                                              seed=args.seed))
        except SelfTestError as exc:
            print(f"hotline fpga selftest: FAILED: {exc}", file=sys.stderr)
            return 1
    print(json.dumps(report))
    return 0


def add_fpga_parser(sub) -> None:
    from ..profiles import profile_names
    from .boards import BOARDS
    from .build import DEFAULT_ROUTER, ROUTERS, UNIT_CHOICES
    p = sub.add_parser("fpga", help="FPGA builds (open ECP5 flow) and their reports",
                       description="Build bitstreams with amaranth-boards and the open ECP5 "
                                   "tools from PyPI, and print their reports.")
    fsub = p.add_subparsers(dest="fpga_command", metavar="SUBCOMMAND", required=True)

    b = fsub.add_parser("build", help="build a board bitstream and its JSON report",
                        description="Build the units (or the whole accelerator) for a board. "
                                    "Writes top.bit and report.json (post-route Fmax, "
                                    "utilisation, tool versions, wall time).")
    b.add_argument("--profile", default="ecp5-85f", choices=profile_names(),
                   help="hardware profile: sizes, target clock, utilisation limit "
                        "(default ecp5-85f)")
    b.add_argument("-c", "--config", metavar="FILE",
                   help="YAML config whose sizes replace the profile's (clock and limits "
                        "stay the profile's)")
    b.add_argument("--board", default="ulx3s-85f", metavar="BOARD",
                   help=f"board: {', '.join(BOARDS)}, or ooc (one unit out of context on the "
                        f"profile's part, no bitstream) (default ulx3s-85f)")
    b.add_argument("--unit", default="all", choices=sorted(set(UNIT_CHOICES) | {"uart_bridge"}),
                   help="one unit, or all of them side by side (default all)")
    b.add_argument("--clock", type=float, metavar="MHZ",
                   help="clock to constrain (default: the profile's)")
    b.add_argument("--seed", type=int, default=1, help="nextpnr seed (default 1)")
    b.add_argument("--router", default=DEFAULT_ROUTER, choices=ROUTERS,
                   help=f"nextpnr router (default {DEFAULT_ROUTER})")
    b.add_argument("-o", "--output", metavar="DIR",
                   help="build folder (default build/fpga/PROFILE-BOARD-UNIT)")
    b.set_defaults(func=_cmd_build)

    r = fsub.add_parser("report", help="print build reports as a table",
                        description="Print every report.json at or under PATH as a table.")
    r.add_argument("path", nargs="?", default="build/fpga",
                   help="a report.json or a folder to search (default build/fpga)")
    r.add_argument("--json", action="store_true", help="print the reports as JSON")
    r.set_defaults(func=_cmd_report)

    t = fsub.add_parser("selftest", help="exercise a board running the self-test image over UART",
                        description="Talk to a board programmed with the self-test image "
                                    "('hotline fpga build --unit selftest') over its USB-UART: "
                                    "learn keys, read the heavy-hitter table and estimates back "
                                    "and compare them with the golden model. Needs pyserial.")
    t.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB0")
    t.add_argument("--baud", type=int, default=115200, help="UART rate (default 115200)")
    t.add_argument("--profile", default="ecp5-85f", choices=profile_names(),
                   help="the profile the image was built with (default ecp5-85f)")
    t.add_argument("-c", "--config", metavar="FILE", help="the config the image was built with")
    t.add_argument("--keys", type=int, default=48, help="keys to learn (default 48)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--timeout", type=float, default=1.0, help="seconds per register access")
    t.set_defaults(func=_cmd_selftest)

    xilinx_profiles = [n for n in profile_names() if n != "ecp5-85f"]
    v = fsub.add_parser("vivado-plan", help="write a Vivado build plan (Vivado is not run)",
                        description="Write the Vivado project script, XDC and Verilog for the "
                                    "profile's Xilinx board, and optionally the open toolchain's "
                                    "synth_xilinx utilisation of each unit.")
    v.add_argument("--profile", default=xilinx_profiles[0] if xilinx_profiles else None,
                   choices=xilinx_profiles, help="a Xilinx profile")
    v.add_argument("-c", "--config", metavar="FILE", help="YAML config replacing the profile's sizes")
    v.add_argument("--unit", default="all", choices=UNIT_CHOICES)
    v.add_argument("--synth", action="store_true",
                   help="also run yosys synth_xilinx on each unit and print its utilisation")
    v.add_argument("-o", "--output", metavar="DIR",
                   help="output folder (default build/fpga/PROFILE-vivado-UNIT)")
    v.set_defaults(func=_cmd_vivado_plan)
