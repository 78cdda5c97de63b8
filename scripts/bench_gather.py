#!/usr/bin/env python
"""R-channel throughput of the embedding gather DMA in cosimulation.

For each bus width (64, 128, 512 bits) the unit is built with Verilator and
driven by the cocotb bench ``bench_throughput`` of
:mod:`hotline.testbench.gather_tb` (cocotbext-axi's AxiRam as memory, no
pauses).  For each row size (64 B and 256 B, aligned, random rows of 4 tables
of 4096 rows, packed into the staging buffer) it measures R beats per cycle,
the limit being one beat per cycle:

* ``no_latency``: ``--rows`` rows, the memory answering as fast as AxiRam
  can, full outstanding limit;
* ``latency``: the same with the memory read latency raised to ``--latency``
  cycles (a pipelined delay stage between the AR handshake and AxiRam's read
  process);
* ``sweep``: at that latency, ``--sweep-rows`` rows per point, halving then
  bisecting the runtime ``outstanding_limit`` to find the fewest read bursts
  in flight whose steady rate reaches ``--target``;
* ``unaligned_no_latency``: ``--sweep-rows`` rows with odd table bases,
  strides and staging address (every row realigned), no added latency.

Every run of ``--rows`` rows (and the unaligned one) is checked byte for byte
against the golden model.  ``r_beats_per_cycle`` counts R beats over the
cycles from the command to its completion (so it includes the first latency
and the last writes); ``r_beats_per_cycle_steady`` over the cycles from the
first to the last R beat.

Prints one JSON object per line and writes them all to ``results/bench_gather.json``.

Usage::

    python scripts/bench_gather.py [--rows 10000] [--sweep-rows 1000] [--widths 64 128 512]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from hotline.config import HotlineConfig
from hotline.testbench.runner import run_bench

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000, help="rows per headline run")
    ap.add_argument("--sweep-rows", type=int, default=1000, help="rows per sweep point")
    ap.add_argument("--widths", type=int, nargs="+", default=[64, 128, 512])
    ap.add_argument("--row-bytes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--latency", type=int, default=64, help="added memory read latency (cycles)")
    ap.add_argument("--target", type=float, default=0.9, help="R beats per cycle to reach")
    ap.add_argument("--max-outstanding", type=int, default=128,
                    help="configured gather.max_outstanding (the sweep's upper end)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench_gather.json")
    args = ap.parse_args()

    records = []
    for bits in args.widths:
        cfg = HotlineConfig().replace(gather={"data_bits": bits,
                                              "max_outstanding": args.max_outstanding})
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "bench.json"
            spec = {"row_bytes": args.row_bytes, "latency": args.latency, "rows": args.rows,
                    "sweep_rows": args.sweep_rows, "target": args.target, "out": str(out)}
            t0 = time.perf_counter()
            run_bench("gather", cfg, "hotline.testbench.gather_tb", f"gather_bench_w{bits}",
                      testcase="bench_throughput",
                      extra_env={"HOTLINE_GATHER_BENCH": json.dumps(spec),
                                 "HOTLINE_SEED": str(args.seed), "COCOTB_LOG_LEVEL": "WARNING"})
            wall = time.perf_counter() - t0
            recs = json.loads(out.read_text())
        for rec in recs:
            rec.update({"bench": "gather_r_beats_per_cycle", "limit": 1.0,
                        "ratio_to_limit": rec["r_beats_per_cycle"],
                        "max_outstanding_cfg": args.max_outstanding,
                        "rbuf_beats": cfg.gather.rbuf_beats,
                        "max_burst_beats": cfg.gather.max_burst_beats})
            print(json.dumps(rec), flush=True)
        summary = {"bench": "gather_summary", "data_bits": bits, "wall_s": round(wall, 1)}
        for rb in args.row_bytes:
            mine = [r for r in recs if r["row_bytes"] == rb]
            ok = [r["outstanding_limit"] for r in mine
                  if r["kind"] == "sweep" and r["r_beats_per_cycle_steady"] >= args.target]
            summary[f"min_outstanding_{rb}B"] = min(ok) if ok else None
        print(json.dumps(summary), flush=True)
        records += recs + [summary]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(records, indent=1) + "\n")


if __name__ == "__main__":
    main()
