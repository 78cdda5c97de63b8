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

__all__ = ["roc_auc", "log_loss", "Timers", "ByteCounter"]


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
        Called at the start and end of every timed block (e.g. to wait for the
        CUDA stream so device work is charged to the right phase).
    """

    def __init__(self, sync=None):
        self.totals = defaultdict(float)
        self.counts = defaultdict(int)
        self.events = []
        self.record = False
        self.step = 0
        self.sync = sync
        self.origin = time.perf_counter()
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, name: str, lane: str = "main"):
        if self.sync is not None and lane == "main":
            self.sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self.sync is not None and lane == "main":
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
