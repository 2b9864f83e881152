"""`odg demo`: the main job end to end on the bundled sample (seven real photographs in the
ILSVRC2012 training layout): convert them, reconstruct them, build a store, describe it, report it."""
from __future__ import annotations

import os
import shutil
from importlib import resources

import cv2

from odg import ODGParams, edge_integral_events, edge_integral_image, odg_events

from .convert import convert_files
from .decode import read_image


def sample_root() -> str:
    """Folder of the bundled sample (holds train/<wnid>/*.JPEG)."""
    return str(resources.files("odg.pipelines").joinpath("data", "sample"))


def run_demo(out: str, workers: int = 2, progress: bool = True) -> dict:
    from .build import report_text, run_build
    from .imagenet import build_spec
    from .info import info_text, store_info
    params = ODGParams()
    root = sample_root()
    os.makedirs(out, exist_ok=True)
    # 1. convert to the published per-sample format, and reconstruct
    conv_dir = os.path.join(out, "converted")
    outcomes = convert_files([os.path.join(root, "train")], conv_dir, params, workers=workers, progress=False)
    rec_dir = os.path.join(out, "reconstructions")
    os.makedirs(rec_dir, exist_ok=True)
    print(f"1. converted {len(outcomes)} images to published npz files in {conv_dir}:")
    for o in outcomes:
        line = f"   {os.path.relpath(o.path, root):34s} {o.status:10s} {sum(o.count):6d} events  (a, b) = {o.shape}"
        if o.status in ("kept", "discarded"):
            r = odg_events(read_image(o.path), params)
            png = os.path.join(rec_dir, os.path.splitext(os.path.basename(o.path))[0] + ".png")
            cv2.imwrite(png, edge_integral_image(edge_integral_events(r.events, r.shape, params)))
        print(line)
    print(f"   Edge-Integral reconstructions in {rec_dir}")
    # 2. build a store with Dask
    store = os.path.join(out, "sample.zarr")
    if os.path.isdir(store):
        shutil.rmtree(store)
    spec = build_spec(store, root, "train", shard_size=4, params=params)
    print(f"2. building the store {store} on a local Dask cluster of {workers} workers")
    report = run_build(spec, workers=workers, progress=progress)
    print("   " + report_text(report))
    # 3. what it holds
    print("3. odg info " + store)
    print("   " + info_text(store_info(store)).replace("\n", "\n   "))
    result = {"store": store, "converted": conv_dir, "reconstructions": rec_dir}
    # 4. the statistics report
    try:
        from .stats import write_report
    except ImportError:
        return result
    html = write_report(store, os.path.join(out, "report"), workers=workers, progress=progress)
    print(f"4. statistics report: {html}")
    result["report"] = html
    return result
