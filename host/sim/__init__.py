"""The accelerator's generated Verilog as a fast in-process simulator.

:class:`SimTop` Verilates ``hotline_top`` for a config, compiles it with
``harness.cpp`` (an AXI4 memory model whose host memory is one byte array,
and an AXI4-Lite register master) into a shared library, and loads it with
ctypes.  Python sees host memory as a NumPy array (:attr:`SimTop.mem`) with no
copy, reads and writes registers (:meth:`SimTop.read32`,
:meth:`SimTop.write32`) and lets the clock run many cycles per call
(:meth:`SimTop.run`).  It is a register transport like the FPGA's: the
driver's register-level code (:mod:`hotline.host.device`) runs on either.

Builds are cached under ``build/sim/<hash>`` (the hash of the Verilog and the
harness), so a config is compiled once.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
from amaranth.hdl import (ClockDomain, ClockSignal, DomainRenamer, Elaboratable, Module,
                          ResetSignal, Signal)

from ...config import HotlineConfig

__all__ = ["SimTop", "SimError", "build_library", "sim_verilog", "BUILD_ROOT"]

BUILD_ROOT = Path(os.environ.get("HOTLINE_SIM_BUILD", "build/sim"))
HARNESS = Path(__file__).with_name("harness.cpp")
#: Every variable without an initial value starts at zero (``--x-initial unique`` with the
#: default ``+verilator+rand+reset`` of 0), as an ECP5's flip-flops and block RAMs do after
#: configuration; "fast" would leave whatever the heap held, which differs from run to run.
VERILATOR_FLAGS = ("-O3", "--x-assign", "fast", "--x-initial", "unique", "--noassert",
                   "-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC",
                   "-CFLAGS", "-fPIC -O2", "--threads", "1")


class SimError(RuntimeError):
    """The simulation could not be built, or a register access got no answer."""


def _run(cmd, cwd):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise SimError(f"{cmd[0]} failed in {cwd}:\n" + "\n".join(tail))
    return proc


class _RegisteredReset(Elaboratable):
    """The top with its reset taken from a register, as on a board.

    The board builds drive the top's reset from a reset synchronizer's flip-flop
    (``fpga/build.py``); here a single register does the same, so the reset is
    one cycle later than the ``rst`` port.  It matters to Verilator's speed: the
    logic that reads a top-level input is evaluated on every ``eval()`` call
    (twice a cycle), and every register's reset mux reads the reset, so with
    ``rst`` straight from the port most of the design was evaluated twice a cycle.
    """

    def __init__(self, top):
        self.top = top

    def elaborate(self, platform):
        m = Module()
        m.domains.core = core = ClockDomain("core", local=True)
        rst = Signal(init=1)
        m.d.sync += rst.eq(ResetSignal("sync"))
        m.d.comb += [core.clk.eq(ClockSignal("sync")), core.rst.eq(rst)]
        m.submodules.top = DomainRenamer("core")(self.top)
        return m


def sim_verilog(cfg: HotlineConfig) -> str:
    """Verilog of the simulated top (``hotline_top``: the top's ports, registered reset)."""
    from ...rtl.export import build_unit, to_verilog
    top = build_unit("top", cfg)
    return to_verilog(top, "hotline_top", wrapper=_RegisteredReset(top))


def build_library(cfg: HotlineConfig, root: Path | None = None, log=None) -> Path:
    """Verilate and compile the top for ``cfg``; returns the shared library's path."""
    from ...testbench.runner import ensure_verilator
    verilator = ensure_verilator()
    verilog = sim_verilog(cfg)
    data_bytes = cfg.gather.data_bits // 8
    key = hashlib.sha256((verilog + HARNESS.read_text() + str(data_bytes) +
                          " ".join(VERILATOR_FLAGS)).encode()).hexdigest()[:16]
    out = (root or BUILD_ROOT) / key
    lib = out / "libhotline_sim.so"
    if lib.is_file():
        return lib
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "hotline_top.v").write_text(verilog)
    if log:
        log(f"building the simulator in {out} (once per config)")
    _run([verilator, "--cc", "hotline_top.v", "--top-module", "hotline_top", "--prefix", "Vtop",
          "-Mdir", "obj", *VERILATOR_FLAGS], tmp)
    jobs = str(max(1, min(2, os.cpu_count() or 1)))
    _run(["make", "-j", jobs, "-C", "obj", "-f", "Vtop.mk", "OPT_FAST=-O3", "OPT_SLOW=-O1",
          "OPT_GLOBAL=-O2", "Vtop__ALL.a", "verilated.o", "verilated_threads.o"], tmp)
    vroot = Path(os.environ["VERILATOR_ROOT"])
    inc = [f"-I{vroot / 'include'}", f"-I{vroot / 'include' / 'vltstd'}", "-Iobj"]
    _run(["g++", "-std=c++17", "-O3", "-fPIC", "-shared", f"-DDATA_BYTES={data_bytes}", *inc,
          str(HARNESS), "obj/Vtop__ALL.a", "obj/verilated.o", "obj/verilated_threads.o",
          "-o", "libhotline_sim.so", "-pthread"], tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return lib


class SimTop:
    """The Verilated accelerator top with its host memory (a register transport).

    Parameters
    ----------
    cfg : HotlineConfig
    mem_bytes : int
        Size of host memory (device addresses 0 .. mem_bytes - 1; beyond answers DECERR).
    read_latency : int
        Extra cycles before the first R beat of a read burst.

    Members
    -------
    mem : numpy.ndarray of uint8
        Host memory, shared with the simulator (no copy).
    """

    def __init__(self, cfg: HotlineConfig, mem_bytes: int = 1 << 24, read_latency: int = 0,
                 log=None):
        self.cfg = cfg
        lib = ctypes.CDLL(str(build_library(cfg, log=log)))
        vp, u32, u64 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint64
        lib.hs_new.restype = vp
        lib.hs_new.argtypes = [u64, u32]
        for name in ("hs_free",):
            getattr(lib, name).argtypes = [vp]
        lib.hs_mem.restype = ctypes.POINTER(ctypes.c_uint8)
        lib.hs_mem.argtypes = [vp]
        lib.hs_mem_bytes.restype = u64
        lib.hs_mem_bytes.argtypes = [vp]
        lib.hs_cycles.restype = u64
        lib.hs_cycles.argtypes = [vp]
        lib.hs_irq.restype = ctypes.c_int
        lib.hs_irq.argtypes = [vp]
        lib.hs_reset.argtypes = [vp, u32]
        lib.hs_run.argtypes = [vp, u64]
        lib.hs_set_latency.argtypes = [vp, u32]
        lib.hs_csr_write.restype = ctypes.c_int
        lib.hs_csr_write.argtypes = [vp, u32, u32, u32]
        lib.hs_csr_read.restype = ctypes.c_int
        lib.hs_csr_read.argtypes = [vp, u32, ctypes.POINTER(u32), u32]
        self._lib = lib
        self._h = lib.hs_new(mem_bytes, read_latency)
        self.mem = np.ctypeslib.as_array(lib.hs_mem(self._h), shape=(mem_bytes,))
        self.mem_base = 0
        self.reset()

    def close(self):
        if self._h:
            self.mem = None
            self._lib.hs_free(self._h)
            self._h = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def reset(self, cycles: int = 4) -> None:
        self._lib.hs_reset(self._h, cycles)

    @property
    def cycles(self) -> int:
        return self._lib.hs_cycles(self._h)

    @property
    def irq(self) -> bool:
        return bool(self._lib.hs_irq(self._h))

    def run(self, cycles: int) -> None:
        """Let the clock run ``cycles`` cycles."""
        self._lib.hs_run(self._h, cycles)

    def write32(self, addr: int, value: int) -> None:
        resp = self._lib.hs_csr_write(self._h, addr, value & 0xFFFF_FFFF, 1000)
        if resp < 0:
            raise SimError(f"register write at {addr:#x}: no response in 1000 cycles")
        if resp:
            raise SimError(f"register write at {addr:#x}: response {resp} (DECERR: no register)")

    def read32(self, addr: int) -> int:
        out = ctypes.c_uint32()
        resp = self._lib.hs_csr_read(self._h, addr, ctypes.byref(out), 1000)
        if resp < 0:
            raise SimError(f"register read at {addr:#x}: no response in 1000 cycles")
        if resp:
            raise SimError(f"register read at {addr:#x}: response {resp} (DECERR: no register)")
        return out.value
