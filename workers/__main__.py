"""`python -m workers [queue ...] [--burst]`: what `kumpul worker` runs."""

from __future__ import annotations

import argparse
import os
import sys

from service import logs
from service.settings import load_for_command
from workers.worker import run_worker

NICENESS = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kumpul worker", description="an RQ worker")
    parser.add_argument("queues", nargs="*", help="queues to serve (default: all)")
    parser.add_argument("--burst", action="store_true", help="quit when the queues are empty")
    args = parser.parse_args(argv)
    settings = load_for_command()
    logs.configure(settings.log_level)
    # Batch work yields the CPU to the web app (requests, live rooms) on a shared machine;
    # the media tools it starts inherit the lower priority.
    os.nice(NICENESS)
    run_worker(settings, args.queues or None, burst=args.burst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
