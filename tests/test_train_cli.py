"""``hotline train``: a short run writes its metrics and figures; bad input gives a one-line error."""

import argparse
import json
from pathlib import Path

import pytest

from hotline.host import train_cli

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
TINY = "embedding_dim: 4\nbottom_mlp: [8, 4]\ntop_mlp: [8, 1]\neval_batch_size: 512\n"


def parse(*argv):
    p = argparse.ArgumentParser()
    train_cli.add_arguments(p)
    return p.parse_args(list(argv))


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return str(path)


def test_short_run_writes_everything(tmp_path, tiny, capsys):
    out = tmp_path / "run"
    rc = train_cli.run(parse("--train-config", tiny, "--samples", "4000", "--table-scale", "0.001",
                             "--steps", "30", "--batch-size", "64", "--hot-budget", "64KiB",
                             "--learn-fraction", "0.2", "--device", "cpu", "--out", str(out),
                             "--no-progress"))
    assert rc == 0
    for name in ("metrics.json", "train.yaml", "hw.yaml", "loss.png", "popularity.png", "time.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    m = json.loads((out / "metrics.json").read_text())
    hy, ho = m["results"]["hybrid"], m["results"]["hotline"]
    assert hy["steps"] == ho["steps"] == 30 and len(m["loss_curves"]["hotline"]) == 30
    for r in (hy, ho):
        assert 0.0 <= r["test_auc"] <= 1.0 and 0.0 < r["test_log_loss"] < 5.0
        assert r["samples_per_s"] > 0
    # the same maths: same losses and test metrics (float32, so to rounding)
    assert abs(hy["test_auc"] - ho["test_auc"]) < 1e-4
    assert max(abs(a - b) for a, b in zip(m["loss_curves"]["hybrid"], m["loss_curves"]["hotline"])) < 1e-4
    # hybrid copies every looked-up row: T * D * 4 bytes per sample; hotline only cold rows
    t = len(m["data"]["table_sizes"])
    assert hy["h2d_row_bytes_per_sample"] == t * 4 * 4
    assert ho["hot_phase_h2d_row_bytes_per_sample"] < hy["h2d_row_bytes_per_sample"]
    assert 0.0 <= ho["popular_fraction"] <= 1.0 and ho["hot_rows"] > 0
    assert m["comparison"]["h2d_bytes_ratio_hybrid_over_hotline"] > 1
    assert ho["time_s"]["gather"] > 0 and ho["time_s"]["popular"] > 0
    printed = capsys.readouterr().out
    assert "test AUC" in printed and f"run folder: {out}" in printed


@pytest.mark.skipif(not (SHARED / "criteo_kaggle_format_sample.tsv").is_file(),
                    reason="shared/data (real Criteo rows) is absent")
def test_real_criteo_file(tmp_path, tiny):
    out = tmp_path / "criteo"
    rc = train_cli.run(parse("--data", str(SHARED / "criteo_kaggle_format_sample.tsv"),
                             "--train-config", tiny, "--batch-size", "16", "--steps", "12",
                             "--table-scale", "0.0001", "--mode", "all", "--out", str(out),
                             "--no-progress", "--no-plots"))
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["results"]) == {"hybrid", "hybrid-dedup", "device", "hotline"}
    assert m["data"]["train_samples"] == 180 and m["data"]["num_dense"] == 13


def test_detect_format():
    if not SHARED.is_dir():
        pytest.skip("shared/data is absent")
    assert train_cli.detect_format(SHARED / "avazu_sample.txt") == "avazu"
    assert train_cli.detect_format(SHARED / "criteo_kaggle_format_sample.tsv") == "criteo"
    assert train_cli.detect_format(SHARED / "criteo_sample.txt") == "criteo"


@pytest.mark.parametrize("argv,match", [
    (["--data", "/no/such/file.tsv"], "does not exist"),
    (["--train-config", "/no/such.yaml"], "does not exist"),
    (["--config", "/no/such/hw.yaml"], "does not exist"),
    (["--hot-budget", "lots"], "--hot-budget"),
    (["--backend", "gpu"], "unknown accelerator backend 'gpu'"),
    (["--batch-size", "0"], "train.batch_size"),
    (["--samples", "100", "--batch-size", "256"], "fewer than one batch"),
], ids=["data", "train-config", "hw-config", "budget", "backend", "batch", "too-few"])
def test_bad_input_is_one_line(tmp_path, capsys, argv, match):
    rc = train_cli.run(parse(*argv, "--out", str(tmp_path / "x"), "--no-progress", "--steps", "2"))
    assert rc != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hotline train: error:") and match in err[0], err
