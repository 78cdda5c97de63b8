"""Fast Amaranth-simulator tests of the counter array RTL.

The full unit is checked against the golden model with the same scoreboard
and scenarios as the cocotb bench (``hotline.testbench.popularity_tb``), at
tiny sizes so the Python simulator stays quick.  Every test prints its seed;
``HOTLINE_SEED`` replays one.
"""

from __future__ import annotations

import random
from collections import deque

import numpy as np
import pytest
from amaranth.sim import Simulator

from hotline.config import HotlineConfig
from hotline.rtl.popularity import CounterLayouts, Op, PopularityCounterArray
from hotline.testbench.popularity_tb import (Beat, CounterScoreboard, check_beats, scenario,
                                             update_beats)
from hotline.testbench.runner import seed_from_env


def tiny_cfg(**counter):
    base = dict(lanes=3, depth=2, log2_counters=4, counter_bits=5, banks=2, hh_sets=4, hh_ways=2,
                threshold=3, fifo_depth=8)
    base.update(counter)
    return HotlineConfig().replace(keys={"tables": 3, "row_bits": 6}, counter=base)


# ---------------------------------------------------------------------------
# the whole unit in the Amaranth simulator
# ---------------------------------------------------------------------------

def run_unit(cfg, beats, seed, *, idle=0.0, est_bp=0.0, ro_bp=0.0, max_cycles=200_000):
    """Drive ``beats`` into the unit, check all outputs; return stats (``stalls``: cycles an
    UPDATE beat waited)."""
    dut = PopularityCounterArray(cfg)
    L = dut.layouts
    board = CounterScoreboard(cfg, seed)
    rng = random.Random(seed)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    stats = {}

    async def bench(ctx):
        # the unit clears its memories out of reset (the simulation starts there)
        c = cfg.counter
        for _ in range(max(c.counters, c.hh_sets) // c.banks + 16):
            if not ctx.get(dut.busy):
                break
            await ctx.tick()
        else:
            raise AssertionError(f"seed {seed}: still busy after the reset-time clear")
        queue = deque(beats)
        offer = None
        stalls = 0
        quiet = 0
        for cycle in range(max_cycles):
            if offer is None and queue and not (idle and rng.random() < idle):
                offer = queue.popleft()
                ctx.set(dut.keys.payload.as_value(), L.pack_keys(offer.op, offer.keys, offer.mask))
            ctx.set(dut.keys.valid, offer is not None)
            e_ready = not (est_bp and rng.random() < est_bp)
            r_ready = not (ro_bp and rng.random() < ro_bp)
            ctx.set(dut.estimates.ready, e_ready)
            ctx.set(dut.readout.ready, r_ready)
            _, _, k_ready, e_valid, e_pay, r_valid, r_pay, busy = await ctx.tick().sample(
                dut.keys.ready, dut.estimates.valid, dut.estimates.payload.as_value(),
                dut.readout.valid, dut.readout.payload.as_value(), dut.busy)
            if offer is not None:
                if k_ready:
                    board.accept(offer)
                    offer = None
                elif offer.op == Op.UPDATE:
                    stalls += 1
            if e_valid and e_ready:
                board.estimate(*L.unpack_estimates(e_pay))
            if r_valid and r_ready:
                board.readout(*L.unpack_readout(r_pay))
            if offer is None and not queue and not board.outstanding:
                quiet = 0 if busy else quiet + 1
                if quiet >= 2:
                    break
        else:
            raise AssertionError(f"seed {seed}: timeout, {board.outstanding} outputs outstanding")
        board.finish()
        stats.update(cycles=cycle + 1, stalls=stalls)
        for port, exp in ((dut.perf_beats, board.beats_in), (dut.perf_keys, board.keys_in),
                          (dut.perf_bad_keys, board.bad_keys_in)):
            assert ctx.get(port) == exp, f"seed {seed}: {port.name} {ctx.get(port)} != {exp}"

    sim.add_testbench(bench)
    sim.run()
    return stats


CFGS = {
    "w3": tiny_cfg(),
    "w1": tiny_cfg(lanes=1, depth=1, banks=1, hh_sets=2, hh_ways=1, fifo_depth=2, threshold=2),
    "w4_sat": tiny_cfg(lanes=4, depth=3, counter_bits=3, threshold=4, banks=4, hh_ways=3,
                       fifo_depth=8),
    "w3_cu": tiny_cfg(depth=3, counter_bits=4, conservative_update=True),
    # degenerate widths: one counter and one set per bank, one way, 1-bit counters
    "edge": tiny_cfg(lanes=2, depth=2, log2_counters=2, banks=4, hh_sets=4, hh_ways=1,
                     counter_bits=1, threshold=1, fifo_depth=4),
}


@pytest.mark.parametrize("name", ["zipf", "repeated", "pool", "one_set", "saturate", "clear",
                                  "bad_keys"])
@pytest.mark.parametrize("cfg_id", list(CFGS))
def test_unit_matches_golden(cfg_id, name):
    cfg = CFGS[cfg_id]
    seed = seed_from_env()
    rng = np.random.default_rng(seed)
    beats = scenario(name, cfg, rng, 150)
    run_unit(cfg, beats, seed, idle=0.2, est_bp=0.4, ro_bp=0.4)


def test_repeated_key_runs_at_full_rate():
    """One key on every lane, back to back: one beat per cycle, no stall."""
    cfg = tiny_cfg(lanes=4, counter_bits=12, fifo_depth=8)
    seed = seed_from_env()
    rng = np.random.default_rng(seed)
    beats = update_beats(cfg, rng, [5] * 400)
    stats = run_unit(cfg, beats + check_beats(cfg, rng, [5], extra=0), seed)
    assert stats["stalls"] == 0, f"seed {seed}: {stats}"


def test_query_sees_every_earlier_update():
    """A QUERY right behind UPDATEs of the same key (same beat order): exact counts."""
    cfg = tiny_cfg(lanes=2, counter_bits=8)
    seed = seed_from_env()
    key = (1 << 6) | 9
    beats = []
    for n in range(1, 6):
        beats += [Beat(Op.UPDATE, [key, key], 0b11)] * n
        beats.append(Beat(Op.QUERY, [key, key], 0b01))
    run_unit(cfg, beats, seed)


def test_constructor_rejects_bad_config():
    with pytest.raises(TypeError, match="HotlineConfig"):
        PopularityCounterArray({"counter": {}})


def test_pack_keys_checks_fields():
    L = CounterLayouts(tiny_cfg())
    with pytest.raises(ValueError, match="at most 3 keys"):
        L.pack_keys(Op.UPDATE, [1, 2, 3, 4])
    with pytest.raises(ValueError, match="mask"):
        L.pack_keys(Op.UPDATE, [1], mask=8)
    with pytest.raises(ValueError, match="key"):
        L.pack_keys(Op.UPDATE, [1 << 40])
