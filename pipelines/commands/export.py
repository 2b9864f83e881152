"""`odg export es-imagenet STORE DIR` (and the other published layouts)."""
import os

from ..cli import UserError
from ._options import add_allow_incomplete, add_output_options, emit


def register(cli):
    p = cli.group("export", "Write a store in a published layout").add_parser(
        "es-imagenet", help="published ES-ImageNet layout (train/classK/classK_n.npz, trainlabel.txt, val/, vallabel.txt)")
    p.add_argument("store", metavar="STORE")
    p.add_argument("out", metavar="DIR")
    p.add_argument("--split", action="append", choices=["train", "val"],
                   help="only this split (repeatable; default: every split)")
    add_allow_incomplete(p)
    add_output_options(p)
    p.set_defaults(func=run)


def run(args):
    from ..export import export_es_imagenet
    from ..store import StoreError
    try:
        written = export_es_imagenet(args.store, args.out, args.split, progress=not args.quiet,
                                     allow_incomplete=args.allow_incomplete)
    except (StoreError, ValueError, KeyError) as e:
        raise UserError(str(e).strip("'\"")) from None
    labels = {split: os.path.join(args.out, f"{split}label.txt") for split in written}
    emit(args, "\n".join(f"{split}: {n} files, {labels[split]}" for split, n in written.items()),
         {"store": args.store, "out": args.out,
          "splits": {split: {"files": n, "labels": labels[split]} for split, n in written.items()}})
    return 0
