"""Streaming parser shared by the text loaders (Criteo TSV/CSV, Avazu CSV).

A file is read line by line in binary mode (``.gz`` files through
:mod:`gzip`), never whole.  Each line is checked against one compiled regular
expression built from the per-column :class:`Field` specs; the kept fields
of a matching line are collected as bytes and converted to arrays a chunk at
a time (vectorised, byte-level: no string-to-number casts).  A line that does not match is diagnosed field by field (slow
path, only for bad lines): in strict mode the load stops with a
:class:`~hotline.host.data.batch.DataError` naming the line number and the
reason; otherwise the line is skipped and reported in
:attr:`Dataset.bad_lines` and by a :class:`DataWarning`.  A malformed line
never becomes training data.
"""

from __future__ import annotations

import gzip
import operator
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .batch import ArrayDataset, DataError, Dataset
from .cache import CacheWriter, cache_entry, load_cache
from .mix import mix64

__all__ = ["Field", "Layout", "load_text", "open_source", "parse_hex", "parse_int", "parse_dec", "dense_log1p",
           "hash_columns", "shorten", "CHUNK_ROWS", "LABEL", "DENSE_INT", "HEX", "DEC", "DIGITS8"]

#: Chunk of parsed rows converted to arrays at once.
CHUNK_ROWS = 32768

#: Field grammars (bytes regular expressions, no groups).
LABEL = rb"[01]"
#: A dense count: an integer, optionally written with a zero fraction (``260.0``); or empty.
DENSE_INT = rb"(?:-?[0-9]{1,18}(?:\.0{0,12})?)?"
#: A categorical hash: 1 to 16 hexadecimal digits; or empty (missing).
HEX = rb"(?:[0-9a-fA-F]{1,16})?"
#: A decimal categorical id (may be negative); or empty (missing).
DEC = rb"(?:-?[0-9]{1,18})?"
#: Eight decimal digits (Avazu's ``hour``).
DIGITS8 = rb"[0-9]{8}"


@dataclass(frozen=True)
class Field:
    """One column of a text layout.

    Parameters
    ----------
    name : str
        Column name (for messages).
    pattern : bytes
        Regular expression the whole field must match.
    what : str
        What the field must be, for messages ("an integer", ...).
    keep : bool
        Whether the field is captured for conversion.
    """

    name: str
    pattern: bytes
    what: str
    keep: bool = True


def shorten(raw: bytes, limit: int = 40) -> str:
    """Printable, one-line, bounded rendering of a raw field for messages."""
    text = raw.decode("utf-8", errors="replace")
    text = text if len(text) <= limit else text[:limit] + "..."
    return repr(text)


@dataclass
class Layout:
    """How to parse the data lines of one file.

    Parameters
    ----------
    fields : list of Field
        Every column in file order.
    sep : bytes
        Field separator.
    convert : callable
        ``convert(rows: numpy.ndarray of bytes [n, kept]) -> (dense, sparse, labels)``.
    line_check : callable, optional
        ``line_check(groups) -> reason or None`` for checks a regex cannot do
        (e.g. a valid date); a reason marks the line malformed.
    """

    fields: list[Field]
    sep: bytes
    convert: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
    line_check: Callable[[tuple], str | None] | None = None
    regex: re.Pattern = field(init=False)

    def __post_init__(self):
        # Non-capturing: checking a line is cheaper without groups, and the
        # kept fields are then taken from line.split(sep) (no field grammar
        # admits the separator, so the split gives exactly the fields).
        self.regex = re.compile(re.escape(self.sep).join(b"(?:" + f.pattern + b")" for f in self.fields))
        self._field_res = [re.compile(f.pattern) for f in self.fields]
        kept = [j for j, f in enumerate(self.fields) if f.keep]
        self.pick = operator.itemgetter(*kept) if len(kept) > 1 else (lambda parts, k=kept[0]: (parts[k],))

    def diagnose(self, line: bytes) -> str:
        """Why ``line`` does not match (one line of text)."""
        parts = line.split(self.sep)
        sepname = {b"\t": "tab", b",": "comma"}.get(self.sep, repr(self.sep))
        if len(parts) != len(self.fields):
            return f"expected {len(self.fields)} {sepname}-separated fields, found {len(parts)}"
        for i, (raw, f, rx) in enumerate(zip(parts, self.fields, self._field_res)):
            if not rx.fullmatch(raw):
                return f"field {i + 1} ({f.name}) {shorten(raw)} is not {f.what}"
        return "does not match the layout"    # not reached for the layouts in this package


