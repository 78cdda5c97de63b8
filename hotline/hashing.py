"""The hash functions of the accelerator, in one place for the RTL and the golden models.

Every hash is an H3 function (Carter and Wegman's class H3): output bit ``j``
is the parity of the input bits selected by mask ``j``.  In hardware that is a
few XOR trees and no multipliers; in NumPy, as H3 is linear, one table
lookup per key byte and an XOR.  The masks are derived from ``HotlineConfig.hash_seed``
with splitmix64, so a config fully determines every hash.

Each function is built once by :func:`counter_hashes` or :func:`hotmap_hashes`
and used by both sides: :meth:`H3.numpy` in the golden models and
:meth:`H3.amaranth` in the RTL.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["H3", "splitmix64", "pack_keys", "unpack_keys", "xor_byte_lookup", "CounterHashes",
           "counter_hashes", "hotmap_hashes"]

_MASK64 = (1 << 64) - 1


def splitmix64(state: int):
    """Yield the splitmix64 stream for a seed (the reference constants)."""
    while True:
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        yield z ^ (z >> 31)


def _derive_seed(seed: int, purpose: str) -> int:
    """A 64-bit seed for one named hash, independent of the others."""
    h = seed & _MASK64
    for ch in purpose.encode():
        h = next(splitmix64(h ^ ch))
    return h


@dataclass(frozen=True)
class H3:
    """An H3 hash from ``in_bits`` to ``out_bits``.

    Parameters
    ----------
    in_bits, out_bits : int
        Widths of the key and of the hash (``out_bits`` may be 0: the hash is
        then the constant 0).
    masks : tuple of int
        ``masks[j]`` selects the input bits whose parity is output bit ``j``.

    Members
    -------
    byte_tables : list of numpy.ndarray
        Per input byte ``j``, int64 [256]: the hash of each byte value in
        place ``j`` (built on first use; read only).
    """

    in_bits: int
    out_bits: int
    masks: tuple

    @classmethod
    def from_seed(cls, in_bits: int, out_bits: int, seed: int, purpose: str) -> "H3":
        if in_bits < 1 or in_bits > 64:
            raise ValueError(f"H3 input width must be 1..64, not {in_bits}")
        if out_bits < 0 or out_bits > 32:
            raise ValueError(f"H3 output width must be 0..32, not {out_bits}")
        gen = splitmix64(_derive_seed(seed, purpose))
        in_mask = (1 << in_bits) - 1
        masks = []
        for _ in range(out_bits):
            m = 0
            while m == 0:  # an all-zero mask would make that output bit constant
                m = next(gen) & in_mask
            masks.append(m)
        return cls(in_bits, out_bits, tuple(masks))

    def __call__(self, key: int) -> int:
        """Hash one key (a Python int)."""
        out = 0
        for j, m in enumerate(self.masks):
            out |= (bin(key & m).count("1") & 1) << j
        return out

    def numpy(self, keys) -> np.ndarray:
        """Hash an array of keys (any unsigned integer dtype); returns int64.

        H3 is linear over GF(2): the hash of a key is the XOR of the hashes of
        its bytes in their places, so one table lookup per input byte replaces
        one parity pass per output bit (equal to the scalar form, tested).
        """
        return xor_byte_lookup(self.byte_tables, keys)

    @cached_property
    def byte_tables(self) -> list:
        """``tables[j][b]``: the hash of byte value ``b`` at byte ``j`` of the key."""
        tables = []
        for j in range(-(-self.in_bits // 8)):
            v = np.arange(256, dtype=np.uint64) << np.uint64(8 * j)
            t = np.zeros(256, dtype=np.int64)
            for i, m in enumerate(self.masks):
                t |= (np.bitwise_count(v & np.uint64(m)).astype(np.int64) & 1) << i
            tables.append(t)
        return tables

    def amaranth(self, key):
        """The hash of an Amaranth value, as a combinational expression.

        Each output bit is the XOR of the selected input bits.  Picking the bits
        (rather than ``(key & mask).xor()``) keeps yosys from splitting each
        masked word into bit slices, which made Verilated models several times
        larger and slower to compile.
        """
        from amaranth.hdl import Cat, Const
        if self.out_bits == 0:
            return Const(0, 0)
        return Cat(*(Cat(*(key[i] for i in range(self.in_bits) if m >> i & 1)).xor()
                     for m in self.masks))


def xor_byte_lookup(tables, keys) -> np.ndarray:
    """XOR over the bytes of each key of ``tables[j][byte j]`` (int64, shape of ``keys``).

    The evaluation of a GF(2)-linear hash from per-byte tables (:attr:`H3.byte_tables`,
    or several hashes' tables packed side by side).
    """
    keys = np.asarray(keys, dtype=np.uint64)
    flat = keys.reshape(-1)
    out = tables[0][(flat & np.uint64(255)).astype(np.intp)]
    for j, t in enumerate(tables[1:], start=1):
        out ^= t[((flat >> np.uint64(8 * j)) & np.uint64(255)).astype(np.intp)]
    return out.reshape(keys.shape)


def pack_keys(tables, rows, row_bits: int) -> np.ndarray:
    """Pack (table, row) pairs into keys ``table << row_bits | row`` (uint64)."""
    tables = np.asarray(tables, dtype=np.uint64)
    rows = np.asarray(rows, dtype=np.uint64)
    return (tables << np.uint64(row_bits)) | rows


def unpack_keys(keys, row_bits: int):
    """Inverse of :func:`pack_keys`: return (tables, rows) as int64 arrays."""
    keys = np.asarray(keys, dtype=np.uint64)
    return ((keys >> np.uint64(row_bits)).astype(np.int64),
            (keys & np.uint64((1 << row_bits) - 1)).astype(np.int64))


@dataclass(frozen=True)
class CounterHashes:
    """The hashes of the popularity counter array.

    A key's bank is ``bank(key)``; its counter in sketch row ``d`` is
    ``bank << (S - bank_bits) | rows[d](key)`` and its heavy-hitter set is
    ``bank << (set_bits - bank_bits) | hh_set(key)``.  Sharing the bank bits
    makes the banks independent, which lets the hardware update them in
    parallel while staying equal to sequential processing.
    """

    bank: H3
    rows: tuple
    hh_set: H3
    bank_bits: int
    log2_counters: int
    set_bits: int

    def counter_index(self, keys, d: int) -> np.ndarray:
        keys = np.asarray(keys, dtype=np.uint64)
        return (self.bank.numpy(keys) << (self.log2_counters - self.bank_bits)) | self.rows[d].numpy(keys)

    def set_index(self, keys) -> np.ndarray:
        keys = np.asarray(keys, dtype=np.uint64)
        return (self.bank.numpy(keys) << (self.set_bits - self.bank_bits)) | self.hh_set.numpy(keys)


def counter_hashes(cfg) -> CounterHashes:
    """The counter array's hashes for a :class:`~hotline.config.HotlineConfig`."""
    c, k = cfg.counter, cfg.keys
    return CounterHashes(
        bank=H3.from_seed(k.key_bits, c.bank_bits, cfg.hash_seed, "counter.bank"),
        rows=tuple(H3.from_seed(k.key_bits, c.log2_counters - c.bank_bits, cfg.hash_seed,
                                f"counter.row{d}") for d in range(c.depth)),
        hh_set=H3.from_seed(k.key_bits, c.hh_set_bits - c.bank_bits, cfg.hash_seed, "counter.hh_set"),
        bank_bits=c.bank_bits,
        log2_counters=c.log2_counters,
        set_bits=c.hh_set_bits,
    )


def hotmap_hashes(cfg) -> tuple:
    """The hot map's cuckoo hashes: one H3 per candidate bucket, key -> bucket."""
    r, k = cfg.reorder, cfg.keys
    return tuple(H3.from_seed(k.key_bits, r.hotmap_log2_buckets, cfg.hash_seed, f"hotmap.h{i}")
                 for i in range(r.hotmap_hashes))
