#!/usr/bin/env python3
"""A binding hot budget: four hot-set selection methods side by side.

Synthetic Criteo Kaggle-shaped data (the 26 real table sizes, 33.8 M rows;
Zipf row popularity, exponent swept).  The first ``--learn-samples`` samples
are the learning phase; the next ``--eval-batches`` mini-batches of
``--batch-size`` samples are the held-out evaluation run.  For every hot
budget (bytes of device memory for hot rows, ``row bytes = 4 * --dim``), four
methods choose the hot set:

``sketch-hw``
    The counter array's golden model (bit-exact with the RTL) at the config's
    sizes learns the learning keys; the host ranks candidates by estimate
    queries.  Candidates: the distinct keys of the learning batches (the host
    streams them to the unit, so it has seen them) plus the heavy-hitter
    readout.  Nothing comes from the evaluation run.
``sketch-10x``
    The same with about 10x the counter array's memory (more and wider
    counters, more heavy-hitter entries; exact sizes in the JSON).
``exact-sample``
    FAE's method: exact per-row counts over the same learning sample.
``oracle``
    Exact counts over the whole evaluation run (knows the future; on a run
    this short it reaches 100 % once the budget holds every key the run
    touches).

and, as a reference beside them, ``law``: the expected figures of the true
top-N rows of the generator's own Zipf laws on an endless run
(:func:`hotline.host.selection.zipf_law_sweep`): what any selection
approaches with unlimited learning data.

Evaluated on the held-out batches: the fraction of popular samples (every key
hot) and the host-to-device cold-row bytes per sample (each batch's distinct
cold rows, one row each, as the reorder unit de-duplicates them; no optimizer
state, no write-back).

    python scripts/bench_budget.py [--config FILE | --profile NAME] [--learn-samples 250000] [--eval-batches 250]
    python scripts/bench_budget.py --replot --out results/bench_budget.json --plot results/bench_budget.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from hotline.config import HotlineConfig
from hotline.fpga.resources import counter_array_blocks
from hotline.hashing import pack_keys
from hotline.host.data import CRITEO_KAGGLE_TABLE_SIZES, synthetic_criteo
from hotline.host.popularity import PopularityCounter
from hotline.host.selection import (batch_distinct_keys, budget_rows, rank_exact, rank_readout,
                                    rank_sketch, sweep, zipf_law_sweep)

METHODS = ("sketch-hw", "sketch-10x", "exact-sample", "oracle")
REFERENCE = "law"
MIB = 1 << 20
#: Keys per learn() call: the golden model's per-key loop holds Python lists of every index.
LEARN_CHUNK = 1 << 20


def scaled_counter(cfg: HotlineConfig, factor: float) -> HotlineConfig:
    """``cfg`` with about ``factor`` x the counter array's memory.

    Sketch: the same depth, the largest power-of-two multiple ``2**k <=
    factor`` of the counters (more counters, fewer collisions), then the
    counter width ``>= C`` that brings the product closest to ``factor``.
    Heavy hitters: a power-of-two number of sets ``>=`` the config's and at
    most 16 ways whose product is closest to ``factor`` x the entries (ties:
    more ways).  The exact sizes and memory ratio go into the JSON.
    """
    c = cfg.counter
    ds = max(0, min(int(math.floor(math.log2(factor))), 24 - c.log2_counters))
    bits = min(range(c.counter_bits, 33),
               key=lambda b: (abs(math.log((1 << ds) * b / (factor * c.counter_bits))), b))
    target = factor * c.hh_entries
    sets_log, ways = min(((s, w) for s in range(c.hh_set_bits, 21) for w in range(1, 17)),
                         key=lambda sw: (round(abs(math.log((1 << sw[0]) * sw[1] / target)), 9), -sw[1]))
    return cfg.replace(counter={"log2_counters": c.log2_counters + ds, "counter_bits": bits,
                                "hh_sets": 1 << sets_log, "hh_ways": ways})


def counter_summary(cfg: HotlineConfig) -> dict:
    c = cfg.counter
    mem = counter_array_blocks(cfg)
    return {"depth": c.depth, "log2_counters": c.log2_counters, "counter_bits": c.counter_bits,
            "hh_sets": c.hh_sets, "hh_ways": c.hh_ways, "threshold": c.threshold,
            "banks": c.banks, "conservative_update": c.conservative_update,
            "sketch_bits": c.depth * c.counters * c.counter_bits, "memory_bits": mem["bits"],
            "ecp5_dp16kd_blocks": mem["blocks"], "fits_ecp5_85f": mem["fits_ecp5_85f"]}


def packed_samples(cfg, num_samples, zipf, seed):
    """[num_samples, 26] packed keys of synthetic Criteo Kaggle-shaped samples."""
    data = synthetic_criteo(num_samples, seed=seed, zipf_exponent=zipf, num_dense=0)
    sparse = data.batch(0, num_samples).sparse
    tables = np.broadcast_to(np.arange(sparse.shape[1], dtype=np.int64), sparse.shape)
    return pack_keys(tables, sparse, cfg.keys.row_bits)


def plot(rows, setup, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    zipfs = setup["zipf_exponents"]
    fig, axes = plt.subplots(2, len(zipfs), figsize=(max(4.2 * len(zipfs), 7.5), 7.2), squeeze=False,
                             sharex=True)
    styles = {"sketch-hw": ("#d62728", "o", "-"), "sketch-10x": ("#ff7f0e", "s", "-"),
              "exact-sample": ("#1f77b4", "^", "--"), "oracle": ("#2ca02c", "", ":"),
              REFERENCE: ("#7f7f7f", "", "-.")}
    labels = {REFERENCE: "law (true top-N, endless run)"}
    for j, z in enumerate(zipfs):
        for m in METHODS + (REFERENCE,):
            sel = [r for r in rows if r["zipf"] == z and r["method"] == m]
            x = [r["budget_bytes"] / MIB for r in sel]
            color, marker, ls = styles[m]
            axes[0, j].plot(x, [100 * r["popular_fraction"] for r in sel], color=color,
                            marker=marker, ls=ls, ms=4, label=labels.get(m, m))
            axes[1, j].plot(x, [r["bytes_per_sample"] for r in sel], color=color, marker=marker,
                            ls=ls, ms=4, label=labels.get(m, m))
        base = setup["no_hot_set_bytes_per_sample"][str(z)]
        axes[1, j].axhline(base, color="grey", lw=1, ls="--", label="no hot set")
        axes[0, j].set_title(f"Zipf exponent {z}")
        axes[1, j].set_xlabel("hot budget (MiB)")
        axes[1, j].set_xscale("log", base=2)
        ticks = [b / MIB for b in sorted(set(r["budget_bytes"] for r in rows))][::2]
        axes[1, j].set_xticks(ticks, [f"{t:g}" for t in ticks])
        axes[1, j].set_ylim(bottom=0)
        axes[0, j].set_ylim(0, 100)
        for ax in axes[:, j]:
            ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].set_ylabel("popular samples (%)")
    axes[1, 0].set_ylabel("cold-row bytes per sample (host to device)")
    axes[0, 0].legend(fontsize=8, loc="upper left")
    axes[1, 0].legend(fontsize=8, loc="upper right")
    c = setup["counters"]["sketch-hw"]
    fig.suptitle(
        f"Criteo Kaggle tables, {setup['learn_samples']:,} learning + {setup['eval_samples']:,} held-out "
        f"samples, batch {setup['batch_size']}, dim {setup['dim']} ({setup['row_bytes']} B rows)\n"
        f"sketch-hw {c['depth']}x2^{c['log2_counters']}x{c['counter_bits']}b + "
        f"{c['hh_sets']}x{c['hh_ways']} heavy hitters; sketch-10x "
        f"{setup['counters']['sketch-10x']['memory_ratio']:g}x its memory", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None, help="HotlineConfig YAML (default: HotlineConfig())")
    ap.add_argument("--profile", default=None,
                    help="a shipped hardware profile (hotline.profiles) instead of --config")
    ap.add_argument("--learn-samples", type=int, default=250_000)
    ap.add_argument("--eval-batches", type=int, default=250)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--dim", type=int, default=16, help="embedding dimension (fp32 rows)")
    ap.add_argument("--zipf", type=float, nargs="+", default=[0.9, 1.05, 1.2])
    ap.add_argument("--scale", type=float, default=10.0, help="memory factor of the larger sketch")
    ap.add_argument("--budgets-mib", type=float, nargs="+",
                    default=[2.0 ** k for k in range(0, 11)], help="hot budgets in MiB")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/bench_budget.json")
    ap.add_argument("--plot", default="results/bench_budget.png")
    ap.add_argument("--replot", action="store_true", help="only redraw --plot from the JSON in --out")
    args = ap.parse_args(argv)
    if args.replot:
        saved = json.loads(Path(args.out).read_text())
        plot(saved["rows"], saved["setup"], args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
        return
    for name in ("learn_samples", "eval_batches", "batch_size", "dim"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.scale <= 1:
        ap.error("--scale must be above 1")

    if args.config and args.profile:
        ap.error("--config and --profile exclude each other")
    if args.profile:
        try:
            from hotline.profiles import load_profile
        except ImportError:
            ap.error("this checkout has no hotline.profiles; pass the config with --config FILE")
        cfg = load_profile(args.profile).config
    else:
        cfg = HotlineConfig.load(args.config)
    sizes = CRITEO_KAGGLE_TABLE_SIZES
    if cfg.keys.tables < len(sizes) or (1 << cfg.keys.row_bits) < max(sizes):
        ap.error(f"the config's key space ({cfg.keys.tables} tables, {cfg.keys.row_bits}-bit rows) "
                 f"does not hold Criteo Kaggle's {len(sizes)} tables of up to {max(sizes):,} rows")
    big = scaled_counter(cfg, args.scale)
    row_bytes = 4 * args.dim
    budgets_bytes = [int(round(b * MIB)) for b in args.budgets_mib]
    budgets = [budget_rows(b, row_bytes) for b in budgets_bytes]
    eval_samples = args.eval_batches * args.batch_size
    counters = {"sketch-hw": counter_summary(cfg), "sketch-10x": counter_summary(big)}
    counters["sketch-10x"]["memory_ratio"] = round(
        counters["sketch-10x"]["memory_bits"] / counters["sketch-hw"]["memory_bits"], 3)
    setup = {
        "bench": "budget", "config_file": args.config, "profile": args.profile, "counters": counters,
        "tables": "Criteo Kaggle (26 tables, 33,762,577 rows)", "table_rows_total": int(sum(sizes)),
        "learn_samples": args.learn_samples, "eval_batches": args.eval_batches,
        "eval_samples": eval_samples, "batch_size": args.batch_size, "dim": args.dim,
        "row_bytes": row_bytes, "zipf_exponents": args.zipf, "seed": args.seed,
        "methods": list(METHODS), "reference": REFERENCE,
        "candidates": "distinct keys of the learning samples plus the heavy-hitter readout",
        "bytes_per_sample": "distinct cold rows per held-out batch x row_bytes / samples "
                            "(host to device, rows only)",
        "no_hot_set_bytes_per_sample": {}, "per_zipf": {},
    }
    print(f"sketch-hw: {counters['sketch-hw']}\nsketch-10x: {counters['sketch-10x']}", file=sys.stderr)
    rows = []
    start_all = time.perf_counter()
    for z in args.zipf:
        t0 = time.perf_counter()
        keys = packed_samples(cfg, args.learn_samples + eval_samples, z, args.seed)
        learn, held = keys[:args.learn_samples], keys[args.learn_samples:]
        learn_stream = learn.ravel()
        candidates = np.unique(learn_stream)
        info = {"learning_keys": int(learn_stream.size), "distinct_learning_keys": int(candidates.size),
                "distinct_eval_keys": int(np.unique(held).size)}
        rankings = {}
        for name, c in (("sketch-hw", cfg), ("sketch-10x", big)):
            model = PopularityCounter(c)
            t = time.perf_counter()
            for i in range(0, learn_stream.size, LEARN_CHUNK):     # stream order; bounds memory
                model.learn(learn_stream[i:i + LEARN_CHUNK])
            info[f"{name}_learn_s"] = round(time.perf_counter() - t, 2)
            rankings[name] = rank_sketch(model, candidates)
            est = model.estimate(candidates)
            info[f"{name}_saturated_candidates"] = int((est == c.counter.counter_max).sum())
            readout = rank_readout(model)
            info[f"{name}_readout_keys"] = int(readout.size)
        rankings["exact-sample"] = rank_exact(learn_stream)
        rankings["oracle"] = rank_exact(held)
        distinct = batch_distinct_keys(held, args.batch_size)
        base = sweep(held, rankings["oracle"], [0], batch_size=args.batch_size, row_bytes=row_bytes,
                     batch_distinct=distinct)[0]
        setup["no_hot_set_bytes_per_sample"][str(z)] = base["bytes_per_sample"]
        for m in METHODS:
            for bb, r in zip(budgets_bytes, sweep(held, rankings[m], budgets, batch_size=args.batch_size,
                                                  row_bytes=row_bytes, batch_distinct=distinct)):
                row = {"zipf": z, "method": m, "budget_bytes": bb, **r}
                rows.append(row)
        for bb, r in zip(budgets_bytes, zipf_law_sweep(sizes, z, budgets, batch_size=args.batch_size,
                                                       row_bytes=row_bytes)):
            rows.append({"zipf": z, "method": REFERENCE, "budget_bytes": bb, **r})
        info["seconds"] = round(time.perf_counter() - t0, 1)
        setup["per_zipf"][str(z)] = info
        print(f"zipf {z}: {json.dumps(info)}", file=sys.stderr, flush=True)
    setup["seconds"] = round(time.perf_counter() - start_all, 1)

    # the figures table
    shown = METHODS + (REFERENCE,)
    print(f"{'zipf':>5} {'budget':>9} " + " ".join(f"{m:>22}" for m in shown))
    print(f"{'':>5} {'':>9} " + " ".join(f"{'popular  B/sample':>22}" for _ in shown))
    for z in args.zipf:
        for bb in budgets_bytes:
            cells = []
            for m in shown:
                r = next(r for r in rows if r["zipf"] == z and r["method"] == m and r["budget_bytes"] == bb)
                cells.append(f"{100 * r['popular_fraction']:>12.1f}% {r['bytes_per_sample']:>8.1f}")
            print(f"{z:>5} {bb / MIB:>6g}MiB " + " ".join(cells))
        print(f"{z:>5} no hot set: {setup['no_hot_set_bytes_per_sample'][str(z)]:.1f} B/sample")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"setup": setup, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    if args.plot:
        plot(rows, setup, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)


if __name__ == "__main__":
    main()
