"""`odg export es-ucf101 STORE DIR [--split NAME]`"""
import os

from ..cli import UserError
from ._options import add_allow_incomplete, add_output_options, emit


def register(cli):
    p = cli.group("export", "Write a store in a published layout").add_parser(
        "es-ucf101", help="published ES-UCF101 layout (DIR/<clip>.npz with arr_0 uint8 [2, 30, H, W], labels.txt)",
        description="Write every kept clip of an es-ucf101 store split as DIR/<clip>.npz (arr_0, uint8 "
                    "[2, S, H, W], as the published generator saved it), plus DIR/labels.txt ('<clip> <label>', "
                    "0-based) and DIR/classInd.txt.")
    p.add_argument("store", metavar="STORE")
    p.add_argument("out", metavar="DIR")
    p.add_argument("--split", default=None, metavar="NAME",
                   help="the store split to write, e.g. train1 (needed when the store has several)")
    add_allow_incomplete(p)
    add_output_options(p)
    p.set_defaults(func=run)


def run(args):
    from ..store import StoreError
    from ..ucf101_export import export_es_ucf101
    try:
        split, n = export_es_ucf101(args.store, args.out, args.split, progress=not args.quiet,
                                     allow_incomplete=args.allow_incomplete)
    except (StoreError, ValueError, KeyError) as e:
        raise UserError(str(e).strip("'\"")) from None
    labels = os.path.join(args.out, "labels.txt")
    emit(args, f"{split}: {n} files, {labels}",
         {"store": args.store, "out": args.out, "splits": {split: {"files": n, "labels": labels}}})
    return 0
