"""cocotb testbench of the embedding gather/scatter DMA (``hotline_gather``).

Host memory is cocotbext-axi's :class:`AxiRam` (through a thin subclass that
injects SLVERR or DECERR responses on chosen byte ranges and can delay reads by a fixed
latency); every result is checked byte for byte over the whole memory against
:func:`hotline.host.gather.transfer`.  A bus monitor watches the AR, AW, W, R
and B handshakes and asserts the AXI rules the unit promises (no burst crosses
4 KiB, only INCR full-width bursts, bounded outstanding reads) and that every
write lands where it may: inside the staging buffer (gather) or inside a
target row (scatter).

Run through ``tests/test_gather_cosim.py`` (one build per bus width); the
benchmark ``scripts/bench_gather.py`` reuses :class:`GatherTB`.
"""

from __future__ import annotations

import collections
import json
import os
import random

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, Event, RisingEdge, SimTimeoutError, with_timeout
from cocotbext.axi import AxiBus, AxiResp
from cocotbext.axi.axi_ram import AxiRamRead, AxiRamWrite
from cocotbext.axi.memory import Memory

from ..config import HotlineConfig
from ..host.gather import GATHER, SCATTER, ErrorKind, TableLayout, transfer
from ..rtl.gather import command_layout, key_layout, status_layout, table_config_layout
from .runner import config_from_env, seed_from_env, stream_ports

CLK_NS = 10


# --------------------------------------------------------------------------- packing
def pack(layout, values: dict) -> int:
    """Pack a dict (nested for nested layouts) into the bits of an Amaranth layout."""
    word = 0
    for name, fld in layout:
        v = values.get(name, 0)
        if isinstance(v, dict):
            v = pack(fld.shape, v)
        width = fld.width
        if not 0 <= int(v) < (1 << width):
            raise ValueError(f"field {name} = {v} does not fit in {width} bits")
        word |= int(v) << fld.offset
    return word


def unpack(layout, word: int) -> dict:
    out = {}
    for name, fld in layout:
        width = fld.width
        v = (word >> fld.offset) & ((1 << width) - 1)
        out[name] = unpack(fld.shape, v) if hasattr(fld.shape, "members") else v
    return out


# ------------------------------------------------------------------------ memory model
def _hits(ranges, lo: int, hi: int) -> bool:
    return any(a < hi and lo < b for a, b in ranges)


class _DelayedAR:
    """Stands in for the RAM's AR sink: hands each burst over ``latency`` cycles after its
    handshake, while accepting further bursts meanwhile (a pipelined memory)."""

    def __init__(self, sink, latency: int):
        self.sink = sink
        self.bus = sink.bus
        self.latency = latency
        sink.queue_occupancy_limit = -1  # accept every AR at once; the delay is ours
        self.q = collections.deque()
        self.ev = Event()
        cocotb.start_soon(self._pump())

    @staticmethod
    def _cycle() -> int:
        return int(get_sim_time("ns")) // CLK_NS

    async def _pump(self):
        while True:
            ar = await self.sink.recv()
            self.q.append((self._cycle(), ar))
            self.ev.set()

    async def recv(self):
        while not self.q:
            self.ev.clear()
            await self.ev.wait()
        t, ar = self.q.popleft()
        wait = t + self.latency - self._cycle()
        if wait > 0:
            await ClockCycles(self.sink.clock, wait)
        return ar

    def clear(self):
        self.sink.clear()
        self.q.clear()


def _answer_faults_with(channel, field: str, ram: "GatherRam") -> None:
    """Make ``channel`` (an R or B source) answer a failed access with ``ram.fault_resp``.

    cocotbext-axi turns an exception from ``_read``/``_write`` into SLVERR; the RAM
    rewrites it on its way out, so DECERR (a decode error) can be injected too.
    """
    send = channel.send

    async def send_with_fault_resp(tr):
        if getattr(tr, field) == AxiResp.SLVERR:
            setattr(tr, field, ram.fault_resp)
            ram.fault_answers[field, ram.fault_resp.name] += 1
        await send(tr)

    channel.send = send_with_fault_resp


class _FaultyRead(AxiRamRead):
    faults: list

    async def _read(self, address, length):
        if _hits(self.faults, address, address + length):
            raise IOError(f"injected read fault at {address:#x}")  # -> SLVERR on this beat
        return await super()._read(address, length)


class _FaultyWrite(AxiRamWrite):
    faults: list

    async def _write(self, address, data):
        if not _hits(self.faults, address, address + len(data)):
            return await super()._write(address, data)
        # Write the bytes outside the fault ranges, then fail the burst (-> SLVERR).
        for i, b in enumerate(data):
            if not _hits(self.faults, address + i, address + i + 1):
                self.write(address + i, bytes([b]))
        raise IOError(f"injected write fault at {address:#x}")


