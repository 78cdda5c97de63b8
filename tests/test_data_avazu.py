"""Avazu loader: real sample rows against a plain-Python reference (csv module), broken copies, cache."""

import csv
import datetime
import random
import string
from pathlib import Path

import numpy as np
import pytest

from hotline.host.data import (AVAZU_TABLE_NAMES, AVAZU_TABLE_SIZES, DataError, DataWarning, load_avazu)
from reference import fmix64

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
AVAZU = DATA / "avazu_sample.txt"

needs_data = pytest.mark.skipif(not AVAZU.exists(),
                                reason=f"real data sample not found in {AVAZU} (expected beside the repository)")

HEX_FIELDS = {"site_id", "site_domain", "site_category", "app_id", "app_domain", "app_category",
              "device_id", "device_ip", "device_model"}


def ref_row(rec: dict, sizes):
    """(dense, rows, label) of one csv.DictReader record, or None if malformed."""
    if rec.get("click") not in ("0", "1"):
        return None
    hour = rec.get("hour", "")
    if len(hour) != 8 or not hour.isdigit():
        return None
    try:
        day = datetime.date(2000 + int(hour[:2]), int(hour[2:4]), int(hour[4:6]))
    except ValueError:
        return None
    hod = int(hour[6:])
    if hod > 23:
        return None
    rows = []
    for name, size in zip(AVAZU_TABLE_NAMES[:21], sizes):
        x = rec.get(name)
        if x is None:
            return None
        if name in HEX_FIELDS:
            if x and not (len(x) <= 16 and all(c in string.hexdigits for c in x)):
                return None
            v = int(x, 16) if x else 0
        else:
            digits = x[1:] if x.startswith("-") else x
            if x and not (digits.isascii() and digits.isdigit() and len(digits) <= 18):
                return None
            v = int(x) if x else 0
        rows.append(fmix64(v) % size)
    rows += [hod % sizes[21], day.weekday() % sizes[22]]
    return [hod / 23.0], rows, float(rec["click"])


def ref_load(text: str, sizes=AVAZU_TABLE_SIZES):
    reader = csv.DictReader(text.splitlines())
    dense, rows, labels, bad = [], [], [], []
    for i, rec in enumerate(reader, start=2):
        r = None if None in rec or None in rec.values() else ref_row(rec, sizes)
        if r is None:
            bad.append(i)
            continue
        dense.append(r[0])
        rows.append(r[1])
        labels.append(r[2])
    return np.array(dense).reshape(-1, 1), np.array(rows, dtype=np.int64), np.array(labels, np.float32), bad


def assert_matches(ds, ref, what):
    dense, rows, labels, _ = ref
    assert len(ds) == len(labels), f"{what}: {len(ds)} samples, reference {len(labels)}"
    b = ds.batch(0, len(ds))
    for name, got, exp in (("sparse", b.sparse, rows), ("labels", b.labels, labels)):
        if not np.array_equal(got, exp):
            i = tuple(np.argwhere(got != exp)[0])
            pytest.fail(f"{what}: {name} first differs at {i} (table {AVAZU_TABLE_NAMES[i[1]] if name == 'sparse' else ''})"
                        f": {got[i]} vs reference {exp[i]}")
    assert np.allclose(b.dense, dense, rtol=1e-6), f"{what}: dense differs"


@needs_data
def test_real_sample_matches_reference():
    ds = load_avazu(AVAZU)
    text = AVAZU.read_text()
    ref = ref_load(text)
    assert ref[3] == []
    assert len(ds) == 100 and ds.num_dense == 1 and len(ds.table_sizes) == 23
    assert ds.table_names == AVAZU_TABLE_NAMES and ds.table_sizes == AVAZU_TABLE_SIZES
    assert_matches(ds, ref, "avazu_sample.txt")
    b = ds.batch(0, 100)
    assert set(np.unique(b.labels).tolist()) <= {0.0, 1.0} and 0 < b.labels.sum() < 100
    # Hand-checked line 2 (first data line).
    line = text.splitlines()[1].split(",")
    assert line[1] == "0" and line[2] == "14102100" and line[3] == "1005" and line[5] == "1fbe01fe"
    assert b.labels[0] == 0.0 and b.dense[0, 0] == 0.0                    # hour 00
    assert b.sparse[0, AVAZU_TABLE_NAMES.index("hour_of_day")] == 0
    assert b.sparse[0, AVAZU_TABLE_NAMES.index("day_of_week")] == 1       # 2014-10-21 was a Tuesday
    assert b.sparse[0, 0] == fmix64(1005) % 1024                          # C1, decimal
    assert b.sparse[0, 2] == fmix64(0x1FBE01FE) % 65536                   # site_id, hex
    assert line[22] == "-1" and b.sparse[0, AVAZU_TABLE_NAMES.index("C20")] == fmix64(-1) % 2048


@needs_data
def test_sizes_by_mapping_and_sequence_and_cache(tmp_path):
    text = AVAZU.read_text()
    ds = load_avazu(AVAZU, table_sizes={"device_ip": 100, "C1": 3})
    sizes = list(AVAZU_TABLE_SIZES)
    sizes[AVAZU_TABLE_NAMES.index("device_ip")] = 100
    sizes[0] = 3
    assert ds.table_sizes == tuple(sizes)
    assert_matches(ds, ref_load(text, tuple(sizes)), "mapping sizes")
    seq = tuple(range(50, 73))
    assert_matches(load_avazu(AVAZU, table_sizes=seq), ref_load(text, seq), "sequence sizes")
    cache = tmp_path / "cache"
    a = load_avazu(AVAZU, cache_dir=cache)
    b = load_avazu(AVAZU, cache_dir=cache)
    assert isinstance(b.sparse, np.memmap)
    assert np.array_equal(a.batch(0, 100).sparse, b.batch(0, 100).sparse)
    assert_matches(b, ref_load(text), "from cache")


