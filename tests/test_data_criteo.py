"""Criteo loader: real sample rows against a plain-Python reference parser, broken copies, cache."""

import gzip
import json
import math
import random
import string
import warnings
from pathlib import Path

import numpy as np
import pytest

from hotline.host.data import (CRITEO_KAGGLE_TABLE_SIZES, DataError, DataWarning, load_criteo)
from hotline.host.data import textfile
from reference import fmix64

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
TSV = DATA / "criteo_kaggle_format_sample.tsv"
CSV = DATA / "criteo_sample.txt"

needs_data = pytest.mark.skipif(not TSV.exists() or not CSV.exists(),
                                reason=f"real data samples not found in {DATA} (expected beside the repository)")


# ---------------------------------------------------------------- reference


def _is_count(x: str) -> bool:
    s = x[1:] if x.startswith("-") else x
    whole, dot, frac = s.partition(".")
    return (whole.isascii() and whole.isdigit() and len(whole) <= 18
            and (not dot or (set(frac) <= {"0"} and len(frac) <= 12)))


def _is_hex(x: str) -> bool:
    return 1 <= len(x) <= 16 and all(c in string.hexdigits for c in x)


def ref_parse(fields, sizes):
    """(dense, rows, label) of one sample from its 40 text fields, or None if malformed."""
    if len(fields) != 40 or fields[0] not in ("0", "1"):
        return None
    dense = []
    for x in fields[1:14]:
        if x and not _is_count(x):
            return None
        dense.append(math.log1p(max(float(x), 0.0)) if x else 0.0)
    rows = []
    for x, size in zip(fields[14:], sizes):
        if x and not _is_hex(x):
            return None
        rows.append(fmix64(int(x, 16) if x else 0) % size)
    return dense, rows, float(fields[0])


def ref_load(lines, sizes=CRITEO_KAGGLE_TABLE_SIZES, sep="\t"):
    """Reference arrays and bad 1-based line numbers of a list of text lines."""
    dense, rows, labels, bad = [], [], [], []
    for i, line in enumerate(lines, start=1):
        r = ref_parse(line.rstrip("\r\n").split(sep), sizes)
        if r is None:
            bad.append(i)
            continue
        dense.append(r[0])
        rows.append(r[1])
        labels.append(r[2])
    return (np.array(dense, dtype=np.float64).reshape(-1, 13), np.array(rows, dtype=np.int64).reshape(-1, 26),
            np.array(labels, dtype=np.float32), bad)


def assert_matches(ds, ref, what):
    dense, rows, labels, _ = ref
    assert len(ds) == len(labels), f"{what}: {len(ds)} samples, reference {len(labels)}"
    b = ds.batch(0, len(ds))
    for name, got, exp in (("sparse", b.sparse, rows), ("labels", b.labels, labels)):
        if not np.array_equal(got, exp):
            i = tuple(np.argwhere(got != exp)[0])
            pytest.fail(f"{what}: {name} first differs at sample/field {i}: {got[i]} vs reference {exp[i]}")
    close = np.isclose(b.dense, dense, rtol=1e-6, atol=1e-7)
    if not close.all():
        i = tuple(np.argwhere(~close)[0])
        pytest.fail(f"{what}: dense first differs at {i}: {b.dense[i]} vs reference {dense[i]}")


def read_lines(path):
    return path.read_text().splitlines(keepends=True)


# ---------------------------------------------------------------- real samples

