"""The register map of the Hotline accelerator.

GENERATED from hotline/regs/hotline.rdl by ``python -m hotline.regs.generate``:
do not edit; tests/test_regs.py fails when this file is stale.  The driver takes
its constants from here and :class:`hotline.rtl.csr.CSRBlock` builds the
hardware from :data:`REGISTERS`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Opcode", "Status", "Field", "Register", "REGISTERS", "BY_NAME", "ADDRESS_BITS", "MAGIC"]


class Opcode(enum.IntEnum):
    """Command opcodes (CMD_OPCODE.OPCODE)."""
    NOP = 0  #: Does nothing; completes with OK (a fence: it completes after every earlier command).
    LEARN = 1  #: Stream COUNT keys (64-bit words) at ADDR_A into the popularity counter array.
    READOUT = 2  #: Write the heavy-hitter table (one 64-bit entry each: key, count, valid) to ADDR_B; at most COUNT entries.
    ESTIMATE = 3  #: Write the sketch estimate (32-bit) of each of COUNT keys at ADDR_A to ADDR_B.
    CLEAR = 4  #: Zero every counter and empty the heavy-hitter table.
    LOAD_HOTMAP = 5  #: Load COUNT 64-bit words of a hot-map image from ADDR_A.
    CLASSIFY = 6  #: Classify COUNT samples of ARG (= keys_per_sample) keys (64-bit words) at ADDR_A; at ADDR_B: COUNT*ARG remap words (hot << 63 | index), COUNT popular ids, COUNT non-popular ids, the distinct cold keys. RESULT0 = popular | non_popular << 16, RESULT1 = cold keys | sample overflow << 30 | key overflow << 31.
    GATHER = 7  #: Copy the rows of COUNT packed keys at ADDR_A (key u to row u) into the staging buffer at ADDR_B. RESULT0 = rows moved, RESULT1 = failed keys.
    SCATTER = 8  #: Copy COUNT staged rows at ADDR_B back to their tables (packed keys at ADDR_A). RESULT0 = rows moved, RESULT1 = failed keys.
    SET_TABLES = 9  #: Load COUNT table descriptors (word 0: base address; word 1: stride bytes [31:0], rows [63:32]) from ADDR_A; ARG = row bytes.


class Status(enum.IntEnum):
    """Completion status codes (DONE_HEAD.STATUS)."""
    OK = 0  #: The command finished without error.
    BAD_OPCODE = 1  #: The opcode is not one of opcode_e; nothing was done.
    AXI_ERROR = 2  #: A host-memory read or write got SLVERR or DECERR; RESULT1 holds the count of failed accesses.
    BAD_ROW = 3  #: A key's table or row is out of range; its row was not copied.
    CAPACITY = 4  #: A batch exceeds the unit's capacity (samples, cold keys, hot-map words).
    BAD_ARGUMENT = 5  #: An argument is out of range (count, key width, alignment); nothing was done.


@dataclass(frozen=True)
class Field:
    """One field: bits ``[lsb + width - 1 : lsb]`` of its register.

    ``kind`` is how hardware implements it: ``const``, ``status`` (driven by
    hardware), ``storage`` (software read/write), ``pulse`` (write-only, one
    cycle) or ``w1c`` (set by hardware, write 1 to clear).
    """
    name: str
    lsb: int
    width: int
    kind: str
    reset: int
    encode: str | None
    desc: str

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    def get(self, word: int) -> int:
        """This field's value in a register word."""
        return (word >> self.lsb) & ((1 << self.width) - 1)

    def put(self, value: int) -> int:
        """``value`` placed in this field (a one-line error if it does not fit)."""
        if not 0 <= value < (1 << self.width):
            raise ValueError(f"{value} does not fit in field {self.name} ({self.width} bits)")
        return value << self.lsb


@dataclass(frozen=True)
class Register:
    """One 32-bit register at byte ``offset``."""
    name: str
    offset: int
    title: str
    fields: tuple

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r}")

    @property
    def reset(self) -> int:
        return sum(f.reset << f.lsb for f in self.fields if f.kind != 'status')


