"""The ``hotline`` command line: help, config, verilog and the learning demo."""

import subprocess
import sys

import pytest

from hotline.cli import main
from hotline.config import HotlineConfig


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for sub in ("verilog", "config", "learn"):
        assert sub in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: hotline" in capsys.readouterr().out


def test_config_round_trips(tmp_path, capsys):
    assert main(["config"]) == 0
    text = capsys.readouterr().out
    assert HotlineConfig.from_yaml(text) == HotlineConfig()
    path = tmp_path / "hw.yaml"
    path.write_text("counter:\n  lanes: 2\n")
    assert main(["config", "-c", str(path)]) == 0
    assert HotlineConfig.from_yaml(capsys.readouterr().out).counter.lanes == 2


def test_bad_config_is_one_line_error(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("counter:\n  lanes: 0\n")
    assert main(["config", "-c", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "hotline config: error: counter.lanes must be at least 1, not 0"
    assert main(["verilog", "counter", "-c", str(tmp_path / "missing.yaml")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_learn_demo_reports_quality(capsys):
    assert main(["learn", "--keys", "60000", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "hot set size" in out
    ratios = [float(line.split()[-1]) for line in out.splitlines()
              if line.strip() and line.split()[-1].replace(".", "").isdigit() and "%" in line]
    assert len(ratios) == 3 and all(0.5 < r <= 1.0 for r in ratios), out


def test_console_script_installed():
    out = subprocess.run([sys.executable, "-m", "hotline.cli", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "verilog" in out.stdout


SMALL = """\
keys: {tables: 4, row_bits: 12}
counter: {lanes: 2, depth: 2, log2_counters: 6, banks: 2, hh_sets: 8, hh_ways: 2}
reorder: {lanes: 2, keys_per_sample: 3, hotmap_log2_buckets: 4, max_batch_keys: 64, max_batch_samples: 16}
gather: {data_bits: 64}
"""

# ports a user of each unit's Verilog binds to (single-underscore names)
EXPECTED_PORTS = {
    "counter": ["clk", "rst", "keys_valid", "keys_ready", "keys_payload", "estimates_valid",
                "readout_valid", "readout_ready"],
    "reorder": ["clk", "rst", "popular_valid", "non_popular_valid", "cold_valid", "status_valid"],
    "gather": ["clk", "rst", "m_axi_arvalid", "m_axi_araddr", "m_axi_rdata", "m_axi_awvalid",
               "m_axi_wstrb", "m_axi_bresp", "keys_valid", "done_valid"],
}


def test_verilog_of_every_unit(tmp_path, capsys):
    import re
    cfg = tmp_path / "small.yaml"
    cfg.write_text(SMALL)
    out = tmp_path / "v"
    assert main(["verilog", "all", "-c", str(cfg), "-o", str(out)]) == 0
    for unit, ports in EXPECTED_PORTS.items():
        text = (out / f"hotline_{unit}.v").read_text()
        header = re.search(rf"module hotline_{unit}\(([^;]*)\);", text)
        assert header, f"no module hotline_{unit}"
        names = {p.strip() for p in header.group(1).split(",")}
        missing = [p for p in ports if p not in names]
        assert not missing, f"{unit}: ports {missing} missing from {sorted(names)}"
    # one unit to standard output
    assert main(["verilog", "gather", "-c", str(cfg)]) == 0
    assert "module hotline_gather(" in capsys.readouterr().out
