"""The ``sim`` and ``fpga`` backends: the trainer's accelerator API over the register-level driver.

:class:`DeviceAccelerator` implements :class:`hotline.host.driver.Accelerator`
with the commands of :class:`hotline.host.device.Device`, so the same code
drives the generated Verilog in Verilator (:class:`hotline.host.sim.SimTop`)
and a board (:class:`hotline.host.device.MMIOTransport`, or the UART bridge
of the ECP5 bring-up image); only the transport differs.
"""

from __future__ import annotations

import threading

import numpy as np

from ..config import HotlineConfig
from .device import Device, DeviceError
from .driver import Accelerator, GoldenAccelerator, _as_keys, dma_operand_bytes_for
from .hotmap import check_keys

__all__ = ["DeviceAccelerator"]


class DeviceAccelerator(GoldenAccelerator):
    """The ``sim`` and ``fpga`` backends: the driver API over a register-level :class:`Device`.

    Every call is a sequence of device commands.  Two locks keep sequences
    from interleaving: one for the gather and scatter (the DMA, its table
    descriptors, key list and staging buffer), one for everything else (the
    scratch area).  So the trainer's scatter worker and its main thread run
    side by side: the device classifies batch i+1 while the DMA writes batch
    i's rows back (the device runs a CLASSIFY beside a SCATTER's rows, and
    makes a GATHER or SET_TABLES wait for the DMA; this class keeps the two
    sides' operands apart, which is the driver's half of the ordering rules).
    Host memory the device reaches is laid out as ``[scratch | tables | DMA
    operands | staging]``: the trainer keeps its embedding tables in
    device-visible memory (:meth:`adopt`), so a gather or scatter moves rows
    where the trainer reads and updates them; the staging buffer holds
    ``max_batch_keys`` rows, and larger gathers run in chunks.

    The popularity state lives in the device: :meth:`choose_hot_set` ranks
    the heavy-hitter readout (or the estimates of ``candidates``) exactly as
    the golden model ranks its own (:func:`hotline.host.popularity.rank_hot`),
    so both pick the same hot set from the same state.  Checkpointing the
    device's counters is not supported (:meth:`state_dict` raises).

    Parameters
    ----------
    cfg : HotlineConfig
    device : Device
    backend : str
        ``"sim"`` or ``"fpga"`` (reported by the trainer).
    transport_owner : object with ``close()``, optional
        Closed by :meth:`close`.
    """

    backend = "device"

    def __init__(self, cfg: HotlineConfig, device: Device, *, backend: str, transport_owner=None):
        Accelerator.__init__(self, cfg)
        self.hotmap = None
        self.hot_keys = np.zeros(0, dtype=np.uint64)
        self.hot_slots = np.zeros(0, dtype=np.int64)
        self.backend = backend
        self.dev = device
        self._owner = transport_owner
        self._cmd_lock = threading.RLock()     # commands that use the scratch area
        self._dma_lock = threading.RLock()     # SET_TABLES, GATHER, SCATTER and their buffers
        self._dma_ops = None                   # host-memory offset of the DMA's key list
        mem = device.t.mem
        self._heap = _align(device.scratch_bytes)
        self._tables_at = None        # (device address, nbytes) of adopted tables
        self._stage = None            # (device address, row bytes)
        self._table_key = None        # the SET_TABLES image last loaded
        self.mem_bytes = int(mem.size)

    # ---- device memory --------------------------------------------------------------
    def _alloc(self, nbytes: int, what: str) -> int:
        at = self._heap
        end = _align(at + nbytes)
        if end > self.mem_bytes:
            raise DeviceError(f"{what} needs {nbytes} bytes of device-visible host memory; "
                              f"{self.mem_bytes - at} are left")
        self._heap = end
        return at

    def adopt(self, flat):
        """A tensor in device-visible memory holding a copy of ``flat`` (a 2-D CPU tensor):
        keep the tables there (:meth:`hotline.host.embedding.StackedTables.rehome`)."""
        import torch
        flat = flat.detach()
        if flat.device.type != "cpu" or flat.dim() != 2:
            raise ValueError("adopt takes a 2-D CPU tensor")
        nbytes = flat.numel() * flat.element_size()
        at = self._alloc(nbytes, "the embedding tables")
        view = self.dev.t.mem[at:at + nbytes].view(flat.numpy().dtype).reshape(tuple(flat.shape))
        out = torch.from_numpy(view)
        out.copy_(flat)
        self._tables_at = (at, nbytes)
        return out

    def _addr_of(self, arr: np.ndarray, what: str) -> int:
        base = self.dev.t.mem.ctypes.data
        p = arr.__array_interface__["data"][0] - base
        if p < 0 or p + arr.nbytes > self.mem_bytes:
            raise ValueError(f"{what} is not in the device-visible host memory: keep the tables "
                             f"there (accelerator.adopt / StackedTables.rehome)")
        return self.dev.t.mem_base + p

    # ---- popularity -----------------------------------------------------------------
    def _chunk(self, words_per_key: int) -> int:
        return max(1, self.dev.scratch_bytes // (8 * words_per_key))

    def learn(self, keys) -> None:
        t0 = self._start()
        keys = check_keys(self.cfg, _as_keys(keys, "keys").ravel())
        n = self._chunk(1)
        with self._cmd_lock:
            for i in range(0, keys.size, n):
                self.dev.learn(keys[i:i + n])
        self._account("learn", t0)

    def clear_popularity(self) -> None:
        with self._cmd_lock:
            self.dev.clear()

    def choose_hot_set(self, budget_bytes: int, row_bytes: int, candidates=None) -> np.ndarray:
        from .popularity import rank_hot
        t0 = self._start()
        with self._cmd_lock:
            if candidates is None:
                keys, counts = self.dev.readout()
            else:
                keys = np.unique(check_keys(self.cfg, _as_keys(candidates, "candidates").ravel()))
                n = self._chunk(2)
                counts = np.concatenate([self.dev.estimate(keys[i:i + n]) for i in range(0, keys.size, n)]
                                        or [np.zeros(0, np.uint64)]).astype(np.int64)
        hot = rank_hot(keys.astype(np.uint64), counts.astype(np.int64), budget_bytes, row_bytes)
        self._account("choose_hot_set", t0)
        return hot

    # ---- hot map and reorder -----------------------------------------------------------
    def _install_hot_map(self, hotmap) -> None:
        with self._cmd_lock:
            self.dev.load_hotmap(hotmap.image)

    def classify(self, keys):
        from .reorder import ClassifiedBatch, _check
        if self.hotmap is None:
            raise RuntimeError("classify needs a hot map: call load_hot_map first")
        t0 = self._start()
        keys = _check(self.cfg, self.hotmap, _as_keys(keys, "keys", 2))
        if keys.shape[0] == 0:
            T = keys.shape[1]
            e = np.zeros(0, dtype=np.int64)
            return ClassifiedBatch(popular=e, non_popular=e.copy(), hot=np.zeros((0, T), bool),
                                   index=np.zeros((0, T), np.int64), cold_keys=np.zeros(0, np.uint64))
        with self._cmd_lock:
            cb, _ = self.dev.classify(keys)
        self._account("classify", t0)
        return cb

    # ---- gather / scatter ------------------------------------------------------------
    def _prepare(self, tables, keys):
        """Check the keys, describe the tables to the DMA (when they changed), and return
        ``(keys, row width, dtype, staging address)``."""
        flat, offsets, sizes, arrays = self._layout(tables)
        first = flat if flat is not None else arrays[0]
        w, dt = first.shape[1], first.dtype
        self._locate(keys, sizes)
        rb = w * dt.itemsize
        if flat is not None:
            if flat.strides[0] != rb:
                raise ValueError("the stacked tables must be row-contiguous")
            at = self._addr_of(flat, "tables.flat")
            bases = at + offsets.astype(np.uint64) * np.uint64(rb)
        else:
            bases = np.array([self._addr_of(a, f"table {i}") for i, a in enumerate(arrays)], np.uint64)
        strides = np.full(sizes.size, rb, dtype=np.uint64)
        if self._dma_ops is None:
            self._dma_ops = self._alloc(dma_operand_bytes_for(self.cfg), "the DMA's key list")
        key = (bases.tobytes(), sizes.tobytes(), rb)
        if key != self._table_key:
            self.dev.set_tables(bases, strides, sizes.astype(np.uint64), rb, at=self._dma_ops)
            self._table_key = key
        if self._stage is None or self._stage[1] < rb:
            self._stage = (self._alloc(self.cfg.reorder.max_batch_keys * rb, "the staging buffer"), rb)
        return w, dt, rb, self._stage[0]

    def gather(self, tables, cold_keys, out=None):
        import torch
        from ..regmap import Opcode
        t0 = self._start()
        keys = _as_keys(cold_keys, "cold_keys", 1)
        src_torch = isinstance(getattr(tables, "flat", None), torch.Tensor) or (
            not hasattr(tables, "flat") and len(tables) and isinstance(tables[0], torch.Tensor))
        with self._dma_lock:
            w, dt, rb, stage = self._prepare(tables, keys)
            if out is None:
                out = torch.from_numpy(np.empty((keys.size, w), dtype=dt)) if src_torch \
                    else np.empty((keys.size, w), dtype=dt)
            dst = self._buffer(out, "out", keys.size, w, dt)[:keys.size]
            cap = self.cfg.reorder.max_batch_keys
            mem = self.dev.t.mem
            for i in range(0, keys.size, cap):
                part = keys[i:i + cap]
                self.dev.move(Opcode.GATHER, part, self.dev.t.mem_base + stage, at=self._dma_ops)
                dst[i:i + part.size] = mem[stage:stage + part.size * rb].view(dt).reshape(part.size, w)
        self._account("gather", t0)
        return out[:keys.size]

    def scatter(self, tables, cold_keys, rows) -> None:
        from ..regmap import Opcode
        t0 = self._start()
        keys = _as_keys(cold_keys, "cold_keys", 1)
        srt = np.sort(keys)
        if srt.size > 1 and bool((srt[1:] == srt[:-1]).any()):
            raise ValueError("cold_keys holds a key twice: a scatter would write one row twice")
        with self._dma_lock:
            w, dt, rb, stage = self._prepare(tables, keys)
            src = self._buffer(rows, "rows", keys.size, w, dt)
            cap = self.cfg.reorder.max_batch_keys
            mem = self.dev.t.mem
            for i in range(0, keys.size, cap):
                part = keys[i:i + cap]
                mem[stage:stage + part.size * rb] = np.ascontiguousarray(src[i:i + part.size]).view(np.uint8).ravel()
                self.dev.move(Opcode.SCATTER, part, self.dev.t.mem_base + stage, at=self._dma_ops)
        self._account("scatter", t0)

    # ---- state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        raise NotImplementedError(f"the {self.backend} backend cannot checkpoint the device's "
                                  f"popularity counters; checkpoint a golden-backend run")

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError(f"the {self.backend} backend cannot restore popularity counters")

    def close(self) -> None:
        if self._owner is not None:
            self._owner.close()
            self._owner = None


def _align(n: int, a: int = 4096) -> int:
    return -(-int(n) // a) * a
