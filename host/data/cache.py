"""Preprocessed NumPy cache of a parsed text dataset, for fast re-runs.

A cache entry is a folder ``<cache_dir>/<kind>-<key>/`` holding three raw
little-endian arrays (``dense.bin`` float32 ``[N, num_dense]``,
``sparse.bin`` int32 or int64 ``[N, T]``, ``labels.bin`` uint8 ``[N]``) and
``meta.json`` (shapes, dtypes, byte sizes and CRC-32 of each file, the
source description and the malformed-line report).  The key is a SHA-256 of
the loader kind, its format version, the source file's absolute path, size
and modification time, and the table sizes, so any change of the source or
of the sizes gives a new entry.

An entry is built in a temporary folder and renamed into place when
complete, so an interrupted build never leaves a half entry under the final
name.  On load every file's size and CRC-32 is checked; a truncated or
corrupt entry raises a one-line :class:`~hotline.host.data.batch.DataError`
naming the folder (delete it to rebuild) rather than being rebuilt
silently.  The arrays are memory-mapped read-only, so a cache larger than
memory works.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np

from .batch import ArrayDataset, DataError

__all__ = ["CACHE_FORMAT", "cache_entry", "CacheWriter", "load_cache"]

#: Bump when the on-disk layout or any loader's parsing changes.
CACHE_FORMAT = 1

_FILES = ("dense.bin", "sparse.bin", "labels.bin")
_CRC_BLOCK = 1 << 24


def cache_entry(cache_dir, kind: str, source: Path, params: dict) -> Path:
    """Folder of the cache entry of ``source`` parsed by loader ``kind`` with ``params``.

    Parameters
    ----------
    cache_dir : str or os.PathLike
        Root folder of the cache (created by :class:`CacheWriter` when missing).
    kind : str
        Loader name, e.g. ``"criteo"``.
    source : pathlib.Path
        The source file (must exist).
    params : dict
        JSON-serialisable parsing parameters (table sizes...).
    """
    cache_dir = Path(cache_dir)
    if cache_dir.exists() and not cache_dir.is_dir():
        raise DataError(f"cache_dir {cache_dir} exists and is not a folder")
    st = source.stat()
    desc = {"format": CACHE_FORMAT, "kind": kind, "path": str(source.resolve()),
            "size": st.st_size, "mtime_ns": st.st_mtime_ns, "params": params}
    key = hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:24]
    return cache_dir / f"{kind}-{key}"


class CacheWriter:
    """Writes a cache entry chunk by chunk; :meth:`finish` makes it visible.

    Parameters
    ----------
    entry : pathlib.Path
        Final folder (from :func:`cache_entry`).
    sparse_dtype : numpy.dtype
        int32 or int64.
    """

    def __init__(self, entry: Path, sparse_dtype):
        self.entry = Path(entry)
        self.entry.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.entry.name}.", dir=self.entry.parent))
        self.sparse_dtype = np.dtype(sparse_dtype)
        self._files = {name: open(self.tmp / name, "wb") for name in _FILES}
        self._crc = {name: 0 for name in _FILES}
        self._bytes = {name: 0 for name in _FILES}
        self.rows = 0

    def _write(self, name: str, array: np.ndarray) -> None:
        data = np.ascontiguousarray(array).tobytes()
        self._files[name].write(data)
        self._crc[name] = zlib.crc32(data, self._crc[name])
        self._bytes[name] += len(data)

    def append(self, dense: np.ndarray, sparse: np.ndarray, labels: np.ndarray) -> None:
        """Append a chunk of rows (converted to the cache dtypes, little-endian)."""
        self._write("dense.bin", dense.astype("<f4", copy=False))
        self._write("sparse.bin", sparse.astype(self.sparse_dtype.newbyteorder("<"), copy=False))
        self._write("labels.bin", labels.astype(np.uint8, copy=False))
        self.rows += len(labels)

    def finish(self, meta: dict) -> Path:
        """Close the files, write ``meta.json`` and move the entry into place."""
        for f in self._files.values():
            f.close()
        meta = dict(meta, format=CACHE_FORMAT, rows=self.rows, sparse_dtype=self.sparse_dtype.name,
                    files={name: {"bytes": self._bytes[name], "crc32": self._crc[name]} for name in _FILES})
        (self.tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.rename(self.tmp, self.entry)
        except OSError:
            # Another process finished the same entry first: keep theirs.
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.entry

    def abort(self) -> None:
        """Drop the partial entry."""
        for f in self._files.values():
            f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _crc_file(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(_CRC_BLOCK):
            crc = zlib.crc32(block, crc)
    return crc


def load_cache(entry: Path) -> tuple[ArrayDataset, dict]:
    """Open a cache entry as a memory-mapped dataset.

    Returns
    -------
    (ArrayDataset, dict)
        The dataset (with ``table_names``, ``name`` and the bad-line report
        restored) and the entry's metadata.

    Raises
    ------
    DataError
        Missing or unreadable ``meta.json``, a data file missing, of the wrong
        size or with the wrong CRC-32.
    """
    where = f"cache entry {entry}"
    hint = "delete the folder to rebuild it"
    try:
        meta = json.loads((entry / "meta.json").read_text())
        rows = int(meta["rows"])
        num_dense = int(meta["num_dense"])
        sizes = tuple(int(s) for s in meta["table_sizes"])
        sparse_dtype = np.dtype(meta["sparse_dtype"]).newbyteorder("<")
        files = meta["files"]
        if meta.get("format") != CACHE_FORMAT:
            raise DataError(f"{where} has format {meta.get('format')}, expected {CACHE_FORMAT}; {hint}")
    except DataError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{where}: unreadable meta.json ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}); {hint}") from None
    shapes = {"dense.bin": ((rows, num_dense), np.dtype("<f4")),
              "sparse.bin": ((rows, len(sizes)), sparse_dtype),
              "labels.bin": ((rows,), np.dtype(np.uint8))}
    arrays = {}
    for name, (shape, dtype) in shapes.items():
        path = entry / name
        expected = int(np.prod(shape)) * dtype.itemsize
        try:
            actual = path.stat().st_size
        except OSError:
            raise DataError(f"{where}: {name} is missing; {hint}") from None
        if actual != expected or files.get(name, {}).get("bytes") != expected:
            raise DataError(f"{where}: {name} has {actual} bytes, expected {expected} "
                            f"(truncated or corrupt); {hint}")
        if _crc_file(path) != files[name].get("crc32"):
            raise DataError(f"{where}: {name} fails its CRC-32 check (corrupt); {hint}")
        # A zero-size file cannot be memory-mapped; an empty entry is never written anyway.
        arrays[name] = np.memmap(path, dtype=dtype, mode="r", shape=shape) if expected else np.zeros(shape, dtype)
    ds = ArrayDataset(arrays["dense.bin"], arrays["sparse.bin"], arrays["labels.bin"], sizes,
                      table_names=meta.get("table_names"), name=str(meta.get("name", entry)), validate=False)
    ds.bad_lines = [(int(n), str(r)) for n, r in meta.get("bad_lines", [])]
    ds.num_bad_lines = int(meta.get("num_bad_lines", 0))
    return ds, meta
