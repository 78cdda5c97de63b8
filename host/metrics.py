"""Training metrics: AUC, log loss, phase timers with a timeline, byte counters.

:func:`roc_auc` is rank based (the Mann-Whitney U statistic, ties given their
average rank), O(n log n) in NumPy.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from contextlib import contextmanager

import numpy as np

__all__ = ["roc_auc", "log_loss", "Timers", "ByteCounter", "mark", "window", "hotline_gain",
           "interval_overlap"]


def _check_pair(labels, scores):
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels and scores must be 1-D of one length, not {labels.shape} and {scores.shape}")
    if labels.size and not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 or 1")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    return labels.astype(bool), scores


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve: P(score of a random positive > score of a random negative),
    ties counting one half.

    Parameters
    ----------
    labels : array [n] of 0/1
    scores : array [n] of float

    Returns
    -------
    float, or ``nan`` when one class is absent.
    """
    pos, scores = _check_pair(labels, scores)
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    # average 1-based rank of each run of equal scores
    starts = np.r_[0, np.nonzero(s[1:] != s[:-1])[0] + 1]
    ends = np.r_[starts[1:], s.size]
    avg = (starts + ends + 1) / 2.0
    ranks = np.empty(s.size, dtype=np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def log_loss(labels, probs, eps: float = 1e-12) -> float:
    """Mean binary cross-entropy of probabilities ``probs`` (clipped to ``[eps, 1-eps]``)."""
    pos, p = _check_pair(labels, probs)
    if p.size == 0:
        return float("nan")
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(np.where(pos, np.log(p), np.log1p(-p))))


class Timers:
    """Wall-clock time per named phase, thread safe, with an optional timeline.

    ``with timers("gather", lane="dma"):`` adds the block's duration to
    ``totals["gather"]``; while :attr:`record` is on, it also appends
    ``(name, lane, start, end, step)`` to :attr:`events` (times relative to
    :attr:`origin`), which the time-breakdown plot draws as one row per lane,
    so overlap between the main thread and the DMA worker shows.

    Parameters
    ----------
    sync : callable, optional
        Called at the start and end of every timed main-lane block (e.g. to
        wait for the CUDA stream so device work is charged to the right phase).
    sync_always : bool
        Sync in every block (True) or only while :attr:`record` is on (False:
        the timeline steps stay exact, the other steps run unsynchronised and
        their phase totals are host-side times).
    """

    def __init__(self, sync=None, sync_always: bool = True):
        self.totals = defaultdict(float)
        self.counts = defaultdict(int)
        self.events = []
        self.record = False
        self.step = 0
        self.sync = sync
        self.sync_always = bool(sync_always)
        self.origin = time.perf_counter()
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, name: str, lane: str = "main"):
        sync = self.sync is not None and lane == "main" and (self.sync_always or self.record)
        if sync:
            self.sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if sync:
                self.sync()
            t1 = time.perf_counter()
            with self._lock:
                self.totals[name] += t1 - t0
                self.counts[name] += 1
                if self.record:
                    self.events.append((name, lane, t0 - self.origin, t1 - self.origin, self.step))

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.totals[name] += seconds
            self.counts[name] += 1

    def as_dict(self) -> dict:
        return {k: round(v, 6) for k, v in sorted(self.totals.items())}

    def state_dict(self) -> dict:
        return {"totals": dict(self.totals), "counts": dict(self.counts)}

    def load_state_dict(self, state: dict) -> None:
        self.totals = defaultdict(float, state.get("totals", {}))
        self.counts = defaultdict(int, state.get("counts", {}))


class ByteCounter:
    """Bytes moved between host and device, by direction and kind.

    Members
    -------
    h2d, d2h : dict
        ``kind -> bytes`` (kinds: ``rows`` embedding rows and their state,
        ``inputs`` dense features, labels and indices, ``hot_load`` the
        one-time copy of the hot rows, ``grads`` row gradients).
    """

    def __init__(self):
        self.h2d = defaultdict(int)
        self.d2h = defaultdict(int)

    def to_device(self, kind: str, nbytes: int) -> None:
        self.h2d[kind] += int(nbytes)

    def to_host(self, kind: str, nbytes: int) -> None:
        self.d2h[kind] += int(nbytes)

    def total_h2d(self, exclude=()) -> int:
        return sum(v for k, v in self.h2d.items() if k not in exclude)

    def total_d2h(self) -> int:
        return sum(self.d2h.values())

    def state_dict(self) -> dict:
        return {"h2d": dict(self.h2d), "d2h": dict(self.d2h)}

    def load_state_dict(self, state: dict) -> None:
        self.h2d = defaultdict(int, state.get("h2d", {}))
        self.d2h = defaultdict(int, state.get("d2h", {}))

    def snapshot(self) -> dict:
        return {"h2d": dict(self.h2d), "d2h": dict(self.d2h)}


