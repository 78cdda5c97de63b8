"""UartTransport against a Python responder of the bridge's protocol, over a socket pair and a pty."""

import os
import random
import socket
import sys
import threading

import pytest

from hotline.host.transport import TransportError, UartTransport
from hotline.uart_protocol import (BridgeModel, BusError, ProtocolError, Status,
                                   encode_response)

GAP_S = 0.02   # the responder's idle gap (the bridge's gap_bits, in seconds here)


class Regs:
    """A register space: 1 KiB of words, SLVERR at 0x100, DECERR beyond 0x400."""

    def __init__(self):
        self.words = {}

    def read(self, addr):
        self._check(addr)
        return self.words.get(addr, 0)

    def write(self, addr, value):
        self._check(addr)
        self.words[addr] = value

    @staticmethod
    def _check(addr):
        if addr == 0x100:
            raise BusError(Status.SLVERR)
        if addr >= 0x400:
            raise BusError(Status.DECERR)


class Responder(threading.Thread):
    """The bridge, in a thread: reads bytes from ``sock`` and answers like the RTL
    (:class:`BridgeModel`), an idle gap of ``GAP_S`` ending a frame.

    ``mangle_request(data) -> data`` and ``mangle_response(data) -> data`` corrupt
    the line in either direction.
    """

    def __init__(self, sock, addr_width=16, mangle_request=None, mangle_response=None):
        super().__init__(daemon=True)
        self.sock = sock
        self.regs = Regs()
        self.model = BridgeModel(self.regs.read, self.regs.write, addr_width)
        self.mangle_request = mangle_request or (lambda d: d)
        self.mangle_response = mangle_response or (lambda d: d)
        self.sock.settimeout(GAP_S)
        self.start()

    def run(self):
        while True:
            try:
                data = self.sock.recv(64)
            except TimeoutError:
                out = self.model.idle()
            except OSError:
                return
            else:
                if not data:
                    return
                data = self.mangle_request(data)
                out = b"".join(self.model.byte(b) for b in data)
            if out:
                self.sock.sendall(self.mangle_response(out))


@pytest.fixture
def link():
    """``make(**responder_kwargs) -> (UartTransport, Responder)`` over a socket pair."""
    made = []

    def make(timeout=0.5, **kw):
        host, dev = socket.socketpair()
        host.settimeout(timeout)
        made.extend([host, dev])
        port = host.makefile("rwb", buffering=0)
        made.append(port)
        return UartTransport(port, timeout=timeout), Responder(dev, **kw)

    yield make
    for obj in made:
        obj.close()


def test_reads_and_writes(link, seed):
    bus, dev = link()
    rng = random.Random(seed)
    shadow = {}
    for _ in range(300):
        addr = rng.randrange(0x100) * 4
        if addr == 0x100:
            continue
        if rng.random() < 0.5:
            value = rng.randrange(1 << 32)
            assert bus.write32(addr, value) is None
            shadow[addr] = value
        else:
            assert bus.read32(addr) == shadow.get(addr, 0)
    assert dev.regs.words == shadow
    assert all(s == Status.OK for s, _ in dev.model.responses)


@pytest.mark.parametrize("addr, status", [(0x100, Status.SLVERR), (0x800, Status.DECERR),
                                          (0x2, Status.BAD_ADDR), (1 << 16, Status.BAD_ADDR)])
def test_error_status_raises_transport_error(link, addr, status):
    bus, dev = link()
    for call in (lambda: bus.read32(addr), lambda: bus.write32(addr, 7)):
        with pytest.raises(TransportError, match=f"at {addr:#010x}: {status.name}: ") as info:
            call()
        assert info.value.status is status
    assert dev.regs.words == {}
    bus.write32(0x10, 5)                 # the link still works
    assert bus.read32(0x10) == 5


def test_garbled_request_is_bad_crc_and_changes_nothing(link):
    flips = iter([True, False, False, False])

    def flip_one_bit(data):
        if len(data) > 5 and next(flips, False):
            data = bytearray(data)
            data[5] ^= 0x20
        return bytes(data)

    bus, dev = link(mangle_request=flip_one_bit)
    with pytest.raises(TransportError, match="BAD_CRC: the bridge received a request with a "
                                             "wrong CRC") as info:
        bus.write32(0x20, 0xABCD)
    assert info.value.status is Status.BAD_CRC and dev.regs.words == {}
    bus.write32(0x20, 0xABCD)
    assert bus.read32(0x20) == 0xABCD


def test_corrupt_or_missing_response(link):
    bus, _ = link(mangle_response=lambda d: d[:3] + bytes([d[3] ^ 1]) + d[4:])
    with pytest.raises(TransportError, match="bad response: bad CRC in response") as info:
        bus.read32(0)
    assert info.value.status is None
    bus, _ = link(timeout=0.2, mangle_response=lambda d: d[:4])
    with pytest.raises(TransportError, match=r"no response from the bridge within 0.2 s "
                                             r"\(got 4 of 7 bytes"):
        bus.read32(0)
    bus, _ = link(timeout=0.2, mangle_response=lambda d: b"")
    with pytest.raises(TransportError, match="got 0 of 7 bytes: nothing"):
        bus.write32(0, 1)


def test_stale_input_is_discarded_before_a_request():
    class Port:
        def __init__(self):
            self.rx = bytearray(b"\x5a\x00garbage")
            self.sent = []

        def reset_input_buffer(self):
            self.rx.clear()

        def write(self, data):
            self.sent.append(bytes(data))
            self.rx += encode_response(Status.OK, 0x1234)

        def read(self, n):
            out, self.rx[:n] = bytes(self.rx[:n]), b""
            return out

    assert UartTransport(Port()).read32(4) == 0x1234


def test_bad_arguments():
    with pytest.raises(TypeError, match="port must have a read"):
        UartTransport(object())
    with pytest.raises(ValueError, match="timeout must be positive"):
        UartTransport(open(os.devnull, "r+b"), timeout=0)
    bus = UartTransport(open(os.devnull, "r+b"))
    with pytest.raises(ProtocolError, match="addr must be between"):
        bus.read32(-4)
    with pytest.raises(ProtocolError, match="value must be between"):
        bus.write32(0, 1 << 32)
    bus.close()


def test_open_without_pyserial_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "serial", None)
    with pytest.raises(ModuleNotFoundError, match="pip install pyserial"):
        UartTransport.open("/dev/ttyUSB0")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="no pty on this system")
def test_over_a_pty():
    """The host end of a raw pty, the responder behind its other end (like a USB-UART)."""
    import tty

    host_fd, dev_fd = os.openpty()
    tty.setraw(dev_fd)
    tty.setraw(host_fd)
    regs = Regs()
    model = BridgeModel(regs.read, regs.write, 16)
    stop = threading.Event()

    def serve():
        import select
        while not stop.is_set():
            ready, _, _ = select.select([dev_fd], [], [], GAP_S)
            if not ready:
                out = model.idle()
            else:
                out = b"".join(model.byte(b) for b in os.read(dev_fd, 64))
            if out:
                os.write(dev_fd, out)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = os.fdopen(host_fd, "r+b", buffering=0)
    try:
        bus = UartTransport(port, timeout=1.0)
        bus.write32(0x3C, 0x0BADF00D)
        assert bus.read32(0x3C) == 0x0BADF00D
        with pytest.raises(TransportError) as info:
            bus.read32(0x100)
        assert info.value.status is Status.SLVERR
    finally:
        stop.set()
        thread.join()
        port.close()
        os.close(dev_fd)
