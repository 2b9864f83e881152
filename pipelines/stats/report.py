"""`write_report`: compute a store's statistics on Dask, then write stats.json, the figures (PNG, with
an SVG beside each) and report.html into one folder."""
from __future__ import annotations

import contextlib
import json
import os
import re


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def json_default(o):
    import numpy as np
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_figures(ss, out_dir: str) -> tuple[dict, dict, dict]:
    """Every figure of the report (PNG + SVG); returns (per-split figure names, overview figure names,
    gallery notes). Names are the PNGs'; `plots.svg_path` gives each SVG."""
    from . import gallery, plots
    store, stats = ss.store, ss.stats
    lay = store.layout
    unit = lay.unit
    params = store.meta["params"]
    figs, notes = {}, {}
    for name, sj in ss.splits.items():
        s = stats["splits"][name]
        f, tag = {}, _safe(name)

        def out(what):
            fn = f"{what}_{tag}.png"
            return fn, os.path.join(out_dir, fn)
        nk = s["samples"]["kept"]
        if s["samples"]["kept"] or s["samples"]["discarded"]:
            fn, p = out("events_per_sample")
            plots.events_histogram(p, name, s, lay.min_events, stats["steps"])
            f["hist"] = fn
        if nk:
            fn, p = out("events_per_step")
            plots.events_per_step(p, name, sj.arrays["per_step_pol"], s["events_per_step_spread"], unit,
                                  params.get("trajectory"))
            f["steps"] = fn
            fn, p = out("classes")
            plots.class_means(p, name, s["per_class"])
            f["classes"] = fn
            fn, p = out("density")
            plots.density(p, name, sj.arrays["density"], s["density"]["origin"], s["density"]["frame"])
            f["density"] = fn
            fn, p = out("class_balance")
            plots.class_balance(p, name, s["per_class"])
            f["class_balance"] = fn
            fn, p = out("events_vs_shape")
            plots.events_vs_shape(p, name, sj.arrays["kept_totals"], sj.arrays["kept_shapes"], s["events_vs_shape"],
                                  clip=lay.clip)
            f["events_vs_shape"] = fn
            if s["shapes"]["distinct"] > 1:
                fn, p = out("shapes")
                plots.shapes(p, name, sj.arrays["shapes"], lay.long_side, clip=lay.clip)
                f["shapes"] = fn
        if s["discards_by_reason"] or s["rejects_by_reason"]:
            fn, p = out("reasons")
            plots.reasons(p, name, s["discards_by_reason"], s["rejects_by_reason"])
            f["reasons"] = fn
        ei = gallery.edge_integrals(store, sj)
        notes[name] = {"ei": ei["note"]}
        if ei["items"]:
            fn, p = out("edge_integral")
            plots.edge_integral_grid(p, ei["items"])
            f["ei"] = fn
        strips = gallery.frame_strips(store, sj)
        if strips["items"]:
            fn, p = out("frames")
            plots.frame_strips(p, strips["items"], unit)
            f["strips"] = fn
        figs[name] = f
    overview = {}
    rows = [(n, s["bytes_per_sample"]["store"], s["bytes_per_sample"]["published_npz"])
            for n, s in stats["splits"].items() if s["samples"]["kept"]]
    if rows:
        plots.sizes(os.path.join(out_dir, "sizes.png"), rows)
        overview["sizes"] = "sizes.png"
        plots.distributions(os.path.join(out_dir, "distributions.png"),
                            {n: sj.arrays for n, sj in ss.splits.items() if stats["splits"][n]["samples"]["kept"]}, unit)
        overview["distributions"] = "distributions.png"
    return figs, overview, notes


def write_report(store_url: str, out_dir: str, workers: int | None = None, scheduler: str | None = None,
                 client=None, progress: bool = True, splits=None, compare: str | None = None,
                 connect_timeout: float | None = None, allow_incomplete: bool = False) -> str:
    """Statistics of the store at `store_url` into `out_dir`: report.html (returned), stats.json, figures.

    Runs one Dask task per shard on `client`, or else on a new local cluster of `workers`
    processes (default one per core), or on the cluster at `scheduler` (its handshake bounded by
    `connect_timeout` seconds, default `build.CONNECT_TIMEOUT`). `splits`: the splits to
    cover (default all). `compare`: another store, compared sample by sample over those splits
    (`odg.pipelines.compare`; stats.json `comparison`, a section of the report). Raises
    `StoreError` for a missing store (or one that cannot be compared, or an incomplete split without
    `allow_incomplete`), `KeyError` for an unknown split.
    """
    from ..build import CONNECT_TIMEOUT, dask_client
    from ..store import open_store
    from . import html
    from .compute import compute_stats
    store = open_store(store_url)              # fail before starting a cluster
    for s in splits or store.splits:
        store.split(s, allow_incomplete)
    store.layout                               # ValueError for an unknown store kind
    if compare is not None:
        from ..compare import check_comparable
        check_comparable(store_url, compare, splits)
    os.makedirs(out_dir, exist_ok=True)
    with (contextlib.nullcontext(client) if client is not None
          else dask_client(workers, scheduler, quiet=not progress, timeout=connect_timeout or CONNECT_TIMEOUT)) as cl:
        ss = compute_stats(store_url, splits, cl, progress, allow_incomplete=allow_incomplete)
        if compare is not None:
            from ..compare import compare_stores
            ss.stats["comparison"] = compare_stores(store_url, compare, splits, client=cl, progress=progress)
    with open(os.path.join(out_dir, "stats.json"), "w") as f:
        json.dump(ss.stats, f, indent=1, default=json_default, ensure_ascii=False)
        f.write("\n")
    figs, overview, notes = write_figures(ss, out_dir)
    discards = {n: sj.arrays.get("discards", []) for n, sj in ss.splits.items()}
    path = os.path.join(out_dir, "report.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(html.page(ss.stats, figs, discards, notes, overview))
    return path
