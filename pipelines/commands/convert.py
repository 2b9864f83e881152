"""`odg convert PATH... --out DIR`"""
import os
import sys

from ..cli import UserError


def register(cli):
    p = cli.command("convert", "Convert images to published per-sample files (ES-ImageNet pos/neg npz, or I2E)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, or directories searched recursively")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (DIR/<stem>.npz, DIR/convert.tsv)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="threads (default: all cores)")
    p.add_argument("--method", choices=("odg", "i2e"), default="odg",
                   help="odg (ES-ImageNet pos/neg files, the default) or i2e (the published I2E files: one bool "
                        "[8, 2, 224, 224] array per image)")
    p.add_argument("--split", choices=("train", "val"), default="train",
                   help="i2e: the published preprocessing of this split (train: resize to 224 x 224; val: resize "
                        "to 256, centre crop 224)")
    p.add_argument("--threshold", type=float, default=None, help="opt-in (odg): event threshold (published 0.18)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args):
    from odg import ODGParams

    from ..convert import convert_files
    from ..imagenet import default_params
    if args.method == "i2e" and args.threshold is not None:
        raise UserError("--threshold is ODG's; I2E's threshold is a share of each image's range (ratio 0.12)")
    params = default_params(args.method) if args.threshold is None else ODGParams(threshold=args.threshold)
    try:
        outcomes = convert_files(args.paths, args.out, params, workers=args.workers, progress=not args.quiet,
                                 split=args.split)
    except ValueError as e:
        raise UserError(str(e)) from None
    n = {s: sum(o.status == s for o in outcomes) for s in ("kept", "discarded", "unreadable")}
    print(f"{len(outcomes)} inputs ({args.method}): {n['kept']} kept, {n['discarded']} discarded (under the event floor), "
          f"{n['unreadable']} unreadable; see {os.path.join(args.out, 'convert.tsv')}")
    for o in outcomes:
        if o.status == "unreadable":
            print(f"  unreadable: {o.path}: {o.reason}", file=sys.stderr)
    if not outcomes:
        print("odg: error: no input files found", file=sys.stderr)
        return 1
    return 1 if n["unreadable"] == len(outcomes) else 0
