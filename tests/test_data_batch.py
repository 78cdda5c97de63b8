"""Batch / Dataset interface: contiguous batches, iteration, split, argument checks."""

import numpy as np
import pytest

from hotline.host.data import ArrayDataset, Batch, Dataset, synthetic_criteo


def _arrays(n, sizes=(5, 7, 1000), num_dense=3, seed=0):
    rng = np.random.default_rng(seed)
    dense = rng.random((n, num_dense)).astype(np.float32)
    sparse = np.stack([rng.integers(0, s, n) for s in sizes], axis=1).astype(np.int32)
    labels = rng.integers(0, 2, n).astype(np.uint8)
    return dense, sparse, labels


class _Positional(Dataset):
    """A minimal subclass that only implements __len__ and batch (exercises the base class)."""

    def __init__(self, n):
        super().__init__()
        self.n = n
        self.table_sizes = (n,)
        self.num_dense = 1
        self.name = "positional"

    def __len__(self):
        return self.n

    def batch(self, start, size):
        start, size = self._check_range(start, size)
        idx = np.arange(start, start + size)
        return Batch(dense=idx[:, None].astype(np.float32), sparse=idx[:, None].astype(np.int64),
                     labels=(idx % 2).astype(np.float32))


def test_batch_contents_are_the_requested_rows(seed):
    dense, sparse, labels = _arrays(100, seed=seed)
    d = ArrayDataset(dense, sparse, labels, (5, 7, 1000))
    b = d.batch(37, 20)
    assert len(b) == 20
    assert b.dense.dtype == np.float32 and b.sparse.dtype == np.int64 and b.labels.dtype == np.float32
    assert np.array_equal(b.dense, dense[37:57])
    assert np.array_equal(b.sparse, sparse[37:57].astype(np.int64))
    assert np.array_equal(b.labels, labels[37:57].astype(np.float32))
    # A batch is a copy: writing to it leaves the dataset alone.
    b.sparse[:] = -1
    assert np.array_equal(d.batch(37, 20).sparse, sparse[37:57])


@pytest.mark.parametrize("n, bs, start, drop_last", [
    (100, 10, 0, True), (103, 10, 0, True), (103, 10, 0, False), (103, 10, 5, False),
    (5, 10, 0, True), (5, 10, 0, False), (10, 10, 10, False), (1, 1, 0, True),
], ids=lambda v: str(v))
def test_batches_cover_the_range(n, bs, start, drop_last):
    for d in (ArrayDataset(*_arrays(n), (5, 7, 1000)), _Positional(n)):
        sizes, seen = [], []
        for b in d.batches(bs, start=start, drop_last=drop_last):
            sizes.append(len(b))
            seen.append(b.sparse[:, 0] if isinstance(d, _Positional) else None)
        remaining = n - start
        full, rest = divmod(remaining, bs)
        expect = [bs] * full + ([rest] if rest and not drop_last else [])
        assert sizes == expect, f"{type(d).__name__}: batch sizes {sizes}, expected {expect}"
        if isinstance(d, _Positional) and seen:
            got = np.concatenate(seen)
            assert np.array_equal(got, np.arange(start, start + len(got)))


def test_split_by_position(seed):
    d = synthetic_criteo(1000, seed=seed)
    train, test = d.split(0.8)
    assert (len(train), len(test)) == (800, 200)
    assert train.table_sizes == d.table_sizes and test.num_dense == d.num_dense
    whole = d.batch(0, 1000)
    assert np.array_equal(train.batch(0, 800).sparse, whole.sparse[:800])
    assert np.array_equal(test.batch(0, 200).sparse, whole.sparse[800:])
    assert np.array_equal(test.batch(10, 5).dense, whole.dense[810:815])
    # Splits of splits keep positions.
    a, b = test.split(0.5)
    assert np.array_equal(b.batch(0, 100).labels, whole.labels[900:])
    # floor(fraction * n)
    t2, r2 = synthetic_criteo(7, seed=seed).split(0.5)
    assert (len(t2), len(r2)) == (3, 4)


