"""Benchmark: DLRM training, hybrid baseline vs the Hotline pipeline, in one run.

On synthetic Criteo-calibrated Zipf data (Criteo Kaggle's 26 real table
sizes by default: 33.8 M rows, 2.2 GB of fp32 rows per mode) with the
reference DLRM (dim 16, bottom 13-512-256-64-16, top 367-512-256-1,
mini-batch 1024, SGD) at the default hot budget (256 MiB), it measures:

* bytes copied host -> device per sample, hybrid vs hotline after the
  learning phase (goal: at least 5x fewer for hotline);
* samples/s of both on this machine;
* the golden accelerator model's share of the hotline step time (goal < 10 %).

Prints JSON lines, writes ``results/bench_train.json`` and
``results/bench_train.png``.  Runs unchanged on a CUDA GPU
(``--device cuda``): pinned host tables, non-blocking copies and a CUDA copy
stream for the overlapped gather.

    python scripts/bench_train.py                        # full Criteo sizes, CPU
    python scripts/bench_train.py --device cuda --steps 400
"""

from __future__ import annotations

import os

# idle OpenMP threads must not spin on a shared machine (must precede importing torch)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hotline.host.data import CRITEO_KAGGLE_TABLE_SIZES, synthetic_criteo  # noqa: E402
from hotline.host.embedding import resolve_device  # noqa: E402
from hotline.host.train_config import TrainConfig, parse_bytes  # noqa: E402
from hotline.host.trainer import make_trainer  # noqa: E402

BYTES_GOAL = 5.0        # hybrid / hotline bytes per sample, at least
SHARE_LIMIT = 0.10      # golden model's share of hotline step time, at most


def emit(record: dict, sink: list) -> None:
    sink.append(record)
    print(json.dumps(record), flush=True)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
           f"{torch.get_num_threads()} torch threads"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--steps", type=int, default=400, help="training steps per mode")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--learn-fraction", type=float, default=TrainConfig().learn_fraction)
    ap.add_argument("--hot-budget", default=str(TrainConfig().hot_budget_bytes))
    ap.add_argument("--table-scale", type=float, default=1.0,
                    help="table sizes as a fraction of Criteo Kaggle's (1.0 = the real 33.8 M rows)")
    ap.add_argument("--optimizer", default="sgd", choices=("sgd", "adagrad"))
    ap.add_argument("--zipf", type=float, default=1.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=25, help="steps per alternation between the modes")
    ap.add_argument("--out", default="results")
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    sizes = tuple(max(2, int(round(n * args.table_scale))) for n in CRITEO_KAGGLE_TABLE_SIZES)
    cfg = TrainConfig(batch_size=args.batch_size, steps=args.steps, optimizer=args.optimizer,
                      learn_fraction=args.learn_fraction, seed=args.seed,
                      hot_budget_bytes=parse_bytes(args.hot_budget, "--hot-budget"),
                      device=args.device, eval_batch_size=8192, timeline_steps=4)
    records = []
    samples = args.steps * args.batch_size + 16 * 8192       # training stream + a test slice
    t0 = time.perf_counter()
    ds = synthetic_criteo(samples, seed=args.seed, zipf_exponent=args.zipf, table_sizes=sizes)
    train, test = ds.split(args.steps * args.batch_size / samples)
    emit({"bench": "train", "what": "setup", "device": str(device), "device_name": device_name(device),
          "torch": torch.__version__, "tables": len(sizes), "table_rows": int(sum(sizes)),
          "table_scale": args.table_scale, "row_bytes": cfg.row_bytes,
          "host_table_bytes": int(sum(sizes)) * cfg.row_bytes, "train_samples": len(train),
          "test_samples": len(test), "batch_size": cfg.batch_size, "steps": cfg.steps,
          "learn_fraction": cfg.learn_fraction, "hot_budget_bytes": cfg.hot_budget_bytes,
          "optimizer": cfg.optimizer, "zipf_exponent": args.zipf,
          "data_seconds": round(time.perf_counter() - t0, 2)}, records)

    # Both trainers live side by side and train in alternating chunks of steps, so that a
    # machine shared with other jobs loads both modes alike (timings of one mode after the
    # other were seen to differ by 1.5x from load changes alone).
    trainers, build = {}, {}
    for mode in ("hybrid", "hotline"):
        t_build = time.perf_counter()
        trainers[mode] = make_trainer(mode, cfg, ds.table_sizes, ds.num_dense, total_steps=cfg.steps)
        build[mode] = time.perf_counter() - t_build
    for start in range(0, cfg.steps, args.chunk):
        for mode, tr in trainers.items():
            tr.train(train, min(args.chunk, cfg.steps - start))

    results, curves, events = {}, {}, None
    for mode, tr in trainers.items():
        s = tr.summary()
        s.update(tr.evaluate(test))
        s["build_seconds"] = round(build[mode], 2)
        curves[mode] = list(tr.losses)
        if mode == "hotline":
            events = list(tr.timers.events)
            hot_busy = {k: v for k, v in tr.acc.busy.items() if k in ("classify", "gather", "scatter")}
            hot_cpu = {k: v for k, v in tr.acc.cpu.items() if k in ("classify", "gather", "scatter")}
            s["golden_wall_s"] = {k: round(v, 4) for k, v in hot_busy.items()}
            s["golden_cpu_s"] = {k: round(v, 4) for k, v in hot_cpu.items()}
            # wall time inside the calls, on any thread (worker-thread calls overlap compute and
            # are stretched by waiting for a core: an upper bound)
            s["golden_wall_share_hot_phase"] = round(sum(hot_busy.values()) / max(tr.hot_phase_seconds, 1e-9), 4)
            # CPU time of the calls: the work itself
            s["golden_share_hot_phase"] = round(sum(hot_cpu.values()) / max(tr.hot_phase_seconds, 1e-9), 4)
            # what the main thread itself waits for: classification and any gather not hidden
            exposed = tr.timers.totals.get("classify", 0) + tr.timers.totals.get("wait_gather", 0)
            s["golden_exposed_share_hot_phase"] = round(exposed / max(tr.hot_phase_seconds, 1e-9), 4)
            s["hw_config"] = {"counter.log2_counters": tr.hw_cfg.counter.log2_counters,
                              "reorder.hotmap_log2_buckets": tr.hw_cfg.reorder.hotmap_log2_buckets,
                              "reorder.max_batch_keys": tr.hw_cfg.reorder.max_batch_keys}
            tr.close()
        results[mode] = s
        emit({"bench": "train", "what": "mode", **{k: v for k, v in s.items() if k != "bytes"}}, records)
    del trainers
    gc.collect()

    hy, ho = results["hybrid"], results["hotline"]
    ratio_total = hy["h2d_bytes_per_sample"] / ho["hot_phase_h2d_bytes_per_sample"]
    ratio_rows = hy["h2d_row_bytes_per_sample"] / ho["hot_phase_h2d_row_bytes_per_sample"]
    summary = {
        "bench": "train", "what": "summary", "device": str(device), "device_name": device_name(device),
        "h2d_bytes_per_sample_hybrid": hy["h2d_bytes_per_sample"],
        "h2d_bytes_per_sample_hotline": ho["hot_phase_h2d_bytes_per_sample"],
        "h2d_bytes_ratio": round(ratio_total, 3),
        "h2d_bytes_ratio_vs_goal": round(ratio_total / BYTES_GOAL, 3),
        "h2d_row_bytes_ratio": round(ratio_rows, 3),
        "h2d_row_bytes_ratio_vs_goal": round(ratio_rows / BYTES_GOAL, 3),
        "samples_per_s_hybrid": hy["samples_per_s"],
        "samples_per_s_hotline": ho["samples_per_s"],
        "samples_per_s_hotline_after_learning": ho.get("hot_phase_samples_per_s"),
        "speedup_hotline_over_hybrid": round(ho["samples_per_s"] / hy["samples_per_s"], 3),
        "popular_fraction": ho["popular_fraction"], "hot_rows": ho["hot_rows"],
        "golden_share": ho["golden_share_hot_phase"],
        "golden_share_vs_limit": round(ho["golden_share_hot_phase"] / SHARE_LIMIT, 3),
        "golden_wall_share": ho["golden_wall_share_hot_phase"],
        "golden_exposed_share": ho["golden_exposed_share_hot_phase"],
        "test_auc_hybrid": hy["test_auc"], "test_auc_hotline": ho["test_auc"],
        "test_log_loss_hybrid": hy["test_log_loss"], "test_log_loss_hotline": ho["test_log_loss"],
    }
    emit(summary, records)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_train.json").write_text(json.dumps(
        {"records": records, "loss_curves": curves, "argv": sys.argv[1:]}, indent=1))
    plot(results, curves, events, summary, out / "bench_train.png")
    return 0