class GatherRam(Memory):
    """cocotbext-axi's AxiRam with injectable SLVERR/DECERR ranges and read latency.

    Parameters
    ----------
    bus : AxiBus
    clock, reset : handles
    size : int
        Bytes of memory (backed by a ``bytearray`` shared with :attr:`array`).
    latency : int or None
        Extra cycles between an AR handshake and its first R beat; ``None``
        keeps the stock AR channel (which holds at most two bursts), an int
        puts a pipelined delay in front of it (:meth:`set_latency` changes it).

    Members
    -------
    faults : list of (lo, hi)
        Byte ranges that answer :attr:`fault_resp` (read: any beat whose word
        meets one; write: the burst, its bytes there not written).  Edit in place.
    fault_resp : AxiResp
        SLVERR (the default) or DECERR.
    fault_answers : collections.Counter
        Error responses sent, by ``("rresp" or "bresp", response name)``.
    array : numpy.ndarray
        The memory as uint8, sharing storage with the RAM.
    read_if, write_if
        The cocotbext-axi read and write slaves (their channels take pause generators).
    """

    def __init__(self, bus, clock, reset, size: int, latency: int | None = None):
        buf = bytearray(size)
        super().__init__(size, mem=buf)
        self.array = np.frombuffer(buf, dtype=np.uint8)
        self.faults = []
        self.fault_resp = AxiResp.SLVERR
        self.fault_answers = collections.Counter()   # (rresp|bresp, response name) -> beats
        self.write_if = _FaultyWrite(bus.write, clock, reset, True, mem=self.mem)
        self.read_if = _FaultyRead(bus.read, clock, reset, True, mem=self.mem)
        _answer_faults_with(self.read_if.r_channel, "rresp", self)
        _answer_faults_with(self.write_if.b_channel, "bresp", self)
        self.write_if.faults = self.faults
        self.read_if.faults = self.faults
        self.ar_sink = self.read_if.ar_channel
        for obj in (self.write_if, self.read_if):
            obj.log.setLevel("WARNING")  # a line per burst would dominate the run time
        if latency is not None:
            self.read_if.ar_channel = _DelayedAR(self.ar_sink, latency)

    def set_latency(self, latency: int):
        if not isinstance(self.read_if.ar_channel, _DelayedAR):
            raise ValueError("GatherRam was built without a latency stage (latency=None)")
        self.read_if.ar_channel.latency = latency


# ----------------------------------------------------------------- stream drivers
class StreamSource:
    """Drives an Amaranth stream (``<name>_valid/_ready/_payload``) with optional idle gaps.

    Parameters
    ----------
    dut : cocotb handle
    name : str
        Port prefix of the stream.
    clock : handle
    rng : random.Random
        Draws the idle gaps.

    Members
    -------
    gap : float
        Probability of holding ``valid`` low for a cycle between words.
    sent : int
        Words accepted by the DUT so far.
    """

    def __init__(self, dut, name: str, clock, rng: random.Random):
        self.valid, self.ready, self.payload = stream_ports(dut, name)
        self.clock = clock
        self.rng = rng
        self.gap = 0.0
        self.q = collections.deque()
        self.ev = Event()
        self.sent = 0
        self.valid.value = 0
        cocotb.start_soon(self._run())

    def send(self, words):
        self.q.extend(words)
        self.ev.set()

    async def _run(self):
        edge = RisingEdge(self.clock)
        driving = False
        while True:
            await edge
            if driving and int(self.ready.value):
                self.q.popleft()
                self.sent += 1
                driving = False
            if not driving:
                if self.q and not (self.gap and self.rng.random() < self.gap):
                    self.payload.value = self.q[0]
                    self.valid.value = 1
                    driving = True
                else:
                    self.valid.value = 0
                    if not self.q:
                        self.ev.clear()
                        await self.ev.wait()


class StreamSink:
    """Receives an Amaranth stream with optional backpressure (random ``ready`` low).

    Parameters
    ----------
    dut : cocotb handle
    name : str
        Port prefix of the stream.
    clock : handle
    rng : random.Random
        Draws the backpressure.

    Members
    -------
    stall : float
        Probability of ``ready`` low in a cycle.
    """

    def __init__(self, dut, name: str, clock, rng: random.Random):
        self.valid, self.ready, self.payload = stream_ports(dut, name)
        self.clock = clock
        self.rng = rng
        self.stall = 0.0
        self.q = collections.deque()
        self.ev = Event()
        self.ready.value = 1
        cocotb.start_soon(self._run())

    async def recv(self):
        while not self.q:
            self.ev.clear()
            await self.ev.wait()
        return self.q.popleft()

    async def _run(self):
        edge = RisingEdge(self.clock)
        while True:
            await edge
            if int(self.ready.value) and int(self.valid.value):
                self.q.append(int(self.payload.value))
                self.ev.set()
            self.ready.value = 0 if (self.stall and self.rng.random() < self.stall) else 1


def pauses(rng: random.Random, p: float):
    """A pause generator for cocotbext-axi channels: paused with probability ``p``."""
    while True:
        yield rng.random() < p


