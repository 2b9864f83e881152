"""`odg demo [--out DIR]`"""
from ._options import add_quiet, deprecated, positive


def register(cli):
    p = cli.command("demo", "Run the main job on the bundled sample photographs: convert, reconstruct, build, report")
    p.add_argument("--out", default="odg-demo", metavar="DIR", help="output folder")
    p.add_argument("--dask-workers", type=positive("--dask-workers"), default=2, metavar="N",
                   help="Dask worker processes")
    deprecated(p, "--workers", "--dask-workers", "dask_workers", type=positive("--workers"), metavar="N")
    add_quiet(p, "no progress bars")
    p.set_defaults(func=run)


def run(args):
    from ..demo import run_demo
    run_demo(args.out, workers=args.dask_workers, progress=not args.quiet)
    return 0