def plot(results, curves, events, summary, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from hotline.host.plots import draw_time_bars

    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    modes = list(results)
    # bytes per sample, by kind
    ax = axes[0][0]
    kinds = ("rows", "inputs")
    for i, m in enumerate(modes):
        r = results[m]
        if m == "hotline":   # after learning
            n = max(1, r["hot_phase_samples"])
            rows = r["hot_phase_h2d_row_bytes_per_sample"]
            total = r["hot_phase_h2d_bytes_per_sample"]
        else:
            n = max(1, r["samples"])
            rows = r["h2d_row_bytes_per_sample"]
            total = r["h2d_bytes_per_sample"]
        ax.bar(i, rows, color="#1f77b4", label="embedding rows" if i == 0 else None)
        ax.bar(i, total - rows, bottom=rows, color="#ff7f0e", label="dense, labels, indices" if i == 0 else None)
        ax.text(i, total, f"{total:,.0f}", ha="center", va="bottom")
    ax.set_xticks(range(len(modes)), [f"{m}" + (" (after learning)" if m == "hotline" else "")
                                      for m in modes])
    ax.set_ylabel("bytes host -> device per sample")
    ax.set_title(f"h2d bytes: {summary['h2d_bytes_ratio']:.1f}x fewer "
                 f"(rows alone {summary['h2d_row_bytes_ratio']:.1f}x)")
    ax.legend()
    # samples/s
    ax = axes[0][1]
    sps = [results[m]["samples_per_s"] for m in modes]
    ax.bar(range(len(modes)), sps, color=["#7f7f7f", "#2ca02c"])
    for i, v in enumerate(sps):
        ax.text(i, v, f"{v:,.0f}", ha="center", va="bottom")
    ax.set_xticks(range(len(modes)), modes)
    ax.set_ylabel("samples/s (whole run)")
    ax.set_title(f"throughput on {summary['device_name'][:60]}", fontsize=9)
    # time breakdown per step
    draw_time_bars(axes[1][0], results,
                   f"time per step; golden model share {summary['golden_share']:.1%} "
                   f"(limit {SHARE_LIMIT:.0%})", xlabel="ms per step", legend_cols=3)
    # losses
    ax = axes[1][1]
    for m, c in curves.items():
        ax.plot(np.arange(1, len(c) + 1), c, label=m, alpha=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(f"same maths: test AUC {summary['test_auc_hybrid']:.4f} (hybrid) vs "
                 f"{summary['test_auc_hotline']:.4f} (hotline)", fontsize=9)
    ax.legend()
    fig.suptitle(f"DLRM training, hybrid vs Hotline (golden backend), device: {summary['device']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
