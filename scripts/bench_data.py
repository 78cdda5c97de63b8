#!/usr/bin/env python
"""Throughput of the data loaders (host side, CPU).

Measures, on this machine:

* ``synthetic``: :func:`synthetic_criteo` samples generated per second;
* ``criteo_parse``: :func:`load_criteo` text lines parsed per second from a
  TSV built by repeating the real sample rows, against the "limit" of a bare
  Python loop that only reads and strips the same lines (ratio = parse
  rate / bare read rate);
* ``criteo_cache_build`` / ``criteo_cache_open``: the same file parsed into
  the cache, then reopened (size and CRC-32 checks included);
* ``batches_from_cache``: samples per second handed out as 1024-sample
  batches from the memory-mapped cache.

Prints one JSON object per line and writes them all to
``results/data_loaders.json``.

Usage::

    python scripts/bench_data.py [--lines 200000] [--synthetic 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from hotline.host.data import load_criteo, synthetic_criteo

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT.parent / "shared" / "data" / "criteo_kaggle_format_sample.tsv"


def _timed(fn, repeat=1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200_000, help="lines of the Criteo TSV to parse")
    ap.add_argument("--synthetic", type=int, default=1_000_000, help="synthetic samples to generate")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "data_loaders.json")
    args = ap.parse_args()
    results = []
    machine = {"machine": platform.machine(), "python": platform.python_version()}

    def emit(rec):
        rec = dict(rec, **machine, load_average_1min=round(os.getloadavg()[0], 2), cpus=os.cpu_count())
        print(json.dumps(rec), flush=True)
        results.append(rec)

    secs, ds = _timed(lambda: synthetic_criteo(args.synthetic, seed=1))
    emit({"bench": "synthetic", "samples": args.synthetic, "tables": len(ds.table_sizes),
          "seconds": round(secs, 3), "samples_per_s": round(args.synthetic / secs)})

    if not SAMPLE.exists():
        emit({"bench": "criteo_parse", "skipped": f"{SAMPLE} not found"})
    else:
        tmp = Path(tempfile.mkdtemp(prefix="bench_data_"))
        try:
            lines = SAMPLE.read_bytes().splitlines(keepends=True)
            src = tmp / "train.tsv"
            with open(src, "wb") as f:
                for i in range(args.lines):
                    f.write(lines[i % len(lines)])
            mb = src.stat().st_size / 1e6

            def bare_read():
                n = 0
                with open(src, "rb", buffering=1 << 20) as f:
                    for line in f:
                        line.rstrip(b"\r\n")
                        n += 1
                return n
            read_s, n = _timed(bare_read, repeat=3)
            parse_s, ds = _timed(lambda: load_criteo(src), repeat=2)
            assert len(ds) == n == args.lines
            emit({"bench": "criteo_parse", "lines": n, "megabytes": round(mb, 2), "seconds": round(parse_s, 3),
                  "lines_per_s": round(n / parse_s), "megabytes_per_s": round(mb / parse_s, 2),
                  "bare_read_lines_per_s": round(n / read_s),
                  "ratio_to_bare_read": round(read_s / parse_s, 4),
                  "criteo_kaggle_45.8M_lines_est_minutes": round(45_840_617 / (n / parse_s) / 60, 1)})

            cache = tmp / "cache"
            build_s, _ = _timed(lambda: load_criteo(src, cache_dir=cache))
            open_s, cds = _timed(lambda: load_criteo(src, cache_dir=cache), repeat=3)
            emit({"bench": "criteo_cache_build", "lines": n, "seconds": round(build_s, 3),
                  "lines_per_s": round(n / build_s)})
            emit({"bench": "criteo_cache_open", "lines": n, "seconds": round(open_s, 4),
                  "speedup_vs_parse": round(parse_s / open_s, 1)})

            def drain():
                k = 0
                for b in cds.batches(1024):
                    k += len(b)
                return k
            batch_s, k = _timed(drain, repeat=3)
            emit({"bench": "batches_from_cache", "samples": k, "batch_size": 1024, "seconds": round(batch_s, 4),
                  "samples_per_s": round(k / batch_s)})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
