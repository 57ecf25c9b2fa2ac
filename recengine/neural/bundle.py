"""A reader for TensorFlow's TensorBundle checkpoint format (what ``tf.train.Saver`` V2 writes).

A checkpoint with prefix ``P`` is two files:

- ``P.index``: a LevelDB-format table (SSTable). Data blocks hold sorted ``key -> value`` entries
  with prefix-compressed keys and restart points; an index block maps the last key of each data
  block to its ``BlockHandle``; a 48-byte footer at the end holds the metaindex and index handles
  and the magic number 0xdb4775248b80fb57. Every block is followed by a 5-byte trailer: the
  compression type (0 = none, the only kind TF writes for bundles) and the masked crc32c of the
  block and that byte. Keys are tensor names; values are ``BundleEntryProto`` messages (dtype,
  shape, shard, offset, size, crc32c of the bytes); the empty key holds ``BundleHeaderProto``.
- ``P.data-00000-of-00001``: the raw little-endian tensor bytes, at the entries' offsets.

Protobuf is decoded by hand (varints and length-delimited fields only; no protobuf dependency).
crc32c is computed in numpy (column-wise over chunks, then the chunk CRCs are combined), so a
7 MB data file checks in tens of milliseconds. Any inconsistency raises :class:`BundleError`
naming the file and what is wrong.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "BundleError",
    "BundleEntry",
    "TABLE_MAGIC",
    "DTYPES",
    "crc32c",
    "mask_crc",
    "unmask_crc",
    "iter_table",
    "read_index",
    "read_bundle",
]

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
_MASK_DELTA = 0xA282EAD8

# TensorFlow DataType enum -> numpy dtype (little-endian), for the numeric types.
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}


class BundleError(ValueError):
    """The checkpoint is damaged, truncated or uses a feature this reader does not support."""


# --- crc32c (Castagnoli, reflected polynomial 0x82F63B78) ------------------------------------------


def _make_table() -> np.ndarray:
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ np.uint32(0x82F63B78), t >> 1).astype(np.uint32)
    return t


_TABLE = _make_table()
_TABLE_LIST = [int(x) for x in _TABLE]
_CHUNK = 1024


def _crc_raw_small(data: bytes, reg: int = 0) -> int:
    """The CRC register after ``data`` starting from ``reg``, no final xor (pure Python)."""
    t = _TABLE_LIST
    for b in data:
        reg = t[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


def _shift_tables(nbytes: int) -> list[list[int]]:
    """Byte tables of the linear map 'append ``nbytes`` zero bytes' on a CRC register.

    The map is linear over GF(2), so it is given by its action on the 32 unit vectors; the four
    256-entry tables apply it to a register one byte at a time.
    """
    cols = []
    for i in range(32):
        reg = 1 << i
        cols.append(_zero_extend(reg, nbytes))
    tables = []
    for byte in range(4):
        tab = []
        for v in range(256):
            acc = 0
            for bit in range(8):
                if v >> bit & 1:
                    acc ^= cols[byte * 8 + bit]
            tab.append(acc)
        tables.append(tab)
    return tables


def _zero_extend(reg: int, nbytes: int) -> int:
    # square-and-multiply on the 'one zero byte' operator would be faster; nbytes is small here
    t = _TABLE_LIST
    for _ in range(nbytes):
        reg = t[reg & 0xFF] ^ (reg >> 8)
    return reg


_SHIFT_CHUNK = _shift_tables(_CHUNK)


def _apply(tables: list[list[int]], reg: int) -> int:
    return (
        tables[0][reg & 0xFF]
        ^ tables[1][(reg >> 8) & 0xFF]
        ^ tables[2][(reg >> 16) & 0xFF]
        ^ tables[3][reg >> 24]
    )


def _crc_linear(data) -> int:
    """The CRC register after ``data`` from register 0 (linear part, no init, no final xor)."""
    buf = np.frombuffer(memoryview(data), dtype=np.uint8)
    n = buf.size
    if n < 4 * _CHUNK:
        return _crc_raw_small(buf.tobytes())
    # Leading zero bytes leave a zero-initialised register at zero, so pad at the front up to a
    # whole number of chunks, run all chunks side by side, then fold them left to right.
    pad = (-n) % _CHUNK
    if pad:
        buf = np.concatenate([np.zeros(pad, dtype=np.uint8), buf])
    cols = buf.reshape(-1, _CHUNK)
    reg = np.zeros(cols.shape[0], dtype=np.uint32)
    for j in range(_CHUNK):
        reg = _TABLE[(reg ^ cols[:, j]) & 0xFF] ^ (reg >> 8)
    acc = 0
    for r in reg.tolist():
        acc = _apply(_SHIFT_CHUNK, acc) ^ r
    return acc


def crc32c(data, value: int = 0) -> int:
    """Standard crc32c of ``data`` (``value`` = a previous crc32c to extend, like zlib.crc32)."""
    n = len(memoryview(data).cast("B"))
    reg = (value ^ 0xFFFFFFFF) & 0xFFFFFFFF
    # register after data = zero_extend(reg, n) ^ linear(data)
    if n < 4 * _CHUNK:
        out = _crc_raw_small(bytes(data), reg)
    else:
        out = _zero_extend_fast(reg, n) ^ _crc_linear(data)
    return out ^ 0xFFFFFFFF


def _zero_extend_fast(reg: int, nbytes: int) -> int:
    # whole chunks with the precomputed operator, the remainder byte by byte
    q, r = divmod(nbytes, _CHUNK)
    for _ in range(q):
        reg = _apply(_SHIFT_CHUNK, reg)
    return _zero_extend(reg, r)


def mask_crc(crc: int) -> int:
    """LevelDB/TF masking of a stored crc (so a crc of data containing crcs stays informative)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# --- protobuf wire format ---------------------------------------------------------------------------


