"""The board self-test: exercise the accelerator over a register transport.

:func:`run_selftest` talks to a :class:`hotline.fpga.selftest.SelfTestCore`
(registers at 0, its on-chip host memory at ``RAM_BASE``) through any object
with ``async read32(addr)`` and ``async write32(addr, value)``: the UART of a
real board (:class:`AsyncTransport` around
:class:`hotline.host.transport.UartTransport`), or cocotbext-uart in
cosimulation.  It checks the identification, learns Zipf keys, reads the
heavy-hitter table and estimates back, and compares everything with the golden
model; it returns a report and raises :class:`SelfTestError` on the first
difference.
"""

from __future__ import annotations

import numpy as np

from .. import regmap
from ..config import HotlineConfig
from ..regmap import Opcode, Status
from .popularity import PopularityCounter

__all__ = ["SelfTestError", "AsyncTransport", "run_selftest", "RAM_BASE"]

RAM_BASE = 1 << 28
_R = regmap.BY_NAME


class SelfTestError(AssertionError):
    """The board answered something the golden model does not."""


class AsyncTransport:
    """An ``async`` face for a blocking register transport (``read32``/``write32``)."""

    def __init__(self, transport):
        self.t = transport

    async def read32(self, addr: int) -> int:
        return self.t.read32(addr)

    async def write32(self, addr: int, value: int) -> None:
        self.t.write32(addr, value)


async def _write_words(t, offset: int, words) -> None:
    for i, w in enumerate(np.asarray(words, dtype=np.uint64)):
        await t.write32(RAM_BASE + offset + 8 * i, int(w) & 0xFFFF_FFFF)
        await t.write32(RAM_BASE + offset + 8 * i + 4, int(w) >> 32)


async def _read_words(t, offset: int, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.uint64)
    for i in range(n):
        lo = await t.read32(RAM_BASE + offset + 8 * i)
        hi = await t.read32(RAM_BASE + offset + 8 * i + 4)
        out[i] = lo | hi << 32
    return out


async def _command(t, opcode, *, tag=0, addr_a=0, addr_b=0, count=0, arg=0, polls=10_000):
    await t.write32(regmap.CMD_OPCODE, int(opcode) | tag << 8)
    for reg, value in ((regmap.CMD_ADDR_A_LO, addr_a & 0xFFFF_FFFF), (regmap.CMD_ADDR_A_HI, addr_a >> 32),
                       (regmap.CMD_ADDR_B_LO, addr_b & 0xFFFF_FFFF), (regmap.CMD_ADDR_B_HI, addr_b >> 32),
                       (regmap.CMD_COUNT, count), (regmap.CMD_ARG, arg)):
        await t.write32(reg, value)
    await t.write32(regmap.CMD_SUBMIT, 1)
    head = _R["DONE_HEAD"]
    for _ in range(polls):
        word = await t.read32(regmap.DONE_HEAD)
        if head.field("VALID").get(word):
            r0 = await t.read32(regmap.DONE_RESULT0)
            r1 = await t.read32(regmap.DONE_RESULT1)
            await t.write32(regmap.DONE_POP, 1)
            return head.field("TAG").get(word), Status(head.field("STATUS").get(word)), r0, r1
    raise SelfTestError(f"{Opcode(opcode).name}: no completion after {polls} polls")


async def run_selftest(t, cfg: HotlineConfig, *, keys: int = 48, seed: int = 0, log=print) -> dict:
    """Run the self-test over transport ``t`` for a core built with ``cfg``; returns a report."""
    def check(cond, what):
        if not cond:
            raise SelfTestError(what)

    ident = await t.read32(regmap.ID)
    check(ident == regmap.MAGIC, f"ID reads {ident:#010x}, not {regmap.MAGIC:#010x}: no Hotline "
                                 f"accelerator behind this port")
    caps = await t.read32(regmap.CAPS_COUNTER)
    f = _R["CAPS_COUNTER"]
    check(f.field("LOG2_COUNTERS").get(caps) == cfg.counter.log2_counters and
          f.field("HH_WAYS").get(caps) == cfg.counter.hh_ways,
          f"CAPS_COUNTER {caps:#010x} does not match the config given (built with another one?)")
    log(f"selftest: ID ok, counter 2^{cfg.counter.log2_counters} x {cfg.counter.depth}")
    rng = np.random.default_rng(seed)
    k = cfg.keys
    tables = rng.integers(0, k.tables, keys, dtype=np.uint64)
    rows = np.minimum(rng.zipf(1.3, keys) - 1, (1 << k.row_bits) - 1).astype(np.uint64)
    words = tables << np.uint64(k.row_bits) | rows
    # one key repeated past the threshold, so the heavy-hitter table is never empty
    words[:min(keys, cfg.counter.threshold + 1)] = words[0]
    golden = PopularityCounter(cfg)
    await _command(t, Opcode.CLEAR)
    await _write_words(t, 0, words)
    tag, status, r0, r1 = await _command(t, Opcode.LEARN, tag=1, addr_a=0, count=keys)
    check((tag, status, r0, r1) == (1, Status.OK, keys, 0),
          f"LEARN ended {status.name} with {r0} learned, {r1} dropped")
    golden.learn(words)
    n = cfg.counter.hh_entries
    out = 8 * keys
    tag, status, r0, r1 = await _command(t, Opcode.READOUT, addr_b=out, count=n)
    check(status == Status.OK and r0 == n, f"READOUT ended {status.name} with {r0} entries")
    got = await _read_words(t, out, n)
    valid, hk, hc = (a.ravel() for a in golden.table())
    want = (valid.astype(np.uint64) << np.uint64(63) | hc.astype(np.uint64) << np.uint64(40)
            | hk.astype(np.uint64))
    check(np.array_equal(got, want), "the heavy-hitter table differs from the golden model")
    uniq = np.unique(words)
    await _write_words(t, 0, uniq)
    tag, status, r0, r1 = await _command(t, Opcode.ESTIMATE, addr_a=0, addr_b=out, count=uniq.size)
    check(status == Status.OK, f"ESTIMATE ended {status.name}")
    est = await _read_words(t, out, uniq.size)
    check(np.array_equal(est, golden.estimate(uniq).astype(np.uint64)),
          "estimates differ from the golden model")
    cycles = await t.read32(regmap.PERF_CYCLES)
    report = {"ok": True, "keys": keys, "heavy_hitters": int(valid.sum()), "distinct": int(uniq.size),
              "perf_cycles": cycles}
    log(f"selftest: learn/readout/estimate of {keys} keys equal the golden model "
        f"({report['heavy_hitters']} heavy hitters)")
    return report
