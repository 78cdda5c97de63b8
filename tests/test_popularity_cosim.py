"""Cosimulation of the popularity counter array (Verilator + cocotb) against the golden model.

One pytest entry per parameter set, each with its own build directory.  The
cocotb bench (``hotline.testbench.popularity_tb``) runs every scenario of
:data:`~hotline.testbench.popularity_tb.SCENARIOS` on one DUT with random
valid gaps and backpressure, and checks every ``estimates`` beat and every
``readout`` entry against :class:`hotline.host.popularity.PopularityCounter`.
Replay a failure with ``HOTLINE_SEED=<seed>`` (printed in the log).
"""

import os

import pytest

from hotline.config import HotlineConfig
from hotline.testbench.runner import run_bench


def _cfg(keys, **counter):
    return HotlineConfig().replace(keys=keys, counter=counter)


PARAMS = {
    # one lane, one sketch row, 16 counters: every key collides; a table count
    # that is not a power of two exercises the bad-key path
    "w1_d1_s4": _cfg({"tables": 3, "row_bits": 12},
                     lanes=1, depth=1, log2_counters=4, counter_bits=8, banks=2, hh_sets=4,
                     hh_ways=2, threshold=3, fifo_depth=2, conservative_update=False),
    # two lanes, four rows of 32 counters, 4-bit counters that saturate, 3-way sets
    "w2_d4_s5": _cfg({"tables": 5, "row_bits": 16},
                     lanes=2, depth=4, log2_counters=5, counter_bits=4, banks=4, hh_sets=8,
                     hh_ways=3, threshold=5, fifo_depth=4, conservative_update=False),
    # conservative update: three lanes (not a power of two), three rows of 64
    # 5-bit counters
    "w3_d3_s6_cu": _cfg({"tables": 26, "row_bits": 20},
                        lanes=3, depth=3, log2_counters=6, counter_bits=5, banks=2, hh_sets=8,
                        hh_ways=2, threshold=4, fifo_depth=8, conservative_update=True),
    # the default lanes, rows, banks, ways, update rule (conservative) and key space,
    # smaller memories
    "w4_d4_s10": _cfg({},
                      lanes=4, depth=4, log2_counters=10, counter_bits=16, banks=8, hh_sets=64,
                      hh_ways=4, threshold=8, fifo_depth=16),
}


@pytest.mark.cosim
@pytest.mark.parametrize("name", list(PARAMS))
def test_popularity_cosim(name):
    extra = {k: os.environ[k] for k in ("HOTLINE_SEED", "HOTLINE_COUNTER_KEYS",
                                        "HOTLINE_COUNTER_SCENARIOS") if k in os.environ}
    run_bench("counter", PARAMS[name], "hotline.testbench.popularity_tb", f"counter_{name}",
              extra_env=extra)