def _field_bytes(cols: np.ndarray, width: int | None = None) -> tuple[np.ndarray, tuple]:
    """The fields of a bytes array as a uint8 matrix ``[fields, w]`` (NUL padded).

    ``w`` is ``width`` when given (the array is cut or padded to it), else
    the longest field's length.  Byte views only: no string conversion.
    """
    shape = cols.shape
    size = cols.dtype.itemsize
    raw = np.ascontiguousarray(cols).view(np.uint8).reshape(-1, size)
    if width is None:
        used = np.flatnonzero(raw.any(axis=0))
        width = int(used[-1]) + 1 if used.size else 1
    if width <= size:
        return raw[:, :width], shape
    out = np.zeros((raw.shape[0], width), dtype=np.uint8)
    out[:, :size] = raw
    return out, shape


def parse_hex(cols: np.ndarray) -> np.ndarray:
    """Values of hexadecimal fields, vectorised.

    Parameters
    ----------
    cols : numpy.ndarray
        Bytes array (dtype ``S``) of fields already checked to be 0 to 16 hex
        digits; an empty field (missing) reads as 0.

    Returns
    -------
    numpy.ndarray
        uint64 values, same shape.
    """
    raw, shape = _field_bytes(cols, 16)
    length = (raw != 0).sum(axis=1)
    nibbles = _HEX_LUT[raw]
    # Pack the 16 left-aligned digits (NUL padding = 0) into 8 bytes, read
    # them as one big-endian integer, then drop the padding nibbles.
    packed = np.ascontiguousarray((nibbles[:, 0::2] << 4) | nibbles[:, 1::2])
    value = packed.view(">u8").reshape(-1).astype(np.uint64)
    shift = (4 * (16 - length)).clip(max=63).astype(np.uint64)   # empty field: value is 0 anyway
    return (value >> shift).reshape(shape)


