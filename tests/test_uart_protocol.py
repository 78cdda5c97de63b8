"""The UART bridge's wire protocol (frames, CRC) and its reference responder."""

import random

import pytest

from hotline.uart_protocol import (REQ_SYNC, REQUEST_LEN, RESP_SYNC, RESPONSE_LEN, STATUS_TEXT,
                                   BridgeModel, BusError, Opcode, ProtocolError, Status, crc8,
                                   decode_request, decode_response, encode_read,
                                   encode_request, encode_response, encode_write)


def _crc8_bitwise(data: bytes) -> int:
    """CRC-8/SMBUS written out bit by bit (independent of the table in the module)."""
    crc = 0
    for byte in data:
        for k in range(7, -1, -1):
            top = (crc >> 7) ^ ((byte >> k) & 1)
            crc = (crc << 1) & 0xFF
            if top:
                crc ^= 0x07
    return crc


def test_crc8_is_crc8_smbus(seed):
    assert crc8(b"123456789") == 0xF4          # the catalogued check value of CRC-8/SMBUS
    assert crc8(b"") == 0
    rng = random.Random(seed)
    for _ in range(200):
        data = rng.randbytes(rng.randrange(0, 20))
        assert crc8(data) == _crc8_bitwise(data)
        cut = rng.randrange(len(data) + 1)
        assert crc8(data[cut:], crc8(data[:cut])) == crc8(data)


def test_frame_layout():
    assert encode_read(0x12345678)[:6] == bytes([0xA5, 0x01, 0x78, 0x56, 0x34, 0x12])
    w = encode_write(0x00000010, 0xDEADBEEF)
    assert w[:10] == bytes([0xA5, 0x02, 0x10, 0, 0, 0, 0xEF, 0xBE, 0xAD, 0xDE])
    assert w[10] == _crc8_bitwise(w[:10])
    assert REQUEST_LEN == {Opcode.READ32: 7, Opcode.WRITE32: 11} and RESPONSE_LEN == 7
    r = encode_response(Status.SLVERR, 0x01020304)
    assert r == bytes([RESP_SYNC, 0x08, 4, 3, 2, 1, _crc8_bitwise(r[:6])])
    assert set(STATUS_TEXT) == set(Status)


def test_roundtrip(seed):
    rng = random.Random(seed)
    for _ in range(200):
        addr, value = rng.randrange(1 << 32), rng.randrange(1 << 32)
        assert decode_request(encode_read(addr)) == (Opcode.READ32, addr, None)
        assert decode_request(encode_write(addr, value)) == (Opcode.WRITE32, addr, value)
        assert encode_request(Opcode.WRITE32, addr, value) == encode_write(addr, value)
        status = rng.choice(list(Status))
        assert decode_response(encode_response(status, value)) == (status, value)


def test_bad_frames_are_rejected_clearly():
    good = encode_response(Status.OK, 5)
    with pytest.raises(ProtocolError, match="7 bytes, got 3"):
        decode_response(good[:3])
    with pytest.raises(ProtocolError, match="got 0: \\(nothing\\)"):
        decode_response(b"")
    with pytest.raises(ProtocolError, match="starts with 0xa5"):
        decode_response(bytes([REQ_SYNC]) + good[1:])
    bad = bytearray(good)
    bad[3] ^= 0x10
    with pytest.raises(ProtocolError, match="bad CRC in response"):
        decode_response(bytes(bad))
    body = bytes([RESP_SYNC, 0x77, 0, 0, 0, 0])
    with pytest.raises(ProtocolError, match="unknown status 0x77"):
        decode_response(body + bytes([crc8(body)]))
    with pytest.raises(ProtocolError, match="unknown opcode 0x09"):
        decode_request(bytes([REQ_SYNC, 9, 0, 0]))
    with pytest.raises(ProtocolError, match="READ32 request has 7 bytes, not 6"):
        decode_request(encode_read(0)[:6])
    with pytest.raises(ProtocolError, match="addr must be between 0 and 0xFFFFFFFF"):
        encode_read(1 << 32)
    with pytest.raises(ProtocolError, match="value must be between"):
        encode_write(0, -1)
    with pytest.raises(TypeError, match="addr must be an integer"):
        encode_read(True)
    with pytest.raises(TypeError, match="value must be an integer"):
        encode_write(0, 1.0)
    with pytest.raises(ValueError, match="SLVERR or DECERR"):
        BusError(Status.OK)
    with pytest.raises(ValueError, match="addr_width"):
        BridgeModel(dict.get, dict.__setitem__, addr_width=33)


class Space:
    """A sparse register space with one SLVERR and one DECERR word."""

    def __init__(self):
        self.regs = {}

    def read(self, addr):
        if addr == 0x100:
            raise BusError(Status.SLVERR)
        if addr == 0x200:
            raise BusError(Status.DECERR)
        return self.regs.get(addr, 0)

    def write(self, addr, value):
        if addr in (0x100, 0x200):
            raise BusError(Status.SLVERR if addr == 0x100 else Status.DECERR)
        self.regs[addr] = value


