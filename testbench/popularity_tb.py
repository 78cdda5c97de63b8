"""cocotb testbench of the popularity counter array against its golden model.

The pure-Python parts (beat generators and the :class:`CounterScoreboard`
that runs :class:`hotline.host.popularity.PopularityCounter` in stream order)
are shared with the Amaranth-simulator tests in
``tests/test_popularity_rtl_sim.py``; :class:`TB` owns the clock, the reset,
the ``keys`` driver (with an idle inserter) and the ``estimates`` /
``readout`` monitors (with backpressure inserters).

The cocotb tests at the bottom are launched from
``tests/test_popularity_cosim.py`` (one build per parameter set) and, with
``HOTLINE_BENCH`` set, by ``scripts/bench_counter_throughput.py``.
"""

from __future__ import annotations

import json
import os
import random
from collections import deque

import numpy as np

from ..config import HotlineConfig
from ..hashing import counter_hashes
from ..host.popularity import PopularityCounter
from ..rtl.popularity import CounterLayouts, Op
from .runner import stream_ports

__all__ = ["Beat", "CounterScoreboard", "random_keys", "zipf_keys", "update_beats", "check_beats",
           "keys_in_set", "keys_in_bank", "scenario", "SCENARIOS", "StreamSource", "StreamSink", "TB"]


# ---------------------------------------------------------------------------
# input generation (pure Python / NumPy)
# ---------------------------------------------------------------------------

class Beat(tuple):
    """One ``keys`` beat: ``(op, keys, mask)``; ``keys`` has W ints."""

    __slots__ = ()

    def __new__(cls, op, keys, mask):
        return super().__new__(cls, (Op(op), tuple(int(k) for k in keys), int(mask)))

    op = property(lambda self: self[0])
    keys = property(lambda self: self[1])
    mask = property(lambda self: self[2])


def _key_space(cfg):
    k = cfg.keys
    return k.tables, k.row_bits


def random_keys(cfg, rng, n, tables=None):
    """``n`` uniformly random valid keys."""
    t_n, rb = _key_space(cfg)
    t = rng.integers(0, t_n if tables is None else tables, n, dtype=np.uint64)
    r = rng.integers(0, 1 << rb, n, dtype=np.uint64)
    return (t << np.uint64(rb)) | r


def zipf_keys(cfg, rng, n, rows=None, a=1.1, tables_in_order=False):
    """``n`` Zipf-skewed keys: table uniform (or cycling 0..T-1, one key per
    table per sample, Criteo-like), row Zipf(a) modulo ``rows``."""
    t_n, rb = _key_space(cfg)
    rows = min(rows or (1 << rb), 1 << rb)
    if tables_in_order:
        t = (np.arange(n) % t_n).astype(np.uint64)
    else:
        t = rng.integers(0, t_n, n, dtype=np.uint64)
    r = ((rng.zipf(a, n) - 1) % rows).astype(np.uint64)
    # scramble rows per table so that the hot rows of different tables differ
    r = (r * np.uint64(0x9E3779B1) + t * np.uint64(7919)) % np.uint64(rows)
    return (t << np.uint64(rb)) | r


