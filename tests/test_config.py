"""The config object: defaults, YAML round trip, and rejected bad values."""

import dataclasses

import pytest

from hotline.config import ConfigError, CounterArrayConfig, HotlineConfig, KeySpaceConfig


def test_default_derived_sizes():
    cfg = HotlineConfig()
    assert cfg.keys.key_bits == cfg.keys.table_bits + cfg.keys.row_bits
    assert 2 ** cfg.keys.table_bits >= cfg.keys.tables
    assert cfg.counter.counters == 2 ** cfg.counter.log2_counters
    assert cfg.counter.counter_max == 2 ** cfg.counter.counter_bits - 1
    assert cfg.counter.hh_entries == cfg.counter.hh_sets * cfg.counter.hh_ways
    assert cfg.reorder.beats_per_sample * cfg.reorder.lanes >= cfg.reorder.keys_per_sample


def test_yaml_round_trip(tmp_path):
    cfg = HotlineConfig().replace(counter={"lanes": 2, "depth": 1, "threshold": 3},
                                  keys={"tables": 7}, hash_seed=1234)
    path = tmp_path / "hw.yaml"
    cfg.save(path)
    again = HotlineConfig.load(path)
    assert again == cfg
    assert again.counter.lanes == 2 and again.keys.tables == 7 and again.hash_seed == 1234
    assert HotlineConfig.from_yaml(cfg.to_yaml()) == cfg


def test_partial_yaml_takes_defaults():
    cfg = HotlineConfig.from_yaml("counter:\n  lanes: 1\n")
    assert cfg.counter.lanes == 1
    assert cfg.counter.depth == CounterArrayConfig().depth
    assert cfg.keys == KeySpaceConfig()
    assert HotlineConfig.from_yaml("") == HotlineConfig()


def test_frozen():
    cfg = HotlineConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.counter.lanes = 3


@pytest.mark.parametrize("section, values, message", [
    ("counter", {"lanes": 0}, "counter.lanes must be at least 1"),
    ("counter", {"counter_bits": 0}, "counter.counter_bits must be at least 1"),
    ("counter", {"counter_bits": 4, "threshold": 16}, "does not fit in counter.counter_bits"),
    ("counter", {"hh_sets": 1000}, "counter.hh_sets must be a power of two"),
    ("counter", {"banks": 3}, "counter.banks must be a power of two"),
    ("counter", {"log2_counters": 2, "banks": 8}, "exceeds the 2**log2_counters"),
    ("counter", {"fifo_depth": 4, "lanes": 4}, "fifo_depth 4 must be at least"),
    ("counter", {"threshold": 0}, "counter.threshold must be at least 1"),
    ("keys", {"tables": 65}, "keys.tables must be at most 64"),
    ("keys", {"row_bits": 33}, "keys.row_bits must be at most 32"),
    ("reorder", {"max_batch_keys": 1000}, "reorder.max_batch_keys must be a power of two"),
    ("gather", {"data_bits": 96}, "gather.data_bits must be a power of two"),
    ("gather", {"data_bits": 1024}, "gather.data_bits must be at most 512"),
])
def test_rejects_bad_values(section, values, message):
    with pytest.raises(ConfigError, match=message.replace("*", r"\*")):
        HotlineConfig().replace(**{section: values})


def test_rejects_wrong_types_and_unknown_fields():
    with pytest.raises(TypeError, match="counter.lanes must be an integer"):
        HotlineConfig().replace(counter={"lanes": 2.5})
    with pytest.raises(TypeError, match="counter.lanes must be an integer"):
        HotlineConfig().replace(counter={"lanes": True})
    with pytest.raises(ConfigError, match="unknown field counter.lane"):
        HotlineConfig.from_yaml("counter:\n  lane: 2\n")
    with pytest.raises(ConfigError, match="unknown config section or field 'countr'"):
        HotlineConfig.from_yaml("countr: {}\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        HotlineConfig.from_yaml("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        HotlineConfig.from_yaml("counter: [\n")
    with pytest.raises(TypeError, match="counter must be a CounterArrayConfig"):
        HotlineConfig(counter={"lanes": 2})


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        HotlineConfig.load(tmp_path / "nope.yaml")
