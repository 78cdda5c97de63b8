"""``hotline learn``: a short popularity-learning demo on synthetic Criteo-shaped keys."""

from __future__ import annotations

import time

import numpy as np

from ..config import HotlineConfig
from ..hashing import pack_keys
from .data import CRITEO_KAGGLE_TABLE_SIZES, synthetic_criteo
from .popularity import PopularityCounter, coverage_quality

__all__ = ["criteo_keys", "run_learn_demo"]


def criteo_keys(cfg: HotlineConfig, num_samples: int, *, zipf_exponent: float = 1.05,
                seed: int = 0) -> np.ndarray:
    """Packed keys of synthetic Criteo Kaggle-shaped samples, in stream order (sample by sample)."""
    sizes = CRITEO_KAGGLE_TABLE_SIZES
    if cfg.keys.tables < len(sizes):
        raise ValueError(f"the demo needs {len(sizes)} tables, config has keys.tables = {cfg.keys.tables}")
    data = synthetic_criteo(num_samples, seed=seed, zipf_exponent=zipf_exponent, num_dense=0)
    sparse = data.batch(0, num_samples).sparse
    tables = np.arange(len(sizes), dtype=np.int64)[None, :]
    return pack_keys(np.broadcast_to(tables, sparse.shape), sparse, cfg.keys.row_bits).ravel()


def run_learn_demo(cfg: HotlineConfig, *, keys: int = 1_000_000, zipf_exponent: float = 1.05,
                   seed: int = 0) -> int:
    if keys < 26:
        raise ValueError(f"--keys must be at least 26 (one sample), not {keys}")
    stream = criteo_keys(cfg, keys // 26, zipf_exponent=zipf_exponent, seed=seed)
    model = PopularityCounter(cfg)
    c = cfg.counter
    print(f"learning {stream.size:,} keys (Zipf {zipf_exponent}, Criteo Kaggle's 26 tables) in a "
          f"{c.depth} x 2^{c.log2_counters} x {c.counter_bits}-bit sketch"
          f"{' (conservative update)' if c.conservative_update else ''} and a "
          f"{c.hh_sets} x {c.hh_ways} heavy-hitter table")
    start = time.perf_counter()
    model.learn(stream)
    elapsed = time.perf_counter() - start
    print(f"golden model: {stream.size / elapsed / 1e6:.2f} M keys/s")
    keys_found, counts = model.readout()
    top = np.argsort(-counts)[:5]
    print("hottest rows found (+: the counter saturated):", ", ".join(
        f"C{int(keys_found[i] >> np.uint64(cfg.keys.row_bits)) + 1}[{int(keys_found[i] & np.uint64((1 << cfg.keys.row_bits) - 1))}]"
        f" x{int(counts[i])}{'+' if counts[i] == c.counter_max else ''}" for i in top))
    print(f"{'hot set size':>14} {'covers':>8} {'exact top-N':>12} {'ratio':>7}")
    for row in coverage_quality(model, stream):
        print(f"{row['found']:>14,} {row['coverage']:>8.1%} {row['exact_coverage']:>12.1%} "
              f"{row['ratio']:>7.3f}")
    return 0