# --------------------------------------------------------------------------- bus monitor
class BusMonitor:
    """Watches every AXI handshake and asserts the rules the unit promises.

    Reads: INCR full-width bursts within max_burst_beats that do not cross 4 KiB, at
    most ``max_outstanding`` in flight, never more beats requested than the read
    buffer holds, and R data never back-pressured.  Writes: the same burst rules,
    every AW inside the bus-word hull of one destination row, every strobed byte
    inside ``allowed_write``, WLAST exactly at each burst's end.

    Parameters
    ----------
    dut : cocotb handle
    clock : handle
    cfg : HotlineConfig
    full_checks : bool
        Check every handshake; off, only count AR and R handshakes (benchmarks).

    Members
    -------
    allowed_write : numpy.ndarray of bool or None
        Bytes a strobed write may touch (set per command).
    write_spans : list of (lo, hi) or None
        Byte ranges (staging buffer or target rows); every AW burst must lie
        within the bus-word hull of one of them.
    max_outstanding : int
        Read bursts allowed in flight.
    counts : collections.Counter
        Handshakes seen per channel, bursts split at 4 KiB, the most reads in flight.
    """

    def __init__(self, dut, clock, cfg: HotlineConfig, full_checks: bool = True):
        self.dut = dut
        self.clock = clock
        self.cfg = cfg
        self.W = cfg.gather.data_bytes
        self.full = full_checks
        self.allowed_write = None
        self.write_spans = None
        self.max_outstanding = cfg.gather.max_outstanding
        self.counts = collections.Counter()
        self.aw_q = collections.deque()
        self.w_q = collections.deque()
        self.errors = []
        self.outstanding = 0
        self.beats_due = 0
        self.cycle = 0
        self.first_r = None
        self.last_r = None
        cocotb.start_soon(self._run())

    def _fail(self, msg):
        self.errors.append(msg)
        raise AssertionError(msg)

    def _check_burst(self, ch, addr, length, size, burst):
        W = self.W
        n = length + 1
        if size != W.bit_length() - 1 or burst != 1:
            self._fail(f"{ch} burst at {addr:#x}: size {size} burst {burst}, expected full "
                       f"words and INCR")
        if addr % W:
            self._fail(f"{ch} burst at {addr:#x} is not word aligned")
        if (addr & 0xFFF) + n * W > 0x1000:
            self._fail(f"{ch} burst at {addr:#x} of {n} beats crosses a 4 KiB boundary")
        if n > self.cfg.gather.max_burst_beats:
            self._fail(f"{ch} burst at {addr:#x} has {n} beats, above max_burst_beats")
        if (addr + n * W) & 0xFFF == 0:
            self.counts[f"{ch}_to_page_end"] += 1

    def _check_w(self, strb: int, last: int):
        W = self.W
        burst = self.aw_q[0]
        if self.allowed_write is not None and strb:
            lanes = np.flatnonzero(np.unpackbits(
                np.frombuffer(strb.to_bytes(W, "little"), np.uint8), bitorder="little"))
            where = burst[0] + lanes
            inside = where < self.allowed_write.size
            ok = np.zeros(where.shape, dtype=bool)
            ok[inside] = self.allowed_write[where[inside]]
            if not ok.all():
                self._fail(f"W beat writes byte {int(where[~ok][0]):#x}, outside the "
                           f"destination rows")
        burst[0] += W
        burst[1] -= 1
        if last != (burst[1] == 0):
            self._fail(f"WLAST {last} with {burst[1]} beats of the burst left")
        if burst[1] == 0:
            self.aw_q.popleft()

    async def _run(self):
        if not self.full:
            return await self._run_counts()
        d = self.dut
        edge = RisingEdge(self.clock)
        W = self.W
        while True:
            await edge
            self.cycle += 1
            if int(d.m_axi_arvalid.value) and int(d.m_axi_arready.value):
                addr, ln = int(d.m_axi_araddr.value), int(d.m_axi_arlen.value)
                self._check_burst("AR", addr, ln, int(d.m_axi_arsize.value),
                                  int(d.m_axi_arburst.value))
                self.counts["ar"] += 1
                self.outstanding += 1
                self.beats_due += ln + 1
                self.counts["max_out"] = max(self.counts["max_out"], self.outstanding)
                if self.outstanding > self.max_outstanding:
                    self._fail(f"{self.outstanding} read bursts in flight, limit "
                               f"{self.max_outstanding}")
                if self.beats_due > self.cfg.gather.rbuf_beats:
                    self._fail(f"{self.beats_due} read beats requested and not yet returned, "
                               f"above rbuf_beats {self.cfg.gather.rbuf_beats}")
            rvalid = int(d.m_axi_rvalid.value)
            if rvalid and not int(d.m_axi_rready.value):
                # The unit reserves buffer space before each AR, so it never stalls R.
                self._fail("RREADY low while RVALID: the unit back-pressured read data")
            if rvalid:
                self.counts["r"] += 1
                self.beats_due -= 1
                if self.first_r is None:
                    self.first_r = self.cycle
                self.last_r = self.cycle
                if int(d.m_axi_rlast.value):
                    self.outstanding -= 1
            if int(d.m_axi_awvalid.value) and int(d.m_axi_awready.value):
                addr, ln = int(d.m_axi_awaddr.value), int(d.m_axi_awlen.value)
                self._check_burst("AW", addr, ln, int(d.m_axi_awsize.value),
                                  int(d.m_axi_awburst.value))
                self.counts["aw"] += 1
                if self.full and self.write_spans is not None:
                    lo, hi = addr, addr + (ln + 1) * W
                    if not any(a // W * W <= lo and hi <= -(-b // W) * W
                               for a, b in self.write_spans):
                        self._fail(f"AW burst [{lo:#x}, {hi:#x}) is not inside the "
                                   f"destination buffer or a target row")
                self.aw_q.append([addr, ln + 1])
            if int(d.m_axi_wvalid.value) and int(d.m_axi_wready.value):
                self.counts["w"] += 1
                if self.full:
                    # W may lead its AW (AXI allows it): match them in order.
                    self.w_q.append((int(d.m_axi_wstrb.value), int(d.m_axi_wlast.value)))
            while self.full and self.w_q and self.aw_q:
                self._check_w(*self.w_q.popleft())
            if int(d.m_axi_bvalid.value) and int(d.m_axi_bready.value):
                self.counts["b"] += 1


    async def _run_counts(self):
        d = self.dut
        edge = RisingEdge(self.clock)
        arv, arr, rv, rr = d.m_axi_arvalid, d.m_axi_arready, d.m_axi_rvalid, d.m_axi_rready
        c = self.counts
        while True:
            await edge
            self.cycle += 1
            if int(arv.value) and int(arr.value):
                c["ar"] += 1
            if int(rv.value) and int(rr.value):
                c["r"] += 1
                if self.first_r is None:
                    self.first_r = self.cycle
                self.last_r = self.cycle

    def restart_counts(self):
        self.counts.clear()
        self.first_r = self.last_r = None