@needs_data
def test_real_tsv_matches_reference():
    ds = load_criteo(TSV)
    lines = read_lines(TSV)
    ref = ref_load(lines)
    assert ref[3] == [], "the shipped sample has no malformed line"
    assert len(ds) == 200 and ds.num_dense == 13 and ds.table_sizes == CRITEO_KAGGLE_TABLE_SIZES
    assert ds.table_names[0] == "C1" and ds.table_names[-1] == "C26"
    assert ds.num_bad_lines == 0 and ds.bad_lines == []
    assert_matches(ds, ref, "criteo_kaggle_format_sample.tsv")
    b = ds.batch(0, 200)
    assert set(np.unique(b.labels).tolist()) == {0.0, 1.0}
    # Hand-checked fields of line 1: "0 <empty> 3 260 <empty> 17668 ... 05db9164 08d6d899 ..."
    first = lines[0].split("\t")
    assert first[0] == "0" and first[2] == "3" and first[3] == "260" and first[14] == "05db9164"
    assert b.labels[0] == 0.0
    assert b.dense[0, 0] == 0.0                                    # I1 missing
    assert b.dense[0, 1] == np.float32(math.log(4.0))              # I2 = 3
    assert b.dense[0, 2] == np.float32(math.log(261.0))            # I3 = 260
    assert b.sparse[0, 0] == fmix64(0x05DB9164) % 1460             # C1
    assert b.sparse[0, 1] == fmix64(0x08D6D899) % 583              # C2
    assert first[32] == "" and b.sparse[0, 18] == 0                # C19 missing -> row 0
    assert first[34] == "0429f84b" and b.sparse[0, 20] == fmix64(0x0429F84B) % 7046547
    # Line 2 has I2 = -1: clipped to 0 before log1p.
    assert lines[1].split("\t")[2] == "-1" and b.dense[1, 1] == 0.0


@needs_data
def test_real_csv_variant_equals_tsv():
    a = load_criteo(TSV).batch(0, 200)
    ds = load_criteo(CSV)
    assert len(ds) == 200 and ds.num_bad_lines == 0
    b = ds.batch(0, 200)
    for name in ("dense", "sparse", "labels"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), f"CSV and TSV disagree on {name}"
    # The CSV writes dense counts as floats: "260.0"
    assert CSV.read_text().splitlines()[1].split(",")[3] == "260.0"


