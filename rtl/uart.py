"""A plain UART: 8 data bits, no parity, 1 stop bit, LSB first, fixed baud divisor.

:class:`UartRx` samples each bit once in its middle: a falling edge of the
(synchronised) line starts a byte, the start bit is re-checked half a bit
later (a shorter low pulse is ignored as a glitch), then the 8 data bits and
the stop bit are sampled one bit time apart.  A low stop bit is reported as a
framing error with the byte; the receiver then waits for the line to go high
again (so a held-low line, a "break", gives one error, not a stream of zero
bytes).  :class:`UartTx` sends bytes from a stream back to back.

:func:`uart_divisor` turns a clock frequency and a baud rate into the divisor
(clock cycles per bit) and rejects a combination the receiver cannot follow.
"""

from __future__ import annotations

import numbers

from amaranth import Cat, C, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx", "UartTx", "uart_divisor", "rx_layout", "MIN_DIVISOR", "MAX_BAUD_ERROR"]

#: Fewest clock cycles per bit: mid-bit sampling needs a few cycles of margin.
MIN_DIVISOR = 8
#: Largest relative baud-rate error accepted (the sample point drifts 9.5 times this).
MAX_BAUD_ERROR = 0.02

#: What the receiver hands over per byte.
rx_layout = data.StructLayout({"data": 8, "framing_error": 1})


def uart_divisor(clk_hz, baud) -> int:
    """Clock cycles per bit for ``clk_hz`` and ``baud``, checked.

    Raises :class:`TypeError` for a non-number, :class:`ValueError` for a
    non-positive value, fewer than :data:`MIN_DIVISOR` cycles per bit, or a
    rounded rate more than :data:`MAX_BAUD_ERROR` away from ``baud``.
    """
    for name, value in (("clk_hz", clk_hz), ("baud", baud)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number, not {type(value).__name__} {value!r}")
        if not value > 0:
            raise ValueError(f"{name} must be positive, not {value!r}")
    divisor = round(clk_hz / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"clk_hz / baud = {clk_hz / baud:.2f} clock cycles per bit; the UART needs "
                         f"at least {MIN_DIVISOR}: lower baud or raise clk_hz")
    error = abs(clk_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"baud {baud} is {error:.1%} off at clk_hz {clk_hz} (divisor {divisor}); "
                         f"at most {MAX_BAUD_ERROR:.0%} works: choose a baud rate closer to "
                         f"clk_hz / n")
    return divisor


def _check_divisor(divisor) -> int:
    if isinstance(divisor, bool) or not isinstance(divisor, int):
        raise TypeError(f"divisor must be an integer, not {type(divisor).__name__} {divisor!r}")
    if divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be at least {MIN_DIVISOR} clock cycles per bit, not {divisor}")
    return divisor


class UartRx(wiring.Component):
    """UART receiver with mid-bit sampling.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least :data:`MIN_DIVISOR`; see :func:`uart_divisor`).

    Members
    -------
    rx : In(1)
        The serial line (asynchronous; synchronised by two flip-flops inside). Idles high.
    data : Out(stream.Signature(rx_layout, always_ready=True))
        One beat per received byte, at the middle of its stop bit; ``framing_error``
        is set when the stop bit was low.  There is no backpressure.
    busy : Out(1)
        High from a start bit until the byte is handed over, and while the line
        stays low after a framing error.
    line : Out(1)
        The synchronised line level.
    """

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(rx_layout, always_ready=True)),
            "busy": Out(1),
            "line": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        line = self.line
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)

        cnt = Signal(range(div))
        nbit = Signal(range(8))
        shreg = Signal(8)
        tick = cnt == 0

        m.d.sync += self.data.valid.eq(0)
        with m.If(~tick):
            m.d.sync += cnt.eq(cnt - 1)

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += cnt.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(tick):
                    with m.If(line):
                        m.next = "IDLE"            # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [cnt.eq(div - 1), nbit.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(tick):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], line)), cnt.eq(div - 1),
                                 nbit.eq(nbit + 1)]
                    with m.If(nbit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(tick):
                    m.d.sync += [self.data.valid.eq(1), self.data.payload.data.eq(shreg),
                                 self.data.payload.framing_error.eq(~line)]
                    m.next = "WAIT_HIGH"    # on to IDLE once the line is high
            with m.State("WAIT_HIGH"):
                with m.If(line):
                    m.next = "IDLE"
            m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m


class UartTx(wiring.Component):
    """UART transmitter: start bit, 8 data bits LSB first, one stop bit, bytes back to back.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit.

    Members
    -------
    data : In(stream.Signature(8))
        Bytes to send; ``ready`` is high while the transmitter is idle and in the
        last cycle of a stop bit, so bytes go out back to back.
    tx : Out(1)
        The serial line, driven from a flip-flop; idles high.
    busy : Out(1)
        High while a byte is being sent.
    """

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__({
            "data": In(stream.Signature(8)),
            "tx": Out(1, init=1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        shreg = Signal(10, init=(1 << 10) - 1)
        left = Signal(range(11))
        cnt = Signal(range(div))

        last = (left == 1) & (cnt == 0)            # the last cycle of a stop bit
        m.d.comb += [self.tx.eq(shreg[0]), self.busy.eq(left != 0),
                     self.data.ready.eq((left == 0) | last)]
        with m.If(self.data.valid & self.data.ready):  # the next start bit follows at once
            m.d.sync += [shreg.eq(Cat(C(0, 1), self.data.payload, C(1, 1))),
                         left.eq(10), cnt.eq(div - 1)]
        with m.Elif(left != 0):
            with m.If(cnt == 0):
                m.d.sync += [shreg.eq(Cat(shreg[1:], C(1, 1))), left.eq(left - 1),
                             cnt.eq(div - 1)]
            with m.Else():
                m.d.sync += cnt.eq(cnt - 1)
        return m
