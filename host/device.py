"""Register-level driver of the accelerator: one code path for every transport.

:class:`Device` drives :class:`hotline.rtl.top.HotlineTop` through its registers
(:mod:`hotline.regmap`, generated from the one SystemRDL file) and moves data
through host memory that the device reaches over its AXI4 master.  A
transport provides ``read32(addr)``, ``write32(addr, value)``, ``mem`` (the
device-visible host memory as a NumPy ``uint8`` array, no copy),
``mem_base`` (the device address of ``mem[0]``) and ``run(cycles)`` (let a
simulated clock run; a real device ignores it):

* :class:`hotline.host.sim.SimTop`: the generated Verilog in Verilator;
* :class:`MMIOTransport`: registers and memory mapped with ``mmap`` (a PCIe
  BAR such as ``/sys/bus/pci/devices/.../resource0`` or a UIO node, and a
  DMA-able buffer); tested here against plain files.

Every command of :mod:`hotline.rtl.top` has a method here.  Small operands go
through a scratch area at the start of host memory (``scratch_bytes``), or
where the caller says (``at``); the gather and scatter name device addresses
the caller owns (tables and staging buffers elsewhere in the same memory).

A :class:`Device` may be shared by threads: a command's register writes are
one atomic step, and each caller waits for the completion of its own command
(by tag), keeping the completions of others for them.  The device runs a
GATHER/SCATTER's rows beside the commands after it (see
:mod:`hotline.rtl.top`), so a thread's CLASSIFY may finish while another's
SCATTER still moves rows; the device orders what touches the DMA's state, and
the callers keep their operands apart (the scratch area serves one thread).

:class:`DeviceAccelerator` puts the trainer's
:class:`~hotline.host.driver.Accelerator` API on top of it: the ``sim`` and
``fpga`` backends.
"""

from __future__ import annotations

import collections
import mmap
import os
import threading

import numpy as np

from .. import regmap
from ..config import HotlineConfig
from ..regmap import Opcode, Status
from ..rtl.top import READOUT_COUNT_SHIFT

__all__ = ["Device", "DeviceError", "MMIOTransport", "Completion"]

_R = regmap.BY_NAME


def _name(opcode) -> str:
    try:
        return Opcode(opcode).name
    except ValueError:
        return f"opcode {int(opcode):#x}"


class DeviceError(RuntimeError):
    """A command ended with an error status, or the device stopped answering."""

    def __init__(self, message: str, status: Status | None = None):
        super().__init__(message)
        self.status = status


class Completion(tuple):
    """``(tag, status, opcode, result0, result1)`` of one finished command."""

    @property
    def status(self) -> Status:
        return Status(self[1])


class MMIOTransport:
    """Registers and host memory through ``mmap`` of two files (a BAR and a DMA buffer).

    Parameters
    ----------
    regs_path : str
        A file whose first 4 KiB are the register window (e.g. a PCIe BAR's ``resource0``).
    mem_path : str
        The host-memory buffer the device reaches.
    mem_base : int
        The device (bus) address of the buffer's first byte.
    """

    def __init__(self, regs_path: str, mem_path: str, mem_base: int = 0, regs_offset: int = 0):
        self._fds = []
        try:
            rfd = os.open(regs_path, os.O_RDWR | getattr(os, "O_SYNC", 0))
        except OSError as exc:
            raise DeviceError(f"cannot open the register window {regs_path}: {exc.strerror}") from None
        self._fds.append(rfd)
        try:
            mfd = os.open(mem_path, os.O_RDWR)
        except OSError as exc:
            raise DeviceError(f"cannot open the host-memory buffer {mem_path}: {exc.strerror}") from None
        self._fds.append(mfd)
        size = os.fstat(mfd).st_size
        if size == 0:
            raise DeviceError(f"the host-memory buffer {mem_path} is empty")
        self._regs = mmap.mmap(rfd, 1 << regmap.ADDRESS_BITS, offset=regs_offset)
        self._mem = mmap.mmap(mfd, size)
        self.regs = np.frombuffer(self._regs, dtype=np.uint32)
        self.mem = np.frombuffer(self._mem, dtype=np.uint8)
        self.mem_base = mem_base

    def read32(self, addr: int) -> int:
        return int(self.regs[addr >> 2])

    def write32(self, addr: int, value: int) -> None:
        self.regs[addr >> 2] = value & 0xFFFF_FFFF

    def run(self, cycles: int) -> None:
        pass                                   # a real device runs by itself

    def close(self) -> None:
        self.regs = self.mem = None
        for mm in (self._regs, self._mem):
            mm.close()
        for fd in self._fds:
            os.close(fd)


