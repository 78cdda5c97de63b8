"""Hot-set selection under a byte budget, and how good a hot set is on a run of batches.

A *selection method* turns what the host knows into a ranking of keys, hottest
first; the hot set for a budget of ``N`` rows is the first ``N`` keys of the
ranking.  Ties are broken by the smaller key, so every ranking (and so every
hot set) is a pure function of its inputs.  Keys are packed ``table <<
row_bits | row`` (:func:`hotline.hashing.pack_keys`).

Methods
-------
* :func:`rank_readout` / :func:`select_readout`: the counter array's
  heavy-hitter table, ranked by its counts (at most ``hh_sets * hh_ways``
  keys, no host work beyond the readout).
* :func:`rank_sketch` / :func:`select_sketch`: candidate keys the host
  supplies, plus the readout's keys, ranked by the sketch's estimate queries.
  Candidates must come from what the host has seen (e.g. the distinct keys
  of the learning batches), never from the data being evaluated.
* :func:`rank_exact` / :func:`select_exact`: exact per-key counts over a
  sample of keys (FAE's method over its learning sample; over the whole
  evaluation run it is the oracle).

Evaluation
----------
:func:`sweep` measures, for every budget at once, what a ranking does to a run
of mini-batches: the fraction of samples that are popular (every key hot), the
fraction of key accesses that are hot, and the cold-row bytes per sample the
host must send (each batch's *distinct* cold keys, one row each, as the
reorder unit de-duplicates them).  :func:`evaluate_hot_set` does the same for
one explicit hot set, without the ranking shortcut (the reference the tests
compare :func:`sweep` with).  :func:`zipf_law_sweep` gives the expected
values of the same figures for the true top-N rows of independent per-table
Zipf laws (the synthetic generator's model) on an endless run: the limit no
selection from finite data can beat.
"""

from __future__ import annotations

import numbers

import numpy as np

from .popularity import PopularityCounter

__all__ = ["budget_rows", "rank_exact", "rank_readout", "rank_sketch", "select_exact",
           "select_readout", "select_sketch", "key_ranks", "batch_distinct_keys", "sweep",
           "evaluate_hot_set", "zipf_law_sweep"]


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be non-negative, not {value}")
    return int(value)


def _as_keys(keys, name: str = "keys") -> np.ndarray:
    arr = np.asarray(keys)
    if arr.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be integers, not {arr.dtype}")
    if np.issubdtype(arr.dtype, np.signedinteger) and arr.min() < 0:
        raise ValueError(f"{name} contains the negative key {int(arr.min())}")
    return arr.astype(np.uint64).ravel()


