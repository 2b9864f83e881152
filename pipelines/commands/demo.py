"""`odg demo [--out DIR]`"""


def register(cli):
    p = cli.command("demo", "Run the main job on the bundled sample photographs: convert, reconstruct, build, report")
    p.add_argument("--out", default="odg-demo", metavar="DIR", help="output folder (default ./odg-demo)")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="Dask worker processes (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args):
    from ..demo import run_demo
    run_demo(args.out, workers=args.workers, progress=not args.quiet)
    return 0
