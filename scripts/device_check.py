"""The prepared GPU check: parity of the CUDA paths, then every mode at the reference DLRM config.

Run through ``scripts/device_check.sh OUTDIR [options]`` (which makes the
package importable without a download); written for one 15-minute GPU lease
and finishes in under 8 minutes on one GPU (``--budget-s``; a part that would
start after the budget is skipped and the JSON says so).  Three parts, the
JSON rewritten after each one, so a run cut short still leaves its results:

1. **parity** (float64, a few steps, on the device): ``hybrid-dedup``,
   ``device`` and ``hotline`` reach ``hybrid``'s parameters to ``1e-9``, SGD
   and row-wise Adagrad, on skewed data with popular and non-popular samples.
2. **throughput** at the reference DLRM config (Criteo Kaggle's 26 table
   sizes, 33.8 M rows, dim 16, bottom 13-512-256-64-16, top 367-512-256-1,
   SGD) for each batch size (1024 and 4096): ``hybrid``, ``hybrid-dedup``,
   ``device`` and ``hotline`` (and the TorchRec peer where it imports), one
   after the other on the same data and seed, host tables pinned, the hybrids'
   rows staged in a pinned buffer, hotline's cold rows gathered on its DMA
   worker and copied on a CUDA copy stream.  Per mode: samples/s and bytes per
   sample (whole run and after hotline's learning phase: the same steps for
   every mode), hotline's gain split into its causes, test log loss and AUC.
   The timers sync the device only in the last ``--timeline-steps`` steps
   (``sync_timers=False``), so the other steps run as they would untimed.
3. **overlap** of hotline's pipeline, from those timeline steps: how much of
   the gather (host gather + copy-stream transfer) ran while the main thread
   trained the popular micro-batch, how much while it did anything else, and
   how much the main thread waited for it; a timeline plot
   (``timeline_b<B>.png``) shows both lanes.

Outputs in ``--out``: ``device_check.json``, ``timeline_b<B>.png`` and
``throughput.png`` (plots only when matplotlib imports); the JSON's
``status`` is ``complete``, ``partial`` (the time budget skipped something) or
``errors`` (a mode raised: its traceback is in the JSON, the other modes ran).
Exit status 0 when every parity check passes, 1 otherwise, 2 on bad arguments.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hotline.host.data import (CRITEO_KAGGLE_TABLE_SIZES, skewed_small_dataset,  # noqa: E402
                               synthetic_criteo)
from hotline.host.metrics import hotline_gain, interval_overlap, mark, window  # noqa: E402
from hotline.host.train_config import TrainConfig  # noqa: E402
from hotline.host.trainer import learn_steps_for, make_trainer  # noqa: E402

PARITY_TOL = 1e-9
MODES = ("hybrid", "hybrid-dedup", "device", "hotline")
T0 = time.perf_counter()


def elapsed() -> float:
    return round(time.perf_counter() - T0, 2)


def log(msg: str) -> None:
    print(f"[device_check {elapsed():7.1f}s] {msg}", flush=True)


# -- environment ------------------------------------------------------------------------------


def environment(device: torch.device) -> dict:
    env = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
           "device": str(device), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "cuda_available": torch.cuda.is_available()}
    try:
        import matplotlib
        env["matplotlib"] = matplotlib.__version__
    except ImportError:
        env["matplotlib"] = None
    from hotline.host import torchrec_peer
    env["torchrec"] = torchrec_peer.available()
    if not env["torchrec"]:
        env["torchrec_note"] = torchrec_peer.why_unavailable()
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        env.update({"device_name": p.name, "device_memory_bytes": int(p.total_memory),
                    "cuda": torch.version.cuda, "multiprocessors": p.multi_processor_count})
    else:
        env["device_name"] = f"CPU {platform.processor() or platform.machine()}"
    return env


# -- 1. parity ----------------------------------------------------------------------------------


def max_diff(a: dict, b: dict):
    worst = (0.0, None)
    for k in a:
        d = (a[k].double() - b[k].double()).abs()
        if d.numel() and d.max().item() > worst[0]:
            worst = (d.max().item(), k)
    return worst


def parity(device: str, seed: int, steps: int) -> list:
    ds = skewed_small_dataset(40 * 32, (3, 8, 20, 40), seed)
    out = []
    for optimizer in ("sgd", "adagrad"):
        w = 4 + (optimizer == "adagrad")
        cfg = TrainConfig(embedding_dim=4, bottom_mlp=(8, 4), top_mlp=(8, 1), batch_size=32,
                          eval_batch_size=64, lr=0.05, dtype="float64", device=device, steps=steps,
                          learn_fraction=0.1, seed=seed, timeline_steps=0, optimizer=optimizer,
                          hot_budget_bytes=12 * w * 8)
        params, extra, errors = {}, {}, {}
        for mode in MODES:
            try:        # one mode failing on the device must not lose the others' results
                tr = make_trainer(mode, cfg, ds.table_sizes, ds.num_dense, total_steps=steps)
                tr.train(ds, steps)
                params[mode] = tr.parameters_cpu()
                if mode == "hotline":
                    s = tr.summary()
                    extra = {"popular_fraction": s["popular_fraction"], "hot_rows": s["hot_rows"]}
                    tr.close()
            except Exception as e:
                errors[mode] = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
                log(f"parity {optimizer:7s} {mode:12s} FAILED to run: {type(e).__name__}: {e}")
        if "hybrid" in errors:
            out.append({"optimizer": optimizer, "mode": "hybrid", "ok": False, "error": errors["hybrid"]})
            continue
        fresh = make_trainer("hybrid", cfg, ds.table_sizes, ds.num_dense, total_steps=steps).parameters_cpu()
        moved = max_diff(params["hybrid"], fresh)[0]
        for mode in MODES[1:]:
            if mode in errors:
                out.append({"optimizer": optimizer, "mode": mode, "vs": "hybrid", "ok": False,
                            "error": errors[mode]})
                continue
            diff, name = max_diff(params[mode], params["hybrid"])
            rec = {"optimizer": optimizer, "mode": mode, "vs": "hybrid", "steps": steps,
                   "max_abs_diff": diff, "worst": name, "tol": PARITY_TOL, "moved": moved,
                   "ok": bool(diff <= PARITY_TOL and moved > 1e-3)}
            if mode == "hotline":
                rec.update(extra)
                rec["ok"] = rec["ok"] and 0 < (extra["popular_fraction"] or 0) < 1
            out.append(rec)
            log(f"parity {optimizer:7s} {mode:12s} max |diff| {diff:.2e} ({name}) "
                f"{'ok' if rec['ok'] else 'FAILED'}")
    return out


# -- 2. throughput, 3. overlap -------------------------------------------------------------------


def overlap(events, totals: dict) -> dict:
    """What the timeline steps' events say about hiding the gather."""
    steps = sorted({e[4] for e in events})
    dma = [(a, b) for n, lane, a, b, _ in events if lane == "dma" and n in ("gather", "h2d_rows")]
    pop = [(a, b) for n, lane, a, b, _ in events if lane == "main" and n == "popular"]
    busy = [(a, b) for n, lane, a, b, _ in events if lane == "main" and n not in ("wait_gather", "data")]
    wait = [(a, b) for n, lane, a, b, _ in events if lane == "main" and n == "wait_gather"]
    g = sum(b - a for a, b in dma)
    pop_t = sum(b - a for a, b in pop)
    g_pop, g_main = interval_overlap(dma, pop), interval_overlap(dma, busy)
    res = {"timeline_steps": steps, "gather_s": round(g, 6), "popular_s": round(pop_t, 6),
           "gather_during_popular_s": round(g_pop, 6), "gather_during_main_work_s": round(g_main, 6),
           "wait_gather_s": round(sum(b - a for a, b in wait), 6),
           "gather_hidden_by_popular": round(min(1.0, g_pop / g), 4) if g else None,
           "gather_hidden_by_main_work": round(min(1.0, g_main / g), 4) if g else None,
           "popular_busy_with_gather": round(min(1.0, g_pop / pop_t), 4) if pop_t else None}
    # whole hot phase, from the phase totals: the share of gather + transfer time the main
    # thread did not wait for (exact only where the timers synced, i.e. the timeline steps)
    gt = totals.get("gather", 0.0) + totals.get("h2d_rows", 0.0)
    res["gather_total_s"] = round(gt, 6)
    res["wait_gather_total_s"] = round(totals.get("wait_gather", 0.0), 6)
    return res


