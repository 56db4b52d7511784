"""MLflow layout: one parent run per (recipe, profile, config, data), one child run per seed.

Tags identify every run (``bench.*``), so a finished run with the same identity is found and
skipped, and the leaderboard is rebuilt from MLflow alone. Default store: ``sqlite:///mlflow.db``
in the working directory with artifacts under ``./mlruns``; any other store or server via
``--tracking-uri`` / ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Any

from harness.errors import TrackingError
from harness.identity import RunIdentity
from harness.schema import (
    KIND_CHILD,
    KIND_LEADERBOARD,
    KIND_PARENT,
    METRIC_MEAN,
    METRIC_N,
    METRIC_STD,
    METRIC_TEST_ACCURACY,
    TAG_CLAIM,
    TAG_ERROR,
    TAG_GROUP,
    TAG_HEARTBEAT,
    TAG_IDENTITY,
    TAG_KIND,
    TAG_NOTE,
    TAG_PARENT,
    TAG_PROFILE,
    TAG_SEED,
)

EXPERIMENT = "cifar10-bench"
HEARTBEAT_SECONDS = 30.0  # how often a sweep refreshes the claims of its running runs
CLAIM_TIMEOUT_SECONDS = 5 * HEARTBEAT_SECONDS  # a claim not refreshed for this long is a dead process's
CLAIM_SETTLE_SECONDS = 1.0  # longer than the gap between a claim's start time and its row being visible
DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlruns"


def default_tracking_uri(directory: Path | None = None) -> str:
    directory = (directory or Path.cwd()).resolve()
    return f"sqlite:///{directory / DEFAULT_DB}"


def resolve_tracking_uri(option: str | None) -> str:
    """``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else the embedded sqlite store."""
    return option or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


class TrackingUnreachable(TrackingError):
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


@contextlib.contextmanager
def _store_creation_lock(tracking_uri: str):
    """Hold an exclusive lock beside a sqlite store while it is opened: MLflow creates the schema
    on first use, and two processes creating it at once can leave the file unusable ("table
    _alembic_tmp_experiments already exists"). A server, or a folder without write access: no lock."""
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    try:
        handle = open(database.with_name(database.name + ".lock"), "a")  # noqa: SIM115  closed below
    except OSError:
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()


def this_owner() -> str:
    """How this process names itself in a claim: host and pid."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def claim_is_stale(tags: dict[str, str], now: float | None = None) -> bool:
    """A RUNNING child's claim no longer holds: its heartbeat is older than the timeout, its
    supervising process on this host is gone, or it has no claim at all (a run left RUNNING by a
    process that died, or by a release without claims)."""
    import socket

    owner, beat = tags.get(TAG_CLAIM), tags.get(TAG_HEARTBEAT)
    if owner is None or beat is None:
        return True
    now = time.time() if now is None else now
    if now - float(beat) > CLAIM_TIMEOUT_SECONDS:
        return True
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


def one_per_identity(runs: list) -> list:
    """At most one run per identity (the earliest to end): a store written by two sweeps that
    raced (or by a release without claims) never counts a seed twice."""
    kept: dict[str, Any] = {}
    for run in sorted(runs, key=lambda r: (r.info.end_time or 0, r.info.run_id)):
        kept.setdefault(run.data.tags.get(TAG_IDENTITY) or run.info.run_id, run)
    return list(kept.values())


def open_tracker(tracking_uri: str | None, experiment: str = EXPERIMENT, *, create: bool = True) -> Tracker:
    """The tracker for ``--tracking-uri`` (resolved as ``resolve_tracking_uri`` does), checked to
    answer; any failure to open the store is one ``TrackingError`` naming it. With
    ``create=False`` (commands that only read) a missing store or experiment is that error too,
    and nothing is created."""
    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    if not create and uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise TrackingError(f"no MLflow store at {uri} (nothing has been trained here; pass --tracking-uri)")
    try:
        return Tracker(uri, experiment, create=create)
    except TrackingError:
        raise
    except Exception as error:  # noqa: BLE001  any store failure is the same message to a user
        raise TrackingError(f"cannot use tracking store {uri}: {error}") from error


class Tracker:
    """The harness's one gateway to MLflow: every run it creates, every value it logs and every
    value the leaderboard reads back goes through here, under the names in ``harness.schema``."""

    def __init__(self, tracking_uri: str, experiment: str = EXPERIMENT, *, create: bool = True) -> None:
        import logging

        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)

        # No mlflow.set_tracking_uri(): it would leak into os.environ and every child process.
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment
        with _store_creation_lock(tracking_uri):
            self.client = MlflowClient(tracking_uri=tracking_uri)
            self.experiment_id = self._experiment(experiment, create)

    def _experiment(self, name: str, create: bool) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        if not create:
            raise TrackingError(f"no experiment {name!r} in {self.tracking_uri} (pass --experiment or --tracking-uri)")
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

    # Reading ------------------------------------------------------------------------------

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

    def get_run(self, run_id: str):
        return self.client.get_run(run_id)

    def child_runs(self, profile: str | None = None) -> list:
        """Every child run (any status), optionally of one profile: what the leaderboard reads."""
        query = f"tags.`{TAG_KIND}` = '{KIND_CHILD}'"
        if profile:
            query += f" and tags.`{TAG_PROFILE}` = '{profile}'"
        return self.search(query)

    def finished_identities(self) -> set[str]:
        """Identities of every FINISHED child run: those are skipped by a sweep."""
        runs = self.search(f"tags.`{TAG_KIND}` = '{KIND_CHILD}' and attributes.status = 'FINISHED'")
        return {run.data.tags.get(TAG_IDENTITY) for run in runs}

    def group_children(self, group: str) -> list:
        """The FINISHED child runs of one group (the seeds a parent aggregates), one per identity."""
        return one_per_identity(
            self.search(
                f"tags.`{TAG_KIND}` = '{KIND_CHILD}' and tags.`{TAG_GROUP}` = '{group}' "
                "and attributes.status = 'FINISHED'"
            )
        )

    def metric_history(self, run_id: str, key: str) -> list[float]:
        """A per-epoch metric's values in epoch order."""
        points = sorted(self.client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
        return [m.value for m in points]

    def download_artifact(self, run_id: str, path: str, destination: Path) -> Path | None:
        """A run's artifact copied under ``destination``; None if the run has no such artifact."""
        destination.mkdir(parents=True, exist_ok=True)
        try:
            return Path(self.client.download_artifacts(run_id, path, str(destination)))
        except Exception:  # noqa: BLE001  missing artifact or unreadable store: no file
            return None

    # Writing ------------------------------------------------------------------------------

    def parent_run(self, identity: RunIdentity, *, description: str) -> str:
        """The parent run of ``identity``'s group, created if it does not exist yet."""
        runs = self.search(f"tags.`{TAG_KIND}` = '{KIND_PARENT}' and tags.`{TAG_GROUP}` = '{identity.group}'")
        if runs:
            return runs[0].info.run_id
        tags = {k: v for k, v in identity.tags().items() if k not in (TAG_SEED, TAG_IDENTITY)}
        tags[TAG_KIND] = KIND_PARENT
        tags[TAG_NOTE] = description
        run = self.client.create_run(self.experiment_id, run_name=f"{identity.recipe} [{identity.profile}]", tags=tags)
        return run.info.run_id

    def child_run(self, identity: RunIdentity, parent_run_id: str, *, owner: str | None = None) -> str:
        """A new RUNNING child run for one seed; the worker process logs into it. ``owner``: the
        process that claims it (see ``claim``)."""
        tags = {**identity.tags(), TAG_PARENT: parent_run_id}
        if owner is not None:
            tags.update({TAG_CLAIM: owner, TAG_HEARTBEAT: f"{time.time():.0f}"})
        run = self.client.create_run(self.experiment_id, run_name=f"{identity.recipe} seed={identity.seed}", tags=tags)
        return run.info.run_id

    def claim(self, identity: RunIdentity, parent_run_id: str, owner: str) -> tuple[str | None, str]:
        """Claim ``identity`` in the store itself, so that two sweeps (two commands, two machines
        on one server) never train it twice: create a RUNNING child tagged with ``owner``, then
        look at every run of that identity. It is ours if none FINISHED and ours is the earliest
        live claim (start time, then run id: every claimant sees the same order). Stale claims of
        dead processes are marked KILLED on the way. Returns (run id, "") when won, else
        (None, why) after deleting the run this call created."""
        run_id = self.child_run(identity, parent_run_id, owner=owner)
        # A rival's start time is taken before its row is written: wait until every claim that
        # started before ours is visible, or two claimants could each see only themselves.
        time.sleep(CLAIM_SETTLE_SECONDS)
        rivals = self.search(f"tags.`{TAG_KIND}` = '{KIND_CHILD}' and tags.`{TAG_IDENTITY}` = '{identity.identity}'")
        live = []
        for run in rivals:
            if run.info.status not in ("RUNNING", "FINISHED"):
                continue
            if run.info.run_id != run_id and run.info.status == "FINISHED":
                self.client.delete_run(run_id)
                return None, f"already finished (run {run.info.run_id})"
            if run.info.run_id != run_id and claim_is_stale(run.data.tags):
                self.fail(run.info.run_id, "its claim went stale: the process that ran it is gone", status="KILLED")
                continue
            live.append(run)
        winner = min(live, key=lambda r: (r.info.start_time, r.info.run_id))
        if winner.info.run_id != run_id:
            self.client.delete_run(run_id)
            return None, f"running in another sweep ({winner.data.tags.get(TAG_CLAIM, 'unknown owner')})"
        return run_id, ""

    def repair(self) -> list[str]:
        """Mend what a crash or a store failure left behind: RUNNING child runs whose claim is
        stale (their process died) become KILLED, and RUNNING parents with no live child get
        their n / mean / std from their FINISHED children and end. Returns what was done."""
        done = []
        for run in self.search(f"tags.`{TAG_KIND}` = '{KIND_CHILD}' and attributes.status = 'RUNNING'"):
            if claim_is_stale(run.data.tags):
                self.fail(run.info.run_id, "left RUNNING by a process that is gone", status="KILLED")
                done.append(f"marked {run.info.run_name} KILLED: left RUNNING by a process that is gone")
        live_groups = {
            run.data.tags.get(TAG_GROUP)
            for run in self.search(f"tags.`{TAG_KIND}` = '{KIND_CHILD}' and attributes.status = 'RUNNING'")
        }
        for parent in self.search(f"tags.`{TAG_KIND}` = '{KIND_PARENT}' and attributes.status = 'RUNNING'"):
            group = parent.data.tags.get(TAG_GROUP, "")
            if group not in live_groups:
                self.update_parent(parent.info.run_id, group)
                done.append(f"closed parent {parent.info.run_name} left RUNNING")
        return done

    def heartbeat(self, run_ids: list[str]) -> None:
        """Refresh the claims of these RUNNING runs."""
        now = f"{time.time():.0f}"
        for run_id in run_ids:
            self.client.set_tag(run_id, TAG_HEARTBEAT, now)

    def leaderboard_run(self, profile: str) -> str:
        """The run that holds a profile's leaderboard files (created on first use)."""
        found = self.search(f"tags.`{TAG_KIND}` = '{KIND_LEADERBOARD}' and tags.`{TAG_PROFILE}` = '{profile}'")
        if found:
            return found[0].info.run_id
        tags = {TAG_KIND: KIND_LEADERBOARD, TAG_PROFILE: profile}
        run = self.client.create_run(self.experiment_id, run_name=f"leaderboard [{profile}]", tags=tags)
        self.finish(run.info.run_id)
        return run.info.run_id

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        """Params in batches of 100 (MLflow's limit per call)."""
        from mlflow.entities import Param

        items = [Param(key, str(value)) for key, value in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    def log_metrics(self, run_id: str, metrics: dict[str, float], *, step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        for start in range(0, len(batch), 500):
            self.client.log_batch(run_id, metrics=batch[start : start + 500])

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.client.set_tag(run_id, key, value)

    def log_artifact(self, run_id: str, path: Path | str, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path=artifact_path)

    def log_artifacts(self, run_id: str, folder: Path | str) -> None:
        self.client.log_artifacts(run_id, str(folder))

    def finish(self, run_id: str) -> None:
        """Mark a run FINISHED."""
        self.client.set_terminated(run_id, status="FINISHED")

    def fail(self, run_id: str, reason: str, *, status: str = "FAILED") -> None:
        """Mark a run FAILED (or KILLED) with its reason, unless it already ended."""
        run = self.client.get_run(run_id)
        if run.info.status in ("FINISHED", "FAILED", "KILLED"):
            return
        self.client.set_tag(run_id, TAG_ERROR, reason[:5000])
        self.client.set_terminated(run_id, status=status)

    def update_parent(self, parent_run_id: str, group: str) -> dict[str, Any]:
        """Log n, mean and sample std of test accuracy over the group's finished seeds with a finite accuracy."""
        from harness.stats import describe, split_finite

        children = self.group_children(group)
        accuracies = [c.data.metrics[METRIC_TEST_ACCURACY] for c in children if METRIC_TEST_ACCURACY in c.data.metrics]
        summary = describe(split_finite(accuracies)[0])  # a NaN accuracy is a failed seed, not a value
        metrics: dict[str, float] = {METRIC_N: summary.n}
        if summary.mean is not None:
            metrics[METRIC_MEAN] = summary.mean
        if summary.std is not None:
            metrics[METRIC_STD] = summary.std
        self.log_metrics(parent_run_id, metrics, step=summary.n)
        if self.client.get_run(parent_run_id).info.status == "RUNNING":
            self.finish(parent_run_id)
        return metrics
