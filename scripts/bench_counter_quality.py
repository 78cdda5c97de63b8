#!/usr/bin/env python3
"""Hot-set quality of the popularity counter array (golden model = the RTL, bit for bit).

On synthetic Zipf data over Criteo Kaggle's 26 table sizes: the fraction of accesses
covered by the hot set the unit finds, divided by the fraction covered by the exact
top-N of the same size, for N = the heavy-hitter capacity (readout) and 10x, 100x
that (ranked by estimate queries over the distinct keys of the learning sample).
Measured on the learning sample itself and on a held-out sample of the same size
(exact top-N of the held-out sample as the reference there).  The candidates of
the 10x and 100x hot sets always come from the learning sample: the held-out rows
measure a hot set chosen before the held-out keys were seen (ranking the held-out
sample's own distinct keys would leak its key set into the choice).  Each config's memory
is given in bits and estimated ECP5 DP16KD blocks (an LFE5U-85F has 208, 3.7 Mbit).

    python scripts/bench_counter_quality.py [--samples 400000] [--out results/bench_counter_quality.json]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from hotline.config import HotlineConfig
from hotline.fpga.resources import counter_array_blocks
from hotline.host.learn_demo import criteo_keys
from hotline.host.popularity import PopularityCounter, coverage_quality

CONFIGS = {
    # the default (ECP5-85F bring-up) config: conservative update, 4 x 2^14 x 9-bit
    # counters, 1024 x 3 heavy hitters in 8 banks
    "default": {},
    # the same memory with plain count-min updates
    "default-plain": {"conservative_update": False},
    # the previous default: 4 x 2^16 x 9-bit counters, 1024 x 4 heavy hitters (too large
    # for an ECP5-85F beside the other units)
    "S16-hh1024x4": {"log2_counters": 16, "hh_sets": 1024, "hh_ways": 4},
}


def coverage(model, sample_keys, candidates, multiples=(1, 10, 100)) -> list[dict]:
    """:func:`coverage_quality` with ``candidates`` (the distinct keys of the learning
    sample, never of the evaluated one), each row saying where its hot set came from."""
    rows = coverage_quality(model, sample_keys, multiples, candidates=candidates)
    for row in rows:
        row["candidates"] = ("heavy-hitter readout" if row["multiple"] == 1
                             else "learning sample's distinct keys")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=400_000, help="learning samples (x26 keys)")
    ap.add_argument("--zipf", type=float, default=1.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--out", default="results/bench_counter_quality.json")
    args = ap.parse_args(argv)

    base = HotlineConfig()
    learn = criteo_keys(base, args.samples, zipf_exponent=args.zipf, seed=args.seed)
    held_out = criteo_keys(base, 2 * args.samples, zipf_exponent=args.zipf, seed=args.seed)[learn.size:]
    rows = []
    for name in args.configs:
        cfg = base.replace(counter=CONFIGS[name])
        model = PopularityCounter(cfg)
        start = time.perf_counter()
        model.learn(learn)
        seconds = time.perf_counter() - start
        mem = counter_array_blocks(cfg)
        candidates = np.unique(learn)
        for where, sample in (("learning sample", learn), ("held-out sample", held_out)):
            for q in coverage(model, sample, candidates):
                row = {"bench": "counter_quality", "config": name, "counter": CONFIGS[name],
                       "keys_learned": int(learn.size), "zipf": args.zipf, "evaluated_on": where,
                       **q, "memory_bits": mem["bits"], "ecp5_blocks": mem["blocks"],
                       "fits_ecp5_85f": mem["fits_ecp5_85f"], "golden_keys_per_s": learn.size / seconds}
                print(json.dumps(row), flush=True)
                rows.append(row)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
