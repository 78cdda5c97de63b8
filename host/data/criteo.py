"""Loader of Criteo click logs: the Kaggle ``train.txt`` / Terabyte ``day_N`` TSV layout and its CSV variant.

Layout
------
One sample per line: the label (0/1), 13 integer features I1..I13 and 26
categorical features C1..C26 (hexadecimal hashes, 8 digits in the public
files), tab separated, an empty field meaning missing (Kaggle and Terabyte
share this layout).  Also accepted: the same with a comma separator, and
either separator with a header line (recognised by a column named ``label``); with a
header the columns are found by name (``label``, ``I1``..``I13``,
``C1``..``C26``, any order, case-insensitive, other columns ignored), e.g.
the DeepCTR ``criteo_sample.txt`` CSV whose dense values are written as
floats (``260.0``).  Files ending in ``.gz`` are decompressed on the fly.

Preprocessing
-------------
* dense: ``log(1 + max(x, 0))`` (negative counts clipped to 0, missing = 0),
  float32.  A dense field must be an integer of at most 18 digits, optionally
  written with a zero fraction (``260.0``); anything else (``2.5``, ``abc``)
  makes the line malformed.
* categorical: the field's value ``v`` (1 to 16 hex digits) goes to row
  ``mix64(v) % table_sizes[t]`` of its table, ``mix64`` being MurmurHash3's
  64-bit finaliser (:func:`hotline.host.data.mix.mix64`).  A missing field
  reads as ``v = 0`` and ``mix64(0) == 0``, so missing is always row 0 (which
  it shares with the values that hash there).
* label: ``0`` or ``1``; anything else makes the line malformed.

A malformed line (wrong field count, bad label, non-integer dense value,
non-hex category, empty line) is skipped and reported (``bad_lines``,
``num_bad_lines``, a :class:`~hotline.host.data.batch.DataWarning`), or with
``strict=True`` rejected with a :class:`DataError` naming its line number.
"""

from __future__ import annotations

import re

import numpy as np

from .batch import DataError, Dataset, check_table_sizes
from .textfile import DENSE_INT, HEX, LABEL, Field, Layout, dense_log1p, hash_columns, load_text, parse_hex

__all__ = ["CRITEO_KAGGLE_TABLE_SIZES", "CRITEO_NUM_DENSE", "CRITEO_DENSE_NAMES", "CRITEO_CATEGORICAL_NAMES",
           "load_criteo"]

#: Rows per categorical feature C1..C26 of the reference DLRM configuration for Criteo Kaggle
#: (33,762,577 rows in total).
CRITEO_KAGGLE_TABLE_SIZES: tuple[int, ...] = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683,
    8351593, 3194, 27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15,
    286181, 105, 142572,
)
CRITEO_NUM_DENSE = 13
CRITEO_DENSE_NAMES = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CATEGORICAL_NAMES = tuple(f"C{i}" for i in range(1, 27))
_COLUMNS = ("label",) + CRITEO_DENSE_NAMES + CRITEO_CATEGORICAL_NAMES

_WHAT = {"label": "0 or 1", "dense": "an integer (or empty)",
         "cat": "a hexadecimal hash of at most 16 digits (or empty)"}


def _field(name: str) -> Field:
    if name == "label":
        return Field(name, LABEL, _WHAT["label"])
    if name.startswith("I"):
        return Field(name, DENSE_INT, _WHAT["dense"])
    return Field(name, HEX, _WHAT["cat"])


def _plan(table_sizes: tuple[int, ...], sparse_dtype):
    def plan(path, first: bytes) -> tuple[Layout, bool]:
        # Tab unless the first line has commas and no tab.
        sep = b"," if (b"," in first and b"\t" not in first) else b"\t"
        cols = [c.strip().decode("utf-8", errors="replace").lstrip("\ufeff") for c in first.split(sep)]
        lower = [c.lower() for c in cols]
        # A data line never holds the word "label"; a header line always does.
        header = "label" in lower
        if header:
            wanted = [c.lower() for c in _COLUMNS]
            missing = [c for c, w in zip(_COLUMNS, wanted) if w not in lower]
            if missing:
                raise DataError(f"{path}: line 1: header lacks column(s) {', '.join(missing)}")
            dupes = sorted({c for c in lower if lower.count(c) > 1 and c in wanted})
            if dupes:
                raise DataError(f"{path}: line 1: header repeats column(s) {', '.join(dupes)}")
            skip = b"[^" + re.escape(sep) + b"]*"
            fields = [_field(_COLUMNS[wanted.index(c)]) if c in wanted else Field(cols[i], skip, "anything", keep=False)
                      for i, c in enumerate(lower)]
            kept = [c for c in lower if c in wanted]
            # perm[j]: position among the captured groups of the j-th column of _COLUMNS.
            perm = np.array([kept.index(w) for w in wanted])
        else:
            fields = [_field(c) for c in _COLUMNS]
            perm = np.arange(len(_COLUMNS))

        def convert(arr: np.ndarray):
            arr = arr[:, perm]
            labels = (arr[:, 0] == b"1").astype(np.uint8)
            dense = dense_log1p(arr[:, 1:14])
            sparse = hash_columns(parse_hex(arr[:, 14:40]), table_sizes, sparse_dtype)
            return dense, sparse, labels

        return Layout(fields, sep, convert), header
    return plan


def load_criteo(path, *, table_sizes=CRITEO_KAGGLE_TABLE_SIZES, strict: bool = False,
                cache_dir=None) -> Dataset:
    """Load a Criteo Kaggle/Terabyte TSV file (or its CSV-with-header variant).

    See the module docstring for the accepted layouts and the preprocessing.

    Parameters
    ----------
    path : str or os.PathLike
        The file (``.gz`` allowed).  Streamed line by line.
    table_sizes : sequence of 26 ints
        Rows of the tables of C1..C26 (default: the reference DLRM sizes).
    strict : bool
        Raise :class:`DataError` at the first malformed line instead of
        skipping and reporting it.
    cache_dir : str or os.PathLike, optional
        Keep a preprocessed memory-mapped copy there (see
        :mod:`hotline.host.data.cache`); later loads of the unchanged file with
        the same table sizes open it instead of parsing.  A truncated or
        corrupt entry raises :class:`DataError` (delete it to rebuild).

    Returns
    -------
    Dataset
        13 dense features, 26 tables named ``C1``..``C26``; malformed lines
        skipped are listed in ``bad_lines`` / ``num_bad_lines``.

    Raises
    ------
    DataError
        Missing or empty file, no valid rows, header without the needed
        columns, corrupt cache, or (strict) a malformed line.
    TypeError, ValueError
        Bad arguments.
    """
    sizes = check_table_sizes(table_sizes, count=len(CRITEO_CATEGORICAL_NAMES))
    sparse_dtype = np.int32 if max(sizes) <= np.iinfo(np.int32).max else np.int64
    return load_text(path, kind="criteo", table_sizes=sizes, table_names=CRITEO_CATEGORICAL_NAMES,
                     num_dense=CRITEO_NUM_DENSE, strict=strict, cache_dir=cache_dir,
                     params={"table_sizes": list(sizes)}, plan=_plan(sizes, sparse_dtype))
