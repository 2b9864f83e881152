"""`odg import es-ucf101 DIR STORE [--classes classInd.txt] [--split NAME]`"""
from ..cli import UserError
from .build import add_cluster_options


def register(cli):
    p = cli.group("import", "Read a published dataset download into a store").add_parser(
        "es-ucf101", help="published ES-UCF101 clip files (DIR/<clip>.npz, arr_0 uint8 [2, 30, H, W])",
        description="Read published ES-UCF101 clip files (every *.npz under DIR) into an es-ucf101 store split, "
                    "losslessly; labels from the class in each clip name (v_<Class>_gNN_cNN) and classInd.txt. "
                    "Malformed files are recorded as rejects with their reasons.")
    p.add_argument("root", metavar="DIR")
    p.add_argument("store", metavar="STORE")
    p.add_argument("--classes", default=None, metavar="FILE",
                   help="UCF101's classInd.txt (default: DIR/classInd.txt, which odg export es-ucf101 writes)")
    p.add_argument("--split", default="all", metavar="NAME", help="store split to create (default: all)")
    add_cluster_options(p)
    p.add_argument("--shard-size", type=int, default=64, metavar="K", help="clips per shard (default 64)")
    p.add_argument("--resume", action="store_true", help="finish an interrupted import, skipping completed shards")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args):
    from ..build import report_text, run_build
    from ..store import StoreError
    from ..ucf101_import import import_spec
    if args.shard_size < 1:
        raise UserError("--shard-size must be >= 1")
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be >= 1")
    if not args.split or "/" in args.split or args.split.startswith((".", "_")):
        raise UserError(f"--split must be a plain name such as train1, got {args.split!r}")
    try:
        spec = import_spec(args.store, args.root, args.split, args.classes, args.shard_size, args.resume)
    except (ValueError, OSError) as e:
        raise UserError(str(e)) from None
    try:
        report = run_build(spec, workers=args.workers, scheduler=args.scheduler, resume=args.resume,
                           progress=not args.quiet)
    except StoreError as e:
        raise UserError(str(e)) from None
    print(f"[{spec.split}] " + report_text(report))
    return 1 if report.failed else 0
