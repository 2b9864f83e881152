"""What every command shares: the help formatter (every default shown), deprecated spellings of
renamed options, `-q/--quiet`, `--json`, and printing a result as text or JSON.

One meaning per option name across commands: `--dask-workers` (Dask worker processes),
`--threads` (threads in this process), `--loader-workers` (PyTorch DataLoader processes),
`--split` (a store split's name), `--fold` (UCF101's official split number, 1-3), STORE
positional. Old spellings keep working and print a one-line note on stderr.
"""
from __future__ import annotations

import argparse
import json
import sys


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Adds "(default: X)" to every option whose help does not already state its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.help == argparse.SUPPRESS or any(
                action.default is v for v in (None, False, argparse.SUPPRESS)):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


class _Deprecated(argparse.Action):
    """An old spelling of an option: stores like the new one, after a note on stderr."""

    def __init__(self, option_strings, dest, new: str, store_true: bool = False, **kw):
        if store_true:
            kw["nargs"] = 0
        super().__init__(option_strings, dest, **kw)
        self.new, self.store_true = new, store_true

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"odg: note: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, True if self.store_true else values)


def deprecated(p, old: str, new: str, dest: str, **kw) -> None:
    """Accept `old` (hidden from --help) as a deprecated spelling of `new`, storing into `dest`."""
    p.add_argument(old, dest=dest, action=_Deprecated, new=new, help=argparse.SUPPRESS,
                   default=argparse.SUPPRESS, **kw)


def add_quiet(p, what: str = "no progress bar or banner on stderr (results still print)") -> None:
    p.add_argument("-q", "--quiet", action="store_true", help=what)


def add_json(p) -> None:
    p.add_argument("--json", action="store_true", help="print the result as one JSON document on stdout")


def add_output_options(p) -> None:
    """-q/--quiet and --json."""
    add_quiet(p)
    add_json(p)


def add_allow_incomplete(p) -> None:
    """--allow-incomplete: read a split whose build did not finish (its built shards only)."""
    p.add_argument("--allow-incomplete", action="store_true",
                   help="read a split whose build did not finish: only its built shards (by default such a "
                        "split is refused)")


def emit(args, text: str, obj) -> None:
    """Print a command's result: `obj` as JSON with --json, else `text`."""
    print(json.dumps(obj, indent=1) if getattr(args, "json", False) else text)


def positive(name: str):
    """An argparse type: an integer >= 1 (the message names the option)."""
    def parse(v: str) -> int:
        try:
            n = int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {v!r}") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {n}")
        return n
    return parse
