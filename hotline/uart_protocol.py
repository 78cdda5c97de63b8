"""Wire protocol of the UART-to-register bridge, shared by the RTL, the benches and the host.

The host talks to :class:`hotline.rtl.uart_bridge.UartBridge` over a UART (8
data bits, no parity, 1 stop bit, LSB first) with small binary frames.  Every
multi-byte field is little-endian.  The CRC is CRC-8 with polynomial
``x^8 + x^2 + x + 1`` (0x07), initial value 0, no reflection, no final XOR
(CRC-8/SMBUS), computed over every byte of the frame before it, the sync byte
included.

Request (host to bridge)::

    READ32   A5 01 a0 a1 a2 a3 crc                  7 bytes
    WRITE32  A5 02 a0 a1 a2 a3 d0 d1 d2 d3 crc      11 bytes

Response (bridge to host), exactly one per request, always 7 bytes::

    5A status d0 d1 d2 d3 crc

``d`` is the word read for an OK READ32, zero otherwise.  ``status`` is one of
:class:`Status`.  The address must be a multiple of 4 and below ``2**addr_width``
of the bridge (else ``BAD_ADDR``); nothing else is checked before the bus access.

Errors and resynchronisation: a frame is checked byte by byte.  A request
whose first byte is not the sync byte (``BAD_SYNC``), has an unknown opcode
(``BAD_OPCODE``), a byte with a bad stop bit (``FRAMING``) or a wrong CRC
(``BAD_CRC``) makes no bus access; the bridge then discards every byte until
the receive line has been idle (high, no byte in progress) for ``gap_bits`` bit
times, and only then answers with that first error.  A request that stops
short (no byte for ``gap_bits`` bit times inside a frame) is answered
``TRUNCATED``.  A byte that arrives while the bridge executes or answers a
request (a host that does not wait for the response) is discarded, and after
the response the bridge drains the line in the same way and answers
``OVERRUN`` once.  So every burst of bytes sent without a ``gap_bits`` pause gets
exactly one response, and the bridge is back in sync for the next frame
after any error.  A good frame needs no gap: frames may follow one another
back to back as long as the host waits for each response.

:class:`BridgeModel` is the reference responder: the same decisions at byte
level (with the idle gap as an explicit event), over any register space.
"""

from __future__ import annotations

import enum
from typing import Callable

__all__ = [
    "REQ_SYNC", "RESP_SYNC", "Opcode", "Status", "STATUS_TEXT", "ProtocolError", "crc8",
    "REQUEST_LEN", "RESPONSE_LEN", "ADDR_BYTES", "DATA_BYTES",
    "encode_read", "encode_write", "encode_request", "decode_request",
    "encode_response", "decode_response", "BridgeModel", "BusError",
]

#: First byte of every request.
REQ_SYNC = 0xA5
#: First byte of every response.
RESP_SYNC = 0x5A
#: CRC-8 generator polynomial (x^8 + x^2 + x + 1, without the x^8 term).
CRC_POLY = 0x07
ADDR_BYTES = 4
DATA_BYTES = 4


class Opcode(enum.IntEnum):
    """Request opcodes (the second byte of a request)."""
    READ32 = 0x01
    WRITE32 = 0x02


class Status(enum.IntEnum):
    """Response status codes (the second byte of a response)."""
    OK = 0x00          #: the bus access completed with OKAY (or EXOKAY)
    BAD_CRC = 0x01     #: the request's CRC did not match; no bus access
    FRAMING = 0x02     #: a byte of the request had a bad stop bit; no bus access
    BAD_OPCODE = 0x03  #: unknown opcode; no bus access
    TRUNCATED = 0x04   #: the line went idle for gap_bits inside a request; no bus access
    BAD_SYNC = 0x05    #: the first byte was not REQ_SYNC; no bus access
    BAD_ADDR = 0x06    #: address not a multiple of 4 or beyond the bridge's bus; no bus access
    OVERRUN = 0x07     #: bytes arrived while a request was being served; they were dropped
    SLVERR = 0x08      #: the bus answered SLVERR
    DECERR = 0x09      #: the bus answered DECERR


#: One line per status, for error messages.
STATUS_TEXT = {
    Status.OK: "done",
    Status.BAD_CRC: "the bridge received a request with a wrong CRC (line noise?)",
    Status.FRAMING: "the bridge received a byte with a bad stop bit (baud rate mismatch or noise?)",
    Status.BAD_OPCODE: "the bridge does not know the request's opcode",
    Status.TRUNCATED: "the request stopped short (a pause inside the frame)",
    Status.BAD_SYNC: "the request did not start with the sync byte",
    Status.BAD_ADDR: "address not a multiple of 4 or beyond the bridge's bus",
    Status.OVERRUN: "a request arrived before the previous response was complete",
    Status.SLVERR: "the register bus answered SLVERR (slave error)",
    Status.DECERR: "the register bus answered DECERR (no register at this address)",
}