def throughput(args, device: torch.device, batch: int, sizes, deadline: float, out: Path,
               res: dict, save) -> dict:
    """Fill ``res`` mode by mode (``save()`` after each, so a hang or a kill keeps the rest)."""
    cfg = TrainConfig(batch_size=batch, steps=args.steps, optimizer="sgd", seed=args.seed,
                      learn_fraction=args.learn_fraction, hot_budget_bytes=args.hot_budget,
                      device=device.type, eval_batch_size=8192, timeline_steps=args.timeline_steps,
                      sync_timers=False, **args.model)
    n_test = 4 * 8192 if not args.tiny else 4 * batch
    t = time.perf_counter()
    ds = synthetic_criteo(args.steps * batch + n_test, seed=args.seed, zipf_exponent=args.zipf,
                          table_sizes=sizes)
    train, test = ds.split(args.steps * batch / len(ds))
    learn = learn_steps_for(cfg, cfg.steps)
    res.update({"batch_size": batch, "steps": cfg.steps, "learn_steps": learn,
                "data_seconds": round(time.perf_counter() - t, 2), "modes": {}, "skipped": []})
    log(f"batch {batch}: data ready ({len(train)} train, {len(test)} test samples)")
    modes = list(args.modes)
    if args.torchrec and "torchrec" not in modes:
        modes.append("torchrec")
    for mode in modes:
        if time.perf_counter() > deadline:
            res["skipped"].append(mode)
            log(f"batch {batch}: {mode} skipped (time budget)")
            continue
        try:
            t = time.perf_counter()
            if mode == "torchrec":
                from hotline.host.torchrec_peer import TorchRecPeer
                tr = TorchRecPeer(cfg, ds.table_sizes, ds.num_dense, total_steps=cfg.steps)
            else:
                tr = make_trainer(mode, cfg, ds.table_sizes, ds.num_dense, total_steps=cfg.steps)
            build = time.perf_counter() - t
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            tr.train(train, learn)
            at = mark(tr)
            tr.train(train, cfg.steps - learn)
            s = tr.summary()
            r = {"build_seconds": round(build, 2), "whole_run": window(tr),
                 "after_learning": window(tr, at), "time_s": s.get("time_s"),
                 "final_train_loss": s.get("final_train_loss")}
            if device.type == "cuda":
                r["peak_device_memory_bytes"] = int(torch.cuda.max_memory_allocated(device))
            if mode == "hotline":
                r.update({k: s.get(k) for k in ("popular_fraction", "hot_lookup_fraction", "hot_rows",
                                                 "hot_bytes", "learn_steps", "overflow_batches",
                                                 "hot_phase_samples_per_s", "accelerator_share")})
                r["overlap"] = overlap(tr.timers.events, tr.timers.totals)
                try:
                    r["timeline_plot"] = plot_timeline(tr.timers.events, out / f"timeline_b{batch}.png",
                                                       batch, device)
                except Exception as e:
                    r["timeline_plot"] = f"failed: {type(e).__name__}: {e}"
            r.update(tr.evaluate(test))
            if hasattr(tr, "close"):
                tr.close()
            res["modes"][mode] = r
            log(f"batch {batch}: {mode:12s} {r['whole_run']['samples_per_s']:>12,.0f} samples/s, "
                f"{r['after_learning']['samples_per_s']:>12,.0f} after learning, "
                f"h2d {r['after_learning']['h2d_bytes_per_sample']:8.1f} B/sample, AUC {r['test_auc']:.4f}")
        except Exception as e:      # one mode failing must not lose the others' results
            res["modes"][mode] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            log(f"batch {batch}: {mode} FAILED: {type(e).__name__}: {e}")
        finally:
            tr = None
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            save()
    ok = [m for m in ("hybrid", "hybrid-dedup", "hotline") if "whole_run" in res["modes"].get(m, {})]
    if len(ok) == 3:
        res["gain"] = {w: hotline_gain(*(res["modes"][m][w] for m in ("hybrid", "hybrid-dedup", "hotline")))
                       for w in ("whole_run", "after_learning")}
    return res


