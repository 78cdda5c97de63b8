"""Golden model of the popularity counter array.

The reference semantics that the RTL must equal, key by key in stream order:

for each key ``k`` (packed ``table << row_bits | row``):

1. with ``m`` the minimum of the key's ``D`` counters (``counter_index(k, d)``
   in row ``d``), the estimate is ``e = min(m + 1, 2**C - 1)``; every counter
   is incremented, saturating at ``2**C - 1`` (plain count-min), or, with
   ``counter.conservative_update``, raised to ``max(c, e)`` (only the
   counters below ``e`` move);
2. ``e`` is then also the minimum of the key's counters;
3. in the heavy-hitter set ``set_index(k)``: if ``k`` is there, its count
   becomes ``e``; otherwise, if ``e >= threshold``, ``k`` takes the lowest
   free way with count ``e``, or, when the set is full, replaces the entry
   with the smallest count (the lowest way among equals) if that count is
   smaller than ``e``.

An estimate query returns the current minimum over the ``D`` counters and
changes nothing.  ``clear`` zeroes every counter and empties the table.

The plain sketch is vectorised (per-row running counts by a stable sort);
conservative update is inherently sequential and runs as a tight loop over
Python lists.  Only the keys whose estimate reaches the threshold walk the
heavy-hitter table.  A million Zipf keys learn in a few seconds either way.
"""

from __future__ import annotations

import numpy as np

from ..config import HotlineConfig
from ..hashing import counter_hashes
from .grouping import sort_groups

__all__ = ["PopularityCounter", "rank_hot"]