#: Bytes after the opcode (address, data) for each opcode, CRC excluded.
PAYLOAD_LEN = {Opcode.READ32: ADDR_BYTES, Opcode.WRITE32: ADDR_BYTES + DATA_BYTES}
#: Total request length for each opcode.
REQUEST_LEN = {op: 2 + n + 1 for op, n in PAYLOAD_LEN.items()}
#: Every response has this many bytes.
RESPONSE_LEN = 1 + 1 + DATA_BYTES + 1


class ProtocolError(ValueError):
    """A frame could not be encoded or decoded (wrong length, sync, CRC, field range)."""


def _crc8_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return table


_CRC_TABLE = _crc8_table()


def crc8(data, crc: int = 0) -> int:
    """CRC-8/SMBUS of ``data`` (bytes-like), continuing from ``crc``."""
    for b in data:
        crc = _CRC_TABLE[crc ^ b]
    return crc


def _u32(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__} {value!r}")
    if not 0 <= value < 1 << 32:
        raise ProtocolError(f"{name} must be between 0 and 0xFFFFFFFF, not {value:#x}")
    return value


def _with_crc(body: bytes) -> bytes:
    return body + bytes([crc8(body)])


def encode_read(addr: int) -> bytes:
    """The READ32 request for ``addr``."""
    return _with_crc(bytes([REQ_SYNC, Opcode.READ32]) + _u32("addr", addr).to_bytes(4, "little"))


def encode_write(addr: int, value: int) -> bytes:
    """The WRITE32 request writing ``value`` to ``addr``."""
    return _with_crc(bytes([REQ_SYNC, Opcode.WRITE32]) + _u32("addr", addr).to_bytes(4, "little")
                     + _u32("value", value).to_bytes(4, "little"))


def encode_request(op: Opcode, addr: int, value: int = 0) -> bytes:
    """A request frame for ``op`` (``value`` only used by WRITE32)."""
    op = Opcode(op)
    return encode_read(addr) if op is Opcode.READ32 else encode_write(addr, value)


def decode_request(frame: bytes) -> tuple[Opcode, int, int | None]:
    """``(opcode, addr, value or None)`` of a complete request; :class:`ProtocolError` if bad."""
    frame = bytes(frame)
    if len(frame) < 3 or frame[0] != REQ_SYNC:
        raise ProtocolError(f"not a request frame: {frame.hex(' ')}")
    try:
        op = Opcode(frame[1])
    except ValueError:
        raise ProtocolError(f"unknown opcode {frame[1]:#04x}") from None
    if len(frame) != REQUEST_LEN[op]:
        raise ProtocolError(f"{op.name} request has {REQUEST_LEN[op]} bytes, not {len(frame)}")
    if crc8(frame[:-1]) != frame[-1]:
        raise ProtocolError(f"bad CRC in request {frame.hex(' ')}")
    addr = int.from_bytes(frame[2:6], "little")
    value = int.from_bytes(frame[6:10], "little") if op is Opcode.WRITE32 else None
    return op, addr, value


def encode_response(status: Status, value: int = 0) -> bytes:
    """A response frame."""
    return _with_crc(bytes([RESP_SYNC, Status(status)]) + _u32("value", value).to_bytes(4, "little"))


def decode_response(frame: bytes) -> tuple[Status, int]:
    """``(status, value)`` of a response; :class:`ProtocolError` if it is malformed."""
    frame = bytes(frame)
    if len(frame) != RESPONSE_LEN:
        raise ProtocolError(f"a response has {RESPONSE_LEN} bytes, got {len(frame)}: "
                            f"{frame.hex(' ') or '(nothing)'}")
    if frame[0] != RESP_SYNC:
        raise ProtocolError(f"response starts with {frame[0]:#04x}, not {RESP_SYNC:#04x}: "
                            f"{frame.hex(' ')}")
    if crc8(frame[:-1]) != frame[-1]:
        raise ProtocolError(f"bad CRC in response {frame.hex(' ')}")
    try:
        status = Status(frame[1])
    except ValueError:
        raise ProtocolError(f"unknown status {frame[1]:#04x} in response {frame.hex(' ')}") from None
    return status, int.from_bytes(frame[2:6], "little")


