"""`odg build imagenet ROOT STORE --split train|val [--method odg|i2e] ...`"""
from ..cli import UserError
from ._dask_options import add_build_options, execute, resolve_settings, setting
from ._options import positive


def register(cli):
    from ..decode import MAX_PIXELS
    p = cli.group("build", "Build an event store").add_parser(
        "imagenet", help="ES-ImageNet (or I2E) from ILSVRC2012 (extracted tree or original archives)",
        description="Convert ILSVRC2012 images into a chunked Zarr event store, in parallel, resumably.")
    p.add_argument("root", metavar="ROOT", help="holds train/ and/or val/, or ILSVRC2012_img_{train,val}.tar")
    p.add_argument("store", metavar="STORE", help="store path or fsspec URL (created if missing)")
    p.add_argument("--split", required=True, choices=["train", "val"], help="the ILSVRC2012 split, and store split")
    add_build_options(p, 256, "images")
    setting(p, "--limit", type=positive("--limit"), default=None, metavar="N",
                   help="at most N images per class (quick subsets; default: all)")
    setting(p, "--max-pixels", type=positive("--max-pixels"), default=MAX_PIXELS, metavar="P",
                   help="refuse images above P pixels, from their header, before decoding")
    setting(p, "--method", choices=("odg", "i2e"), default="odg",
                   help="conversion: odg (ES-ImageNet) or i2e (I2E, published preprocessing for the split: "
                        "an I2E store)")
    p.set_defaults(func=run)


SETTINGS = {"--shard-size": "shard_size", "--limit": "limit", "--max-pixels": "max_pixels", "--method": "method"}


def run(args):
    import dataclasses

    from ..imagenet import build_spec
    settings = resolve_settings(args, args.store, args.split, SETTINGS)
    try:
        spec = build_spec(args.store, args.root, args.split, args.limit, args.shard_size, max_pixels=args.max_pixels,
                          method=args.method)
    except (ValueError, OSError) as e:
        raise UserError(str(e)) from None
    return execute(dataclasses.replace(spec, settings=settings), args)
