"""Options and execution shared by every command that runs a store build on Dask
(`build imagenet`, `build ucf101`, `import es-imagenet`, `import es-ucf101`)."""
from ..cli import UserError


def add_cluster_options(p):
    """--workers N | --scheduler ADDR."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes of the embedded local cluster (default: one per core)")
    g.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="address of an existing dask.distributed scheduler, e.g. tcp://10.0.0.5:8786")


def add_build_options(p, shard_size: int, what: str = "samples"):
    """--workers/--scheduler, --shard-size, --resume, --quiet."""
    add_cluster_options(p)
    p.add_argument("--shard-size", type=int, default=shard_size, metavar="K",
                   help=f"{what} per shard (default {shard_size})")
    p.add_argument("--resume", action="store_true", help="finish an interrupted run, skipping completed shards")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def check_cluster_options(args):
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be >= 1")


def check_build_options(args):
    if args.shard_size < 1:
        raise UserError("--shard-size must be >= 1")
    check_cluster_options(args)


def store_call(fn, *a, **kw):
    """`fn(*a, **kw)`; a `StoreError` or `KeyError` (no store, an unknown split) becomes a `UserError`."""
    from ..store import StoreError
    try:
        return fn(*a, **kw)
    except StoreError as e:
        raise UserError(str(e)) from None
    except KeyError as e:
        raise UserError(e.args[0] if e.args else str(e)) from None


def execute(spec, args, label: str = "") -> int:
    """Run a BuildSpec with the command's options; print the report; exit status."""
    from ..build import report_text, run_build
    from ..store import StoreError
    try:
        report = run_build(spec, workers=args.workers, scheduler=args.scheduler, resume=args.resume,
                           progress=not args.quiet)
    except StoreError as e:
        raise UserError(str(e)) from None
    print(label + report_text(report))
    return 1 if report.failed else 0