class BusError(Exception):
    """Raised by a :class:`BridgeModel` bus callback to answer SLVERR or DECERR."""

    def __init__(self, status: Status = Status.SLVERR):
        if status not in (Status.SLVERR, Status.DECERR):
            raise ValueError(f"a bus error is SLVERR or DECERR, not {status!r}")
        super().__init__(status.name)
        self.status = status


class BridgeModel:
    """Byte-level reference of the bridge's request parser and responder.

    Feed it what the bridge's receiver sees, one event at a time:
    :meth:`byte` (a received byte, ``framing_error`` for a bad stop bit) and
    :meth:`idle` (the line stayed idle for ``gap_bits`` bit times).  Each
    returns the response bytes the bridge sends at that point (often none).
    :meth:`busy_byte` is a byte that arrived while a response was pending
    (the RTL's OVERRUN case; in the model responses are immediate, so a caller
    uses it only to mirror timing it knows about).

    Parameters
    ----------
    read : callable(addr) -> int
        Bus read; raise :class:`BusError` for SLVERR/DECERR.
    write : callable(addr, value)
        Bus write; raise :class:`BusError` for SLVERR/DECERR.
    addr_width : int
        Address bits of the bridge's bus (4 to 32); a higher address is BAD_ADDR.

    Members
    -------
    accesses : list of (Opcode, addr, value)
        Bus accesses made, in order (value None for reads).
    responses : list of (Status, value)
        Responses sent, in order.
    """

    def __init__(self, read: Callable[[int], int], write: Callable[[int, int], None],
                 addr_width: int = 32):
        if isinstance(addr_width, bool) or not isinstance(addr_width, int) \
                or not 4 <= addr_width <= 32:
            raise ValueError(f"addr_width must be an integer from 4 to 32, not {addr_width!r}")
        self.read = read
        self.write = write
        self.addr_width = addr_width
        self.accesses: list = []
        self.responses: list = []
        self._reset_frame()
        self._pending: Status | None = None    # an error waiting for the idle gap

    def _reset_frame(self):
        self._buf = bytearray()
        self._need = None

    def _respond(self, status: Status, value: int = 0) -> bytes:
        self.responses.append((Status(status), value))
        return encode_response(status, value)

    def _fail(self, status: Status) -> bytes:
        self._reset_frame()
        if self._pending is None:
            self._pending = status
        return b""

    def byte(self, b: int, framing_error: bool = False) -> bytes:
        """A byte arrived; returns the response it completes (or ``b""``)."""
        if self._pending is not None:          # draining after an error
            return b""
        if framing_error:
            return self._fail(Status.FRAMING)
        buf = self._buf
        buf.append(b)
        if len(buf) == 1:
            if b != REQ_SYNC:
                return self._fail(Status.BAD_SYNC)
            return b""
        if len(buf) == 2:
            try:
                self._need = REQUEST_LEN[Opcode(b)]
            except ValueError:
                return self._fail(Status.BAD_OPCODE)
            return b""
        if len(buf) < self._need:
            return b""
        frame = bytes(buf)
        self._reset_frame()
        if crc8(frame[:-1]) != frame[-1]:
            return self._fail(Status.BAD_CRC)
        return self._execute(*decode_request(frame))

    def _execute(self, op: Opcode, addr: int, value: int | None) -> bytes:
        if addr % 4 or addr >> self.addr_width:
            return self._respond(Status.BAD_ADDR)
        self.accesses.append((op, addr, value))
        try:
            if op is Opcode.READ32:
                data = self.read(addr)
                return self._respond(Status.OK, data)
            self.write(addr, value)
            return self._respond(Status.OK)
        except BusError as exc:
            return self._respond(exc.status)

    def reset(self) -> None:
        """The bridge was reset: a frame in progress and a pending error are forgotten
        (the register space, :attr:`accesses` and :attr:`responses` are kept)."""
        self._reset_frame()
        self._pending = None

    def busy_byte(self) -> bytes:
        """A byte arrived while the bridge was busy: OVERRUN after the next idle gap."""
        return self._fail(Status.OVERRUN)

    def idle(self) -> bytes:
        """The line was idle for ``gap_bits`` bit times."""
        if self._pending is not None:
            status, self._pending = self._pending, None
            return self._respond(status)
        if self._buf:
            self._reset_frame()
            return self._respond(Status.TRUNCATED)
        return b""

    def feed(self, data: bytes) -> bytes:
        """Every byte of ``data`` (no framing errors), then nothing: the responses so far."""
        return b"".join(self.byte(b) for b in data)