@needs_data
def test_csv_columns_found_by_name(tmp_path):
    rows = [line.split(",") for line in CSV.read_text().splitlines()]
    rng = random.Random(5)
    order = list(range(len(rows[0])))
    rng.shuffle(order)
    out = tmp_path / "shuffled.csv"
    # Reordered columns, upper-case LABEL, plus an extra column that is ignored.
    header = [rows[0][i] for i in order] + ["extra"]
    header = ["LABEL" if h == "label" else h for h in header]
    body = [",".join([r[i] for i in order] + ["x y z"]) for r in rows[1:]]
    out.write_text(",".join(header) + "\n" + "\n".join(body) + "\n")
    a = load_criteo(CSV).batch(0, 200)
    b = load_criteo(out).batch(0, 200)
    for name in ("dense", "sparse", "labels"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


@needs_data
def test_gzip_and_crlf_and_custom_sizes(tmp_path):
    lines = read_lines(TSV)
    gz = tmp_path / "day_0.gz"
    with gzip.open(gz, "wt") as f:
        f.writelines(lines)
    crlf = tmp_path / "crlf.tsv"
    crlf.write_bytes("".join(lines).replace("\n", "\r\n").encode())
    a = load_criteo(TSV).batch(0, 200)
    for p in (gz, crlf):
        b = load_criteo(p).batch(0, 200)
        assert np.array_equal(a.sparse, b.sparse) and np.array_equal(a.dense, b.dense), p.name
    sizes = tuple(range(1000, 1026))
    ds = load_criteo(TSV, table_sizes=sizes)
    assert ds.table_sizes == sizes
    assert_matches(ds, ref_load(lines, sizes), "custom table sizes")


def test_chunk_boundaries(tmp_path, monkeypatch, seed):
    # Many small chunks: rows must come out in order and complete.
    monkeypatch.setattr(textfile, "CHUNK_ROWS", 7)
    lines = _random_file(random.Random(seed), 123, corrupt_rate=0.1)
    p = tmp_path / "chunks.tsv"
    p.write_text("".join(lines))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        ds = load_criteo(p)
    ref = ref_load(lines)
    assert_matches(ds, ref, f"seed {seed}")
    assert [n for n, _ in ds.bad_lines] == ref[3]


# ---------------------------------------------------------------- broken input

def _valid_fields(rng: random.Random):
    f = [rng.choice("01")]
    for _ in range(13):
        f.append(rng.choice(["", str(rng.randint(-3, 10 ** rng.randint(0, 7))), f"{rng.randint(0, 50)}.0"]))
    for _ in range(26):
        f.append(rng.choice(["", "".join(rng.choice("0123456789abcdef") for _ in range(8)),
                             "".join(rng.choice("0123456789ABCDEF") for _ in range(rng.randint(1, 16)))]))
    return f


_CORRUPTIONS = [
    ("drop a field", lambda f, r: f[:-1]),
    ("extra field", lambda f, r: f + ["00"]),
    ("bad label", lambda f, r: [r.choice(["2", "", "x", "1.0", "-1"])] + f[1:]),
    ("non-integer dense", lambda f, r: _set(f, r.randint(1, 13), r.choice(["2.5", "abc", "1e3", "--1", " 4", "0x10"]))),
    ("non-hex category", lambda f, r: _set(f, r.randint(14, 39), r.choice(["zz12ab34", "05db916g", "0x1f", "-1a",
                                                                               "12345678901234567", "ab cd"]))),
    ("empty line", lambda f, r: []),
]


def _set(f, i, v):
    f = list(f)
    f[i] = v
    return f


def _random_file(rng, n, corrupt_rate):
    lines = []
    for _ in range(n):
        f = _valid_fields(rng)
        if rng.random() < corrupt_rate:
            f = rng.choice(_CORRUPTIONS)[1](f, rng)
        lines.append("\t".join(f) + "\n")
    return lines


def test_random_corruptions_are_skipped_and_reported(tmp_path, seed):
    rng = random.Random(seed)
    lines = _random_file(rng, 400, corrupt_rate=0.25)
    p = tmp_path / "fuzz.tsv"
    p.write_text("".join(lines))
    ref = ref_load(lines)
    assert ref[3], f"seed {seed}: no corrupted line generated"
    with pytest.warns(DataWarning, match=f"skipped {len(ref[3])} malformed line") as rec:
        ds = load_criteo(p)
    assert "\n" not in str(rec[0].message)
    assert_matches(ds, ref, f"seed {seed}")
    got = [n for n, _ in ds.bad_lines]
    assert got == ref[3], f"seed {seed}: bad lines {got[:10]}..., reference {ref[3][:10]}..."
    assert ds.num_bad_lines == len(ref[3]) and len(ds.warnings) == 1
    with pytest.raises(DataError, match=f"line {ref[3][0]}:") as info:
        load_criteo(p, strict=True)
    assert "\n" not in str(info.value)


@needs_data
@pytest.mark.parametrize("line_no, mutate, reason", [
    (5, lambda f: f[:-1], "expected 40 tab-separated fields, found 39"),
    (7, lambda f: _set(f, 20, "zzzz1234"), r"field 21 \(C7\) 'zzzz1234' is not a hexadecimal hash"),
    (9, lambda f: _set(f, 3, "2.5"), r"field 4 \(I3\) '2.5' is not an integer"),
    (11, lambda f: _set(f, 1, "abc"), r"field 2 \(I1\) 'abc' is not an integer"),
    (13, lambda f: _set(f, 0, "2"), r"field 1 \(label\) '2' is not 0 or 1"),
    (200, lambda f: [], "empty line"),
], ids=["fieldcount", "nonhex", "float", "nonint", "label", "emptyline"])
def test_malformed_line_strict_and_lenient(tmp_path, line_no, mutate, reason):
    lines = read_lines(TSV)
    fields = lines[line_no - 1].rstrip("\n").split("\t")
    lines[line_no - 1] = "\t".join(mutate(fields)) + "\n"
    p = tmp_path / "broken.tsv"
    p.write_text("".join(lines))
    with pytest.raises(DataError, match=f"line {line_no}: {reason}") as info:
        load_criteo(p, strict=True)
    assert "\n" not in str(info.value) and str(p) in str(info.value)
    with pytest.warns(DataWarning, match=f"line {line_no}: {reason}"):
        ds = load_criteo(p)
    assert len(ds) == 199 and ds.num_bad_lines == 1 and ds.bad_lines[0][0] == line_no
    # The other 199 rows are exactly the clean file's rows without that line.
    clean = load_criteo(TSV).batch(0, 200)
    keep = np.arange(200) != line_no - 1
    b = ds.batch(0, 199)
    assert np.array_equal(b.sparse, clean.sparse[keep]) and np.array_equal(b.dense, clean.dense[keep])


def test_missing_empty_and_rowless_files(tmp_path):
    with pytest.raises(DataError, match="no such file") as info:
        load_criteo(tmp_path / "nope.tsv")
    assert "\n" not in str(info.value)
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        load_criteo(empty)
    gz = tmp_path / "empty.tsv.gz"
    with gzip.open(gz, "wb"):
        pass
    with pytest.raises(DataError, match="empty"):
        load_criteo(gz)
    with pytest.raises(DataError, match="not a regular file"):
        load_criteo(tmp_path)
    header_only = tmp_path / "header.csv"
    header_only.write_text("label," + ",".join(f"I{i}" for i in range(1, 14)) + ","
                           + ",".join(f"C{i}" for i in range(1, 27)) + "\n")
    with pytest.raises(DataError, match="no data rows"):
        load_criteo(header_only)
    garbage = tmp_path / "garbage.tsv"
    garbage.write_text("hello\tworld\n\n1\t2\n")
    with pytest.raises(DataError, match=r"no data rows \(all 3 malformed; first: line 1: expected 40"):
        load_criteo(garbage)
    bad_header = tmp_path / "badheader.csv"
    bad_header.write_text("label,I1,I2\n0,1,2\n")
    with pytest.raises(DataError, match="header lacks column.*I3"):
        load_criteo(bad_header)
    bad_gz = tmp_path / "bad.gz"
    bad_gz.write_bytes(b"this is not gzip data\n")
    with pytest.raises(DataError, match="read error"):
        load_criteo(bad_gz)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="table_sizes must have 26 entries"):
        load_criteo(tmp_path / "x.tsv", table_sizes=(10,) * 25)
    with pytest.raises(ValueError, match=r"table_sizes\[3\]"):
        load_criteo(tmp_path / "x.tsv", table_sizes=(10, 10, 10, 0) + (10,) * 22)
    with pytest.raises(TypeError, match="path"):
        load_criteo(42)
    p = tmp_path / "one.tsv"
    p.write_text("\t".join(["1"] + ["0"] * 13 + ["ab"] * 26) + "\n")
    with pytest.raises(TypeError, match="strict"):
        load_criteo(p, strict="yes")
    with pytest.raises(TypeError, match="cache_dir"):
        load_criteo(p, cache_dir=3)


