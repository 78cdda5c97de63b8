"""Integer mixing used by the loaders and the synthetic generator (host side only).

The accelerator's own hash functions live in :mod:`hotline.hashing`; these
are just for turning raw categorical values into table rows on the host.

``mix64`` is the 64-bit finaliser of MurmurHash3 (``fmix64``): a bijection
on 64-bit integers with full avalanche, so ``mix64(v) % size`` spreads any
structured set of values (small decimal ids, sequential ids, hex hashes)
evenly over a table.  ``mix64(0) == 0``, so a missing value, which the
loaders read as 0, always lands in row 0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mix64", "hash_rows", "FeistelPermutation", "TablePermutation"]

_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)


def _fmix64_inplace(k: np.ndarray) -> np.ndarray:
    # uint64 array products wrap modulo 2**64, which is what fmix64 wants.
    k ^= k >> _S33
    k *= _M1
    k ^= k >> _S33
    k *= _M2
    k ^= k >> _S33
    return k


def mix64(values) -> np.ndarray:
    """MurmurHash3 ``fmix64`` of each value, elementwise.

    Parameters
    ----------
    values : array_like of int
        Values taken modulo 2**64 (negative int64 values by two's complement).

    Returns
    -------
    numpy.ndarray
        uint64 array of the same shape.
    """
    k = np.asarray(values)
    if k.dtype != np.uint64:
        k = k.astype(np.int64, copy=False).view(np.uint64) if k.dtype.kind == "i" else k.astype(np.uint64)
    return _fmix64_inplace(k.copy())


def hash_rows(values, size: int) -> np.ndarray:
    """Row of a table of ``size`` rows for each raw categorical value: ``mix64(v) % size``.

    Parameters
    ----------
    values : array_like of int
        Raw values (modulo 2**64).
    size : int
        Table rows, at least 1.

    Returns
    -------
    numpy.ndarray
        int64 rows in ``[0, size)``.
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, not {size}")
    return (mix64(values) % np.uint64(size)).astype(np.int64)


class FeistelPermutation:
    """A keyed pseudo-random permutation of ``range(n)`` evaluated pointwise.

    A 4-round balanced Feistel network on the smallest even number of bits
    ``2h`` covering ``n``, with round function "top ``h`` bits of
    ``mix64(half ^ key)``", restricted to ``[0, n)``
    by cycle walking.  It needs no table, so permuting a 10-million-row
    table costs only the lookups actually made.

    Parameters
    ----------
    n : int
        Domain size, at least 1.
    rng : numpy.random.Generator
        Source of the round keys.
    """

    ROUNDS = 4

    def __init__(self, n: int, rng: np.random.Generator):
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        self.n = int(n)
        bits = max(2, (self.n - 1).bit_length())
        bits += bits & 1
        self.half = np.uint64(bits // 2)
        self.shift = np.uint64(64 - bits // 2)
        self.mask = np.uint64((1 << (bits // 2)) - 1)
        self.keys = [np.uint64(k) for k in rng.integers(0, 2**63, size=self.ROUNDS, dtype=np.int64)]

    def _rounds(self, x: np.ndarray) -> np.ndarray:
        left = x >> self.half
        right = x & self.mask
        for k in self.keys:
            f = _fmix64_inplace(right ^ k)
            f >>= self.shift
            f ^= left
            left, right = right, f
        left <<= self.half
        left |= right
        return left

    def __call__(self, x) -> np.ndarray:
        """Image of each ``x`` in ``[0, n)`` (int64 array of the same shape)."""
        x = np.asarray(x, dtype=np.int64)
        y = self._rounds(x.ravel().astype(np.uint64))
        n = np.uint64(self.n)
        out_of_range = np.flatnonzero(y >= n)
        # Cycle walking: re-apply until the image falls inside [0, n); the
        # domain is < 4n so on average fewer than 4 extra rounds are needed.
        while out_of_range.size:
            z = self._rounds(y[out_of_range])
            y[out_of_range] = z
            out_of_range = out_of_range[z >= n]
        return y.astype(np.int64).reshape(x.shape)


class TablePermutation:
    """A seeded random permutation of a table's rows, evaluated pointwise.

    Tables up to :attr:`TABLE_LIMIT` rows get a true uniform random
    permutation (an index array); larger ones a :class:`FeistelPermutation`,
    which needs no memory and costs O(1) per lookup.

    Parameters
    ----------
    n : int
        Rows, at least 1.
    rng : numpy.random.Generator
        Source of randomness (consumed on construction only).
    """

    TABLE_LIMIT = 1 << 20

    def __init__(self, n: int, rng: np.random.Generator):
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        self.n = int(n)
        if self.n <= self.TABLE_LIMIT:
            self._table = rng.permutation(self.n)
            self._feistel = None
        else:
            self._table = None
            self._feistel = FeistelPermutation(self.n, rng)

    def __call__(self, x) -> np.ndarray:
        """Image of each ``x`` in ``[0, n)`` (int64 array of the same shape)."""
        if self._table is not None:
            return self._table[np.asarray(x, dtype=np.int64)]
        return self._feistel(x)
