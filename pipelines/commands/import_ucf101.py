"""`odg import es-ucf101 DIR STORE [--classes classInd.txt] [--split NAME]`"""
from ..cli import UserError
from ._dask_options import add_build_options, execute, resolve_settings


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
    p.add_argument("--split", default="all", metavar="NAME", help="store split to create")
    add_build_options(p, 64, "clips")
    p.set_defaults(func=run)


def run(args):
    import dataclasses
    import os

    from ..ucf101_import import import_spec
    if not args.split or "/" in args.split or args.split.startswith((".", "_")):
        raise UserError(f"--split must be a plain name such as train1, got {args.split!r}")
    if args.classes is not None:
        args.classes = os.path.abspath(args.classes)
    settings = resolve_settings(args, args.store, args.split, {"--shard-size": "shard_size", "--classes": "classes"})
    try:
        spec = import_spec(args.store, args.root, args.split, args.classes, args.shard_size, args.resume)
    except (ValueError, OSError) as e:
        raise UserError(str(e)) from None
    return execute(dataclasses.replace(spec, settings=settings), args)
