"""Tests of the gather/scatter golden model (:mod:`hotline.host.gather`).

The vectorised model is checked against a direct, byte-by-byte reading of the
specification written here (sequential, one key at a time), on random layouts
with unaligned bases, strides shorter than a row, repeated keys and fault
ranges; plus hand-made cases and the bad-input errors.
"""

import numpy as np
import pytest

from hotline.config import ConfigError, HotlineConfig
from hotline.host.gather import (GATHER, SCATTER, ErrorKind, TableLayout, gather, scatter,
                                 transfer, u_bits)
from hotline.testbench.runner import seed_from_env


def reference(op, mem: bytearray, layout, keys, staging, row_bytes, faults, cfg):
    """The specification, key by key: returns the status list, mutates ``mem``."""
    W = cfg.gather.data_bytes
    amask = (1 << cfg.gather.addr_bits) - 1

    def faulty(lo, hi):
        return any(a < hi and lo < b for a, b in faults)

    status = []
    for t, r, u in keys:
        t, r, u = int(t), int(r), int(u)
        if row_bytes == 0 or row_bytes > cfg.gather.max_row_bytes:
            status.append(ErrorKind.SIZE)
        elif t >= cfg.keys.tables:
            status.append(ErrorKind.TABLE)
        elif t >= layout.tables or r >= int(layout.rows[t]):
            status.append(ErrorKind.ROW)
        else:
            tab = (int(layout.base[t]) + r * int(layout.stride[t])) & amask
            stg = (staging + u * row_bytes) & amask
            src, dst = (tab, stg) if op == GATHER else (stg, tab)
            if faulty(src // W * W, -(-(src + row_bytes) // W) * W):
                status.append(ErrorKind.READ)
                continue
            row = bytes(mem[src:src + row_bytes])
            hit = False
            for i, b in enumerate(row):
                if faulty(dst + i, dst + i + 1):
                    hit = True
                else:
                    mem[dst + i] = b
            status.append(ErrorKind.WRITE if hit else ErrorKind.NONE)
    return status


def random_case(rng, cfg, mem_size=1 << 15):
    W = cfg.gather.data_bytes
    row_bytes = int(rng.choice([1, 3, W - 1, W, W + 1, 2 * W + 5, int(rng.integers(1, 200))]))
    n_tables = int(rng.integers(1, 5))
    base, stride, rows = [], [], []
    addr = int(rng.integers(0, 40))
    for _ in range(n_tables):
        n = int(rng.integers(1, 20))
        # Strides shorter than a row make table rows overlap (repeated scatter targets).
        s = max(1, row_bytes + int(rng.integers(-row_bytes // 2 - 1, 2 * W)))
        base.append(addr)
        stride.append(s)
        rows.append(n)
        addr += n * s + row_bytes + int(rng.integers(0, 50))
    staging = addr + int(rng.integers(0, 50))
    layout = TableLayout(base, stride, rows)
    n_keys = int(rng.integers(0, 40))
    keys = []
    for i in range(n_keys):
        t = int(rng.integers(0, cfg.keys.tables + 6 if cfg.keys.tables < 32 else n_tables))
        t = min(t, (1 << cfg.keys.table_bits) - 1)
        if rng.random() < 0.7:
            t = int(rng.integers(0, n_tables))
        r = int(rng.integers(0, (int(layout.rows[t]) + 3) if t < n_tables else 5))
        u = int(rng.integers(0, n_keys + 2)) if rng.random() < 0.2 else i   # repeats of u
        keys.append((t, r, u))
    keys = np.array(keys, dtype=np.int64).reshape(-1, 3)
    faults = []
    for _ in range(int(rng.integers(0, 3))):
        lo = int(rng.integers(0, staging + (n_keys + 2) * row_bytes + 1))
        faults.append((lo, lo + int(rng.integers(1, 8))))
    mem = rng.integers(0, 256, mem_size, dtype=np.uint8)
    return mem, layout, keys, staging, row_bytes, faults


@pytest.mark.parametrize("bits", [64, 128, 512], ids=["w64", "w128", "w512"])
def test_matches_reference_random(bits):
    cfg = HotlineConfig().replace(gather={"data_bits": bits})
    seed = seed_from_env()
    rng = np.random.default_rng(seed)
    for trial in range(150):
        mem, layout, keys, staging, row_bytes, faults = random_case(rng, cfg)
        op = GATHER if rng.random() < 0.5 else SCATTER
        if rng.random() < 0.05:
            row_bytes = int(rng.choice([0, cfg.gather.max_row_bytes + 1]))
        ref_mem = bytearray(mem.tobytes())
        ref_status = reference(op, ref_mem, layout, keys, staging, row_bytes, faults, cfg)
        res = transfer(op, mem, layout, keys, staging, row_bytes, faults=faults, cfg=cfg)
        got = [ErrorKind(int(s)) for s in res.status]
        if got != ref_status:
            i = next(j for j, (a, b) in enumerate(zip(got, ref_status)) if a != b)
            pytest.fail(f"trial {trial} (seed {seed}): key {i} {tuple(keys[i])} status "
                        f"{got[i].name}, reference {ref_status[i].name}")
        diff = np.flatnonzero(mem != np.frombuffer(ref_mem, np.uint8))
        if diff.size:
            a = int(diff[0])
            pytest.fail(f"trial {trial} (seed {seed}): memory differs at {a:#x}: "
                        f"{mem[a]:#x} vs reference {ref_mem[a]:#x}")
        errs = [i for i, s in enumerate(ref_status) if s != ErrorKind.NONE]
        assert res.errors == len(errs) and res.rows_moved == len(keys) - len(errs)
        if errs:
            assert res.first_error_index == errs[0]
            assert res.first_error_kind == ref_status[errs[0]]
            assert res.first_error_key == tuple(int(x) for x in keys[errs[0]])
        else:
            assert (res.first_error_index, res.first_error_key) == (-1, None)


def test_hand_made_gather_and_scatter():
    cfg = HotlineConfig().replace(gather={"data_bits": 64})
    mem = np.zeros(512, dtype=np.uint8)
    # table 0: 4 rows of 5 bytes at 10 with stride 7; table 1: 2 rows at 100, stride 5
    layout = TableLayout([10, 100], [7, 5], [4, 2])
    for r in range(4):
        mem[10 + 7 * r:15 + 7 * r] = 0x10 + r
    mem[100:105] = 0xA0
    mem[105:110] = 0xA1
    keys = [(1, 1, 0), (0, 3, 1), (0, 4, 2), (1, 0, 3)]        # (0, 4) is out of range
    res = gather(mem, layout, keys, staging=300, row_bytes=5, cfg=cfg)
    assert list(mem[300:320]) == [0xA1] * 5 + [0x13] * 5 + [0] * 5 + [0xA0] * 5
    assert (res.rows_moved, res.errors) == (3, 1)
    assert (res.first_error_kind, res.first_error_index, res.first_error_key) == \
        (ErrorKind.ROW, 2, (0, 4, 2))
    # Scatter the staging rows back to other table rows.
    mem[300:305] = 0x55
    res = scatter(mem, layout, [(0, 0, 0), (0, 3, 0)], staging=300, row_bytes=5, cfg=cfg)
    assert list(mem[10:15]) == [0x55] * 5 and list(mem[31:36]) == [0x55] * 5
    assert res.rows_moved == 2 and res.first_error_kind == ErrorKind.NONE
    # A read fault in a bus word of the source fails the whole row; a write fault drops
    # only the faulty bytes but fails the row.
    mem2 = mem.copy()
    res = gather(mem2, layout, [(0, 1, 0), (0, 2, 1)], staging=400, row_bytes=5,
                 faults=[(23, 24), (406, 407)], cfg=cfg)
    # row (0,1) lies at 17..21; bytes 16..23 form one 64-bit word, which contains 23
    assert list(res.status) == [ErrorKind.READ, ErrorKind.WRITE]
    assert list(mem2[400:405]) == [0] * 5
    assert list(mem2[405:410]) == [0x12, 0, 0x12, 0x12, 0x12]
    # later keys win on the same destination
    mem3 = mem.copy()
    gather(mem3, layout, [(0, 1, 0), (0, 2, 0)], staging=400, row_bytes=5, cfg=cfg)
    assert list(mem3[400:405]) == [0x12] * 5


def test_bad_row_bytes_and_tables_are_statuses():
    cfg = HotlineConfig()
    mem = np.zeros(4096, dtype=np.uint8)
    layout = TableLayout([0], [8], [10])
    keys = [(0, 1, 0), (0, 2, 1)]
    for rb in (0, cfg.gather.max_row_bytes + 1):
        res = gather(mem, layout, keys, 2048, rb, cfg=cfg)
        assert res.errors == 2 and res.first_error_kind == ErrorKind.SIZE
    res = gather(mem, layout, [(0, 1, 0), (27, 0, 1), (3, 0, 2)], 2048, 8, cfg=cfg)
    assert [ErrorKind(int(s)) for s in res.status] == [ErrorKind.NONE, ErrorKind.TABLE,
                                                       ErrorKind.ROW]
    res = gather(mem, layout, np.zeros((0, 3), np.int64), 2048, 8, cfg=cfg)
    assert (res.rows_moved, res.errors, res.first_error_index) == (0, 0, -1)


BAD_INPUT = [
    (lambda m, l: gather(m, l, [(0, 1.5, 0)], 1024, 8), TypeError, "keys"),
    (lambda m, l: gather(m, l, [(0, 1)], 1024, 8), ValueError, "shape"),
    (lambda m, l: gather(m, l, [(0, 1 << 33, 0)], 1024, 8), ValueError, "row"),
    (lambda m, l: gather(m, l, [(0, 1, -1)], 1024, 8), ValueError, "u"),
    (lambda m, l: gather(m, l, [(64, 1, 0)], 1024, 8), ValueError, "table"),
    (lambda m, l: gather(m, l, [(0, 1, 0)], -4, 8), ValueError, "staging"),
    (lambda m, l: gather(m, l, [(0, 1, 0)], 1024, -1), ValueError, "row_bytes"),
    (lambda m, l: gather(m, l, [(0, 1, 0)], 1024, 8.0), TypeError, "row_bytes"),
    (lambda m, l: gather(m, l, [(0, 1, 0)], 1 << 40, 8), ValueError, "outside"),
    (lambda m, l: gather(m, l, [(0, 1, 0)], 12, 8), ValueError, "overlaps"),
    (lambda m, l: gather(m.astype(np.int16), l, [(0, 1, 0)], 1024, 8), TypeError, "mem"),
    (lambda m, l: gather(list(m), l, [(0, 1, 0)], 1024, 8), TypeError, "mem"),
    (lambda m, l: gather(m, "tables", [(0, 1, 0)], 1024, 8), TypeError, "TableLayout"),
    (lambda m, l: transfer(2, m, l, [(0, 1, 0)], 1024, 8), ValueError, "op"),
    (lambda m, l: gather(m, l, [(0, 1, 0)], 1024, 8, faults=[(5, 2)]), ValueError, "faults"),
    (lambda m, l: gather(m, l, [(0, 1, 0)], 1024, 8, cfg="x"), TypeError, "cfg"),
    (lambda m, l: gather(m, TableLayout(list(range(27)), [1] * 27, [1] * 27), [(0, 1, 0)],
                         1024, 8), ValueError, "tables"),
    (lambda m, l: gather(m, TableLayout([0], [1 << 40], [1]), [(0, 0, 0)], 1024, 8),
     ValueError, "stride"),
]


@pytest.mark.parametrize("call, exc, words", BAD_INPUT,
                         ids=[f"{i}-{w}" for i, (_, _, w) in enumerate(BAD_INPUT)])
def test_bad_input_raises_clear_errors(call, exc, words):
    mem = np.zeros(2048, dtype=np.uint8)
    layout = TableLayout([0], [8], [10])
    with pytest.raises(exc, match=words):
        call(mem, layout)


def test_table_layout_checks():
    with pytest.raises(ValueError, match="stride"):
        TableLayout([0, 1], [8], [1, 1])
    with pytest.raises(ValueError, match="negative"):
        TableLayout([-1], [8], [1])
    with pytest.raises(TypeError, match="integers"):
        TableLayout([0.5], [8], [1])


def test_bytearray_memory_and_u_bits():
    cfg = HotlineConfig()
    mem = bytearray(range(256)) * 4
    res = gather(mem, TableLayout([0], [4], [8]), [(0, 2, 0), (0, 5, 1)], 512, 4, cfg=cfg)
    assert res.rows_moved == 2 and mem[512:520] == bytes([8, 9, 10, 11, 20, 21, 22, 23])
    assert u_bits(cfg) == (cfg.reorder.max_batch_keys - 1).bit_length()


def test_gather_config_checks():
    with pytest.raises(ConfigError, match="rbuf_beats"):
        HotlineConfig().replace(gather={"rbuf_beats": 8})
    with pytest.raises(ConfigError, match="data_bits"):
        HotlineConfig().replace(gather={"data_bits": 96})
    with pytest.raises(TypeError, match="max_row_bytes"):
        HotlineConfig().replace(gather={"max_row_bytes": "big"})
    g = HotlineConfig().replace(gather={"data_bits": 64, "max_row_bytes": 64}).gather
    assert g.max_row_beats == 9       # an unaligned 64-byte row spans 9 words
