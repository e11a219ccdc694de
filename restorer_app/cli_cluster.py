"""``restorer cluster run``: the persistent queue, its batches solved on a Ray cluster.

Needs the ``cluster`` extra (``pip install -e ".[cluster]"``). This command is the head: it claims
jobs from the same queue as ``restorer queue run`` (either may run beside the other), writes the
outputs and the progress that ``restorer queue list`` and the app show.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("cluster", help="run the queue on a Ray cluster (needs the cluster extra)")
    commands = p.add_subparsers(dest="cluster_command", required=True)
    run = commands.add_parser("run", help="run queued jobs, their batches on Ray workers (Ctrl-C pauses them)")
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", type=int, metavar="N", help="start Ray on this machine with N workers")
    where.add_argument("--address", metavar="HOST:PORT", help="join the Ray cluster started there by `ray start --head`")
    run.add_argument("--until-empty", action="store_true", help="return when no job is queued")
    run.add_argument("--gpus-per-worker", type=float, metavar="N",
                     help="GPUs of each worker (default: 1 where there are GPUs, else one CPU worker per core)")
    run.add_argument("--jobs", type=int, metavar="J",
                     help="jobs restored at once, to keep the workers busy (default: workers + 1)")
    run.set_defaults(func=run_cluster)


def run_cluster(args: argparse.Namespace) -> int:
    from restorer_app.cli_queue import _queue, event_printer
    from restorer_app.jobs import cluster

    if args.jobs is not None and args.jobs < 1:
        raise cluster.ClusterError(f"--jobs {args.jobs}: at least one")
    queue = _queue()
    with cluster.connect(args.local, args.address, args.gpus_per_worker) as pool:
        workers = pool.describe()
        hosts = sorted({w["host"] for w in workers})
        print(f"{len(workers)} workers ready on {', '.join(hosts)}: {workers[0]['device']}, "
              f"{workers[0]['threads']} torch thread(s) each", flush=True)
        cluster.run(queue, pool, args.jobs or len(workers) + 1, until_empty=args.until_empty,
                    on_event=event_printer(quiet=True))
    return 0
