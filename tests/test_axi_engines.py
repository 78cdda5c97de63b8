"""The word writer against a Python AXI4 write subordinate, in Amaranth's simulator.

Random word streams (runs of consecutive words, jumps, and words written twice)
with random AWREADY/WREADY/BVALID stalls: memory after the writes must equal
applying the words in order, no byte outside them may be written, and on a
bus wider than 64 bits runs of consecutive words must share beats.
"""

import random

import pytest
from amaranth.sim import Simulator

from hotline.rtl.axi_engines import WordWriter

ADDR_BITS = 24


def _stream(rng: random.Random, n: int) -> list[tuple[int, int]]:
    words, addr = [], 8 * rng.randrange(64)
    while len(words) < n:
        r = rng.random()
        if r < 0.7:
            addr += 8                                   # the next word
        elif r < 0.8:
            pass                                        # the same word again
        elif r < 0.9:
            addr -= 8 * rng.randrange(1, 4)             # back a little
        else:
            addr = 8 * rng.randrange(512)               # anywhere
        addr %= 8 * 512
        words.append((addr, rng.getrandbits(64)))
    return words


@pytest.mark.parametrize("data_bits", [64, 128, 512])
def test_word_writer_merges_beats_and_keeps_order(data_bits, seed):
    print(f"seed {seed}")
    rng = random.Random(seed * 7 + data_bits)
    dut = WordWriter(addr_bits=ADDR_BITS, data_bits=data_bits, id_bits=2, max_outstanding=4)
    words = _stream(rng, 400)
    bb = data_bits // 8
    mem, ref = {}, {}
    for a, d in words:
        for i in range(8):
            ref[a + i] = d >> (8 * i) & 0xFF
    seen = {"aw": [], "w": [], "b_owed": 0, "beats": 0}

    async def bench(ctx):
        i = 0
        idle = 0
        while idle < 50:
            if i < len(words) and rng.random() < 0.8:
                a, d = words[i]
                ctx.set(dut.words.valid, 1)
                ctx.set(dut.words.payload.as_value(), d << ADDR_BITS | a)
            else:
                ctx.set(dut.words.valid, 0)
            ctx.set(dut.awready, rng.random() < 0.6)
            ctx.set(dut.wready, rng.random() < 0.6)
            ctx.set(dut.bvalid, seen["b_owed"] > 0 and rng.random() < 0.5)
            ctx.set(dut.bresp, 0)
            if ctx.get(dut.words.valid) and ctx.get(dut.words.ready):
                i += 1
            if ctx.get(dut.awvalid) and ctx.get(dut.awready):
                seen["aw"].append(ctx.get(dut.awaddr))
            if ctx.get(dut.wvalid) and ctx.get(dut.wready):
                seen["w"].append((ctx.get(dut.wdata), ctx.get(dut.wstrb)))
            if ctx.get(dut.bvalid) and ctx.get(dut.bready):
                seen["b_owed"] -= 1
            while seen["aw"] and seen["w"]:            # a write is its AW and its W beat
                at = seen["aw"].pop(0)
                data, strb = seen["w"].pop(0)
                assert at % bb == 0
                assert all((strb >> (8 * g) & 0xFF) in (0, 0xFF) for g in range(bb // 8))
                for j in range(bb):
                    if strb >> j & 1:
                        mem[at + j] = data >> (8 * j) & 0xFF
                seen["b_owed"] += 1
                seen["beats"] += 1
            busy = ctx.get(dut.busy)
            idle = idle + 1 if (i == len(words) and not busy) else 0
            await ctx.tick()
        assert i == len(words)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert mem == ref, "memory differs from the words applied in order"
    runs = sum(1 for (a, _), (b, _) in zip(words, words[1:]) if b == a + 8)
    if data_bits == 64:
        assert seen["beats"] == len(words)
    else:
        # with ~70 % of the words following the one before, beats must be shared
        assert seen["beats"] < len(words) - runs // 4, (seen["beats"], len(words), runs)
