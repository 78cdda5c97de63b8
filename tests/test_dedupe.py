"""The de-dup engine alone (Amaranth simulator) against first-occurrence numbering.

The engine's table RAMs are marked ``no_rw_check``: on the FPGA a read of a row in the
cycle of a write to it is left open.  ``collision_probe`` makes the simulated RAM return
the ways written in that cycle with every bit inverted, so these tests show the engine
never uses them (the cosim benches simulate read-old RAMs).
"""

import os
import random

import numpy as np
import pytest

from hotline.config import HotlineConfig


def _seed():
    text = os.environ.get("HOTLINE_SEED")
    seed = int(text, 0) if text else random.SystemRandom().randrange(1 << 32)
    print(f"seed {seed} (replay with HOTLINE_SEED={seed})")
    return seed


# One bank of 16 two-way buckets (many same-bucket neighbours), and two banks of 512
# one-way buckets (the banked table); 3- and 2-bit batch tags, so the table is wiped every
# 7 and 3 batches.
CONFIGS = {
    "one_bank": {"keys": {"tables": 2, "row_bits": 6},
                 "reorder": {"lanes": 2, "keys_per_sample": 3, "max_batch_keys": 16,
                             "dedupe_ways": 2, "dedupe_epoch_bits": 3, "hotmap_log2_buckets": 3}},
    "two_banks": {"keys": {"tables": 2, "row_bits": 12},
                  "reorder": {"lanes": 3, "keys_per_sample": 3, "max_batch_keys": 512,
                              "dedupe_ways": 1, "dedupe_epoch_bits": 2, "hotmap_log2_buckets": 3}},
}


def _batches(rng, cfg, n_batches):
    """Beats of cold keys (lane, key) per batch: short batches drawn from one small key set,
    runs of repeats, so equal keys and equal buckets follow each other closely, also across
    batch boundaries."""
    r = cfg.reorder
    space = cfg.keys.tables << cfg.keys.row_bits
    common = rng.choice(space, size=min(r.max_batch_keys, 24), replace=False)
    out = []
    for _ in range(n_batches):
        distinct = int(rng.integers(1, len(common) + 1))
        pool = rng.permutation(common)[:distinct]
        beats = []
        for _ in range(int(rng.integers(1, 9))):
            lanes = sorted(rng.choice(r.lanes, size=int(rng.integers(1, r.lanes + 1)), replace=False))
            beats.append([(int(lane), int(pool[min(int(rng.geometric(0.3)) - 1, distinct - 1)]
                                            if rng.random() < 0.5 else rng.choice(pool)))
                          for lane in lanes])
        out.append(beats)
    return out


@pytest.mark.parametrize("probe", [False, True], ids=["read_old", "collision_probe"])
@pytest.mark.parametrize("name", list(CONFIGS), ids=list(CONFIGS))
def test_dedupe_numbers_first_occurrences(name, probe):
    from amaranth.sim import Simulator
    from hotline.rtl.dedupe import DedupeEngine

    seed = _seed()
    rng = np.random.default_rng(seed)
    cfg = HotlineConfig.from_dict(CONFIGS[name])
    r = cfg.reorder
    max_epoch = (1 << r.dedupe_epoch_bits) - 1
    batches = _batches(rng, cfg, 100)

    # Items as the reorder unit sends them, and the expected outputs.
    items, exp_uvec, exp_cold = [], [], []
    for i, beats in enumerate(batches):
        epoch = i % max_epoch + 1
        wipe = i >= max_epoch and epoch == 1
        seen = {}
        for b, beat in enumerate(beats):
            us = {}
            for k, (lane, key) in enumerate(beat):
                if key not in seen:
                    seen[key] = len(seen)
                    exp_cold.append((key, seen[key]))
                us[lane] = seen[key]
                items.append({"key": key, "lane": lane, "last": int(k == len(beat) - 1),
                              "epoch": epoch, "wipe": int(wipe and b == 0 and k == 0)})
            exp_uvec.append((us, len(seen)))

    dut = DedupeEngine(cfg, collision_probe=probe)
    got_uvec, got_cold = [], []

    async def producer(ctx):
        for item in items:
            while rng.random() < 0.05:
                await ctx.tick()
            ctx.set(dut.items.valid, 1)
            ctx.set(dut.items.payload, item)
            await ctx.tick().until(dut.items.ready)
            ctx.set(dut.items.valid, 0)

    def consumer(port, got, n, p_ready):
        async def run(ctx):
            while len(got) < n:
                ready = rng.random() < p_ready
                ctx.set(port.ready, ready)
                if ready and ctx.get(port.valid):
                    got.append(ctx.get(port.payload))
                await ctx.tick()
        return run

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer, background=True)
    # Slow sinks at times, so the engine's pipeline stalls with keys in flight.
    sim.add_testbench(consumer(dut.uvec, got_uvec, len(exp_uvec), 0.5))
    sim.add_testbench(consumer(dut.cold, got_cold, len(exp_cold), 0.7))
    steps, limit = 0, 2 * (len(items) * 20 + 4000)   # (two time steps a clock cycle)
    while sim.advance() and steps < limit:
        steps += 1

    assert len(got_uvec) == len(exp_uvec) and len(got_cold) == len(exp_cold), (
        f"{len(got_uvec)}/{len(exp_uvec)} uvec beats, {len(got_cold)}/{len(exp_cold)} cold keys; seed {seed}")
    for i, (g, (us, count)) in enumerate(zip(got_uvec, exp_uvec)):
        got = ({lane: int(g.u[lane]) for lane in us}, int(g.count), int(g.over))
        assert got == (us, count, 0), f"beat {i}: rtl {got}, expected {(us, count, 0)}; seed {seed}"
    got = [(int(g.key), int(g.u)) for g in got_cold]
    assert got == exp_cold, f"cold keys differ; seed {seed}"
