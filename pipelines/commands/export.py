"""`odg export es-imagenet STORE DIR` (and the other published layouts)."""
from ..cli import UserError


def register(cli):
    p = cli.group("export", "Write a store in a published layout").add_parser(
        "es-imagenet", help="published ES-ImageNet layout (train/classK/classK_n.npz, trainlabel.txt, val/, vallabel.txt)")
    p.add_argument("store", metavar="STORE")
    p.add_argument("out", metavar="DIR")
    p.add_argument("--split", action="append", choices=["train", "val"], help="only this split (repeatable)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args):
    from ..export import export_es_imagenet
    from ..store import StoreError
    try:
        written = export_es_imagenet(args.store, args.out, args.split, progress=not args.quiet)
    except (StoreError, ValueError, KeyError) as e:
        raise UserError(str(e).strip("'\"")) from None
    for split, n in written.items():
        print(f"{split}: {n} files, {args.out}/{split}label.txt")
    return 0
