"""Loader of the Avazu click-through-rate CSV (Kaggle ``train`` layout, with header).

Layout
------
A header line naming the columns ``id, click, hour, C1, banner_pos,
site_id, site_domain, site_category, app_id, app_domain, app_category,
device_id, device_ip, device_model, device_type, device_conn_type,
C14..C21`` (found by name, any order, other columns ignored), then one
comma-separated sample per line.  ``.gz`` files are decompressed on the fly.
Avazu's ``test`` file has no ``click`` column and is rejected.

Features
--------
* label: ``click`` (0 or 1).
* ``id`` is ignored (unique per sample, it carries no signal).
* ``hour`` (``YYMMDDHH``) becomes two categorical features, ``hour_of_day``
  (0..23) and ``day_of_week`` (0 = Monday .. 6), whose rows are
  ``value % size`` (the identity at the default sizes 24 and 7), and one
  dense feature, ``hour_of_day / 23`` in [0, 1]: ``num_dense`` is 1 so that
  the bottom MLP of a DLRM still has an input.  An invalid date or hour makes
  the line malformed.
* the other 21 columns are categorical: hexadecimal ids (``site_id``,
  ``site_domain``, ``site_category``, ``app_id``, ``app_domain``,
  ``app_category``, ``device_id``, ``device_ip``, ``device_model``) are read
  as hex, the rest (``C1``, ``banner_pos``, ``device_type``,
  ``device_conn_type``, ``C14``..``C21``) as (possibly negative) decimal
  integers; value ``v`` goes to row ``mix64(v) % size`` of its table (the
  Criteo loader's hash).  An empty field reads as 0, i.e. row 0 (shared with
  the value 0; the public files have no empty fields).

Tables are in the order of :data:`AVAZU_TABLE_NAMES`: the 21 columns in
header order, then ``hour_of_day`` and ``day_of_week``.  Default sizes
(:data:`AVAZU_TABLE_SIZES`) are hashing sizes, not exact cardinalities: the
next power of two at or above ~8x each field's approximate number of distinct
values in the full training set (so few values collide), at least 1,024, and
at most 2**20 for the two huge fields (``device_id`` ~2.7 M values,
``device_ip`` ~6.7 M), about 2.6 M rows in all.
"""

from __future__ import annotations

import datetime
import numbers
from collections.abc import Mapping

import numpy as np

from .batch import DataError, Dataset, check_table_sizes
from .textfile import DEC, DIGITS8, HEX, LABEL, Field, Layout, hash_columns, load_text, parse_dec, parse_hex

__all__ = ["AVAZU_TABLE_NAMES", "AVAZU_TABLE_SIZES", "AVAZU_NUM_DENSE", "load_avazu"]

_HEX_FIELDS = ("site_id", "site_domain", "site_category", "app_id", "app_domain", "app_category",
               "device_id", "device_ip", "device_model")
_CAT_FIELDS = ("C1", "banner_pos", "site_id", "site_domain", "site_category", "app_id", "app_domain",
               "app_category", "device_id", "device_ip", "device_model", "device_type", "device_conn_type",
               "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21")

#: Table names, in table order.
AVAZU_TABLE_NAMES: tuple[str, ...] = _CAT_FIELDS + ("hour_of_day", "day_of_week")

_DEFAULT_SIZES = {
    "C1": 1024, "banner_pos": 1024, "site_id": 65536, "site_domain": 65536, "site_category": 1024,
    "app_id": 131072, "app_domain": 8192, "app_category": 1024, "device_id": 1 << 20,
    "device_ip": 1 << 20, "device_model": 131072, "device_type": 1024, "device_conn_type": 1024,
    "C14": 32768, "C15": 1024, "C16": 1024, "C17": 4096, "C18": 1024, "C19": 1024, "C20": 2048,
    "C21": 1024, "hour_of_day": 24, "day_of_week": 7,
}
#: Default rows per table, in :data:`AVAZU_TABLE_NAMES` order.
AVAZU_TABLE_SIZES: tuple[int, ...] = tuple(_DEFAULT_SIZES[n] for n in AVAZU_TABLE_NAMES)
AVAZU_NUM_DENSE = 1

_COLUMNS = ("click", "hour") + _CAT_FIELDS


def _resolve_sizes(table_sizes) -> tuple[int, ...]:
    if table_sizes is None:
        return AVAZU_TABLE_SIZES
    if isinstance(table_sizes, Mapping):
        unknown = sorted(set(table_sizes) - set(AVAZU_TABLE_NAMES))
        if unknown:
            raise ValueError(f"table_sizes names unknown Avazu table(s) {', '.join(map(str, unknown))}")
        for k, v in table_sizes.items():
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"table_sizes[{k!r}] must be an integer, not {type(v).__name__} {v!r}")
        merged = dict(_DEFAULT_SIZES, **table_sizes)
        return check_table_sizes([merged[n] for n in AVAZU_TABLE_NAMES])
    return check_table_sizes(table_sizes, count=len(AVAZU_TABLE_NAMES))


_hour_cache: dict[bytes, tuple[int, int] | None] = {}


