"""``--backend sim``: training with the whole accelerator's Verilog in the loop.

The same run is trained twice, with the golden models and with the generated
Verilog of the accelerator top in Verilator (driven through its registers by
the same driver code an FPGA would get), and compared call by call: the
popularity state after every learning step, the hot set, every
classification (popular / non-popular ids, hot bits, remap, cold keys), every
gathered row; then the losses and parameters, which must be identical.  The
hardware config is small on purpose so the limits bind: the hot map holds
fewer rows than the budget allows and some batches have more distinct cold
keys than the de-dup store, so both the capacity report and the overflow
path run.
"""

import os

import numpy as np
import pytest
import torch

from hotline.config import HotlineConfig
from hotline.host.data import skewed_small_dataset
from hotline.host.train_config import TrainConfig
from hotline.host.trainer import make_trainer

SEED = int(os.environ.get("HOTLINE_SEED", "1234"))

HW = HotlineConfig().replace(
    keys={"tables": 4},
    reorder={"keys_per_sample": 4, "hotmap_log2_buckets": 2, "max_batch_keys": 32},
    gather={"data_bits": 64},
    counter={"log2_counters": 9, "banks": 2, "hh_sets": 16, "hh_ways": 2, "threshold": 3})

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Recorder:
    """Wraps an accelerator's calls and keeps what they returned."""

    def __init__(self, acc, table):
        self.acc, self.log = acc, []
        self._table = table
        for name in ("learn", "choose_hot_set", "load_hot_map", "classify", "gather"):
            setattr(self, name, self._wrap(name))

    def _wrap(self, name):
        fn = getattr(self.acc, name)

        def call(*a, **kw):
            out = fn(*a, **kw)
            if name == "learn":
                self.log.append(("learn", self._table()))
            elif name == "classify":
                self.log.append(("classify", {f: np.asarray(getattr(out, f)).copy() for f in
                                              ("popular", "non_popular", "hot", "index", "cold_keys")}))
            elif name == "gather":
                self.log.append(("gather", np.asarray(out).copy()))
            elif name == "choose_hot_set":
                self.log.append(("hot_set", np.asarray(out).copy()))
            else:
                self.log.append((name, np.asarray(a[0]).copy()))
            return out
        return call

    def __getattr__(self, name):
        return getattr(self.acc, name)


def _hh(valid, keys, counts):
    return sorted(zip(np.asarray(keys)[valid].tolist(), np.asarray(counts)[valid].tolist()))


@pytest.mark.cosim
def test_train_sim_equals_golden_step_by_step():
    print(f"HOTLINE_SEED={SEED}")
    ds = skewed_small_dataset(384, (3, 8, 20, 40), SEED)
    cfg = TrainConfig(embedding_dim=4, bottom_mlp=(8, 4), top_mlp=(8, 1), batch_size=32,
                      eval_batch_size=64, lr=0.05, dtype="float64", device="cpu", steps=12,
                      learn_fraction=0.25, seed=SEED % 1000, timeline_steps=0,
                      hot_budget_bytes=24 * 8 * 5)   # room for 24 rows: more than the 16-slot hot map
    runs = {}
    for backend in ("golden", "sim"):
        tr = make_trainer("hotline", cfg, ds.table_sizes, ds.num_dense, total_steps=cfg.steps,
                          hw_cfg=HW, backend=backend, fixed_hw=True)
        assert tr.hw_cfg == HW            # the hardware's own sizes, nothing derived
        if backend == "golden":
            table = lambda acc=tr.acc: tuple(a.ravel() for a in acc.counter.table())
        else:
            table = lambda acc=tr.acc: acc.dev.table()
        rec = Recorder(tr.acc, table)
        tr.acc = rec
        tr.train(ds, cfg.steps)
        tr.finish()
        runs[backend] = (tr, rec.log, tr.parameters_cpu(), tr.summary(), tr.host.flat.clone())
        tr.close()
    (g, glog, gp, gs, gflat), (s, slog, sp, ss, sflat) = runs["golden"], runs["sim"]
    assert [e[0] for e in glog] == [e[0] for e in slog]
    assert sum(e[0] == "classify" for e in glog) >= 5 and sum(e[0] == "gather" for e in glog) >= 5
    for i, ((kind, a), (_, b)) in enumerate(zip(glog, slog)):
        where = f"call {i} ({kind})"
        if kind == "learn":
            assert _hh(*a) == _hh(*b), f"{where}: heavy hitters differ"
        elif kind == "classify":
            for f in a:
                assert np.array_equal(a[f], b[f]), f"{where}: {f} differs"
        else:
            assert np.array_equal(a, b), f"{where}: differs"
    assert g.losses == s.losses
    for k in gp:
        assert torch.equal(gp[k], sp[k]), k
    assert torch.equal(gflat, sflat)
    # the limits bound, and the run says so the same way on both backends
    assert gs["capacity"] == ss["capacity"] and ss["capacity"]["hot_map"]["hot_rows_loaded"] <= 16
    assert gs["overflow_batches"] == ss["overflow_batches"]
    assert ss["backend"] == "sim"
