"""Options and execution shared by every command that runs on Dask (`build imagenet`, `build
ucf101`, `import es-imagenet`, `import es-ucf101`; `stats` takes the cluster options)."""
import argparse
import dataclasses

from ..cli import UserError
from ._options import add_output_options, deprecated, emit, positive


def _address(text: str) -> str:
    from ..build import scheduler_address
    try:
        return scheduler_address(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_cluster_options(p):
    """--dask-workers N | --scheduler ADDR, --connect-timeout S."""
    from ..build import CONNECT_TIMEOUT
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dask-workers", type=positive("--dask-workers"), default=None, metavar="N",
                   help="worker processes of the embedded local Dask cluster (default: one per core)")
    deprecated(g, "--workers", "--dask-workers", "dask_workers", type=positive("--workers"), metavar="N")
    g.add_argument("--scheduler", type=_address, default=None, metavar="ADDR",
                   help="address of an existing dask.distributed scheduler, e.g. tcp://10.0.0.5:8786 "
                        "(default: start a local cluster)")
    p.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT, metavar="S",
                   help="seconds the whole handshake with --scheduler may take")


class _Given(argparse._StoreAction):
    """Stores like `store`, and notes that the option was given (see `resolve_settings`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        given = set(getattr(namespace, "_given", ()))
        namespace._given = given | {self.dest}


_TRACKED: set = set()      # dests of the options added with `setting`


def setting(p, *flags, **kw):
    """An option that changes the build's output: recorded in the store, reused by --resume."""
    action = p.add_argument(*flags, action=_Given, **kw)
    _TRACKED.add(action.dest)
    return action


def add_build_options(p, shard_size: int, what: str = "samples"):
    """--dask-workers/--scheduler, --shard-size, --resume, -q/--quiet, --json."""
    add_cluster_options(p)
    setting(p, "--shard-size", type=positive("--shard-size"), default=shard_size, metavar="K",
            help=f"{what} per shard")
    p.add_argument("--resume", action="store_true",
                   help="finish an interrupted run, skipping completed shards; the settings recorded by "
                        "that run (--shard-size, --max-pixels, ...) are reused unless given")
    add_output_options(p)


def _shown(v) -> str:
    if v is None:
        return "(not given)"
    return " ".join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v)


def resolve_settings(args, url: str, split: str, options: dict) -> dict:
    """The build's settings `{option: value}` of `options` (`{"--max-pixels": "max_pixels", ...}`).

    With --resume and a split whose build recorded its settings, an option not given takes the
    recorded value (set on `args`), and a given one that differs is refused, naming the option
    and the recorded value. An option counts as given when the command line names it (options
    added with `setting`) or, for the others, when it is not None."""
    from ..build import json_value
    from ..store.writer import SplitWriter
    given = getattr(args, "_given", set())
    recorded = SplitWriter(url, split).settings() if args.resume else None
    for flag, dest in options.items():
        if recorded is None or flag not in recorded:
            continue
        now, was = getattr(args, dest), recorded[flag]
        if dest in given or (dest not in _TRACKED and now is not None):
            if json_value(now) != was:
                raise UserError(f"cannot resume: {flag} {_shown(now)} differs from the recorded {_shown(was)}")
        else:
            setattr(args, dest, was)
    return {flag: json_value(getattr(args, dest)) for flag, dest in options.items()}


def store_call(fn, *a, **kw):
    """`fn(*a, **kw)`; a `StoreError` or `KeyError` (no store, an unknown split) becomes a `UserError`."""
    from ..store import StoreError
    try:
        return fn(*a, **kw)
    except StoreError as e:
        raise UserError(str(e)) from None
    except KeyError as e:
        raise UserError(e.args[0] if e.args else str(e)) from None


def run_spec(spec, args):
    """Run a BuildSpec with the command's options; its BuildReport."""
    from ..build import run_build
    from ..store import StoreError
    try:
        return run_build(spec, workers=args.dask_workers, scheduler=args.scheduler, resume=args.resume,
                         progress=not args.quiet, connect_timeout=args.connect_timeout)
    except StoreError as e:
        raise UserError(str(e)) from None


def finish(args, url: str, results: list) -> int:
    """Print the reports of `(spec, report)` pairs (text, or one JSON document); the exit status.
    Failed shards end in one `odg: error:` line on stderr and exit status 1."""
    import sys

    from ..build import failure_line, report_text
    text = "\n".join(f"[{spec.split}] {report_text(r)}" for spec, r in results)
    obj = {"store": url, "splits": {spec.split: {**dataclasses.asdict(r),
                                                 "failed": [{"shard": s, "error": m} for s, m in r.failed]}
                                    for spec, r in results}}
    emit(args, text, obj)
    failed = [r for _, r in results if r.failed]
    for r in failed:
        print(f"odg: error: {failure_line(r)}", file=sys.stderr)
    return 1 if failed else 0


def execute(spec, args) -> int:
    """Run one BuildSpec and report it."""
    return finish(args, spec.url, [(spec, run_spec(spec, args))])
