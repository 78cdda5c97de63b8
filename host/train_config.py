"""Settings of the DLRM model and of the trainer, in one frozen dataclass.

:class:`TrainConfig` is to training what :class:`hotline.config.HotlineConfig`
is to the hardware: every model size and trainer knob lives here, checked on
construction (a bad value raises :class:`~hotline.config.ConfigError` or
:class:`TypeError` with a one-line message naming the field) and round-tripped
through YAML.  The defaults are the reference DLRM configuration for Criteo
Kaggle (embedding dim 16, bottom MLP 13-512-256-64-16, top MLP 512-256-1,
SGD at learning rate 0.1, mini-batch 1024); :meth:`TrainConfig.demo` is the
scaled-down preset that ``hotline train`` runs with no arguments.

MLP convention (DLRM's ``--arch-mlp-bot`` / ``--arch-mlp-top`` minus their
first entry): ``bottom_mlp`` lists the output width of every bottom layer (its
input is the number of dense features; its last width must equal
``embedding_dim``); ``top_mlp`` lists the output width of every top layer (its
input is the interaction size ``dim + F*(F-1)/2`` with ``F = tables + 1``, or
``F*(F+1)/2`` with ``interaction_itself``; its last width must be 1).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from ..config import ConfigError, _check_int, parse_yaml

__all__ = ["TrainConfig", "MODES", "OPTIMIZERS", "DEVICES", "DTYPES", "parse_bytes"]

#: Trainer modes.  ``compare`` runs hybrid then hotline; ``all`` adds hybrid-dedup and device.
MODES = ("hybrid", "hybrid-dedup", "device", "hotline", "compare", "all")
OPTIMIZERS = ("sgd", "adagrad")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float64")
HOT_CANDIDATES = ("learned", "heavy_hitters")

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30, "ki": 2**10, "mi": 2**20,
          "gi": 2**30}


def parse_bytes(text: Any, field: str = "bytes") -> int:
    """Parse a byte count such as ``65536``, ``64MiB``, ``1.5GB`` or ``256 KiB``.

    Raises
    ------
    ValueError
        For anything that is not a non-negative size (the message names ``field``).
    """
    if isinstance(text, bool):
        raise TypeError(f"{field} must be a byte count, not {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ConfigError(f"{field} must be non-negative, not {text}")
        return text
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise ConfigError(f"{field}: cannot read {text!r} as a byte count (e.g. 1048576, 64MiB, 1GB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _int(name, value, lo=None, hi=None):
    _check_int("train", name, value, lo=lo, hi=hi)


def _float(name, value, lo=None, hi=None, lo_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"train.{name} must be a number, not {type(value).__name__} {value!r}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise ConfigError(f"train.{name} must be {'>' if lo_open else '>='} {lo}, not {value}")
    if hi is not None and value > hi:
        raise ConfigError(f"train.{name} must be at most {hi}, not {value}")


def _choice(name, value, choices):
    if value not in choices:
        raise ConfigError(f"train.{name} must be one of {', '.join(choices)}, not {value!r}")


def _widths(name, value):
    if not isinstance(value, tuple) or not value:
        raise TypeError(f"train.{name} must be a non-empty list of layer widths, not {value!r}")
    for i, w in enumerate(value):
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise ConfigError(f"train.{name}[{i}] must be a positive integer, not {w!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Model and trainer settings.

    Parameters
    ----------
    embedding_dim : int
        Width D of every embedding row.
    bottom_mlp : tuple of int
        Output widths of the bottom MLP layers; the last must equal ``embedding_dim``.
    top_mlp : tuple of int
        Output widths of the top MLP layers; the last must be 1 (the logit).
    interaction_itself : bool
        Include each feature's dot product with itself (DLRM's
        ``--arch-interaction-itself``); off by default as in DLRM.
    batch_size : int
        Global mini-batch size B (split over ranks when distributed).
    eval_batch_size : int
        Batch size of the evaluation pass.
    lr : float
        Learning rate of every parameter.
    optimizer : str
        ``sgd`` (DLRM's default) or ``adagrad`` (dense: standard Adagrad;
        embeddings: row-wise Adagrad, one accumulator per row).
    adagrad_eps, adagrad_init : float
        Adagrad's epsilon and initial accumulator value.
    mode : str
        ``hybrid``, ``hybrid-dedup``, ``device``, ``hotline``, ``compare``
        (hybrid and hotline) or ``all`` (the four).
    steps : int
        Training steps (mini-batches); 0 means one pass over the training split.
    learn_fraction : float
        Share of the steps spent learning popularity (at least one step) in
        ``hotline`` mode; those steps train like ``hybrid-dedup``.
    hot_budget_bytes : int
        Device bytes for hot rows (each costs ``dim`` values plus the row's
        optimizer state); 256 MiB holds about 4 M Criteo rows.
    hot_candidates : str
        ``learned``: rank every key seen while learning by its sketch
        estimate (hot sets larger than the heavy-hitter table);
        ``heavy_hitters``: rank the heavy-hitter table's readout.
    device : str
        ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``.
    seed : int
        Seed of the model initialisation and of the synthetic data.
    dtype : str
        ``float32`` or ``float64`` (parity tests).
    test_fraction : float
        Share of the data held out for the test metrics (taken from the end).
    synthetic_samples : int
        Samples of the built-in synthetic data (used when no file is given).
    synthetic_table_scale : float
        Table sizes of the built-in synthetic data, as a fraction of Criteo
        Kaggle's (each table keeps at least 2 rows).
    zipf_exponent : float
        Skew of the synthetic keys.
    timeline_steps : int
        How many of the last steps keep a per-phase timeline (for the plot).
    sync_timers : bool
        On CUDA, wait for the device at every phase boundary of every step, so
        device time is charged to its phase (True); False syncs only in the
        timeline steps: the other steps run as they would untimed (their
        phase totals are then host-side times; samples/s is exact either way).
    """

    embedding_dim: int = 16
    bottom_mlp: tuple = (512, 256, 64, 16)
    top_mlp: tuple = (512, 256, 1)
    interaction_itself: bool = False
    batch_size: int = 1024
    eval_batch_size: int = 4096
    lr: float = 0.1
    optimizer: str = "sgd"
    adagrad_eps: float = 1e-8
    adagrad_init: float = 0.0
    mode: str = "compare"
    steps: int = 0
    learn_fraction: float = 0.05
    hot_budget_bytes: int = 256 * 2**20
    hot_candidates: str = "learned"
    device: str = "auto"
    seed: int = 0
    dtype: str = "float32"
    test_fraction: float = 0.1
    synthetic_samples: int = 100_000
    synthetic_table_scale: float = 1.0
    zipf_exponent: float = 1.05
    timeline_steps: int = 4
    sync_timers: bool = True

    def __post_init__(self):
        # YAML gives lists: store tuples so the config stays hashable and frozen.
        for name in ("bottom_mlp", "top_mlp"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if not isinstance(self.hot_budget_bytes, int) or isinstance(self.hot_budget_bytes, bool):
            object.__setattr__(self, "hot_budget_bytes",
                               parse_bytes(self.hot_budget_bytes, "train.hot_budget_bytes"))
        _int("embedding_dim", self.embedding_dim, 1, 4096)
        _widths("bottom_mlp", self.bottom_mlp)
        _widths("top_mlp", self.top_mlp)
        if self.bottom_mlp[-1] != self.embedding_dim:
            raise ConfigError(f"train.bottom_mlp must end with embedding_dim {self.embedding_dim} "
                              f"(the interaction takes dot products), not {self.bottom_mlp[-1]}")
        if self.top_mlp[-1] != 1:
            raise ConfigError(f"train.top_mlp must end with 1 (the click logit), not {self.top_mlp[-1]}")
        if not isinstance(self.interaction_itself, bool):
            raise TypeError(f"train.interaction_itself must be true or false, not {self.interaction_itself!r}")
        _int("batch_size", self.batch_size, 1)
        _int("eval_batch_size", self.eval_batch_size, 1)
        _float("lr", self.lr, 0, lo_open=True)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _float("adagrad_eps", self.adagrad_eps, 0, lo_open=True)
        _float("adagrad_init", self.adagrad_init, 0)
        _choice("mode", self.mode, MODES)
        _int("steps", self.steps, 0)
        _float("learn_fraction", self.learn_fraction, 0, 1, lo_open=True)
        _int("hot_budget_bytes", self.hot_budget_bytes, 0)
        _choice("hot_candidates", self.hot_candidates, HOT_CANDIDATES)
        _choice("device", self.device, DEVICES)
        _int("seed", self.seed, 0, 2**63 - 1)
        _choice("dtype", self.dtype, DTYPES)
        _float("test_fraction", self.test_fraction, 0, 0.9)
        _int("synthetic_samples", self.synthetic_samples, 1)
        _float("synthetic_table_scale", self.synthetic_table_scale, 0, 1, lo_open=True)
        _float("zipf_exponent", self.zipf_exponent, 0, lo_open=True)
        _int("timeline_steps", self.timeline_steps, 0, 1000)
        if not isinstance(self.sync_timers, bool):
            raise TypeError(f"train.sync_timers must be true or false, not {self.sync_timers!r}")

    # -- derived sizes --------------------------------------------------------

    def interaction_size(self, tables: int) -> int:
        """Width of the top MLP's input for ``tables`` embedding tables."""
        f = tables + 1
        pairs = f * (f + 1) // 2 if self.interaction_itself else f * (f - 1) // 2
        return self.embedding_dim + pairs

    @property
    def state_columns(self) -> int:
        """Optimizer-state values stored beside each embedding row (row-wise Adagrad: 1)."""
        return 1 if self.optimizer == "adagrad" else 0

    @property
    def element_bytes(self) -> int:
        return 8 if self.dtype == "float64" else 4

    @property
    def row_bytes(self) -> int:
        """Bytes of one embedding row with its optimizer state (what gather and scatter move)."""
        return (self.embedding_dim + self.state_columns) * self.element_bytes

    def modes(self) -> tuple:
        """The concrete modes this config runs, in order."""
        if self.mode == "compare":
            return ("hybrid", "hotline")
        if self.mode == "all":
            return ("hybrid", "hybrid-dedup", "device", "hotline")
        return (self.mode,)

    # -- presets ---------------------------------------------------------------

    @classmethod
    def demo(cls, **overrides) -> "TrainConfig":
        """The scaled-down preset of ``hotline train`` with no arguments (about a minute on 2 cores)."""
        base = dict(embedding_dim=16, bottom_mlp=(64, 32, 16), top_mlp=(64, 32, 1),
                    batch_size=256, eval_batch_size=2048, lr=0.1, steps=400,
                    learn_fraction=0.05, hot_budget_bytes=2 * 2**20,
                    synthetic_samples=115_000, synthetic_table_scale=0.01, test_fraction=0.1)
        base.update(overrides)
        return cls(**base)

    # -- dict / YAML ------------------------------------------------------------

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["bottom_mlp"] = list(self.bottom_mlp)
        d["top_mlp"] = list(self.top_mlp)
        return d

    @classmethod
    def from_dict(cls, data: dict | None, base: "TrainConfig | None" = None) -> "TrainConfig":
        """Build a config from a (possibly partial) dict; missing fields come from ``base``
        (the defaults if ``None``)."""
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ConfigError(f"a train config must be a mapping, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(f"unknown train config field {key!r} (known: {', '.join(sorted(known))})")
        if base is None:
            return cls(**data)
        return dataclasses.replace(base, **data)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, base: "TrainConfig | None" = None) -> "TrainConfig":
        return cls.from_dict(parse_yaml(text, "train config"), base)

    @classmethod
    def load(cls, path: str | Path | None, base: "TrainConfig | None" = None) -> "TrainConfig":
        """Read a YAML file; ``None`` gives ``base`` (or the defaults)."""
        if path is None:
            return base if base is not None else cls()
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"train config file {str(path)!r} does not exist")
        return cls.from_yaml(path.read_text(), base)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml())

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)
