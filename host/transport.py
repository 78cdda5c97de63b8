"""Host side of the UART-to-register bridge: 32-bit register reads and writes over a byte port.

:class:`UartTransport` speaks the protocol of :mod:`hotline.uart_protocol`
over any file-like byte port: a pyserial ``Serial`` (see
:meth:`UartTransport.open`), a pty, a pipe pair or a socket.  It sends one
request, waits for its one response, and turns every failure into a
:class:`TransportError` that names the status::

    from hotline.host.transport import UartTransport
    with UartTransport.open("/dev/ttyUSB0", baud=115200) as bus:
        bus.write32(0x0, 0x1234)
        assert bus.read32(0x0) == 0x1234

Nothing is retried: a write whose response was lost may or may not have been
done, and a register write need not be idempotent, so the caller decides.
"""

from __future__ import annotations

import time

from ..uart_protocol import (RESPONSE_LEN, STATUS_TEXT, Opcode, ProtocolError, Status,
                             decode_response, encode_read, encode_write)

__all__ = ["UartTransport", "TransportError"]


class TransportError(RuntimeError):
    """A register access over the UART failed.

    Members
    -------
    status : Status or None
        The bridge's error status, or None when no valid response came back
        (timeout, malformed response).
    """

    def __init__(self, message: str, status: Status | None = None):
        super().__init__(message)
        self.status = status


class UartTransport:
    """32-bit register access through the UART bridge.

    Parameters
    ----------
    port : file-like
        Has ``write(bytes)`` and ``read(n)``; ``read`` may return fewer bytes
        than asked (a socket, a pty) and returns ``b""`` or raises
        :class:`TimeoutError` when nothing came in time (pyserial with a
        ``timeout``, a socket with ``settimeout``).  ``flush()`` and
        ``reset_input_buffer()`` are called when present.
    timeout : float
        Seconds to wait for a whole response (the port's own timeout bounds
        each read; this bounds their sum).

    Members
    -------
    port
        The byte port.
    """

    def __init__(self, port, *, timeout: float = 1.0):
        for need in ("read", "write"):
            if not callable(getattr(port, need, None)):
                raise TypeError(f"port must have a {need}() method, not {type(port).__name__}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self.port = port
        self.timeout = timeout

    @classmethod
    def open(cls, device: str, baud: int = 115200, *, timeout: float = 1.0) -> "UartTransport":
        """Open a serial device with pyserial (8N1, no flow control)."""
        try:
            import serial
        except ImportError:
            raise ModuleNotFoundError(
                "UartTransport.open needs pyserial to open a serial port: pip install pyserial "
                "(or pass any file-like byte port to UartTransport(port))") from None
        port = serial.Serial(device, baudrate=baud, bytesize=8, parity="N", stopbits=1,
                             timeout=min(timeout, 0.1), xonxoff=False, rtscts=False)
        return cls(port, timeout=timeout)

    def close(self) -> None:
        close = getattr(self.port, "close", None)
        if callable(close):
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ accesses
    def read32(self, addr: int) -> int:
        """The 32-bit register at byte address ``addr`` (a multiple of 4)."""
        return self._access(Opcode.READ32, addr, encode_read(addr))

    def write32(self, addr: int, value: int) -> None:
        """Write the 32-bit ``value`` to the register at byte address ``addr``."""
        self._access(Opcode.WRITE32, addr, encode_write(addr, value))

    def _access(self, op: Opcode, addr: int, request: bytes) -> int:
        what = f"{op.name.lower()} at {addr:#010x}"
        reset = getattr(self.port, "reset_input_buffer", None)
        if callable(reset):
            reset()                      # a stale byte would shift every later response
        self.port.write(request)
        flush = getattr(self.port, "flush", None)
        if callable(flush):
            flush()
        raw = self._read_exactly(RESPONSE_LEN)
        if len(raw) < RESPONSE_LEN:
            raise TransportError(f"{what}: no response from the bridge within {self.timeout} s "
                                 f"(got {len(raw)} of {RESPONSE_LEN} bytes: "
                                 f"{raw.hex(' ') or 'nothing'}); check the port, baud rate and "
                                 f"that the board is programmed")
        try:
            status, value = decode_response(raw)
        except ProtocolError as exc:
            raise TransportError(f"{what}: bad response: {exc}") from None
        if status is not Status.OK:
            raise TransportError(f"{what}: {status.name}: {STATUS_TEXT[status]}", status)
        return value

    def _read_exactly(self, n: int) -> bytes:
        out = bytearray()
        deadline = time.monotonic() + self.timeout
        while len(out) < n and time.monotonic() < deadline:
            try:
                chunk = self.port.read(n - len(out))
            except TimeoutError:
                break
            if chunk:
                out += chunk
            elif chunk is None:          # a non-blocking port with nothing yet
                time.sleep(0.001)
            else:
                break                    # timeout or end of file
        return bytes(out)
