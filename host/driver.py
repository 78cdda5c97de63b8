"""The accelerator driver: one API over interchangeable backends.

The trainer talks to the accelerator only through :class:`Accelerator`:

``learn(keys)``
    Feed packed keys to the popularity counter array (stream order).
``choose_hot_set(budget_bytes, row_bytes, candidates=None)``
    The hottest keys that fit a device byte budget, hottest first.
``load_hot_map(hot_keys, slots=None)``
    Load the hot map (key -> hot slot; slot ``i`` for ``hot_keys[i]`` by default).
``classify(keys [B, T])``
    Split a mini-batch into popular / non-popular samples, remap every key to
    (hot, slot) or (cold, u), list the unique cold keys
    (:class:`hotline.host.reorder.ClassifiedBatch`).
``gather(tables, cold_keys, out=None)``
    Copy the rows of ``cold_keys`` from host tables into a packed staging
    buffer, row ``u`` for ``cold_keys[u]``.
``scatter(tables, cold_keys, rows)``
    The reverse: write staging row ``u`` back to the row of ``cold_keys[u]``.

``tables`` is a sequence of 2-D CPU tensors (or NumPy arrays), one per
embedding table and indexed by the table number of a key, or a stacked layout
(``flat``, ``offsets``, ``table_sizes``: one buffer, each table's first row);
every table has the same row width ``W`` (the embedding plus its optimizer state), so a row and
its state travel together, as the gather DMA moves ``row_bytes`` per key.

Backends: ``golden`` (the in-process bit-exact models: counter array,
hot map, reorder unit, and the row-level semantics of the gather DMA);
``sim`` (the whole accelerator's generated Verilog in Verilator, driven
through its registers) and ``fpga`` (the same register-level code over a
memory-mapped transport: ``HOTLINE_FPGA_REGS`` names the register window, a
PCIe BAR such as ``/sys/bus/pci/devices/.../resource0`` or a UIO node,
``HOTLINE_FPGA_MEM`` the DMA-able host buffer and ``HOTLINE_FPGA_MEM_BASE``
its bus address), both :class:`hotline.host.device_backend.DeviceAccelerator`.
The device backends keep the embedding tables in device-visible memory
(:meth:`~hotline.host.device_backend.DeviceAccelerator.adopt`).

Every backend accounts the seconds spent inside each call in
:attr:`Accelerator.busy` (so the trainer can report the accelerator model's
share of a training step).
"""

from __future__ import annotations

import abc
import threading
import time
from collections import defaultdict

import numpy as np
import torch

from ..config import HotlineConfig
from ..hashing import unpack_keys

__all__ = ["Accelerator", "GoldenAccelerator", "BackendUnavailable", "make_accelerator", "check_backend",
           "BACKENDS", "scratch_bytes_for"]

#: Known backends and whether they can be built today.
BACKENDS = {"golden": True, "sim": True, "fpga": True}


class BackendUnavailable(ValueError):
    """The backend exists in the design but is not built yet (or is unknown)."""


def _as_keys(keys, name: str, ndim: int | None = None) -> np.ndarray:
    arr = np.asarray(keys)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be integer keys, not {arr.dtype}")
    if arr.size and np.issubdtype(arr.dtype, np.signedinteger) and arr.min() < 0:
        raise ValueError(f"{name} holds a negative key {int(arr.min())}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, not of shape {arr.shape}")
    return arr.astype(np.uint64, copy=False)


class Accelerator(abc.ABC):
    """The driver API every backend implements.

    Parameters
    ----------
    cfg : HotlineConfig
        Sizes and hashes of the accelerator.

    Members
    -------
    backend : str
        The backend's name.
    busy : dict
        Wall-clock seconds spent inside each call (``learn``, ``classify``, ...), all threads.
    cpu : dict
        CPU seconds of the calling thread inside each call (excludes waiting for a core
        or for the GIL, which inflates ``busy`` on a loaded machine).
    calls : dict
        Number of calls of each.
    """

    backend = "abstract"

    def __init__(self, cfg: HotlineConfig):
        if not isinstance(cfg, HotlineConfig):
            raise TypeError(f"cfg must be a HotlineConfig, not {type(cfg).__name__}")
        self.cfg = cfg
        self.busy = defaultdict(float)
        self.cpu = defaultdict(float)
        self.calls = defaultdict(int)
        self._lock = threading.Lock()

    def _start(self):
        return time.perf_counter(), time.thread_time()

    def _account(self, name: str, t0) -> None:
        wall, cpu = t0
        with self._lock:
            self.busy[name] += time.perf_counter() - wall
            self.cpu[name] += time.thread_time() - cpu
            self.calls[name] += 1

    # -- the API ---------------------------------------------------------------

    @abc.abstractmethod
    def learn(self, keys) -> None: ...

    @abc.abstractmethod
    def clear_popularity(self) -> None: ...

    @abc.abstractmethod
    def choose_hot_set(self, budget_bytes: int, row_bytes: int, candidates=None) -> np.ndarray: ...

    @abc.abstractmethod
    def load_hot_map(self, hot_keys, slots=None) -> None: ...

    @abc.abstractmethod
    def classify(self, keys): ...

    @abc.abstractmethod
    def gather(self, tables, cold_keys, out=None): ...

    @abc.abstractmethod
    def scatter(self, tables, cold_keys, rows) -> None: ...

    @abc.abstractmethod
    def state_dict(self) -> dict: ...

    @abc.abstractmethod
    def load_state_dict(self, state: dict) -> None: ...

    def close(self) -> None:
        """Release the backend's resources (nothing for ``golden``)."""


