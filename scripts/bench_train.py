"""Benchmark: DLRM training, every mode side by side: two hybrid baselines, device, Hotline, TorchRec.

On synthetic Criteo-calibrated Zipf data (Criteo Kaggle's 26 real table
sizes by default: 33.8 M rows, 2.2 GB of fp32 rows per mode) with the
reference DLRM (dim 16, bottom 13-512-256-64-16, top 367-512-256-1,
mini-batch 1024, SGD) at the default hot budget (256 MiB), the modes

* ``hybrid``        rows per lookup ``[B, T, D]`` host -> device (the reference DLRM);
* ``hybrid-dedup``  the batch's unique rows plus an inverse index (any hybrid can);
* ``device``        every table on the compute device;
* ``hotline``       hot rows on the device, unique cold rows gathered per batch;
* ``torchrec``      TorchRec's DLRM (DistributedModelParallel, FBGEMM fused tables on
  the compute device), when the ``torchrec`` extra is installed

train on the same data from the same parameters, in alternating chunks of
steps (so that a shared machine's load changes hit every mode alike), in two
groups one after the other (``--groups``; at most three sets of host tables
resident): hybrid, hybrid-dedup and hotline; then hybrid again (the timing
reference of the group), device and TorchRec.  It measures, over the whole
run and after the learning phase (the same steps for every mode):

* bytes host -> device per sample by kind (embedding rows, the one-time
  hot-table load, dense features / labels / indices), and back;
* hotline's gain over both hybrids, split into its causes: de-duplication
  (hybrid -> hybrid-dedup), hot rows on the device (hybrid-dedup -> hotline
  without the hot-table load) and the one-time hot-table load amortised over
  the window (a factor below 1);
* samples/s, test log loss and AUC of every mode, and samples/s against the
  hybrid of the same group;
* the golden accelerator model's share of the hotline step time.

Prints JSON lines, writes ``results/bench_train.json`` and
``results/bench_train.png``.  Runs unchanged on a CUDA GPU
(``--device cuda``): pinned host tables, non-blocking copies and a CUDA copy
stream for the overlapped gather (``scripts/device_check.sh`` is the prepared
GPU run).

    python scripts/bench_train.py                        # full Criteo sizes, CPU (~7 GB RAM)
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
from hotline.host.metrics import hotline_gain, mark, window  # noqa: E402
from hotline.host.train_config import TrainConfig, parse_bytes  # noqa: E402
from hotline.host.trainer import learn_steps_for, make_trainer  # noqa: E402

BYTES_GOAL = 5.0        # hybrid / hotline bytes per sample, at least
SHARE_LIMIT = 0.10      # golden model's share of hotline step time, at most
MODES = ("hybrid", "hybrid-dedup", "device", "hotline")
#: Modes trained side by side, group after group: at most three sets of host tables (2.2 GB each at
#: full Criteo size) live at once, and each group has a hybrid to time its modes against.
GROUPS = (("hybrid", "hybrid-dedup", "hotline"), ("hybrid", "device", "torchrec"))


def emit(record: dict, sink: list) -> None:
    sink.append(record)
    print(json.dumps(record), flush=True)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
           f"{torch.get_num_threads()} torch threads"


def gain(bt: dict, win: str) -> dict:
    """Hotline's gain over both hybrids in window ``win`` (:func:`hotline.host.metrics.hotline_gain`)."""
    return hotline_gain(*(bt[m][win] for m in ("hybrid", "hybrid-dedup", "hotline")))


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
    ap.add_argument("--groups", default=";".join(",".join(g) for g in GROUPS),
                    help="modes trained side by side, groups one after the other (';' between groups, "
                         "',' between modes; a mode repeated in a later group is that group's timing "
                         "reference); default: %(default)s")
    ap.add_argument("--no-torchrec", action="store_true", help="leave the TorchRec peer out")
    ap.add_argument("--out", default="results")
    args = ap.parse_args(argv)

    groups = [[m.strip() for m in g.split(",") if m.strip()] for g in args.groups.split(";")]
    groups = [g for g in groups if g]
    known = (*MODES, "torchrec")
    for g in groups:
        for m in g:
            if m not in known:
                ap.error(f"unknown mode {m!r} in --groups (known: {', '.join(known)})")
        if len(set(g)) != len(g):
            ap.error(f"a mode appears twice in one group: {g}")
    every = {m for g in groups for m in g}
    for m in ("hybrid", "hybrid-dedup", "hotline"):
        if m not in every:
            ap.error(f"--groups must include {m} (the byte comparison needs hybrid, hybrid-dedup and hotline)")
    device = resolve_device(args.device)
    sizes = tuple(max(2, int(round(n * args.table_scale))) for n in CRITEO_KAGGLE_TABLE_SIZES)
    cfg = TrainConfig(batch_size=args.batch_size, steps=args.steps, optimizer=args.optimizer,
                      learn_fraction=args.learn_fraction, seed=args.seed,
                      hot_budget_bytes=parse_bytes(args.hot_budget, "--hot-budget"),
                      device=args.device, eval_batch_size=8192, timeline_steps=4)
    peer_note = None
    if "torchrec" in every:
        from hotline.host import torchrec_peer
        if args.no_torchrec or not torchrec_peer.available():
            peer_note = ("torchrec left out: " + ("--no-torchrec" if args.no_torchrec
                                                  else torchrec_peer.why_unavailable()))
            print(peer_note, file=sys.stderr)
            groups = [[m for m in g if m != "torchrec"] for g in groups]
            groups = [g for g in groups if len(g) > 1 or g[0] != "hybrid"]   # a lone reference: drop
    modes = [m for g in groups for m in g]
    records = []
    samples = args.steps * args.batch_size + 16 * 8192       # training stream + a test slice
    t0 = time.perf_counter()
    ds = synthetic_criteo(samples, seed=args.seed, zipf_exponent=args.zipf, table_sizes=sizes)
    train, test = ds.split(args.steps * args.batch_size / samples)
    learn = learn_steps_for(cfg, cfg.steps)
    emit({"bench": "train", "what": "setup", "device": str(device), "device_name": device_name(device),
          "torch": torch.__version__, "modes": modes, "groups": groups, "torchrec_note": peer_note,
          "tables": len(sizes), "table_rows": int(sum(sizes)),
          "table_scale": args.table_scale, "row_bytes": cfg.row_bytes,
          "host_table_bytes": int(sum(sizes)) * cfg.row_bytes, "train_samples": len(train),
          "test_samples": len(test), "batch_size": cfg.batch_size, "steps": cfg.steps,
          "learn_fraction": cfg.learn_fraction, "learn_steps": learn,
          "hot_budget_bytes": cfg.hot_budget_bytes, "lr": cfg.lr,
          "optimizer": cfg.optimizer, "zipf_exponent": args.zipf, "seed": args.seed,
          "data_seconds": round(time.perf_counter() - t0, 2)}, records)

    # The trainers of a group live side by side and train in alternating chunks of steps, so
    # that a machine shared with other jobs loads them alike (timings of one mode after the
    # other were seen to differ by 1.5x from load changes alone); groups run one after the other
    # so that at most three sets of host tables are resident (five at once, 11 GB, slowed the
    # random row accesses of every mode on the 24 GB machine, the golden gather's 10x).  One
    # chunk boundary sits at the end of hotline's learning phase: the "after learning" window is
    # the same steps for all.
    results, curves, events, bt = {}, {}, None, {}
    for gi, group in enumerate(groups):
        trainers, build = {}, {}
        for mode in group:
            t_build = time.perf_counter()
            if mode == "torchrec":
                from hotline.host.torchrec_peer import TorchRecPeer
                trainers[mode] = TorchRecPeer(cfg, ds.table_sizes, ds.num_dense, total_steps=cfg.steps)
            else:
                trainers[mode] = make_trainer(mode, cfg, ds.table_sizes, ds.num_dense, total_steps=cfg.steps)
            build[mode] = time.perf_counter() - t_build
        bounds = sorted({0, cfg.steps, min(learn, cfg.steps), *range(0, cfg.steps, args.chunk)})
        at_learn = {}
        for a, b in zip(bounds, bounds[1:]):
            if a == learn:
                at_learn = {m: mark(tr) for m, tr in trainers.items()}
            for mode, tr in trainers.items():
                tr.train(train, b - a)

        group_results = {}
        for mode, tr in trainers.items():
            s = tr.summary()
            key = mode if mode not in results else f"{mode}@group{gi}"   # a repeat: the group's reference
            s["group"] = gi
            s["windows"] = {"whole_run": window(tr), "after_learning": window(tr, at_learn.get(mode))}
            s.update(tr.evaluate(test))
            s["build_seconds"] = round(build[mode], 2)
            if key == mode:
                bt[mode] = s["windows"]
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
            if hasattr(tr, "close"):
                tr.close()
            group_results[key] = s
        ref = next((v for k, v in group_results.items() if k.split("@")[0] == "hybrid"), None)
        for key, s in group_results.items():
            if ref is not None:     # speed against the hybrid that trained beside it, under the same load
                s["speed_vs_hybrid_in_group"] = round(s["samples_per_s"] / ref["samples_per_s"], 3)
                s["speed_vs_hybrid_in_group_after_learning"] = round(
                    s["windows"]["after_learning"]["samples_per_s"]
                    / ref["windows"]["after_learning"]["samples_per_s"], 3)
            results[key] = s
            emit({"bench": "train", "what": "mode", **{k: v for k, v in s.items() if k != "bytes"}}, records)
        del trainers, group_results, ref
        gc.collect()

    ho = results["hotline"]
    gains = {w: gain(bt, w) for w in ("whole_run", "after_learning")}
    steady = bt["hybrid"]["after_learning"]["h2d_bytes_per_sample"] / \
        max(1e-12, bt["hotline"]["after_learning"]["h2d_bytes_per_sample"]
            - bt["hotline"]["after_learning"]["h2d_hot_load_bytes_per_sample"])
    summary = {
        "bench": "train", "what": "summary", "device": str(device), "device_name": device_name(device),
        "config": f"{len(sizes)} tables, {int(sum(sizes)):,} rows, dim {cfg.embedding_dim}, batch "
                  f"{cfg.batch_size}, {cfg.steps} steps ({learn} learning), {cfg.optimizer} lr {cfg.lr}, "
                  f"hot budget {cfg.hot_budget_bytes} B, zipf {args.zipf}, seed {args.seed}",
        "bytes_per_sample": {m: bt[m] for m in bt},
        "gain": gains,
        # hybrid / hotline after learning without the one-time load (the figure quoted before)
        "h2d_bytes_ratio_steady": round(steady, 3),
        "h2d_bytes_ratio_steady_vs_goal": round(steady / BYTES_GOAL, 3),
        "groups": groups,
        "samples_per_s": {m: results[m]["samples_per_s"] for m in results},
        "samples_per_s_after_learning": {m: results[m]["windows"]["after_learning"]["samples_per_s"]
                                         for m in results},
        "speed_vs_hybrid_in_group": {m: results[m].get("speed_vs_hybrid_in_group") for m in results},
        "speed_vs_hybrid_in_group_after_learning": {
            m: results[m].get("speed_vs_hybrid_in_group_after_learning") for m in results},
        "test_log_loss": {m: results[m]["test_log_loss"] for m in results},
        "test_auc": {m: results[m]["test_auc"] for m in results},
        "popular_fraction": ho["popular_fraction"], "hot_lookup_fraction": ho["hot_lookup_fraction"],
        "hot_rows": ho["hot_rows"], "hot_bytes": ho["hot_bytes"],
        "golden_share": ho["golden_share_hot_phase"],
        "golden_share_vs_limit": round(ho["golden_share_hot_phase"] / SHARE_LIMIT, 3),
        "golden_wall_share": ho["golden_wall_share_hot_phase"],
        "golden_exposed_share": ho["golden_exposed_share_hot_phase"],
    }
    emit(summary, records)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_train.json").write_text(json.dumps(
        {"records": records, "loss_curves": curves, "argv": sys.argv[1:]}, indent=1))
    try:
        plot(results, bt, curves, summary, out / "bench_train.png")
    except ImportError as e:       # matplotlib absent: the JSON is the result
        print(f"no plot: {e}", file=sys.stderr)
    return 0