# -- plots (optional) -------------------------------------------------------------------------------


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        return None


def plot_timeline(events, path: Path, batch: int, device) -> str | None:
    plt = _plt()
    if plt is None or not events:
        return None
    from hotline.host.plots import _COLORS
    fig, ax = plt.subplots(figsize=(12, 3.2))
    t0 = min(e[2] for e in events)
    lanes = {"main": 1, "dma": 0}
    seen = set()
    for name, lane, a, b, step in events:
        ax.barh(lanes.get(lane, 0), 1000 * (b - a), left=1000 * (a - t0), color=_COLORS.get(name, "#333333"),
                edgecolor="white", lw=0.3, label=name if name not in seen else None)
        seen.add(name)
    ax.set_yticks([0, 1], ["DMA worker (gather, copy stream)", "main thread"])
    ax.set_xlabel("ms")
    steps = sorted({e[4] for e in events})
    ax.set_title(f"hotline timeline on {device}, batch {batch}, steps {steps[0]}-{steps[-1]}: "
                 f"gather (cyan) and copy (orange) vs the popular micro-batch (green)", fontsize=9)
    ax.legend(fontsize=7, ncol=8, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plot_throughput(report: dict, path: Path) -> str | None:
    plt = _plt()
    runs = [r for r in report.get("throughput", []) if r.get("modes")]
    if plt is None or not runs:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / len(runs)
    for k, r in enumerate(runs):
        modes = [m for m in r["modes"] if "whole_run" in r["modes"][m]]
        x = np.arange(len(modes)) + k * width
        axes[0].bar(x, [r["modes"][m]["after_learning"]["samples_per_s"] for m in modes], width,
                    label=f"batch {r['batch_size']}")
        axes[1].bar(x, [r["modes"][m]["after_learning"]["h2d_bytes_per_sample"] for m in modes], width,
                    label=f"batch {r['batch_size']}")
        for ax in axes:
            ax.set_xticks(np.arange(len(modes)) + width * (len(runs) - 1) / 2, modes)
    axes[0].set_ylabel("samples/s after learning")
    axes[1].set_ylabel("bytes host -> device per sample after learning")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{report['env'].get('device_name')}: {report['config']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


# -- main -----------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for device_check.json and the plots")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu", "auto"))
    ap.add_argument("--tiny", action="store_true",
                    help="tiny sizes (tables at 1/1000 of Criteo's, small MLPs, batches 64 and 128, "
                         "30 steps): checks the script itself in a minute on a CPU")
    ap.add_argument("--batch-sizes", default=None, help="comma-separated (default 1024,4096)")
    ap.add_argument("--steps", type=int, default=None, help="steps per mode and batch size (default 300)")
    ap.add_argument("--table-scale", type=float, default=None, help="fraction of Criteo Kaggle's table sizes")
    ap.add_argument("--parity-steps", type=int, default=12)
    ap.add_argument("--timeline-steps", type=int, default=6)
    ap.add_argument("--dim", type=int, default=16,
                    help="embedding dim: 16 is the reference Criteo Kaggle DLRM (bottom 512-256-64-16, "
                         "top 512-256-1); any other uses MLPerf DLRM's MLPs (bottom 512-256-DIM, "
                         "top 1024-1024-512-256-1)")
    ap.add_argument("--learn-fraction", type=float, default=0.05)
    ap.add_argument("--hot-budget", type=int, default=256 * 2**20, help="bytes")
    ap.add_argument("--zipf", type=float, default=1.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--no-torchrec", action="store_true", help="leave the TorchRec peer out")
    ap.add_argument("--budget-s", type=float, default=420.0,
                    help="start no new part or mode after this many seconds (default 420)")
    args = ap.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        print("device_check: --device cuda but torch.cuda.is_available() is False "
              "(use --device cpu)", file=sys.stderr)
        return 2
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    tiny = args.tiny
    batches = [int(b) for b in (args.batch_sizes or ("64,128" if tiny else "1024,4096")).split(",")]
    args.steps = args.steps or (30 if tiny else 300)
    scale = args.table_scale or (0.001 if tiny else 1.0)
    if args.dim < 1:
        ap.error(f"--dim must be positive, got {args.dim}")
    if tiny:
        args.model = dict(bottom_mlp=(64, 32, args.dim), top_mlp=(64, 32, 1))
    elif args.dim == 16:
        args.model = {}
    else:
        args.model = dict(bottom_mlp=(512, 256, args.dim), top_mlp=(1024, 1024, 512, 256, 1))
    args.model["embedding_dim"] = args.dim
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        ap.error(f"unknown modes {unknown} (known: {', '.join(MODES)})")
    sizes = tuple(max(2, int(round(n * scale))) for n in CRITEO_KAGGLE_TABLE_SIZES)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    deadline = T0 + args.budget_s
    env = environment(device)
    args.torchrec = bool(env["torchrec"]) and not args.no_torchrec
    ref = TrainConfig(**args.model)
    report = {"what": "device_check", "argv": sys.argv[1:] if argv is None else list(argv),
              "env": env, "status": "running",
              "config": f"{len(sizes)} tables, {sum(sizes):,} rows (Criteo Kaggle x {scale}), dim "
                        f"{ref.embedding_dim}, bottom {ref.bottom_mlp}, top {ref.top_mlp}, sgd lr {ref.lr}, "
                        f"{args.steps} steps per mode ({args.learn_fraction} learning), hot budget "
                        f"{args.hot_budget} B, zipf {args.zipf}, seed {args.seed}",
              "table_rows": int(sum(sizes)), "batch_sizes": batches, "parity": [], "throughput": [],
              "skipped": []}

    def save():
        report["elapsed_s"] = elapsed()
        (out / "device_check.json").write_text(json.dumps(report, indent=1, default=str))

    log(f"{env['device_name']}, torch {env['torch']}; writing {out / 'device_check.json'}")
    save()
    try:
        report["parity"] = parity(device.type, args.seed, args.parity_steps)
    except Exception as e:
        report["parity"] = [{"ok": False, "error": f"{type(e).__name__}: {e}\n{traceback.format_exc()}"}]
        log(f"parity FAILED: {type(e).__name__}: {e}")
    report["parity_ok"] = all(r["ok"] for r in report["parity"])
    save()
    for b in batches:
        if time.perf_counter() > deadline:
            report["skipped"].append(f"throughput batch {b}")
            log(f"throughput at batch {b} skipped (time budget)")
            continue
        res = {"batch_size": b, "modes": {}, "skipped": []}
        report["throughput"].append(res)
        try:
            throughput(args, device, b, sizes, deadline, out, res, save)
        except Exception as e:
            res["error"] = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
            log(f"throughput at batch {b} FAILED: {type(e).__name__}: {e}")
        save()
    try:
        report["throughput_plot"] = plot_throughput(report, out / "throughput.png")
    except Exception as e:
        report["throughput_plot"] = f"failed: {type(e).__name__}: {e}"
    failed = any("error" in r for r in report["throughput"]) or any(
        "error" in m for r in report["throughput"] for m in r["modes"].values())
    report["status"] = "errors" if failed else (
        "partial" if report["skipped"] or any(r["skipped"] for r in report["throughput"]) else "complete")
    save()
    log(f"done: parity {'ok' if report['parity_ok'] else 'FAILED'}, status {report['status']}")
    return 0 if report["parity_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
