"""Simulated cycles per second of the whole accelerator top under the compiled Verilator harness.

    python scripts/bench_sim.py [--profile ecp5-85f | -c FILE] [--keys N]

Runs the top of the profile (default ecp5-85f) in :class:`hotline.host.sim.SimTop`:
free-running cycles with nothing to do, then LEARN / ESTIMATE / READOUT commands
through the register-level driver (:class:`hotline.host.device.Device`) on
Criteo-shaped Zipf keys, and reports cycles per wall second for each, with the
device's own performance counters.  Writes results/bench_sim.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from hotline.host.device import Device
from hotline.host.sim import SimTop
from hotline.profiles import add_config_arguments, config_from_args


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(ap)
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--idle-cycles", type=int, default=2_000_000)
    ap.add_argument("--out", default="results/bench_sim.json")
    args = ap.parse_args(argv)
    if not args.config and not args.profile:
        args.profile = "ecp5-85f"
    cfg = config_from_args(args)
    t0 = time.time()
    sim = SimTop(cfg, mem_bytes=1 << 25, log=lambda m: print(m, file=sys.stderr))
    build_s = time.time() - t0
    dev = Device(sim, cfg, poll_cycles=1024)
    rows = {}

    c0, t = sim.cycles, time.perf_counter()
    sim.run(args.idle_cycles)
    dt = time.perf_counter() - t
    rows["idle"] = {"cycles": sim.cycles - c0, "seconds": dt, "cycles_per_s": (sim.cycles - c0) / dt}

    rng = np.random.default_rng(0)
    tables = rng.integers(0, cfg.keys.tables, args.keys, dtype=np.uint64)
    rows_ = np.minimum(rng.zipf(1.05, args.keys) - 1, (1 << cfg.keys.row_bits) - 1)
    keys = tables << np.uint64(cfg.keys.row_bits) | rows_.astype(np.uint64)
    for name, fn in (("learn", lambda: dev.learn(keys)),
                     ("estimate", lambda: dev.estimate(keys[:args.keys // 4])),
                     ("readout", lambda: dev.table())):
        c0, t = sim.cycles, time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        rows[name] = {"cycles": sim.cycles - c0, "seconds": dt,
                      "cycles_per_s": (sim.cycles - c0) / dt}
    rows["learn"]["keys_per_cycle"] = args.keys / rows["learn"]["cycles"]
    result = {
        "what": "simulated cycles per wall-clock second of hotline_top (Verilator, compiled "
                "harness, one thread)",
        "command": "python " + " ".join(sys.argv),
        "profile": args.profile, "config": cfg.to_dict(), "keys": args.keys,
        "build_seconds": round(build_s, 1), "rows": rows, "perf": dev.perf(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg": os.getloadavg()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for name, r in rows.items():
        print(f"{name:9s} {r['cycles']:>10,} cycles in {r['seconds']:.2f} s: "
              f"{r['cycles_per_s'] / 1e6:.2f} M cycles/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
