"""Golden model of the embedding gather/scatter DMA.

Host memory is a flat byte array (``numpy.uint8`` or ``bytearray``) whose
index is the bus address.  :func:`gather` copies the row of every key
``(t, r, u)`` from ``base[t] + r * stride[t]`` to ``staging + u * row_bytes``;
:func:`scatter` copies it back.  Both compute exactly what the RTL
(:class:`hotline.rtl.gather.GatherDMA`) leaves in memory and reports, key by
key in stream order, and are vectorised so the trainer can use them directly.

Error semantics (shared with the RTL)
-------------------------------------
Every key gets one status (:class:`ErrorKind`); the command always runs to the
end of its key list (an error skips the row, not the rest):

* ``SIZE``: ``row_bytes`` is 0 or above ``cfg.gather.max_row_bytes``; every
  key of the command gets it and nothing is moved.
* ``TABLE``: ``t >= cfg.keys.tables``.
* ``ROW``: ``r >= rows[t]`` (a table that was never configured has 0 rows).
* ``READ``: a bus word read for the row got SLVERR/DECERR (modelled by
  ``faults``: the hardware reads whole bus words, so a fault anywhere in a
  word the row touches fails the row).  Nothing of the row is written.
* ``WRITE``: a write of the row got an error response (modelled by
  ``faults``: the bytes of the row inside a fault range are not written, its
  other bytes are, the row counts as an error).

``rows_moved`` counts the keys with status ``NONE``, ``errors`` the others;
``first_error_*`` describe the error with the lowest position in the stream.
Keys are applied in order, so when two keys write the same bytes the later
one wins.  A row's source must not overlap any row's destination (the
hardware reads ahead of its writes): the model raises ``ValueError`` if they do.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from ..config import HotlineConfig

__all__ = ["GATHER", "SCATTER", "ErrorKind", "TableLayout", "GatherResult", "gather",
           "scatter", "transfer", "u_bits"]

#: Command opcodes (the ``op`` field of the RTL's command stream).
GATHER, SCATTER = 0, 1


class ErrorKind(enum.IntEnum):
    """Status of one key (the RTL's ``first_error_kind`` encoding)."""

    NONE = 0
    TABLE = 1
    ROW = 2
    SIZE = 3
    READ = 4
    WRITE = 5


def u_bits(cfg: HotlineConfig) -> int:
    """Width of a staging position ``u``: enough for ``cfg.reorder.max_batch_keys`` keys."""
    return max(1, (cfg.reorder.max_batch_keys - 1).bit_length())


def _as_uint_array(name: str, value, n: int | None = None) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "iu":
        if arr.size == 0:
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integers, not {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, not of shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries, expected {n}")
    if arr.dtype.kind == "i" and arr.size and arr.min() < 0:
        raise ValueError(f"{name} must not be negative (found {int(arr.min())})")
    return arr.astype(np.uint64)


@dataclass(frozen=True)
class TableLayout:
    """Where the embedding tables lie in host memory.

    Parameters
    ----------
    base : array of int
        Byte address of row 0 of each table.
    stride : array of int
        Bytes from one row to the next (may differ from the row size).
    rows : array of int
        Rows of each table; a key with ``r >= rows[t]`` is an error.

    Members
    -------
    tables : int
        Number of tables described (the others have 0 rows).
    """

    base: np.ndarray
    stride: np.ndarray
    rows: np.ndarray
    tables: int = field(init=False)

    def __post_init__(self):
        base = _as_uint_array("TableLayout.base", self.base)
        n = base.shape[0]
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "stride", _as_uint_array("TableLayout.stride", self.stride, n))
        object.__setattr__(self, "rows", _as_uint_array("TableLayout.rows", self.rows, n))
        object.__setattr__(self, "tables", n)

    def check(self, cfg: HotlineConfig) -> None:
        """Raise ValueError if a field does not fit the hardware's registers."""
        if self.tables > cfg.keys.tables:
            raise ValueError(f"TableLayout has {self.tables} tables, the config only "
                             f"{cfg.keys.tables} (keys.tables)")
        for name, arr, bits in (("base", self.base, cfg.gather.addr_bits),
                                ("stride", self.stride, cfg.gather.stride_bits),
                                ("rows", self.rows, cfg.keys.row_bits + 1)):
            if bits < 64 and arr.size and int(arr.max()) >> bits:
                raise ValueError(f"TableLayout.{name} value {int(arr.max())} does not fit in "
                                 f"{bits} bits")
        if self.rows.size and int(self.rows.max()) > (1 << cfg.keys.row_bits):
            raise ValueError(f"TableLayout.rows value {int(self.rows.max())} exceeds "
                             f"2**keys.row_bits = {1 << cfg.keys.row_bits}")


@dataclass(frozen=True)
class GatherResult:
    """What a gather or scatter command reports.

    Members
    -------
    rows_moved : int
        Keys whose row was copied completely.
    errors : int
        Keys with an error (``len(keys) - rows_moved``).
    first_error_kind : ErrorKind
        Kind of the first error in stream order (``NONE`` if there was none).
    first_error_index : int
        Its position in the key list (-1 if none).
    first_error_key : tuple of int or None
        Its ``(table, row, u)``.
    status : numpy.ndarray of uint8
        The :class:`ErrorKind` of every key.
    """

    rows_moved: int
    errors: int
    first_error_kind: ErrorKind
    first_error_index: int
    first_error_key: tuple[int, int, int] | None
    status: np.ndarray


def _memory_view(mem) -> np.ndarray:
    if isinstance(mem, np.ndarray):
        if mem.dtype != np.uint8 or mem.ndim != 1:
            raise TypeError(f"mem must be a one-dimensional uint8 array, not {mem.dtype} "
                            f"of shape {mem.shape}")
        if not mem.flags.writeable:
            raise ValueError("mem must be writeable")
        return mem
    if isinstance(mem, (bytearray, memoryview)):
        return np.frombuffer(mem, dtype=np.uint8)
    raise TypeError(f"mem must be a numpy uint8 array or a bytearray, not {type(mem).__name__}")


def _as_keys(keys, cfg: HotlineConfig) -> np.ndarray:
    arr = np.asarray(keys)
    if arr.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if arr.dtype == object or arr.dtype.kind not in "iu":
        raise TypeError(f"keys must be integers (table, row, u), not {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"keys must have shape (n, 3) of (table, row, u), not {arr.shape}")
    arr = arr.astype(np.int64)
    limits = (("table", cfg.keys.table_bits), ("row", cfg.keys.row_bits), ("u", u_bits(cfg)))
    for col, (name, bits) in enumerate(limits):
        bad = (arr[:, col] < 0) | (arr[:, col] >= (1 << bits))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"key {i}: {name} {int(arr[i, col])} does not fit in its "
                             f"{bits}-bit field")
    return arr


def _merge_ranges(ranges, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted disjoint [lo, hi) intervals covering ``ranges``."""
    if ranges is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = [(int(lo), int(hi)) for lo, hi in ranges]
    for lo, hi in pairs:
        if lo < 0 or hi < lo:
            raise ValueError(f"{name} range ({lo}, {hi}) is not a valid [lo, hi) byte range")
    pairs = sorted(p for p in pairs if p[1] > p[0])
    merged: list[list[int]] = []
    for lo, hi in pairs:
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    if not merged:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    m = np.array(merged, dtype=np.int64)
    return m[:, 0], m[:, 1]


def _intersects(lo: np.ndarray, hi: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each interval [a, b): does it meet one of the disjoint sorted [lo, hi)?"""
    if lo.size == 0 or a.size == 0:
        return np.zeros(a.shape, dtype=bool)
    idx = np.searchsorted(lo, b, side="left") - 1  # last range starting before b
    ok = idx >= 0
    return ok & (hi[np.clip(idx, 0, None)] > a) & (b > a)


def transfer(op: int, mem, tables: TableLayout, keys, staging: int, row_bytes: int, *,
             faults=None, cfg: HotlineConfig | None = None) -> GatherResult:
    """Run one gather (``op = GATHER``) or scatter (``op = SCATTER``) command.

    Parameters
    ----------
    op : int
        :data:`GATHER` (tables -> staging) or :data:`SCATTER` (staging -> tables).
    mem : numpy.ndarray of uint8 or bytearray
        Host memory, index = byte address; modified in place.
    tables : TableLayout
        Base, stride and row count of each table.
    keys : array-like of shape (n, 3)
        ``(table, row, u)`` per key, in stream order.
    staging : int
        Byte address of the staging buffer; row ``u`` is at ``staging + u * row_bytes``.
    row_bytes : int
        Bytes per row (0 or above ``cfg.gather.max_row_bytes`` gives ``SIZE`` errors).
    faults : iterable of (lo, hi), optional
        Byte ranges ``[lo, hi)`` where the memory answers with an error.
    cfg : HotlineConfig, optional
        Field widths, table count, bus width and size limits (default config).

    Returns
    -------
    GatherResult
    """
    cfg = HotlineConfig() if cfg is None else cfg
    if not isinstance(cfg, HotlineConfig):
        raise TypeError(f"cfg must be a HotlineConfig, not {type(cfg).__name__}")
    if op not in (GATHER, SCATTER):
        raise ValueError(f"op must be GATHER ({GATHER}) or SCATTER ({SCATTER}), not {op!r}")
    if not isinstance(tables, TableLayout):
        raise TypeError(f"tables must be a TableLayout, not {type(tables).__name__}")
    tables.check(cfg)
    for name, value in (("staging", staging), ("row_bytes", row_bytes)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
    staging, row_bytes = int(staging), int(row_bytes)
    if not 0 <= staging < (1 << cfg.gather.addr_bits):
        raise ValueError(f"staging {staging:#x} is not a {cfg.gather.addr_bits}-bit address")
    size_bits = cfg.gather.max_row_bytes.bit_length()
    if not 0 <= row_bytes < (1 << size_bits):
        raise ValueError(f"row_bytes {row_bytes} does not fit in its {size_bits}-bit field")
    memv = _memory_view(mem)
    k = _as_keys(keys, cfg)
    n = k.shape[0]
    flo, fhi = _merge_ranges(faults, "faults")

    status = np.zeros(n, dtype=np.uint8)
    if row_bytes == 0 or row_bytes > cfg.gather.max_row_bytes:
        status[:] = ErrorKind.SIZE
    elif n:
        t, r, u = k[:, 0], k[:, 1], k[:, 2]
        rows = np.zeros(cfg.keys.tables, dtype=np.uint64)
        rows[:tables.tables] = tables.rows
        tbad = t >= cfg.keys.tables
        status[tbad] = ErrorKind.TABLE
        tc = np.where(tbad, 0, t)
        status[~tbad & (r.astype(np.uint64) >= rows[tc])] = ErrorKind.ROW

        ok = status == 0
        idx = np.flatnonzero(ok)
        if idx.size:
            base = np.zeros(cfg.keys.tables, dtype=np.uint64)
            stride = np.zeros(cfg.keys.tables, dtype=np.uint64)
            base[:tables.tables] = tables.base
            stride[:tables.tables] = tables.stride
            amask = np.uint64((1 << cfg.gather.addr_bits) - 1)
            ti = t[idx]
            tab = (base[ti] + r[idx].astype(np.uint64) * stride[ti]) & amask
            stg = (np.uint64(staging) + u[idx].astype(np.uint64) * np.uint64(row_bytes)) & amask
            src, dst = (tab, stg) if op == GATHER else (stg, tab)
            for name, addr in (("source", src), ("destination", dst)):
                over = addr + np.uint64(row_bytes) > np.uint64(memv.size)
                if over.any():
                    j = int(np.flatnonzero(over)[0])
                    raise ValueError(f"key {int(idx[j])} {tuple(int(x) for x in k[idx[j]])}: "
                                     f"{name} row at {int(addr[j]):#x} lies outside the "
                                     f"{memv.size}-byte memory")
            src = src.astype(np.int64)
            dst = dst.astype(np.int64)
            # Sources must not overlap destinations: the hardware reads ahead.
            slo, shi = _merge_ranges(zip(src, src + row_bytes), "source")
            clash = _intersects(slo, shi, dst, dst + row_bytes)
            if clash.any():
                j = int(np.flatnonzero(clash)[0])
                raise ValueError(f"key {int(idx[j])} {tuple(int(x) for x in k[idx[j]])}: "
                                 f"destination {int(dst[j]):#x} overlaps a source row")
            # Reads are whole bus words: a fault in any word the row touches fails it.
            w = cfg.gather.data_bytes
            wlo = src // w * w
            whi = -(-(src + row_bytes) // w) * w
            rbad = _intersects(flo, fhi, wlo, whi)
            status[idx[rbad]] = ErrorKind.READ
            keep = ~rbad
            src, dst, widx = src[keep], dst[keep], idx[keep]
            if widx.size:
                off = np.arange(row_bytes, dtype=np.int64)
                sb = (src[:, None] + off).ravel()
                db = (dst[:, None] + off).ravel()
                vals = memv[sb]  # all reads before any write: no overlap, checked above
                if flo.size:
                    fi = np.searchsorted(flo, db, side="right") - 1
                    dead = (fi >= 0) & (db < fhi[np.clip(fi, 0, None)])
                    wbad = dead.reshape(-1, row_bytes).any(axis=1)
                    status[widx[wbad]] = ErrorKind.WRITE
                    sb, db, vals = sb[~dead], db[~dead], vals[~dead]
                # Later keys win: keep the last write of every byte.
                rev = db[::-1]
                uniq, first = np.unique(rev, return_index=True)
                memv[uniq] = vals[::-1][first]

    errs = np.flatnonzero(status)
    if errs.size:
        i = int(errs[0])
        first = (ErrorKind(int(status[i])), i, tuple(int(x) for x in k[i]))
    else:
        first = (ErrorKind.NONE, -1, None)
    return GatherResult(rows_moved=int(n - errs.size), errors=int(errs.size),
                        first_error_kind=first[0], first_error_index=first[1],
                        first_error_key=first[2], status=status)


def gather(mem, tables: TableLayout, keys, staging: int, row_bytes: int, *, faults=None,
           cfg: HotlineConfig | None = None) -> GatherResult:
    """Copy the row of each key ``(t, r, u)`` to ``staging + u * row_bytes``.

    See :func:`transfer` for the parameters and the module docstring for the
    error semantics.
    """
    return transfer(GATHER, mem, tables, keys, staging, row_bytes, faults=faults, cfg=cfg)


def scatter(mem, tables: TableLayout, keys, staging: int, row_bytes: int, *, faults=None,
            cfg: HotlineConfig | None = None) -> GatherResult:
    """Copy ``staging + u * row_bytes`` back to the row of each key ``(t, r, u)``.

    See :func:`transfer` for the parameters and the module docstring for the
    error semantics.
    """
    return transfer(SCATTER, mem, tables, keys, staging, row_bytes, faults=faults, cfg=cfg)