def keys_in_set(cfg, rng, count, set_index=None):
    """``count`` distinct keys that all map to one heavy-hitter set (and so one bank)."""
    h = counter_hashes(cfg)
    if set_index is None:
        set_index = int(h.set_index(random_keys(cfg, rng, 1))[0])
    found = []
    while len(found) < count:
        cand = np.unique(random_keys(cfg, rng, 4096 * max(1, cfg.counter.hh_sets // 64)))
        found.extend(cand[h.set_index(cand) == set_index].tolist())
    return np.array(sorted(set(found))[:count], dtype=np.uint64)


def keys_in_bank(cfg, rng, count, bank=None):
    """``count`` distinct keys that all map to one bank."""
    h = counter_hashes(cfg)
    if bank is None:
        bank = int(h.bank.numpy(random_keys(cfg, rng, 1))[0])
    found = set()
    while len(found) < count:
        cand = random_keys(cfg, rng, 4096)
        found.update(cand[h.bank.numpy(cand) == bank].tolist())
    return np.array(sorted(found)[:count], dtype=np.uint64)


def _garbage(cfg, rng):
    """A key for a masked-off lane: anything, to catch a lane that leaks."""
    return int(rng.integers(0, 1 << cfg.keys.key_bits, dtype=np.uint64))


def update_beats(cfg, rng, keys, *, random_masks=False, op=Op.UPDATE):
    """Pack ``keys`` into beats of W lanes, in order.

    With ``random_masks`` every beat gets a random lane mask (possibly empty,
    then it carries no key) and the masked-off lanes carry random garbage.
    """
    W = cfg.counter.lanes
    keys = [int(k) for k in keys]
    beats = []
    pos = 0
    while pos < len(keys):
        if random_masks:
            mask = int(rng.integers(0, 1 << W))
        else:
            mask = (1 << min(W, len(keys) - pos)) - 1
        lanes = []
        for i in range(W):
            if mask >> i & 1 and pos < len(keys):
                lanes.append(keys[pos])
                pos += 1
            else:
                mask &= ~(1 << i)
                lanes.append(_garbage(cfg, rng))
        beats.append(Beat(op, lanes, mask))
    return beats


def check_beats(cfg, rng, keys_used, extra=64):
    """A READOUT, then QUERY beats for every key used and ``extra`` random keys."""
    probe = np.concatenate([np.unique(np.asarray(list(keys_used), dtype=np.uint64)),
                            random_keys(cfg, rng, extra)])
    W = cfg.counter.lanes
    # the keys and mask of a READOUT beat are ignored: send garbage
    return [Beat(Op.READOUT, [_garbage(cfg, rng) for _ in range(W)], int(rng.integers(0, 1 << W)))] + \
        update_beats(cfg, rng, probe, op=Op.QUERY)


def _interleave_queries(cfg, rng, beats, used, every):
    """Insert a QUERY beat of recently used keys after about one in ``every`` beats."""
    out = []
    recent = []
    for b in beats:
        out.append(b)
        if b.op == Op.UPDATE:
            recent.extend(b.keys[i] for i in range(len(b.keys)) if b.mask >> i & 1)
        if recent and rng.random() < 1 / every:
            pick = [recent[int(j)] for j in rng.integers(0, len(recent), cfg.counter.lanes)]
            out.extend(update_beats(cfg, rng, pick, op=Op.QUERY, random_masks=rng.random() < 0.5))
            recent = recent[-64:]
    return out


def scenario(name, cfg, rng, n_keys):
    """The beats of one named scenario (see :data:`SCENARIOS`), ending with full checks."""
    c = cfg.counter
    W = c.lanes
    used = []
    beats = []
    small_rows = max(8, (1 << c.log2_counters) // 2)

    def learn(keys, **kw):
        used.extend(int(k) for k in keys)
        beats.extend(update_beats(cfg, rng, keys, **kw))

    if name == "zipf":
        learn(zipf_keys(cfg, rng, n_keys, rows=small_rows * 4), random_masks=True)
        beats[:] = _interleave_queries(cfg, rng, beats, used, every=8)
    elif name == "repeated":
        # one key on every lane for many beats (the worst RMW hazard), then a
        # second key in the same set, then the first again
        a, b = keys_in_set(cfg, rng, 2)
        learn([a] * n_keys)
        learn([b] * (n_keys // 2))
        learn([a, b] * (n_keys // 4), random_masks=True)
    elif name == "distinct":
        learn(random_keys(cfg, rng, n_keys))
    elif name == "pool":
        # a tiny pool of keys, two of them sharing a bank: every pattern of
        # runs (A A B, A B A, A X A with X in another bank) shows up in a beat
        pool = np.concatenate([keys_in_bank(cfg, rng, 3), random_keys(cfg, rng, 2)])
        learn(pool[rng.integers(0, len(pool), n_keys)], random_masks=True)
        beats[:] = _interleave_queries(cfg, rng, beats, used, every=4)
    elif name == "one_set":
        # many keys in one heavy-hitter set (so one bank): admissions and evictions
        ks = keys_in_set(cfg, rng, 3 * c.hh_ways + 2)
        weights = rng.permutation(len(ks)) + 1.0
        learn(ks[rng.choice(len(ks), n_keys, p=weights / weights.sum())])
        beats[:] = _interleave_queries(cfg, rng, beats, used, every=16)
    elif name == "one_bank":
        ks = keys_in_bank(cfg, rng, 4 * W + 3)
        learn(ks[rng.integers(0, len(ks), n_keys)], random_masks=True)
    elif name == "saturate":
        # drive every counter of a few keys of one set to 2**C - 1 (when C is
        # small enough to get there in a test), then keep hitting them
        ks = keys_in_set(cfg, rng, c.hh_ways + 1)
        per = c.counter_max + 3 if c.counter_max * len(ks) <= 8 * n_keys else n_keys // len(ks)
        learn(np.repeat(ks, per))
        learn(rng.permutation(np.repeat(ks, 3)))
    elif name == "clear":
        learn(zipf_keys(cfg, rng, n_keys // 2, rows=small_rows), random_masks=True)
        beats.extend(check_beats(cfg, rng, used, extra=8))
        beats.append(Beat(Op.CLEAR, [_garbage(cfg, rng) for _ in range(W)], int(rng.integers(0, 1 << W))))
        learn(zipf_keys(cfg, rng, n_keys // 2, rows=small_rows), random_masks=True)
    elif name == "bad_keys":
        # lanes naming a table past keys.tables must be dropped (counted, not learned)
        t_n, rb = _key_space(cfg)
        span = 1 << cfg.keys.table_bits
        if span == t_n:
            learn(zipf_keys(cfg, rng, n_keys, rows=small_rows), random_masks=True)
        else:
            good = zipf_keys(cfg, rng, n_keys, rows=small_rows)
            bad_t = rng.integers(t_n, span, n_keys, dtype=np.uint64)
            bad = (bad_t << np.uint64(rb)) | (good & np.uint64((1 << rb) - 1))
            mix = np.where(rng.random(n_keys) < 0.3, bad, good)
            used.extend(int(k) for k in good)
            beats.extend(update_beats(cfg, rng, mix, random_masks=True))
            beats.extend(update_beats(cfg, rng, mix[:4 * W], op=Op.QUERY, random_masks=True))
    else:
        raise ValueError(f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}")
    beats.extend(check_beats(cfg, rng, used))
    return beats


#: Scenarios run by the cosim tests, in order, on one DUT (no reset between).
SCENARIOS = ("zipf", "repeated", "distinct", "pool", "one_set", "one_bank", "saturate", "clear",
             "bad_keys")


# ---------------------------------------------------------------------------
# scoreboard (the golden model in stream order)
# ---------------------------------------------------------------------------

class CounterScoreboard:
    """Runs the golden model on accepted beats and checks every output beat.

    Parameters
    ----------
    cfg : HotlineConfig
    seed : int
        Printed in every mismatch message.

    Members
    -------
    golden : PopularityCounter
    beats_in, estimates_out, entries_out : int
        Beats accepted; ``estimates`` beats and ``readout`` entries checked.
    keys_in, bad_keys_in : int
        Keys learned (valid lanes of UPDATE beats); valid lanes of UPDATE and
        QUERY beats naming a table past ``keys.tables`` (dropped).
    """

    def __init__(self, cfg: HotlineConfig, seed: int):
        self.cfg = cfg
        self.seed = seed
        self.golden = PopularityCounter(cfg)
        self._pending_learn = []
        self._exp_est = deque()
        self._exp_ro = deque()
        self._ro_index = 0
        self.beats_in = 0
        self.keys_in = 0
        self.bad_keys_in = 0
        self.estimates_out = 0
        self.entries_out = 0
        self.tag = ""

    def _lanes(self, beat):
        tables, rb = _key_space(self.cfg)
        return [i for i in range(self.cfg.counter.lanes)
                if beat.mask >> i & 1 and (beat.keys[i] >> rb) < tables]

    def _flush(self):
        if self._pending_learn:
            self.golden.learn(np.array(self._pending_learn, dtype=np.uint64))
            self._pending_learn = []

    def accept(self, beat: Beat) -> None:
        """A ``keys`` beat was accepted (at input position ``beats_in``)."""
        pos = self.beats_in
        self.beats_in += 1
        lanes = self._lanes(beat)
        if beat.op in (Op.UPDATE, Op.QUERY):
            self.bad_keys_in += bin(beat.mask).count("1") - len(lanes)
        if beat.op == Op.UPDATE:
            self.keys_in += len(lanes)
            self._pending_learn.extend(beat.keys[i] for i in lanes)
            return
        self._flush()
        if beat.op == Op.QUERY:
            W = self.cfg.counter.lanes
            est = self.golden.estimate(np.array([beat.keys[i] for i in lanes], dtype=np.uint64))
            counts = [0] * W
            for i, e in zip(lanes, est.tolist()):
                counts[i] = e
            mask = sum(1 << i for i in lanes)
            self._exp_est.append((pos, beat, counts, mask))
        elif beat.op == Op.CLEAR:
            self.golden.clear()
        else:
            valid, keys, counts = self.golden.table()
            self._exp_ro.append((pos, valid.ravel().tolist(), keys.ravel().tolist(),
                                 counts.ravel().tolist()))

    def _fail(self, msg):
        raise AssertionError(f"{self.tag}{msg} (seed {self.seed}; replay with HOTLINE_SEED={self.seed})")

    def estimate(self, counts, mask) -> None:
        """An ``estimates`` beat came out."""
        if not self._exp_est:
            self._fail(f"unexpected estimates beat {counts} mask {mask:#x}")
        pos, beat, exp_counts, exp_mask = self._exp_est.popleft()
        self.estimates_out += 1
        if mask != exp_mask:
            self._fail(f"estimates of QUERY beat at input position {pos}: mask {mask:#x}, "
                       f"expected {exp_mask:#x}")
        for i, (got, exp) in enumerate(zip(counts, exp_counts)):
            if got != exp:
                self._fail(f"estimate of key {beat.keys[i]:#x} (lane {i} of QUERY beat at input "
                           f"position {pos}): got {got}, expected {exp}")

    def readout(self, valid, key, count, last) -> None:
        """A ``readout`` entry came out."""
        if not self._exp_ro:
            self._fail(f"unexpected readout entry valid={valid} key={key:#x} count={count}")
        pos, e_valid, e_keys, e_counts = self._exp_ro[0]
        i = self._ro_index
        ways = self.cfg.counter.hh_ways
        where = f"readout of READOUT beat at input position {pos}, set {i // ways} way {i % ways}"
        exp = (int(e_valid[i]), int(e_keys[i]), int(e_counts[i]))
        if (valid, key, count) != exp:
            self._fail(f"{where}: got (valid, key, count) = ({valid}, {key:#x}, {count}), "
                       f"expected ({exp[0]}, {exp[1]:#x}, {exp[2]})")
        is_last = i == len(e_valid) - 1
        if last != is_last:
            self._fail(f"{where}: last={last}, expected {int(is_last)}")
        self.entries_out += 1
        self._ro_index += 1
        if is_last:
            self._exp_ro.popleft()
            self._ro_index = 0

    @property
    def outstanding(self) -> int:
        """Output beats still expected."""
        ro = sum(len(e[1]) for e in self._exp_ro) - self._ro_index
        return len(self._exp_est) + ro

    def finish(self) -> None:
        self._flush()
        if self.outstanding:
            self._fail(f"{len(self._exp_est)} estimates beats and "
                       f"{self.outstanding - len(self._exp_est)} readout entries never came out")


# ---------------------------------------------------------------------------
# cocotb testbench
# ---------------------------------------------------------------------------

class StreamSource:
    """Drives ``<prefix>_valid``/``_payload`` from a queue of beats, with random idle gaps.

    The TB calls :meth:`drive` after a falling edge and :meth:`sample` in the
    read-only phase that follows (the values then hold until the rising edge).
    """

    def __init__(self, dut, prefix, rng, idle=0.0, pack=None):
        self.valid, self.ready, self.payload = stream_ports(dut, prefix)
        self.rng = rng
        self.idle = idle
        self.pack = pack
        self.queue = deque()
        self.sent = deque()  # beats accepted, for the caller to drain
        self._offer = None
        self.valid.value = 0

    def drive(self):
        if self._offer is None and self.queue and not (self.idle and self.rng.random() < self.idle):
            self._offer = self.queue.popleft()
            self.payload.value = self.pack(self._offer)
            self.valid.value = 1
        elif self._offer is None:
            self.valid.value = 0

    def sample(self):
        """Return True when the offered beat was taken at the coming edge."""
        if self._offer is not None and int(self.ready.value):
            self.sent.append(self._offer)
            self._offer = None
            return True
        return False

    @property
    def stalled(self):
        return self._offer is not None and not int(self.ready.value)

    @property
    def idle_now(self):
        return self._offer is None and not self.queue


class StreamSink:
    """Takes beats from ``<prefix>_valid``/``_payload``, with random backpressure.

    Also checks the stream rule: once ``valid`` is up, it stays up with the
    same payload until the beat is taken.
    """

    def __init__(self, dut, prefix, rng, backpressure=0.0):
        self.prefix = prefix
        self.valid, self.ready, self.payload = stream_ports(dut, prefix)
        self.rng = rng
        self.backpressure = backpressure
        self._ready = 0
        self._held = None  # payload offered and not taken in the previous cycle
        self.ready.value = 0

    def drive(self):
        self._ready = 0 if (self.backpressure and self.rng.random() < self.backpressure) else 1
        self.ready.value = self._ready

    def sample(self):
        """The payload taken at the coming edge, or None."""
        valid = int(self.valid.value)
        payload = int(self.payload.value) if valid else None
        if self._held is not None and payload != self._held:
            raise AssertionError(f"{self.prefix}: a beat offered and not taken changed or "
                                 f"vanished (valid {valid}, payload {payload} != {self._held})")
        self._held = None if (self._ready or not valid) else payload
        return payload if (self._ready and valid) else None


class TB:
    """Testbench of ``hotline_counter``: clock, reset, driver, monitors and scoreboard.

    Parameters
    ----------
    dut : cocotb handle of ``hotline_counter``
    cfg : HotlineConfig
    seed : int
    idle, est_bp, ro_bp : float
        Probabilities of a valid gap on ``keys`` and of ``ready`` low on
        ``estimates`` / ``readout`` in a cycle (changeable between runs).
    """

    def __init__(self, dut, cfg, seed, idle=0.0, est_bp=0.0, ro_bp=0.0):
        import cocotb
        from cocotb.clock import Clock
        self.dut = dut
        self.cfg = cfg
        self.seed = seed
        self.layouts = CounterLayouts(cfg)
        self.rng = random.Random(seed)
        self.board = CounterScoreboard(cfg, seed)
        L = self.layouts
        self.source = StreamSource(dut, "keys", self.rng, idle,
                                   pack=lambda b: L.pack_keys(b.op, b.keys, b.mask))
        self.est_sink = StreamSink(dut, "estimates", self.rng, est_bp)
        self.ro_sink = StreamSink(dut, "readout", self.rng, ro_bp)
        self.cycles = 0
        self.stall_cycles = 0
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())

    def peek_counters(self):
        """Every sketch counter, read from the Verilated memories: ``int64 [D, 2**S]``.

        Bank ``b``'s row ``d`` memory (``bank<b>.row<d>``) holds counters
        ``b << (S - bank_bits)`` onwards of sketch row ``d``.
        """
        c = self.cfg.counter
        per = c.counters // c.banks
        out = np.zeros((c.depth, c.counters), dtype=np.int64)
        for b in range(c.banks):
            bank = getattr(self.dut, f"bank{b}")
            for d in range(c.depth):
                mem = getattr(bank, f"row{d}")
                for i in range(per):
                    out[d, b * per + i] = int(mem[i].value)
        return out

    def check_counters(self, where=""):
        """Compare every counter with the golden model (call when the unit is idle)."""
        self.board._flush()
        got = self.peek_counters()
        exp = self.board.golden.counters
        bad = np.argwhere(got != exp)
        if bad.size:
            d, i = (int(x) for x in bad[0])
            raise AssertionError(
                f"{where}sketch row {d} counter {i}: got {int(got[d, i])}, expected "
                f"{int(exp[d, i])} ({len(bad)} counters differ) after input position "
                f"{self.board.beats_in - 1} (seed {self.seed}; replay with HOTLINE_SEED={self.seed})")

    def set_rates(self, idle=0.0, est_bp=0.0, ro_bp=0.0):
        self.source.idle, self.est_sink.backpressure, self.ro_sink.backpressure = idle, est_bp, ro_bp

    async def reset(self):
        """Pulse ``rst``, then wait out the unit's reset-time clear (``busy`` low)."""
        from cocotb.triggers import FallingEdge, RisingEdge
        await FallingEdge(self.dut.clk)      # (a run() ends in the read-only phase)
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        c = self.cfg.counter
        limit = max(c.counters, c.hh_sets) // c.banks + 16
        for cycle in range(limit):
            await RisingEdge(self.dut.clk)
            if not int(self.dut.busy.value):
                return cycle + 1
        raise AssertionError(f"busy still high {limit} cycles after reset (seed {self.seed})")

    async def run(self, beats, *, timeout=None, until_idle=True):
        """Send ``beats``, check every output against the golden model, wait until idle.

        Returns the number of cycles from the first accepted beat to the last
        cycle of work it caused (the last cycle with ``busy`` high or an output
        beat taken, so the drain of the queues is inside the window) and the
        stall cycles (``keys_valid`` high, ``keys_ready`` low) in them.
        """
        from cocotb.triggers import FallingEdge, ReadOnly
        L = self.layouts
        self.source.queue.extend(beats)
        first = last = None
        stalls = 0
        last_work = None
        limit = timeout or (50 * len(beats) + 20 * self.cfg.counter.hh_entries * 4
                            + 4 * (self.cfg.counter.counters + self.cfg.counter.hh_sets) + 1000)
        quiet = 0
        for cycle in range(limit):
            await FallingEdge(self.dut.clk)
            self.source.drive()
            self.est_sink.drive()
            self.ro_sink.drive()
            await ReadOnly()
            if self.source.stalled:
                stalls += 1
            if self.source.sample():
                beat = self.source.sent.popleft()
                self.board.accept(beat)
                first = cycle if first is None else first
                last = cycle
            est = self.est_sink.sample()
            if est is not None:
                self.board.estimate(*L.unpack_estimates(est))
            ro = self.ro_sink.sample()
            if ro is not None:
                self.board.readout(*L.unpack_readout(ro))
            self.cycles += 1
            busy = int(self.dut.busy.value)
            if first is not None and (busy or est is not None or ro is not None):
                last_work = cycle
            if self.source.idle_now and not self.board.outstanding:
                quiet = 0 if busy else quiet + 1
                if not until_idle or quiet >= 2:
                    break
        else:
            raise AssertionError(
                f"timeout after {limit} cycles: {len(self.source.queue)} beats unsent, "
                f"{self.board.outstanding} outputs outstanding (seed {self.seed})")
        self.board.finish()
        if first is None:
            return 0, stalls
        return max(last, last_work if last_work is not None else last) - first + 1, stalls


# ---------------------------------------------------------------------------
# cocotb tests
# ---------------------------------------------------------------------------

try:
    import cocotb as _cocotb
except ImportError:  # pragma: no cover - cocotb is a dependency
    _cocotb = None


def _env_int(name, default):
    text = os.environ.get(name)
    return int(text) if text else default


if _cocotb is not None and not os.environ.get("HOTLINE_BENCH"):

    @_cocotb.test()
    async def test_scenarios(dut):
        """Every scenario on one DUT, each under its own idle / backpressure rates."""
        from .runner import config_from_env, seed_from_env
        cfg = config_from_env()
        seed = seed_from_env(dut._log)
        tb = TB(dut, cfg, seed)
        await tb.reset()
        rng = np.random.default_rng(seed)
        n_keys = _env_int("HOTLINE_COUNTER_KEYS", 1200)
        only = os.environ.get("HOTLINE_COUNTER_SCENARIOS")
        names = only.split(",") if only else SCENARIOS
        rates = [(0.0, 0.0, 0.0), (0.3, 0.5, 0.5), (0.0, 0.8, 0.2), (0.6, 0.1, 0.9)]
        # a full compare of the sketch through VPI, when it is small enough to be cheap
        peek = cfg.counter.depth * cfg.counter.counters <= 8192
        for n, name in enumerate(names):
            idle, est_bp, ro_bp = rates[n % len(rates)]
            tb.set_rates(idle, est_bp, ro_bp)
            tb.board.tag = f"scenario {name}: "
            beats = scenario(name, cfg, rng, n_keys)
            cycles, stalls = await tb.run(beats)
            if peek:
                tb.check_counters(f"scenario {name}: ")
            dut._log.info(f"scenario {name}: {len(beats)} beats, {tb.board.estimates_out} estimates "
                          f"and {tb.board.entries_out} readout entries checked so far; "
                          f"idle {idle} bp {est_bp}/{ro_bp}; {cycles} cycles, {stalls} stalled")
        # the performance counters agree with what was sent
        for port, exp in (("perf_beats", tb.board.beats_in), ("perf_keys", tb.board.keys_in),
                          ("perf_bad_keys", tb.board.bad_keys_in)):
            got = int(getattr(dut, port).value)
            assert got == exp % (1 << 32), f"{port} {got}, expected {exp} (seed {seed})"
        assert int(dut.busy.value) == 0

        # A reset in the middle of use: the unit wipes what the scenarios left and then
        # answers, learns and reads out as a fresh golden model.
        clear_cycles = await tb.reset()
        c = cfg.counter
        assert clear_cycles >= max(c.counters, c.hh_sets) // c.banks, \
            f"busy fell {clear_cycles} cycles after reset, before a full clear (seed {seed})"
        tb.board = CounterScoreboard(cfg, seed)
        tb.board.tag = "after reset: "
        tb.set_rates(0.2, 0.3, 0.3)
        used = [k for b in beats for i, k in enumerate(b.keys) if b.mask >> i & 1]
        await tb.run(check_beats(cfg, rng, used, extra=16))
        if peek:
            tb.check_counters("after reset: ")
        await tb.run(scenario("zipf", cfg, rng, n_keys // 4))
        if peek:
            tb.check_counters("after reset: ")
        for port, exp in (("perf_beats", tb.board.beats_in), ("perf_keys", tb.board.keys_in)):
            got = int(getattr(dut, port).value)
            assert got == exp, f"after reset: {port} {got}, expected {exp} (seed {seed})"
        dut._log.info(f"after reset ({clear_cycles} cycles of clearing): "
                      f"{tb.board.estimates_out} estimates and {tb.board.entries_out} readout "
                      f"entries checked against a fresh golden model")

if _cocotb is not None and os.environ.get("HOTLINE_BENCH"):

    @_cocotb.test()
    async def bench_throughput(dut):
        """Sustained keys per cycle on the key streams in the .npz file named by HOTLINE_BENCH.

        No valid gaps, no backpressure.  Each stream is followed by a READOUT
        and queries checked against the golden model (a fast wrong answer is
        no answer), then a CLEAR.  Results go to HOTLINE_BENCH_OUT as JSON.
        """
        from .runner import config_from_env, seed_from_env
        cfg = config_from_env()
        seed = seed_from_env(dut._log)
        rng = np.random.default_rng(seed)
        tb = TB(dut, cfg, seed)
        await tb.reset()
        W = cfg.counter.lanes
        streams = np.load(os.environ["HOTLINE_BENCH"])
        results = []
        for name in streams.files:
            keys = streams[name]
            # a stream named query* is sent as QUERY beats (after being learned)
            query = name.startswith("query")
            if query:
                await tb.run(update_beats(cfg, rng, keys))
            beats = update_beats(cfg, rng, keys, op=Op.QUERY if query else Op.UPDATE)
            before = int(dut.perf_stalls.value)
            cycles, stalls = await tb.run(beats)
            perf_stalls = int(dut.perf_stalls.value) - before
            await tb.run(check_beats(cfg, rng, keys[:256], extra=16))
            results.append({
                "stream": name, "op": "QUERY" if query else "UPDATE",
                "keys": int(len(keys)), "beats": len(beats), "lanes": W,
                "cycles": cycles, "stall_cycles": stalls, "perf_stall_cycles": perf_stalls,
                "keys_per_cycle": len(keys) / cycles, "fraction_of_lanes": len(keys) / cycles / W,
            })
            dut._log.info(json.dumps(results[-1]))
            await tb.run([Beat(Op.CLEAR, [0] * W, 0)])
        with open(os.environ["HOTLINE_BENCH_OUT"], "w") as f:
            json.dump({"seed": seed, "results": results}, f)
