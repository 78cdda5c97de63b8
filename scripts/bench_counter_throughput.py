#!/usr/bin/env python3
"""Sustained throughput of the popularity counter array RTL in cosimulation (Verilator).

Keys accepted per cycle at the unit's ``keys`` input, with no valid gaps and no
backpressure, on:

* ``zipf``: synthetic Criteo Kaggle-shaped samples (26 tables of Criteo's
  sizes, Zipf 1.05 over the rows, keys in sample order);
* ``repeated``: one key on every lane of every beat (the worst
  read-modify-write hazard);
* ``distinct``: all-distinct uniformly random keys;
* ``one_bank``: distinct keys that all hash to one bank (the adversarial
  worst case of the banked design: one operation per cycle);
* ``hot``: one table, Zipf 1.2 over 2**20 rows in random order (the hottest
  key is about 18 % of the stream, so its bank gets more than a quarter of
  all keys, scattered over the lanes);
* ``query_zipf``: the ``zipf`` keys learned, then sent again as QUERY beats
  (keys answered per cycle; at most ``fifo_depth`` QUERY beats are in flight).

Each stream is checked against the golden model after it ran (heavy-hitter
readout and estimate queries).  Figures are keys/cycle and the fraction of
the W keys/cycle limit, plus the cycles in which ``keys`` was stalled.  The
window runs from the first accepted beat to the last cycle of work the stream
caused (``busy`` high or an ``estimates`` beat taken), so the drain of the
bank queues and pipelines is inside it: a one-bank stream cannot exceed 1
key/cycle.
Prints one JSON line per stream and writes ``results/bench_counter_throughput.json``.

    python scripts/bench_counter_throughput.py [--keys 20000] [--streams zipf repeated distinct one_bank hot query_zipf]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from hotline.config import HotlineConfig
from hotline.host.data.synthetic import zipf_ranks
from hotline.host.learn_demo import criteo_keys
from hotline.testbench.popularity_tb import keys_in_bank, random_keys
from hotline.testbench.runner import run_bench

STREAMS = ("zipf", "repeated", "distinct", "one_bank", "hot", "query_zipf")


def make_stream(name, cfg, n, seed):
    rng = np.random.default_rng(seed)
    if name in ("zipf", "query_zipf"):
        tables = 26
        return criteo_keys(cfg, -(-n // tables), zipf_exponent=1.05, seed=seed)[:n]
    if name == "repeated":
        return np.full(n, int(random_keys(cfg, rng, 1)[0]), dtype=np.uint64)
    if name == "distinct":
        keys = np.unique(random_keys(cfg, rng, 2 * n))
        return rng.permutation(keys)[:n]
    if name == "one_bank":
        return rng.permutation(keys_in_bank(cfg, rng, n))
    if name == "hot":
        rows = zipf_ranks(rng, 1 << min(20, cfg.keys.row_bits), 1.2, n)
        return rows.astype(np.uint64)  # table 0
    raise ValueError(f"unknown stream {name!r}; choose from {', '.join(STREAMS)}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=20_000, help="keys per stream")
    ap.add_argument("--streams", nargs="*", default=list(STREAMS), choices=STREAMS)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--config", default=None, help="YAML config (default: the default config)")
    ap.add_argument("--out", default="results/bench_counter_throughput.json")
    args = ap.parse_args(argv)
    if args.keys < 26:
        ap.error("--keys must be at least 26")

    cfg = HotlineConfig.load(args.config)
    c = cfg.counter
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "streams.npz"
        out = Path(tmp) / "bench.json"
        np.savez(data, **{s: make_stream(s, cfg, args.keys, args.seed) for s in args.streams})
        run_bench("counter", cfg, "hotline.testbench.popularity_tb",
                  "counter_bench" if args.config is None else f"counter_bench_{Path(args.config).stem}",
                  extra_env={"HOTLINE_BENCH": str(data), "HOTLINE_BENCH_OUT": str(out),
                             "HOTLINE_SEED": str(args.seed)})
        measured = json.loads(out.read_text())

    sizes = {"lanes": c.lanes, "depth": c.depth, "log2_counters": c.log2_counters,
             "counter_bits": c.counter_bits, "banks": c.banks, "hh_sets": c.hh_sets,
             "hh_ways": c.hh_ways, "fifo_depth": c.fifo_depth,
             "conservative_update": c.conservative_update}
    rows = []
    for r in measured["results"]:
        row = {"bench": "counter_throughput", **r, "config": sizes, "seed": measured["seed"]}
        rows.append(row)
        print(json.dumps(row))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"bench": "counter_throughput", "config": sizes,
                                          "keys_per_stream": args.keys, "seed": measured["seed"],
                                          "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
