"""Mini-batches and datasets: the interface every loader of :mod:`hotline.host.data` returns.

A :class:`Dataset` is a sequence of samples, each a vector of dense features,
one row index per embedding table and a click label.  It hands out contiguous
:class:`Batch` objects by position; :meth:`Dataset.split` cuts it into a train
and a test part by position (no shuffling: click logs are time ordered and the
test part must come after the train part).

:class:`ArrayDataset` is the one concrete implementation: three arrays (in
memory or memory-mapped from a preprocessed cache), stored in the smallest
safe dtypes, converted to the :class:`Batch` dtypes when a batch is taken.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DataError",
    "DataWarning",
    "Batch",
    "Dataset",
    "ArrayDataset",
    "check_table_sizes",
]


class DataError(ValueError):
    """Input data cannot be used: missing or empty file, corrupt cache, malformed line in strict mode.

    The message is one line and names the file (and the line number where
    there is one).
    """


class DataWarning(UserWarning):
    """Raised through :mod:`warnings` when a loader skipped malformed lines."""


def _check_index(name: str, value, *, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__} {value!r}")
    value = int(value)
    if value < lo:
        raise ValueError(f"{name} must be at least {lo}, not {value}")
    return value


def check_table_sizes(table_sizes, *, name: str = "table_sizes",
                      count: int | None = None) -> tuple[int, ...]:
    """Check and normalise a sequence of embedding-table sizes.

    Parameters
    ----------
    table_sizes : sequence of int
        Rows per table, each at least 1.
    name : str
        Argument name used in error messages.
    count : int, optional
        Required number of tables.

    Returns
    -------
    tuple of int

    Raises
    ------
    TypeError
        Not a sequence of integers.
    ValueError
        Empty, wrong count, or a size below 1 or above 2**62.
    """
    if isinstance(table_sizes, (str, bytes)) or not isinstance(table_sizes, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of integers, not {type(table_sizes).__name__}")
    sizes = []
    for i, s in enumerate(table_sizes):
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"{name}[{i}] must be an integer, not {type(s).__name__} {s!r}")
        s = int(s)
        if not 1 <= s <= 2**62:
            raise ValueError(f"{name}[{i}] must be between 1 and 2**62, not {s}")
        sizes.append(s)
    if not sizes:
        raise ValueError(f"{name} must name at least one table")
    if count is not None and len(sizes) != count:
        raise ValueError(f"{name} must have {count} entries, not {len(sizes)}")
    return tuple(sizes)


@dataclass
class Batch:
    """A mini-batch of B samples.

    Parameters
    ----------
    dense : numpy.ndarray
        float32 ``[B, num_dense]`` dense features (``num_dense`` may be 0).
    sparse : numpy.ndarray
        int64 ``[B, T]``: ``sparse[b, t]`` is the row of table ``t`` that
        sample ``b`` looks up, ``0 <= sparse[b, t] < table_sizes[t]``.
    labels : numpy.ndarray
        float32 ``[B]``, each 0.0 or 1.0.

    Raises
    ------
    TypeError
        A member is not a numpy array of the dtype above.
    ValueError
        Wrong number of dimensions or disagreeing batch sizes.
    """

    dense: np.ndarray
    sparse: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        # Cheap structural checks only (no pass over the data): a wrong dtype
        # here would otherwise surface as a confusing error deep in torch.
        for name, ndim, dtype in (("dense", 2, np.float32), ("sparse", 2, np.int64),
                                  ("labels", 1, np.float32)):
            a = getattr(self, name)
            if not isinstance(a, np.ndarray):
                raise TypeError(f"Batch.{name} must be a numpy array, not {type(a).__name__}")
            if a.dtype != dtype:
                raise TypeError(f"Batch.{name} must have dtype {np.dtype(dtype).name}, not {a.dtype}")
            if a.ndim != ndim:
                raise ValueError(f"Batch.{name} must have {ndim} dimensions, not shape {a.shape}")
        n = self.labels.shape[0]
        if self.dense.shape[0] != n or self.sparse.shape[0] != n:
            raise ValueError(f"Batch members disagree on the batch size: dense {self.dense.shape}, "
                             f"sparse {self.sparse.shape}, labels {self.labels.shape}")

    def __len__(self) -> int:
        return int(self.labels.shape[0])


class Dataset:
    """Base class of every dataset: positional access to contiguous batches.

    Subclasses implement :meth:`__len__` and :meth:`batch` and set the
    members below; :meth:`batches` and :meth:`split` are built on them.

    Attributes
    ----------
    table_sizes : tuple of int
        Rows of each embedding table (``T = len(table_sizes)``).
    num_dense : int
        Dense features per sample.
    table_names : tuple of str
        One name per table (the source column, e.g. ``"C1"``).
    name : str
        Human-readable origin (file path or generator description).
    bad_lines : list of (int, str)
        Malformed source lines that were skipped: (1-based line number,
        reason).  At most :attr:`MAX_BAD_LINES_KEPT` are kept; see
        :attr:`num_bad_lines` for the total.
    num_bad_lines : int
        Total number of malformed lines skipped.
    warnings : list of str
        Warnings issued while loading (also raised as :class:`DataWarning`).
    """

    MAX_BAD_LINES_KEPT = 1000

    table_sizes: tuple[int, ...] = ()
    num_dense: int = 0
    table_names: tuple[str, ...] = ()
    name: str = ""

    def __init__(self):
        self.bad_lines: list[tuple[int, str]] = []
        self.num_bad_lines: int = 0
        self.warnings: list[str] = []

    def __len__(self) -> int:
        raise NotImplementedError

    def batch(self, start: int, size: int) -> Batch:
        """Samples ``[start, start + size)`` as one :class:`Batch`.

        Parameters
        ----------
        start : int
            First sample, ``0 <= start``.
        size : int
            Number of samples, at least 1, with ``start + size <= len(self)``.
        """
        raise NotImplementedError

    def _check_range(self, start, size) -> tuple[int, int]:
        start = _check_index("start", start)
        size = _check_index("size", size, lo=1)
        if start + size > len(self):
            raise ValueError(f"batch [start={start}, start+size={start + size}) runs past the end "
                             f"of the dataset ({len(self)} samples)")
        return start, size

    def batches(self, batch_size: int, start: int = 0, drop_last: bool = True) -> Iterator[Batch]:
        """Iterate over consecutive batches.

        Parameters
        ----------
        batch_size : int
            Samples per batch, at least 1.
        start : int
            First sample (``0 <= start <= len(self)``).
        drop_last : bool
            Leave out a final batch shorter than ``batch_size``.

        Yields
        ------
        Batch
        """
        batch_size = _check_index("batch_size", batch_size, lo=1)
        start = _check_index("start", start)
        if start > len(self):
            raise ValueError(f"start must be at most the dataset length {len(self)}, not {start}")
        n = len(self)
        pos = start
        while pos < n:
            size = min(batch_size, n - pos)
            if size < batch_size and drop_last:
                return
            yield self.batch(pos, size)
            pos += size

    def subset(self, start: int, stop: int) -> "Dataset":
        """Samples ``[start, stop)`` as a dataset of their own (a view, not a copy)."""
        start = _check_index("start", start)
        stop = _check_index("stop", stop)
        if not start <= stop <= len(self):
            raise ValueError(f"subset [{start}, {stop}) is not inside [0, {len(self)}]")
        return _SliceDataset(self, start, stop)

    def split(self, fraction: float) -> tuple["Dataset", "Dataset"]:
        """Cut into (first part, rest) by position.

        Parameters
        ----------
        fraction : float
            Share of samples in the first part, ``0 < fraction < 1``; the first
            part gets ``floor(fraction * len(self))`` samples.

        Raises
        ------
        ValueError
            ``fraction`` outside (0, 1) or one part would be empty.
        """
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
            raise TypeError(f"fraction must be a number, not {type(fraction).__name__} {fraction!r}")
        fraction = float(fraction)
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction must be strictly between 0 and 1, not {fraction}")
        n = len(self)
        cut = int(np.floor(fraction * n))
        if cut == 0 or cut == n:
            raise ValueError(f"fraction {fraction} of {n} samples leaves one part empty")
        return self.subset(0, cut), self.subset(cut, n)

    def _copy_report(self, other: "Dataset") -> None:
        other.bad_lines = self.bad_lines
        other.num_bad_lines = self.num_bad_lines
        other.warnings = self.warnings

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        warnings.warn(message, DataWarning, stacklevel=3)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, samples={len(self)}, tables={len(self.table_sizes)}, "
                f"num_dense={self.num_dense}, bad_lines={self.num_bad_lines})")


class _SliceDataset(Dataset):
    """A contiguous view ``[start, stop)`` of another dataset."""

    def __init__(self, parent: Dataset, start: int, stop: int):
        super().__init__()
        self.parent = parent
        self.start = start
        self.stop = stop
        self.table_sizes = parent.table_sizes
        self.num_dense = parent.num_dense
        self.table_names = parent.table_names
        self.name = f"{parent.name}[{start}:{stop}]"
        parent._copy_report(self)

    def __len__(self) -> int:
        return self.stop - self.start

    def batch(self, start: int, size: int) -> Batch:
        start, size = self._check_range(start, size)
        return self.parent.batch(self.start + start, size)


class ArrayDataset(Dataset):
    """A dataset held as three arrays (in memory or memory-mapped).

    Parameters
    ----------
    dense : numpy.ndarray
        ``[N, num_dense]`` floating point features.
    sparse : numpy.ndarray
        ``[N, T]`` integer row indices, ``0 <= sparse[:, t] < table_sizes[t]``
        (any integer dtype; batches are returned as int64).
    labels : numpy.ndarray
        ``[N]`` labels, each 0 or 1 (any numeric dtype).
    table_sizes : sequence of int
        Rows per table.
    table_names : sequence of str, optional
        One name per table; default ``("T0", "T1", ...)``.
    name : str
        Description of the origin.
    validate : bool
        Check every row index against its table size and every label for 0/1
        (one pass over the data).  Loaders that produce the indices
        themselves pass ``False``.

    Raises
    ------
    TypeError, ValueError
        Shapes, dtypes or (with ``validate``) values that do not fit.
    """

    def __init__(self, dense, sparse, labels, table_sizes, *, table_names=None,
                 name: str = "arrays", validate: bool = True):
        super().__init__()
        self.table_sizes = check_table_sizes(table_sizes)
        t = len(self.table_sizes)
        for nm, a in (("dense", dense), ("sparse", sparse), ("labels", labels)):
            if not isinstance(a, np.ndarray):
                raise TypeError(f"{nm} must be a numpy array, not {type(a).__name__}")
        if dense.ndim != 2 or not np.issubdtype(dense.dtype, np.floating):
            raise ValueError(f"dense must be a 2-D floating array, not {dense.dtype} {dense.shape}")
        if sparse.ndim != 2 or not np.issubdtype(sparse.dtype, np.integer):
            raise ValueError(f"sparse must be a 2-D integer array, not {sparse.dtype} {sparse.shape}")
        if labels.ndim != 1:
            raise ValueError(f"labels must be a 1-D array, not shape {labels.shape}")
        n = labels.shape[0]
        if dense.shape[0] != n or sparse.shape[0] != n:
            raise ValueError(f"dense {dense.shape}, sparse {sparse.shape} and labels {labels.shape} "
                             "disagree on the number of samples")
        if sparse.shape[1] != t:
            raise ValueError(f"sparse has {sparse.shape[1]} columns but table_sizes names {t} tables")
        if table_names is None:
            table_names = tuple(f"T{i}" for i in range(t))
        table_names = tuple(str(x) for x in table_names)
        if len(table_names) != t:
            raise ValueError(f"table_names has {len(table_names)} entries, table_sizes {t}")
        if validate and n:
            sizes = np.asarray(self.table_sizes, dtype=np.int64)
            bad = (sparse < 0) | (sparse >= sizes)
            if bad.any():
                i, j = np.argwhere(bad)[0]
                raise ValueError(f"sparse[{i}, {j}] = {sparse[i, j]} is outside table {j} "
                                 f"(size {self.table_sizes[j]})")
            badl = (labels != 0) & (labels != 1)
            if badl.any():
                i = int(np.argmax(badl))
                raise ValueError(f"labels[{i}] = {labels[i]} is not 0 or 1")
        self.dense = dense
        self.sparse = sparse
        self.labels = labels
        self.num_dense = int(dense.shape[1])
        self.table_names = table_names
        self.name = str(name)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch(self, start: int, size: int) -> Batch:
        start, size = self._check_range(start, size)
        sl = slice(start, start + size)
        # np.array(..., dtype) always copies, so a batch never aliases a
        # memory-mapped cache or the dataset's own arrays.
        return Batch(dense=np.array(self.dense[sl], dtype=np.float32),
                     sparse=np.array(self.sparse[sl], dtype=np.int64),
                     labels=np.array(self.labels[sl], dtype=np.float32))

    def subset(self, start: int, stop: int) -> "ArrayDataset":
        start = _check_index("start", start)
        stop = _check_index("stop", stop)
        if not start <= stop <= len(self):
            raise ValueError(f"subset [{start}, {stop}) is not inside [0, {len(self)}]")
        out = ArrayDataset(self.dense[start:stop], self.sparse[start:stop], self.labels[start:stop],
                           self.table_sizes, table_names=self.table_names,
                           name=f"{self.name}[{start}:{stop}]", validate=False)
        self._copy_report(out)
        return out