def plot(results, bt, curves, summary, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from hotline.host.plots import draw_time_bars

    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    modes = list(bt)
    # bytes per sample, by kind, both windows
    ax = axes[0][0]
    x, ticks = 0, []
    for w, hatch in (("whole_run", None), ("after_learning", "//")):
        for m in modes:
            r = bt[m][w]
            rows, load = r["h2d_row_bytes_per_sample"], r["h2d_hot_load_bytes_per_sample"]
            rest = r["h2d_bytes_per_sample"] - rows - load
            ax.bar(x, rows, color="#1f77b4", hatch=hatch, label="embedding rows" if x == 0 else None)
            ax.bar(x, load, bottom=rows, color="#9467bd", hatch=hatch,
                   label="hot-table load (one-time)" if x == 0 else None)
            ax.bar(x, rest, bottom=rows + load, color="#ff7f0e", hatch=hatch,
                   label="dense, labels, indices" if x == 0 else None)
            ax.text(x, r["h2d_bytes_per_sample"], f"{r['h2d_bytes_per_sample']:,.0f}", ha="center",
                    va="bottom", fontsize=7)
            ticks.append(m)
            x += 1
        x += 0.5
    ax.set_xticks([i + (0.5 if i >= len(modes) else 0) for i in range(len(ticks))], ticks,
                  rotation=40, fontsize=7, ha="right")
    g = summary["gain"]["whole_run"]["all_bytes"]
    ax.set_ylabel("bytes host -> device per sample")
    ax.set_title(f"whole run (left), after learning (right, hatched)\nwhole run: hotline "
                 f"{g['hotline_gain_over_hybrid']:.1f}x fewer than hybrid = {g['split']['dedup']:.2f} de-dup "
                 f"x {g['split']['hot_rows_on_device']:.2f} hot rows x {g['split']['hot_table_load']:.2f} "
                 f"hot-table load", fontsize=8)
    ax.legend(fontsize=7)
    # samples/s
    ax = axes[0][1]
    every = list(results)
    colors = {"hybrid": "#7f7f7f", "hybrid-dedup": "#bcbd22", "device": "#17becf", "hotline": "#2ca02c",
              "torchrec": "#d62728"}
    sps = [results[m]["samples_per_s"] for m in every]
    ax.bar(range(len(every)), sps, color=[colors.get(m.split("@")[0], "#333333") for m in every])
    for i, m in enumerate(every):
        rel = results[m].get("speed_vs_hybrid_in_group")
        ax.text(i, sps[i], f"{sps[i]:,.0f}" + (f"\n{rel:.2f}x" if rel is not None else ""), ha="center",
                va="bottom", fontsize=8)
    ax.set_xticks(range(len(every)), [m.replace("@", "\n") for m in every], fontsize=8)
    ax.set_ylabel("samples/s (whole run)")
    ax.set_title(f"throughput on {summary['device_name'][:50]}\n"
                 f"(Nx: against the hybrid trained beside it, in the same group)", fontsize=8)
    # time breakdown per step
    draw_time_bars(axes[1][0], results,
                   f"time per step; golden model share {summary['golden_share']:.1%} "
                   f"(limit {SHARE_LIMIT:.0%})", xlabel="ms per step", legend_cols=3)
    # losses
    ax = axes[1][1]
    for m, c in curves.items():
        ax.plot(np.arange(1, len(c) + 1), c, label=m, alpha=0.7, lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    auc = ", ".join(f"{m} {v:.4f}" for m, v in summary["test_auc"].items())
    ax.set_title(f"same maths; test AUC: {auc}", fontsize=8)
    ax.legend(fontsize=8)
    fig.suptitle(f"DLRM training, every mode (hotline: golden backend), device {summary['device']}; "
                 f"{summary['config']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
