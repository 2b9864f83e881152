"""`odg compare STORE_A STORE_B [--split S] [--json] [--out DIR]`"""
from ._dask_options import add_cluster_options, store_call
from ._options import add_quiet


def register(cli):
    p = cli.command("compare", "Compare two stores sample by sample (e.g. a rebuild against the published download); "
                               "exit status 1 when any sample differs or is in one store only")
    p.add_argument("store_a", metavar="STORE_A")
    p.add_argument("store_b", metavar="STORE_B")
    p.add_argument("--split", action="append", default=None, metavar="S",
                   help="only this split (repeat for several; default: every split of either store)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument("--out", default=None, metavar="DIR", help="also write DIR/compare.json and DIR/compare.html")
    add_cluster_options(p)
    add_quiet(p)
    p.set_defaults(func=run)


def run(args):
    import json
    import os

    from ..compare import compare_stores, compare_text
    c = store_call(compare_stores, args.store_a, args.store_b, args.split, workers=args.dask_workers,
                   scheduler=args.scheduler, progress=not args.quiet, connect_timeout=args.connect_timeout)
    if args.out:
        from ..stats.sections import compare_page
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "compare.json"), "w") as f:
            json.dump(c, f, indent=1)
        with open(os.path.join(args.out, "compare.html"), "w", encoding="utf-8") as f:
            f.write(compare_page(c))
    print(json.dumps(c, indent=1) if args.json else compare_text(c))
    return 0 if c["equal"] else 1
