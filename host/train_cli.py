"""``hotline train``: DLRM training, the hybrid baseline and the Hotline pipeline side by side.

With no arguments: the demo preset (:meth:`TrainConfig.demo`) on built-in
synthetic Criteo-shaped data (Criteo Kaggle's 26 tables scaled to 1 %),
``hybrid`` then ``hotline``, about a minute on two CPU cores.  The run folder
(default ``runs/<timestamp>``) gets ``metrics.json``, ``train.yaml`` and
``hw.yaml`` (the configs used), ``loss.png``, ``popularity.png`` and
``time.png``; a table of the metrics is printed.

The CLI starts from the demo preset; ``--train-config FILE`` overrides any
field of it (e.g. the reference model: ``bottom_mlp: [512, 256, 64, 16]``,
``top_mlp: [512, 256, 1]``, ``batch_size: 1024``), and the options below
override both.  Data parallel: ``torchrun --nproc_per_node=N -m hotline.host.train_cli ...``
(rank 0 writes the run folder).  Real data (``--data``): Criteo TSV/CSV or Avazu CSV, the
format detected from the first line or given with ``--format``; categories
are hashed into the tables scaled by ``synthetic_table_scale`` (``--table-scale``).
"""

from __future__ import annotations

import os

# OpenMP threads that spin while idle steal the cores of a shared, oversubscribed machine
# (10x slower steps were measured on 2 busy cores); this only works before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from ..config import ConfigError, HotlineConfig  # noqa: E402
from .train_config import DEVICES, MODES, OPTIMIZERS, TrainConfig, parse_bytes  # noqa: E402

