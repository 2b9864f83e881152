"""`odg stats STORE --out DIR [--workers N | --scheduler ADDR] [--split S] [--compare OTHER]`"""
from ._dask_options import add_cluster_options, check_cluster_options, store_call


def register(cli):
    p = cli.command("stats", "Statistics of a store: report.html with figures, and stats.json")
    p.add_argument("store", metavar="STORE", help="store path or fsspec URL")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for report.html, stats.json and the PNGs")
    p.add_argument("--split", action="append", default=None, metavar="S",
                   help="only this split (repeat for several; default: every split)")
    p.add_argument("--compare", default=None, metavar="OTHER",
                   help="also compare with the store OTHER sample by sample (a section of the report; see odg compare)")
    add_cluster_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args):
    from ..stats import write_report
    check_cluster_options(args)
    print(store_call(write_report, args.store, args.out, workers=args.workers, scheduler=args.scheduler,
                     progress=not args.quiet, splits=args.split, compare=args.compare))
    return 0