def _order(keys: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Keys with a positive count, by count descending, then key ascending."""
    keep = counts > 0
    keys, counts = keys[keep], counts[keep]
    return keys[np.lexsort((keys, -counts))]


def budget_rows(budget_bytes: int, row_bytes: int) -> int:
    """How many hot rows of ``row_bytes`` fit in ``budget_bytes`` (floor).

    Raises
    ------
    TypeError, ValueError
        A non-integer, a negative budget or a row size below 1.
    """
    budget_bytes = _check_count("budget_bytes", budget_bytes)
    row_bytes = _check_count("row_bytes", row_bytes)
    if row_bytes < 1:
        raise ValueError("row_bytes must be at least 1, not 0")
    return budget_bytes // row_bytes


def rank_exact(keys) -> np.ndarray:
    """Distinct ``keys`` by exact occurrence count, hottest first.

    Parameters
    ----------
    keys : array_like of int
        Packed keys (any shape; every occurrence counts once).

    Returns
    -------
    numpy.ndarray
        uint64 distinct keys, by count descending, then key ascending.
    """
    uniq, counts = np.unique(_as_keys(keys), return_counts=True)
    return _order(uniq, counts)


def select_exact(keys, budget_rows: int) -> np.ndarray:
    """The ``budget_rows`` most frequent distinct keys of ``keys`` (FAE's sample-based choice).

    Parameters
    ----------
    keys : array_like of int
        The sample the counts are taken over.
    budget_rows : int
        Hot rows the budget holds.

    Returns
    -------
    numpy.ndarray
        uint64 keys, hottest first, at most ``budget_rows`` of them (fewer if
        the sample has fewer distinct keys).
    """
    return rank_exact(keys)[:_check_count("budget_rows", budget_rows)]


def _check_counter(counter) -> None:
    if not isinstance(counter, PopularityCounter):
        raise TypeError(f"counter must be a PopularityCounter, not {type(counter).__name__}")


def rank_readout(counter: PopularityCounter) -> np.ndarray:
    """The heavy-hitter table's keys by their counts, hottest first (ties: smaller key)."""
    _check_counter(counter)
    keys, counts = counter.readout()
    return _order(keys.astype(np.uint64), counts.astype(np.int64))


def select_readout(counter: PopularityCounter, budget_rows: int) -> np.ndarray:
    """The first ``budget_rows`` keys of :func:`rank_readout`."""
    return rank_readout(counter)[:_check_count("budget_rows", budget_rows)]


def rank_sketch(counter: PopularityCounter, candidates, *, include_readout: bool = True) -> np.ndarray:
    """Candidate keys ranked by the sketch's estimate queries, hottest first.

    Parameters
    ----------
    counter : PopularityCounter
        A counter array (golden model) after learning.
    candidates : array_like of int
        Keys the host asks the estimates of (duplicates are fine).  They must
        come from data the host has seen, typically the distinct keys of the
        learning batches; the sketch cannot name keys by itself.
    include_readout : bool
        Also rank the heavy-hitter table's keys (by their estimates, like the
        candidates).  Costs nothing when the candidates are the learning keys
        (the table's keys are among them).

    Returns
    -------
    numpy.ndarray
        uint64 distinct keys with a positive estimate, by estimate
        descending, then key ascending.
    """
    _check_counter(counter)
    cand = counter.check_keys(_as_keys(candidates, "candidates"))
    if include_readout:
        cand = np.concatenate([cand, counter.readout()[0].astype(np.uint64)])
    cand = np.unique(cand)
    return _order(cand, counter.estimate(cand))


def select_sketch(counter: PopularityCounter, candidates, budget_rows: int, *,
                  include_readout: bool = True) -> np.ndarray:
    """The first ``budget_rows`` keys of :func:`rank_sketch` (the hardware's hot-set choice).

    Parameters
    ----------
    counter : PopularityCounter
        The counter array after learning.
    candidates : array_like of int
        Keys to rank by estimate (see :func:`rank_sketch`).
    budget_rows : int
        Hot rows the budget holds.

    Returns
    -------
    numpy.ndarray
        uint64 keys, hottest first, at most ``budget_rows``.
    """
    budget_rows = _check_count("budget_rows", budget_rows)
    return rank_sketch(counter, candidates, include_readout=include_readout)[:budget_rows]


def key_ranks(ranking, keys) -> np.ndarray:
    """Position of every key of ``keys`` in ``ranking`` (0 = hottest), ``len(ranking)`` if absent.

    A key is in the hot set of ``N`` rows exactly when its rank is below ``N``.
    Returns int64 of the shape of ``keys``.
    """
    ranking = _as_keys(ranking, "ranking")
    arr = np.asarray(keys)
    flat = _as_keys(arr)
    order = np.argsort(ranking, kind="stable")
    sorted_keys = ranking[order]
    if sorted_keys.size > 1 and np.any(sorted_keys[1:] == sorted_keys[:-1]):
        raise ValueError("ranking contains a key twice")
    pos = np.searchsorted(sorted_keys, flat)
    pos_c = np.minimum(pos, max(sorted_keys.size - 1, 0))
    found = (pos < sorted_keys.size) & (sorted_keys[pos_c] == flat) if sorted_keys.size else \
        np.zeros(flat.size, dtype=bool)
    ranks = np.full(flat.size, ranking.size, dtype=np.int64)
    ranks[found] = order[pos_c[found]]
    return ranks.reshape(arr.shape)


def _check_samples(sample_keys, batch_size) -> tuple[np.ndarray, int]:
    arr = np.asarray(sample_keys)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"sample_keys must be a non-empty [samples, keys per sample] array, "
                         f"not shape {arr.shape}")
    batch_size = _check_count("batch_size", batch_size)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1, not 0")
    return arr, batch_size


def _batch_distinct(sample_keys: np.ndarray, batch_size: int) -> np.ndarray:
    """Concatenation over the batches of each batch's distinct keys."""
    return np.concatenate([np.unique(sample_keys[i:i + batch_size])
                           for i in range(0, sample_keys.shape[0], batch_size)])


def sweep(sample_keys, ranking, budgets, *, batch_size: int, row_bytes: int,
          batch_distinct=None) -> list[dict]:
    """What the hot sets ``ranking[:N]`` do to a run of batches, for every ``N`` in ``budgets``.

    Parameters
    ----------
    sample_keys : array_like, shape [samples, T]
        Packed keys of the evaluation samples in order; consecutive runs of
        ``batch_size`` samples are the mini-batches (the last may be short).
    ranking : array_like of int
        Distinct keys, hottest first (from a ``rank_*`` function).
    budgets : sequence of int
        Hot-set sizes in rows.
    batch_size : int
        Samples per mini-batch.
    row_bytes : int
        Bytes of one embedding row sent host to device.
    batch_distinct : numpy.ndarray, optional
        :func:`batch_distinct_keys` of the same ``sample_keys`` and
        ``batch_size``, to compute it once for several rankings.

    Returns
    -------
    list of dict
        One per budget: ``budget_rows``, ``hot_rows`` (``min(N,
        len(ranking))``), ``popular_fraction``, ``hot_access_fraction``,
        ``cold_rows_per_batch`` (mean distinct cold keys per batch) and
        ``bytes_per_sample`` (cold-row bytes host to device per sample).
    """
    arr, batch_size = _check_samples(sample_keys, batch_size)
    row_bytes = _check_count("row_bytes", row_bytes)
    ranking = _as_keys(ranking, "ranking")
    n = arr.shape[0]
    batches = -(-n // batch_size)
    ranks = key_ranks(ranking, arr)
    sample_max = np.sort(ranks.max(axis=1))
    access = np.sort(ranks.ravel())
    distinct = _batch_distinct(arr, batch_size) if batch_distinct is None else batch_distinct
    distinct_ranks = np.sort(key_ranks(ranking, distinct))
    rows = []
    for b in budgets:
        b = _check_count("budget", b)
        hot_rows = min(b, int(ranking.size))    # absent keys rank len(ranking): never hot
        popular = int(np.searchsorted(sample_max, hot_rows, side="left"))
        hot_access = int(np.searchsorted(access, hot_rows, side="left"))
        cold = distinct_ranks.size - int(np.searchsorted(distinct_ranks, hot_rows, side="left"))
        rows.append({
            "budget_rows": b, "hot_rows": hot_rows,
            "popular_fraction": popular / n,
            "hot_access_fraction": hot_access / access.size,
            "cold_rows_per_batch": cold / batches,
            "bytes_per_sample": cold * row_bytes / n,
        })
    return rows


def batch_distinct_keys(sample_keys, batch_size: int) -> np.ndarray:
    """Every batch's distinct keys, concatenated: a cache for :func:`sweep`'s ``batch_distinct``."""
    arr, batch_size = _check_samples(sample_keys, batch_size)
    return _batch_distinct(arr, batch_size)


def evaluate_hot_set(sample_keys, hot_keys, *, batch_size: int, row_bytes: int) -> dict:
    """Popular fraction, hot accesses and cold bytes per sample of one explicit hot set.

    The direct definition, batch by batch (see :func:`sweep` for the meaning
    of the fields; ``budget_rows`` is absent).
    """
    arr, batch_size = _check_samples(sample_keys, batch_size)
    row_bytes = _check_count("row_bytes", row_bytes)
    hot = np.unique(_as_keys(hot_keys, "hot_keys"))
    flat = _as_keys(arr)
    is_hot = np.isin(flat, hot).reshape(arr.shape)
    n = arr.shape[0]
    cold = 0
    batches = 0
    for i in range(0, n, batch_size):
        keys = arr[i:i + batch_size].ravel()
        cold += np.unique(keys[~is_hot[i:i + batch_size].ravel()]).size
        batches += 1
    return {"hot_rows": int(hot.size), "popular_fraction": float(is_hot.all(axis=1).mean()),
            "hot_access_fraction": float(is_hot.mean()), "cold_rows_per_batch": cold / batches,
            "bytes_per_sample": cold * row_bytes / n}


def zipf_law_sweep(table_sizes, exponent: float, budgets, *, batch_size: int,
                   row_bytes: int) -> list[dict]:
    """Expected figures of the ideal hot set under independent per-table Zipf laws.

    Table ``t`` of ``n`` rows draws row rank ``r`` (1-based) with probability
    ``r**-s / H`` (:func:`hotline.host.data.synthetic.zipf_ranks`, up to its
    1e-7 tail approximation), one key per table per sample, independently.
    The hot set of ``N`` rows is the ``N`` most probable rows over all tables
    (the rows above a probability threshold; at most ``N``, fewer by the
    rows tied at the threshold).

    Parameters
    ----------
    table_sizes : sequence of int
        Rows per table.
    exponent : float
        Zipf exponent ``s >= 0``.
    budgets : sequence of int
        Hot-set sizes in rows.
    batch_size, row_bytes : int
        As in :func:`sweep`.

    Returns
    -------
    list of dict
        One per budget, the fields of :func:`sweep` as expectations:
        ``popular_fraction = prod_t P_t(hot)``, ``hot_access_fraction`` the
        mean over tables of ``P_t(hot)``, ``cold_rows_per_batch = sum_t
        sum_{r cold} 1 - (1 - p_r)**B``.
    """
    sizes = [int(n) for n in table_sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError("table_sizes must be one or more positive integers")
    s = float(exponent)
    if not (np.isfinite(s) and s >= 0):
        raise ValueError(f"exponent must be finite and >= 0, not {exponent}")
    batch_size = _check_count("batch_size", batch_size)
    row_bytes = _check_count("row_bytes", row_bytes)
    budgets = [_check_count("budget", b) for b in budgets]
    norm = [float((np.arange(1, n + 1, dtype=np.float64) ** -s).sum()) for n in sizes]

    def hot_per_table(theta):
        # rows of table t with r**-s / H_t >= theta: r <= (theta * H_t) ** (-1 / s)
        if s == 0:
            return [n if 1.0 / h >= theta else 0 for n, h in zip(sizes, norm)]
        return [int(min(n, np.floor((theta * h) ** (-1.0 / s) * (1 + 1e-12)))) for n, h in zip(sizes, norm)]

    cuts = []
    for b in budgets:
        if b >= sum(sizes):
            cuts.append(list(sizes))
            continue
        lo, hi = 0.0, 1.0 + 1e-9           # count(hi) == 0 <= b; find the smallest theta with count <= b
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if sum(hot_per_table(mid)) > b:
                lo = mid
            else:
                hi = mid
        cuts.append(hot_per_table(hi))
    hot_mass = np.ones((len(budgets), len(sizes)))
    cold_rows = np.zeros(len(budgets))
    for t, (n, h) in enumerate(zip(sizes, norm)):
        p = np.arange(1, n + 1, dtype=np.float64) ** -s / h
        mass = np.concatenate([[0.0], np.cumsum(p)])
        q = -np.expm1(batch_size * np.log1p(-np.minimum(p, 1 - 1e-16)))   # P(row in a batch)
        seen = np.concatenate([[0.0], np.cumsum(q)])
        for i, cut in enumerate(cuts):
            k = cut[t]
            hot_mass[i, t] = min(1.0, mass[k] / mass[-1])
            cold_rows[i] += seen[-1] - seen[k]
    rows = []
    for i, b in enumerate(budgets):
        rows.append({"budget_rows": b, "hot_rows": int(sum(cuts[i])),
                     "popular_fraction": float(np.prod(hot_mass[i])),
                     "hot_access_fraction": float(hot_mass[i].mean()),
                     "cold_rows_per_batch": float(cold_rows[i]),
                     "bytes_per_sample": float(cold_rows[i] * row_bytes / batch_size)})
    return rows
