"""`odg verify`: recompute every shard's checksums and name what is damaged or missing."""
from __future__ import annotations

from dataclasses import dataclass, field

from . import kv as kvmod
from .reader import EventStore
from .schema import marker_key


@dataclass
class SplitVerdict:
    split: str
    shards: int
    verified: int = 0
    missing: list = field(default_factory=list)     # shard indices with no completion marker
    damaged: list = field(default_factory=list)     # (shard, array, key, why)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.damaged


def verify_store(url: str) -> list[SplitVerdict]:
    store = EventStore(url)
    kv = kvmod.mapper(url)
    out = []
    for split in store.splits:
        sr = store[split]
        v = SplitVerdict(split, sr.n_shards)
        for s in range(sr.n_shards):
            marker = kvmod.read_json(kv, f"{split}/{marker_key(s)}")
            if marker is None:
                v.missing.append(s)
                continue
            bad = False
            for array, want in sorted(marker["sha256"].items()):
                key = kvmod.chunk_key(split, array, s, sr.array(array).ndim)
                got = kvmod.checksum(kv, key)
                if got != want:
                    why = "missing" if got == "absent" else "checksum differs"
                    v.damaged.append((s, array, key, why))
                    bad = True
            v.verified += not bad
        out.append(v)
    return out
