"""`odg import es-imagenet DIR STORE`"""
from ..cli import UserError
from .build import add_cluster_options


def register(cli):
    p = cli.group("import", "Read a published dataset download into a store").add_parser(
        "es-imagenet", help="the published ES-ImageNet download (trainlabel.txt + train/, vallabel.txt + val/)")
    p.add_argument("root", metavar="DIR")
    p.add_argument("store", metavar="STORE")
    add_cluster_options(p)
    p.add_argument("--shard-size", type=int, default=256, metavar="K")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args):
    import os
    from functools import partial

    from odg import ODGParams, word_dtype

    from ..build import BuildSpec, report_text, run_build
    from ..imagenet import load_classes
    from ..importer import convert_npz, published_items
    from ..store import StoreError
    from ..store.schema import KIND_IMAGENET
    params = ODGParams()
    splits = [s for s in ("train", "val") if os.path.isfile(os.path.join(args.root, f"{s}label.txt"))]
    if not splits:
        raise UserError(f"{args.root} has neither trainlabel.txt nor vallabel.txt: not a published ES-ImageNet download")
    failed = False
    for split in splits:
        items, source = published_items(args.root, split)
        spec = BuildSpec(url=args.store, split=split, kind=KIND_IMAGENET, items=items,
                         convert=partial(convert_npz, params=params), payload_shape=(params.grid, params.grid),
                         payload_dtype=word_dtype(params.steps), params=params.to_dict(),
                         classes=load_classes().as_list(), source=source, shard_size=args.shard_size)
        try:
            report = run_build(spec, workers=args.workers, scheduler=args.scheduler, resume=args.resume,
                               progress=not args.quiet)
        except StoreError as e:
            raise UserError(str(e)) from None
        print(f"[{split}] " + report_text(report))
        failed |= bool(report.failed)
    return 1 if failed else 0