@needs_data
@pytest.mark.parametrize("line_no, col, value, reason", [
    (3, "hour", "14132100", "hour '14132100' is not a valid YYMMDDHH"),
    (4, "hour", "14102125", "hour '14102125' is not a valid"),
    (5, "hour", "14023000", "hour '14023000' is not a valid"),
    (6, "hour", "1410210", r"field 3 \(hour\) '1410210' is not an hour YYMMDDHH"),
    (7, "site_id", "zzz01fe", r"field 6 \(site_id\) 'zzz01fe' is not a hexadecimal id"),
    (8, "C14", "x15706", r"field 17 \(C14\) 'x15706' is not a decimal integer"),
    (9, "click", "2", r"field 2 \(click\) '2' is not 0 or 1"),
    (10, None, None, "expected 24 comma-separated fields, found 23"),
], ids=["month13", "hour25", "feb30", "shorthour", "nonhex", "nondec", "label", "fieldcount"])
def test_malformed_line_strict_and_lenient(tmp_path, line_no, col, value, reason):
    lines = AVAZU.read_text().splitlines()
    header = lines[0].split(",")
    fields = lines[line_no - 1].split(",")
    if col is None:
        fields = fields[:-1]
    else:
        fields[header.index(col)] = value
    lines[line_no - 1] = ",".join(fields)
    p = tmp_path / "broken.csv"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=f"line {line_no}: {reason}") as info:
        load_avazu(p, strict=True)
    assert "\n" not in str(info.value)
    with pytest.warns(DataWarning, match=f"line {line_no}: {reason}"):
        ds = load_avazu(p)
    assert len(ds) == 99 and ds.bad_lines[0][0] == line_no and ds.num_bad_lines == 1
    assert_matches(ds, ref_load(p.read_text()), "broken copy")


def test_random_corruptions(tmp_path, seed):
    rng = random.Random(seed)
    header = ["id", "click", "hour"] + list(AVAZU_TABLE_NAMES[:21])
    lines = [",".join(header)]
    for i in range(300):
        rec = {"id": str(rng.getrandbits(63)), "click": rng.choice("01"),
               "hour": f"14{rng.randint(10, 12):02d}{rng.randint(1, 30):02d}{rng.randint(0, 23):02d}"}
        for name in AVAZU_TABLE_NAMES[:21]:
            if name in HEX_FIELDS:
                rec[name] = "".join(rng.choice("0123456789abcdef") for _ in range(8))
            else:
                rec[name] = str(rng.randint(-1, 10 ** rng.randint(1, 6)))
        if rng.random() < 0.2:
            kind = rng.randrange(5)
            if kind == 0:
                rec["hour"] = rng.choice(["14133100", "14100099", "1410", "abcdefgh", "14023012"])
            elif kind == 1:
                rec[rng.choice(sorted(HEX_FIELDS))] = rng.choice(["xyz", "0x12", "12345678901234567"])
            elif kind == 2:
                rec[rng.choice(["C1", "C14", "banner_pos"])] = rng.choice(["1.5", "a", "--1", "1e3"])
            elif kind == 3:
                rec["click"] = rng.choice(["", "3", "true"])
            else:
                del rec["C21"]
        lines.append(",".join(rec[h] for h in header if h in rec))
    p = tmp_path / "fuzz.csv"
    text = "\n".join(lines) + "\n"
    p.write_text(text)
    ref = ref_load(text)
    assert ref[3], f"seed {seed}: nothing corrupted"
    with pytest.warns(DataWarning):
        ds = load_avazu(p)
    assert_matches(ds, ref, f"seed {seed}")
    assert [n for n, _ in ds.bad_lines] == ref[3], f"seed {seed}"


def test_missing_header_and_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_avazu(tmp_path / "train.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_avazu(empty)
    no_header = tmp_path / "noheader.csv"
    no_header.write_text("1000009418151094273,0,14102100,1005,0,1fbe01fe\n")
    with pytest.raises(DataError, match="line 1: expected a header line"):
        load_avazu(no_header)
    test_layout = tmp_path / "test.csv"
    cols = ["id", "hour"] + list(AVAZU_TABLE_NAMES[:21])
    test_layout.write_text(",".join(cols) + "\n")
    with pytest.raises(DataError, match="header lacks column.*click"):
        load_avazu(test_layout)
    header_only = tmp_path / "header.csv"
    header_only.write_text(",".join(["id", "click", "hour"] + list(AVAZU_TABLE_NAMES[:21])) + "\n")
    with pytest.raises(DataError, match="no data rows"):
        load_avazu(header_only)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown Avazu table.*nope"):
        load_avazu(tmp_path / "x", table_sizes={"nope": 3})
    with pytest.raises(TypeError, match=r"table_sizes\['C1'\]"):
        load_avazu(tmp_path / "x", table_sizes={"C1": "3"})
    with pytest.raises(ValueError, match="23 entries"):
        load_avazu(tmp_path / "x", table_sizes=(10,) * 22)
    with pytest.raises(ValueError, match=r"table_sizes\[0\]"):
        load_avazu(tmp_path / "x", table_sizes=(0,) + (10,) * 22)
