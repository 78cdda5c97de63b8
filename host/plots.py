"""PNG figures of a training run: loss curves, the popularity curve, the time breakdown.

Matplotlib with the non-interactive Agg backend; every function writes one
file and returns its path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_losses", "plot_popularity", "plot_time_breakdown", "draw_time_bars", "MAIN_PHASES", "DMA_PHASES"]

#: Main-thread phases of a step, in pipeline order, and the DMA worker's.
MAIN_PHASES = ("data", "learn", "lookup", "h2d", "compute", "d2h", "sparse_update", "classify",
               "prepare", "popular", "wait_gather", "non_popular", "optimizer", "writeback")
DMA_PHASES = ("gather", "h2d_rows", "scatter")

_COLORS = {"data": "#c7c7c7", "learn": "#8c564b", "lookup": "#e377c2", "h2d": "#ff7f0e",
           "compute": "#1f77b4", "d2h": "#d62728", "sparse_update": "#9467bd",
           "classify": "#393b79", "prepare": "#dbdb8d", "popular": "#2ca02c",
           "wait_gather": "#ff9896", "non_popular": "#1f77b4", "optimizer": "#9467bd",
           "writeback": "#d62728", "gather": "#17becf", "h2d_rows": "#ff7f0e", "scatter": "#bcbd22"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _smooth(y, k):
    y = np.asarray(y, dtype=np.float64)
    if y.size < 2 or k <= 1:
        return y
    k = min(k, y.size)
    c = np.cumsum(np.r_[0.0, y])
    out = (c[k:] - c[:-k]) / k
    return np.r_[np.full(k - 1, np.nan), out]


def plot_losses(curves: dict, path, title: str = "Training loss") -> Path:
    """``curves``: mode -> per-step losses.  Raw (faint) and moving average (solid)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for mode, losses in curves.items():
        steps = np.arange(1, len(losses) + 1)
        line, = ax.plot(steps, losses, alpha=0.25, lw=0.8)
        k = max(1, len(losses) // 20)
        ax.plot(steps, _smooth(losses, k), color=line.get_color(), lw=1.8,
                label=f"{mode} (moving average of {k})")
    ax.set_xlabel("step")
    ax.set_ylabel("log loss (mini-batch)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_popularity(counts, hot_mask, path, title: str = "Popularity of embedding rows") -> Path:
    """Access counts sorted in decreasing order, log-log, the hot set's rows marked.

    Parameters
    ----------
    counts : array of int
        Accesses of every row that was accessed at least once.
    hot_mask : array of bool
        Which of those rows are in the hot set.
    """
    plt = _plt()
    counts = np.asarray(counts)
    hot_mask = np.asarray(hot_mask, dtype=bool)
    order = np.argsort(-counts, kind="stable")
    c, h = counts[order], hot_mask[order]
    rank = np.arange(1, c.size + 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.loglog(rank, c, color="#444444", lw=1.2, label=f"all {c.size:,} accessed rows", zorder=2)
    if h.any():
        # a strip under the curve marks each hot row's rank: hot rows chosen from a short
        # learning window are not exactly the top ranks of the whole run
        ax.scatter(rank[h], np.full(int(h.sum()), 0.6), marker="|", s=30, lw=0.5, color="#d62728",
                   alpha=0.4, label=f"hot set: {int(h.sum()):,} rows (rank marked)", zorder=3)
        ax.scatter(rank[~h], np.full(int((~h).sum()), 0.4), marker="|", s=30, lw=0.5,
                   color="#1f77b4", alpha=0.4, label="cold rows (rank marked)", zorder=3)
        ax.axvline(int(h.sum()), color="#d62728", ls="--", lw=1,
                   label="hot-set size (ideal cut-off)")
        share = c[h].sum() / max(1, c.sum())
        ax.text(0.02, 0.12, f"hot rows take {share:.1%} of the accesses",
                transform=ax.transAxes)
        ax.set_ylim(0.3, None)
    ax.set_xlabel("rank of row (by accesses)")
    ax.set_ylabel("accesses")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def draw_time_bars(ax, summaries: dict, title: str, xlabel: str = "ms per step (wall clock)",
                   legend_cols: int = 2) -> None:
    """Stacked bars of milliseconds per step in each phase: per mode, main thread and DMA worker.

    ``summaries`` maps a mode to a trainer summary (``time_s`` totals and ``steps``).
    """
    labels, y = [], 0
    seen = set()
    for mode, s in summaries.items():
        steps = max(1, s.get("steps", 1))
        times = s.get("time_s", {})
        for lane, phases in (("main", MAIN_PHASES), ("dma", DMA_PHASES)):
            if lane == "dma" and not any(p in times for p in phases):
                continue
            left = 0.0
            for p in phases:
                ms = 1000 * times.get(p, 0.0) / steps
                if ms <= 0:
                    continue
                ax.barh(y, ms, left=left, color=_COLORS.get(p), edgecolor="white",
                        label=p if p not in seen else None)
                seen.add(p)
                left += ms
            labels.append(f"{mode} ({lane})")
            y += 1
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=legend_cols, loc="lower right")
    ax.grid(alpha=0.3, axis="x")


def plot_time_breakdown(summaries: dict, path, events=None,
                        title: str = "Time per step") -> Path:
    """Per mode: milliseconds per step in each phase (stacked), main thread and DMA worker.

    Parameters
    ----------
    summaries : dict
        mode -> trainer summary (``time_s`` totals and ``steps``).
    events : list, optional
        ``(phase, lane, start, end, step)`` of a few hotline steps: drawn as a
        timeline with one row per lane, so the overlap of the gather with the
        popular micro-batch shows.
    """
    plt = _plt()
    ncols = 2 if events else 1
    fig, axes = plt.subplots(1, ncols, figsize=(7 * ncols, 4.2), squeeze=False)
    draw_time_bars(axes[0][0], summaries, title)
    if events:
        ax = axes[0][1]
        t0 = min(e[2] for e in events)
        lanes = {"main": 1, "dma": 0}
        for name, lane, a, b, step in events:
            ax.barh(lanes.get(lane, 0), 1000 * (b - a), left=1000 * (a - t0),
                    color=_COLORS.get(name, "#333333"), edgecolor="white", lw=0.3)
        ax.set_yticks([0, 1], ["DMA worker", "main thread"])
        ax.set_xlabel("ms")
        steps = sorted({e[4] for e in events})
        ax.set_title(f"hotline timeline, steps {steps[0]}-{steps[-1]}: gather (cyan) overlaps "
                     f"popular (green)", fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
