"""The `odg` command line. Commands live in `odg.pipelines.commands.*`, one module each."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import commands


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
    parser = argparse.ArgumentParser(
        prog="odg", description="Event-stream datasets (ES-ImageNet, ES-UCF101): convert, build, inspect, train.")
    parser.add_argument("--version", action="version", version=f"odg {__version__}")
    cli = CLI(parser)
    for mod in sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")):
        importlib.import_module(f"{commands.__name__}.{mod}").register(cli)
    return parser


class UserError(Exception):
    """A problem with what the user asked for: printed as `odg: error: ...`, exit status 2."""


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"odg: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("odg: interrupted", file=sys.stderr)
        return 130