# ------------------------------------------------------------------------ testbench
class GatherTB:
    """Clock, reset, memory, stream drivers and bus monitor around ``hotline_gather``.

    Parameters
    ----------
    dut : cocotb handle
    cfg : HotlineConfig
    seed : int
        Seeds every random choice of the bench (layouts, keys, pauses).
    mem_size : int
        Bytes of simulated host memory.
    latency : int or None
        Read latency added to the memory (cycles), see :class:`GatherRam`.
    full_checks : bool
        Check every handshake in the bus monitor; off (benchmarks) it only
        counts AR and R handshakes.
    """

    def __init__(self, dut, cfg: HotlineConfig, seed: int, mem_size: int = 1 << 18,
                 latency: int | None = None, full_checks: bool = True):
        self.dut = dut
        self.cfg = cfg
        self.rng = random.Random(seed)
        self.nrng = np.random.default_rng(seed)
        self.mem_size = mem_size
        self.log = dut._log
        cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
        dut.rst.value = 1
        dut.row_bytes.value = 0
        dut.staging.value = 0
        dut.outstanding_limit.value = 0
        self.ram = GatherRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, mem_size,
                             latency=latency)
        self.mem = self.ram.array
        self.cmd = StreamSource(dut, "cmd", dut.clk, self.rng)
        self.keys = StreamSource(dut, "keys", dut.clk, self.rng)
        self.table_cfg = StreamSource(dut, "table_cfg", dut.clk, self.rng)
        self.done = StreamSink(dut, "done", dut.clk, self.rng)
        self.monitor = BusMonitor(dut, dut.clk, cfg, full_checks)
        self.klay = key_layout(cfg)
        self.slay = status_layout(cfg)
        self.clay = command_layout(cfg)
        self.tlay = table_config_layout(cfg)

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    def set_pauses(self, p: float, p_write: float | None = None):
        """Random pauses on the RAM's channels: probability ``p`` on AR and R, ``p_write``
        (default ``p``) on AW, W and B."""
        p_write = p if p_write is None else p_write
        chans = [(self.ram.ar_sink, p), (self.ram.read_if.r_channel, p),
                 (self.ram.write_if.aw_channel, p_write), (self.ram.write_if.w_channel, p_write),
                 (self.ram.write_if.b_channel, p_write)]
        for ch, q in chans:
            if q:
                ch.set_pause_generator(pauses(random.Random(self.rng.random()), q))
            else:
                ch.clear_pause_generator()
                ch.pause = False

    def set_gaps(self, key_gap: float, done_stall: float):
        self.keys.gap = key_gap
        self.cmd.gap = key_gap
        self.done.stall = done_stall

    async def load_tables(self, layout: TableLayout, clear_rest: bool = True):
        """Write the table registers; with ``clear_rest`` the other tables get 0 rows (else
        they keep what an earlier round wrote, or 0 rows if not written since reset)."""
        n = self.cfg.keys.tables if clear_rest else layout.tables
        words = []
        for t in range(n):
            if t < layout.tables:
                f = {"table": t, "base": int(layout.base[t]), "stride": int(layout.stride[t]),
                     "rows": int(layout.rows[t])}
            else:
                f = {"table": t, "base": 0, "stride": 0, "rows": 0}
            words.append(pack(self.tlay, f))
        if self.cfg.keys.tables < (1 << self.cfg.keys.table_bits):
            # A write to a table that does not exist must be ignored.
            words.append(pack(self.tlay, {"table": self.cfg.keys.tables, "base": 0,
                                          "stride": 1, "rows": 5}))
        self.table_cfg.sent = 0
        self.table_cfg.send(words)
        while self.table_cfg.sent < len(words):
            await RisingEdge(self.dut.clk)

    def start(self, op: int, keys: np.ndarray):
        """Queue one command and its keys (does not wait)."""
        self.cmd.send([pack(self.clay, {"op": op, "count": len(keys)})])
        self.keys.send([pack(self.klay, {"table": int(t), "row": int(r), "u": int(u)})
                        for t, r, u in keys])

    async def finish(self, timeout_us: float = 2000.0) -> dict:
        """Wait for the next status word; fail if none comes within ``timeout_us``."""
        try:
            word = await with_timeout(self.done.recv(), timeout_us, "us")
        except SimTimeoutError:
            raise AssertionError(f"no done status within {timeout_us} us: the unit hung "
                                 f"(bus counts {dict(self.monitor.counts)})") from None
        return unpack(self.slay, word)

    def set_command_inputs(self, staging: int, row_bytes: int, limit: int = 0):
        self.dut.staging.value = staging
        self.dut.row_bytes.value = row_bytes
        self.dut.outstanding_limit.value = limit

    def expect_writes(self, op: int, layout: TableLayout, keys: np.ndarray, staging: int,
                      row_bytes: int, status=None, append: bool = False):
        """Tell the bus monitor where this command may write (before it starts).

        Only rows the golden ``status`` says are written (``NONE`` or ``WRITE``)
        may be touched; without ``status``, every key with a valid row.
        """
        spans = []
        writable = (ErrorKind.NONE, ErrorKind.WRITE)
        good = [(int(t), int(r), int(u)) for i, (t, r, u) in enumerate(keys)
                if t < self.cfg.keys.tables and t < layout.tables and r < layout.rows[t]
                and (status is None or status[i] in writable)]
        if 0 < row_bytes <= self.cfg.gather.max_row_bytes:
            for t, r, u in good:
                if op == GATHER:
                    spans.append((staging + u * row_bytes, staging + (u + 1) * row_bytes))
                else:
                    a = int(layout.base[t]) + r * int(layout.stride[t])
                    spans.append((a, a + row_bytes))
        mask = self.monitor.allowed_write if append and self.monitor.allowed_write is not None \
            else np.zeros(self.mem_size, dtype=bool)
        for a, b in spans:
            mask[a:b] = True
        self.monitor.allowed_write = mask
        self.monitor.write_spans = (self.monitor.write_spans or []) + spans if append else spans


