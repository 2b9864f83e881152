"""`odg verify`: recompute every shard's checksums and name what is damaged, missing or unreadable."""
from __future__ import annotations

from dataclasses import dataclass, field

from .integrity import chunk_problem
from .keys import StoreKeys
from .reader import EventStore
from .shard_read import chunk_key


@dataclass
class SplitVerdict:
    split: str
    shards: int
    verified: int = 0
    missing: list = field(default_factory=list)     # shard indices with no completion marker
    unreadable: list = field(default_factory=list)  # (shard, why): a marker that is not valid
    damaged: list = field(default_factory=list)     # (shard, array, key, why)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unreadable and not self.damaged


def verify_store(url: str) -> list[SplitVerdict]:
    """Every shard of every split: its marker valid, and each chunk the sha256 its marker recorded."""
    store = EventStore(url)
    out = []
    for split in store.splits:
        sr = store.split(split, allow_incomplete=True, check=False)
        v = SplitVerdict(split, sr.n_shards)
        for s, ms in sorted(sr.markers.items()):
            if not ms.built:
                (v.missing.append(s) if ms.why == "absent" else v.unreadable.append((s, ms.why)))
                continue
            bad = False
            names = sorted(ms.marker["sha256"])
            arrays = [sr.array(a) for a in names]
            keys = [f"{arr.store_path.path}/{chunk_key(arr, s)}" for arr in arrays]
            for array, key, raw in zip(names, keys, StoreKeys(arrays[0].store_path.store).get_many(keys)):
                why = chunk_problem(raw, ms.marker["sha256"][array], digest=True)
                if why:
                    v.damaged.append((s, array, key, why))
                    bad = True
            v.verified += not bad
        out.append(v)
    return out
