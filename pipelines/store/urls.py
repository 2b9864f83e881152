"""Store URLs: the filesystem package each protocol needs, checked before zarr or fsspec open one.

A store is a local path or an fsspec URL. Remote protocols need a package that odg installs
only on request, as an extra: `s3://` needs s3fs (`pip install 'odg[s3]'`), `gs://` / `gcs://`
gcsfs (`odg[gcs]`). `check_url` turns a missing one into a one-line `StoreError` naming the
extra, instead of the ImportError fsspec raises from deep inside the first read.
"""
from __future__ import annotations

import importlib

import fsspec
from fsspec.core import split_protocol

# protocol -> (module, odg extra)
EXTRAS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs")}


def check_url(url) -> None:
    """Raise `StoreError` when the filesystem of `url` (each part of a `::` chain) cannot be loaded."""
    from .writer import StoreError
    for part in str(url).split("::"):
        protocol = split_protocol(part)[0]
        if protocol in (None, "file", "local"):
            continue
        if protocol in EXTRAS:
            module, extra = EXTRAS[protocol]
            try:
                importlib.import_module(module)
            except ImportError:
                raise StoreError(f"{protocol}:// stores need {module}, which is not installed: "
                                 f"pip install 'odg[{extra}]' (on every Dask worker too)") from None
            continue
        try:
            fsspec.get_filesystem_class(protocol)
        except (ImportError, ValueError) as e:
            raise StoreError(f"cannot open {protocol}:// stores: {e}") from None
