"""Data loaders of the host library: Criteo (Kaggle/Terabyte TSV and CSV), Avazu CSV and a synthetic generator.

Loaders: :func:`synthetic_criteo` (Zipf-skewed keys over Criteo's table
sizes), :func:`load_criteo` (Kaggle/Terabyte TSV or CSV with header) and
:func:`load_avazu` (CSV); each module's docstring documents its layout,
hashing of categorical values, dense preprocessing and bad-input handling.
Every loader returns a :class:`Dataset`; a training loop takes contiguous
:class:`Batch` objects from it::

    from hotline.host.data import synthetic_criteo
    train, test = synthetic_criteo(100_000, seed=1).split(0.9)
    for batch in train.batches(1024):
        batch.dense      # float32 [B, num_dense]
        batch.sparse     # int64 [B, T], row within table t
        batch.labels     # float32 [B], 0.0 or 1.0
"""

from .batch import ArrayDataset, Batch, DataError, DataWarning, Dataset, check_table_sizes
from .criteo import (CRITEO_CATEGORICAL_NAMES, CRITEO_DENSE_NAMES, CRITEO_KAGGLE_TABLE_SIZES,
                     CRITEO_NUM_DENSE, load_criteo)
from .avazu import AVAZU_NUM_DENSE, AVAZU_TABLE_NAMES, AVAZU_TABLE_SIZES, load_avazu
from .synthetic import skewed_small_dataset, synthetic_criteo, zipf_ranks

__all__ = [
    "AVAZU_NUM_DENSE",
    "AVAZU_TABLE_NAMES",
    "AVAZU_TABLE_SIZES",
    "ArrayDataset",
    "Batch",
    "CRITEO_CATEGORICAL_NAMES",
    "CRITEO_DENSE_NAMES",
    "CRITEO_KAGGLE_TABLE_SIZES",
    "CRITEO_NUM_DENSE",
    "DataError",
    "DataWarning",
    "Dataset",
    "check_table_sizes",
    "load_avazu",
    "load_criteo",
    "synthetic_criteo",
    "skewed_small_dataset",
    "zipf_ranks",
]
