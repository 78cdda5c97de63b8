"""Golden model of the micro-batch reorder unit: classify, remap and de-duplicate a batch.

A mini-batch is ``B`` samples of ``T = reorder.keys_per_sample`` packed keys.
Every key is looked up in the :class:`~hotline.host.hotmap.HotMap`; a sample is
*popular* iff all of its keys hit.  Each key is remapped to ``(hot, slot)`` or
``(cold, u)`` where ``u`` numbers the batch's distinct cold keys in order of
first occurrence, row-major over the whole batch (sample 0 key 0, sample 0
key 1, ...).

:func:`classify` is the host API (it raises :class:`BatchOverflow` when the
batch does not fit the hardware).  :func:`reorder_batch` models what the
hardware emits for any batch, including one that overflows: the unit stops at
the *stop position*, the first key position (row-major) that is either the
first key of sample ``max_batch_samples`` or the first occurrence of cold key
number ``max_batch_keys`` (0-based, i.e. one more than fit).  It emits the
samples that end before the stop position and the cold keys first seen before
it (at most ``max_batch_keys``), drops the rest of the batch, and reports the
counts it emitted with error flags in the batch's status.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import HotlineConfig
from .grouping import sort_groups
from .hotmap import HotMap, check_keys

__all__ = ["BatchOverflow", "ClassifiedBatch", "BatchStatus", "ReorderResult",
           "classify", "reorder_batch", "dedupe_first_occurrence"]


class BatchOverflow(ValueError):
    """A batch has more distinct cold keys or more samples than the reorder unit holds.

    Members
    -------
    samples, max_batch_samples : int
        Samples in the batch and the limit.
    unique_cold, max_batch_keys : int
        Distinct cold keys in the batch and the limit.
    """

    def __init__(self, message: str, *, samples: int, max_batch_samples: int,
                 unique_cold: int, max_batch_keys: int):
        super().__init__(message)
        self.samples = samples
        self.max_batch_samples = max_batch_samples
        self.unique_cold = unique_cold
        self.max_batch_keys = max_batch_keys


@dataclass
class ClassifiedBatch:
    """One batch, classified and remapped.

    Members
    -------
    popular : numpy.ndarray
        int64 sample indices (positions in the batch) of the popular samples,
        in arrival order.
    non_popular : numpy.ndarray
        int64 sample indices of the other samples, in arrival order.
    hot : numpy.ndarray
        bool [B, T]: the key is hot.
    index : numpy.ndarray
        int64 [B, T]: the hot slot where ``hot``, else ``u``, the key's
        position in ``cold_keys``.
    cold_keys : numpy.ndarray
        uint64: the distinct cold keys, in first-occurrence order (row-major).
    """

    popular: np.ndarray
    non_popular: np.ndarray
    hot: np.ndarray
    index: np.ndarray
    cold_keys: np.ndarray


@dataclass
class BatchStatus:
    """The status word the hardware emits at the end of a batch.

    Members
    -------
    popular, non_popular : int
        Samples emitted on each output.
    cold : int
        Distinct cold keys emitted (``u`` runs from 0 to ``cold - 1``).
    key_overflow : bool
        The batch had more than ``max_batch_keys`` distinct cold keys before
        the sample limit.
    sample_overflow : bool
        The batch had more than ``max_batch_samples`` samples.
    """

    popular: int
    non_popular: int
    cold: int
    key_overflow: bool
    sample_overflow: bool

    @property
    def error(self) -> bool:
        return self.key_overflow or self.sample_overflow


@dataclass
class ReorderResult:
    """What the hardware emits for one batch (see the module docstring).

    Members
    -------
    batch : ClassifiedBatch
        ``popular``, ``non_popular`` and ``cold_keys`` hold only what was
        emitted; ``hot`` and ``index`` cover the whole batch but only the rows
        of emitted samples are meaningful.
    status : BatchStatus
    stop : int or None
        The stop position (row-major key index), None when nothing overflowed.
    """

    batch: ClassifiedBatch
    status: BatchStatus
    stop: int | None


def dedupe_first_occurrence(values: np.ndarray):
    """Number the distinct values of a 1-D uint64 array by first occurrence.

    Returns ``(u, first)``: ``u[i]`` is the rank of ``values[i]`` among the
    distinct values ordered by first occurrence, and ``first[j]`` is the
    position of the first occurrence of value ``j`` (ascending).
    """
    n = len(values)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pos, _, new = sort_groups(values)
    group = np.cumsum(new) - 1
    first_of_group = pos[new]
    is_first = np.zeros(n, dtype=bool)
    is_first[first_of_group] = True
    rank_at = np.cumsum(is_first) - 1
    u = np.empty(n, dtype=np.int64)
    u[pos] = rank_at[first_of_group][group]
    return u, np.flatnonzero(is_first)


def _check(cfg, hotmap, keys) -> np.ndarray:
    if not isinstance(cfg, HotlineConfig):
        raise TypeError(f"cfg must be a HotlineConfig, not {type(cfg).__name__}")
    if not isinstance(hotmap, HotMap):
        raise TypeError(f"hotmap must be a HotMap, not {type(hotmap).__name__}")
    hc = hotmap.cfg
    if (hc.keys != cfg.keys or hc.hash_seed != cfg.hash_seed
            or (hc.reorder.hotmap_log2_buckets, hc.reorder.hotmap_ways, hc.reorder.hotmap_hashes)
            != (cfg.reorder.hotmap_log2_buckets, cfg.reorder.hotmap_ways, cfg.reorder.hotmap_hashes)):
        raise ValueError("hotmap was built for a different keys/hash_seed/hot-map geometry than cfg")
    arr = check_keys(cfg, keys)
    T = cfg.reorder.keys_per_sample
    if arr.ndim != 2 or arr.shape[1] != T:
        raise ValueError(f"keys must have shape [B, reorder.keys_per_sample={T}], not {arr.shape}")
    return arr


def _remap(hotmap: HotMap, keys: np.ndarray):
    """Lookup, remap and de-dup in one pass over the distinct keys of the batch.

    Returns ``(hot, index, cold_keys, cold_first, popular_mask)`` where
    ``cold_first[u]`` is the position (row-major) of cold key ``u``'s first use.
    """
    flat = keys.reshape(-1)
    n = len(flat)
    if n == 0:
        z = np.zeros(keys.shape, dtype=np.int64)
        return (z.astype(bool), z, np.zeros(0, np.uint64), np.zeros(0, np.int64),
                np.ones(keys.shape[0], dtype=bool))
    # Sort once: each distinct key is looked up once, and its first occurrence
    # gives the cold numbering.
    pos, _, new = sort_groups(flat)
    group = np.cumsum(new) - 1            # distinct-key id, in sorted position order
    first = pos[new]                      # first position of each distinct key
    uniq = flat[first]
    hit_u, slot_u = hotmap.lookup(uniq)
    cold_ids = np.flatnonzero(~hit_u)
    # Number the cold keys by first occurrence: mark their first positions, and
    # a running count over positions gives each its rank (no sort needed).
    is_cold_first = np.zeros(n, dtype=bool)
    is_cold_first[first[cold_ids]] = True
    cold_first = np.flatnonzero(is_cold_first)
    idx_u = slot_u.copy()
    idx_u[cold_ids] = (np.cumsum(is_cold_first) - 1)[first[cold_ids]]
    hit = np.empty(n, dtype=bool)
    hit[pos] = hit_u[group]
    index = np.empty(n, dtype=np.int64)
    index[pos] = idx_u[group]
    hit = hit.reshape(keys.shape)
    return (hit, index.reshape(keys.shape), flat[cold_first], cold_first,
            hit.all(axis=1))


def classify(cfg: HotlineConfig, hotmap: HotMap, keys) -> ClassifiedBatch:
    """Classify and remap one mini-batch.

    Parameters
    ----------
    cfg : HotlineConfig
    hotmap : HotMap
        Built for ``cfg``'s key space and hot-map geometry.
    keys : array of int [B, T]
        Packed keys, ``T = cfg.reorder.keys_per_sample``.

    Raises
    ------
    BatchOverflow
        ``B > reorder.max_batch_samples`` or more than
        ``reorder.max_batch_keys`` distinct cold keys.
    """
    keys = _check(cfg, hotmap, keys)
    r = cfg.reorder
    # The host path: every key through the fast index (HotMap.find), then de-dup only
    # the cold keys, a small part of a skewed batch.  reorder_batch computes the same
    # through the hardware's probe of the image; both are tested against a reference.
    flat = keys.reshape(-1)
    hit, index = hotmap.find(flat)
    cold_pos = np.flatnonzero(~hit)
    u, first = dedupe_first_occurrence(flat[cold_pos])
    index[cold_pos] = u
    cold_keys = flat[cold_pos[first]]
    hit, index = hit.reshape(keys.shape), index.reshape(keys.shape)
    popular_mask = hit.all(axis=1)
    B = keys.shape[0]
    if B > r.max_batch_samples or len(cold_keys) > r.max_batch_keys:
        raise BatchOverflow(
            f"batch of {B} samples with {len(cold_keys)} distinct cold keys exceeds "
            f"reorder.max_batch_samples {r.max_batch_samples} / reorder.max_batch_keys "
            f"{r.max_batch_keys}",
            samples=B, max_batch_samples=r.max_batch_samples,
            unique_cold=len(cold_keys), max_batch_keys=r.max_batch_keys)
    return ClassifiedBatch(popular=np.flatnonzero(popular_mask), non_popular=np.flatnonzero(~popular_mask),
                           hot=hit, index=index, cold_keys=cold_keys)


def reorder_batch(cfg: HotlineConfig, hotmap: HotMap, keys) -> ReorderResult:
    """What the reorder unit emits for one batch, overflow included (the testbench oracle)."""
    keys = _check(cfg, hotmap, keys)
    r = cfg.reorder
    B, T = keys.shape
    hit, index, cold_keys, first_pos, popular_mask = _remap(hotmap, keys)
    stop_samples = r.max_batch_samples * T if B > r.max_batch_samples else None
    stop_keys = int(first_pos[r.max_batch_keys]) if len(cold_keys) > r.max_batch_keys else None
    key_overflow = stop_keys is not None and (stop_samples is None or stop_keys < stop_samples)
    stops = [s for s in (stop_samples, stop_keys) if s is not None]
    stop = min(stops) if stops else None
    n_samples = B if stop is None else stop // T
    n_cold = len(cold_keys) if stop is None else int(np.searchsorted(first_pos, stop))
    pop = np.flatnonzero(popular_mask[:n_samples])
    non = np.flatnonzero(~popular_mask[:n_samples])
    batch = ClassifiedBatch(popular=pop, non_popular=non, hot=hit, index=index,
                            cold_keys=cold_keys[:n_cold])
    status = BatchStatus(popular=len(pop), non_popular=len(non), cold=n_cold,
                         key_overflow=bool(key_overflow), sample_overflow=B > r.max_batch_samples)
    return ReorderResult(batch=batch, status=status, stop=stop)
