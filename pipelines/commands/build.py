"""`odg build imagenet ROOT STORE --split train|val ...`"""
from ..cli import UserError


def add_cluster_options(p):
    """--workers N | --scheduler ADDR, shared by every command that runs on Dask."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes of the embedded local cluster (default: one per core)")
    g.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="address of an existing dask.distributed scheduler, e.g. tcp://10.0.0.5:8786")


def register(cli):
    p = cli.group("build", "Build an event store").add_parser(
        "imagenet", help="ES-ImageNet from ILSVRC2012 (extracted tree or original archives)",
        description="Convert ILSVRC2012 images into a chunked Zarr event store, in parallel, resumably.")
    p.add_argument("root", metavar="ROOT", help="holds train/ and/or val/, or ILSVRC2012_img_{train,val}.tar")
    p.add_argument("store", metavar="STORE", help="store path or fsspec URL (created if missing)")
    p.add_argument("--split", required=True, choices=["train", "val"])
    add_cluster_options(p)
    p.add_argument("--shard-size", type=int, default=256, metavar="K", help="samples per shard (default 256)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="at most N images per class (quick subsets)")
    p.add_argument("--resume", action="store_true", help="finish an interrupted build, skipping completed shards")
    p.add_argument("--max-pixels", type=int, default=None, metavar="P",
                   help="refuse images above P pixels before decoding (default 67108864)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args):
    from functools import partial

    from odg import ODGParams, word_dtype

    from ..build import BuildSpec, report_text, run_build
    from ..decode import MAX_PIXELS
    from ..imagenet import convert_item, imagenet_items, load_classes
    from ..store import StoreError
    from ..store.schema import KIND_IMAGENET
    if args.shard_size < 1:
        raise UserError("--shard-size must be >= 1")
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be >= 1")
    params = ODGParams()
    try:
        items, source = imagenet_items(args.root, args.split, args.limit)
    except (ValueError, OSError) as e:
        raise UserError(str(e)) from None
    spec = BuildSpec(url=args.store, split=args.split, kind=KIND_IMAGENET, items=items,
                     convert=partial(convert_item, params=params, max_pixels=args.max_pixels or MAX_PIXELS),
                     payload_shape=(params.grid, params.grid), payload_dtype=word_dtype(params.steps),
                     params=params.to_dict(), classes=load_classes().as_list(), source=source,
                     shard_size=args.shard_size)
    try:
        report = run_build(spec, workers=args.workers, scheduler=args.scheduler, resume=args.resume,
                           progress=not args.quiet)
    except StoreError as e:
        raise UserError(str(e)) from None
    print(report_text(report))
    return 1 if report.failed else 0


