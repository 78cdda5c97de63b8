"""A register FIFO that accepts several entries per cycle and releases one.

Used by the popularity counter array as each bank's input queue: a beat of W
lanes may put up to W operations into one bank's queue in a cycle, and the
bank's pipeline takes one per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Shape, ShapeCastable, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["MultiWriteFIFO"]


class MultiWriteFIFO(wiring.Component):
    """FIFO in registers with ``writers`` write lanes and one read port.

    In a cycle every lane ``i`` with ``w_en[i]`` set stores ``w_data[i]``;
    the enabled lanes enter in lane order (lane 0 first).  The writer must
    check room itself: at most ``depth - level`` lanes may be enabled in a
    cycle (``level`` is registered, so an entry read in the same cycle does
    not make room until the next one).  Writing more is a protocol error and
    overwrites the oldest entries.

    Parameters
    ----------
    shape : shape-like
        Shape of an entry (e.g. a :class:`amaranth.lib.data.StructLayout`).
    depth : int
        Number of entries, a power of two of at least 2.
    writers : int
        Number of write lanes, 1 to ``depth``.

    Members
    -------
    w_en : In(writers)
        Per lane: store this lane's entry now.
    w_data : In(ArrayLayout(shape, writers))
        Per lane: the entry to store.
    r_valid : Out(1)
        The queue is not empty; ``r_data`` is its oldest entry.
    r_data : Out(shape)
        The oldest entry.
    r_ready : In(1)
        Remove the oldest entry at the end of this cycle (when ``r_valid``).
    level : Out(range(depth + 1))
        Entries held (registered).
    """

    def __init__(self, shape, depth: int, writers: int):
        self._MustUse__silence = True  # no "never used" warning if an argument is rejected
        if not isinstance(shape, ShapeCastable):
            shape = Shape.cast(shape)
        for name, value in (("depth", depth), ("writers", writers)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"MultiWriteFIFO {name} must be an integer, not {value!r}")
        if depth < 2 or depth & (depth - 1):
            raise ValueError(f"MultiWriteFIFO depth must be a power of two >= 2, not {depth}")
        if not 1 <= writers <= depth:
            raise ValueError(f"MultiWriteFIFO writers must be 1..depth={depth}, not {writers}")
        self._MustUse__silence = False
        self.shape = shape
        self.depth = depth
        self.writers = writers
        super().__init__({
            "w_en": In(writers),
            "w_data": In(data.ArrayLayout(shape, writers)),
            "r_valid": Out(1),
            "r_data": Out(shape),
            "r_ready": In(1),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        abits = (self.depth - 1).bit_length()
        # The storage is a memory with one write port per lane and an
        # asynchronous read port: on an FPGA it maps to registers (or
        # distributed RAM), and simulators handle it as an array.
        m.submodules.store = store = Memory(shape=Shape.cast(self.shape).width, depth=self.depth,
                                            init=[])
        wp = Signal(abits)
        rp = Signal(abits)

        # Lane i goes to wp + (number of enabled lanes below i): lanes keep their order.
        offset = Const(0, range(self.writers + 1))
        for i in range(self.writers):
            port = store.write_port()
            m.d.comb += [
                port.en.eq(self.w_en[i]),
                port.addr.eq((wp + offset)[:abits]),
                port.data.eq(self.w_data[i].as_value()),
            ]
            offset = offset + self.w_en[i]
        pushed = offset
        read = store.read_port(domain="comb")

        pop = Signal()
        m.d.comb += [
            read.addr.eq(rp),
            self.r_valid.eq(self.level != 0),
            self.r_data.eq(read.data),
            pop.eq(self.r_valid & self.r_ready),
        ]
        m.d.sync += [
            wp.eq(wp + pushed),
            rp.eq(rp + pop),
            self.level.eq(self.level + pushed - pop),
        ]
        return m
