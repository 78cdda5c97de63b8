"""Data-parallel training (2 processes, gloo, started by torchrun) equals one process on the full batch."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from hotline.host.distributed import DistContext

SEED = int(os.environ.get("HOTLINE_SEED", "11"))
MODES = ("hybrid", "device", "hotline")

SCRIPT = textwrap.dedent('''
    import sys, torch
    from hotline.host.data import synthetic_criteo
    from hotline.host.distributed import init_from_env
    from hotline.host.train_config import TrainConfig
    from hotline.host.trainer import make_trainer

    out, seed = sys.argv[1], int(sys.argv[2])
    ctx = init_from_env("cpu")
    ds = synthetic_criteo(1500, seed=seed, table_sizes=(4, 9, 40, 300, 2000, 3), num_dense=4)
    for opt in ("sgd", "adagrad"):
        cfg = TrainConfig(embedding_dim=4, bottom_mlp=(8, 4), top_mlp=(8, 1), batch_size=64,
                          lr=0.1, dtype="float64", device="cpu", steps=10, learn_fraction=0.3,
                          hot_budget_bytes=150 * 8 * 5, optimizer=opt, seed=seed, timeline_steps=0)
        for mode in sys.argv[3:]:
            tr = make_trainer(mode, cfg, ds.table_sizes, ds.num_dense, total_steps=cfg.steps, dist=ctx)
            tr.train(ds, cfg.steps)
            params = tr.parameters_cpu()
            if mode == "hotline":
                params["popular_samples"] = torch.tensor(tr.popular_samples)
                tr.close()
            params["losses"] = torch.tensor(tr.losses)
            torch.save(params, f"{out}/{mode}-{opt}-rank{ctx.rank}-of{ctx.world_size}.pt")
    ctx.close()
''')


def test_shard_ranges():
    for world in (1, 2, 3, 5):
        for n in (1, 7, 64, 65):
            ranges = [DistContext(r, world).shard(n) for r in range(world)]
            assert ranges[0][0] == 0 and ranges[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
            assert max(h - l for l, h in ranges) - min(h - l for l, h in ranges) <= 1
    with pytest.raises(ValueError, match="rank"):
        DistContext(2, 2)


def _torchrun():
    exe = Path(sys.executable).with_name("torchrun")
    return str(exe) if exe.exists() else shutil.which("torchrun")


def test_two_processes_equal_one(tmp_path):
    print(f"seed {SEED}")
    torchrun = _torchrun()
    if torchrun is None:
        pytest.skip("torchrun is not installed next to this Python")
    script = tmp_path / "dp.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    # one process (no torchrun), then two ranks under torchrun with gloo
    single = subprocess.run([sys.executable, str(script), str(tmp_path), str(SEED), *MODES],
                            env={k: v for k, v in env.items() if k not in ("WORLD_SIZE", "RANK")},
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    dp = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", str(script), str(tmp_path),
                         str(SEED), *MODES], env=env, capture_output=True, text=True, timeout=300)
    assert dp.returncode == 0, dp.stderr[-3000:]
    for opt in ("sgd", "adagrad"):
        for mode in MODES:
            one = torch.load(tmp_path / f"{mode}-{opt}-rank0-of1.pt")
            r0 = torch.load(tmp_path / f"{mode}-{opt}-rank0-of2.pt")
            r1 = torch.load(tmp_path / f"{mode}-{opt}-rank1-of2.pt")
            for k in one:
                # both ranks hold identical replicas ...
                assert torch.equal(r0[k], r1[k]), f"{mode}/{opt}: ranks disagree on {k}"
                # ... equal to one process on the full batch, up to the order of sums
                d = (r0[k].double() - one[k].double()).abs().reshape(-1)
                if d.numel():
                    i = int(d.argmax())
                    assert d[i] <= 1e-10, (f"{mode}/{opt}: {k}[{i}] differs by {d[i].item():.3e} "
                                           f"(seed {SEED})")
    hot = torch.load(tmp_path / "hotline-sgd-rank0-of1.pt")
    assert int(hot["popular_samples"]) > 0, "no popular samples: the hot path went untested"
    # training moved the rows (so the equality above compares trained parameters)
    from hotline.host.data import synthetic_criteo
    from hotline.host.train_config import TrainConfig
    from hotline.host.trainer import make_trainer
    ds = synthetic_criteo(1500, seed=SEED, table_sizes=(4, 9, 40, 300, 2000, 3), num_dense=4)
    cfg = TrainConfig(embedding_dim=4, bottom_mlp=(8, 4), top_mlp=(8, 1), dtype="float64",
                      device="cpu", seed=SEED)
    init = make_trainer("hybrid", cfg, ds.table_sizes, ds.num_dense, total_steps=1).parameters_cpu()
    moved = torch.load(tmp_path / "hybrid-sgd-rank0-of2.pt")["embeddings"]
    assert (moved - init["embeddings"]).abs().max() > 1e-4
