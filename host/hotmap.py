"""The hot map: an exact cuckoo hash table from key to hot slot, built on the host.

The reorder unit classifies every key of a mini-batch as hot or cold by looking
it up in the hot map.  The host decides the hot set and computes the whole
placement (cuckoo hashing with ``hotmap_hashes`` hash functions, each with its
own table of ``2**hotmap_log2_buckets`` buckets of ``hotmap_ways`` slots), so a
lookup, in hardware and here, is a pure function of the loaded image: read
the candidate bucket of every hash, compare the keys, return the slot of the
one that matches.

Placement is exact: a greedy vectorised pass puts most keys in a free slot of a
candidate bucket, and every remaining key is inserted by a breadth-first search
for an augmenting path (a chain of keys that each move to another of their
candidate buckets, ending at a free slot).  That search is exhaustive, so when
it fails no placement of the set exists at all (a Hall violation: the buckets it
reached are full and their keys, plus the new one, have no other candidate),
and :class:`HotMapError` says so; no key is ever dropped.

Image layout
------------
``HotMap.image`` is a ``uint64`` array with one word per slot, in address
order.  The slot address is ``(h << log2_buckets | bucket) << log2_ways | way``
for hash (table) ``h``, bucket ``bucket`` and way ``way`` (``hotmap_ways`` is a
power of two), which is also the word's index in the array.  A word is::

    bit 0                          valid
    bits 1 .. key_bits             key (packed ``table << row_bits | row``)
    bits key_bits+1 .. +slot_bits  hot slot

and an empty slot is the word 0.  The hardware load port takes exactly these
(address, word) pairs.
"""

from __future__ import annotations

from collections import deque
from functools import cached_property

import numpy as np

from ..config import ConfigError, HotlineConfig
from ..hashing import H3, hotmap_hashes, xor_byte_lookup

__all__ = ["HotMapError", "HotMap", "entry_bits", "check_keys", "FastH3"]


class HotMapError(ValueError):
    """A hot set does not fit the hot map (capacity, duplicates or an unresolvable cuckoo cycle)."""


def entry_bits(cfg: HotlineConfig) -> int:
    """Width of one hot-map slot word: valid bit, key, hot slot."""
    return 1 + cfg.keys.key_bits + cfg.reorder.slot_bits


def _check_cfg(cfg) -> None:
    if not isinstance(cfg, HotlineConfig):
        raise TypeError(f"cfg must be a HotlineConfig, not {type(cfg).__name__}")
    if entry_bits(cfg) > 64:
        raise ConfigError(
            f"a hot-map word (1 + keys.key_bits {cfg.keys.key_bits} + slot bits "
            f"{cfg.reorder.slot_bits}) is {entry_bits(cfg)} bits, more than the 64 the image holds; "
            f"lower reorder.hotmap_log2_buckets/hotmap_ways/hotmap_hashes or keys.row_bits")


def check_keys(cfg: HotlineConfig, keys, name: str = "keys") -> np.ndarray:
    """Return ``keys`` as a uint64 array after checking they are packed keys of ``cfg``.

    Raises :class:`TypeError` for a non-integer array and :class:`ValueError`
    for a negative key, a key wider than ``keys.key_bits`` or a table index
    past ``keys.tables``.
    """
    arr = np.asarray(keys)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise TypeError(f"{name} must be an integer array, not dtype {arr.dtype}")
    if arr.size == 0:
        return arr.astype(np.uint64)
    if np.issubdtype(arr.dtype, np.signedinteger):
        lo = int(arr.min())
        if lo < 0:
            raise ValueError(f"{name} holds a negative key {lo}")
    arr = arr.astype(np.uint64, copy=False)
    hi = int(arr.max())
    if hi >> cfg.keys.row_bits >= cfg.keys.tables:
        raise ValueError(
            f"{name} holds key {hi:#x} whose table {hi >> cfg.keys.row_bits} is past "
            f"keys.tables {cfg.keys.tables} (keys are table << {cfg.keys.row_bits} | row)")
    return arr