# -- windows of a run (benchmarks) -------------------------------------------------------------


def mark(trainer) -> dict:
    """Where a window of steps starts: the trainer's bytes, samples and training seconds."""
    return {"bytes": trainer.bytes.snapshot(), "samples": trainer.samples_trained,
            "seconds": trainer.train_seconds}


def window(trainer, since: dict | None = None) -> dict:
    """Bytes per sample by kind and samples/s from ``since`` (a :func:`mark`; the run's start
    when ``None``) to now.  ``h2d_bytes_per_sample`` counts everything, the one-time
    hot-table load (``hot_load``) included; ``d2h`` everything back."""
    now = mark(trainer)
    since = since or {"bytes": {"h2d": {}, "d2h": {}}, "samples": 0, "seconds": 0.0}

    def d(direction, kind=None):
        a, b = now["bytes"][direction], since["bytes"][direction]
        if kind is None:
            return sum(a.values()) - sum(b.values())
        return a.get(kind, 0) - b.get(kind, 0)

    n = now["samples"] - since["samples"]
    secs = now["seconds"] - since["seconds"]

    def per(v):
        return round(v / max(1, n), 2)

    return {"samples": n, "seconds": round(secs, 4),
            "samples_per_s": round(n / max(secs, 1e-12), 2),
            "h2d_bytes_per_sample": per(d("h2d")),
            "h2d_row_bytes_per_sample": per(d("h2d", "rows")),
            "h2d_hot_load_bytes_per_sample": per(d("h2d", "hot_load")),
            "h2d_input_bytes_per_sample": per(d("h2d", "inputs")),
            "d2h_bytes_per_sample": per(d("d2h")),
            "h2d_bytes": d("h2d"), "h2d_hot_load_bytes": d("h2d", "hot_load")}


def hotline_gain(hybrid: dict, dedup: dict, hotline: dict) -> dict:
    """Hotline's host -> device gain over both hybrids in one window, split into its causes.

    Parameters
    ----------
    hybrid, dedup, hotline : dict
        :func:`window` of ``hybrid``, ``hybrid-dedup`` and ``hotline`` over the same steps.

    Returns
    -------
    dict
        For ``all_bytes`` and ``row_bytes`` (embedding rows, the hot-table load
        counted as rows): the bytes per sample, the gains over each hybrid and
        ``split``, with ``hybrid / hotline = dedup * hot_rows_on_device * hot_table_load``:
        ``dedup = hybrid / hybrid-dedup``, ``hot_rows_on_device = hybrid-dedup / hotline
        without the hot-table load``, ``hot_table_load = hotline without / with the load``
        (at most 1: the one-time load amortised over the window).
    """
    out = {}
    load = hotline["h2d_hot_load_bytes_per_sample"]
    for what, key in (("all_bytes", "h2d_bytes_per_sample"), ("row_bytes", "h2d_row_bytes_per_sample")):
        h, d = hybrid[key], dedup[key]
        o_incl = hotline[key] + (load if what == "row_bytes" else 0)
        o_excl = o_incl - load
        out[what] = {
            "hybrid_per_sample": h, "hybrid_dedup_per_sample": d,
            "hotline_per_sample_without_hot_load": round(o_excl, 2),
            "hotline_per_sample_with_hot_load": round(o_incl, 2),
            "hotline_gain_over_hybrid": round(h / max(o_incl, 1e-12), 3),
            "hotline_gain_over_hybrid_dedup": round(d / max(o_incl, 1e-12), 3),
            "split": {"dedup": round(h / max(d, 1e-12), 3),
                      "hot_rows_on_device": round(d / max(o_excl, 1e-12), 3),
                      "hot_table_load": round(o_excl / max(o_incl, 1e-12), 3)},
        }
    return out


def interval_overlap(a, b) -> float:
    """Total length of the intersection of two sets of ``(start, end)`` intervals
    (each set's own intervals may overlap; they are merged first)."""
    def merged(iv):
        out = []
        for s, e in sorted((float(s), float(e)) for s, e in iv if e > s):
            if out and s <= out[-1][1]:
                out[-1][1] = max(out[-1][1], e)
            else:
                out.append([s, e])
        return out
    x, y = merged(a), merged(b)
    i = j = 0
    total = 0.0
    while i < len(x) and j < len(y):
        lo, hi = max(x[i][0], y[j][0]), min(x[i][1], y[j][1])
        if hi > lo:
            total += hi - lo
        if x[i][1] < y[j][1]:
            i += 1
        else:
            j += 1
    return total