def _hour(raw: bytes) -> tuple[int, int] | None:
    """(hour of day, day of week) of ``YYMMDDHH``, or None when not a valid date and hour."""
    try:
        return _hour_cache[raw]
    except KeyError:
        pass
    try:
        yy, mm, dd, hh = int(raw[0:2]), int(raw[2:4]), int(raw[4:6]), int(raw[6:8])
        result = (hh, datetime.date(2000 + yy, mm, dd).weekday()) if hh < 24 else None
    except ValueError:
        result = None
    if len(_hour_cache) < 100_000:
        _hour_cache[raw] = result
    return result


def _plan(table_sizes: tuple[int, ...], sparse_dtype):
    def plan(path, first: bytes) -> tuple[Layout, bool]:
        cols = [c.strip().decode("utf-8", errors="replace").lstrip("\ufeff") for c in first.split(b",")]
        if "click" not in cols and "hour" not in cols:
            raise DataError(f"{path}: line 1: expected a header line naming the Avazu columns "
                            f"(id,click,hour,C1,...), found {first[:60].decode('utf-8', 'replace')!r}")
        missing = [c for c in _COLUMNS if c not in cols]
        if missing:
            raise DataError(f"{path}: line 1: header lacks column(s) {', '.join(missing)}")
        dupes = sorted({c for c in cols if cols.count(c) > 1 and c in _COLUMNS})
        if dupes:
            raise DataError(f"{path}: line 1: header repeats column(s) {', '.join(dupes)}")
        fields = []
        for c in cols:
            if c == "click":
                fields.append(Field(c, LABEL, "0 or 1"))
            elif c == "hour":
                fields.append(Field(c, DIGITS8, "an hour YYMMDDHH"))
            elif c in _HEX_FIELDS:
                fields.append(Field(c, HEX, "a hexadecimal id of at most 16 digits (or empty)"))
            elif c in _CAT_FIELDS:
                fields.append(Field(c, DEC, "a decimal integer of at most 18 digits (or empty)"))
            else:
                fields.append(Field(c, rb"[^,]*", "anything", keep=False))
        kept = [c for c in cols if c in _COLUMNS]
        perm = np.array([kept.index(c) for c in _COLUMNS])
        hour_group = kept.index("hour")
        hex_idx = [i for i, c in enumerate(_CAT_FIELDS) if c in _HEX_FIELDS]
        dec_idx = [i for i, c in enumerate(_CAT_FIELDS) if c not in _HEX_FIELDS]

        def line_check(groups):
            if _hour(groups[hour_group]) is None:
                return f"hour {groups[hour_group].decode()!r} is not a valid YYMMDDHH date and hour"
            return None

        def convert(arr: np.ndarray):
            arr = arr[:, perm]
            n = arr.shape[0]
            labels = (arr[:, 0] == b"1").astype(np.uint8)
            uniq, inverse = np.unique(arr[:, 1], return_inverse=True)
            table = np.array([_hour(h) for h in uniq], dtype=np.int64).reshape(-1, 2)
            hod, dow = table[inverse.ravel(), 0], table[inverse.ravel(), 1]
            values = np.empty((n, len(AVAZU_TABLE_NAMES)), dtype=np.uint64)
            cats = arr[:, 2:]
            values[:, hex_idx] = parse_hex(cats[:, hex_idx])
            values[:, dec_idx] = parse_dec(cats[:, dec_idx])
            ncat = len(_CAT_FIELDS)
            sparse = np.empty((n, len(AVAZU_TABLE_NAMES)), dtype=sparse_dtype)
            sparse[:, :ncat] = hash_columns(values[:, :ncat], table_sizes[:ncat], sparse_dtype)
            sparse[:, ncat] = hod % table_sizes[ncat]
            sparse[:, ncat + 1] = dow % table_sizes[ncat + 1]
            dense = (hod / 23.0).astype(np.float32).reshape(n, 1)
            return dense, sparse, labels

        return Layout(fields, b",", convert, line_check), True
    return plan


def load_avazu(path, *, table_sizes=None, strict: bool = False, cache_dir=None) -> Dataset:
    """Load an Avazu CSV file (see the module docstring for layout and features).

    Parameters
    ----------
    path : str or os.PathLike
        The file (``.gz`` allowed).  Streamed line by line.
    table_sizes : None, sequence of 23 ints, or mapping
        Rows per table in :data:`AVAZU_TABLE_NAMES` order; a mapping
        overrides the defaults (:data:`AVAZU_TABLE_SIZES`) of the tables it
        names.
    strict : bool
        Raise :class:`DataError` at the first malformed line instead of
        skipping and reporting it.
    cache_dir : str or os.PathLike, optional
        Preprocessed cache folder (as for :func:`~hotline.host.data.load_criteo`).

    Returns
    -------
    Dataset
        1 dense feature (hour of day / 23) and 23 tables.

    Raises
    ------
    DataError
        Missing or empty file, no header or a header without the needed
        columns, no valid rows, corrupt cache, or (strict) a malformed line.
    TypeError, ValueError
        Bad arguments.
    """
    sizes = _resolve_sizes(table_sizes)
    sparse_dtype = np.int32 if max(sizes) <= np.iinfo(np.int32).max else np.int64
    return load_text(path, kind="avazu", table_sizes=sizes, table_names=AVAZU_TABLE_NAMES,
                     num_dense=AVAZU_NUM_DENSE, strict=strict, cache_dir=cache_dir,
                     params={"table_sizes": list(sizes)}, plan=_plan(sizes, sparse_dtype))
