"""Block-RAM estimates for the open ECP5 flow, before a place-and-route says the final word.

An ECP5 DP16KD block holds 18 kbit as 16384x1, 8192x2, 4096x4, 2048x9, 1024x18 or
512x36 (true dual port; 36 bits wide only as a pseudo dual port).  A memory of
``depth x width`` takes the cheapest tiling of one of those shapes.
"""

from __future__ import annotations

from ..config import HotlineConfig

__all__ = ["ECP5_DP16KD_SHAPES", "ECP5_85F_BLOCKS", "ecp5_bram_blocks", "counter_array_memories",
           "counter_array_blocks", "reorder_memories", "reorder_blocks"]

ECP5_DP16KD_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
ECP5_85F_BLOCKS = 208   # LFE5U-85F: 208 DP16KD = 3.74 Mbit


def ecp5_bram_blocks(depth: int, width: int, true_dual_port: bool = False) -> int:
    """DP16KD blocks for one ``depth x width`` memory (``true_dual_port``: two read/write
    ports, so the 512x36 shape, which has one read and one write port, is out)."""
    if depth < 1 or width < 1:
        raise ValueError(f"memory must be at least 1x1, not {depth}x{width}")
    shapes = ECP5_DP16KD_SHAPES[:-1] if true_dual_port else ECP5_DP16KD_SHAPES
    return min(-(-depth // d) * -(-width // w) for d, w in shapes)


def counter_array_memories(cfg: HotlineConfig) -> list[tuple[str, int, int, int]]:
    """The counter array's memories as ``(name, count, depth, width)``."""
    c, k = cfg.counter, cfg.keys
    entry = 1 + k.key_bits + c.counter_bits
    return [
        ("sketch row bank", c.depth * c.banks, c.counters // c.banks, c.counter_bits),
        ("heavy-hitter bank", c.banks, c.hh_sets // c.banks, c.hh_ways * entry),
    ]


def counter_array_blocks(cfg: HotlineConfig) -> dict:
    """Bits and estimated DP16KD blocks of the counter array's memories."""
    bits = blocks = 0
    for _name, count, depth, width in counter_array_memories(cfg):
        bits += count * depth * width
        blocks += count * ecp5_bram_blocks(depth, width)
    return {"bits": bits, "blocks": blocks, "fits_ecp5_85f": blocks <= ECP5_85F_BLOCKS}


#: Memories this shallow become LUT RAM (TRELLIS_DPR16X4), not DP16KD.
LUT_RAM_MAX_DEPTH = 32


def reorder_memories(cfg: HotlineConfig) -> list[tuple[str, int, int, int]]:
    """The reorder unit's memories as ``(name, count, depth, width)`` (see
    :mod:`hotline.rtl.reorder`): hot-map table copies (one write port for the load, one
    read port),
    the de-dup table (one read, one write port), the beat and cold-beat queues, and
    the small LUT-RAM FIFOs."""
    from ..rtl.dedupe import ITEM_QUEUE, dedupe_item_layout, dedupe_uvec_layout, dedupe_cold_layout
    from ..rtl.reorder import ReorderLayouts
    r, K = cfg.reorder, cfg.keys.key_bits
    W, E = r.lanes, r.dedupe_epoch_bits
    hot_word = 1 + K + r.slot_bits
    beat = W + W * r.slot_bits + W + r.sid_bits + 4
    cbeat = W * K + W + E + 1
    lay = ReorderLayouts(cfg)
    side = W * K + W + r.sid_bits + 3
    spec = 1 << max(1, (r.sample_buffer * r.beats_per_sample - 1).bit_length())
    item = dedupe_item_layout(cfg).size + max(1, (r.dedupe_buckets - 1).bit_length())
    return [
        ("hot-map table copy", r.hotmap_hashes * W, r.hotmap_buckets, r.hotmap_ways * hot_word),
        ("de-dup table", 1, r.dedupe_buckets, r.dedupe_ways * (E + K + r.u_bits)),
        ("beat queue", 1, r.dedupe_queue, beat),
        ("cold-beat queue", 1, r.dedupe_queue, cbeat),
        ("lookup side FIFO", 1, 8, side),
        ("de-dup item queue", 1, ITEM_QUEUE, item),
        ("de-dup number FIFO", 1, 16, dedupe_uvec_layout(cfg).size),
        ("de-dup new-key FIFO", 1, 16, dedupe_cold_layout(cfg).size),
        ("output sample buffer", 2, spec, lay.sample_out.size),
    ]


def reorder_blocks(cfg: HotlineConfig) -> dict:
    """Bits and estimated DP16KD blocks of the reorder unit (memories at most
    ``LUT_RAM_MAX_DEPTH`` deep are LUT RAM and counted in ``lut_ram_bits``)."""
    bits = blocks = lut_bits = 0
    for name, count, depth, width in reorder_memories(cfg):
        if depth <= LUT_RAM_MAX_DEPTH:
            lut_bits += count * depth * width
            continue
        bits += count * depth * width
        blocks += count * ecp5_bram_blocks(depth, width)
    return {"bits": bits, "blocks": blocks, "lut_ram_bits": lut_bits,
            "fits_ecp5_85f": blocks <= ECP5_85F_BLOCKS}
