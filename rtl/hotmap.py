"""The hot map in block RAM: a W-lane cuckoo lookup behind a request/response stream pair.

The host computes the whole cuckoo placement (:mod:`hotline.host.hotmap`) and
loads the image word by word through :attr:`HotMapLookup.load`; a lookup is
then a pure function of the image: read the candidate bucket of every hash
(one memory per hash function, so all of them in one cycle), compare the
keys, return hit and slot.

Ports: W lanes read every hash table each cycle.  A block RAM (ECP5 DP16KD,
Xilinx RAMB) has two ports, so every hash table is W copies (read
replication), each a simple dual-port RAM: one write port (the load writes
all copies at once) and one read port (one lane).  (Two lanes per copy
through a shared read/write port would halve the copies, but yosys does
not merge a read port into a write port for ECP5 and replicates the RAM
instead, so the copies are explicit.)

The lookup is a request stream (W keys per beat) and a response stream (W
``(hit, slot)`` per beat, in request order).  A user must not assume any
latency, only the order, so the block RAM version here (latency 1) can later
be swapped for one that reads buckets from off-chip memory over AXI.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import ConfigError, HotlineConfig
from .checks import require_config
from ..hashing import hotmap_hashes

__all__ = ["hotmap_entry_layout", "hotmap_load_layout", "hotmap_result_layout",
           "hotmap_addr_bits", "HotMapLookup"]


def _clog2(n: int) -> int:
    return (n - 1).bit_length()


def hotmap_entry_layout(cfg: HotlineConfig) -> data.StructLayout:
    """One slot word: ``valid`` (bit 0), ``key``, ``slot`` -- the image word of the host."""
    return data.StructLayout({"valid": 1, "key": cfg.keys.key_bits, "slot": cfg.reorder.slot_bits})


def hotmap_addr_bits(cfg: HotlineConfig) -> int:
    """Width of a slot address ``(hash << log2_buckets | bucket) << log2_ways | way``."""
    r = cfg.reorder
    return max(1, _clog2(r.hotmap_hashes)) + r.hotmap_log2_buckets + _clog2(r.hotmap_ways)


def hotmap_load_layout(cfg: HotlineConfig) -> data.StructLayout:
    """A load beat: slot address and slot word (see :mod:`hotline.host.hotmap` for both)."""
    return data.StructLayout({"addr": hotmap_addr_bits(cfg), "data": hotmap_entry_layout(cfg)})


def hotmap_result_layout(cfg: HotlineConfig) -> data.StructLayout:
    """One lane of a response: ``hit`` and ``slot`` (0 on a miss)."""
    return data.StructLayout({"hit": 1, "slot": cfg.reorder.slot_bits})


class HotMapLookup(wiring.Component):
    """W-lane exact hot-map lookup in block RAM.

    Memories: for each of the ``hotmap_hashes`` hash functions, W copies of
    a ``hotmap_buckets x (hotmap_ways x slot word)`` RAM with one write port
    (the load) and one read port (one lane), so no RAM has more ports than
    the primitive.  Pipeline (5 cycles, one beat per
    cycle, all stages move together): hashes -> bucket read -> read data
    registered -> key compare registered -> matches combined, registered as
    the response.

    Parameters
    ----------
    cfg : HotlineConfig
        ``reorder.lanes`` lanes, ``reorder.hotmap_*`` geometry, ``keys.key_bits`` keys.

    Members
    -------
    req : In(stream of ArrayLayout(key_bits, W))
        Keys to look up.
    resp : Out(stream of ArrayLayout(hotmap_result_layout, W))
        Results in request order (latency not part of the contract).
    load : In(stream of hotmap_load_layout)
        Slot writes; always ready.  Load only while no lookup is in flight.
    """

    def __init__(self, cfg: HotlineConfig):
        require_config(self, cfg)
        width = 1 + cfg.keys.key_bits + cfg.reorder.slot_bits
        if width > 64:
            raise ConfigError(f"a hot-map word is {width} bits, more than the 64 the host image holds")
        self.cfg = cfg
        r = cfg.reorder
        super().__init__({
            "req": In(stream.Signature(data.ArrayLayout(cfg.keys.key_bits, r.lanes))),
            "resp": Out(stream.Signature(data.ArrayLayout(hotmap_result_layout(cfg), r.lanes))),
            "load": In(stream.Signature(hotmap_load_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, r = self.cfg, self.cfg.reorder
        W, K = r.lanes, cfg.keys.key_bits
        entry = hotmap_entry_layout(cfg)
        way_bits = _clog2(r.hotmap_ways)
        fns = hotmap_hashes(cfg)
        LB = r.hotmap_log2_buckets

        # All stages advance together when the response is free or taken; the
        # read ports hold their data while stalled (read enable = advance).
        adv = Signal()
        v1, v2, v3, v4, v5 = Signal(), Signal(), Signal(), Signal(), Signal()
        m.d.comb += [adv.eq(~v5 | self.resp.ready), self.req.ready.eq(adv), self.resp.valid.eq(v5)]
        keys1 = Signal(data.ArrayLayout(K, W))
        keys2 = Signal(data.ArrayLayout(K, W))
        keys3 = Signal(data.ArrayLayout(K, W))
        addr1 = [[Signal(LB, name=f"addr_h{h}_l{l}") for l in range(W)] for h in range(len(fns))]
        with m.If(adv):
            m.d.sync += [v1.eq(self.req.valid), v2.eq(v1), v3.eq(v2), v4.eq(v3), v5.eq(v4),
                         keys1.eq(self.req.payload), keys2.eq(keys1), keys3.eq(keys2)]
            for h, fn in enumerate(fns):
                for l in range(W):
                    m.d.sync += addr1[h][l].eq(fn.amaranth(self.req.payload[l]))

        laddr = self.load.payload.addr
        m.d.comb += self.load.ready.eq(1)
        loading = Signal()
        m.d.comb += loading.eq(self.load.valid)
        bucket_of_load = laddr[way_bits:way_bits + LB]
        hits = [[] for _ in range(W)]
        for h in range(len(fns)):
            for lane in range(W):
                # A load never meets a lookup (loads only while none is in flight), so the
                # read/write collision behaviour is left open (``no_rw_check``): no bypass logic
                # between the RAM's output and its register.
                mem = Memory(shape=data.ArrayLayout(entry, r.hotmap_ways), depth=r.hotmap_buckets, init=[],
                             attrs={"no_rw_check": 1})
                m.submodules[f"table{h}_copy{lane}"] = mem
                wp = mem.write_port(granularity=1)
                m.d.comb += wp.addr.eq(bucket_of_load)
                for w in range(r.hotmap_ways):
                    m.d.comb += wp.data[w].eq(self.load.payload.data)
                with m.If(loading & (laddr[way_bits + LB:] == h)):
                    m.d.comb += wp.en.eq(Const(1, r.hotmap_ways) << laddr[:way_bits] if way_bits else 1)
                rp = mem.read_port()
                m.d.comb += [rp.addr.eq(addr1[h][lane]), rp.en.eq(adv)]
                # The RAM's output straight into a register (a DP16KD's clock-to-output is
                # slow), then the compare into registers (match and slot per way).
                data3 = Signal(data.ArrayLayout(entry, r.hotmap_ways), name=f"rd_h{h}_l{lane}", reset_less=True)
                with m.If(adv):
                    m.d.sync += data3.eq(rp.data)
                for w in range(r.hotmap_ways):
                    e = data3[w]
                    match4 = Signal(name=f"match_h{h}_l{lane}_w{w}")
                    slot4 = Signal(r.slot_bits, name=f"slot_h{h}_l{lane}_w{w}", reset_less=True)
                    with m.If(adv):
                        m.d.sync += [match4.eq(e.valid & (e.key == keys3[lane])), slot4.eq(e.slot)]
                    hits[lane].append((match4, slot4))

        for lane in range(W):
            # A key is stored at most once, so OR-ing the matching slot is exact.
            hit = Cat(*(match for match, _ in hits[lane])).any()
            slot = Const(0, r.slot_bits)
            for match, s in hits[lane]:
                slot = slot | (s & match.replicate(r.slot_bits))
            with m.If(adv):
                m.d.sync += [self.resp.payload[lane].hit.eq(hit), self.resp.payload[lane].slot.eq(slot)]
        return m
