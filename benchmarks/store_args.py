"""What the benchmarks that read runs back from an MLflow store share: the options that name the
store, and opening it (a clear exit, not a traceback, when it cannot be)."""

from __future__ import annotations

import argparse
import os
import sys


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """--tracking-uri, --experiment and --profile."""
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"),
        help="MLflow store to read (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db).",
    )
    parser.add_argument("--experiment", default="cifar10-bench", help="MLflow experiment name.")
    parser.add_argument("--profile", help="Only runs of this profile.")


def open_store(args: argparse.Namespace):
    """The store the options name, read-only; exits with its error where it cannot be opened."""
    from harness.errors import TrackingError
    from harness.store.tracking import open_tracker

    try:
        return open_tracker(args.tracking_uri, args.experiment, create=False)
    except TrackingError as error:
        sys.exit(str(error))
