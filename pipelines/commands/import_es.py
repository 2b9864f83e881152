"""`odg import es-imagenet DIR STORE`"""
from ..cli import UserError
from ._dask_options import add_build_options, check_build_options, execute


def register(cli):
    p = cli.group("import", "Read a published dataset download into a store").add_parser(
        "es-imagenet", help="the published ES-ImageNet download (trainlabel.txt + train/, vallabel.txt + val/)")
    p.add_argument("root", metavar="DIR")
    p.add_argument("store", metavar="STORE")
    add_build_options(p, 256)
    p.set_defaults(func=run)


def run(args):
    import os
    from functools import partial

    from odg import ODGParams

    from ..imagenet import es_imagenet_spec
    from ..importer import convert_npz, published_items
    check_build_options(args)
    params = ODGParams()
    splits = [s for s in ("train", "val") if os.path.isfile(os.path.join(args.root, f"{s}label.txt"))]
    if not splits:
        raise UserError(f"{args.root} has neither trainlabel.txt nor vallabel.txt: not a published ES-ImageNet download")
    status = 0
    for split in splits:
        items, source = published_items(args.root, split)
        spec = es_imagenet_spec(args.store, split, items, source, partial(convert_npz, params=params),
                                args.shard_size, params)
        status = max(status, execute(spec, args, label=f"[{split}] "))
    return status
