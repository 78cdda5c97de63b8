#!/usr/bin/env python
"""R-channel throughput of the embedding gather DMA in cosimulation.

For each bus width (64, 128, 512 bits) the unit is built with Verilator and
driven by the cocotb bench ``bench_throughput`` of
:mod:`hotline.testbench.gather_tb` (cocotbext-axi's AxiRam as memory, no
pauses).  For each row size (64 B and 256 B, aligned, random rows of 4 tables
of 4096 rows, packed into the staging buffer) it measures R beats per cycle,
the limit being one beat per cycle.  Two tables, each record naming its
table and the full ``gather`` config it ran with:

``headline`` (the DEFAULT :class:`~hotline.config.GatherConfig`, only
``data_bits`` changed; runtime ``outstanding_limit`` 0, i.e. the configured
``max_outstanding``):

* ``no_latency``: ``--rows`` rows, the memory answering as fast as AxiRam can;
* ``latency``: the same with the memory read latency raised to ``--latency``
  cycles (a pipelined delay stage between the AR handshake and AxiRam's read
  process);
* ``unaligned_no_latency``: ``--sweep-rows`` rows with odd table bases,
  strides and staging address (every row realigned), no added latency.

``inflight_sweep`` (a separate build with ``max_outstanding`` raised to
``--sweep-max-outstanding``, default 128, so the sweep can look above the
default): at ``--latency`` cycles, ``--sweep-rows`` rows per point, halving
then bisecting the runtime ``outstanding_limit`` to find the fewest read
bursts in flight whose steady rate reaches ``--target``.

Every headline run of ``--rows`` rows (and the unaligned one) is checked byte
for byte against the golden model.  ``r_beats_per_cycle`` counts R beats
over the cycles from the command to its completion (so it includes the first
latency and the last writes); ``r_beats_per_cycle_steady`` over the cycles
from the first to the last R beat.

Prints one JSON object per line and writes them all to ``results/bench_gather.json``.

Usage::

    python scripts/bench_gather.py [--rows 4000] [--sweep-rows 1000] [--widths 64 128 512]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from hotline.config import HotlineConfig
from hotline.testbench.runner import run_bench

ROOT = Path(__file__).resolve().parent.parent
HEADLINE_KINDS = ["no_latency", "latency", "unaligned_no_latency"]


def run(cfg: HotlineConfig, name: str, spec: dict, seed: int) -> tuple[list, float]:
    """Build ``cfg``'s gather unit, run ``bench_throughput`` with ``spec``; records, wall s."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        t0 = time.perf_counter()
        run_bench("gather", cfg, "hotline.testbench.gather_tb", name,
                  testcase="bench_throughput",
                  extra_env={"HOTLINE_GATHER_BENCH": json.dumps({**spec, "out": str(out)}),
                             "HOTLINE_SEED": str(seed), "COCOTB_LOG_LEVEL": "WARNING"})
        wall = time.perf_counter() - t0
        return json.loads(out.read_text()), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4000, help="rows per headline run")
    ap.add_argument("--sweep-rows", type=int, default=1000,
                    help="rows per sweep point and per unaligned run")
    ap.add_argument("--widths", type=int, nargs="+", default=[64, 128, 512])
    ap.add_argument("--row-bytes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--latency", type=int, default=64, help="added memory read latency (cycles)")
    ap.add_argument("--target", type=float, default=0.9, help="R beats per cycle to reach")
    ap.add_argument("--sweep-max-outstanding", type=int, default=128,
                    help="gather.max_outstanding of the sweep's build (the sweep's upper end)")
    ap.add_argument("--no-sweep", action="store_true", help="headline table only")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench_gather.json")
    args = ap.parse_args()

    records = []
    base = {"row_bytes": args.row_bytes, "latency": args.latency, "rows": args.rows,
            "sweep_rows": args.sweep_rows, "target": args.target}

    def add(recs, table, cfg):
        gcfg = dataclasses.asdict(cfg.gather)
        for rec in recs:
            rec.update({"bench": "gather_r_beats_per_cycle", "table": table, "limit": 1.0,
                        "ratio_to_limit": rec["r_beats_per_cycle"], "gather": gcfg})
            print(json.dumps(rec), flush=True)
        records.extend(recs)

    for bits in args.widths:
        cfg = HotlineConfig().replace(gather={"data_bits": bits})
        recs, wall = run(cfg, f"gather_bench_w{bits}", {**base, "kinds": HEADLINE_KINDS},
                         args.seed)
        add(recs, "headline", cfg)
        summary = {"bench": "gather_summary", "data_bits": bits,
                   "default_max_outstanding": cfg.gather.max_outstanding,
                   "headline_wall_s": round(wall, 1)}
        for rec in recs:
            if rec["kind"] == "latency":
                summary[f"latency{args.latency}_{rec['row_bytes']}B"] = rec["r_beats_per_cycle"]
        if not args.no_sweep:
            scfg = HotlineConfig().replace(gather={"data_bits": bits,
                                                   "max_outstanding": args.sweep_max_outstanding})
            recs, wall = run(scfg, f"gather_sweep_w{bits}", {**base, "kinds": ["sweep"]},
                             args.seed)
            add(recs, "inflight_sweep", scfg)
            summary["sweep_wall_s"] = round(wall, 1)
            for rb in args.row_bytes:
                ok = [r["outstanding_limit"] for r in recs
                      if r["row_bytes"] == rb and r["r_beats_per_cycle_steady"] >= args.target]
                summary[f"min_outstanding_{rb}B"] = min(ok) if ok else None
        print(json.dumps(summary), flush=True)
        records.append(summary)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(records, indent=1) + "\n")


if __name__ == "__main__":
    main()