class FastH3:
    """Several H3 hashes evaluated together with byte lookup tables.

    :meth:`H3.numpy` looks up one table per input byte; this packs the
    tables of up to three hashes side by side, so one pass of lookups hashes
    a key with all of them.  Equal to :meth:`H3.numpy` bit for bit (tested).

    Parameters
    ----------
    hashes : sequence of H3
        Hashes of the same input width; each output must fit in 21 bits.
    """

    def __init__(self, hashes):
        hashes = tuple(hashes)
        if not hashes or not all(isinstance(h, H3) for h in hashes):
            raise TypeError("hashes must be a non-empty sequence of H3")
        if len({h.in_bits for h in hashes}) != 1:
            raise ValueError("hashes must share one input width")
        self.hashes = hashes
        self.shift = 21
        if len(hashes) * self.shift > 63 or max(h.out_bits for h in hashes) > self.shift:
            raise ValueError("FastH3 packs at most 3 hashes of up to 21 bits")
        # each hash's per-byte tables (H3.numpy's), side by side in one int64 per byte value
        self.tables = [np.bitwise_or.reduce([h.byte_tables[j] << (self.shift * i)
                                             for i, h in enumerate(hashes)])
                       for j in range(len(hashes[0].byte_tables))]

    def __call__(self, keys: np.ndarray) -> list:
        """Return one int64 array per hash, of the shape of ``keys`` (uint64)."""
        acc = xor_byte_lookup(self.tables, keys)
        mask = (1 << self.shift) - 1
        return [(acc >> (self.shift * i)) & mask for i in range(len(self.hashes))]


def _hasher(hashes):
    """A callable keys -> list of bucket arrays (FastH3 when it applies)."""
    try:
        return FastH3(hashes)
    except ValueError:
        return lambda keys: [h.numpy(keys) for h in hashes]


