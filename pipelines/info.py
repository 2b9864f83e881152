"""`odg info`: what a store holds, per split (only what was built is counted)."""
from __future__ import annotations

from .store import EventStore
from .store.schema import DISCARDED, KEPT, REJECTED


def split_bytes(url: str, split: str) -> int:
    """Bytes stored under the split (every array and bookkeeping file), on zarr's own store object."""
    from zarr.core.sync import sync
    store = EventStore(url)
    try:
        return int(sync(store.root.store.getsize_prefix(f"{split}/")))
    except FileNotFoundError:
        return 0


def store_info(url: str) -> dict:
    store = EventStore(url)
    info = {"store": url, "kind": store.kind, "odg_version": store.meta.get("odg_version"),
            "format_version": store.meta.get("format_version", 1), "params": store.meta["params"], "splits": {}}
    for split in store.splits:
        sr = store.split(split, allow_incomplete=True)
        st = sr.statuses                     # NOT_BUILT for the samples of unbuilt shards
        names, reasons = sr.names(), sr.reasons()
        rejects = [{"index": int(i), "name": names[i], "reason": reasons[i]} for i in (st == REJECTED).nonzero()[0]]
        counts = sr.counts
        kept = st == KEPT
        nbytes = split_bytes(url, split)
        unbuilt = [s for s, m in sorted(sr.markers.items()) if not m.built]
        info["splits"][split] = {
            "samples": len(sr), "built_samples": sr.n_built, "kept": int(kept.sum()),
            "discarded": int((st == DISCARDED).sum()), "rejected": len(rejects), "complete": sr.complete,
            "shards": sr.n_shards, "built_shards": len(sr.built_shards), "unbuilt_shards": unbuilt,
            "shard_size": sr.shard_size, "events_kept": int(counts[kept].sum()), "bytes": nbytes,
            "bytes_per_kept_sample": (nbytes / int(kept.sum())) if kept.any() else None,
            "source": sr.attrs.get("source"), "rejects": rejects,
        }
    return info


def info_text(info: dict) -> str:
    lines = [f"store {info['store']}  ({info['kind']}, odg {info['odg_version']})"]
    p = info["params"]
    lines.append("parameters: " + ", ".join(f"{k}={v}" for k, v in p.items() if k != "trajectory"))
    for split, s in info["splits"].items():
        state = "complete" if s["complete"] else \
            (f"INCOMPLETE: {s['built_shards']} of {s['shards']} shards built, {s['samples'] - s['built_samples']} "
             "samples not built (resume the build)")
        lines.append(f"[{split}] {s['samples']} samples: {s['kept']} kept, {s['discarded']} discarded, "
                     f"{s['rejected']} rejected; {s['shards']} shards of {s['shard_size']}; {state}")
        per = s["bytes_per_kept_sample"]
        lines.append(f"  size {s['bytes'] / 1e6:.2f} MB" + (f" ({per / 1e3:.1f} KB per kept sample)" if per else ""))
        if s["source"]:
            lines.append(f"  source: {s['source'].get('layout', '')} {s['source'].get('path', '')}")
        for r in s["rejects"]:
            lines.append(f"  rejected: {r['name']}: {r['reason']}")
    return "\n".join(lines)
