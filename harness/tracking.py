"""MLflow layout: one parent run per (recipe, profile, config, data), one child run per seed.

Tags identify every run (``bench.*``), so a finished run with the same identity is found and
skipped, and the leaderboard is rebuilt from MLflow alone. Default store: ``sqlite:///mlflow.db``
in the working directory with artifacts under ``./mlruns``; any other store or server via
``--tracking-uri`` / ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXPERIMENT = "cifar10-bench"
DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlruns"

TAG_KIND = "bench.kind"  # parent | child | leaderboard
TAG_RECIPE = "bench.recipe"
TAG_PROFILE = "bench.profile"
TAG_SEED = "bench.seed"
TAG_CONFIG_HASH = "bench.config_hash"
TAG_DATA = "bench.data_fingerprint"
TAG_REPORT = "bench.report"
TAG_IDENTITY = "bench.identity"
TAG_GROUP = "bench.group"
TAG_ERROR = "bench.error"
TAG_PARENT = "mlflow.parentRunId"


def default_tracking_uri(directory: Path | None = None) -> str:
    directory = (directory or Path.cwd()).resolve()
    return f"sqlite:///{directory / DEFAULT_DB}"


def resolve_tracking_uri(option: str | None) -> str:
    """``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else the embedded sqlite store."""
    return option or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


class TrackingUnreachable(RuntimeError):
    """The tracking server does not answer; raised before anything is trained."""


def check_reachable(tracking_uri: str, timeout: float = 5.0) -> None:
    """For an HTTP tracking server, one quick GET of ``/health`` (MLflow's own client would
    retry for minutes before failing). Local stores need no check."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  http(s) only, checked above
            if response.status != 200:
                raise TrackingUnreachable(f"tracking server {tracking_uri} answered {response.status} on /health")
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingUnreachable(f"cannot reach tracking server {tracking_uri}: {reason}") from None


def group_key(recipe: str, profile: str, config_hash: str, data_fingerprint: str) -> str:
    """What a parent run aggregates: all seeds of one recipe under one config, profile, data."""
    return hashlib.sha256(f"{recipe}|{profile}|{config_hash}|{data_fingerprint}".encode()).hexdigest()[:16]


def identity_key(recipe: str, profile: str, config_hash: str, data_fingerprint: str, seed: int) -> str:
    """A run's identity: at most one FINISHED run may carry it."""
    return hashlib.sha256(f"{recipe}|{profile}|{config_hash}|{data_fingerprint}|{seed}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunIdentity:
    recipe: str
    profile: str
    seed: int
    config_hash: str
    data_fingerprint: str
    report: str

    @property
    def group(self) -> str:
        return group_key(self.recipe, self.profile, self.config_hash, self.data_fingerprint)

    @property
    def identity(self) -> str:
        return identity_key(self.recipe, self.profile, self.config_hash, self.data_fingerprint, self.seed)

    def tags(self) -> dict[str, str]:
        return {
            TAG_KIND: "child",
            TAG_RECIPE: self.recipe,
            TAG_PROFILE: self.profile,
            TAG_SEED: str(self.seed),
            TAG_CONFIG_HASH: self.config_hash,
            TAG_DATA: self.data_fingerprint,
            TAG_REPORT: self.report,
            TAG_IDENTITY: self.identity,
            TAG_GROUP: self.group,
        }


class Tracker:
    """A thin layer over ``MlflowClient`` that knows the harness's run layout."""

    def __init__(self, tracking_uri: str, experiment: str = EXPERIMENT) -> None:
        import logging

        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)

        # No mlflow.set_tracking_uri(): it would leak into os.environ and every child process.
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.experiment_name = experiment
        self.experiment_id = self._experiment(experiment)

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        artifact_location = None
        if self.tracking_uri.startswith("sqlite:///"):
            database = Path(self.tracking_uri.removeprefix("sqlite:///"))
            artifact_location = (database.parent / DEFAULT_ARTIFACTS).resolve().as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=artifact_location)
        except Exception:  # another process created it first
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def search(self, filter_string: str) -> list:
        """All runs of the experiment matching ``filter_string`` (pages through results)."""
        runs, token = [], None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], filter_string=filter_string, max_results=1000, page_token=token
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def finished_identities(self) -> set[str]:
        """Identities of every FINISHED child run: those are skipped by a sweep."""
        runs = self.search(f"tags.`{TAG_KIND}` = 'child' and attributes.status = 'FINISHED'")
        return {run.data.tags.get(TAG_IDENTITY) for run in runs}

    def parent_run(self, identity: RunIdentity, *, description: str) -> str:
        """The parent run of ``identity``'s group, created if it does not exist yet."""
        runs = self.search(f"tags.`{TAG_KIND}` = 'parent' and tags.`{TAG_GROUP}` = '{identity.group}'")
        if runs:
            return runs[0].info.run_id
        tags = {k: v for k, v in identity.tags().items() if k not in (TAG_SEED, TAG_IDENTITY)}
        tags[TAG_KIND] = "parent"
        tags["mlflow.note.content"] = description
        run = self.client.create_run(self.experiment_id, run_name=f"{identity.recipe} [{identity.profile}]", tags=tags)
        return run.info.run_id

    def child_run(self, identity: RunIdentity, parent_run_id: str) -> str:
        """A new RUNNING child run for one seed; the worker process logs into it."""
        tags = {**identity.tags(), TAG_PARENT: parent_run_id}
        run = self.client.create_run(self.experiment_id, run_name=f"{identity.recipe} seed={identity.seed}", tags=tags)
        return run.info.run_id

    def fail(self, run_id: str, reason: str, *, status: str = "FAILED") -> None:
        """Mark a run FAILED (or KILLED) with its reason, unless it already ended."""
        run = self.client.get_run(run_id)
        if run.info.status in ("FINISHED", "FAILED", "KILLED"):
            return
        self.client.set_tag(run_id, TAG_ERROR, reason[:5000])
        self.client.set_terminated(run_id, status=status)

    def group_children(self, group: str) -> list:
        return self.search(
            f"tags.`{TAG_KIND}` = 'child' and tags.`{TAG_GROUP}` = '{group}' and attributes.status = 'FINISHED'"
        )

    def update_parent(self, parent_run_id: str, group: str) -> dict[str, Any]:
        """Log n, mean and sample std of test accuracy over the group's finished seeds."""
        from harness.stats import describe

        children = self.group_children(group)
        accuracies = [c.data.metrics["test_accuracy"] for c in children if "test_accuracy" in c.data.metrics]
        summary = describe(accuracies)
        metrics: dict[str, float] = {"n": summary.n}
        if summary.mean is not None:
            metrics["test_accuracy_mean"] = summary.mean
        if summary.std is not None:
            metrics["test_accuracy_std"] = summary.std
        self.log_metrics(parent_run_id, metrics, step=summary.n)
        status = self.client.get_run(parent_run_id).info.status
        if status == "RUNNING":
            self.client.set_terminated(parent_run_id, status="FINISHED")
        return metrics

    def log_metrics(self, run_id: str, metrics: dict[str, float], *, step: int = 0) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        for start in range(0, len(batch), 500):
            self.client.log_batch(run_id, metrics=batch[start : start + 500])
