"""TensorBundle reader: checkpoints written here by an independent writer, read back, then damaged.

The writer below follows the LevelDB table format and TF's BundleEntryProto layout directly
(prefix-compressed keys, restart points, several data blocks, index block, footer + magic), with
its own bitwise crc32c, so the reader is checked against a second implementation, not itself.
Also: the installer's conversion of a wheel built here, its idempotence and its pip error.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from recengine.neural import bundle, install

# --- an independent writer ----------------------------------------------------------------------


def crc32c_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num: int, v: int) -> bytes:
    return varint(num << 3) + varint(v & ((1 << 64) - 1))


def field_bytes(num: int, b: bytes) -> bytes:
    return varint(num << 3 | 2) + varint(len(b)) + b


def field_fixed32(num: int, v: int) -> bytes:
    return varint(num << 3 | 5) + struct.pack("<I", v)


DTYPE_ENUM = {"float32": 1, "float64": 2, "int32": 3, "uint8": 4, "int64": 9, "bool": 10, "float16": 19}


def entry_proto(dtype: int, shape, offset: int, size: int, crc: int) -> bytes:
    dims = b"".join(field_bytes(2, field_varint(1, d)) for d in shape)
    return (
        field_varint(1, dtype)
        + field_bytes(2, dims)
        + field_varint(4, offset)
        + field_varint(5, size)
        + field_fixed32(6, crc)
    )


def header_proto() -> bytes:
    return field_varint(1, 1) + field_bytes(3, field_varint(1, 1126))


def build_block(items: list[tuple[bytes, bytes]], restart_interval: int) -> bytes:
    out = bytearray()
    restarts = []
    prev = b""
    for i, (k, v) in enumerate(items):
        if i % restart_interval == 0:
            restarts.append(len(out))
            shared = 0
        else:
            shared = 0
            while shared < min(len(prev), len(k)) and prev[shared] == k[shared]:
                shared += 1
        out += varint(shared) + varint(len(k) - shared) + varint(len(v)) + k[shared:] + v
        prev = k
    for r in restarts or [0]:
        out += struct.pack("<I", r)
    out += struct.pack("<I", len(restarts or [0]))
    return bytes(out)


def write_table(items: list[tuple[bytes, bytes]], per_block: int, restart_interval: int) -> bytes:
    f = bytearray()

    def emit(block: bytes) -> bytes:
        off = len(f)
        f.extend(block)
        f.append(0)  # no compression
        f.extend(struct.pack("<I", masked(crc32c_bitwise(block + b"\x00"))))
        return varint(off) + varint(len(block))

    index = []
    for i in range(0, len(items), per_block):
        chunk = items[i : i + per_block]
        handle = emit(build_block(chunk, restart_interval))
        index.append((chunk[-1][0], handle))
    meta_handle = emit(build_block([], 1))
    index_handle = emit(build_block(index, 1))
    footer = (meta_handle + index_handle).ljust(40, b"\x00") + struct.pack("<Q", 0xDB4775248B80FB57)
    f.extend(footer)
    return bytes(f)


def write_bundle(prefix: str, tensors: dict[str, np.ndarray], per_block: int = 3, restart_interval: int = 2):
    data = bytearray()
    items = [(b"", header_proto())]
    for name in sorted(tensors):
        a = np.asarray(tensors[name], order="C")
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        items.append(
            (name.encode(), entry_proto(DTYPE_ENUM[a.dtype.name], a.shape, len(data), len(raw), masked(crc32c_bitwise(raw))))
        )
        data += raw
    Path(prefix + ".index").write_bytes(write_table(items, per_block, restart_interval))
    Path(prefix + ".data-00000-of-00001").write_bytes(bytes(data))


def sample_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "conv/kernel": rng.standard_normal((3, 3, 2, 4)).astype(np.float32),
        "conv/kernel/Adam": rng.standard_normal((3, 3, 2, 4)).astype(np.float32),
        "conv/kernel/Adam_1": rng.standard_normal((3, 3, 2, 4)).astype(np.float32),
        "conv/bias": np.arange(4, dtype=np.float32) - 1.5,
        "dense/kernel": rng.standard_normal((7, 5)).astype(np.float64),
        "global_step": np.array(123456789012, dtype=np.int64),
        "counts": np.array([[1], [-2], [3]], dtype=np.int32),
        "mask": np.array([True, False, True]),
        "bytes": np.arange(250, 256, dtype=np.uint8),
        "half": np.array([[0.5, -1.0], [65504.0, 1e-3]], dtype=np.float16),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }


@pytest.fixture
def ckpt(tmp_path):
    prefix = str(tmp_path / "model")
    tensors = sample_tensors()
    write_bundle(prefix, tensors)
    return prefix, tensors


# --- crc ---------------------------------------------------------------------------------------------


def test_crc32c_known_vector_and_against_bitwise():
    assert bundle.crc32c(b"123456789") == 0xE3069283
    assert bundle.crc32c(b"") == 0
    rng = np.random.default_rng(0)
    for n in (1, 1023, 4096, 4097, 50_001):
        d = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert bundle.crc32c(d) == crc32c_bitwise(d), n
    d = rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    assert bundle.crc32c(d[7000:], bundle.crc32c(d[:7000])) == bundle.crc32c(d)


def test_mask_roundtrip():
    for c in (0, 1, 0xE3069283, 0xFFFFFFFF):
        assert bundle.mask_crc(c) == masked(c)
        assert bundle.unmask_crc(bundle.mask_crc(c)) == c


# --- reading ------------------------------------------------------------------------------------------


def test_table_has_several_blocks_and_prefix_compression(ckpt):
    prefix, tensors = ckpt
    raw = Path(prefix + ".index").read_bytes()
    keys = [k for k, _ in bundle.iter_table(raw)]
    assert keys == [b""] + sorted(k.encode() for k in tensors)
    # the writer really made several data blocks, and keys are stored prefix-compressed
    footer = raw[-48:]
    _, _, pos = bundle._handle(footer, 0, "t")
    off, size, _ = bundle._handle(footer, pos, "t")
    index = list(bundle._block_entries(bundle._read_block(raw, off, size, "t", True), "t"))
    assert len(index) == -(-(len(tensors) + 1) // 3) >= 4
    items = list(bundle.iter_table(raw))
    shared = write_table(items, 3, 16)  # prefix-compressed within blocks
    plain = write_table(items, 3, 1)  # every entry a restart point: full keys
    assert len(shared) < len(plain)
    assert list(bundle.iter_table(shared)) == list(bundle.iter_table(plain)) == items


def test_read_back_every_dtype_and_shape(ckpt):
    prefix, tensors = ckpt
    got = bundle.read_bundle(prefix)
    assert sorted(got) == sorted(tensors)
    for name, a in tensors.items():
        assert got[name].dtype == a.dtype, name
        assert got[name].shape == a.shape, name
        np.testing.assert_array_equal(got[name], a)


def test_read_index_entries_and_header(ckpt):
    prefix, tensors = ckpt
    header, entries = bundle.read_index(prefix + ".index")
    assert header["num_shards"] == 1 and header["version"]["producer"] == 1126
    e = entries["dense/kernel"]
    assert e.shape == (7, 5) and e.dtype == 2 and e.size == 7 * 5 * 8
    assert bundle.unmask_crc(e.crc32c) == crc32c_bitwise(tensors["dense/kernel"].tobytes())


def test_index_path_and_names_selection(ckpt):
    prefix, tensors = ckpt
    got = bundle.read_bundle(prefix + ".index", names=["conv/bias"])
    assert list(got) == ["conv/bias"]
    with pytest.raises(bundle.BundleError, match="no tensor named 'nope'"):
        bundle.read_bundle(prefix, names=["nope"])


def test_many_blocks_single_restart_and_one_block(tmp_path):
    tensors = {f"layer_{i:03d}/w": np.full((i % 4 + 1,), i, np.float32) for i in range(120)}
    for per_block, restart in ((1, 1), (7, 16), (1000, 3)):
        prefix = str(tmp_path / f"m{per_block}_{restart}")
        write_bundle(prefix, tensors, per_block=per_block, restart_interval=restart)
        got = bundle.read_bundle(prefix)
        assert sorted(got) == sorted(tensors)
        for k, v in tensors.items():
            np.testing.assert_array_equal(got[k], v)


# --- damage -----------------------------------------------------------------------------------------


def _flip(path: str, pos: int) -> None:
    b = bytearray(Path(path).read_bytes())
    b[pos] ^= 0x40
    Path(path).write_bytes(bytes(b))


def test_damaged_data_file_is_a_clear_error(ckpt):
    prefix, tensors = ckpt
    _, entries = bundle.read_index(prefix + ".index")
    e = entries["conv/bias"]
    _flip(prefix + ".data-00000-of-00001", e.offset + 5)
    with pytest.raises(bundle.BundleError, match=r"conv/bias: crc32c mismatch"):
        bundle.read_bundle(prefix)
    # the other tensors are still readable, and verify=False returns the damaged bytes
    assert "dense/kernel" in bundle.read_bundle(prefix, names=["dense/kernel"])
    bad = bundle.read_bundle(prefix, names=["conv/bias"], verify=False)["conv/bias"]
    assert not np.array_equal(bad, tensors["conv/bias"])


def test_damaged_index_block_is_a_clear_error(ckpt):
    prefix, _ = ckpt
    _flip(prefix + ".index", 10)  # inside the first data block
    with pytest.raises(bundle.BundleError, match="crc32c"):
        bundle.read_bundle(prefix)


def test_bad_magic_truncation_and_compression(ckpt, tmp_path):
    prefix, _ = ckpt
    raw = Path(prefix + ".index").read_bytes()
    p = tmp_path / "x.index"
    p.write_bytes(raw[:-1] + b"\x00")
    with pytest.raises(bundle.BundleError, match="bad table magic"):
        bundle.read_index(p)
    p.write_bytes(raw[:20])
    with pytest.raises(bundle.BundleError, match="too short"):
        bundle.read_index(p)
    # mark the first block as snappy-compressed (and fix its crc so only the type is wrong)
    items = [(b"", header_proto())]
    table = bytearray(write_table(items, 3, 2))
    blen = len(build_block(items, 2))
    table[blen] = 1
    table[blen + 1 : blen + 5] = struct.pack("<I", masked(crc32c_bitwise(bytes(table[: blen + 1]))))
    p.write_bytes(bytes(table))
    with pytest.raises(bundle.BundleError, match="compressed"):
        bundle.read_index(p)


def test_truncated_data_file(ckpt):
    prefix, _ = ckpt
    d = Path(prefix + ".data-00000-of-00001")
    d.write_bytes(d.read_bytes()[:10])
    with pytest.raises(bundle.BundleError, match="outside the data file"):
        bundle.read_bundle(prefix)


def test_missing_files(tmp_path):
    with pytest.raises(bundle.BundleError, match="cannot read"):
        bundle.read_bundle(str(tmp_path / "nothing"))


# --- installer on a wheel built here -------------------------------------------------------------------


def make_wheel(tmp_path: Path) -> tuple[Path, dict]:
    models = {}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for m in ("MTT_vgg", "MSD_musicnn"):
            d = tmp_path / f"src_{m}"
            d.mkdir()
            t = sample_tensors()
            t = {k: v for k, v in t.items() if v.dtype == np.float32}
            t["beta1_power"] = np.array(0.9, np.float32)
            write_bundle(str(d) + "/", t)
            for suffix in (".index", ".data-00000-of-00001"):
                z.writestr(f"musicnn/{m}/{suffix}", (d / suffix).read_bytes())
            models[m] = t
        z.writestr("musicnn-0.1.0.dist-info/LICENSE.md", "ISC licence text")
    w = tmp_path / install.WHEEL_NAME
    w.write_bytes(buf.getvalue())
    return w, models


def test_convert_install_idempotent_and_load(tmp_path, monkeypatch):
    wheel, models = make_wheel(tmp_path)
    out = tmp_path / "models"
    monkeypatch.setattr(install, "WHEEL_SHA256", None)
    with pytest.raises(install.ModelInstallError, match="sha256"):
        install.convert_wheel(wheel, out)  # the pinned hash is the real wheel's
    paths = install.convert_wheel(wheel, out, expected_sha256=None, progress=lambda s: None)
    assert [p.name for p in paths] == ["musicnn-MTT_vgg.npz", "musicnn-MSD_musicnn.npz"]
    assert install.is_installed("MTT_vgg", out) and install.installed_models(out) == ["MTT_vgg", "MSD_musicnn"]
    w = install.load_model("MTT_vgg", out)
    assert "beta1_power" not in w and "conv/kernel/Adam" not in w
    np.testing.assert_array_equal(w["conv/kernel"], models["MTT_vgg"]["conv/kernel"])
    man = json.loads((out / "musicnn-MTT_vgg.json").read_text())
    assert man["model"] == "MTT_vgg" and "conv/bias" in man["tensors"]
    assert (out / "musicnn-LICENSE.md").read_text() == "ISC licence text"
    assert not list(out.glob("*.tmp"))

    # installed: no pip, no conversion
    def no_pip(*a, **k):
        raise AssertionError("pip must not run when the models are installed")

    monkeypatch.setattr(install.subprocess, "run", no_pip)
    assert install.install_models(out, progress=lambda s: None) == paths

    # a damaged npz is no longer 'installed', and loading says so in one line
    (out / "musicnn-MTT_vgg.npz").write_bytes(b"junk")
    assert not install.is_installed("MTT_vgg", out)
    with pytest.raises(install.ModelInstallError, match="not installed"):
        install.load_model("MTT_vgg", out)


def test_install_reports_pip_failure_in_one_line(tmp_path, monkeypatch):
    def fake_run(cmd, **kw):
        assert cmd[1:5] == ["-m", "pip", "download", "--no-deps"] and "musicnn==0.1.0" in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "Looking in indexes\nERROR: No matching distribution found for musicnn==0.1.0\n")

    monkeypatch.setattr(install.subprocess, "run", fake_run)
    with pytest.raises(install.ModelInstallError) as ei:
        install.install_models(tmp_path / "m", progress=lambda s: None)
    msg = str(ei.value)
    assert "\n" not in msg and "No matching distribution" in msg
    assert not install.is_installed("MTT_vgg", tmp_path / "m")


def test_default_models_dir():
    assert install.default_models_dir({"XDG_DATA_HOME": "/x/data", "HOME": "/h"}) == Path("/x/data/recengine/models")
    assert install.default_models_dir({"HOME": "/h"}) == Path("/h/.local/share/recengine/models")
    assert install.default_models_dir({"XDG_DATA_HOME": "rel", "HOME": "/h"}) == Path("/h/.local/share/recengine/models")
