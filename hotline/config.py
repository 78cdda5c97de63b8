"""The one configuration object that holds every size of the accelerator.

The RTL generators, the golden models, the host driver and the testbenches all
take a :class:`HotlineConfig`; no other module defines a size of its own.  A
config is a tree of frozen dataclasses, one section per unit, checked on
construction (a bad value raises :class:`ValueError` or :class:`TypeError` with
a one-line message naming the field) and round-tripped through YAML.

Each section belongs to one unit; when a unit needs a new size, add a field to
its own section (with a default and a check) rather than a constant in the
unit's module.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ConfigError",
    "KeySpaceConfig",
    "CounterArrayConfig",
    "ReorderConfig",
    "GatherConfig",
    "HotlineConfig",
    "default_config",
]


class ConfigError(ValueError):
    """A configuration value is out of range or inconsistent."""


def _is_pow2(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0


def _check_int(section: str, name: str, value: Any, *, lo: int | None = None,
               hi: int | None = None, pow2: bool = False) -> None:
    where = f"{section}.{name}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where} must be an integer, not {type(value).__name__} {value!r}")
    if lo is not None and value < lo:
        raise ConfigError(f"{where} must be at least {lo}, not {value}")
    if hi is not None and value > hi:
        raise ConfigError(f"{where} must be at most {hi}, not {value}")
    if pow2 and not _is_pow2(value):
        raise ConfigError(f"{where} must be a power of two, not {value}")


def parse_yaml(text: str, what: str):
    """Parse YAML text; a syntax error becomes a one-line :class:`ConfigError` naming ``what``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} is not valid YAML: {str(exc).splitlines()[0]}") from None


def _clog2(n: int) -> int:
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0


@dataclass(frozen=True)
class KeySpaceConfig:
    """The keys the accelerator handles: a key is (table t, row r).

    Parameters
    ----------
    tables : int
        Number of embedding tables (1 to 64).
    row_bits : int
        Width of a row index (up to 32).

    Members
    -------
    table_bits : int
        Width of a table index (at least 1).
    key_bits : int
        Width of a packed key, ``table << row_bits | row``.
    """

    tables: int = 26
    row_bits: int = 32

    def __post_init__(self):
        _check_int("keys", "tables", self.tables, lo=1, hi=64)
        _check_int("keys", "row_bits", self.row_bits, lo=1, hi=32)

    @property
    def table_bits(self) -> int:
        return max(1, _clog2(self.tables))

    @property
    def key_bits(self) -> int:
        return self.table_bits + self.row_bits