def _row_view(a: np.ndarray):
    """``a`` [N, W] as a 1-D array of N whole-row elements, or None when its rows are not
    contiguous (the view shares memory with ``a``)."""
    if not a.flags.c_contiguous or a.ndim != 2 or a.shape[1] == 0:
        return None
    return a.view(np.dtype((np.void, a.shape[1] * a.itemsize))).reshape(-1)


class GoldenAccelerator(Accelerator):
    """The ``golden`` backend: the bit-exact in-process models.

    Members
    -------
    counter : hotline.host.popularity.PopularityCounter
    hotmap : hotline.host.hotmap.HotMap or None
        The loaded hot map (``None`` before :meth:`load_hot_map`).
    hot_keys, hot_slots : numpy.ndarray
        What was loaded (uint64, int64).
    """

    backend = "golden"

    def __init__(self, cfg: HotlineConfig):
        super().__init__(cfg)
        from .popularity import PopularityCounter
        self.counter = PopularityCounter(cfg)
        self.hotmap = None
        self.hot_keys = np.zeros(0, dtype=np.uint64)
        self.hot_slots = np.zeros(0, dtype=np.int64)

    # -- popularity ----------------------------------------------------------------

    def learn(self, keys) -> None:
        t0 = self._start()
        self.counter.learn(_as_keys(keys, "keys").ravel())
        self._account("learn", t0)

    def clear_popularity(self) -> None:
        self.counter.clear()

    def choose_hot_set(self, budget_bytes: int, row_bytes: int, candidates=None) -> np.ndarray:
        t0 = self._start()
        if candidates is not None:
            candidates = _as_keys(candidates, "candidates").ravel()
        hot = self.counter.hot_set(budget_bytes, row_bytes, candidates)
        self._account("choose_hot_set", t0)
        return hot

    # -- hot map and reorder ----------------------------------------------------------

    def load_hot_map(self, hot_keys, slots=None) -> None:
        from .hotmap import HotMap
        t0 = self._start()
        keys = _as_keys(hot_keys, "hot_keys", 1)
        hotmap = HotMap.build(self.cfg, keys, slots)
        self._install_hot_map(hotmap)
        self.hotmap = hotmap
        self.hot_keys = keys.copy()
        self.hot_slots = (np.arange(keys.size, dtype=np.int64) if slots is None
                          else np.asarray(slots, dtype=np.int64).copy())
        self._account("load_hot_map", t0)

    def _install_hot_map(self, hotmap) -> None:
        """Hand a built hot map to the hardware (nothing to do for the in-process models)."""

    def classify(self, keys):
        from .reorder import classify
        if self.hotmap is None:
            raise RuntimeError("classify needs a hot map: call load_hot_map first")
        t0 = self._start()
        out = classify(self.cfg, self.hotmap, _as_keys(keys, "keys", 2))
        self._account("classify", t0)
        return out

    # -- gather / scatter --------------------------------------------------------------
    #
    # The copies are NumPy indexing: single-threaded and free of the GIL, so a DMA worker
    # thread runs them beside the trainer's torch work without a second OpenMP thread team.

    @staticmethod
    def _np(x, what: str):
        if isinstance(x, torch.Tensor):
            if x.device.type != "cpu":
                raise ValueError(f"{what} is on {x.device}: gather/scatter move host memory")
            x = x.detach().numpy()
        if not isinstance(x, np.ndarray) or x.ndim != 2:
            raise ValueError(f"{what} must be a 2-D array, not {type(x).__name__} {getattr(x, 'shape', '')}")
        return x

    def _layout(self, tables):
        """``(flat, offsets, sizes, None)`` for a stacked layout, ``(None, None, sizes, arrays)``
        for a list of tables; every table has the same row width and dtype."""
        if hasattr(tables, "flat") and hasattr(tables, "offsets"):
            flat = self._np(tables.flat, "tables.flat")
            offsets = np.asarray(tables.offsets, dtype=np.int64)
            sizes = np.asarray(tables.table_sizes, dtype=np.int64)
            if offsets.shape != sizes.shape or (sizes.size and offsets[-1] + sizes[-1] > flat.shape[0]):
                raise ValueError("stacked tables: offsets and table_sizes do not fit flat")
            return flat, offsets, sizes, None
        if tables is None or not len(tables):
            raise ValueError("tables must be a non-empty sequence of 2-D tables")
        arrays = [self._np(x, f"table {i}") for i, x in enumerate(tables)]
        w, dt = arrays[0].shape[1], arrays[0].dtype
        for i, x in enumerate(arrays):
            if x.shape[1] != w or x.dtype != dt:
                raise ValueError(f"table {i} must be {dt} of width {w}, not {x.dtype} {list(x.shape)}")
        return None, None, np.array([x.shape[0] for x in arrays], dtype=np.int64), arrays

    def _locate(self, keys, sizes):
        """(table, row) of every key, range-checked like the DMA (table and row in range)."""
        t, r = unpack_keys(keys, self.cfg.keys.row_bits)
        bad = np.flatnonzero(t >= sizes.size)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"cold key {int(keys[i]):#x} at position {i} names table {int(t[i])}, "
                             f"but there are {sizes.size} tables")
        bad = np.flatnonzero(r >= sizes[t])
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"cold key {int(keys[i]):#x} at position {i}: row {int(r[i])} is "
                             f"outside table {int(t[i])} ({int(sizes[t[i]])} rows)")
        return t, r

    @staticmethod
    def _groups(t):
        """Positions of the keys of each table: ``[(table, positions)]``."""
        order = np.argsort(t, kind="stable")
        ts = t[order]
        bounds = np.r_[0, np.flatnonzero(ts[1:] != ts[:-1]) + 1, ts.size]
        return [(int(ts[a]), order[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

    @staticmethod
    def _buffer(buf, name: str, u: int, w: int, dt):
        """NumPy view of a staging buffer (torch or NumPy) with at least ``u`` rows of ``w``."""
        arr = buf.detach().numpy() if isinstance(buf, torch.Tensor) else np.asarray(buf)
        if arr.ndim != 2 or arr.shape[0] < u or arr.shape[1] != w or arr.dtype != dt:
            raise ValueError(f"{name} must be at least [{u}, {w}] {dt}, not {arr.dtype} {list(arr.shape)}")
        return arr

    def gather(self, tables, cold_keys, out=None):
        """Pack the rows of ``cold_keys`` into ``out[:U]`` (allocated if ``None``); returns ``out[:U]``.

        ``tables``: a sequence of 2-D tables (torch CPU tensors or NumPy arrays), or a stacked
        layout (an object with ``flat [N, W]``, ``offsets [T]`` and ``table_sizes [T]``, e.g.
        :class:`hotline.host.embedding.StackedTables`: one base address, a row stride and each
        table's first row, as the DMA's per-table registers describe).  The result is a torch
        tensor when the tables are torch tensors, else a NumPy array.
        """
        t0 = self._start()
        keys = _as_keys(cold_keys, "cold_keys", 1)
        flat, offsets, sizes, arrays = self._layout(tables)
        first = flat if flat is not None else arrays[0]
        w, dt = first.shape[1], first.dtype
        t, r = self._locate(keys, sizes)
        src_torch = isinstance(getattr(tables, "flat", None), torch.Tensor) or (
            arrays is not None and isinstance(tables[0], torch.Tensor))
        if out is None:
            out = torch.from_numpy(np.empty((keys.size, w), dtype=dt)) if src_torch \
                else np.empty((keys.size, w), dtype=dt)
        dst = self._buffer(out, "out", keys.size, w, dt)[:keys.size]
        if flat is not None:
            np.take(flat, offsets[t] + r, axis=0, out=dst)
        else:
            for tid, pos in self._groups(t):
                dst[pos] = arrays[tid][r[pos]]
        self._account("gather", t0)
        return out[:keys.size]

    def scatter(self, tables, cold_keys, rows) -> None:
        """Write ``rows[u]`` to the row of ``cold_keys[u]`` in ``tables`` (in place; same
        ``tables`` forms as :meth:`gather`)."""
        t0 = self._start()
        keys = _as_keys(cold_keys, "cold_keys", 1)
        srt = np.sort(keys)          # (np.unique is several times slower for uint64 keys)
        if srt.size > 1 and bool((srt[1:] == srt[:-1]).any()):
            raise ValueError("cold_keys holds a key twice: a scatter would write one row twice")
        flat, offsets, sizes, arrays = self._layout(tables)
        first = flat if flat is not None else arrays[0]
        src = self._buffer(rows, "rows", keys.size, first.shape[1], first.dtype)
        t, r = self._locate(keys, sizes)
        if flat is not None:
            dst_rows, src_rows = _row_view(flat), _row_view(src)
            if dst_rows is not None and src_rows is not None:
                # One row = one element: numpy's 1-D scatter moves a row per step, about
                # twice as fast as the 2-D fancy assignment (same bytes, tested).
                dst_rows[offsets[t] + r] = src_rows[:keys.size]
            else:
                flat[offsets[t] + r] = src[:keys.size]
        else:
            for tid, pos in self._groups(t):
                arrays[tid][r[pos]] = src[pos]
        self._account("scatter", t0)

    # -- state -------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {"backend": self.backend, "cfg": self.cfg.to_dict(),
                "popularity": self.counter.state_dict(),
                "hot_keys": self.hot_keys.copy(), "hot_slots": self.hot_slots.copy(),
                "hot_map_loaded": self.hotmap is not None}

    def load_state_dict(self, state: dict) -> None:
        if HotlineConfig.from_dict(state["cfg"]) != self.cfg:
            raise ValueError("accelerator state was saved with a different hardware config")
        self.counter.load_state_dict(state["popularity"])
        if state["hot_map_loaded"]:
            self.load_hot_map(state["hot_keys"], state["hot_slots"])
        else:
            self.hotmap = None
            self.hot_keys = np.zeros(0, dtype=np.uint64)
            self.hot_slots = np.zeros(0, dtype=np.int64)


def check_backend(backend: str) -> None:
    """Raise :class:`BackendUnavailable` unless ``backend`` is known."""
    if BACKENDS.get(backend):
        return
    raise BackendUnavailable(f"unknown accelerator backend {backend!r} (known: {', '.join(BACKENDS)})")


def scratch_bytes_for(cfg: HotlineConfig) -> int:
    """Scratch host memory the device commands need: one classify of the largest batch."""
    r = cfg.reorder
    words = 2 * r.max_batch_samples * r.keys_per_sample + 2 * r.max_batch_samples + r.max_batch_keys
    return max(1 << 16, -(-8 * words // 4096) * 4096)


def dma_operand_bytes_for(cfg: HotlineConfig) -> int:
    """Host memory of the DMA's own operands (key list, table descriptors), kept apart from
    the scratch area so a gather or scatter can run beside the other commands."""
    words = max(cfg.reorder.max_batch_keys, 2 * cfg.keys.tables)
    return -(-8 * words // 4096) * 4096


def make_accelerator(backend: str, cfg: HotlineConfig, *, host_bytes: int = 0) -> Accelerator:
    """Build the driver for ``backend``.

    ``host_bytes``: device-visible host memory the caller will use besides the
    driver's scratch area (the tables it adopts and the staging buffer); the
    ``sim`` backend allocates that much simulated memory.
    """
    check_backend(backend)
    if backend == "golden":
        return GoldenAccelerator(cfg)
    import os
    from .device import Device, MMIOTransport
    from .device_backend import DeviceAccelerator
    scratch = scratch_bytes_for(cfg)
    if backend == "sim":
        from .sim import SimTop
        t = SimTop(cfg, mem_bytes=scratch + int(host_bytes) + dma_operand_bytes_for(cfg) + (1 << 16))
    else:
        regs, mem = os.environ.get("HOTLINE_FPGA_REGS"), os.environ.get("HOTLINE_FPGA_MEM")
        if not regs or not mem:
            raise BackendUnavailable(
                "the fpga backend needs a device: set HOTLINE_FPGA_REGS (register window, e.g. a "
                "PCIe BAR's resource0 or a UIO node) and HOTLINE_FPGA_MEM (the DMA-able host "
                "buffer; HOTLINE_FPGA_MEM_BASE its bus address)")
        t = MMIOTransport(regs, mem, int(os.environ.get("HOTLINE_FPGA_MEM_BASE", "0"), 0))
    try:
        dev = Device(t, cfg, scratch_bytes=scratch)
    except BaseException:
        t.close()
        raise
    return DeviceAccelerator(cfg, dev, backend=backend, transport_owner=t)
