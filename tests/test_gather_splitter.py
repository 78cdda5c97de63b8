"""The gather DMA's burst splitter (look-ahead registers) against a plain reference split.

The cosimulations cover three (max_burst_beats, page) pairs; this checks the
splitter alone, in Amaranth's simulator, over burst limits below, at and above
the page size, rows from one word to several pages, with random stalls on the
channel and on the issue gate.  Seed printed; HOTLINE_SEED replays.
"""

import os
import random

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from hotline.rtl.gather import _BurstSplitter, _burst_start, burst_start_layout


def reference(w, nr, max_beats, page_words):
    out = []
    while nr:
        n = min(nr, max_beats, page_words - w % page_words)
        out.append((w, n))
        w += n
        nr -= n
    return out


@pytest.mark.parametrize("max_beats, page_words", [(1, 8), (3, 8), (4, 8), (5, 8), (8, 8),
                                                   (9, 8), (16, 8), (20, 8), (16, 64), (2, 4)])
def test_splitter_matches_reference(max_beats, page_words):
    seed = int(os.environ.get("HOTLINE_SEED", random.randrange(1 << 30)))
    print(f"seed {seed}")
    rng = random.Random(seed)
    WA, max_rem = 12, 40
    lay = burst_start_layout(WA, range(max_rem + 1), max_beats, page_words)
    m = Module()
    en = Signal(init=1)
    w_in, rem_in = Signal(WA), Signal(range(max_rem + 1))
    _, start = _burst_start(m, en, lay, w_in, rem_in, max_beats, page_words, "s")
    valid, ready = Signal(), Signal()
    addr, length = Signal(WA + 2), Signal(8)
    sp = _BurstSplitter(m, "t", valid=valid, ready=ready, addr=addr, length=length, lay=lay,
                        max_beats=max_beats, page_words=page_words, lane_bits=2)
    gate = Signal()
    push = Signal()
    m.d.comb += [sp.start.eq(start), sp.push.eq(push), sp.can_issue.eq(gate)]
    rows = [(rng.randrange(1 << WA - 1), rng.randint(1, max_rem)) for _ in range(60)]
    rows += [(page_words - 1, 2), (0, min(page_words, max_rem)), (page_words - 1, max_rem)]
    expected = [b for w, nr in rows for b in reference(w, nr, max_beats, page_words)]
    got = []

    async def bench(ctx):
        i = 0
        in_pipe = 0      # rows in the two start stages, pushed when they come out
        pending = []
        for _ in range(3000):
            # Feed the start pipeline one row at a time, push it when it comes out.
            if i < len(rows) and not pending and in_pipe == 0:
                ctx.set(w_in, rows[i][0])
                ctx.set(rem_in, rows[i][1])
                pending.append(i)
                in_pipe = 3
            ctx.set(push, in_pipe == 1 and ctx.get(sp.in_ready))
            ctx.set(gate, rng.random() < 0.7)
            ctx.set(ready, rng.random() < 0.7)
            if ctx.get(valid) and ctx.get(ready):
                got.append((ctx.get(addr) >> 2, ctx.get(length) + 1))
            if in_pipe == 1:
                if ctx.get(sp.in_ready):
                    in_pipe = 0
                    pending.pop()
                    i += 1
            elif in_pipe:
                in_pipe -= 1
            await ctx.tick()
            if len(got) == len(expected):
                break

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == expected, f"seed {seed}"
