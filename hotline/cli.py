"""The ``hotline`` command line.

Subcommands:

``hotline verilog UNIT``
    Write the Verilog of one unit for a config file (or the default config).
``hotline config``
    Print the default config as YAML (a starting point for ``--config``).
``hotline learn``
    A short popularity-learning demo: synthetic Criteo-shaped Zipf keys go
    through the counter array's golden model and the hot set it finds is
    compared with the exact top-N.
``hotline train``
    DLRM training with the Hotline pipeline and its baselines.
``hotline fpga build|report|vivado-plan``
    Board builds with the open ECP5 flow, their reports, Xilinx build plans.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ConfigError, HotlineConfig
from .profiles import add_config_arguments, config_from_args

__all__ = ["main", "build_parser"]


def _cmd_verilog(args) -> int:
    from .rtl import UNITS, unit_verilog
    cfg = config_from_args(args)
    units = list(UNITS) if args.unit == "all" else [args.unit]
    out = Path(args.output) if args.output else None
    for unit in units:
        text = unit_verilog(unit, cfg)
        if out is None:
            sys.stdout.write(text)
            continue
        as_dir = out.is_dir() or len(units) > 1 or str(args.output).endswith(("/", "\\"))
        target = out / f"hotline_{unit}.v" if as_dir else out
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(f"wrote {target} ({len(text.splitlines())} lines)", file=sys.stderr)
    return 0


def _cmd_config(args) -> int:
    cfg = config_from_args(args)
    sys.stdout.write(cfg.to_yaml())
    return 0


def _cmd_learn(args) -> int:
    from .host.learn_demo import run_learn_demo
    cfg = config_from_args(args)
    return run_learn_demo(cfg, keys=args.keys, zipf_exponent=args.zipf, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline",
        description="Hotline: an open accelerator for training recommendation models. "
                    "Generate the RTL, learn popular embedding rows, train DLRM.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("verilog", help="write the Verilog of a hardware unit",
                       description="Write the Verilog of a hardware unit for a config "
                                   "(default config if none is given).")
    from .rtl import UNITS
    p.add_argument("unit", choices=[*UNITS, "all"], help="which unit ('all' writes every one)")
    add_config_arguments(p)
    p.add_argument("-o", "--output", help="output file, or a folder (default: standard output)")
    p.set_defaults(func=_cmd_verilog)

    p = sub.add_parser("config", help="print a config as YAML (the default one if no file)",
                       description="Print a config as YAML: every size of the accelerator.")
    add_config_arguments(p)
    p.set_defaults(func=_cmd_config)

    p = sub.add_parser("learn", help="popularity-learning demo on synthetic Zipf keys",
                       description="Feed synthetic Criteo-shaped Zipf keys through the popularity "
                                   "counter array's golden model and compare the hot set it finds "
                                   "with the exact top-N.")
    add_config_arguments(p)
    p.add_argument("--keys", type=int, default=1_000_000, help="keys to learn from (default 1e6)")
    p.add_argument("--zipf", type=float, default=1.05, help="Zipf exponent (default 1.05)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=_cmd_learn)

    from .fpga.cli import add_fpga_parser
    add_fpga_parser(sub)

    try:
        from .host import train_cli
    except ImportError:
        train_cli = None
    if train_cli is not None:
        p = sub.add_parser("train", help="train DLRM: hybrid baseline vs the Hotline pipeline",
                           description="Train DLRM with the Hotline pipeline and its baselines "
                                       "(hybrid, device). With no arguments: a short run on "
                                       "synthetic Criteo-shaped data, both modes side by side.")
        train_cli.add_arguments(p)
        p.set_defaults(func=train_cli.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ConfigError, ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        print(f"hotline {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
