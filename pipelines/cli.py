"""The `odg` command line. Commands live in `odg.pipelines.commands.*`, one module each.

Exit statuses (README, "Exit status"): 0 done; 1 failed or damaged (a build with failed shards,
`odg verify` finding damage, an error while working); 2 usage error or refusal (bad options, an
input or store odg refuses, before any work); 130 interrupted (Ctrl-C). Every failure ends in
one `odg: error: ...` line on stderr; `odg --traceback COMMAND ...` also prints where it came from.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from . import commands
from .commands._options import HelpFormatter

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_BROKEN_PIPE = 141               # 128 + SIGPIPE, what a shell reports for a writer its pipe closed on


class Parser(argparse.ArgumentParser):
    """Every `odg` parser: defaults shown in --help, usage errors ending in one `odg: error:` line."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kw):
        super().__init__(*args, formatter_class=formatter_class, **kw)

    def error(self, message):
        self.print_usage(sys.stderr)
        where = self.prog.removeprefix("odg").strip()
        self.exit(EXIT_USAGE, f"odg: error: {where + ': ' if where else ''}{message}\n")


class CLI:
    """What a command module sees: top-level commands and shared groups (`odg build ...`)."""

    def __init__(self, parser: argparse.ArgumentParser):
        self._sub = parser.add_subparsers(dest="command", metavar="COMMAND")
        self._groups: dict[str, argparse._SubParsersAction] = {}

    def command(self, name: str, help: str, **kw) -> argparse.ArgumentParser:
        return self._sub.add_parser(name, help=help, description=help, **kw)

    def group(self, name: str, help: str) -> argparse._SubParsersAction:
        """Subcommands under `odg NAME` (e.g. `odg build imagenet`, `odg build ucf101`)."""
        if name not in self._groups:
            p = self._sub.add_parser(name, help=help, description=help)
            self._groups[name] = p.add_subparsers(dest=f"{name}_target", metavar="TARGET", required=True)
        return self._groups[name]


def build_parser() -> argparse.ArgumentParser:
    from odg import __version__
    parser = Parser(
        prog="odg", description="Event-stream datasets (ES-ImageNet, ES-UCF101): convert, build, inspect, train.\n\n"
                                "Exit status: 0 done, 1 failed or damaged, 2 usage error or refused, 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"odg {__version__}")
    parser.add_argument("--traceback", action="store_true", help="on an unexpected error, print its traceback too")
    cli = CLI(parser)
    for mod in sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")):
        importlib.import_module(f"{commands.__name__}.{mod}").register(cli)
    return parser


class UserError(Exception):
    """A problem with what the user asked for: printed as `odg: error: ...`, exit status 2."""


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:            # --help, --version (0) or a usage error (2, already printed)
        return int(e.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"odg: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:            # stdout's reader went away (`odg ... | head`): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # the exit flush has nowhere to fail
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        hint = "; run the same command again with --resume to continue" if hasattr(args, "resume") else ""
        print(f"odg: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - every failure ends in one line
        if args.traceback:
            import traceback
            traceback.print_exc()
        print(f"odg: error: {_describe(e)}", file=sys.stderr)
        return EXIT_FAILED
