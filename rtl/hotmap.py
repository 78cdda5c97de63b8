"""The hot map in block RAM: a W-lane cuckoo lookup behind a request/response stream pair.

The host computes the whole cuckoo placement (:mod:`hotline.host.hotmap`) and
loads the image word by word through :attr:`HotMapLookup.load`; a lookup is
then a pure function of the image: read the candidate bucket of every hash
(one memory per hash function, so all of them in one cycle), compare the
keys, return hit and slot.

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

        # Stage 1 holds the keys whose buckets are being read; it moves on when
        # the response is taken (or empty), and the read ports hold their data
        # while it waits (read enable = advance).
        s1_valid = Signal()
        s1_keys = Signal(data.ArrayLayout(K, W))
        advance = Signal()
        m.d.comb += [advance.eq(~s1_valid | self.resp.ready), self.req.ready.eq(advance)]
        with m.If(advance):
            m.d.sync += [s1_valid.eq(self.req.valid), s1_keys.eq(self.req.payload)]
        m.d.comb += self.resp.valid.eq(s1_valid)

        addr = self.load.payload.addr
        m.d.comb += self.load.ready.eq(1)
        hits = [[] for _ in range(W)]
        for h, fn in enumerate(hotmap_hashes(cfg)):
            mem = Memory(shape=data.ArrayLayout(entry, r.hotmap_ways), depth=r.hotmap_buckets, init=[])
            m.submodules[f"table{h}"] = mem
            wp = mem.write_port(granularity=1)
            m.d.comb += wp.addr.eq(addr[way_bits:way_bits + r.hotmap_log2_buckets])
            for w in range(r.hotmap_ways):
                m.d.comb += wp.data[w].eq(self.load.payload.data)
            with m.If(self.load.valid & (addr[way_bits + r.hotmap_log2_buckets:] == h)):
                m.d.comb += wp.en.eq(Const(1, r.hotmap_ways) << addr[:way_bits] if way_bits else 1)
            for lane in range(W):
                rp = mem.read_port()
                m.d.comb += [rp.addr.eq(fn.amaranth(self.req.payload[lane])), rp.en.eq(advance)]
                for w in range(r.hotmap_ways):
                    e = rp.data[w]
                    hits[lane].append((e.valid & (e.key == s1_keys[lane]), e.slot))

        for lane in range(W):
            # A key is stored at most once, so OR-ing the matching slot is exact.
            hit = Cat(*(match for match, _ in hits[lane])).any()
            slot = Const(0, r.slot_bits)
            for match, s in hits[lane]:
                slot = slot | (s & match.replicate(r.slot_bits))
            m.d.comb += [self.resp.payload[lane].hit.eq(hit), self.resp.payload[lane].slot.eq(slot)]
        return m