def status_of(result) -> dict:
    """The golden result in the layout of the RTL's status word."""
    key = result.first_error_key or (0, 0, 0)
    return {"rows_moved": result.rows_moved, "errors": result.errors,
            "first_error_kind": int(result.first_error_kind),
            "first_error_index": max(result.first_error_index, 0),
            "first_error_key": {"table": key[0], "row": key[1], "u": key[2]}}


def compare(log, what: str, seed: int, got_mem: np.ndarray, exp_mem: np.ndarray,
            got_status: dict, exp_result, op: int, keys, layout, staging, row_bytes):
    """Assert memory and status equal the golden model's; name the first difference."""
    exp = status_of(exp_result)
    exp["op"] = op
    if got_status != exp:
        diff = {k: (got_status.get(k), v) for k, v in exp.items() if got_status.get(k) != v}
        raise AssertionError(f"{what}: status differs (got, expected) {diff}; seed {seed}")
    bad = np.flatnonzero(got_mem != exp_mem)
    if bad.size:
        a = int(bad[0])
        where = "outside every row"
        for i, (t, r, u) in enumerate(keys):
            if t < layout.tables:
                tab = int(layout.base[t]) + int(r) * int(layout.stride[t])
                stg = staging + int(u) * row_bytes
                for name, lo in (("table row", tab), ("staging row", stg)):
                    if lo <= a < lo + row_bytes:
                        where = f"in the {name} of key {i} {(int(t), int(r), int(u))} " \
                                f"at byte {a - lo}"
                        break
        raise AssertionError(
            f"{what}: memory differs at {a:#x} ({bad.size} bytes differ; first {where}): got "
            f"{int(got_mem[a]):#04x}, expected {int(exp_mem[a]):#04x}; seed {seed}")
    log.info("%s: %d rows moved, %d errors, memory matches", what, exp_result.rows_moved,
             exp_result.errors)


# ----------------------------------------------------------------- random scenarios
def random_layout(rng: np.random.Generator, cfg: HotlineConfig, mem_size: int, row_bytes: int,
                  n_tables: int, max_rows: int = 48):
    """Tables with random unaligned bases and strides >= row_bytes, then a staging area.

    Returns (layout, staging, staging_capacity_rows).  The regions do not overlap.
    """
    W = cfg.gather.data_bytes
    base, stride, rows = [], [], []
    addr = int(rng.integers(0, 64))
    for _ in range(n_tables):
        n = int(rng.integers(1, max_rows + 1))
        s = row_bytes + int(rng.choice([0, 0, 1, 3, W, W + 5, int(rng.integers(0, 2 * W))]))
        base.append(addr)
        stride.append(s)
        rows.append(n)
        addr += n * s + int(rng.integers(0, 3 * W))
    staging = addr + int(rng.integers(0, 2 * W))
    cap = (mem_size - staging) // row_bytes
    if cap < 1:
        raise ValueError("random_layout: memory too small for the tables and staging")
    layout = TableLayout(np.array(base), np.array(stride), np.array(rows))
    return layout, staging, cap


def random_keys(rng: np.random.Generator, cfg: HotlineConfig, layout: TableLayout, n: int,
                cap: int, bad: float = 0.1):
    """n keys: mostly valid rows at positions u = 0..n-1, some out of range, bad or
    unconfigured tables and repeated rows."""
    T = cfg.keys.tables
    keys = []
    for i in range(n):
        t = int(rng.integers(0, layout.tables))
        r = int(rng.integers(0, int(layout.rows[t])))
        x = rng.random()
        if x < bad / 3:
            r = int(layout.rows[t]) + int(rng.integers(0, 5))            # row out of range
        elif x < 2 * bad / 3 and T < (1 << cfg.keys.table_bits):
            t = int(rng.integers(T, 1 << cfg.keys.table_bits))            # no such table
        elif x < bad and layout.tables < T:
            t = int(rng.integers(layout.tables, T))                        # never configured
        elif x < bad + 0.05 and keys:
            t, r = keys[int(rng.integers(0, len(keys)))][:2]               # repeated row
        keys.append((t, r, i % cap))
    return np.array(keys, dtype=np.int64).reshape(-1, 3)


