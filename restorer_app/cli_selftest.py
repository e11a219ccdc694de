"""``restorer selftest``: one PASS/FAIL line per check; exit 0 only if every check passed."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("selftest", help="check that this installation works (model, engine, files, queue, window)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="device for the restore check")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from restorer_app.selftest import run_selftest

    results = run_selftest(args.device, report=lambda r: print(r.line(), flush=True))
    failed = [r.name for r in results if not r.ok]
    print(f"selftest: {'FAILED: ' + ', '.join(failed) if failed else 'all ' + str(len(results)) + ' checks passed'}")
    return 1 if failed else 0
