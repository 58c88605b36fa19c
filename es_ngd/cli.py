"""The ``es-ngd`` command: ``es-ngd bench`` (benchmark against CMA-ES), ``es-ngd plot`` and ``es-ngd gym``.

Each subcommand lives in its own module, which exposes ``add_arguments(parser)`` and
``run(args) -> int``. A module is imported only when its subcommand is chosen, so ``es-ngd --help``
never pays for numpy-heavy or optional imports (cma, rich, matplotlib).

With no subcommand the help is printed and the exit code is 2 (a usage error, as for any missing
required argument); the command most users want is ``es-ngd bench``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    module: str  # imported when the command runs; exposes add_arguments(parser) and run(args)
    help: str
    extra: str  # the pip extra that provides its optional dependencies


COMMANDS: dict[str, Command] = {
    "bench": Command("es_ngd.bench.cli", "benchmark es_ngd structures against pycma's CMA-ES variants",
                     "bench"),
    "plot": Command("es_ngd.plotting", "plot a log directory written by es_ngd.Logger", "bench"),
    "gym": Command("es_ngd.gym.cli", "policy search on a Gymnasium task (es-ngd gym ENV_ID), or "
                   "es-ngd gym play DIR", "gym"),
}


class UsageError(Exception):
    """Raised by a subcommand's ``run`` for invalid options; reported like an argparse error (exit 2)."""


def _load(name: str) -> object:
    """The module of command ``name``, or a SystemExit with a message that says what is missing."""
    command = COMMANDS[name]
    try:
        return importlib.import_module(command.module)
    except ModuleNotFoundError as error:
        if error.name is not None and command.module.startswith(error.name):
            message = (f"es-ngd {name}: this installation has no module {command.module} "
                       f"(the '{name}' command is not available in it)")
        else:
            message = (f"es-ngd {name}: needs the Python package {error.name!r}, which is not installed; "
                       f"install it with: pip install 'es-ngd[{command.extra}]'")
        print(message, file=sys.stderr)
        raise SystemExit(1) from None


def _build_parser(selected: str | None) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser | None]:
    """The top-level parser, with full arguments only for the ``selected`` subcommand."""
    parser = argparse.ArgumentParser(
        prog="es-ngd", description="Structured natural-gradient evolution strategies: command-line tools.",
        epilog="Start with `es-ngd bench` (a one-minute benchmark against CMA-ES); "
               "`es-ngd COMMAND --help` explains a command.")
    from es_ngd import __version__

    parser.add_argument("--version", action="version", version=f"es-ngd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    selected_parser = None
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        if name == selected:
            _load(name).add_arguments(sub)  # type: ignore[attr-defined]
            selected_parser = sub
    return parser, selected_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``es-ngd`` command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((arg for arg in argv if not arg.startswith("-")), None)
    selected = selected if selected in COMMANDS else None
    try:
        parser, sub = _build_parser(selected)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        assert sub is not None  # parse_args only accepts the command that was selected
        args.argv = argv  # the exact command line, for commands that record it
        try:
            return int(_load(args.command).run(args))  # type: ignore[attr-defined]
        except UsageError as error:
            sub.error(str(error))  # prints usage and message, exits with code 2
    except SystemExit as exit_:  # argparse exits on --help and errors: turn that into a return code
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
