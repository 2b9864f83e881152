"""`odg build ucf101 ROOT STORE [--fold 1|2|3] [--subset train|test|all] [--frames DIR] ...`

The store split is named `<subset><fold>` (`train1`, `test1`, `all1`, ...); see `odg.pipelines.ucf101_build`.
"""
from ..cli import UserError
from ._dask_options import add_build_options, execute, resolve_settings, setting
from ._options import positive


def register(cli):
    from ..ucf101 import MAX_FRAME_PIXELS, add_source_arguments
    from ..ucf101_build import DEFAULT_SHARD_SIZE
    p = cli.group("build", "Build an event store").add_parser(
        "ucf101", help="ES-UCF101 from UCF101 (.avi files or --frames jpegs_256 folders)",
        description="Convert the clips of one UCF101 split into a chunked Zarr event store (kind es-ucf101), "
                    "in parallel, resumably. The store split is named <subset><fold>, e.g. train1.")
    p.add_argument("root", metavar="ROOT", help="holds ucfTrainTestlist/ (classInd.txt, trainlist0N.txt, "
                                                "testlist0N.txt) and UCF-101/<Class>/<clip>.avi")
    p.add_argument("store", metavar="STORE", help="store path or fsspec URL (created if missing)")
    add_source_arguments(p)
    add_build_options(p, DEFAULT_SHARD_SIZE, "clips")
    setting(p, "--size", type=positive("--size"), nargs=2, default=None, metavar=("H", "W"),
                   help="resize every clip's frames to H x W (default: native size, that of the first "
                        "readable clip; clips of another size are rejected)")
    setting(p, "--mode", type=int, choices=[1, 2], default=1,
                   help="1: the published clip thresholds (default); 2: per-pixel Gaussian thresholds (needs --seed)")
    setting(p, "--seed", type=int, default=None, metavar="S", help="random seed of --mode 2")
    setting(p, "--max-pixels", type=positive("--max-pixels"), default=MAX_FRAME_PIXELS, metavar="P",
                   help="reject clips whose frames have more than P pixels, before decoding them")
    p.set_defaults(func=run)


SETTINGS = {"--shard-size": "shard_size", "--frames": "frames", "--size": "size", "--mode": "mode",
            "--seed": "seed", "--max-pixels": "max_pixels"}


def run(args):
    import dataclasses
    import os

    from odg.video import UCFParams

    from ..store import StoreError
    from ..ucf101_build import build_spec, split_name
    if args.frames is not None:
        args.frames = os.path.abspath(args.frames)
    settings = resolve_settings(args, args.store, split_name(args.fold, args.subset), SETTINGS)
    if args.size is not None and args.size[0] * args.size[1] > args.max_pixels:
        raise UserError(f"--size {args.size[0]} {args.size[1]} is above --max-pixels {args.max_pixels}")
    try:
        params = UCFParams(mode=args.mode, seed=args.seed,
                           output_size=tuple(args.size) if args.size is not None else None)
    except ValueError as e:
        raise UserError(str(e)) from None
    try:
        spec = build_spec(args.store, args.root, args.fold, args.subset, args.frames, params,
                          args.shard_size, args.resume, max_pixels=args.max_pixels)
    except (ValueError, OSError, StoreError) as e:
        raise UserError(str(e)) from None
    return execute(dataclasses.replace(spec, settings=settings), args)
