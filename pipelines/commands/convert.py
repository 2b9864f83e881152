"""`odg convert PATH... --out DIR`"""
import os
import sys

from ..cli import UserError
from ._options import add_quiet, deprecated, positive


def register(cli):
    from ..decode import MAX_PIXELS
    p = cli.command("convert", "Convert images to published ES-ImageNet per-sample files (pos/neg npz)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, or directories searched recursively")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (DIR/<stem>.npz, DIR/convert.tsv)")
    p.add_argument("--threads", type=positive("--threads"), default=os.cpu_count() or 1, metavar="N",
                   help="conversion threads (default: all cores)")
    deprecated(p, "--workers", "--threads", "threads", type=positive("--workers"), metavar="N")
    p.add_argument("--threshold", type=float, default=None, metavar="X",
                   help="opt-in: event threshold, a fraction of the 8-bit range in (0, 1] (default: the published 0.18)")
    p.add_argument("--max-pixels", type=positive("--max-pixels"), default=MAX_PIXELS, metavar="P",
                   help="refuse images above P pixels, from their header, before decoding")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args):
    from odg import ODGParams

    from ..convert import convert_files
    try:
        params = ODGParams() if args.threshold is None else ODGParams(threshold=args.threshold)
    except ValueError as e:
        raise UserError(f"--threshold: {e}") from None
    try:
        outcomes = convert_files(args.paths, args.out, params, workers=args.threads, progress=not args.quiet,
                                 max_pixels=args.max_pixels)
    except ValueError as e:
        raise UserError(str(e)) from None
    n = {s: sum(o.status == s for o in outcomes) for s in ("kept", "discarded", "unreadable", "unlistable")}
    print(f"{len(outcomes) - n['unlistable']} inputs: {n['kept']} kept, {n['discarded']} discarded (under the "
          f"event floor), {n['unreadable']} unreadable; see {os.path.join(args.out, 'convert.tsv')}")
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
