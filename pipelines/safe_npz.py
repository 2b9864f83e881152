"""Reading untrusted `.npz` files (published downloads) without trusting their sizes.

`np.load` inflates a member before anything can look at it, so a few hundred KB of zip can ask
for gigabytes. `load_npz` reads each wanted member only after checking what the file declares:
the file's own size, the zip central directory's uncompressed size, then the `.npy` header's
dtype and shape (against the caller's bounds), and that the two agree. Inflating stops at the
declared size (zipfile checks the CRC at the end), so memory is bounded by the caller's bounds
whatever the file holds. Object arrays (pickles) are refused.
"""
from __future__ import annotations

import math
import os
import zipfile

import numpy as np

NPY_HEADER_MAX = 10_000          # numpy's own default limit on a .npy header


def load_npz(path: str, names: tuple, check, max_file_bytes: int) -> dict:
    """`{name: array}` for the members `name + ".npy"` of the npz file at `path`.

    `check(name, shape, dtype)` returns None to accept a member's declared shape and dtype, or
    the reason for refusing it; a file above `max_file_bytes` is refused unopened. Raises
    ValueError with the reason for anything refused or unreadable; FileNotFoundError and
    PermissionError propagate.
    """
    size = os.path.getsize(path)
    if size > max_file_bytes:
        raise ValueError(f"file of {size} bytes is larger than any valid one ({max_file_bytes} bytes at most)")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise ValueError(f"not an npz file: {e}") from None
    with zf:
        out = {}
        for name in names:
            try:
                info = zf.getinfo(name + ".npy")
            except KeyError:
                have = ", ".join(n.removesuffix(".npy") for n in zf.namelist()[:8]) or "nothing"
                raise ValueError(f"no {name} (it holds {have})") from None
            try:
                out[name] = _member(zf, info, name, check)
            except (ValueError, FileNotFoundError, PermissionError):
                raise
            except Exception as e:  # noqa: BLE001 - zlib, zip and format errors of a damaged member
                raise ValueError(f"{name}: unreadable member: {type(e).__name__}: {e}") from None
    return out


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, check) -> np.ndarray:
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"{name}: unsupported .npy version {version}")
        shape, fortran, dtype = read_header(f, max_header_size=NPY_HEADER_MAX)
        if dtype.hasobject:
            raise ValueError(f"{name}: holds Python objects (a pickle), which odg never loads")
        why = check(name, shape, dtype)
        if why:
            raise ValueError(why)
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != f.tell() + nbytes:
            raise ValueError(f"{name}: the zip directory declares {info.file_size} bytes, its .npy header "
                             f"{f.tell() + nbytes} (shape {list(shape)} {dtype})")
        data = f.read(nbytes)
    if len(data) != nbytes:
        raise ValueError(f"{name}: member cut short ({len(data)} of {nbytes} bytes)")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")
