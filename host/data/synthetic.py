"""Synthetic click logs with Criteo's shape and Zipf-skewed embedding accesses.

Every sample has ``num_dense`` dense features, one row per table and a click
label, generated as follows (all deterministic from ``seed``; each part from
its own random stream, so the first ``k`` samples of a longer dataset equal a
``k``-sample dataset of the same seed):

* **Rows.** For table ``t`` of ``n`` rows a popularity rank ``r`` in
  ``1..n`` is drawn from the bounded Zipf law ``P(r) ~ r**-s``
  (``s = zipf_exponent``; 0 gives a uniform law): exactly (alias method)
  for the first 4,096 ranks, and for the tail from the continuous power law
  rounded to the nearest integer (relative error of a rank's probability
  ``s(s+1)/(24 r**2)``, below 1e-7 there for ``s <= 4``).  The rank goes
  through a per-table random permutation
  (:class:`~hotline.host.data.mix.TablePermutation`), so the hot rows are
  scattered over the table rather than being rows ``0..k``.
* **Dense features** look like Criteo's after the usual ``log(1 + x)``
  transform: feature ``j`` is missing (0.0) with a probability between 5 %
  and 45 %, otherwise ``log1p(floor(exp(N(mu_j, sigma_j))))``.
* **Labels** come from a hidden logistic model: the logit is a bias, plus a
  weight times the centred value of each of the first ``min(3, num_dense)``
  dense features, plus a per-row effect (uniform in ``[-1.5, 1.5]``, from a
  hash of the row) of each of the first ``min(3, T)`` tables.  About a
  third of the labels are 1 (Criteo Kaggle: 25.6 %; the rate depends on the
  seed, 14 % to 52 % over 3,000 seeds, since the hottest rows' effects move
  it), and a model that learns those features and rows reaches an AUC well
  above 0.5.
"""

from __future__ import annotations

import numbers

import numpy as np

from .batch import ArrayDataset, check_table_sizes
from .criteo import CRITEO_KAGGLE_TABLE_SIZES
from .mix import TablePermutation, mix64

__all__ = ["synthetic_criteo", "zipf_ranks", "skewed_small_dataset"]

#: Ranks below this are sampled from the exact discrete law.
_HEAD = 1 << 12

# Stream ids: one independent random stream per part of the generator.
_KEYS, _PERM, _DENSE, _LABELS, _MODEL = range(5)

#: How many dense features and tables the hidden label model uses.
_MODEL_DENSE = 3
_MODEL_TABLES = 3
_EFFECT_SCALE = 1.5