class HotMap:
    """An exact key -> hot-slot map in the hardware's cuckoo layout.

    Build one with :meth:`build` (from a hot set) or :meth:`from_image` (from a
    loaded image); do not call the constructor directly.

    Members
    -------
    cfg : HotlineConfig
        The config whose ``reorder`` section fixes the geometry.
    image : numpy.ndarray
        uint64 [capacity]: the hardware's slot words in address order (see
        the module docstring for the layout).
    keys : numpy.ndarray
        uint64: the hot keys, in slot-word address order.
    slots : numpy.ndarray
        int64: their hot slots, aligned with ``keys``.
    """

    def __init__(self, cfg: HotlineConfig, image: np.ndarray):
        _check_cfg(cfg)
        r = cfg.reorder
        self.cfg = cfg
        self.image = image
        self._hashes = hotmap_hashes(cfg)
        self._hash = _hasher(self._hashes)
        kb = cfg.keys.key_bits
        grid = image.reshape(r.hotmap_hashes, r.hotmap_buckets, r.hotmap_ways)
        self._valid = (grid & np.uint64(1)).astype(bool)
        self._keys = (grid >> np.uint64(1)) & np.uint64((1 << kb) - 1)
        self._slots = (grid >> np.uint64(1 + kb)).astype(np.int64)
        # An empty slot holds key 0 too; make it unmatchable so the lookup
        # needs a single comparison (key_bits < 64, so all-ones never matches).
        self._keys[~self._valid] = np.uint64((1 << 64) - 1)
        self._flat_keys = self._keys.reshape(-1)
        self._flat_slots = self._slots.reshape(-1)
        flat = self._valid.reshape(-1)
        self.keys = self._keys.reshape(-1)[flat].copy()
        self.slots = self._slots.reshape(-1)[flat].copy()

    # -- construction --------------------------------------------------------

    @classmethod
    def build(cls, cfg: HotlineConfig, hot_keys, slots=None) -> "HotMap":
        """Place a hot set in the cuckoo table.

        Parameters
        ----------
        cfg : HotlineConfig
        hot_keys : array of int
            Packed keys (``table << row_bits | row``), all distinct.
        slots : array of int, optional
            ``slots[i]`` is the hot slot of ``hot_keys[i]``; distinct, each in
            ``[0, 2**reorder.slot_bits)``.  Default ``arange(len(hot_keys))``.

        Raises
        ------
        HotMapError
            Duplicate keys or slots, more keys than slots, or a set no cuckoo
            placement can hold.
        """
        _check_cfg(cfg)
        r = cfg.reorder
        keys = check_keys(cfg, hot_keys, "hot_keys")
        if keys.ndim != 1:
            raise ValueError(f"hot_keys must be one-dimensional, not shape {keys.shape}")
        n = len(keys)
        if slots is None:
            slots = np.arange(n, dtype=np.int64)
        else:
            slots = np.asarray(slots)
            if not np.issubdtype(slots.dtype, np.integer):
                raise TypeError(f"slots must be an integer array, not dtype {slots.dtype}")
            if slots.shape != (n,):
                raise ValueError(f"slots has shape {slots.shape}, hot_keys has {n} keys")
            slots = slots.astype(np.int64)
            if n and (slots.min() < 0 or slots.max() >= 1 << r.slot_bits):
                bad = slots[(slots < 0) | (slots >= 1 << r.slot_bits)][0]
                raise ValueError(f"slot {bad} is outside [0, 2**reorder.slot_bits = {1 << r.slot_bits})")
        if n > r.hotmap_capacity:
            raise HotMapError(
                f"hot set of {n} keys exceeds the hot map capacity of {r.hotmap_capacity} slots "
                f"({r.hotmap_hashes} hashes x {r.hotmap_buckets} buckets x {r.hotmap_ways} ways)")
        for what, arr in (("hot_keys", keys), ("slots", slots)):
            order = np.argsort(arr, kind="stable")
            dup = np.flatnonzero(arr[order][1:] == arr[order][:-1])
            if len(dup):
                i, j = order[dup[0]], order[dup[0] + 1]
                raise HotMapError(f"{what} has a duplicate: {int(arr[i]):#x} at positions {i} and {j}")

        hashes = hotmap_hashes(cfg)
        nb, ways, nh = r.hotmap_buckets, r.hotmap_ways, r.hotmap_hashes
        cand = np.stack(_hasher(hashes)(keys), axis=1) if n else np.zeros((0, nh), np.int64)
        cand = cand + (np.arange(nh, dtype=np.int64) * nb)[None, :]  # global bucket ids
        occ, fill = _place(cand, nh * nb, ways)

        image = np.zeros(nh * nb * ways, dtype=np.uint64)
        where = occ.reshape(-1)
        used = where >= 0
        idx = where[used]
        kb = cfg.keys.key_bits
        image[used] = (np.uint64(1) | (keys[idx] << np.uint64(1))
                       | (slots[idx].astype(np.uint64) << np.uint64(1 + kb)))
        return cls(cfg, image)

    @classmethod
    def from_image(cls, cfg: HotlineConfig, image) -> "HotMap":
        """The map an image encodes (what the hardware does with it); checks the words."""
        _check_cfg(cfg)
        r = cfg.reorder
        arr = np.asarray(image)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"image must be an integer array, not dtype {arr.dtype}")
        if arr.shape != (r.hotmap_capacity,):
            raise ValueError(f"image has shape {arr.shape}, the hot map has {r.hotmap_capacity} words")
        arr = arr.astype(np.uint64)
        if np.any(arr >> np.uint64(entry_bits(cfg))):
            raise ValueError(f"image has a word wider than {entry_bits(cfg)} bits")
        hm = cls(cfg, arr.copy())
        # Each stored key must sit in one of its own candidate buckets, once.
        if len(hm.keys):
            grid_h, grid_b, _ = np.nonzero(hm._valid)
            buckets = hm._hash(hm.keys)
            own = np.choose(grid_h, buckets) if len(buckets) > 1 else buckets[0]
            if np.any(own != grid_b):
                bad = np.flatnonzero(own != grid_b)[0]
                raise ValueError(f"image word of key {int(hm.keys[bad]):#x} is not in its hash-"
                                 f"{grid_h[bad]} bucket")
            if len(np.unique(hm.keys)) != len(hm.keys):
                raise ValueError("image holds a key twice")
        return hm

    # -- queries ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def load_factor(self) -> float:
        """Hot keys over slots."""
        return len(self) / self.cfg.reorder.hotmap_capacity

    def lookup(self, keys) -> tuple[np.ndarray, np.ndarray]:
        """Look keys up.

        Parameters
        ----------
        keys : array of int, any shape
            Packed keys of ``cfg``.

        Returns
        -------
        hit : numpy.ndarray of bool
        slot : numpy.ndarray of int64
            The hot slot where ``hit``, else 0.  Both have the shape of ``keys``.
        """
        keys = check_keys(self.cfg, keys)
        shape = keys.shape
        flat = keys.reshape(-1)
        hit = np.zeros(flat.shape, dtype=bool)
        slot = np.zeros(flat.shape, dtype=np.int64)
        r = self.cfg.reorder
        # One 1-D gather and compare per (hash, way): a key is stored at most
        # once, so at most one of them matches.
        for h, bucket in enumerate(self._hash(flat)):
            base = (bucket + h * r.hotmap_buckets) * r.hotmap_ways
            for w in range(r.hotmap_ways):
                addr = base + w if w else base
                m = self._flat_keys[addr] == flat
                hit |= m
                slot = np.where(m, self._flat_slots[addr], slot)
        return hit.reshape(shape), slot.reshape(shape)

    @cached_property
    def _index(self) -> "_ProbeIndex":
        # built on the first find(): a map used only through lookup() or its image never pays
        return _ProbeIndex(self.keys, self.slots, self.cfg.keys.key_bits)

    def find(self, keys) -> tuple[np.ndarray, np.ndarray]:
        """Same result as :meth:`lookup`, computed the fast way on the host.

        :meth:`lookup` probes the image as the hardware does (H hashes, every
        way of each candidate bucket).  The map is exact, so hit and slot
        depend only on the stored (key, slot) pairs; this reads them from a
        compact host-side index that answers most keys with one read (tested
        equal to :meth:`lookup`).  The driver's ``classify`` uses it.
        """
        keys = check_keys(self.cfg, keys)
        hit, slot = self._index.find(keys.reshape(-1))
        return hit.reshape(keys.shape), slot.reshape(keys.shape)

    def __contains__(self, key) -> bool:
        return bool(self.lookup(np.asarray([key]))[0][0])

    def __repr__(self) -> str:
        return (f"HotMap({len(self)} keys in {self.cfg.reorder.hotmap_capacity} slots, "
                f"load {self.load_factor:.3f})")