@dataclass(frozen=True)
class CounterArrayConfig:
    """The popularity counter array: a count-min sketch plus a heavy-hitter table.

    The defaults are the ``ecp5-85f`` bring-up sizes: 4 sketch rows of 2**14
    9-bit counters and 1024 x 3 heavy hitters in 8 banks, 64 of an
    ECP5-85F's 208 DP16KD blocks (one 2048 x 9 block per row and bank, four
    512 x 36 blocks per bank for its 128 sets of three 47-bit entries; the
    queues are LUT RAM; ``hotline.fpga.resources``), so the counter array,
    the reorder unit, the gather DMA and a top fit the chip together.  On
    Criteo-shaped Zipf data they find hot sets covering 0.976 (N = 3,072,
    the readout), 0.93 (10x) and 0.95 (100x) of what the exact top-N covers
    (``scripts/bench_counter_quality.py``; 2**16 counters and 1024 x 4 heavy
    hitters, 176 blocks, reach 0.98-0.99).

    Parameters
    ----------
    lanes : int
        W, keys per input beat.
    depth : int
        D, rows of the count-min sketch (independent hashes).
    log2_counters : int
        S, each sketch row has ``2**S`` counters.
    counter_bits : int
        C, width of a saturating counter (and of a heavy-hitter count).
    banks : int
        Key-hashed shards of the sketch and of the heavy-hitter table (a power
        of two, at most ``2**S`` and at most ``hh_sets``).  The shard of a key
        is the top bits of every index of that key, so the shards are
        independent and the hardware can update them in parallel.
    hh_sets, hh_ways : int
        Geometry of the heavy-hitter table (sets x ways of key and count).
    threshold : int
        A key is admitted to the heavy-hitter table once its estimate
        reaches this value; it must fit in ``counter_bits``.
    fifo_depth : int
        Depth of each (lane, bank) input queue of the RTL and the number of
        QUERY beats it may have in flight (a power of two, at least
        ``2 * lanes``); it does not change the results.
    conservative_update : bool
        Conservative update (Estan and Varghese): a key raises only its
        counters that are below its new estimate, ``c = max(c, min(c) + 1)``,
        instead of incrementing all ``D``.  Estimates stay upper bounds and
        are much tighter on skewed data, at no extra memory.
    """

    lanes: int = 4
    depth: int = 4
    log2_counters: int = 14
    counter_bits: int = 9
    banks: int = 8
    hh_sets: int = 1024
    hh_ways: int = 3
    threshold: int = 8
    fifo_depth: int = 16
    conservative_update: bool = True

    def __post_init__(self):
        s = "counter"
        if not isinstance(self.conservative_update, bool):
            raise TypeError(f"counter.conservative_update must be true or false, "
                            f"not {self.conservative_update!r}")
        _check_int(s, "lanes", self.lanes, lo=1, hi=16)
        _check_int(s, "depth", self.depth, lo=1, hi=8)
        _check_int(s, "log2_counters", self.log2_counters, lo=1, hi=24)
        _check_int(s, "counter_bits", self.counter_bits, lo=1, hi=32)
        _check_int(s, "banks", self.banks, lo=1, pow2=True)
        _check_int(s, "hh_sets", self.hh_sets, lo=1, pow2=True)
        _check_int(s, "hh_ways", self.hh_ways, lo=1, hi=16)
        _check_int(s, "threshold", self.threshold, lo=1)
        _check_int(s, "fifo_depth", self.fifo_depth, lo=2, pow2=True)
        if self.threshold > self.counter_max:
            raise ConfigError(
                f"counter.threshold {self.threshold} does not fit in counter.counter_bits "
                f"{self.counter_bits} (largest count {self.counter_max})")
        if self.banks > self.counters:
            raise ConfigError(f"counter.banks {self.banks} exceeds the 2**log2_counters = "
                              f"{self.counters} counters of a sketch row")
        if self.banks > self.hh_sets:
            raise ConfigError(f"counter.banks {self.banks} exceeds counter.hh_sets {self.hh_sets}")
        if self.fifo_depth < 2 * self.lanes:
            raise ConfigError(f"counter.fifo_depth {self.fifo_depth} must be at least "
                              f"2 * lanes = {2 * self.lanes}")

    @property
    def counters(self) -> int:
        return 1 << self.log2_counters

    @property
    def counter_max(self) -> int:
        return (1 << self.counter_bits) - 1

    @property
    def bank_bits(self) -> int:
        return _clog2(self.banks)

    @property
    def hh_set_bits(self) -> int:
        return _clog2(self.hh_sets)

    @property
    def hh_entries(self) -> int:
        return self.hh_sets * self.hh_ways


