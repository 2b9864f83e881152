"""Shard completion markers: the one definition of "this shard is built".

A shard `i` of a split is built when `<split>/_odg/shards/NNNNNN.json` holds a valid marker: a JSON
object with `shard` (== i), `start`, `stop` (sample range), `sha256` (array name -> hex digest of
the chunk or shard file the build wrote) and `summary`. A marker that is absent, empty, truncated,
not JSON, or lacks those fields means "not built": a resume rebuilds that shard and `odg verify`
names it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from .schema import marker_key

REQUIRED = ("shard", "start", "stop", "sha256", "summary")


@dataclass(frozen=True)
class MarkerState:
    """`marker` when valid; otherwise `None` with `why` ('absent' or what is wrong with it)."""
    shard: int
    marker: dict | None
    why: str = ""

    @property
    def built(self) -> bool:
        return self.marker is not None


def parse_marker(shard: int, raw: bytes | None) -> MarkerState:
    """Judge the bytes of shard `shard`'s marker (`None` when the key does not exist)."""
    if raw is None:
        return MarkerState(shard, None, "absent")
    try:
        m = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return MarkerState(shard, None, "unreadable (empty or not JSON)" if raw.strip() else "empty")
    if not isinstance(m, dict) or any(k not in m for k in REQUIRED):
        return MarkerState(shard, None, "incomplete (missing " +
                           ", ".join(k for k in REQUIRED if not isinstance(m, dict) or k not in m) + ")")
    if m["shard"] != shard or not isinstance(m["sha256"], dict):
        return MarkerState(shard, None, f"inconsistent (records shard {m['shard']!r})")
    return MarkerState(shard, m)


def marker_path(split: str, shard: int) -> str:
    """Key of shard `shard`'s marker, relative to the store root."""
    return f"{split}/{marker_key(shard)}"
