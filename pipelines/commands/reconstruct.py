"""`odg reconstruct NPZ_OR_IMAGE --out PNG`"""
import os

from ..cli import UserError


def register(cli):
    p = cli.command("reconstruct", "Write the Edge-Integral reconstruction of a sample or an image as PNG")
    p.add_argument("source", metavar="NPZ_OR_IMAGE", help="a published per-sample .npz (pos/neg) or an image")
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--shape", type=int, nargs=2, metavar=("A", "B"),
                   help="resized (a, b) of an .npz sample (from its label file) for the loader's centring; "
                        "without it the uncentred canvas is used")
    p.set_defaults(func=run)


def run(args):
    import cv2

    from odg import ODGParams, edge_integral, edge_integral_image, events_to_frames, odg_events, published_to_events

    from ..decode import read_image
    from ..errors import Reject
    from ..importer import published_npz_check
    from ..safe_npz import load_npz
    params = ODGParams()
    if args.source.lower().endswith(".npz"):
        try:
            z = load_npz(args.source, ("pos", "neg"), *published_npz_check(params))
            events = published_to_events(z["pos"], z["neg"])
        except (OSError, ValueError) as e:
            raise UserError(f"{args.source}: not a published sample file ({e})") from None
        centre = args.shape is not None
        shape = tuple(args.shape) if centre else (params.long_side, params.long_side)
    else:
        try:
            r = odg_events(read_image(args.source), params)
        except (Reject, ValueError) as e:
            raise UserError(f"{args.source}: {e}") from None
        events, shape, centre = r.events, r.shape, True
    relief = edge_integral(events_to_frames(events, shape, params, centre=centre), params)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if not cv2.imwrite(args.out, edge_integral_image(relief)):
        raise UserError(f"cannot write {args.out}")
    print(f"{args.out}: Edge-Integral of {len(events)} events, relief {relief.min()}..{relief.max()}")
    return 0
