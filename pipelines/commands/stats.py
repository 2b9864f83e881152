"""`odg stats STORE --out DIR [--workers N | --scheduler ADDR] [--split S] [--compare OTHER]`"""
from ..cli import UserError
from ._dask_options import add_cluster_options


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
    from ..store import StoreError
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be >= 1")
    try:
        path = write_report(args.store, args.out, workers=args.workers, scheduler=args.scheduler,
                            progress=not args.quiet, splits=args.split, compare=args.compare)
    except StoreError as e:
        raise UserError(str(e)) from None
    except KeyError as e:
        raise UserError(e.args[0] if e.args else str(e)) from None
    print(path)
    return 0
