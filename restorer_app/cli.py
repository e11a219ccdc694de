"""The ``restorer`` command. Exit codes: 0 success, 2 bad input or usage, 1 internal error."""

from __future__ import annotations

import argparse
import os
import sys

from restorer_app import cli_cluster, cli_detect, cli_gui, cli_queue, cli_restore, cli_selftest, cli_train, runtime
from restorer_app.flow.weights import WeightsError
from restorer_app.imaging.errors import ImageError


class UsageError(Exception):
    """Bad input or usage: reported as one line and exit status 2."""


class VersionAction(argparse.Action):
    """``--version``: the package version and the digests of the bundled weights (computed only
    when asked for: hashing the weights is no cost to every other command)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0,
                         help=help or "print the version and the bundled weights' SHA-256 (first 12 hex digits), then exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from restorer_app.bundle import version_report

        print(version_report(), flush=True)
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="restorer", description="Restore scanned photographs with a flow prior.")
    parser.add_argument("--version", action=VersionAction)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in (cli_restore, cli_queue, cli_cluster, cli_detect, cli_train, cli_gui, cli_selftest):
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    runtime.configure()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("restorer: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ImageError, WeightsError, FileNotFoundError, ValueError) as exc:
        print(f"restorer: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # an internal error: one line for the user, details for a report
        print(f"restorer: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("RESTORER_DEBUG"):
            raise
        return 1


if __name__ == "__main__":
    sys.exit(main())