__all__ = ["add_arguments", "run", "load_data", "detect_format", "scaled_sizes", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``hotline train``."""
    parser.add_argument("--data", metavar="PATH",
                        help="Criteo TSV/CSV or Avazu CSV file (default: built-in synthetic data)")
    parser.add_argument("--format", choices=("auto", "criteo", "avazu"), default="auto",
                        help="format of --data (default: detected from the first line)")
    parser.add_argument("--mode", choices=MODES, default=None,
                        help="hybrid, hybrid-dedup, device, hotline, compare (hybrid and hotline, "
                             "the default) or all (the four)")
    parser.add_argument("--backend", default="golden",
                        help="accelerator driver backend: golden (the bit-exact models), sim (the "
                             "accelerator's Verilog in Verilator, with the hardware's own sizes: "
                             "-c or the ecp5-85f profile) or fpga (a board: HOTLINE_FPGA_REGS, "
                             "HOTLINE_FPGA_MEM)")
    parser.add_argument("-c", "--config", metavar="HW_YAML",
                        help="hardware config YAML (default: derived to fit the run)")
    parser.add_argument("--train-config", metavar="TRAIN_YAML",
                        help="train config YAML overriding the demo preset")
    parser.add_argument("--steps", type=int, help="training steps (0: one pass over the data)")
    parser.add_argument("--batch-size", type=int, help="mini-batch size")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--hot-budget", metavar="BYTES",
                        help="device bytes for hot rows, e.g. 2MiB or 268435456")
    parser.add_argument("--learn-fraction", type=float, help="share of the steps spent learning")
    parser.add_argument("--device", choices=DEVICES, help="compute device (default auto)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, help="sgd or adagrad")
    parser.add_argument("--dtype", choices=("float32", "float64"), help="parameter dtype")
    parser.add_argument("--seed", type=int, help="seed of the model and of the synthetic data")
    parser.add_argument("--samples", type=int, help="samples of the synthetic data")
    parser.add_argument("--table-scale", type=float,
                        help="table sizes as a fraction of the dataset's reference sizes")
    parser.add_argument("--out", metavar="DIR", help="run folder (default runs/<timestamp>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")


def _train_config(args) -> TrainConfig:
    cfg = TrainConfig.load(args.train_config, base=TrainConfig.demo())
    changes = {}
    for opt, field in (("mode", "mode"), ("steps", "steps"), ("batch_size", "batch_size"),
                       ("lr", "lr"), ("learn_fraction", "learn_fraction"), ("device", "device"),
                       ("optimizer", "optimizer"), ("dtype", "dtype"), ("seed", "seed"),
                       ("samples", "synthetic_samples"), ("table_scale", "synthetic_table_scale")):
        value = getattr(args, opt, None)
        if value is not None:
            changes[field] = value
    if getattr(args, "hot_budget", None) is not None:
        changes["hot_budget_bytes"] = parse_bytes(args.hot_budget, "--hot-budget")
    return cfg.replace(**changes) if changes else cfg


def scaled_sizes(sizes, scale: float) -> tuple:
    """``sizes`` times ``scale``, each at least 2 rows."""
    return tuple(max(2, int(round(n * scale))) for n in sizes)


def detect_format(path) -> str:
    """``avazu`` when the first line is an Avazu header (has a ``click`` column), else ``criteo``."""
    import gzip
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", errors="replace") as f:
        first = f.readline()
    cols = [c.strip().lower() for c in first.replace("\t", ",").split(",")]
    return "avazu" if "click" in cols else "criteo"


def load_data(cfg: TrainConfig, path=None, fmt: str = "auto"):
    """The dataset of a run: the file at ``path`` or the built-in synthetic data."""
    from . import data
    if path is None:
        sizes = scaled_sizes(data.CRITEO_KAGGLE_TABLE_SIZES, cfg.synthetic_table_scale)
        return data.synthetic_criteo(cfg.synthetic_samples, seed=cfg.seed,
                                     zipf_exponent=cfg.zipf_exponent, table_sizes=sizes)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "avazu":
        from .data.avazu import AVAZU_TABLE_SIZES
        return data.load_avazu(path, table_sizes=scaled_sizes(AVAZU_TABLE_SIZES,
                                                              cfg.synthetic_table_scale))
    return data.load_criteo(path, table_sizes=scaled_sizes(data.CRITEO_KAGGLE_TABLE_SIZES,
                                                           cfg.synthetic_table_scale))


def _run_folder(out) -> Path:
    if out:
        folder = Path(out)
    else:
        folder = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
        i = 1
        while folder.exists():
            folder = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{i}"
            i += 1
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v:
            return "nan"
        return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


_TABLE_ROWS = (
    ("samples/s", "samples_per_s"), ("samples/s (after learning)", "hot_phase_samples_per_s"),
    ("h2d bytes/sample", "h2d_bytes_per_sample"),
    ("h2d bytes/sample (after learning)", "hot_phase_h2d_bytes_per_sample"),
    ("h2d embedding-row bytes/sample", "h2d_row_bytes_per_sample"),
    ("d2h bytes/sample", "d2h_bytes_per_sample"), ("popular samples", "popular_fraction"),
    ("hot rows", "hot_rows"), ("accelerator model CPU / wall time", "accelerator_share"),
    ("final train loss (last 10 steps)", "final_train_loss"), ("test log loss", "test_log_loss"),
    ("test AUC", "test_auc"),
)


def format_table(results: dict) -> str:
    """The metrics of every mode side by side."""
    modes = list(results)
    w0 = max(len(r[0]) for r in _TABLE_ROWS)
    cols = [max(12, len(m)) for m in modes]
    lines = [" " * w0 + "  " + "  ".join(m.rjust(c) for m, c in zip(modes, cols))]
    for label, key in _TABLE_ROWS:
        vals = [results[m].get(key) for m in modes]
        if all(v is None for v in vals):
            continue
        lines.append(label.ljust(w0) + "  " + "  ".join(_fmt(v).rjust(c) for v, c in zip(vals, cols)))
    return "\n".join(lines)


def _popularity(train, steps: int, batch_size: int, keys_of):
    """Exact access counts of the rows the run trained on."""
    per_epoch = len(train) // batch_size
    n = min(steps, per_epoch) * batch_size
    return np.unique(keys_of(train.batch(0, n)), return_counts=True)


def run(args) -> int:
    """Run ``hotline train``; returns the exit status (0 ok, 1 bad input)."""
    try:
        return _run(args)
    except (ConfigError, ValueError, TypeError, FileNotFoundError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"hotline train: error: {msg}", file=sys.stderr)
        return 1


def _run(args) -> int:
    from .distributed import init_from_env
    from .embedding import resolve_device

    cfg = _train_config(args)
    device = resolve_device(cfg.device)     # a bad --device fails before any work
    ctx = init_from_env(device)             # under torchrun: data parallel over the ranks
    done = False
    try:
        rc = _train(args, cfg, ctx)
        done = True
        return rc
    finally:
        ctx.close(barrier=done)             # every rank leaves the group (no abort at exit)


def _train(args, cfg, ctx) -> int:
    import torch

    from .driver import check_backend
    from .trainer import make_trainer

    main_rank = ctx.is_main
    user_hw = HotlineConfig.load(args.config) if getattr(args, "config", None) else None
    backend = getattr(args, "backend", "golden") or "golden"
    check_backend(backend)
    ds = load_data(cfg, getattr(args, "data", None), getattr(args, "format", "auto") or "auto")
    train, test = ds.split(1.0 - cfg.test_fraction) if cfg.test_fraction > 0 else (ds, None)
    steps = cfg.steps or len(train) // cfg.batch_size
    if steps < 1 or len(train) < cfg.batch_size:
        raise ValueError(f"the training split has {len(train)} samples, fewer than one batch of "
                         f"{cfg.batch_size} (lower --batch-size)")
    folder = _run_folder(getattr(args, "out", None)) if main_rank else None
    progress_on = not getattr(args, "no_progress", False) and main_rank
    if main_rank:
        print(f"hotline train: {ds.name or 'data'}: {len(train)} train / "
              f"{len(test) if test is not None else 0} test samples, {len(ds.table_sizes)} tables "
              f"({sum(ds.table_sizes):,} rows), {steps} steps of {cfg.batch_size}"
              f"{f' on {ctx.world_size} ranks' if ctx.enabled else ''}; run folder {folder}",
              file=sys.stderr)

    results, curves, events, hot_keys, hw_used, keys_of = {}, {}, None, None, None, None
    for mode in cfg.modes():
        tr = make_trainer(mode, cfg, ds.table_sizes, ds.num_dense, total_steps=steps,
                          hw_cfg=user_hw, backend=backend, dist=ctx)
        bar = None
        if progress_on:
            from tqdm import tqdm
            bar = tqdm(total=steps, desc=f"{mode:8s}", unit="step", file=sys.stderr,
                       dynamic_ncols=True, leave=True)

        def progress(trainer, loss, bar=bar):
            if bar is not None:
                bar.update(1)
                if trainer.step % 10 == 0:
                    bar.set_postfix(loss=f"{loss:.4f}")
        try:
            tr.train(train, steps, progress=progress)
        finally:
            if bar is not None:
                bar.close()
        summary = tr.summary()
        if test is not None and len(test):
            summary.update(tr.evaluate(test))
        curves[mode] = list(tr.losses)
        if mode == "hotline":
            events = list(tr.timers.events)
            hot_keys = tr.hot_keys.copy()
            hw_used = tr.hw_cfg
            keys_of = tr.keys_of
            tr.close()
        results[mode] = summary
        del tr
        gc.collect()

    if not main_rank:
        return 0
    comparison = {}
    if "hybrid" in results and "hotline" in results:
        hy, ho = results["hybrid"], results["hotline"]
        def ratio(a, b):
            return round(a / b, 3) if a and b else None
        comparison = {
            "h2d_bytes_ratio_hybrid_over_hotline": ratio(hy["h2d_bytes_per_sample"],
                                                         ho.get("hot_phase_h2d_bytes_per_sample")),
            "h2d_row_bytes_ratio_hybrid_over_hotline": ratio(
                hy["h2d_row_bytes_per_sample"], ho.get("hot_phase_h2d_row_bytes_per_sample")),
            "speedup_hotline_over_hybrid": ratio(ho["samples_per_s"], hy["samples_per_s"]),
            "test_auc_difference": (round(ho["test_auc"] - hy["test_auc"], 6)
                                    if "test_auc" in ho and "test_auc" in hy else None),
        }

    cfg.save(folder / "train.yaml")
    if hw_used is not None:
        hw_used.save(folder / "hw.yaml")
    figures = {}
    if not getattr(args, "no_plots", False):
        from . import plots
        figures["loss"] = str(plots.plot_losses(curves, folder / "loss.png"))
        if hot_keys is not None:
            uk, counts = _popularity(train, steps, cfg.batch_size, lambda b: keys_of(b))
            figures["popularity"] = str(plots.plot_popularity(counts, np.isin(uk, hot_keys),
                                                              folder / "popularity.png"))
        figures["time"] = str(plots.plot_time_breakdown(results, folder / "time.png", events=events))
    metrics = {"data": {"name": ds.name, "train_samples": len(train),
                        "test_samples": len(test) if test is not None else 0,
                        "table_sizes": list(ds.table_sizes), "num_dense": ds.num_dense},
               "train_config": cfg.to_dict(), "hw_config": hw_used.to_dict() if hw_used else None,
               "torch": torch.__version__, "threads": torch.get_num_threads(),
               "results": results, "loss_curves": curves, "comparison": comparison,
               "figures": figures}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1, default=_json_default))
    print(format_table(results))
    for k, v in comparison.items():
        print(f"{k}: {_fmt(v)}")
    for mode, res in results.items():
        hm = (res.get("capacity") or {}).get("hot_map")
        if hm:
            print(f"{mode}: the hardware's hot map bound the run: {hm['hot_rows_loaded']:,} of "
                  f"{hm['hot_rows_chosen']:,} chosen hot rows loaded ({hm['hot_map_slots']:,} slots); "
                  f"popular samples {res.get('popular_fraction')}")
        if res.get("overflow_batches"):
            print(f"{mode}: {res['overflow_batches']} batches exceeded the reorder unit's limits "
                  f"and trained through the hybrid path")
    print(f"run folder: {folder}")
    return 0


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def main(argv=None) -> int:
    """``python -m hotline.host.train_cli`` (the same as ``hotline train``)."""
    parser = argparse.ArgumentParser(prog="hotline train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
