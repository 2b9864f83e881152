"""`odg build imagenet ROOT STORE --split train|val [--method odg|i2e] ...`"""
from ..cli import UserError
from ._dask_options import add_build_options, check_build_options, execute


def register(cli):
    p = cli.group("build", "Build an event store").add_parser(
        "imagenet", help="ES-ImageNet (or I2E) from ILSVRC2012 (extracted tree or original archives)",
        description="Convert ILSVRC2012 images into a chunked Zarr event store, in parallel, resumably.")
    p.add_argument("root", metavar="ROOT", help="holds train/ and/or val/, or ILSVRC2012_img_{train,val}.tar")
    p.add_argument("store", metavar="STORE", help="store path or fsspec URL (created if missing)")
    p.add_argument("--split", required=True, choices=["train", "val"])
    add_build_options(p, 256, "images")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="at most N images per class (quick subsets)")
    p.add_argument("--max-pixels", type=int, default=None, metavar="P",
                   help="refuse images above P pixels before decoding (default 67108864)")
    p.add_argument("--method", choices=("odg", "i2e"), default="odg",
                   help="conversion: odg (ES-ImageNet, the default) or i2e (I2E, published preprocessing "
                        "for the split: an I2E store)")
    p.set_defaults(func=run)


def run(args):
    from ..imagenet import build_spec
    check_build_options(args)
    try:
        spec = build_spec(args.store, args.root, args.split, args.limit, args.shard_size, max_pixels=args.max_pixels,
                          method=args.method)
    except (ValueError, OSError) as e:
        raise UserError(str(e)) from None
    return execute(spec, args)
