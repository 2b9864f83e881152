"""`odg info`: what a store holds, per split."""
from __future__ import annotations

from .store import EventStore, kv as kvmod
from .store.schema import DISCARDED, KEPT, REJECTED


def split_bytes(url: str, split: str) -> int:
    m = kvmod.mapper(url)
    try:
        return int(m.fs.du(f"{m.root}/{split}"))
    except FileNotFoundError:
        return 0


def store_info(url: str) -> dict:
    store = EventStore(url)
    info = {"store": url, "kind": store.kind, "odg_version": store.meta.get("odg_version"),
            "params": store.meta["params"], "splits": {}}
    for split in store.splits:
        sr = store[split]
        st = sr.statuses
        names, reasons = sr.names(), sr.reasons()
        rejects = [{"index": int(i), "name": names[i], "reason": reasons[i]} for i in (st == REJECTED).nonzero()[0]]
        counts = sr.counts
        kept = st == KEPT
        nbytes = split_bytes(url, split)
        info["splits"][split] = {
            "samples": len(sr), "kept": int(kept.sum()), "discarded": int((st == DISCARDED).sum()),
            "rejected": len(rejects), "complete": sr.complete, "shards": sr.n_shards, "shard_size": sr.shard_size,
            "events_kept": int(counts[kept].sum()), "bytes": nbytes,
            "bytes_per_kept_sample": (nbytes / int(kept.sum())) if kept.any() else None,
            "source": sr.attrs.get("source"), "rejects": rejects,
        }
    return info


def info_text(info: dict) -> str:
    lines = [f"store {info['store']}  ({info['kind']}, odg {info['odg_version']})"]
    p = info["params"]
    lines.append("parameters: " + ", ".join(f"{k}={v}" for k, v in p.items() if k != "trajectory"))
    for split, s in info["splits"].items():
        state = "complete" if s["complete"] else "INCOMPLETE (resume the build)"
        lines.append(f"[{split}] {s['samples']} samples: {s['kept']} kept, {s['discarded']} discarded, "
                     f"{s['rejected']} rejected; {s['shards']} shards of {s['shard_size']}; {state}")
        per = s["bytes_per_kept_sample"]
        lines.append(f"  size {s['bytes'] / 1e6:.2f} MB" + (f" ({per / 1e3:.1f} KB per kept sample)" if per else ""))
        if s["source"]:
            lines.append(f"  source: {s['source'].get('layout', '')} {s['source'].get('path', '')}")
        for r in s["rejects"]:
            lines.append(f"  rejected: {r['name']}: {r['reason']}")
    return "\n".join(lines)
