"""Block-RAM estimates read off the RTL agree with what yosys maps, on small configs."""

import re
import subprocess

import pytest

from hotline.config import HotlineConfig
from hotline.fpga.estimate import design_memories, ecp5_memory_estimate

SMALL = HotlineConfig().replace(
    keys={"tables": 4, "row_bits": 16},
    counter={"log2_counters": 10, "banks": 2, "hh_sets": 128, "hh_ways": 2, "depth": 2},
    reorder={"hotmap_log2_buckets": 6, "max_batch_keys": 256, "max_batch_samples": 64,
             "keys_per_sample": 6},
    gather={"data_bits": 64, "max_outstanding": 4, "rbuf_beats": 64, "max_row_bytes": 128},
)


def test_design_memories_reads_ports():
    from hotline.rtl.top import HotlineTop
    mems = design_memories(HotlineTop(SMALL))
    rows = [m for m in mems if m.name.startswith("row")]
    assert len(rows) == SMALL.counter.depth * SMALL.counter.banks
    assert all(m.depth == 2 ** 10 // 2 and m.width == SMALL.counter.counter_bits for m in rows)
    assert all(m.writes >= 1 and m.sync_reads + m.async_reads >= 1 for m in mems)


@pytest.mark.fpga
@pytest.mark.parametrize("unit", ["counter", "reorder", "gather", "top"])
def test_estimate_matches_yosys(unit, tmp_path):
    from hotline.fpga.boards import toolchain_env
    from hotline.rtl import build_unit, to_verilog
    comp = build_unit(unit, SMALL)
    est = ecp5_memory_estimate(comp)
    (tmp_path / "u.v").write_text(to_verilog(build_unit(unit, SMALL), "u"))
    env = toolchain_env()
    proc = subprocess.run([env["YOSYS"], "-q", "-l", "y.log", "-p",
                           "read_verilog -sv u.v; synth_ecp5 -top u -run begin:map_ffs; stat"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = (tmp_path / "y.log").read_text()
    stat = log[log.rfind("=== u ==="):]
    m = re.search(r"^\s+(\d+)\s+DP16KD\s*$", stat, re.M)
    synth = int(m.group(1)) if m else 0
    detail = [(mm.name, mm.depth, mm.width, kind, n) for mm, kind, n in est["memories"]]
    assert est["dp16kd"] == synth, f"estimate {est['dp16kd']} != yosys {synth}: {detail}"
