"""scripts/device_check.sh, the prepared GPU check, runs on the CPU at tiny sizes and writes
the JSON the GPU run will write; and the helpers its figures come from are right."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hotline.host.metrics import hotline_gain, interval_overlap

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "device_check.sh"


def run_check(out, *args, env=None, timeout=150):
    env = dict(os.environ if env is None else env, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    return subprocess.run(["bash", str(SCRIPT), str(out), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)


def site_packages() -> str:
    import torch
    return str(Path(torch.__file__).resolve().parent.parent)


#: embedding dim of the run (not the default 16, so the check sees --dim reach the trainers)
DIM = 8


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("device_check")
    # the import check of the script must not take the checkout's hotline/ folder for the package:
    # run it with a Python that has no site hooks (so no editable install), only the site-packages
    # (torch, numpy, yaml) on PYTHONPATH: the script must then lay out the package itself
    wrapper = out / "python-no-site"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ, PYTHONPATH=site_packages())
    r = subprocess.run(["bash", str(SCRIPT), str(out / "run"), "--device", "cpu", "--tiny",
                        "--batch-sizes", "64,128", "--steps", "12", "--parity-steps", "8",
                        "--timeline-steps", "4", "--no-torchrec", "--dim", str(DIM)],
                       capture_output=True, text=True, cwd=ROOT, timeout=150,
                       env=dict(env, PYTHON=str(wrapper), OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out / "run", json.loads((out / "run" / "device_check.json").read_text()), r.stdout


def test_device_check_writes_its_json(report):
    out, rep, stdout = report
    assert rep["status"] == "complete" and rep["skipped"] == []
    assert rep["env"]["device"] == "cpu" and rep["env"]["torch"]
    assert "done: parity ok" in stdout and (out / "device_check.log").is_file()
    # parity: every mode against hybrid, both optimizers, all within tolerance, params moved
    assert {(p["optimizer"], p["mode"]) for p in rep["parity"]} == {
        (o, m) for o in ("sgd", "adagrad") for m in ("hybrid-dedup", "device", "hotline")}
    assert rep["parity_ok"] and all(p["ok"] and p["max_abs_diff"] <= 1e-9 and p["moved"] > 1e-3
                                    for p in rep["parity"])
    assert [t["batch_size"] for t in rep["throughput"]] == [64, 128]
    assert f"dim {DIM}, bottom (64, 32, {DIM})" in rep["config"]


def test_device_check_bytes_and_gain(report):
    _, rep, _ = report
    for t in rep["throughput"]:
        modes = t["modes"]
        assert set(modes) == {"hybrid", "hybrid-dedup", "device", "hotline"}, modes
        for m, r in modes.items():
            assert "error" not in r, r.get("traceback")
            for w in ("whole_run", "after_learning"):
                assert r[w]["samples_per_s"] > 0
            assert r["whole_run"]["samples"] == t["steps"] * t["batch_size"]
            assert r["after_learning"]["samples"] == (t["steps"] - t["learn_steps"]) * t["batch_size"]
            assert 0.5 < r["test_auc"] <= 1
        # hybrid ships one 26 x DIM fp32 row per lookup; the de-duplicating hybrid its unique rows
        assert modes["hybrid"]["whole_run"]["h2d_row_bytes_per_sample"] == 26 * DIM * 4
        dd = modes["hybrid-dedup"]["whole_run"]["h2d_row_bytes_per_sample"]
        assert 0 < dd < 26 * DIM * 4
        assert modes["device"]["whole_run"]["h2d_row_bytes_per_sample"] == 0
        ho = modes["hotline"]
        assert ho["whole_run"]["h2d_hot_load_bytes"] == ho["hot_rows"] * DIM * 4 > 0
        assert ho["after_learning"]["h2d_hot_load_bytes"] == ho["whole_run"]["h2d_hot_load_bytes"]
        # the gain is the product of its causes, in both windows
        for w in ("whole_run", "after_learning"):
            for kind in ("all_bytes", "row_bytes"):
                g = t["gain"][w][kind]
                s = g["split"]
                assert math.isclose(s["dedup"] * s["hot_rows_on_device"] * s["hot_table_load"],
                                    g["hotline_gain_over_hybrid"], rel_tol=5e-3), g
                assert s["dedup"] > 1 and 0 < s["hot_table_load"] <= 1
        ov = ho["overlap"]
        assert len(ov["timeline_steps"]) == 4
        for k in ("gather_hidden_by_popular", "gather_hidden_by_main_work", "popular_busy_with_gather"):
            assert ov[k] is None or 0 <= ov[k] <= 1, (k, ov[k])
        assert ov["gather_during_popular_s"] <= ov["gather_during_main_work_s"] + 1e-9


def test_device_check_plots(report):
    out, rep, _ = report
    pytest.importorskip("matplotlib")
    assert rep["throughput_plot"] == "throughput.png" and (out / "throughput.png").stat().st_size > 0
    for t in rep["throughput"]:
        name = t["modes"]["hotline"]["timeline_plot"]
        assert name == f"timeline_b{t['batch_size']}.png" and (out / name).stat().st_size > 0


def test_device_check_bad_arguments(tmp_path):
    r = run_check("--tiny")
    assert r.returncode == 2 and "usage" in r.stderr
    r = run_check(tmp_path, "--device", "cpu", "--dim", "0")
    assert r.returncode == 2 and "--dim must be positive" in r.stdout + r.stderr
    r = run_check(tmp_path, "--device", "cpu", "--modes", "hybrid,bogus")
    assert r.returncode == 2 and "unknown modes" in r.stdout + r.stderr
    import torch
    if not torch.cuda.is_available():
        r = run_check(tmp_path, "--device", "cuda")
        assert r.returncode == 2 and "is_available() is False" in r.stdout + r.stderr


def test_interval_overlap():
    assert interval_overlap([(0, 2)], [(1, 3)]) == 1
    assert interval_overlap([(0, 1), (2, 3)], [(0.5, 2.5)]) == 1
    assert interval_overlap([(0, 2), (1, 3)], [(0, 10)]) == 3      # overlapping intervals merge
    assert interval_overlap([(0, 1)], [(1, 2)]) == 0
    assert interval_overlap([], [(0, 1)]) == 0


def test_hotline_gain_splits_into_its_causes():
    w = lambda total, rows, load=0.0: {"h2d_bytes_per_sample": total, "h2d_row_bytes_per_sample": rows,  # noqa: E731
                                       "h2d_hot_load_bytes_per_sample": load}
    g = hotline_gain(w(1800, 1600), w(600, 400), w(300, 100, load=100))
    a = g["all_bytes"]
    assert a["hotline_gain_over_hybrid"] == 6.0 and a["hotline_gain_over_hybrid_dedup"] == 2.0
    assert a["split"] == {"dedup": 3.0, "hot_rows_on_device": 3.0, "hot_table_load": 0.667}
    r = g["row_bytes"]                       # the hot-table load counts as rows
    assert r["hotline_per_sample_with_hot_load"] == 200 and r["split"]["hot_rows_on_device"] == 4.0
    assert r["hotline_gain_over_hybrid"] == 8.0
