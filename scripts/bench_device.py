#!/usr/bin/env python3
"""The whole accelerator under ``sim``: device cycles per mini-batch, simulation speed, step time.

    python scripts/bench_device.py [--profile ecp5-85f | -c FILE] [--buses 64 512]
                                   [--latency 64] [--steps 20] [--skip-train]

For each AXI data width in ``--buses``, the profile's accelerator top (the
generated Verilog in Verilator, :class:`hotline.host.sim.SimTop`, host memory
answering reads ``--latency`` cycles after the address) runs, through the
register-level driver (:class:`hotline.host.device.Device`):

1. ``LEARN`` of ``--learn-batches`` Criteo-shaped mini-batches (1024 samples x
   26 tables, row of table ``t`` drawn Zipf(``a``) over ``--rows`` rows per
   table, scrambled by a fixed permutation per table), then ``READOUT``; the hot set is the
   readout ranked by count (:func:`hotline.host.popularity.rank_hot`), at most
   ``--fill`` of the hot-map slots, loaded with ``LOAD_HOTMAP``;
2. ``CLASSIFY`` of a fresh 1024 x 26 batch;
3. ``SET_TABLES`` (26 tables of ``--rows`` rows of ``--row-bytes`` bytes) and
   ``GATHER`` of the batch's distinct cold keys into a staging buffer;
4. ``SCATTER`` of those rows and ``CLASSIFY`` of the next batch, as a training
   step issues them: first one after the other, then with the classify
   submitted behind the scatter, which the device runs beside the DMA
   (``scatter_then_classify``: cycles of each way and their ratio).

Device cycles are the simulated cycles from submit to completion (polled every
4 cycles) and the unit's busy counter from the performance registers; the
time at a clock is cycles / MHz (the README uses the profile's 100 MHz).  Simulated cycles per wall second are
reported for each command.  Scenarios: Zipf 1.7 (a part of the samples
popular) and Zipf 1.2 (less skew: the batch may hold more distinct cold
keys than ``max_batch_keys``, which the device reports as ``CAPACITY``, and
its gather is then not run).

With ``--steps``, ``hotline train --mode hotline`` runs the quickstart config
(synthetic Criteo-shaped data) for that many steps with ``--backend golden``
and ``--backend sim``, and the wall time per training step of each is
reported (the sim backend runs the profile's sizes; the golden one the
derived config the quickstart uses).

Writes ``results/bench_device.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hotline.host.device import Device
from hotline.host.hotmap import HotMap, HotMapError
from hotline.host.popularity import rank_hot
from hotline.host.sim import SimTop
from hotline.profiles import add_config_arguments, config_from_args
from hotline import regmap
from hotline.regmap import Opcode
from hotline.testbench.reorder_tb import bounded_zipf

def criteo_shaped(rng, cfg, B: int, rows: int, a: float, perms) -> np.ndarray:
    """B samples; key j from table j, row Zipf(a) over ``rows`` rows, scrambled by a fixed
    permutation per table (so popular rows are not all small numbers)."""
    T = cfg.reorder.keys_per_sample
    r = bounded_zipf(rng, a, rows, (B, T))
    r = perms[np.arange(T)[None, :] % len(perms), r]
    t = (np.arange(T) % cfg.keys.tables)[None, :]
    return (t.astype(np.uint64) << np.uint64(cfg.keys.row_bits)) | r.astype(np.uint64)


def timed(sim, fn):
    c0, t0 = sim.cycles, time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    cyc = sim.cycles - c0
    return out, cyc, dt


def bench_bus(cfg, bus: int, args, scenario: str, a: float) -> dict:
    cfg = cfg.replace(gather={"data_bits": bus})
    r, k = cfg.reorder, cfg.keys
    B, T = 1024, r.keys_per_sample
    rb = args.row_bytes
    tables_bytes = k.tables * args.rows * rb
    scratch = 8 * (2 * B * T + 2 * B + r.max_batch_keys) + (1 << 16)
    scratch = max(scratch, 8 * B * T * args.learn_batches)
    stage_bytes = r.max_batch_keys * rb
    mem = scratch + tables_bytes + stage_bytes + (1 << 20)
    t0 = time.perf_counter()
    sim = SimTop(cfg, mem_bytes=mem, read_latency=args.latency)
    build_s = time.perf_counter() - t0
    dev = Device(sim, cfg, poll_cycles=4, scratch_bytes=scratch)
    rng = np.random.default_rng(args.seed)
    perms = np.stack([rng.permutation(args.rows) for _ in range(k.tables)])
    row = {"scenario": scenario, "zipf": a, "bus_bits": bus, "read_latency_cycles": args.latency,
           "batch": [B, T], "rows_per_table": args.rows, "row_bytes": rb,
           "sim_build_s": round(build_s, 1)}

    learn = np.concatenate([criteo_shaped(rng, cfg, B, args.rows, a, perms).ravel()
                            for _ in range(args.learn_batches)])
    _, cyc, dt = timed(sim, lambda: dev.learn(learn))
    row["learn"] = {"keys": int(learn.size), "cycles": cyc, "keys_per_cycle": round(learn.size / cyc, 3),
                    "sim_cycles_per_s": round(cyc / dt)}
    keys, counts = dev.readout()
    hot = rank_hot(keys, counts, int(args.fill * r.hotmap_capacity), 1)
    while True:
        try:
            hm = HotMap.build(cfg, hot)
            break
        except HotMapError:
            hot = hot[:hot.size * 15 // 16]
    dev.load_hotmap(hm.image)
    row["hot_rows"] = int(hot.size)
    row["hot_map_slots"] = r.hotmap_capacity

    batch = criteo_shaped(rng, cfg, B, args.rows, a, perms)
    dev.t.write32(regmap.PERF_CTRL, 1)
    try:
        (cb, done), cyc, dt = timed(sim, lambda: dev.classify(batch))
        overflow = False
    except Exception as exc:                      # BatchOverflow: the cycles still count
        cb, overflow = None, type(exc).__name__
        cyc, dt = None, None
    perf = dev.perf()
    row["classify"] = {
        "cycles": cyc if cyc is not None else perf["reorder_busy"],
        "reorder_busy_cycles": perf["reorder_busy"],
        "keys_per_cycle": round(B * T / perf["reorder_busy"], 3),
        "overflow": overflow,
        "popular_samples": int(cb.popular.size) if cb is not None else None,
        "distinct_cold_keys": int(cb.cold_keys.size) if cb is not None else None,
        "sim_cycles_per_s": round(cyc / dt) if cyc else None,
        "axi_wr_beats": perf["axi_wr_beats"], "axi_rd_beats": perf["axi_rd_beats"]}
    if cb is not None and cb.cold_keys.size:
        base = scratch + (1 << 12)
        stage = base + tables_bytes
        dev.set_tables([base + t * args.rows * rb for t in range(k.tables)], [rb] * k.tables,
                       [args.rows] * k.tables, rb)
        dev.t.write32(regmap.PERF_CTRL, 1)
        moved, cyc, dt = timed(sim, lambda: dev.move(Opcode.GATHER, cb.cold_keys, stage))
        perf = dev.perf()
        beats_per_row = -(-rb // (bus // 8))
        row["gather"] = {
            "rows": int(moved), "cycles": cyc, "gather_busy_cycles": perf["gather_busy"],
            "axi_rd_beats": perf["axi_rd_beats"],
            "row_read_beats_per_cycle": round(moved * beats_per_row / perf["gather_busy"], 3),
            "bytes_per_cycle": round(moved * rb / cyc, 2),
            "sim_cycles_per_s": round(cyc / dt)}
        # the training loop's pair: SCATTER of this batch's rows, CLASSIFY of the next batch;
        # once one after the other, once with the classify submitted behind the scatter
        # (the device runs it while the DMA moves the rows)
        nxt = criteo_shaped(rng, cfg, B, args.rows, a, perms)
        ops = -(-(stage + r.max_batch_keys * rb) // 4096) * 4096   # the DMA's key list
        try:
            def serial():
                dev.move(Opcode.SCATTER, cb.cold_keys, stage, at=ops)
                return dev.classify(nxt)

            def overlapped():
                h = dev.start_move(Opcode.SCATTER, cb.cold_keys, stage, at=ops)
                out = dev.classify(nxt)
                dev.finish_move(h)
                return out
            (c1, _), cyc_s, _ = timed(sim, serial)
            (c2, _), cyc_o, _ = timed(sim, overlapped)
            assert all(np.array_equal(getattr(c1, f), getattr(c2, f))
                       for f in ("popular", "non_popular", "hot", "index", "cold_keys"))
            row["scatter_then_classify"] = {
                "rows": int(cb.cold_keys.size), "serial_cycles": cyc_s, "overlapped_cycles": cyc_o,
                "serial_over_overlapped": round(cyc_s / cyc_o, 3)}
        except Exception as exc:                  # the next batch overflowed: nothing to pair
            row["scatter_then_classify"] = {"skipped": type(exc).__name__}
    sim.close()
    return row


def train_step_times(steps: int) -> dict:
    out = {}
    for backend in ("golden", "sim"):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "hotline.cli", "train", "--mode", "hotline", "--backend", backend,
                   "--steps", str(steps), "--no-progress", "--no-plots", "--out", tmp]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            res = json.loads((Path(tmp) / "metrics.json").read_text())["results"]["hotline"]
        out[backend] = {"steps": steps, "batch": res["batch_size"],
                        "train_s_per_step": round(res["train_seconds"] / steps, 4),
                        "hot_phase_samples_per_s": res.get("hot_phase_samples_per_s"),
                        "popular_fraction": res.get("popular_fraction"),
                        "hot_rows": res.get("hot_rows"), "capacity": res.get("capacity"),
                        "overflow_batches": res.get("overflow_batches"),
                        "process_wall_s": round(wall, 1)}
    out["sim_over_golden_step_time"] = round(out["sim"]["train_s_per_step"] /
                                             out["golden"]["train_s_per_step"], 1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(ap)
    ap.add_argument("--buses", type=int, nargs="+", default=[64, 512])
    ap.add_argument("--latency", type=int, default=64, help="host-memory read latency (cycles)")
    ap.add_argument("--rows", type=int, default=100_000, help="rows per table")
    ap.add_argument("--row-bytes", type=int, default=64, help="bytes per row (dim 16, fp32)")
    ap.add_argument("--learn-batches", type=int, default=4)
    ap.add_argument("--fill", type=float, default=0.9, help="hot set over hot-map slots")
    ap.add_argument("--steps", type=int, default=20, help="training steps per backend")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="results/bench_device.json")
    args = ap.parse_args(argv)
    if not args.config and not args.profile:
        args.profile = "ecp5-85f"
    cfg = config_from_args(args)
    rows = []
    for scenario, a in (("zipf1.7", 1.7), ("zipf1.2", 1.2)):
        for bus in args.buses:
            row = bench_bus(cfg, bus, args, scenario, a)
            print(json.dumps(row), flush=True)
            rows.append(row)
    result = {
        "what": "device cycles per Criteo-shaped mini-batch (classify, gather of its cold rows) "
                "of the whole accelerator top in Verilator, and step time golden vs sim",
        "command": "python scripts/bench_device.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "profile": args.profile, "config": cfg.to_dict(), "runs": rows,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1min_at_end": round(os.getloadavg()[0], 2)},
    }
    if not args.skip_train:
        result["train_step"] = train_step_times(args.steps)
        print(json.dumps(result["train_step"]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
