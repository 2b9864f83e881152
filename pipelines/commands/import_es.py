"""`odg import es-imagenet DIR STORE`"""
from ..cli import UserError
from ._dask_options import add_build_options, finish, resolve_settings, run_spec


def register(cli):
    p = cli.group("import", "Read a published dataset download into a store").add_parser(
        "es-imagenet", help="the published ES-ImageNet download (trainlabel.txt + train/, vallabel.txt + val/)")
    p.add_argument("root", metavar="DIR")
    p.add_argument("store", metavar="STORE")
    add_build_options(p, 256)
    p.set_defaults(func=run)


def run(args):
    import dataclasses
    import os
    from functools import partial

    from odg import ODGParams

    from ..imagenet import es_imagenet_spec
    from ..importer import convert_npz, published_items
    params = ODGParams()
    splits = [s for s in ("train", "val") if os.path.isfile(os.path.join(args.root, f"{s}label.txt"))]
    if not splits:
        raise UserError(f"{args.root} has neither trainlabel.txt nor vallabel.txt: not a published ES-ImageNet download")
    results = []
    for split in splits:
        settings = resolve_settings(args, args.store, split, {"--shard-size": "shard_size"})
        try:
            items, source = published_items(args.root, split)
        except (ValueError, OSError) as e:
            raise UserError(str(e)) from None
        spec = es_imagenet_spec(args.store, split, items, source, partial(convert_npz, params=params),
                                args.shard_size, params)
        spec = dataclasses.replace(spec, settings=settings)
        results.append((spec, run_spec(spec, args)))
    return finish(args, args.store, results)