def _model(addr_width=32):
    space = Space()
    return space, BridgeModel(space.read, space.write, addr_width)


def test_model_good_frames_and_bus_errors():
    space, m = _model(16)
    assert decode_response(m.feed(encode_write(0x40, 0xCAFEF00D))) == (Status.OK, 0)
    assert decode_response(m.feed(encode_read(0x40))) == (Status.OK, 0xCAFEF00D)
    # two good frames back to back: two responses, no gap needed
    out = m.feed(encode_write(0x44, 1) + encode_read(0x44))
    assert [decode_response(out[i:i + 7]) for i in (0, 7)] == [(Status.OK, 0), (Status.OK, 1)]
    for addr, status in ((0x100, Status.SLVERR), (0x200, Status.DECERR)):
        assert decode_response(m.feed(encode_read(addr))) == (status, 0)
        assert decode_response(m.feed(encode_write(addr, 3))) == (status, 0)
    for addr in (0x41, 0x42, 0x43, 1 << 16, 0xFFFFFFFC):
        assert decode_response(m.feed(encode_write(addr, 9))) == (Status.BAD_ADDR, 0)
    assert space.regs == {0x40: 0xCAFEF00D, 0x44: 1}
    assert m.accesses == [(Opcode.WRITE32, 0x40, 0xCAFEF00D), (Opcode.READ32, 0x40, None),
                          (Opcode.WRITE32, 0x44, 1), (Opcode.READ32, 0x44, None),
                          (Opcode.READ32, 0x100, None), (Opcode.WRITE32, 0x100, 3),
                          (Opcode.READ32, 0x200, None), (Opcode.WRITE32, 0x200, 3)]
    assert m.idle() == b""


def test_model_errors_wait_for_the_gap_and_answer_once():
    space, m = _model()
    cases = []
    bad_crc = bytearray(encode_write(0x10, 7))
    bad_crc[-1] ^= 1
    cases.append((bytes(bad_crc), (), Status.BAD_CRC))
    body = bytes([REQ_SYNC, 0x03, 0x10, 0, 0, 0])
    cases.append((body + bytes([crc8(body)]), (), Status.BAD_OPCODE))
    cases.append((b"\x00" + encode_write(0x10, 7), (), Status.BAD_SYNC))
    cases.append((encode_write(0x10, 7), {4}, Status.FRAMING))
    cases.append((encode_write(0x10, 7), {0}, Status.FRAMING))
    cases.append((encode_write(0x10, 7)[:10], (), Status.TRUNCATED))
    cases.append((bytes([REQ_SYNC]), (), Status.TRUNCATED))
    for data, bad_stop, status in cases:
        out = b"".join(m.byte(b, i in bad_stop) for i, b in enumerate(data))
        assert out == b"", f"{status.name}: answered before the gap"
        assert decode_response(m.idle()) == (status, 0)
        assert m.idle() == b""
        # back in sync: the next good frame works
        assert decode_response(m.feed(encode_read(0x10))) == (Status.OK, space.regs.get(0x10, 0))
    # a bad frame drains a good one sent in the same burst
    out = m.feed(bad_crc + encode_write(0x10, 8))
    assert out == b"" and decode_response(m.idle())[0] == Status.BAD_CRC
    # overrun: the request is done, the bytes sent during its response answered once
    assert decode_response(m.feed(encode_write(0x20, 5))) == (Status.OK, 0)
    assert m.busy_byte() == b"" and m.feed(encode_write(0x24, 6)) == b""
    assert decode_response(m.idle()) == (Status.OVERRUN, 0)
    assert space.regs == {0x20: 5}
    assert [a[1] for a in m.accesses] == [0x10] * len(cases) + [0x20]


def test_model_one_response_per_burst(seed):
    """Any burst without a complete good frame gets exactly one response, after the gap."""
    rng = random.Random(seed)
    space, m = _model(12)
    for _ in range(2000):
        data = bytearray(rng.choice([encode_read(rng.randrange(1 << 14)),
                                     encode_write(rng.randrange(1 << 14), rng.randrange(1 << 32)),
                                     rng.randbytes(rng.randrange(1, 12))]))
        for _ in range(rng.randrange(3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        data = data[:rng.randrange(1, len(data) + 1)]
        bad = {rng.randrange(len(data))} if rng.random() < 0.2 else set()
        before = len(m.responses)
        out = b"".join(m.byte(b, i in bad) for i, b in enumerate(data))
        out += m.idle()
        assert len(out) in (RESPONSE_LEN, 2 * RESPONSE_LEN)
        if len(out) == 2 * RESPONSE_LEN:   # a good frame, then the rest of the burst
            assert decode_response(out[:7])[0] in (Status.OK, Status.BAD_ADDR)
        assert len(m.responses) == before + len(out) // RESPONSE_LEN
        for i in range(0, len(out), RESPONSE_LEN):
            decode_response(out[i:i + RESPONSE_LEN])   # well formed
