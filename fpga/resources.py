"""Block-RAM estimates for the open ECP5 flow, before a place-and-route says the final word.

An ECP5 DP16KD block holds 18 kbit as 16384x1, 8192x2, 4096x4, 2048x9, 1024x18 or
512x36 (true dual port; 36 bits wide only as a pseudo dual port).  A memory of
``depth x width`` takes the cheapest tiling of one of those shapes.
"""

from __future__ import annotations

from ..config import HotlineConfig

__all__ = ["ECP5_DP16KD_SHAPES", "ECP5_85F_BLOCKS", "ecp5_bram_blocks", "lutram_cells",
           "counter_array_memories", "counter_array_blocks", "gather_memories", "reorder_memories",
           "reorder_blocks"]

ECP5_DP16KD_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
ECP5_85F_BLOCKS = 208   # LFE5U-85F: 208 DP16KD = 3.74 Mbit


def ecp5_bram_blocks(depth: int, width: int, true_dual_port: bool = False) -> int:
    """DP16KD blocks for one ``depth x width`` memory (``true_dual_port``: two read/write
    ports, so the 512x36 shape, which has one read and one write port, is out)."""
    if depth < 1 or width < 1:
        raise ValueError(f"memory must be at least 1x1, not {depth}x{width}")
    shapes = ECP5_DP16KD_SHAPES[:-1] if true_dual_port else ECP5_DP16KD_SHAPES
    return min(-(-depth // d) * -(-width // w) for d, w in shapes)


def counter_array_memories(cfg: HotlineConfig) -> list[tuple[str, int, int, int, str]]:
    """The counter array's memories as ``(name, count, depth, width, primitive)``.

    One entry per memory of :class:`hotline.rtl.popularity.PopularityCounterArray`
    (``count`` copies of ``depth x width``).  ``primitive`` is ``"DP16KD"`` for
    the memories with a synchronous read port (block RAM) and ``"LUTRAM"`` for
    the queues, whose read port is asynchronous (TRELLIS_DPR16X4).  Every
    memory has one write and one read port.
    """
    c, k = cfg.counter, cfg.keys
    entry = 1 + k.key_bits + c.counter_bits
    row_bits = c.log2_counters - c.bank_bits
    set_bits = c.hh_set_bits - c.bank_bits
    op = k.key_bits + c.depth * row_bits + set_bits + (c.lanes + 1 - 1).bit_length() + 1
    return [
        ("sketch row bank", c.depth * c.banks, c.counters // c.banks, c.counter_bits, "DP16KD"),
        ("heavy-hitter bank", c.banks, c.hh_sets // c.banks, c.hh_ways * entry, "DP16KD"),
        ("bank beat queue", c.banks, c.fifo_depth, c.lanes * (op + 1), "LUTRAM"),
        ("bank answer queue", c.banks, c.fifo_depth, c.lanes * c.counter_bits, "LUTRAM"),
        ("query-beat queue", 1, c.fifo_depth, c.lanes * (1 + c.bank_bits) + c.banks, "LUTRAM"),
    ]


def lutram_cells(depth: int, width: int) -> int:
    """TRELLIS_DPR16X4 cells (16 x 4 LUT RAM) for one ``depth x width`` memory."""
    if depth < 1 or width < 1:
        raise ValueError(f"memory must be at least 1x1, not {depth}x{width}")
    return -(-depth // 16) * -(-width // 4)


def counter_array_blocks(cfg: HotlineConfig) -> dict:
    """Bits and estimated DP16KD blocks of the counter array's block-RAM memories.

    ``bits`` and ``blocks`` count the block-RAM memories (sketch and heavy
    hitters); ``lutram_bits`` and ``lutram_cells`` the LUT-RAM queues.
    """
    bits = blocks = lbits = cells = 0
    for _name, count, depth, width, prim in counter_array_memories(cfg):
        if prim == "DP16KD":
            bits += count * depth * width
            blocks += count * ecp5_bram_blocks(depth, width)
        else:
            lbits += count * depth * width
            cells += count * lutram_cells(depth, width)
    return {"bits": bits, "blocks": blocks, "fits_ecp5_85f": blocks <= ECP5_85F_BLOCKS,
            "lutram_bits": lbits, "lutram_cells": cells}

    """Bits and estimated DP16KD blocks of the counter array's memories."""
    bits = blocks = 0
    for _name, count, depth, width in counter_array_memories(cfg):
        bits += count * depth * width
        blocks += count * ecp5_bram_blocks(depth, width)
    return {"bits": bits, "blocks": blocks, "fits_ecp5_85f": blocks <= ECP5_85F_BLOCKS}


def gather_memories(cfg: HotlineConfig) -> list[tuple[str, int, int, int]]:
    """The gather DMA's memories as ``(name, count, depth, width)``.

    Taken from the RTL's own queue plan (:func:`hotline.rtl.gather.memory_plan`),
    so the list cannot drift from what :class:`~hotline.rtl.gather.GatherDMA`
    builds.  Each memory has one write and one read port.  The queues read
    asynchronously (``rowq``, ``rdone``, ``wrowq``, ``wdata``, ``wlen``) are LUT
    RAM whatever their size; the others may be block RAM or LUT RAM, as yosys
    finds cheaper.
    """
    from ..rtl.gather import memory_plan
    return [(name, 1, depth, width) for name, depth, width, _sync in memory_plan(cfg)]

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