# ---------------------------------------------------------------- cache

def _only_entry(cache_dir: Path) -> Path:
    entries = [e for e in cache_dir.iterdir() if not e.name.startswith(".")]
    assert len(entries) == 1, entries
    return entries[0]


@needs_data
def test_cache_round_trip_and_reuse(tmp_path):
    cache = tmp_path / "cache"
    a = load_criteo(TSV)
    b = load_criteo(TSV, cache_dir=cache)
    entry = _only_entry(cache)
    assert {p.name for p in entry.iterdir()} == {"dense.bin", "sparse.bin", "labels.bin", "meta.json"}
    assert not [p for p in cache.iterdir() if p.name.startswith(".")], "temporary folder left behind"
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["rows"] == 200 and meta["table_sizes"] == list(CRITEO_KAGGLE_TABLE_SIZES)
    # Second load opens the entry (test_cache_is_used_not_reparsed proves it is not reparsed).
    c = load_criteo(TSV, cache_dir=cache)
    for x in (b, c):
        for name in ("dense", "sparse", "labels"):
            assert np.array_equal(getattr(a.batch(0, 200), name), getattr(x.batch(0, 200), name)), name
    assert isinstance(c.sparse, np.memmap)
    # Other table sizes: another entry.
    load_criteo(TSV, cache_dir=cache, table_sizes=(97,) * 26)
    assert len([e for e in cache.iterdir()]) == 2


