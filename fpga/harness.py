"""A board top that keeps every port of the units alive with a handful of pins.

Until the accelerator top (one AXI4-Lite slave, one AXI4 master) exists, a board
build of a unit needs something to drive its hundreds of input bits and to
observe its outputs, or synthesis would remove it.  :class:`PortHarness` feeds
every input of every unit from one long shift register clocked in from a pin,
registers every output and XOR-reduces them through a pipelined tree (at most
four bits per LUT level, a register after each level) to one pin.  Nothing is
constant, every output reaches a pin, and the harness adds only registers and
one LUT level per stage, so it never sets the clock.  Its cost, about one
flip-flop per port bit, is part of the reported utilisation.
"""

from __future__ import annotations

from functools import reduce

from amaranth.hdl import Cat, Elaboratable, Module, Mux, Signal, ValueCastable, Value
from amaranth.lib import wiring

__all__ = ["port_bits", "PortHarness"]


def port_bits(component: wiring.Component):
    """``(inputs, outputs)``: lists of the component's port values by direction."""
    ins, outs = [], []
    for _path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if not isinstance(value, Value):
            continue
        (ins if member.flow == wiring.In else outs).append(value)
    return ins, outs


class PortHarness(Elaboratable):
    """Drive ``units`` from a serial input and fold their outputs into one bit.

    Parameters
    ----------
    units : dict of str -> wiring.Component
        The components to keep (each becomes a submodule under its name).
    source : str
        ``"pin"``: the shift register takes ``si``; ``"lfsr"``: it takes a
        32-bit LFSR (for boards without a spare input pin; ``si`` is unused).

    Members
    -------
    si : Signal, in
        Serial input shifted into the input register every cycle.
    so : Signal, out
        XOR of every output bit of every unit, a few cycles late.
    in_bits, out_bits : int
        Total input and output port bits of the units.
    """

    def __init__(self, units: dict, source: str = "pin"):
        if not units or source not in ("pin", "lfsr"):
            self._MustUse__silence = True
        if not units:
            raise ValueError("PortHarness needs at least one unit")
        if source not in ("pin", "lfsr"):
            raise ValueError(f"source must be 'pin' or 'lfsr', not {source!r}")
        self.source = source
        self.units = dict(units)
        self.si = Signal()
        self.so = Signal()
        ins, outs = [], []
        for unit in self.units.values():
            i, o = port_bits(unit)
            ins += i
            outs += o
        self._ins, self._outs = ins, outs
        self.in_bits = sum(len(v) for v in ins)
        self.out_bits = sum(len(v) for v in outs)

    def elaborate(self, platform):
        m = Module()
        for name, unit in self.units.items():
            m.submodules[name] = unit

        feed = self.si
        if self.source == "lfsr":
            # x^32 + x^22 + x^2 + x + 1, Galois form
            lfsr = Signal(32, init=1)
            m.d.sync += lfsr.eq(Mux(lfsr[0], (lfsr >> 1) ^ 0x80200003, lfsr >> 1))
            feed = lfsr[0]
        shift = Signal(max(1, self.in_bits), reset_less=True)
        m.d.sync += shift.eq(Cat(feed, shift[:-1]))
        pos = 0
        for value in self._ins:
            m.d.comb += value.eq(shift[pos:pos + len(value)])
            pos += len(value)

        level = Signal(max(1, self.out_bits), reset_less=True)
        m.d.sync += level.eq(Cat(*self._outs))
        while len(level) > 1:
            groups = [level[i:i + 4] for i in range(0, len(level), 4)]
            nxt = Signal(len(groups), reset_less=True)
            m.d.sync += nxt.eq(Cat(*(reduce(lambda a, b: a ^ b, list(g)) for g in groups)))
            level = nxt
        m.d.comb += self.so.eq(level[0])
        return m
