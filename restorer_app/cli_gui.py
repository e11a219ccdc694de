"""``restorer gui [FILES...]``: open the desktop application (Qt is imported only when run)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("gui", help="open the desktop application")
    p.add_argument("files", nargs="*", metavar="FILES", help="scans to open in tabs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from restorer_app.gui.app import main

    return main(args.files)