class _ProbeIndex:
    """A read-only linear-probing hash table of (key, slot) words: :meth:`HotMap.find`.

    The image spreads keys over H tables of ways and is mostly empty (the
    hardware sizes it for the largest hot set), so probing it on the CPU costs
    H x ways cache-missing reads per key.  Here one word holds ``key | slot <<
    key_bits`` and a key's home is a multiplicative hash of it; at a load of at
    most 1/4 nearly every key resolves with one read.  The keys are placed in
    hash order, so the table builds vectorised: the key of rank ``i`` goes to
    ``i + max(h[j] - j for j <= i)``, the first free place at or after its
    home, with an overflow tail instead of wrapping around.
    """

    _MUL = np.uint64(0x9E3779B97F4A7C15)     # 2**64 / golden ratio, odd
    _EMPTY = np.uint64((1 << 64) - 1)        # never a word: key_bits + slot_bits < 64
    # (its key field can equal a real key, so every match also checks the word is filled)

    def __init__(self, keys: np.ndarray, slots: np.ndarray, key_bits: int):
        n = len(keys)
        log2_size = max(4, (4 * n - 1).bit_length())
        self._shift = np.uint64(64 - log2_size)
        self._key_bits = np.uint64(key_bits)
        self._key_mask = np.uint64((1 << key_bits) - 1)
        home = self._home(keys).astype(np.int64)
        order = np.argsort(home, kind="stable")
        rank = np.arange(n, dtype=np.int64)
        where = rank + np.maximum.accumulate(home[order] - rank) if n else rank
        # where[-1] is the last place used; the place after it stays empty and ends every probe.
        self._words = np.full(max(1 << log2_size, int(where[-1]) + 2 if n else 0), self._EMPTY)
        self._words[where] = keys[order] | (slots[order].astype(np.uint64) << self._key_bits)

    def _home(self, keys: np.ndarray) -> np.ndarray:
        return ((keys * self._MUL) >> self._shift).astype(np.intp)

    def find(self, keys: np.ndarray):
        """``(hit, slot)`` for a 1-D uint64 array of keys."""
        home = self._home(keys)
        word = self._words[home]
        filled = word != self._EMPTY
        hit = ((word & self._key_mask) == keys) & filled
        # Keys neither found nor stopped by an empty place probe on, a place at a time.
        todo = np.flatnonzero(~hit & filled)
        step = 0
        while todo.size:
            step += 1
            w = self._words[home[todo] + step]
            filled = w != self._EMPTY
            found = ((w & self._key_mask) == keys[todo]) & filled
            hit[todo[found]] = True
            word[todo[found]] = w[found]
            todo = todo[~found & filled]
        slot = np.where(hit, (word >> self._key_bits).astype(np.int64), 0)
        return hit, slot