@dataclass(frozen=True)
class ReorderConfig:
    """The micro-batch reorder unit and its hot map.

    Parameters
    ----------
    lanes : int
        W, keys per input beat.
    keys_per_sample : int
        T, sparse keys per sample (one per table in DLRM).
    hotmap_log2_buckets : int
        Each of the ``hotmap_hashes`` cuckoo tables has ``2**log2_buckets``
        buckets.
    hotmap_ways : int
        Slots per cuckoo bucket.
    hotmap_hashes : int
        Number of cuckoo hash functions (candidate buckets per key).
    max_batch_keys : int
        Capacity of the de-duplication store: the most unique cold keys a
        batch may have.
    max_batch_samples : int
        The most samples a batch may have.
    dedupe_ways : int
        Slots per bucket of the de-duplication hash table (a power of two;
        the unit compares a whole bucket per probe).
    dedupe_epoch_bits : int
        Width of the batch tag of a de-duplication entry.  A new batch just
        bumps the tag (an O(1) clear); every ``2**bits - 1`` batches the unit
        wipes the table once (``dedupe_buckets`` cycles of the de-dup engine) so an old
        tag can never alias.
    sample_buffer : int
        Depth of each of the popular and non-popular output buffers, in
        samples (at least 2 for full rate).
    dedupe_queue : int
        Beats of lookup results the unit holds while the one-key-per-cycle
        de-dup engine catches up (a block-RAM FIFO of beats and one of beats
        with cold keys); it absorbs bursts of cold keys.

    The defaults are the ``ecp5-85f`` bring-up sizes: the whole unit in 56 of
    the ECP5-85F's 208 DP16KD blocks (``hotline.fpga.resources.reorder_memories``):
    a 4096-slot hot map (4 hashes x 1024 buckets x 1 way, two read copies),
    a de-dup table for 4096 distinct cold keys a batch (2048 buckets x 4
    ways of 54 bits), 512-beat queues; batches up to 1024 samples.  A 1024 x
    26 Criteo-shaped Zipf 1.05 batch has about 3300 distinct cold keys.

    Members
    -------
    hotmap_buckets, hotmap_capacity : int
        Buckets per cuckoo table; slots in the whole hot map.
    slot_bits : int
        Width of a hot slot.
    beats_per_sample : int
        ``ceil(T / W)``.
    dedupe_slots, dedupe_buckets : int
        Size of the de-duplication table: the power of two at least
        ``2 * max_batch_keys`` (load at most one half), at least
        ``max_batch_keys + lanes`` and at least two buckets.
    u_bits, sid_bits, index_bits : int
        Widths of a cold-key number ``u``, a sample id, a remapped key index.
    """

    lanes: int = 4
    keys_per_sample: int = 26
    hotmap_log2_buckets: int = 9
    hotmap_ways: int = 1
    hotmap_hashes: int = 4
    max_batch_keys: int = 4096
    max_batch_samples: int = 1024
    dedupe_ways: int = 4
    dedupe_epoch_bits: int = 5
    sample_buffer: int = 4
    dedupe_queue: int = 512

    def __post_init__(self):
        s = "reorder"
        _check_int(s, "lanes", self.lanes, lo=1, hi=32)
        _check_int(s, "keys_per_sample", self.keys_per_sample, lo=1, hi=64)
        _check_int(s, "hotmap_log2_buckets", self.hotmap_log2_buckets, lo=1, hi=24)
        _check_int(s, "hotmap_ways", self.hotmap_ways, lo=1, hi=16, pow2=True)
        _check_int(s, "hotmap_hashes", self.hotmap_hashes, lo=2, hi=4)
        _check_int(s, "max_batch_keys", self.max_batch_keys, lo=1, hi=1 << 24, pow2=True)
        _check_int(s, "max_batch_samples", self.max_batch_samples, lo=1, hi=1 << 24, pow2=True)
        _check_int(s, "dedupe_ways", self.dedupe_ways, lo=1, hi=16, pow2=True)
        _check_int(s, "dedupe_epoch_bits", self.dedupe_epoch_bits, lo=2, hi=16)
        _check_int(s, "sample_buffer", self.sample_buffer, lo=1, hi=64)
        _check_int(s, "dedupe_queue", self.dedupe_queue, lo=8, hi=1 << 16)

    @property
    def hotmap_buckets(self) -> int:
        return 1 << self.hotmap_log2_buckets

    @property
    def hotmap_capacity(self) -> int:
        """Slots in the hot map: the most hot keys it can hold."""
        return self.hotmap_hashes * self.hotmap_buckets * self.hotmap_ways

    @property
    def slot_bits(self) -> int:
        return max(1, _clog2(self.hotmap_capacity))

    @property
    def beats_per_sample(self) -> int:
        return -(-self.keys_per_sample // self.lanes)

    @property
    def dedupe_slots(self) -> int:
        need = max(2 * self.max_batch_keys, self.max_batch_keys + self.lanes, 2 * self.dedupe_ways)
        return 1 << _clog2(need)

    @property
    def dedupe_buckets(self) -> int:
        return self.dedupe_slots // self.dedupe_ways

    @property
    def u_bits(self) -> int:
        return max(1, _clog2(self.max_batch_keys))

    @property
    def sid_bits(self) -> int:
        return max(1, _clog2(self.max_batch_samples))

    @property
    def index_bits(self) -> int:
        return max(self.slot_bits, self.u_bits)


@dataclass(frozen=True)
class GatherConfig:
    """The embedding gather/scatter DMA (an AXI4 master).

    Parameters
    ----------
    data_bits : int
        AXI data width (64 to 512).  The default, 64, is the bus of the
        ``ecp5-85f`` bring-up target (on-chip RAM or SDRAM behind it); wider
        buses suit a PCIe card's DRAM.
    addr_bits : int
        AXI address width.
    id_bits : int
        AXI ID width (the unit issues every burst with ID 0, so the memory
        keeps reads, and writes, in order).
    max_outstanding : int
        Read bursts in flight at once (the hardware's capacity; a runtime
        port may lower it).  Also bounds the write bursts awaiting a response.
        The default, 32, keeps the R channel above 0.9 beats per cycle at 64
        cycles of read latency for 64 B rows on a 64- or 128-bit bus
        (``scripts/bench_gather.py``); one-beat rows (64 B on 512 bits) do
        not reach it even at 128 (0.87 steady, measured).
    max_burst_beats : int
        Longest burst the unit issues (AXI4 INCR allows 256).
    max_row_bytes : int
        Largest row size in bytes (the runtime ``row_bytes`` is checked
        against it).
    rbuf_beats : int
        Depth of the read data buffer in bus words.  Every read burst reserves
        its space here before it is issued, so R data can never overflow; it
        must hold one whole row (rows are written only once all of their data
        has arrived without error) and should cover the memory latency for
        full speed.
    stride_bits : int
        Width of a table's row stride in bytes.

    Members
    -------
    data_bytes : int
        Bytes per bus word.
    max_row_beats : int
        Most bus words one row can span (an unaligned row spans one more).
    """

    data_bits: int = 64
    addr_bits: int = 64
    id_bits: int = 4
    max_outstanding: int = 32
    max_burst_beats: int = 16
    max_row_bytes: int = 1024
    rbuf_beats: int = 256
    stride_bits: int = 32

    def __post_init__(self):
        s = "gather"
        _check_int(s, "data_bits", self.data_bits, lo=64, hi=512, pow2=True)
        _check_int(s, "addr_bits", self.addr_bits, lo=32, hi=64)
        _check_int(s, "id_bits", self.id_bits, lo=1, hi=16)
        _check_int(s, "max_outstanding", self.max_outstanding, lo=1, hi=256)
        _check_int(s, "max_burst_beats", self.max_burst_beats, lo=1, hi=256)
        _check_int(s, "max_row_bytes", self.max_row_bytes, lo=1, hi=1 << 16)
        _check_int(s, "rbuf_beats", self.rbuf_beats, lo=2, hi=1 << 16)
        _check_int(s, "stride_bits", self.stride_bits, lo=1, hi=48)
        if self.rbuf_beats < self.max_row_beats:
            raise ConfigError(
                f"gather.rbuf_beats {self.rbuf_beats} cannot hold one row of "
                f"gather.max_row_bytes {self.max_row_bytes} at {self.data_bits} bits "
                f"(an unaligned row spans up to {self.max_row_beats} words)")

    @property
    def data_bytes(self) -> int:
        return self.data_bits // 8

    @property
    def max_row_beats(self) -> int:
        return -(-(self.max_row_bytes + self.data_bytes - 1) // self.data_bytes)


@dataclass(frozen=True)
class HotlineConfig:
    """Every size of the accelerator, one section per unit.

    Parameters
    ----------
    keys : KeySpaceConfig
    counter : CounterArrayConfig
    reorder : ReorderConfig
    gather : GatherConfig
    hash_seed : int
        Seed from which every hash function (the H3 matrices of the counter
        array, the cuckoo hashes of the hot map) is derived; see
        :mod:`hotline.hashing`.
    """

    keys: KeySpaceConfig = field(default_factory=KeySpaceConfig)
    counter: CounterArrayConfig = field(default_factory=CounterArrayConfig)
    reorder: ReorderConfig = field(default_factory=ReorderConfig)
    gather: GatherConfig = field(default_factory=GatherConfig)
    hash_seed: int = 0x5EED_0F_407

    def __post_init__(self):
        for name, section_cls in _SECTIONS.items():
            value = getattr(self, name)
            if not isinstance(value, section_cls):
                raise TypeError(f"{name} must be a {section_cls.__name__}, not {type(value).__name__}")
        _check_int("config", "hash_seed", self.hash_seed, lo=0, hi=(1 << 64) - 1)

    # -- dict / YAML ---------------------------------------------------------

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> "HotlineConfig":
        """Build a config from a (possibly partial) nested dict; missing fields take defaults."""
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ConfigError(f"a config must be a mapping, not {type(data).__name__}")
        kwargs = {}
        known = {f.name: f for f in fields(cls)}
        for name, value in data.items():
            if name not in known:
                raise ConfigError(f"unknown config section or field {name!r} "
                                  f"(known: {', '.join(known)})")
            if name in _SECTIONS:
                kwargs[name] = _section_from_dict(_SECTIONS[name], name, value)
            else:
                kwargs[name] = value
        return cls(**kwargs)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> "HotlineConfig":
        return cls.from_dict(parse_yaml(text, "config"))

    @classmethod
    def load(cls, path: str | Path | None) -> "HotlineConfig":
        """Read a YAML config file; ``None`` gives the default config."""
        if path is None:
            return cls()
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        return cls.from_yaml(path.read_text())

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml())

    def replace(self, **sections) -> "HotlineConfig":
        """Return a copy with some fields replaced.

        A section may be given as a dict of the fields to change, e.g.
        ``cfg.replace(counter={"lanes": 2})``.
        """
        kwargs = {}
        for name, value in sections.items():
            current = getattr(self, name)
            if isinstance(value, dict) and dataclasses.is_dataclass(current):
                value = dataclasses.replace(current, **value)
            kwargs[name] = value
        return dataclasses.replace(self, **kwargs)


_SECTIONS = {
    "keys": KeySpaceConfig,
    "counter": CounterArrayConfig,
    "reorder": ReorderConfig,
    "gather": GatherConfig,
}


def _section_from_dict(section_cls, name: str, value: Any):
    if value is None:
        return section_cls()
    if not isinstance(value, dict):
        raise ConfigError(f"config section {name!r} must be a mapping, not {type(value).__name__}")
    known = {f.name for f in fields(section_cls)}
    for key in value:
        if key not in known:
            raise ConfigError(f"unknown field {name}.{key} (known: {', '.join(sorted(known))})")
    return section_cls(**value)


def default_config() -> HotlineConfig:
    return HotlineConfig()