REGISTERS = (
    Register('ID', 0x000, 'Identification', (
        Field('MAGIC', 0, 32, 'const', 0x484F544C, None,
              '0x484F544C, ASCII HOTL.'),
    )),
    Register('VERSION', 0x004, 'Version', (
        Field('MINOR', 0, 16, 'const', 0x0, None,
              'Register map minor version.'),
        Field('MAJOR', 16, 16, 'const', 0x1, None,
              'Register map major version.'),
    )),
    Register('CAPS_KEYS', 0x010, 'Key-space capabilities', (
        Field('TABLES', 0, 7, 'status', 0x0, None,
              'Embedding tables.'),
        Field('ROW_BITS', 8, 6, 'status', 0x0, None,
              'Width of a row index.'),
        Field('LANES', 16, 5, 'status', 0x0, None,
              'Keys per beat (W) of the counter array and the reorder unit.'),
    )),
    Register('CAPS_COUNTER', 0x014, 'Counter-array capabilities', (
        Field('DEPTH', 0, 4, 'status', 0x0, None,
              'Sketch rows D.'),
        Field('LOG2_COUNTERS', 4, 5, 'status', 0x0, None,
              'log2 of the counters per sketch row (S).'),
        Field('COUNTER_BITS', 9, 6, 'status', 0x0, None,
              'Counter width C.'),
        Field('LOG2_HH_SETS', 15, 5, 'status', 0x0, None,
              'log2 of the heavy-hitter sets.'),
        Field('HH_WAYS', 20, 5, 'status', 0x0, None,
              'Heavy-hitter ways.'),
    )),
    Register('CAPS_REORDER', 0x018, 'Reorder-unit capabilities', (
        Field('LOG2_HOTMAP_SLOTS', 0, 5, 'status', 0x0, None,
              'log2 of the hot-map slots.'),
        Field('LOG2_MAX_BATCH_KEYS', 5, 5, 'status', 0x0, None,
              'log2 of the most unique cold keys in a batch.'),
        Field('LOG2_MAX_BATCH_SAMPLES', 10, 5, 'status', 0x0, None,
              'log2 of the most samples in a batch.'),
        Field('KEYS_PER_SAMPLE', 15, 7, 'status', 0x0, None,
              'Keys per sample (T).'),
    )),
    Register('CAPS_BUS', 0x01C, 'Host-bus capabilities', (
        Field('DATA_BITS', 0, 10, 'status', 0x0, None,
              'AXI4 data width in bits.'),
        Field('MAX_ROW_BYTES', 10, 17, 'status', 0x0, None,
              'Largest row in bytes.'),
        Field('QUEUE_DEPTH', 27, 5, 'status', 0x0, None,
              'Command-queue depth.'),
    )),
    Register('IRQ_ENABLE', 0x040, 'Interrupt enable', (
        Field('DONE', 0, 1, 'storage', 0x0, None,
              'Raise irq when a command completes.'),
        Field('ERROR', 1, 1, 'storage', 0x0, None,
              'Raise irq when a command completes with an error status.'),
    )),
    Register('IRQ_STATUS', 0x044, 'Interrupt status', (
        Field('DONE', 0, 1, 'w1c', 0x0, None,
              'A command completed.'),
        Field('ERROR', 1, 1, 'w1c', 0x0, None,
              'A command completed with an error status.'),
        Field('OVERFLOW', 2, 1, 'w1c', 0x0, None,
              'CMD_SUBMIT was written while the queue was full; that command was dropped.'),
    )),
    Register('CMD_OPCODE', 0x080, 'Command opcode', (
        Field('OPCODE', 0, 8, 'storage', 0x0, 'opcode_e',
              'What to do.'),
        Field('TAG', 8, 8, 'storage', 0x0, None,
              'Returned in DONE_HEAD.TAG.'),
    )),
    Register('CMD_ADDR_A_LO', 0x084, 'Command address A, low', (
        Field('ADDR', 0, 32, 'storage', 0x0, None,
              ''),
    )),
    Register('CMD_ADDR_A_HI', 0x088, 'Command address A, high', (
        Field('ADDR', 0, 32, 'storage', 0x0, None,
              ''),
    )),
    Register('CMD_ADDR_B_LO', 0x08C, 'Command address B, low', (
        Field('ADDR', 0, 32, 'storage', 0x0, None,
              ''),
    )),
    Register('CMD_ADDR_B_HI', 0x090, 'Command address B, high', (
        Field('ADDR', 0, 32, 'storage', 0x0, None,
              ''),
    )),
    Register('CMD_COUNT', 0x094, 'Command count', (
        Field('COUNT', 0, 32, 'storage', 0x0, None,
              'Keys, samples, words or entries (per opcode).'),
    )),
    Register('CMD_ARG', 0x098, 'Command argument', (
        Field('ARG', 0, 32, 'storage', 0x0, None,
              'Per opcode (keys per sample, row bytes).'),
    )),
    Register('CMD_SUBMIT', 0x09C, 'Command submit', (
        Field('GO', 0, 1, 'pulse', 0x0, None,
              'Write 1: push the staged command into the queue (dropped, and IRQ_STATUS.OVERFLOW set, if the queue is full).'),
    )),
    Register('QUEUE_STATUS', 0x0A0, 'Queue status', (
        Field('LEVEL', 0, 5, 'status', 0x0, None,
              'Commands queued, not yet started.'),
        Field('FULL', 8, 1, 'status', 0x0, None,
              'The queue is full: a submit now is dropped.'),
        Field('BUSY', 9, 1, 'status', 0x0, None,
              'A command is executing or queued.'),
        Field('DONE_LEVEL', 16, 5, 'status', 0x0, None,
              'Entries in the completion FIFO.'),
    )),
    Register('DONE_HEAD', 0x0C0, 'Completion head', (
        Field('VALID', 0, 1, 'status', 0x0, None,
              'A completion is present.'),
        Field('TAG', 8, 8, 'status', 0x0, None,
              "The command's TAG."),
        Field('STATUS', 16, 8, 'status', 0x0, 'status_e',
              'How it ended.'),
        Field('OPCODE', 24, 8, 'status', 0x0, 'opcode_e',
              'Its opcode.'),
    )),
    Register('DONE_RESULT0', 0x0C4, 'Completion result 0', (
        Field('VALUE', 0, 32, 'status', 0x0, None,
              'Per opcode: items processed (keys, entries, rows, popular samples).'),
    )),
    Register('DONE_RESULT1', 0x0C8, 'Completion result 1', (
        Field('VALUE', 0, 32, 'status', 0x0, None,
              'Per opcode: second count (unique cold keys, failed accesses).'),
    )),
    Register('DONE_POP', 0x0CC, 'Completion pop', (
        Field('POP', 0, 1, 'pulse', 0x0, None,
              'Write 1: drop the head completion.'),
    )),
    Register('PERF_CYCLES', 0x100, 'Cycles', (
        Field('VALUE', 0, 32, 'status', 0x0, None,
              ''),
    )),
    Register('PERF_COUNTER_BUSY', 0x104, 'Counter array busy cycles', (
        Field('VALUE', 0, 32, 'status', 0x0, None,
              ''),
    )),
    Register('PERF_COUNTER_STALL', 0x108, 'Counter array input stall cycles', (
        Field('VALUE', 0, 32, 'status', 0x0, None,
              ''),
    )),
    Register('PERF_REORDER_BUSY', 0x10C, 'Reorder unit busy cycles', (
        Field('VALUE', 0, 32, 'status', 0x0, None,
              ''),
    )),
    Register('PERF_REORDER_STALL', 0x110, 'Reorder unit input stall cycles', (
        Field('VALUE', 0, 32, 'status', 0x0, None,
              ''),
    )),
    Register('PERF_GATHER_BUSY', 0x114, 'Gather DMA busy cycles', (
        Field('VALUE', 0, 32, 'status', 0x0, None,
              ''),
    )),
    Register('PERF_GATHER_STALL', 0x118, 'Gather DMA stall cycles', (
        Field('VALUE', 0, 32, 'status', 0x0, None,
              ''),
    )),
    Register('PERF_AXI_RD_BEATS', 0x11C, 'AXI read beats', (
        Field('VALUE', 0, 32, 'status', 0x0, None,
              ''),
    )),
    Register('PERF_AXI_RD_BYTES', 0x120, 'AXI read bytes', (
        Field('VALUE', 0, 32, 'status', 0x0, None,
              ''),
    )),
    Register('PERF_AXI_WR_BEATS', 0x124, 'AXI write beats', (
        Field('VALUE', 0, 32, 'status', 0x0, None,
              ''),
    )),
    Register('PERF_AXI_WR_BYTES', 0x128, 'AXI write bytes', (
        Field('VALUE', 0, 32, 'status', 0x0, None,
              ''),
    )),
    Register('PERF_CTRL', 0x13C, 'Performance counter control', (
        Field('CLEAR', 0, 1, 'pulse', 0x0, None,
              'Write 1: zero every PERF_* counter.'),
    )),
)

