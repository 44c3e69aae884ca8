"""The ``atom`` command line: one entry point, one module per subcommand in ``tracker_core.commands``.

Each command module exposes ``add_parser(subparsers)`` (which sets ``func`` on its parser) and raises
:class:`CommandError` for bad input, which is printed as one line on stderr with exit code 2 (no traceback). Any
other of the project's user-facing errors (:class:`AtomError`: a damaged annotation, video or model file) that a
command lets through is bad input too, and is printed the same way.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import AtomError

# (subcommand module, one-line help); modules are imported lazily so that `atom --help` stays fast.
COMMANDS = {
    "gui": "atom_gui.command",
    "track": "tracker_core.commands.track",
    "eval": "tracker_core.commands.evaluate",
    "bench": "tracker_core.commands.bench",
    "train": "tracker_core.commands.train",
    "export": "tracker_core.commands.export",
    "import": "tracker_core.commands.import_",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atom", description="ATOM Annotator: track and annotate objects in video.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=f"(see `atom {name} --help`)")
            continue
        importlib.import_module(module_name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=first if first in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except AtomError as exc:
        print(f"atom {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"atom {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
