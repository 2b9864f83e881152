"""`odg compare STORE_A STORE_B`: two stores sample by sample, e.g. a rebuild against the published download.

Samples are matched within splits of the same name by their published file: ES-ImageNet
training samples by class and published number (`classK/classK_n.npz`), validation samples (and
any other split) by the source name's stem (`ILSVRC2012_val_00000001`: a build names the JPEG,
an import of the published layout the `.npz`); ES-UCF101 clips by name. Only kept samples have a
published file, so only kept samples are compared: a pair is `identical` when label, (a, b) /
(H, W) and every event agree, else `different` (with the events only in A and only in B); a
kept sample without a kept partner is `only_in_a` / `only_in_b` (with the other store's status
of that sample when it holds it as discarded or rejected).

One Dask task per shard of A reads that shard's words and the matched words of B and counts the
differing events: where both samples keep their events on the same grid (`_same_grid`: the same
window at the same canvas origin) from the bit-packed words directly (popcount of `a & ~b` and
`b & ~a`), otherwise from the decoded events (canvas coordinates; ES-UCF101: clip coordinates). Only counts, and the
first `LISTED` differing pairs of each shard, leave a task.
"""
from __future__ import annotations

import os
import time
from collections import Counter

import numpy as np

from .store import KEPT, KIND_IMAGENET, STATUS_NAMES, StoreError, open_store

FORMAT = "odg-compare"
FORMAT_VERSION = 1
LISTED = 1000            # differing pairs, and samples in one store only, listed by name (all are counted)


def sample_key(kind: str, split: str, label: int, number: int, name: str) -> str:
    """The published file a sample has (or would have) in its split, without the folder."""
    if kind == KIND_IMAGENET:
        from .export import published_relpath
        return published_relpath(split, label, number, name)
    return os.path.splitext(name.rsplit("/", 1)[-1])[0]


def _keys(store, split: str):
    sr = store[split]
    names, labels, numbers = sr.names(), sr.labels, sr.numbers
    keys = [sample_key(store.kind, split, int(labels[i]), int(numbers[i]), str(names[i])) for i in range(len(sr))]
    return sr, keys


def _same_grid(a, b, shape_a, shape_b) -> bool:
    """Whether a sample of shape `shape_a` in store `a` and one of `shape_b` in `b` keep their events on
    the same grid (the same window at the same canvas origin, the same word type): then their words
    compare bit for bit."""
    if a.kind != KIND_IMAGENET:
        return tuple(shape_a) == tuple(shape_b)
    pa, pb = a.params, b.params
    return (pa.window == pb.window and pa.steps == pb.steps
            and pa.window_origin(*shape_a) == pb.window_origin(*shape_b))


# -- the per-shard task ---------------------------------------------------------------------

def _popcount(w: np.ndarray) -> int:
    b = np.ascontiguousarray(w).view(np.uint8)
    return int(np.unpackbits(b).sum())


def _event_set(store, words: np.ndarray, shape) -> np.ndarray:
    """A sample's events as sorted int64 codes, in canvas (ES-ImageNet) or clip coordinates."""
    if store.kind == KIND_IMAGENET:
        from odg import words_to_events
        ev = words_to_events(words, tuple(int(v) for v in shape), store.params)
        x, y, t, p = (ev[k].astype(np.int64) for k in ("x", "y", "t", "p"))
    else:                       # a clip's published [2, S, H, W] frames, from the store's layout
        c, t, y, x = (v.astype(np.int64) for v in np.nonzero(store.layout.frames(words, shape)))
        p = c
    return np.unique((((y << 16) | x) << 16 | t) << 2 | p)