class Device:
    """The accelerator behind a register transport.

    Parameters
    ----------
    transport
        See the module docstring.
    cfg : HotlineConfig
        The config the hardware was built with (checked against its CAPS registers).
    poll_cycles : int
        Cycles a simulated device runs between two completion polls.
    """

    def __init__(self, transport, cfg: HotlineConfig, *, poll_cycles: int = 64,
                 max_polls: int = 1_000_000, scratch_bytes: int | None = None):
        self.t = transport
        self.cfg = cfg
        self.scratch_bytes = int(transport.mem.size if scratch_bytes is None else scratch_bytes)
        self.poll_cycles = poll_cycles
        self.max_polls = max_polls
        ident = self.t.read32(regmap.ID)
        if ident != regmap.MAGIC:
            raise DeviceError(f"no Hotline accelerator: ID reads {ident:#010x}")
        caps = self.t.read32(regmap.CAPS_COUNTER)
        f = _R["CAPS_COUNTER"]
        c = cfg.counter
        got = (f.field("DEPTH").get(caps), f.field("LOG2_COUNTERS").get(caps),
               f.field("COUNTER_BITS").get(caps), f.field("HH_WAYS").get(caps))
        if got != (c.depth, c.log2_counters, c.counter_bits, c.hh_ways):
            raise DeviceError(f"the device's counter array (D, S, C, ways) = {got} is not the "
                              f"config's {(c.depth, c.log2_counters, c.counter_bits, c.hh_ways)}")
        self._tag = 0
        self._lock = threading.RLock()          # one register sequence at a time
        self._kept = {}                         # completions popped for other waiters, by tag
        #: ``(tag, opcode)`` of the last completions, in the order the device finished them
        self.finished = collections.deque(maxlen=64)

    # ---- memory -----------------------------------------------------------------
    def _check_room(self, nbytes: int, what: str) -> None:
        if nbytes > self.scratch_bytes:
            raise DeviceError(f"{what} needs {nbytes} bytes of host memory; the scratch area has "
                              f"{self.scratch_bytes}")

    def _at(self, at: int | None, nbytes: int, what: str) -> int:
        """Host-memory offset of an operand of ``nbytes``: ``at``, or the scratch area."""
        if at is None:
            self._check_room(nbytes, what)
            return 0
        if not (0 <= at and at % 8 == 0 and at + nbytes <= self.t.mem.size):
            raise DeviceError(f"{what}: {nbytes} bytes at offset {at} do not fit the "
                              f"{self.t.mem.size}-byte host memory (8-byte aligned)")
        return at

    def _put(self, offset: int, words: np.ndarray) -> None:
        self.t.mem[offset:offset + 8 * words.size] = words.view(np.uint8)

    def _get(self, offset: int, n: int) -> np.ndarray:
        return self.t.mem[offset:offset + 8 * n].view(np.uint64).copy()

    # ---- commands ---------------------------------------------------------------
    def submit(self, opcode, *, addr_a: int = 0, addr_b: int = 0, count: int = 0,
               arg: int = 0) -> int:
        """Stage and push one command; returns its tag."""
        with self._lock:
            self._tag = (self._tag + 1) & 0xFF
            while self._tag in self._kept:      # a tag whose completion nobody took yet
                self._tag = (self._tag + 1) & 0xFF
            t = self.t
            t.write32(regmap.CMD_OPCODE, int(opcode) | self._tag << 8)
            t.write32(regmap.CMD_ADDR_A_LO, addr_a & 0xFFFF_FFFF)
            t.write32(regmap.CMD_ADDR_A_HI, addr_a >> 32)
            t.write32(regmap.CMD_ADDR_B_LO, addr_b & 0xFFFF_FFFF)
            t.write32(regmap.CMD_ADDR_B_HI, addr_b >> 32)
            t.write32(regmap.CMD_COUNT, count)
            t.write32(regmap.CMD_ARG, arg)
            t.write32(regmap.CMD_SUBMIT, 1)
            if _R["IRQ_STATUS"].field("OVERFLOW").get(t.read32(regmap.IRQ_STATUS)):
                t.write32(regmap.IRQ_STATUS, _R["IRQ_STATUS"].field("OVERFLOW").mask)
                raise DeviceError(f"{_name(opcode)}: the command queue was full; "
                                  f"the command was dropped")
            return self._tag

    def wait(self, tag: int | None = None) -> Completion:
        """Wait for the completion of command ``tag`` (``None``: the oldest one) and pop it.

        Completions of other tags that come first are kept for their own waiters.
        """
        head = _R["DONE_HEAD"]
        for _ in range(self.max_polls):
            with self._lock:
                if tag is None and self._kept:
                    return self._kept.pop(next(iter(self._kept)))
                if tag in self._kept:
                    return self._kept.pop(tag)
                word = self.t.read32(regmap.DONE_HEAD)
                if head.field("VALID").get(word):
                    r0 = self.t.read32(regmap.DONE_RESULT0)
                    r1 = self.t.read32(regmap.DONE_RESULT1)
                    self.t.write32(regmap.DONE_POP, 1)
                    done = Completion((head.field("TAG").get(word), head.field("STATUS").get(word),
                                       head.field("OPCODE").get(word), r0, r1))
                    self.finished.append((done[0], done[2]))
                    if tag is None or done[0] == tag:
                        return done
                    self._kept[done[0]] = done
                    continue
                self.t.run(self.poll_cycles)
        raise DeviceError("no completion: the device stopped answering")

    def command(self, opcode, ok=(Status.OK,), **kw) -> Completion:
        """Submit one command and wait for it; a status not in ``ok`` raises :class:`DeviceError`."""
        return self._checked(opcode, self.wait(self.submit(opcode, **kw)), ok)

    def _checked(self, opcode, done: Completion, ok=(Status.OK,)) -> Completion:
        if done.status not in ok:
            raise DeviceError(f"{_name(opcode)} ended with {done.status.name} (results "
                              f"{done[3]}, {done[4]})", done.status)
        return done

    # ---- the counter array ------------------------------------------------------
    def learn(self, keys) -> int:
        """Learn packed keys in order; returns the keys learned (bad keys raise before)."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64).ravel()
        self._check_room(8 * keys.size, "learn")
        self._put(0, keys)
        done = self.command(Opcode.LEARN, addr_a=self.t.mem_base, count=keys.size)
        if done[4]:
            raise DeviceError(f"learn: {done[4]} keys were out of range and dropped")
        return done[3]

    def estimate(self, keys) -> np.ndarray:
        keys = np.ascontiguousarray(keys, dtype=np.uint64).ravel()
        self._check_room(16 * keys.size, "estimate")
        self._put(0, keys)
        out = 8 * keys.size
        self.command(Opcode.ESTIMATE, addr_a=self.t.mem_base, addr_b=self.t.mem_base + out,
                     count=keys.size)
        return self._get(out, keys.size)

    def table(self):
        """The heavy-hitter table as ``(valid, keys, counts)``, set by set, way by way."""
        n = self.cfg.counter.hh_entries
        self._check_room(8 * n, "readout")
        self.command(Opcode.READOUT, addr_b=self.t.mem_base, count=n)
        e = self._get(0, n)
        valid = (e >> np.uint64(63)).astype(bool)
        keys = e & np.uint64((1 << READOUT_COUNT_SHIFT) - 1)
        counts = (e >> np.uint64(READOUT_COUNT_SHIFT)) & np.uint64((1 << 23) - 1)
        return valid, keys, counts.astype(np.int64)

    def readout(self):
        """Valid heavy-hitter entries in readout order: ``(keys, counts)``."""
        valid, keys, counts = self.table()
        return keys[valid], counts[valid]

    def clear(self) -> None:
        self.command(Opcode.CLEAR)

    def perf(self) -> dict:
        """The performance counters, by register name (lower case, without PERF_)."""
        return {r.name[5:].lower(): self.t.read32(r.offset) for r in regmap.REGISTERS
                if r.name.startswith("PERF_") and r.name != "PERF_CTRL"}

    # ---- the reorder unit -------------------------------------------------------
    def load_hotmap(self, image) -> None:
        """Load a hot-map image (:attr:`hotline.host.hotmap.HotMap.image`, one word per slot)."""
        image = np.ascontiguousarray(image, dtype=np.uint64).ravel()
        self._check_room(8 * image.size, "load_hotmap")
        self._put(0, image)
        self.command(Opcode.LOAD_HOTMAP, addr_a=self.t.mem_base, count=image.size)

    def classify(self, keys):
        """Classify one batch ``keys [B, T]``; returns ``(ClassifiedBatch, Completion)``.

        A batch over the reorder unit's limits raises
        :class:`hotline.host.reorder.BatchOverflow`, as the golden model does.
        """
        from .reorder import BatchOverflow, ClassifiedBatch
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        r = self.cfg.reorder
        if keys.ndim != 2 or keys.shape[1] != r.keys_per_sample:
            raise ValueError(f"classify needs keys [B, {r.keys_per_sample}], not {list(keys.shape)}")
        B, T = keys.shape
        n = B * T
        words = n + 2 * B + r.max_batch_keys
        self._check_room(8 * (n + words), "classify")
        self._put(0, keys.ravel())
        out = 8 * n
        done = self.command(Opcode.CLASSIFY, addr_a=self.t.mem_base, addr_b=self.t.mem_base + out,
                            count=B, arg=T, ok=(Status.OK, Status.CAPACITY))
        pop, non = done[3] & 0xFFFF, done[3] >> 16
        ncold = done[4] & 0xFFFF
        if done.status == Status.CAPACITY:
            raise BatchOverflow(
                f"batch of {B} samples exceeds the device's reorder unit "
                f"(max_batch_samples {r.max_batch_samples}, max_batch_keys {r.max_batch_keys}; "
                f"flags: sample overflow {done[4] >> 30 & 1}, key overflow {done[4] >> 31})",
                samples=B, max_batch_samples=r.max_batch_samples,
                unique_cold=ncold + int(done[4] >> 31), max_batch_keys=r.max_batch_keys)
        res = self._get(out, words)
        remap = res[:n].reshape(B, T)
        hot = (remap >> np.uint64(63)).astype(bool)
        index = (remap & np.uint64((1 << 63) - 1)).astype(np.int64)
        popular = res[n:n + pop].astype(np.int64)
        non_popular = res[n + B:n + B + non].astype(np.int64)
        cold = res[n + 2 * B:n + 2 * B + ncold].copy()
        return ClassifiedBatch(popular=popular, non_popular=non_popular, hot=hot, index=index,
                               cold_keys=cold), done

    # ---- the gather DMA -----------------------------------------------------------
    def set_tables(self, bases, strides, rows, row_bytes: int, *, at: int | None = None) -> None:
        """Describe the tables to the DMA: table ``t`` starts at device address ``bases[t]``,
        rows ``strides[t]`` bytes apart, ``rows[t]`` rows; every row moves ``row_bytes``.
        The descriptors go to host-memory offset ``at`` (default: the scratch area)."""
        bases = np.asarray(bases, dtype=np.uint64)
        desc = np.zeros((bases.size, 2), dtype=np.uint64)
        desc[:, 0] = bases
        desc[:, 1] = (np.asarray(strides, dtype=np.uint64) |
                      np.asarray(rows, dtype=np.uint64) << np.uint64(32))
        off = self._at(at, 16 * bases.size, "set_tables")
        self._put(off, desc.ravel())
        self.command(Opcode.SET_TABLES, addr_a=self.t.mem_base + off, count=bases.size,
                     arg=row_bytes)

    def move(self, opcode, keys, staging: int, *, at: int | None = None) -> int:
        """GATHER or SCATTER the rows of ``keys`` (row ``u`` at ``staging + u * row_bytes``, a
        device address); returns the rows moved.  At most ``max_batch_keys`` keys, put at
        host-memory offset ``at`` (default: the scratch area)."""
        return self.finish_move(self.start_move(opcode, keys, staging, at=at))

    def start_move(self, opcode, keys, staging: int, *, at: int | None = None) -> tuple:
        """Submit a GATHER or SCATTER (as :meth:`move`) without waiting; returns a handle
        for :meth:`finish_move`.  The commands submitted next may run beside its rows."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64).ravel()
        off = self._at(at, 8 * keys.size, _name(opcode).lower())
        self._put(off, keys)
        return opcode, self.submit(opcode, addr_a=self.t.mem_base + off, addr_b=staging,
                                   count=keys.size)

    def finish_move(self, handle) -> int:
        """Wait for a :meth:`start_move`; returns the rows moved (an error status raises)."""
        opcode, tag = handle
        return self._checked(opcode, self.wait(tag))[3]