def test_split_and_subset_of_base_class():
    d = _Positional(10)
    first, rest = d.split(0.3)
    assert (len(first), len(rest)) == (3, 7)
    assert rest.batch(0, 7).sparse[:, 0].tolist() == list(range(3, 10))
    assert rest.table_sizes == (10,) and rest.num_dense == 1
    with pytest.raises(ValueError, match="runs past the end"):
        rest.batch(5, 3)
    assert [len(b) for b in rest.batches(3, drop_last=False)] == [3, 3, 1]


@pytest.mark.parametrize("call, exc, match", [
    (lambda d: d.batch(-1, 5), ValueError, "start"),
    (lambda d: d.batch(0, 0), ValueError, "size"),
    (lambda d: d.batch(8, 3), ValueError, "runs past the end"),
    (lambda d: d.batch(1.0, 3), TypeError, "start"),
    (lambda d: d.batch(0, "3"), TypeError, "size"),
    (lambda d: list(d.batches(0)), ValueError, "batch_size"),
    (lambda d: list(d.batches(2, start=11)), ValueError, "start"),
    (lambda d: d.split(0.0), ValueError, "fraction"),
    (lambda d: d.split(1.0), ValueError, "fraction"),
    (lambda d: d.split(0.05), ValueError, "empty"),
    (lambda d: d.split("0.5"), TypeError, "fraction"),
    (lambda d: d.subset(3, 2), ValueError, "subset"),
], ids=["negstart", "zerosize", "past", "floatstart", "strsize", "bs0", "startpast", "f0", "f1",
        "fempty", "fstr", "subset"])
def test_bad_positions(call, exc, match):
    for d in (ArrayDataset(*_arrays(10), (5, 7, 1000)), _Positional(10)):
        with pytest.raises(exc, match=match) as info:
            call(d)
        assert "\n" not in str(info.value)


def test_batch_checks_members():
    ok = dict(dense=np.zeros((2, 3), np.float32), sparse=np.zeros((2, 4), np.int64),
              labels=np.zeros(2, np.float32))
    Batch(**ok)
    with pytest.raises(TypeError, match="Batch.dense"):
        Batch(**dict(ok, dense=np.zeros((2, 3), np.float64)))
    with pytest.raises(TypeError, match="Batch.sparse"):
        Batch(**dict(ok, sparse=np.zeros((2, 4), np.int32)))
    with pytest.raises(TypeError, match="Batch.labels"):
        Batch(**dict(ok, labels=[0.0, 1.0]))
    with pytest.raises(ValueError, match="Batch.sparse"):
        Batch(**dict(ok, sparse=np.zeros(2, np.int64)))
    with pytest.raises(ValueError, match="batch size"):
        Batch(**dict(ok, labels=np.zeros(3, np.float32)))


def test_array_dataset_validates_values():
    dense, sparse, labels = _arrays(50)
    sparse[17, 1] = 7            # table 1 has 7 rows: 7 is out of range
    with pytest.raises(ValueError, match=r"sparse\[17, 1\] = 7 is outside table 1"):
        ArrayDataset(dense, sparse, labels, (5, 7, 1000))
    sparse[17, 1] = -1
    with pytest.raises(ValueError, match=r"sparse\[17, 1\]"):
        ArrayDataset(dense, sparse, labels, (5, 7, 1000))
    dense, sparse, labels = _arrays(50)
    labels[3] = 2
    with pytest.raises(ValueError, match=r"labels\[3\] = 2"):
        ArrayDataset(dense, sparse, labels, (5, 7, 1000))
    with pytest.raises(ValueError, match="columns"):
        ArrayDataset(*_arrays(50), (5, 7))
    with pytest.raises(ValueError, match="number of samples"):
        ArrayDataset(dense[:10], sparse, labels, (5, 7, 1000))
    with pytest.raises(ValueError, match="dense"):
        ArrayDataset(dense.astype(np.int32), sparse, labels, (5, 7, 1000))
    with pytest.raises(TypeError, match="sparse"):
        ArrayDataset(dense, sparse.tolist(), labels, (5, 7, 1000))
    with pytest.raises(ValueError, match="table_names"):
        ArrayDataset(*_arrays(50), (5, 7, 1000), table_names=("a", "b"))