def fill_random(rng: np.random.Generator, arr: np.ndarray):
    arr[:] = rng.integers(0, 256, size=arr.size, dtype=np.uint8)


def crosses_page(layout, keys, row_bytes, staging):
    n = 0
    for t, r, u in keys:
        if t < layout.tables and r < layout.rows[t]:
            a = int(layout.base[t]) + int(r) * int(layout.stride[t])
            n += (a // 4096) != ((a + row_bytes - 1) // 4096)
            s = staging + int(u) * row_bytes
            n += (s // 4096) != ((s + row_bytes - 1) // 4096)
    return n


async def run_and_check(tb: GatherTB, seed: int, what: str, op: int, layout, keys, staging,
                        row_bytes, limit: int = 0):
    """Run one command on the DUT and on the golden model; compare memory and status."""
    golden = tb.mem.copy()
    exp = transfer(op, golden, layout, keys, staging, row_bytes, faults=list(tb.ram.faults),
                   cfg=tb.cfg)
    tb.set_command_inputs(staging, row_bytes, limit)
    tb.expect_writes(op, layout, keys, staging, row_bytes, status=exp.status)
    tb.start(op, keys)
    got = await tb.finish()
    compare(tb.log, what, seed, tb.mem, golden, got, exp, op, keys, layout, staging, row_bytes)
    return exp


# --------------------------------------------------------------------------- tests
def _row_sizes(cfg, rng):
    W = cfg.gather.data_bytes
    top = cfg.gather.max_row_bytes
    sizes = [int(rng.integers(1, W)), W + int(rng.integers(1, W)), 3 * W - 1,
             int(rng.integers(2 * W, min(top, 6 * W) + 1)), min(top, 4096 + 3)]
    return [max(1, min(top, s)) for s in sizes]


@cocotb.test()
async def test_random_gather_scatter(dut):
    """Random tables, row sizes and keys (with bad rows/tables and repeats), pauses on
    all five channels, gaps on the key stream and backpressure on done; gather then
    scatter of the same rows to permuted staging slots; whole memory vs golden."""
    cfg = config_from_env()
    seed = seed_from_env(dut._log)
    tb = GatherTB(dut, cfg, seed)
    await tb.reset()
    rng = tb.nrng
    page_crossings = 0
    # (read pause, write pause): slow writes with fast reads fill the read buffer.
    modes = [(0.0, 0.0), (0.3, 0.3), (0.0, 0.85), (0.6, 0.6), (0.1, 0.7)]
    for rnd, row_bytes in enumerate(_row_sizes(cfg, rng)):
        p, pw = modes[rnd % len(modes)]
        tb.set_pauses(p, pw)
        tb.set_gaps(key_gap=p / 2, done_stall=pw)
        n_tables = int(rng.integers(2, 6))
        max_rows = max(4, min(48, (tb.mem_size // 3) // (n_tables * (row_bytes + 80))))
        layout, staging, cap = random_layout(rng, cfg, tb.mem_size, row_bytes, n_tables,
                                             max_rows)
        await tb.load_tables(layout)
        fill_random(rng, tb.mem)
        n = int(min(cap, rng.integers(20, 60)))
        keys = random_keys(rng, cfg, layout, n, cap)
        page_crossings += crosses_page(layout, keys, row_bytes, staging)
        limit = int(rng.integers(0, cfg.gather.max_outstanding + 1))
        tb.monitor.max_outstanding = limit or cfg.gather.max_outstanding
        tag = f"round {rnd} row_bytes {row_bytes} pauses {p}/{pw}"
        await run_and_check(tb, seed, f"{tag} gather", GATHER, layout, keys, staging,
                            row_bytes, limit)
        # Scatter the same rows back from permuted slots, so the tables change (a
        # scatter straight after its gather, without waiting, is in test_back_to_back).
        perm = keys.copy()
        perm[:, 2] = keys[rng.permutation(n), 2]
        await run_and_check(tb, seed, f"{tag} scatter", SCATTER, layout, perm, staging,
                            row_bytes, limit)
    assert page_crossings > 0, f"no row crossed a 4 KiB page (seed {seed}); the test is too weak"
    assert tb.monitor.counts["AR_to_page_end"] > 0 and tb.monitor.counts["AW_to_page_end"] > 0
    dut._log.info("bus counts %s", dict(tb.monitor.counts))


@cocotb.test()
async def test_errors(dut):
    """SLVERR, then DECERR, on one read and one write, out-of-range rows, bad and unconfigured tables,
    row_bytes 0 and above the maximum, an empty command."""
    cfg = config_from_env()
    seed = seed_from_env(dut._log)
    tb = GatherTB(dut, cfg, seed)
    await tb.reset()
    rng = tb.nrng
    W = cfg.gather.data_bytes
    row_bytes = W + 5 if W + 5 <= cfg.gather.max_row_bytes else cfg.gather.max_row_bytes
    tb.set_pauses(0.2)
    layout, staging, cap = random_layout(rng, cfg, tb.mem_size, row_bytes, 3, 30)
    await tb.load_tables(layout, clear_rest=False)   # table 3 keeps its reset state
    fill_random(rng, tb.mem)
    n = min(cap, 40)
    keys = random_keys(rng, cfg, layout, n, cap, bad=0.0)
    keys[3] = (keys[3][0], layout.rows[keys[3][0]], keys[3][2])    # row == rows: out of range
    if cfg.keys.tables < (1 << cfg.keys.table_bits):
        keys[12] = (cfg.keys.tables, 0, keys[12][2])                # no such table
    keys[30] = (layout.tables, 0, keys[30][2])                      # table never configured

    def clean_key(op, faults, start):
        """First key from ``start`` that the golden model moves without error."""
        st = transfer(op, tb.mem.copy(), layout, keys, staging, row_bytes, faults=faults,
                      cfg=cfg).status
        return next(i for i in range(start, n) if st[i] == ErrorKind.NONE)

    for resp in (AxiResp.SLVERR, AxiResp.DECERR):
        tb.ram.fault_resp = resp
        # A one-byte read fault inside the source of one row, and a two-byte write fault
        # inside the staging row of another (the rest of that row is written).
        tb.ram.faults[:] = []
        i = clean_key(GATHER, [], 5)
        t, r, _ = keys[i]
        src = int(layout.base[t]) + int(r) * int(layout.stride[t])
        rfault = (src + row_bytes // 2, src + row_bytes // 2 + 1)
        j = clean_key(GATHER, [rfault], 15)
        dst = staging + int(keys[j][2]) * row_bytes
        tb.ram.faults[:] = [rfault, (dst + 2, dst + 4)]
        exp = await run_and_check(tb, seed, f"{resp.name} faults gather", GATHER, layout, keys,
                                  staging, row_bytes)
        assert exp.status[i] == ErrorKind.READ and exp.status[j] == ErrorKind.WRITE
        assert exp.status[3] == ErrorKind.ROW and exp.status[30] == ErrorKind.ROW
        # The same rows scattered back: a write fault on the last byte of a table row now.
        tb.ram.faults[:] = []
        j = clean_key(SCATTER, [], 20)
        t, r, _ = keys[j]
        dst = int(layout.base[t]) + int(r) * int(layout.stride[t])
        tb.ram.faults[:] = [(dst + row_bytes - 1, dst + row_bytes)]
        exp = await run_and_check(tb, seed, f"{resp.name} faults scatter", SCATTER, layout, keys,
                                  staging, row_bytes)
        assert exp.status[j] == ErrorKind.WRITE
    tb.ram.faults[:] = []
    tb.ram.fault_resp = AxiResp.SLVERR
    sent = tb.ram.fault_answers
    assert all(sent[f, r] for f in ("rresp", "bresp") for r in ("SLVERR", "DECERR")), \
        f"an error response was never injected: {dict(sent)}"
    # Bad row sizes: every key is an error, nothing moves; an empty command completes.
    for bad_size in (0, cfg.gather.max_row_bytes + 1):
        exp = await run_and_check(tb, seed, f"row_bytes {bad_size}", GATHER, layout, keys[:5],
                                  staging, bad_size)
        assert exp.errors == 5 and exp.first_error_kind == ErrorKind.SIZE
    await run_and_check(tb, seed, "empty command", GATHER, layout, keys[:0], staging, row_bytes)


@cocotb.test()
async def test_back_to_back(dut):
    """Commands queued without waiting: gather, scatter of the same rows to other slots,
    another gather; key gaps and pauses; statuses in order, memory as applied in order."""
    cfg = config_from_env()
    seed = seed_from_env(dut._log)
    tb = GatherTB(dut, cfg, seed)
    await tb.reset()
    rng = tb.nrng
    W = cfg.gather.data_bytes
    row_bytes = max(1, min(cfg.gather.max_row_bytes, 2 * W + 3))
    tb.set_pauses(0.25)
    tb.set_gaps(0.2, 0.3)
    layout, staging, cap = random_layout(rng, cfg, tb.mem_size, row_bytes, 4, 40)
    await tb.load_tables(layout)
    fill_random(rng, tb.mem)
    n = min(cap, 48)
    k1 = random_keys(rng, cfg, layout, n, cap, bad=0.1)
    k2 = k1.copy()
    k2[:, 2] = k1[::-1, 2]
    k3 = random_keys(rng, cfg, layout, n // 2, cap, bad=0.1)
    cmds = [(GATHER, k1), (SCATTER, k2), (GATHER, k3)]
    golden = tb.mem.copy()
    exps = [transfer(op, golden, layout, k, staging, row_bytes, cfg=cfg) for op, k in cmds]
    tb.set_command_inputs(staging, row_bytes)
    for i, (op, k) in enumerate(cmds):
        tb.expect_writes(op, layout, k, staging, row_bytes, exps[i].status, append=i > 0)
    for op, k in cmds:
        tb.start(op, k)
    for i, ((op, k), exp) in enumerate(zip(cmds, exps)):
        got = await tb.finish()
        want = status_of(exp)
        want["op"] = op
        assert got == want, f"command {i}: status {got} != golden {want}; seed {seed}"
    compare(tb.log, "back-to-back", seed, tb.mem, golden, got, exps[-1], cmds[-1][0],
            k3, layout, staging, row_bytes)


# ------------------------------------------------------------------------- benchmark
def _bench_spec():
    text = os.environ.get("HOTLINE_GATHER_BENCH")
    return json.loads(text) if text else None


async def _bench_run(tb: GatherTB, layout, staging, row_bytes, rows, limit, latency, rng,
                     check: bool) -> dict:
    cfg = tb.cfg
    T = layout.tables
    keys = np.stack([rng.integers(0, T, rows), rng.integers(0, int(layout.rows[0]), rows),
                     np.arange(rows)], axis=1).astype(np.int64)
    golden = None
    if check:
        golden = tb.mem.copy()
        exp = transfer(GATHER, golden, layout, keys, staging, row_bytes, cfg=cfg)
    tb.ram.set_latency(latency)
    tb.set_command_inputs(staging, row_bytes, limit)
    await RisingEdge(tb.dut.clk)
    tb.monitor.restart_counts()
    start = tb.monitor.cycle
    tb.start(GATHER, keys)
    status = await tb.finish(timeout_us=rows * 400 * CLK_NS / 1000 + 100)
    cycles = tb.monitor.cycle - start
    c = tb.monitor.counts
    if check:
        compare(tb.log, f"bench {row_bytes} B rows", 0, tb.mem, golden, status, exp, GATHER,
                keys, layout, staging, row_bytes)
    assert status["rows_moved"] == rows, status
    steady = c["r"] / (tb.monitor.last_r - tb.monitor.first_r + 1)
    return {"data_bits": cfg.gather.data_bits, "row_bytes": row_bytes, "rows": rows,
            "latency": latency, "outstanding_limit": limit or cfg.gather.max_outstanding,
            "cycles": cycles, "r_beats": c["r"], "ar_bursts": c["ar"],
            "r_beats_per_cycle": round(c["r"] / cycles, 4),
            "r_beats_per_cycle_steady": round(steady, 4), "checked": check}


@cocotb.test(skip=_bench_spec() is None)
async def bench_throughput(dut):
    """R beats per cycle of long gathers (run by scripts/bench_gather.py, skipped otherwise).

    For each row size: ``rows`` aligned rows with no added latency
    (``no_latency``); the same at the given latency (``latency``); a sweep over
    outstanding limits (``sweep_rows`` rows each) for the smallest limit whose
    steady rate (first to last R beat) reaches ``target`` (``sweep``); and
    ``sweep_rows`` unaligned rows (odd base, stride and staging) with no added
    latency (``unaligned_no_latency``).  ``spec["kinds"]`` (default: all) picks
    which of them run.  Results go to the JSON file ``spec["out"]``.
    """
    spec = _bench_spec()
    cfg = config_from_env()
    seed = seed_from_env(dut._log)
    rng = np.random.default_rng(seed)
    top = cfg.gather.max_outstanding
    lat = spec["latency"]
    rows = spec["rows"]
    table_rows = spec.get("table_rows", 4096)
    n_tables = spec.get("tables", 4)
    max_rb = max(spec["row_bytes"])
    tables_bytes = n_tables * table_rows * (max_rb + 8) + 4096
    mem_size = -(-(tables_bytes + max(rows, spec["sweep_rows"]) * max_rb) // 4096) * 4096 + 8192
    tb = GatherTB(dut, cfg, seed, mem_size=mem_size, latency=0, full_checks=False)
    await tb.reset()
    fill_random(rng, tb.mem)
    out = []

    def emit(rec, kind):
        rec["kind"] = kind
        out.append(rec)
        dut._log.info("%s", json.dumps(rec))
        with open(spec["out"], "w") as f:
            json.dump(out, f, indent=1)

    def meets(r):
        return r["r_beats_per_cycle_steady"] >= spec["target"]

    kinds = set(spec.get("kinds", ["no_latency", "latency", "sweep", "unaligned_no_latency"]))

    for rb in spec["row_bytes"]:
        # Aligned tables, rows of rb bytes at stride rb, staging after them.
        layout = TableLayout([t * table_rows * rb for t in range(n_tables)],
                             [rb] * n_tables, [table_rows] * n_tables)
        staging = -(-(n_tables * table_rows * rb) // 4096) * 4096
        await tb.load_tables(layout)
        if "no_latency" in kinds:
            emit(await _bench_run(tb, layout, staging, rb, rows, 0, 0, rng, True), "no_latency")
        if "latency" in kinds:
            emit(await _bench_run(tb, layout, staging, rb, rows, 0, lat, rng, True), "latency")
        # Sweep: halve the limit while the target holds, then bisect.
        good, bad = top, 0
        lim = top if "sweep" in kinds else 0
        while lim >= 1:
            r = await _bench_run(tb, layout, staging, rb, spec["sweep_rows"], lim, lat, rng,
                                 False)
            emit(r, "sweep")
            if not meets(r):
                bad = lim
                break
            good = lim
            lim //= 2
        while bad and good - bad > 1:
            mid = (good + bad) // 2
            r = await _bench_run(tb, layout, staging, rb, spec["sweep_rows"], mid, lat, rng,
                                 False)
            emit(r, "sweep")
            if meets(r):
                good = mid
            else:
                bad = mid
        # Unaligned rows: every row is realigned between source and staging offsets.
        if "unaligned_no_latency" not in kinds:
            continue
        ul = TableLayout([t * table_rows * (rb + 5) + 3 for t in range(n_tables)],
                         [rb + 5] * n_tables, [table_rows] * n_tables)
        ustg = -(-(n_tables * table_rows * (rb + 5)) // 4096) * 4096 + 7
        await tb.load_tables(ul)
        emit(await _bench_run(tb, ul, ustg, rb, spec["sweep_rows"], 0, 0, rng, True),
             "unaligned_no_latency")
