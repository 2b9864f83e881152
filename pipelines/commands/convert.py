"""`odg convert PATH... --out DIR`"""
import os
import sys

from ..cli import UserError
from ._options import add_quiet, deprecated, positive


def register(cli):
    from ..decode import MAX_PIXELS
    p = cli.command("convert", "Convert images to published per-sample files (ES-ImageNet pos/neg npz, or I2E)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, or directories searched recursively")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (DIR/<stem>.npz, DIR/convert.tsv)")
    p.add_argument("--threads", type=positive("--threads"), default=os.cpu_count() or 1, metavar="N",
                   help="conversion threads (default: all cores)")
    deprecated(p, "--workers", "--threads", "threads", type=positive("--workers"), metavar="N")
    p.add_argument("--method", choices=("odg", "i2e"), default="odg",
                   help="odg (ES-ImageNet pos/neg files) or i2e (the published I2E files: one bool "
                        "[8, 2, 224, 224] array per image)")
    p.add_argument("--split", choices=("train", "val"), default="train",
                   help="i2e: the published preprocessing of this split (train: resize to 224 x 224; val: resize "
                        "to 256, centre crop 224)")
    p.add_argument("--threshold", type=float, default=None, metavar="X",
                   help="opt-in (odg): event threshold, a fraction of the 8-bit range in (0, 1] "
                        "(default: the published 0.18)")
    p.add_argument("--max-pixels", type=positive("--max-pixels"), default=MAX_PIXELS, metavar="P",
                   help="refuse images above P pixels, from their header, before decoding")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args):
    from odg import ODGParams

    from ..convert import convert_files
    from ..imagenet import default_params
    if args.method == "i2e" and args.threshold is not None:
        raise UserError("--threshold is ODG's; I2E's threshold is a share of each image's range (ratio 0.12)")
    try:
        params = default_params(args.method) if args.threshold is None else ODGParams(threshold=args.threshold)
    except ValueError as e:
        raise UserError(f"--threshold: {e}") from None
    try:
        outcomes = convert_files(args.paths, args.out, params, workers=args.threads, progress=not args.quiet,
                                 split=args.split, max_pixels=args.max_pixels)
    except ValueError as e:
        raise UserError(str(e)) from None
    n = {s: sum(o.status == s for o in outcomes) for s in ("kept", "discarded", "unreadable", "unlistable")}
    print(f"{len(outcomes) - n['unlistable']} inputs ({args.method}): {n['kept']} kept, {n['discarded']} discarded "
          f"(under the event floor), {n['unreadable']} unreadable; see {os.path.join(args.out, 'convert.tsv')}")
    for o in outcomes:
        if o.status in ("unreadable", "unlistable"):
            print(f"  {o.status}: {o.path}: {o.reason}", file=sys.stderr)
    if n["unlistable"]:
        print(f"odg: error: {n['unlistable']} folder(s) could not be listed; their rows in convert.tsv say why",
              file=sys.stderr)
        return 1
    if n["kept"] + n["discarded"] == 0:
        print("odg: error: " + ("no input files found" if not outcomes else "no input could be read"), file=sys.stderr)
        return 1
    return 0