#: Register name -> Register.
BY_NAME = {r.name: r for r in REGISTERS}

#: Address bits the map decodes (byte addresses).
ADDRESS_BITS = 9
MAGIC = 0x484F544C

# Byte address of every register.
ID = 0x000
VERSION = 0x004
CAPS_KEYS = 0x010
CAPS_COUNTER = 0x014
CAPS_REORDER = 0x018
CAPS_BUS = 0x01C
IRQ_ENABLE = 0x040
IRQ_STATUS = 0x044
CMD_OPCODE = 0x080
CMD_ADDR_A_LO = 0x084
CMD_ADDR_A_HI = 0x088
CMD_ADDR_B_LO = 0x08C
CMD_ADDR_B_HI = 0x090
CMD_COUNT = 0x094
CMD_ARG = 0x098
CMD_SUBMIT = 0x09C
QUEUE_STATUS = 0x0A0
DONE_HEAD = 0x0C0
DONE_RESULT0 = 0x0C4
DONE_RESULT1 = 0x0C8
DONE_POP = 0x0CC
PERF_CYCLES = 0x100
PERF_COUNTER_BUSY = 0x104
PERF_COUNTER_STALL = 0x108
PERF_REORDER_BUSY = 0x10C
PERF_REORDER_STALL = 0x110
PERF_GATHER_BUSY = 0x114
PERF_GATHER_STALL = 0x118
PERF_AXI_RD_BEATS = 0x11C
PERF_AXI_RD_BYTES = 0x120
PERF_AXI_WR_BEATS = 0x124
PERF_AXI_WR_BYTES = 0x128
PERF_CTRL = 0x13C