def _alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table of the distribution ``p`` (sums to 1)."""
    k = len(p)
    scaled = p * k
    prob = np.ones(k)
    alias = np.arange(k)
    small = [i for i in range(k) if scaled[i] < 1.0]
    large = [i for i in range(k) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    # Whatever is left is 1 up to rounding: keeps prob 1 (never aliased).
    return prob, alias


def _alias_draw(u: np.ndarray, prob: np.ndarray, alias: np.ndarray) -> np.ndarray:
    # One uniform gives both the column (integer part) and the coin (fraction).
    x = u * len(prob)
    i = np.minimum(x.astype(np.int64), len(prob) - 1)
    x -= i
    return np.where(x < prob[i], i, alias[i])


def zipf_ranks(rng: np.random.Generator, n: int, exponent: float, size: int) -> np.ndarray:
    """Draw 0-based popularity ranks from the bounded Zipf law ``P(r) ~ (r + 1)**-exponent``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source; exactly one uniform is drawn per rank, so a longer draw
        extends a shorter one with the same generator state.
    n : int
        Number of ranks (table rows), at least 1.
    exponent : float
        Zipf exponent ``s >= 0``.
    size : int
        Number of draws.

    Returns
    -------
    numpy.ndarray
        int64 ranks in ``[0, n)``; rank 0 is the most popular.
    """
    u = rng.random(size)
    head = min(n, _HEAD)
    w = np.arange(1, head + 1, dtype=np.float64) ** -exponent
    head_mass = w.sum()
    prob, alias = _alias_table(w / head_mass)
    if n <= _HEAD:
        return _alias_draw(u, prob, alias)
    # Tail ranks head+1..n: rank r gets the mass of x**-s over [r-0.5, r+0.5),
    # which differs from r**-s by a relative s(s+1)/(24 r**2) (< 1e-7 here for s <= 4).
    a, b = head + 0.5, n + 0.5
    e = 1.0 - exponent
    if abs(e) < 1e-12:
        tail_mass = np.log(b / a)
    else:
        tail_mass = (b ** e - a ** e) / e
    p_head = head_mass / (head_mass + tail_mass)
    ranks = np.empty(size, dtype=np.int64)
    in_head = u < p_head
    ranks[in_head] = _alias_draw(u[in_head] / p_head, prob, alias)
    v = (u[~in_head] - p_head) / (1.0 - p_head)
    if abs(e) < 1e-12:
        x = a * np.exp(v * np.log(b / a))
    else:
        x = (a ** e + v * (b ** e - a ** e)) ** (1.0 / e)
    # 1-based rank nearest to x, kept inside the tail against rounding.
    ranks[~in_head] = np.clip(np.floor(x + 0.5), head + 1, n).astype(np.int64) - 1
    return ranks


def _stream(seed: int, part: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(part, index)))


def synthetic_criteo(num_samples: int, *, seed: int = 0, zipf_exponent: float = 1.05,
                     table_sizes=CRITEO_KAGGLE_TABLE_SIZES, num_dense: int = 13) -> ArrayDataset:
    """Generate a synthetic Criteo-like dataset (see the module docstring for the model).

    Parameters
    ----------
    num_samples : int
        Number of samples, at least 1.
    seed : int
        Non-negative seed; the dataset is a pure function of all arguments.
    zipf_exponent : float
        Skew of the row popularity, ``>= 0`` (0 = uniform, ~1 = Criteo-like).
    table_sizes : sequence of int
        Rows per embedding table (default: Criteo Kaggle's 26 tables).
    num_dense : int
        Dense features per sample, ``>= 0``.

    Returns
    -------
    ArrayDataset
        With ``table_names`` ``C1..CT``; ``sparse`` is stored as int32 when
        every table fits, batches are int64 as always.

    Raises
    ------
    TypeError, ValueError
        An argument of the wrong type or out of range (message names it).
    """
    for nm, v, lo in (("num_samples", num_samples, 1), ("seed", seed, 0), ("num_dense", num_dense, 0)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{nm} must be an integer, not {type(v).__name__} {v!r}")
        if v < lo:
            raise ValueError(f"{nm} must be at least {lo}, not {v}")
    num_samples, seed, num_dense = int(num_samples), int(seed), int(num_dense)
    if isinstance(zipf_exponent, bool) or not isinstance(zipf_exponent, numbers.Real):
        raise TypeError(f"zipf_exponent must be a number, not {type(zipf_exponent).__name__}")
    zipf_exponent = float(zipf_exponent)
    if not (np.isfinite(zipf_exponent) and zipf_exponent >= 0.0):
        raise ValueError(f"zipf_exponent must be finite and >= 0, not {zipf_exponent}")
    sizes = check_table_sizes(table_sizes)
    if max(sizes) >= 2**62:
        raise ValueError("table_sizes entries must be below 2**62")

    n = num_samples
    index_dtype = np.int32 if max(sizes) <= np.iinfo(np.int32).max else np.int64
    sparse = np.empty((n, len(sizes)), dtype=index_dtype)
    for t, size in enumerate(sizes):
        ranks = zipf_ranks(_stream(seed, _KEYS, t), size, zipf_exponent, n)
        sparse[:, t] = TablePermutation(size, _stream(seed, _PERM, t))(ranks)

    # Per-feature shape of the dense counts, fixed by the seed alone.
    model = _stream(seed, _MODEL)
    p_missing = model.uniform(0.05, 0.45, size=num_dense)
    mu = model.uniform(0.0, 5.0, size=num_dense)
    sigma = model.uniform(0.5, 2.0, size=num_dense)
    weights = model.uniform(0.6, 1.2, size=num_dense) * model.choice([-1.0, 1.0], size=num_dense)
    salts = model.integers(0, 2**63, size=len(sizes), dtype=np.int64)

    dense = np.empty((n, num_dense), dtype=np.float32)
    for j in range(num_dense):
        # Two streams per feature, each drawn for every sample (present or
        # not), so that sample i always gets the i-th draws.
        missing = _stream(seed, _DENSE, 2 * j).random(n) < p_missing[j]
        normal = _stream(seed, _DENSE, 2 * j + 1).standard_normal(n)
        counts = np.floor(np.exp(mu[j] + sigma[j] * normal))
        dense[:, j] = np.where(missing, 0.0, np.log1p(counts))

    logit = np.full(n, -1.5)
    for j in range(min(_MODEL_DENSE, num_dense)):
        # Centre on the feature's typical present value so the bias alone sets the base rate.
        logit += weights[j] * (dense[:, j] - (1.0 - p_missing[j]) * mu[j]) / sigma[j]
    for t in range(min(_MODEL_TABLES, len(sizes))):
        h = mix64(sparse[:, t].astype(np.int64) ^ salts[t])
        unit = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)   # uniform in [0, 1)
        logit += _EFFECT_SCALE * (2.0 * unit - 1.0)
    labels = (_stream(seed, _LABELS).random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32)

    return ArrayDataset(dense, sparse, labels, sizes,
                        table_names=tuple(f"C{i + 1}" for i in range(len(sizes))),
                        name=f"synthetic_criteo(num_samples={n}, seed={seed}, zipf_exponent={zipf_exponent})",
                        validate=False)


def skewed_small_dataset(n: int, sizes, seed: int, name: str = "skewed") -> ArrayDataset:
    """Skewed keys (Zipf 1.2) over small tables, for parity checks of the trainer modes.

    Every batch has popular and non-popular samples and its cold rows recur in
    nearly every later batch, so the gather-after-write-back hazard shows.  Three
    dense features and a label that depends on them and on the first table.
    """
    rng = np.random.default_rng(seed)
    sparse = np.empty((n, len(sizes)), dtype=np.int64)
    for t, m in enumerate(sizes):
        p = 1.0 / np.arange(1, m + 1) ** 1.2
        sparse[:, t] = rng.permutation(m)[rng.choice(m, size=n, p=p / p.sum())]
    dense = rng.random((n, 3)).astype(np.float32)
    logit = dense @ np.array([1.5, -1.0, 0.5]) + (sparse[:, 0] % 2) - 0.5
    labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return ArrayDataset(dense, sparse, labels, tuple(sizes), name=name)