def _varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise BundleError(f"{where}: truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise BundleError(f"{where}: varint too long")


def _fields(buf: bytes, where: str) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field of a protobuf message."""
    pos = 0
    n = len(buf)
    while pos < n:
        tag, pos = _varint(buf, pos, where)
        field, wt = tag >> 3, tag & 7
        if wt == 0:
            v, pos = _varint(buf, pos, where)
        elif wt == 1:
            if pos + 8 > n:
                raise BundleError(f"{where}: truncated fixed64")
            v = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wt == 2:
            ln, pos = _varint(buf, pos, where)
            if pos + ln > n:
                raise BundleError(f"{where}: truncated field {field}")
            v = bytes(buf[pos : pos + ln])
            pos += ln
        elif wt == 5:
            if pos + 4 > n:
                raise BundleError(f"{where}: truncated fixed32")
            v = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise BundleError(f"{where}: unsupported wire type {wt}")
        yield field, wt, v


def _int64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


@dataclass(frozen=True)
class BundleEntry:
    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None  # masked, as stored
    sliced: bool = False


def _parse_shape(buf: bytes, where: str) -> tuple[int, ...]:
    dims = []
    for f, wt, v in _fields(buf, where):
        if f == 2 and wt == 2:  # TensorShapeProto.dim
            size = 0
            for f2, wt2, v2 in _fields(v, where):
                if f2 == 1 and wt2 == 0:
                    size = _int64(v2)
            dims.append(size)
        elif f == 3 and wt == 0 and v:
            raise BundleError(f"{where}: unknown-rank shape")
    return tuple(dims)


def _parse_entry(name: str, buf: bytes, where: str) -> BundleEntry:
    dtype = shard = offset = size = 0
    shape: tuple[int, ...] = ()
    crc = None
    sliced = False
    for f, wt, v in _fields(buf, where):
        if f == 1 and wt == 0:
            dtype = v
        elif f == 2 and wt == 2:
            shape = _parse_shape(v, where)
        elif f == 3 and wt == 0:
            shard = v
        elif f == 4 and wt == 0:
            offset = _int64(v)
        elif f == 5 and wt == 0:
            size = _int64(v)
        elif f == 6 and wt == 5:
            crc = v
        elif f == 7:
            sliced = True
    return BundleEntry(name, dtype, shape, shard, offset, size, crc, sliced)


def _parse_header(buf: bytes, where: str) -> dict:
    h = {"num_shards": 0, "endianness": 0, "version": {}}
    for f, wt, v in _fields(buf, where):
        if f == 1 and wt == 0:
            h["num_shards"] = v
        elif f == 2 and wt == 0:
            h["endianness"] = v
        elif f == 3 and wt == 2:
            ver = {}
            for f2, wt2, v2 in _fields(v, where):
                if wt2 == 0:
                    ver[{1: "producer", 2: "min_consumer", 3: "bad_consumers"}.get(f2, str(f2))] = v2
            h["version"] = ver
    return h


# --- SSTable ------------------------------------------------------------------------------------------


def _read_block(table: bytes, offset: int, size: int, where: str, verify: bool) -> bytes:
    end = offset + size
    if offset < 0 or size < 4 or end + BLOCK_TRAILER_SIZE > len(table):
        raise BundleError(f"{where}: block at {offset}+{size} outside the file ({len(table)} bytes)")
    ctype = table[end]
    if ctype != 0:
        raise BundleError(f"{where}: block at {offset} is compressed (type {ctype}); unsupported")
    if verify:
        stored = struct.unpack_from("<I", table, end + 1)[0]
        actual = crc32c(table[offset : end + 1])
        if unmask_crc(stored) != actual:
            raise BundleError(f"{where}: block at {offset} fails its crc32c check (damaged file)")
    return table[offset:end]


def _block_entries(block: bytes, where: str) -> Iterator[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise BundleError(f"{where}: block too short")
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * num_restarts
    if limit < 0:
        raise BundleError(f"{where}: bad restart count {num_restarts}")
    restarts = set(struct.unpack_from(f"<{num_restarts}I", block, limit)) if num_restarts else set()
    pos = 0
    key = b""
    while pos < limit:
        start = pos
        shared, pos = _varint(block, pos, where)
        non_shared, pos = _varint(block, pos, where)
        vlen, pos = _varint(block, pos, where)
        if start in restarts and shared:
            raise BundleError(f"{where}: entry at restart point {start} shares a prefix")
        if shared > len(key) or pos + non_shared + vlen > limit:
            raise BundleError(f"{where}: corrupt entry at {start}")
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        yield key, block[pos : pos + vlen]
        pos += vlen


def _handle(buf: bytes, pos: int, where: str) -> tuple[int, int, int]:
    off, pos = _varint(buf, pos, where)
    size, pos = _varint(buf, pos, where)
    return off, size, pos


def iter_table(table: bytes, where: str = "table", verify: bool = True) -> Iterator[tuple[bytes, bytes]]:
    """Every ``(key, value)`` of a LevelDB-format table held in ``table``, in order."""
    if len(table) < FOOTER_SIZE:
        raise BundleError(f"{where}: {len(table)} bytes, too short for a table footer")
    footer = table[-FOOTER_SIZE:]
    magic = struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)[0]
    if magic != TABLE_MAGIC:
        raise BundleError(f"{where}: bad table magic {magic:#018x} (not a TensorBundle index?)")
    _, _, pos = _handle(footer, 0, where)  # metaindex: TF writes it empty
    index_off, index_size, _ = _handle(footer, pos, where)
    index = _read_block(table, index_off, index_size, where, verify)
    prev = None
    for _, handle in _block_entries(index, where):
        off, size, _ = _handle(handle, 0, where)
        for key, value in _block_entries(_read_block(table, off, size, where, verify), where):
            if prev is not None and key <= prev:
                raise BundleError(f"{where}: keys out of order ({prev!r} then {key!r})")
            prev = key
            yield key, value


def read_index(index_path: str | Path, verify: bool = True) -> tuple[dict, dict[str, BundleEntry]]:
    """The header and the entries (name -> :class:`BundleEntry`) of a ``.index`` file."""
    p = Path(index_path)
    try:
        table = p.read_bytes()
    except OSError as e:
        raise BundleError(f"{p}: cannot read ({e.strerror or e})") from e
    header = None
    entries: dict[str, BundleEntry] = {}
    for key, value in iter_table(table, str(p), verify):
        if key == b"":
            header = _parse_header(value, f"{p}: header")
            continue
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BundleError(f"{p}: tensor name is not UTF-8: {key!r}") from e
        entries[name] = _parse_entry(name, value, f"{p}: entry {name}")
    if header is None:
        raise BundleError(f"{p}: no BundleHeaderProto (empty key) in the index")
    if header["endianness"] != 0:
        raise BundleError(f"{p}: big-endian bundle; unsupported")
    return header, entries


def _prefix_paths(prefix: str | Path) -> tuple[Path, str]:
    s = str(prefix)
    if s.endswith(".index"):
        s = s[: -len(".index")]
    return Path(s + ".index"), s


def read_bundle(prefix: str | Path, names=None, verify: bool = True) -> dict[str, np.ndarray]:
    """Tensors of the checkpoint ``prefix`` (``prefix.index`` + data shards) as numpy arrays.

    ``prefix`` may also be the ``.index`` path; for musicnn's checkpoints (files named ``.index``
    in a folder) the prefix is ``folder/``. ``names`` limits the result to those tensors.
    ``verify`` checks the crc32c of every index block and every tensor's bytes.
    """
    index_path, base = _prefix_paths(prefix)
    header, entries = read_index(index_path, verify)
    nshards = header["num_shards"] or 1
    wanted = entries if names is None else {n: entries[n] for n in names if n in entries}
    if names is not None:
        missing = [n for n in names if n not in entries]
        if missing:
            raise BundleError(f"{index_path}: no tensor named {', '.join(map(repr, missing))}")
    shards: dict[int, bytes] = {}
    out: dict[str, np.ndarray] = {}
    for name, e in wanted.items():
        where = f"{base}: tensor {name}"
        if e.sliced:
            raise BundleError(f"{where}: partitioned (sliced) tensors are unsupported")
        dt = DTYPES.get(e.dtype)
        if dt is None:
            raise BundleError(f"{where}: unsupported dtype enum {e.dtype}")
        if not 0 <= e.shard_id < nshards:
            raise BundleError(f"{where}: shard {e.shard_id} of {nshards}")
        if e.shard_id not in shards:
            dpath = Path(f"{base}.data-{e.shard_id:05d}-of-{nshards:05d}")
            try:
                shards[e.shard_id] = dpath.read_bytes()
            except OSError as err:
                raise BundleError(f"{dpath}: cannot read ({err.strerror or err})") from err
        data = shards[e.shard_id]
        count = int(np.prod(e.shape, dtype=np.int64)) if e.shape else 1
        if any(d < 0 for d in e.shape) or count * dt.itemsize != e.size:
            raise BundleError(f"{where}: shape {e.shape} x {dt} does not match size {e.size}")
        if e.offset < 0 or e.offset + e.size > len(data):
            raise BundleError(f"{where}: bytes {e.offset}+{e.size} outside the data file ({len(data)} bytes)")
        raw = memoryview(data)[e.offset : e.offset + e.size]
        if verify and e.crc32c is not None and unmask_crc(e.crc32c) != crc32c(raw):
            raise BundleError(f"{where}: crc32c mismatch (damaged data file)")
        out[name] = np.frombuffer(raw, dtype=dt).reshape(e.shape).copy()
    return out
