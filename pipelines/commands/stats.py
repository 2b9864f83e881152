"""`odg stats STORE --out DIR [--dask-workers N | --scheduler ADDR] [--split S] [--compare OTHER]`"""
import os

from ._dask_options import add_cluster_options, store_call
from ._options import add_allow_incomplete, add_output_options, emit


def register(cli):
    p = cli.command("stats", "Statistics of a store: report.html with figures, and stats.json")
    p.add_argument("store", metavar="STORE", help="store path or fsspec URL")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for report.html, stats.json and the PNGs")
    p.add_argument("--split", action="append", default=None, metavar="S",
                   help="only this split (repeat for several; default: every split)")
    p.add_argument("--compare", default=None, metavar="OTHER",
                   help="also compare with the store OTHER sample by sample (a section of the report; see odg compare)")
    add_cluster_options(p)
    add_allow_incomplete(p)
    add_output_options(p)
    p.set_defaults(func=run)


def run(args):
    from ..stats import write_report
    path = store_call(write_report, args.store, args.out, workers=args.dask_workers, scheduler=args.scheduler,
                      progress=not args.quiet, splits=args.split, compare=args.compare,
                      connect_timeout=args.connect_timeout, allow_incomplete=args.allow_incomplete)
    emit(args, path, {"store": args.store, "report": path, "stats": os.path.join(os.path.dirname(path), "stats.json")})
    return 0
