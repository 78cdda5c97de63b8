"""Hardware profiles: shipped YAML, complete configs, selectable wherever a config is."""

import pytest

from hotline.cli import main
from hotline.config import ConfigError, HotlineConfig
from hotline.profiles import _profile_from_text, load_profile, profile_names


def test_shipped_profiles():
    names = profile_names()
    assert "ecp5-85f" in names
    assert any(load_profile(n).target.vendor == "xilinx" for n in names)


def test_ecp5_profile_is_the_default_config():
    prof = load_profile("ecp5-85f")
    assert prof.config == HotlineConfig()
    assert prof.target.device == "LFE5U-85F" and prof.target.speed == "6"
    assert prof.target.clock_mhz >= 100 and prof.target.max_utilisation <= 0.8
    assert "ulx3s-85f" in prof.target.boards


@pytest.mark.parametrize("name", profile_names())
def test_profiles_are_complete(name):
    """Every section and field is written out: the file alone says what is built."""
    import yaml
    from hotline.profiles import PROFILE_DIR
    raw = yaml.safe_load((PROFILE_DIR / f"{name}.yaml").read_text())["config"]
    full = load_profile(name).config.to_dict()
    assert set(raw) == set(full)
    for section, values in full.items():
        if isinstance(values, dict):
            assert set(raw[section]) == set(values), f"{name}: {section} is not complete"
    assert load_profile(name).placement, f"{name} says nothing of where its structures live"


def test_datacenter_profile_outgrows_the_ecp5():
    dc = next(load_profile(n) for n in profile_names() if load_profile(n).target.vendor == "xilinx")
    ecp5 = load_profile("ecp5-85f").config
    assert dc.config.counter.counters > ecp5.counter.counters
    assert dc.config.reorder.max_batch_keys > ecp5.reorder.max_batch_keys
    assert dc.config.gather.data_bits >= 256
    # the 256 MiB hot budget's 4 Mi rows do not fit on chip: the profile says where they live
    assert any("DRAM" in v for v in dc.placement.values())


def test_unknown_profile_is_one_line():
    with pytest.raises(ConfigError, match="unknown profile 'nope' \\(known: .*ecp5-85f"):
        load_profile("nope")


@pytest.mark.parametrize("text, message", [
    ("- a list", "must be a mapping"),
    ("target: {vendor: lattice}\n", "needs a 'config' mapping"),
    ("config: {}\n", "needs a 'target' mapping"),
    ("config: {}\ntarget: {vendor: lattice}\nextra: 1\n", "unknown keys"),
    ("config: {}\ntarget: {vendor: altera, family: x, device: d, package: p, speed: 1, "
     "clock_mhz: 100}\n", "target.vendor"),
    ("config: {}\ntarget: {vendor: lattice, family: ecp5, device: d, package: p, speed: 6, "
     "clock_mhz: 0}\n", "target.clock_mhz"),
    ("config: {counter: {lanes: 0}}\ntarget: {vendor: lattice, family: ecp5, device: d, "
     "package: p, speed: 6, clock_mhz: 100}\n", "counter.lanes"),
    ("config: {}\ntarget: {vendor: lattice, colour: red}\n", "bad target"),
])
def test_bad_profile_text(text, message):
    with pytest.raises(ConfigError, match=message):
        _profile_from_text("t", text)


def test_cli_profile_option(capsys):
    assert main(["config", "--profile", "ecp5-85f"]) == 0
    assert HotlineConfig.from_yaml(capsys.readouterr().out) == HotlineConfig()
    dc = next(n for n in profile_names() if n != "ecp5-85f")
    assert main(["config", "--profile", dc]) == 0
    assert HotlineConfig.from_yaml(capsys.readouterr().out) == load_profile(dc).config
    assert main(["config", "--profile", "nope"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown profile 'nope'" in err


def test_cli_profile_and_config_are_exclusive(tmp_path, capsys):
    path = tmp_path / "hw.yaml"
    path.write_text("counter:\n  lanes: 2\n")
    with pytest.raises(SystemExit):
        main(["config", "--profile", "ecp5-85f", "-c", str(path)])
    assert "not allowed with" in capsys.readouterr().err


def test_verilog_of_a_profile(tmp_path):
    out = tmp_path / "v"
    assert main(["verilog", "gather", "--profile", "ecp5-85f", "-o", str(out) + "/"]) == 0
    assert "module hotline_gather" in (out / "hotline_gather.v").read_text()