@needs_data
def test_cache_is_used_not_reparsed(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    load_criteo(TSV, cache_dir=cache)

    def no_parse(*a, **k):
        raise AssertionError("parsed again although a cache entry exists")
    monkeypatch.setattr(textfile, "_parse", no_parse)
    assert len(load_criteo(TSV, cache_dir=cache)) == 200


@needs_data
def test_cache_invalidated_by_source_change(tmp_path):
    src = tmp_path / "train.tsv"
    lines = read_lines(TSV)
    src.write_text("".join(lines[:100]))
    cache = tmp_path / "cache"
    assert len(load_criteo(src, cache_dir=cache)) == 100
    src.write_text("".join(lines[:150]))
    assert len(load_criteo(src, cache_dir=cache)) == 150


@needs_data
@pytest.mark.parametrize("damage, match", [
    (lambda e: _truncate(e / "sparse.bin", 8), r"sparse.bin has .* bytes, expected .* \(truncated"),
    (lambda e: _truncate(e / "labels.bin", 1), r"labels.bin has 199 bytes, expected 200 \(truncated"),
    (lambda e: _flip(e / "dense.bin", 100), "dense.bin fails its CRC-32 check"),
    (lambda e: (e / "dense.bin").unlink(), "dense.bin is missing"),
    (lambda e: (e / "meta.json").write_text('{"rows": 200'), "unreadable meta.json"),
    (lambda e: (e / "meta.json").unlink(), "unreadable meta.json"),
], ids=["truncsparse", "trunclabels", "corrupt", "missing", "badmeta", "nometa"])
def test_damaged_cache_is_a_data_error(tmp_path, damage, match):
    cache = tmp_path / "cache"
    load_criteo(TSV, cache_dir=cache)
    entry = _only_entry(cache)
    damage(entry)
    with pytest.raises(DataError, match=match) as info:
        load_criteo(TSV, cache_dir=cache)
    msg = str(info.value)
    assert "\n" not in msg and str(entry) in msg and "delete the folder" in msg


def _truncate(path: Path, nbytes: int):
    data = path.read_bytes()
    path.write_bytes(data[:-nbytes])


def _flip(path: Path, offset: int):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


@needs_data
def test_cache_keeps_bad_line_report(tmp_path):
    lines = read_lines(TSV)
    lines[41] = "oops\n"
    p = tmp_path / "bad.tsv"
    p.write_text("".join(lines))
    cache = tmp_path / "cache"
    with pytest.warns(DataWarning, match="line 42"):
        a = load_criteo(p, cache_dir=cache)
    with pytest.warns(DataWarning, match="line 42"):
        b = load_criteo(p, cache_dir=cache)
    assert len(a) == len(b) == 199 and b.bad_lines == [(42, "expected 40 tab-separated fields, found 1")]
    # Strict mode refuses the file even when a lenient load cached it.
    with pytest.raises(DataError, match="line 42"):
        load_criteo(p, cache_dir=cache, strict=True)
    # A strict load that fails leaves no entry behind.
    cache2 = tmp_path / "cache2"
    with pytest.raises(DataError):
        load_criteo(p, cache_dir=cache2, strict=True)
    assert not list(cache2.iterdir())


def test_vectorised_field_parsers_match_python(seed):
    rng = random.Random(seed)
    hexes = ["".join(rng.choice(string.hexdigits) for _ in range(rng.randint(0, 16))) for _ in range(3000)]
    hexes += ["", "0", "f" * 16, "F" * 16, "8" + "0" * 15, "05db9164"]
    got = textfile.parse_hex(np.array([h.encode() for h in hexes]))
    exp = [int(h, 16) if h else 0 for h in hexes]
    bad = [i for i, (g, e) in enumerate(zip(got.tolist(), exp)) if g != e]
    assert not bad, f"seed {seed}: parse_hex({hexes[bad[0]]!r}) = {got[bad[0]]}, expected {exp[bad[0]]}"
    decs = [str(rng.randint(-10 ** 18 + 1, 10 ** 18 - 1) // 10 ** rng.randint(0, 18)) for _ in range(3000)]
    decs += ["", "0", "-1", "999999999999999999", "-999999999999999999"]
    got = textfile.parse_dec(np.array([d.encode() for d in decs]))
    exp = [(int(d) if d else 0) % (1 << 64) for d in decs]
    bad = [i for i, (g, e) in enumerate(zip(got.tolist(), exp)) if g != e]
    assert not bad, f"seed {seed}: parse_dec({decs[bad[0]]!r}) = {got[bad[0]]}, expected {exp[bad[0]]}"
    ints = ["", "0", "-0", "007", "-5", "12.", "12.000", "-3.0", "999999999999999999", "-999999999999999999",
            "123456789012345678.000000000000"]
    got = textfile.parse_int(np.array([x.encode() for x in ints]))
    assert got.tolist() == [int(float(x)) if "." in x else int(x or 0) for x in ints[:-1]] + [123456789012345678]
    counts = ["", "0", "-5", "3", "260.0", "17668", "999999999999999999", "12.000"]
    got = textfile.dense_log1p(np.array([c.encode() for c in counts]))
    exp = np.array([math.log1p(max(float(c), 0.0)) if c else 0.0 for c in counts], dtype=np.float32)
    assert got.dtype == np.float32 and np.allclose(got, exp, rtol=1e-7)