def _place(cand: np.ndarray, nbuckets: int, ways: int):
    """Cuckoo placement of keys with candidate global buckets ``cand`` [n, H].

    Returns ``occ`` [nbuckets, ways] (key index or -1; each bucket filled from
    way 0 up) and ``fill`` [nbuckets].  Raises :class:`HotMapError` when no
    placement exists.
    """
    n, nh = cand.shape
    occ = np.full((nbuckets, ways), -1, dtype=np.int64)
    fill = np.zeros(nbuckets, dtype=np.int64)
    todo = np.arange(n, dtype=np.int64)
    # Greedy rounds: each still-unplaced key tries its hash-h bucket; keys
    # sharing a bucket take its free ways in index order (deterministic).
    for h in range(nh):
        if not len(todo):
            break
        g = cand[todo, h]
        order = np.argsort(g, kind="stable")
        gs, ks = g[order], todo[order]
        first = np.searchsorted(gs, gs, side="left")
        rank = np.arange(len(gs)) - first
        ok = rank < ways - fill[gs]
        occ[gs[ok], fill[gs[ok]] + rank[ok]] = ks[ok]
        np.add.at(fill, gs[ok], 1)
        todo = np.sort(ks[~ok])
    if not len(todo):
        return occ, fill
    # The rest: one exhaustive breadth-first augmenting-path search per key.
    occ_l = occ.tolist()
    fill_l = fill.tolist()
    cand_l = cand.tolist()
    for k in todo.tolist():
        _insert(k, cand_l, occ_l, fill_l, ways, n, nbuckets)
    return np.asarray(occ_l, dtype=np.int64).reshape(nbuckets, ways), np.asarray(fill_l)


def _insert(k, cand, occ, fill, ways, n, nbuckets):
    starts = list(dict.fromkeys(cand[k]))
    for g in starts:
        if fill[g] < ways:
            occ[g][fill[g]] = k
            fill[g] += 1
            return
    parent = {g: None for g in starts}  # bucket -> (bucket, way) whose key can move here
    queue = deque(starts)
    while queue:
        g = queue.popleft()
        for w in range(ways):
            for g2 in cand[occ[g][w]]:
                if g2 in parent:
                    continue
                parent[g2] = (g, w)
                if fill[g2] < ways:
                    cur, cw = g2, fill[g2]
                    fill[g2] += 1
                    while parent[cur] is not None:
                        pg, pw = parent[cur]
                        occ[cur][cw] = occ[pg][pw]
                        cur, cw = pg, pw
                    occ[cur][cw] = k
                    return
                queue.append(g2)
    held = len(parent) * ways
    raise HotMapError(
        f"cuckoo placement failed after {sum(fill)} of {n} keys: the candidate buckets of key "
        f"index {k} reach only {len(parent)} buckets ({held} slots), all full, and those {held} "
        f"keys plus this one have no other candidate bucket, so no placement of this set exists "
        f"({nbuckets * ways} slots in all)")
