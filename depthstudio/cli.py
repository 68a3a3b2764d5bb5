"""The `depthstudio` command line.

Each subcommand lives in ``depthstudio/commands/<name>.py`` and provides ``add_parser(subparsers)``
(which sets ``func``) and is registered here by name; errors meant for users (DepthStudioError)
are printed as one line and give exit status 1 (2 for usage errors, from argparse).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from pathlib import Path

from depthstudio import __version__
from depthstudio.errors import DepthStudioError, missing_package
from depthstudio.jobs import Cancelled, Job, cancel_on_signals

#: Order of subcommands in --help; modules in depthstudio.commands not listed here come after.
ORDER = ("gui", "depth", "mesh", "parallax", "dof", "video", "stereo", "models", "demo")
#: Subcommands that take no settings file.
NO_SETTINGS = ("models",)


def _command_modules():
    import depthstudio.commands as package

    names = [m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")]
    names = [n for n in names if n != "common"]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    for name in names:
        yield importlib.import_module(f"depthstudio.commands.{name}")


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line with a pointer to --help (not the usage text)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="depthstudio",
        description="Monocular depth from photos and videos: depth maps, meshes, point clouds, parallax and depth-of-field.",
    )
    parser.add_argument("--version", action="version", version=f"depthstudio {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        module.add_parser(sub)
    for name, command in sub.choices.items():
        if name not in NO_SETTINGS:
            command.add_argument("--settings", type=Path, default=None, metavar="FILE",
                                 help="start from a saved <stem>.settings.json (flags given here override it)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    job = Job()
    args.job = job
    try:
        with cancel_on_signals(job):
            code = int(args.func(args) or 0)
            job.check()  # a signal during the last step: still the exit status of an interrupt
            return code
    except Cancelled as exc:
        print(f"depthstudio: {exc}", file=sys.stderr)
        return exc.exit_code
    except DepthStudioError as exc:
        print(f"depthstudio: error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:  # an optional package a step needs is missing: one line, not a traceback
        error = missing_package(exc)
        if error is None:
            raise
        print(f"depthstudio: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("depthstudio: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