_HEX_LUT = np.zeros(256, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX_LUT[_c] = _i
    _HEX_LUT[bytes([_c]).upper()[0]] = _i


def parse_int(cols: np.ndarray) -> np.ndarray:
    """Integer part of fields already checked to be ``-?[0-9]{1,18}(.0*)?`` or empty (= 0), as int64.

    Digit by digit on the bytes (a string-to-number cast is far slower);
    18 digits always fit in int64.
    """
    raw, shape = _field_bytes(cols)
    neg = raw[:, 0] == ord("-")
    value = np.zeros(raw.shape[0], dtype=np.int64)
    live = np.ones(raw.shape[0], dtype=bool)        # still inside the integer part
    for k in range(raw.shape[1]):
        c = raw[:, k]
        digit = (c >= ord("0")) & (c <= ord("9"))
        live &= digit | (neg if k == 0 else False)
        step = live & digit
        value[step] = value[step] * 10 + (c[step] - ord("0"))
    return np.where(neg, -value, value).reshape(shape)


def parse_dec(cols: np.ndarray) -> np.ndarray:
    """Values of decimal integer fields (empty = 0) as uint64 (two's complement for negatives)."""
    return parse_int(cols).view(np.uint64)


def hash_columns(values: np.ndarray, table_sizes, dtype) -> np.ndarray:
    """Rows ``mix64(value) % size`` for each column of raw categorical values."""
    out = np.empty(values.shape, dtype=dtype)
    for t, size in enumerate(table_sizes):
        out[:, t] = mix64(values[:, t]) % np.uint64(size)
    return out


def dense_log1p(cols: np.ndarray) -> np.ndarray:
    """``log(1 + max(x, 0))`` of integer count fields (:func:`parse_int`), missing (empty) = 0, as float32."""
    x = parse_int(cols).astype(np.float64)
    return np.log1p(np.maximum(x, 0.0)).astype(np.float32)


def open_source(path) -> tuple[Path, object]:
    """Check ``path`` names a non-empty readable file and open it (binary, gzip-aware)."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if not p.is_file():
        raise DataError(f"{p}: not a regular file")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: the file is empty")
    try:
        f = gzip.open(p, "rb") if p.suffix == ".gz" else open(p, "rb", buffering=1 << 20)
    except OSError as e:
        raise DataError(f"{p}: cannot open ({e.strerror or e})") from None
    return p, f


class _Collector:
    """In-memory sink: chunks concatenated at the end."""

    def __init__(self):
        self.parts = []

    def append(self, dense, sparse, labels):
        self.parts.append((dense, sparse, labels))

    def arrays(self, num_dense: int, num_tables: int, sparse_dtype):
        if not self.parts:
            return (np.zeros((0, num_dense), np.float32), np.zeros((0, num_tables), sparse_dtype),
                    np.zeros(0, np.uint8))
        return tuple(np.concatenate([p[i] for p in self.parts]) for i in range(3))


def load_text(path, *, kind: str, table_sizes: tuple[int, ...], table_names: tuple[str, ...],
              num_dense: int, strict: bool, cache_dir, params: dict,
              plan: Callable[[Path, bytes], tuple[Layout, bool]]) -> Dataset:
    """Parse a text dataset (or open its cache) into an :class:`ArrayDataset`.

    Parameters
    ----------
    path : str or os.PathLike
        Source file.
    kind : str
        Loader name (cache folder prefix and messages).
    table_sizes, table_names : tuple
        Embedding tables the layout's ``convert`` produces rows for.
    num_dense : int
        Dense features the layout's ``convert`` produces.
    strict : bool
        Raise :class:`DataError` at the first malformed line instead of skipping it.
    cache_dir : str or os.PathLike or None
        Root of the preprocessed cache; ``None`` parses every time.
    params : dict
        Parsing parameters that key the cache.
    plan : callable
        ``plan(path, first_line) -> (layout, first_line_is_header)``; raises
        :class:`DataError` for an unrecognised layout.
    """
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be a bool, not {type(strict).__name__}")
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"cache_dir must be a str, os.PathLike or None, not {type(cache_dir).__name__}")
    p, f = open_source(path)
    sparse_dtype = np.int32 if max(table_sizes) <= np.iinfo(np.int32).max else np.int64
    entry = None
    try:
        if cache_dir is not None:
            entry = cache_entry(cache_dir, kind, p, params)
            if entry.exists():
                f.close()
                ds, _ = load_cache(entry)
                return _report(ds, p, strict)
        sink = CacheWriter(entry, sparse_dtype) if entry is not None else _Collector()
        try:
            bad_lines, num_bad = _parse(p, f, sink, strict=strict, plan=plan)
        except BaseException:
            if entry is not None:
                sink.abort()
            raise
    finally:
        f.close()
    rows = sink.rows if entry is not None else sum(len(part[2]) for part in sink.parts)
    if rows == 0:
        if entry is not None:
            sink.abort()
        first = f" (all {num_bad} malformed; first: line {bad_lines[0][0]}: {bad_lines[0][1]})" if num_bad else ""
        raise DataError(f"{p}: no data rows{first}")
    name = str(p)
    if entry is not None:
        sink.finish({"kind": kind, "name": name, "table_sizes": list(table_sizes),
                     "table_names": list(table_names), "num_dense": num_dense, "params": params,
                     "bad_lines": bad_lines, "num_bad_lines": num_bad})
        ds, _ = load_cache(entry)
    else:
        dense, sparse, labels = sink.arrays(num_dense, len(table_sizes), sparse_dtype)
        ds = ArrayDataset(dense, sparse, labels, table_sizes, table_names=table_names, name=name,
                          validate=False)
        ds.bad_lines = bad_lines
        ds.num_bad_lines = num_bad
    return _report(ds, p, strict)


def _report(ds: Dataset, p: Path, strict: bool) -> Dataset:
    if ds.num_bad_lines:
        line, reason = ds.bad_lines[0]
        if strict:
            # Only reachable from a cache built by a lenient load.
            raise DataError(f"{p}: line {line}: {reason}")
        ds._warn(f"{p}: skipped {ds.num_bad_lines} malformed line(s); first: line {line}: {reason}")
    return ds


def _parse(p: Path, f, sink, *, strict: bool, plan) -> tuple[list, int]:
    try:
        return _parse_lines(p, f, sink, strict=strict, plan=plan)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        text = str(e).splitlines()[0] if str(e) else ""
        raise DataError(f"{p}: read error ({type(e).__name__}: {text})") from None


def _parse_lines(p: Path, f, sink, *, strict: bool, plan) -> tuple[list, int]:
    first = f.readline()
    if not first:
        raise DataError(f"{p}: the file is empty")     # a .gz file with empty content
    layout, header = plan(p, first.rstrip(b"\r\n"))
    fullmatch = layout.regex.fullmatch
    pick = layout.pick
    sep = layout.sep
    check = layout.line_check
    bad_lines: list[tuple[int, str]] = []
    num_bad = 0
    rows: list[tuple] = []

    def flush():
        if rows:
            sink.append(*layout.convert(np.array(rows)))
            rows.clear()

    def bad(number: int, reason: str):
        nonlocal num_bad
        if strict:
            raise DataError(f"{p}: line {number}: {reason}")
        num_bad += 1
        if len(bad_lines) < Dataset.MAX_BAD_LINES_KEPT:
            bad_lines.append((number, reason))

    def parse_one(number: int, line: bytes):
        """Kept fields of one line, or None (reported) when malformed."""
        line = line.rstrip(b"\r\n")
        if fullmatch(line) is None:
            bad(number, layout.diagnose(line) if line else "empty line")
            return None
        groups = pick(line.split(sep))
        if check is not None:
            reason = check(groups)
            if reason is not None:
                bad(number, reason)
                return None
        return groups

    number = 1
    if not header:
        groups = parse_one(1, first)
        if groups is not None:
            rows.append(groups)
    for line in f:
        number += 1
        groups = parse_one(number, line)
        if groups is not None:
            rows.append(groups)
            if len(rows) >= CHUNK_ROWS:
                flush()
    flush()
    return bad_lines, num_bad
