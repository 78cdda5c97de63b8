"""Resource estimates read off the elaborated design, checked against synthesis.

:func:`design_memories` lists every memory an Amaranth design builds (from its
RTLIL: depth, width, synchronous and asynchronous read ports, write ports), and
:func:`ecp5_memory_estimate` maps them the way ``synth_ecp5`` does on an
ECP5: a memory with an asynchronous read port, or at most
:data:`LUTRAM_MAX_DEPTH` words deep, becomes LUT RAM (``TRELLIS_DPR16X4``, one
copy per read port); any other becomes DP16KD block RAM, tiled from the
cheapest of its shapes (512x36 only with one read and one write port), one
copy per read port beyond what the block's two ports serve.
``tests/test_fpga_estimate.py`` compares the block count with yosys on small
configs of every unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .resources import ECP5_85F_BLOCKS

__all__ = ["Memory", "design_memories", "ecp5_memory_estimate", "LUTRAM_MAX_DEPTH",
           "DP16KD_SHAPES"]

#: Synchronous-read memories at most this deep become LUT RAM.
LUTRAM_MAX_DEPTH = 32
DP16KD_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))


@dataclass(frozen=True)
class Memory:
    module: str
    name: str
    depth: int
    width: int
    sync_reads: int
    async_reads: int
    writes: int

    @property
    def bits(self) -> int:
        return self.depth * self.width


def design_memories(component) -> list[Memory]:
    """Every memory of ``component`` (an Amaranth elaboratable), from its RTLIL."""
    from amaranth.back import rtlil
    text = rtlil.convert(component)
    out = []
    for mod in re.split(r"^module ", text, flags=re.M)[1:]:
        mod_name = mod.split("\n", 1)[0].strip()
        mems = {m.group(3): [int(m.group(2)), int(m.group(1))]
                for m in re.finditer(r"^\s*memory width (\d+) size (\d+) (\S+)", mod, re.M)}
        if not mems:
            continue
        ports = {name: [0, 0, 0] for name in mems}
        for cell in re.finditer(r"^\s*cell \$(memrd_v2|memwr_v2) \S+\n(.*?)^\s*end", mod,
                                re.M | re.S):
            body = cell.group(2)
            memid = re.search(r'parameter \\MEMID "\\\\(\S+)"', body).group(1)
            key = "\\" + memid
            if cell.group(1) == "memwr_v2":
                ports[key][2] += 1
            else:
                clk = re.search(r"parameter \\CLK_ENABLE (\S+)", body).group(1)
                ports[key][0 if clk.endswith("1") else 1] += 1
        for name, (depth, width) in mems.items():
            sr, ar, w = ports[name]
            out.append(Memory(mod_name, name.lstrip("\\"), depth, width, sr, ar, w))
    return out


def _dp16kd_blocks(depth: int, width: int, simple_dual_port: bool) -> int:
    shapes = DP16KD_SHAPES if simple_dual_port else DP16KD_SHAPES[:-1]
    return min(-(-depth // d) * -(-width // w) for d, w in shapes)


def ecp5_memory_estimate(component) -> dict:
    """DP16KD blocks and LUT-RAM cells the design's memories take on an ECP5.

    Returns ``{"dp16kd", "lutram_cells", "bram_bits", "lutram_bits", "memories",
    "fits_ecp5_85f"}``; ``memories`` lists each memory with its mapping.
    """
    blocks = cells = bbits = lbits = 0
    rows = []
    for mem in design_memories(component):
        reads = mem.sync_reads + mem.async_reads
        if mem.async_reads or mem.depth <= LUTRAM_MAX_DEPTH:
            n = max(1, reads) * -(-mem.depth // 16) * -(-mem.width // 4)
            cells += n
            lbits += mem.bits
            rows.append((mem, "LUTRAM", n))
        else:
            # a block has two ports: one write and one read (512x36 allowed), or, with more
            # reads, a copy of the memory for each read port
            copies = max(1, reads) if mem.writes else max(1, -(-reads // 2))
            n = copies * _dp16kd_blocks(mem.depth, mem.width, simple_dual_port=mem.writes <= 1)
            blocks += n
            bbits += mem.bits
            rows.append((mem, "DP16KD", n))
    return {"dp16kd": blocks, "lutram_cells": cells, "bram_bits": bbits, "lutram_bits": lbits,
            "memories": rows, "fits_ecp5_85f": blocks <= ECP5_85F_BLOCKS}