class PopularityCounter:
    """Bit-exact model of :class:`hotline.rtl.popularity.PopularityCounterArray`.

    Parameters
    ----------
    cfg : HotlineConfig
        Sizes (``cfg.counter``, ``cfg.keys``) and the hash seed.

    Members
    -------
    counters : numpy.ndarray
        ``int64 [D, 2**S]``, the sketch.
    keys_learned : int
        Keys processed since the last clear.
    """

    def __init__(self, cfg: HotlineConfig | None = None):
        cfg = HotlineConfig() if cfg is None else cfg
        if not isinstance(cfg, HotlineConfig):
            raise TypeError(f"cfg must be a HotlineConfig, not {type(cfg).__name__}")
        self.cfg = cfg
        self.hashes = counter_hashes(cfg)
        self.clear()

    # -- state ----------------------------------------------------------------

    def clear(self) -> None:
        """Zero every counter and empty the heavy-hitter table."""
        c = self.cfg.counter
        self.counters = np.zeros((c.depth, c.counters), dtype=np.int64)
        # Python lists: the per-key admission loop is faster on them than on NumPy scalars.
        self._hh_keys = [[None] * c.hh_ways for _ in range(c.hh_sets)]
        self._hh_counts = [[0] * c.hh_ways for _ in range(c.hh_sets)]
        self.keys_learned = 0

    def state_dict(self) -> dict:
        """A copy of the whole state (counters, heavy-hitter table, keys learned)."""
        valid, keys, counts = self.table()
        return {"counters": self.counters.copy(), "hh_valid": valid, "hh_keys": keys,
                "hh_counts": counts, "keys_learned": self.keys_learned}

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict` (of a model with the same config)."""
        c = self.cfg.counter
        counters = np.asarray(state["counters"], dtype=np.int64)
        valid = np.asarray(state["hh_valid"], dtype=bool)
        if counters.shape != self.counters.shape or valid.shape != (c.hh_sets, c.hh_ways):
            raise ValueError(f"popularity state of shape {counters.shape}/{valid.shape} does not "
                             f"match the config ({self.counters.shape}/{(c.hh_sets, c.hh_ways)})")
        if counters.size and (counters.min() < 0 or counters.max() > c.counter_max):
            raise ValueError(f"popularity counters outside 0..{c.counter_max}")
        keys = np.asarray(state["hh_keys"], dtype=np.uint64).tolist()
        counts = np.asarray(state["hh_counts"], dtype=np.int64).tolist()
        self.counters = counters.copy()
        self._hh_keys = [[k if v else None for k, v in zip(ks, vs)] for ks, vs in zip(keys, valid.tolist())]
        self._hh_counts = [[n if v else 0 for n, v in zip(ns, vs)] for ns, vs in zip(counts, valid.tolist())]
        self.keys_learned = int(state["keys_learned"])

    def check_keys(self, keys) -> np.ndarray:
        """Return ``keys`` as a flat uint64 array; raise ValueError for a key outside the key space."""
        arr = np.asarray(keys)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"keys must be integers, not {arr.dtype}")
        if arr.size and np.issubdtype(arr.dtype, np.signedinteger) and arr.min() < 0:
            raise ValueError(f"key {int(arr.min())} is negative")
        arr = arr.astype(np.uint64).ravel()
        k = self.cfg.keys
        if arr.size:
            tables = arr >> np.uint64(k.row_bits)
            bad = np.nonzero(tables >= np.uint64(k.tables))[0]
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"key {int(arr[i]):#x} at position {i} names table "
                                 f"{int(tables[i])}, but there are {k.tables} tables")
        return arr

    # -- updates --------------------------------------------------------------

    def learn(self, keys) -> None:
        """Process ``keys`` (packed, in stream order) one at a time."""
        keys = self.check_keys(keys)
        n = keys.size
        if n == 0:
            return
        c = self.cfg.counter
        indices = [self.hashes.counter_index(keys, d) for d in range(c.depth)]
        if c.conservative_update:
            estimate = self._count_conservative(indices)
        else:
            estimate = self._count_all(indices)
        self.keys_learned += n

        hot = np.nonzero(estimate >= c.threshold)[0]
        if hot.size == 0:
            return
        # Sets share nothing, so they may be updated one after another, each in stream
        # order.  Within a set, an update directly followed by one of the same key with
        # an estimate at least as large leaves what the second alone leaves (it then
        # finds the key where the first put it, or the same free or smallest way), so
        # only the last of such a run is applied: several times fewer steps on a skewed
        # stream.  (A key's estimate never falls while learning, so runs always merge.)
        hot_keys, hot_est = keys[hot], estimate[hot]
        sets = self.hashes.set_index(hot_keys)
        order = np.argsort(sets, kind="stable")
        hot_keys, hot_est, sets = hot_keys[order], hot_est[order], sets[order]
        last = np.ones(hot.size, dtype=bool)
        last[:-1] = ~((sets[1:] == sets[:-1]) & (hot_keys[1:] == hot_keys[:-1])
                      & (hot_est[1:] >= hot_est[:-1]))
        hh_keys, hh_counts = self._hh_keys, self._hh_counts
        for key, est, s in zip(hot_keys[last].tolist(), hot_est[last].tolist(), sets[last].tolist()):
            ways, counts = hh_keys[s], hh_counts[s]
            try:
                counts[ways.index(key)] = est
                continue
            except ValueError:
                pass
            try:
                w = ways.index(None)
            except ValueError:
                smallest = min(counts)
                if smallest >= est:
                    continue
                w = counts.index(smallest)
            ways[w] = key
            counts[w] = est

    def _count_all(self, indices) -> np.ndarray:
        """Plain count-min update, vectorised: per row, the running count of each counter."""
        cmax = self.cfg.counter.counter_max
        n = indices[0].size
        positions = np.arange(n, dtype=np.int64)
        estimate = None
        for row, idx in zip(self.counters, indices):
            # rank of each key among the keys before it that hit the same counter (1-based)
            order, sorted_idx, group_start = sort_groups(idx)
            start_pos = np.maximum.accumulate(np.where(group_start, positions, 0))
            rank = np.empty(n, dtype=np.int64)
            rank[order] = positions - start_pos + 1
            value = np.minimum(row[idx] + rank, cmax)
            estimate = value if estimate is None else np.minimum(estimate, value)
            # only the counters this batch hit change (not a pass over the whole row)
            starts = np.flatnonzero(group_start)
            hit = sorted_idx[starts].astype(np.intp)
            row[hit] = np.minimum(row[hit] + np.diff(np.r_[starts, n]), cmax)
        return estimate

    def _count_conservative(self, indices) -> np.ndarray:
        """Conservative update: each key depends on the ones before it, so this is a loop."""
        cmax = self.cfg.counter.counter_max
        n = indices[0].size
        # Python lists beat NumPy scalar indexing by ~10x in a per-key loop; converting
        # the rows costs O(2**S), so small calls index the arrays directly.
        rows = [r.tolist() for r in self.counters] if n > 256 else list(self.counters)
        idx_lists = [ix.tolist() for ix in indices]
        if len(rows) == 4:
            estimate = self._conservative4(rows, idx_lists, cmax)
        else:
            estimate = [0] * n
            for i, idx in enumerate(zip(*idx_lists)):
                new = min(min(row[j] for row, j in zip(rows, idx)) + 1, cmax)
                for row, j in zip(rows, idx):
                    if row[j] < new:
                        row[j] = new
                estimate[i] = new
        if n > 256:
            self.counters[:] = np.array(rows, dtype=np.int64)
        return np.array(estimate, dtype=np.int64)

    @staticmethod
    def _conservative4(rows, idx_lists, cmax) -> list:
        """The D = 4 case of the conservative-update loop, unrolled (about 3x faster)."""
        r0, r1, r2, r3 = rows
        estimate = []
        append = estimate.append
        for a, b, c, d in zip(*idx_lists):
            new = min(r0[a], r1[b], r2[c], r3[d]) + 1
            if new > cmax:
                new = cmax
            if r0[a] < new:
                r0[a] = new
            if r1[b] < new:
                r1[b] = new
            if r2[c] < new:
                r2[c] = new
            if r3[d] < new:
                r3[d] = new
            append(new)
        return estimate

    # -- queries --------------------------------------------------------------

    def estimate(self, keys) -> np.ndarray:
        """Count-min estimates of ``keys`` (int64, same length); nothing is updated."""
        keys = self.check_keys(keys)
        est = None
        for d in range(self.cfg.counter.depth):
            v = self.counters[d][self.hashes.counter_index(keys, d)]
            est = v if est is None else np.minimum(est, v)
        return est if est is not None else np.zeros(0, dtype=np.int64)

    def table(self):
        """The whole heavy-hitter table: ``(valid bool, key uint64, count int64)``, each ``[sets, ways]``."""
        valid = np.array([[k is not None for k in ws] for ws in self._hh_keys], dtype=bool)
        keys = np.array([[0 if k is None else k for k in ws] for ws in self._hh_keys], dtype=np.uint64)
        counts = np.array(self._hh_counts, dtype=np.int64)
        return valid, keys, counts

    def readout(self):
        """Valid heavy-hitter entries in readout order (set, then way): ``(keys, counts)``."""
        valid, keys, counts = self.table()
        return keys[valid], counts[valid]

    def hot_set(self, budget_bytes: int, row_bytes: int, candidates=None) -> np.ndarray:
        """The hottest keys that fit ``budget_bytes`` of device memory, hottest first.

        Parameters
        ----------
        budget_bytes : int
            Device bytes for hot rows (FAE's knob).
        row_bytes : int
            Bytes one hot row costs (``dim * element bytes``, plus optimizer
            state if it lives beside the row).
        candidates : array of keys, optional
            Rank these by their sketch estimates (for hot sets larger than the
            heavy-hitter table); by default the heavy-hitter table is ranked
            by its counts.

        Ties are broken by the smaller key so the choice is deterministic;
        keys never seen (count 0) are not chosen.
        """
        if candidates is None:
            keys, counts = self.readout()
        else:
            keys = np.unique(self.check_keys(candidates))
            counts = self.estimate(keys)
        return rank_hot(keys, counts, budget_bytes, row_bytes)


def rank_hot(keys, counts, budget_bytes: int, row_bytes: int) -> np.ndarray:
    """The hot set from (key, count) pairs: the highest counts that fit ``budget_bytes`` at
    ``row_bytes`` a row, ties broken by the smaller key, count-0 keys never chosen.

    One ranking for every backend: the golden counter and the device's readout or
    estimates go through it, so equal popularity state gives an equal hot set.
    """
    if isinstance(budget_bytes, bool) or not isinstance(budget_bytes, (int, np.integer)) \
            or budget_bytes < 0:
        raise ValueError(f"budget_bytes must be a non-negative integer, not {budget_bytes!r}")
    if isinstance(row_bytes, bool) or not isinstance(row_bytes, (int, np.integer)) \
            or row_bytes <= 0:
        raise ValueError(f"row_bytes must be a positive integer, not {row_bytes!r}")
    limit = int(budget_bytes) // int(row_bytes)
    keys, counts = np.asarray(keys), np.asarray(counts)
    keep = counts > 0
    keys, counts = keys[keep], counts[keep]
    order = np.lexsort((keys, -counts.astype(np.int64)))
    return keys[order][:limit]


def coverage_quality(model: PopularityCounter, sample_keys, multiples=(1, 10, 100),
                     candidates=None) -> list[dict]:
    """How well the learned popularity picks a hot set, against the exact top-N.

    For ``N = m * heavy-hitter capacity`` (``m`` in ``multiples``), the
    fraction of the accesses in ``sample_keys`` that the model's hot set
    covers, divided by the fraction the exact top-N of ``sample_keys``
    covers.  ``m == 1`` uses the heavy-hitter readout; larger ``m`` rank
    ``candidates`` by their estimates (what the host does for a hot set larger
    than the table); by default the candidates are the distinct keys of
    ``sample_keys`` itself.  To judge a held-out sample, pass the learning
    sample's distinct keys, so nothing is taken from the evaluated one.

    Returns one dict per multiple: ``n``, ``found``, ``coverage``,
    ``exact_coverage``, ``ratio``.
    """
    keys = model.check_keys(sample_keys)
    uniq, counts = np.unique(keys, return_counts=True)
    total = keys.size
    exact = np.cumsum(np.sort(counts)[::-1])
    capacity = model.cfg.counter.hh_entries
    rows = []
    for m in multiples:
        n = int(m) * capacity
        if m == 1:
            hot = model.readout()[0]
        else:
            hot = model.hot_set(n, 1, candidates=uniq if candidates is None else candidates)
        covered = int(counts[np.isin(uniq, hot)].sum())
        exact_cov = int(exact[min(n, uniq.size) - 1]) if uniq.size else 0
        rows.append({
            "multiple": int(m), "n": n, "found": int(hot.size), "distinct_keys": int(uniq.size),
            "coverage": covered / total if total else 0.0,
            "exact_coverage": exact_cov / total if total else 0.0,
            "ratio": covered / exact_cov if exact_cov else 1.0,
        })
    return rows