def shard_diff(job: dict) -> dict:
    """Worker task: compare the pairs whose A sample lies in shard `job["shard"]` of A."""
    a, b = open_store(job["a"]), open_store(job["b"])
    kw = {"allow_incomplete": True, "check": False}         # the client opened both splits checked
    sa, sb = a.split(job["split"], **kw), b.split(job["split"], **kw)
    rows_a = np.asarray(job["rows_a"], np.int64)
    rows_b = np.asarray(job["rows_b"], np.int64)
    K_a, K_b = sa.shard_size, sb.shard_size
    wa = sa.words_block(job["shard"], (rows_a - job["shard"] * K_a).tolist())
    wb = {}
    for s in np.unique(rows_b // K_b).tolist():
        inside = rows_b[rows_b // K_b == s] - s * K_b
        wb[s] = sb.words_block(s, inside.tolist())
    out = {"identical": 0, "different": 0, "events_only_in_a": 0, "events_only_in_b": 0, "listed": []}
    for ra, rb, meta_same, bitwise, shape_a, shape_b in zip(rows_a.tolist(), rows_b.tolist(), job["meta_same"],
                                                            job["bitwise"], job["shapes_a"], job["shapes_b"]):
        x = wa[ra - job["shard"] * K_a]
        y = wb[rb // K_b][rb - (rb // K_b) * K_b]
        if bitwise and x.shape == y.shape and x.dtype == y.dtype:
            only_a, only_b = _popcount(x & ~y), _popcount(y & ~x)
        else:
            ea, eb = _event_set(a, x, shape_a), _event_set(b, y, shape_b)
            only_a, only_b = len(np.setdiff1d(ea, eb)), len(np.setdiff1d(eb, ea))
        if meta_same and only_a == 0 and only_b == 0:
            out["identical"] += 1
            continue
        out["different"] += 1
        out["events_only_in_a"] += only_a
        out["events_only_in_b"] += only_b
        if len(out["listed"]) < job["listed"]:
            out["listed"].append((ra, rb, only_a, only_b))
    return out


# -- the comparison -------------------------------------------------------------------------

def _status(sr, i: int) -> str:
    return STATUS_NAMES[int(sr.statuses[i])]


def _kept_index(sr, keys: list) -> tuple[dict, dict, list]:
    """key -> row of kept samples; key -> row of every sample; duplicated keys among kept samples."""
    kept, every, dup = {}, {}, []
    st = sr.statuses
    for i, k in enumerate(keys):
        every.setdefault(k, i)
        if st[i] == KEPT:
            if k in kept:
                dup.append(k)
            else:
                kept[k] = i
    return kept, every, dup


def compare_split(a, b, split: str, client, listed: int = LISTED, progress: bool = False) -> dict:
    """The comparison of one split present in both stores (see the module docstring)."""
    from distributed import as_completed
    sa, ka = _keys(a, split)
    sb, kb = _keys(b, split)
    kept_a, every_a, dup_a = _kept_index(sa, ka)
    kept_b, every_b, dup_b = _kept_index(sb, kb)
    common = [k for k in kept_a if k in kept_b]
    pairs = sorted((kept_a[k], kept_b[k]) for k in common)
    la, lb, sha, shb = sa.labels, sb.labels, sa.shapes, sb.shapes
    names_a, names_b = sa.names(), sb.names()
    meta = {ra: (int(la[ra]) == int(lb[rb]) and tuple(sha[ra]) == tuple(shb[rb])) for ra, rb in pairs}
    by_shard: dict[int, list] = {}
    for ra, rb in pairs:
        by_shard.setdefault(ra // sa.shard_size, []).append((ra, rb))
    stamp = f"{os.getpid()}-{time.time_ns()}"
    futures = {}
    for s, ps in by_shard.items():
        job = {"a": a.url, "b": b.url, "split": split, "shard": s, "rows_a": [p[0] for p in ps],
               "rows_b": [p[1] for p in ps], "meta_same": [meta[p[0]] for p in ps],
               "bitwise": [_same_grid(a, b, sha[ra], shb[rb]) for ra, rb in ps],
               "shapes_a": [[int(v) for v in sha[p[0]]] for p in ps], "shapes_b": [[int(v) for v in shb[p[1]]] for p in ps],
               "listed": listed}
        futures[client.submit(shard_diff, job, key=f"odg-compare-{split}-{s}-{stamp}", pure=False)] = s
    from tqdm import tqdm
    bar = tqdm(total=len(pairs), unit="pair", desc=f"compare {split}", disable=not progress)
    parts = {}
    for fut in as_completed(futures):
        s = futures.pop(fut)
        parts[s] = fut.result()
        bar.update(len(by_shard[s]))
        fut.release()
    bar.close()
    out = {"matched": len(pairs), "identical": 0, "different": 0, "events_only_in_a": 0, "events_only_in_b": 0}
    diffs = []
    for s in sorted(parts):
        p = parts[s]
        for k in ("identical", "different", "events_only_in_a", "events_only_in_b"):
            out[k] += p[k]
        diffs += p["listed"]
    ca, cb = sa.counts, sb.counts

    def diff_entry(ra, rb, only_a, only_b):
        what = [w for w, same in (("label", int(la[ra]) == int(lb[rb])), ("shape", tuple(sha[ra]) == tuple(shb[rb])),
                                  ("events", only_a == 0 and only_b == 0)) if not same]
        return {"key": ka[ra], "name_a": str(names_a[ra]), "name_b": str(names_b[rb]), "index_a": ra, "index_b": rb,
                "differs": what, "label_a": int(la[ra]), "label_b": int(lb[rb]),
                "shape_a": [int(v) for v in sha[ra]], "shape_b": [int(v) for v in shb[rb]],
                "events_a": int(ca[ra].sum()), "events_b": int(cb[rb].sum()),
                "events_only_in_a": only_a, "events_only_in_b": only_b}
    out["differences"] = [diff_entry(*d) for d in sorted(diffs)[:listed]]

    def only(kept_x, kept_y, every_y, keys_x, sy):
        rows = sorted(kept_x[k] for k in kept_x if k not in kept_y)
        return rows, [_status(sy, every_y[keys_x[r]]) if keys_x[r] in every_y else "absent" for r in rows]
    rows_a, st_a = only(kept_a, kept_b, every_b, ka, sb)
    rows_b, st_b = only(kept_b, kept_a, every_a, kb, sa)
    out["only_in_a"], out["only_in_b"] = len(rows_a), len(rows_b)
    out["only_in_a_status_in_b"] = dict(sorted(Counter(st_a).items()))
    out["only_in_b_status_in_a"] = dict(sorted(Counter(st_b).items()))
    out["only_in_a_listed"] = [{"key": ka[r], "name": str(names_a[r]), "index": r, "status_in_b": st}
                               for r, st in zip(rows_a[:listed], st_a)]
    out["only_in_b_listed"] = [{"key": kb[r], "name": str(names_b[r]), "index": r, "status_in_a": st}
                               for r, st in zip(rows_b[:listed], st_b)]
    out["duplicate_keys"] = {"a": sorted(set(dup_a))[:listed], "b": sorted(set(dup_b))[:listed]}
    out["kept"] = {"a": len(kept_a) + len(dup_a), "b": len(kept_b) + len(dup_b)}
    out["samples"] = {"a": len(sa), "b": len(sb)}
    out["equal"] = (out["different"] == 0 and out["only_in_a"] == 0 and out["only_in_b"] == 0
                    and not dup_a and not dup_b)
    return out


def check_comparable(url_a: str, url_b: str, splits=None):
    """(store A, store B, the splits to compare); raises `StoreError` / `KeyError` as `compare_stores`."""
    a, b = open_store(url_a), open_store(url_b)
    if a.kind != b.kind:
        raise StoreError(f"cannot compare an {a.kind} store ({url_a}) with an {b.kind} store ({url_b})")
    if splits:
        for s in splits:
            a[s], b[s]
        names = list(splits)
    else:
        names = [s for s in a.splits if s in b.splits]
    for s in names:
        for st in (a, b):
            if not st[s].complete:
                raise StoreError(f"split '{s}' of {st.url} is incomplete; finish its build with --resume first")
    return a, b, names


def compare_stores(url_a: str, url_b: str, splits=None, client=None, workers=None, scheduler=None,
                   progress: bool = True, listed: int = LISTED, connect_timeout: float | None = None) -> dict:
    """Compare two stores split by split (`splits`: those names only; default every split of either).

    Raises `StoreError` for a missing store, stores of different kinds or an incomplete split,
    and `KeyError` for a requested split one of the stores lacks, before starting any cluster."""
    import contextlib

    from .build import CONNECT_TIMEOUT, dask_client
    a, b, names = check_comparable(url_a, url_b, splits)
    out = {"format": FORMAT, "format_version": FORMAT_VERSION, "a": url_a, "b": url_b, "kind": a.kind,
           "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "params_equal": a.meta["params"] == b.meta["params"],
           "splits_only_in_a": [] if splits else [s for s in a.splits if s not in b.splits],
           "splits_only_in_b": [] if splits else [s for s in b.splits if s not in a.splits], "splits": {}}
    with (contextlib.nullcontext(client) if client is not None
          else dask_client(workers, scheduler, quiet=not progress, timeout=connect_timeout or CONNECT_TIMEOUT)) as cl:
        for s in names:
            out["splits"][s] = compare_split(a, b, s, cl, listed, progress)
    out["equal"] = (all(v["equal"] for v in out["splits"].values()) and not out["splits_only_in_a"]
                    and not out["splits_only_in_b"])
    return out


def compare_text(c: dict) -> str:
    """The comparison as lines of text (what `odg compare` prints)."""
    lines = [f"A {c['a']}", f"B {c['b']}  ({c['kind']}; parameters {'equal' if c['params_equal'] else 'DIFFER'})"]
    for s in c["splits_only_in_a"]:
        lines.append(f"[{s}] only in A")
    for s in c["splits_only_in_b"]:
        lines.append(f"[{s}] only in B")
    for s, v in c["splits"].items():
        lines.append(f"[{s}] {v['matched']} kept samples in both: {v['identical']} identical, {v['different']} different "
                     f"({v['events_only_in_a']} events only in A, {v['events_only_in_b']} only in B); "
                     f"{v['only_in_a']} only in A, {v['only_in_b']} only in B")
        for d in v["differences"]:
            lines.append(f"  different: {d['key']} (A {d['name_a']}, B {d['name_b']}): {', '.join(d['differs'])}; "
                         f"{d['events_only_in_a']} events only in A, {d['events_only_in_b']} only in B")
        for d in v["only_in_a_listed"]:
            lines.append(f"  only in A: {d['key']} ({d['name']}; in B: {d['status_in_b']})")
        for d in v["only_in_b_listed"]:
            lines.append(f"  only in B: {d['key']} ({d['name']}; in A: {d['status_in_a']})")
        for side in ("a", "b"):
            for k in v["duplicate_keys"][side]:
                lines.append(f"  duplicate in {side.upper()}: {k} (two kept samples map to this published file)")
    lines.append("stores EQUAL sample by sample" if c["equal"] else "stores DIFFER")
    return "\n".join(lines)
