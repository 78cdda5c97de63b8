#!/usr/bin/env python3
"""Benchmarks of the micro-batch reorder unit and its hot map.

Three figures, one JSON object per line on stdout, all written to
``results/bench_reorder.json``:

``cosim_throughput``
    Sustained lookups per cycle of the RTL in Verilator/cocotb at the default
    (ecp5-85f) config, W=4, T=26, on Zipf batches sent back to back without
    gaps or backpressure, over several batches (the hot set is the most
    frequent keys of separate learning batches, filling ``--fill`` of the hot
    map).  Scenarios (``SCENARIOS``): ``popular_zipf1.7`` and
    ``popular_zipf1.8`` (a fifth to a half of the samples popular), ``zipf``
    (Zipf 1.2, no popular sample, more cold keys than the one-per-cycle
    de-dup engine takes) and ``cold_heavy`` (a small hot set, most keys
    cold).  The window runs from the first input beat accepted to the last
    output beat (popular, non-popular, cold or status) of the last batch, so
    it includes the drain.  The limit is W lookups per cycle, so
    ``ratio_to_limit`` = lookups per cycle / W; since a sample takes
    ceil(T/W) beats, T=26 on W=4 lanes can reach at most 26/28 of it
    (``framing_limit_lookups_per_cycle`` = 3.714; ``ratio_to_framing_limit``).
    Every batch is also checked against the golden model.
``ecp5_hot_keys``
    The default (ecp5-85f) config's hot map: slots, the DP16KD blocks of the
    whole unit by :func:`hotline.fpga.resources.reorder_blocks` (hot-map
    copies, de-dup table, queues; the place-and-route figure is in the
    README), and the load the host builder reaches on random key sets there
    (measured), so ``hot_keys`` is how many hot keys the profile holds.
``golden_classify``
    Wall time of :func:`hotline.host.reorder.classify` (hot-map lookup, remap,
    de-dup) of a 1024 x 26 Zipf batch on one core, median of ``--repeat``
    (default hot map, batch limits raised to 32768 keys / 4096 samples).

    python scripts/bench_reorder.py [--batches 6 --batch 512] [--skip-cosim]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hotline.config import HotlineConfig
from hotline.host.hotmap import HotMap, HotMapError
from hotline.host.reorder import classify

from hotline.testbench.reorder_tb import zipf_batch as zipf_keys  # the cosim bench's data too


def emit(rows, row):
    print(json.dumps(row), flush=True)
    rows.append(row)


SCENARIOS = {
    # name: (Zipf exponent, hot set size over hot-map slots, samples per batch)
    # The hot set is the most frequent keys of separate learning batches; with the
    # ecp5-85f hot map (2048 slots) and 100k rows per table, Zipf 1.7 and 1.8 make a
    # fifth to a half of the samples popular (measured: popular_fraction).
    "popular_zipf1.7": (1.7, 0.9, None),
    "popular_zipf1.8": (1.8, 0.9, None),
    "zipf": (None, None, 256),        # the command-line --zipf / --fill: no popular samples
    "cold_heavy": (0.9, 0.05, 128),   # most keys cold: the de-dup engine works hardest
}


def bench_cosim(args, scenario):
    from hotline.testbench.runner import run_bench
    cfg = HotlineConfig()
    zipf, fill, batch = SCENARIOS[scenario]
    zipf = args.zipf if zipf is None else zipf
    fill = args.fill if fill is None else fill
    batch = args.batch if batch is None else batch
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        params = {"batch": batch, "batches": args.batches, "rows": args.rows,
                  "zipf": zipf, "fill": fill}
        t0 = time.perf_counter()
        run_bench("reorder", cfg, "hotline.testbench.reorder_tb", "reorder_bench_default",
                  testcase="bench_throughput",
                  extra_env={"HOTLINE_REORDER_BENCH": str(out),
                             "HOTLINE_REORDER_BENCH_PARAMS": json.dumps(params),
                             "HOTLINE_SEED": str(args.seed)})
        res = json.loads(out.read_text())
    res.update({"name": "cosim_throughput", "scenario": scenario,
                "limit_lookups_per_cycle": cfg.reorder.lanes,
                "ratio_to_limit": res["lookups_per_cycle"] / cfg.reorder.lanes,
                # One sample per ceil(T/W) beats leaves lanes idle in a sample's last beat.
                "framing_limit_lookups_per_cycle": cfg.reorder.keys_per_sample / cfg.reorder.beats_per_sample,
                "ratio_to_framing_limit": res["lookups_per_cycle"] * cfg.reorder.beats_per_sample
                / cfg.reorder.keys_per_sample,
                "zipf": zipf, "fill": fill, "rows_per_table": args.rows,
                "wall_s": round(time.perf_counter() - t0, 1)})
    return res


def achievable_load(cfg, rng, trials=2) -> float:
    """Highest load (in steps of 0.5 %) at which the builder placed random sets in all trials."""
    cap = cfg.reorder.hotmap_capacity
    space = cfg.keys.tables << cfg.keys.row_bits
    best = 0.0
    for load in np.arange(0.90, 1.0001, 0.005):
        n = int(cap * load)
        ok = True
        for _ in range(trials):
            keys = np.unique(rng.integers(0, space, size=n + n // 8 + 16, dtype=np.uint64))
            keys = rng.permutation(keys)[:n]
            try:
                HotMap.build(cfg, keys)
            except HotMapError:
                ok = False
                break
        if not ok:
            break
        best = float(load)
    return best


def bench_ecp5(args):
    from hotline.fpga.resources import ECP5_85F_BLOCKS, reorder_blocks, reorder_memories
    cfg = HotlineConfig()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    load = achievable_load(cfg, rng)
    build_s = time.perf_counter() - t0
    r = cfg.reorder
    blocks = reorder_blocks(cfg)
    return {
        "name": "ecp5_hot_keys", "device": "LFE5U-85F", "dp16kd_blocks": ECP5_85F_BLOCKS,
        "lanes": r.lanes, "hotmap_hashes": r.hotmap_hashes, "hotmap_ways": r.hotmap_ways,
        "hotmap_log2_buckets": r.hotmap_log2_buckets, "slot_word_bits": 1 + cfg.keys.key_bits + r.slot_bits,
        "read_port_copies": r.lanes, "unit_blocks_estimate": blocks["blocks"],
        "memories": [list(mm) for mm in reorder_memories(cfg)],
        "slots": r.hotmap_capacity, "builder_load": load,
        "hot_keys": int(r.hotmap_capacity * load),
        "max_batch_keys": r.max_batch_keys, "max_batch_samples": r.max_batch_samples,
        "load_search_s": round(build_s, 1),
    }


def bench_golden(args):
    # Host speed on a full 1024 x 26 batch: batch limits above the ecp5-85f profile's.
    cfg = HotlineConfig().replace(reorder={"max_batch_keys": 32768, "max_batch_samples": 4096})
    rng = np.random.default_rng(args.seed)
    learn = zipf_keys(rng, cfg, 4096, args.rows, args.zipf)
    uniq, counts = np.unique(learn, return_counts=True)
    hot = uniq[np.argsort(-counts, kind="stable")][: int(cfg.reorder.hotmap_capacity * args.fill)]
    hm = HotMap.build(cfg, hot)
    keys = zipf_keys(rng, cfg, 1024, args.rows, args.zipf)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        cb = classify(cfg, hm, keys)
        times.append(time.perf_counter() - t0)
    return {"name": "golden_classify", "batch": list(keys.shape), "hot_keys": len(hm),
            "median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3,
            "hot_fraction": float(cb.hot.mean()), "popular": int(len(cb.popular)),
            "unique_cold": int(len(cb.cold_keys)), "repeat": args.repeat,
            "threads_note": "NumPy on one core (OMP/MKL threads do not apply to these ops)"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=512, help="samples per cosim batch")
    ap.add_argument("--batches", type=int, default=6, help="back-to-back cosim batches")
    ap.add_argument("--rows", type=int, default=100_000, help="rows per table of the Zipf data")
    ap.add_argument("--zipf", type=float, default=1.2, help="Zipf exponent")
    ap.add_argument("--fill", type=float, default=0.9, help="hot set size over hot-map slots")
    ap.add_argument("--repeat", type=int, default=50, help="golden classify repetitions")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-cosim", action="store_true")
    ap.add_argument("--out", default="results/bench_reorder.json")
    args = ap.parse_args(argv)
    rows = []
    emit(rows, bench_golden(args))
    emit(rows, bench_ecp5(args))
    if not args.skip_cosim:
        for scenario in SCENARIOS:
            emit(rows, bench_cosim(args, scenario))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
