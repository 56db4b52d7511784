"""MLflow layout: one parent run per (recipe, profile, config, data), one child run per seed.

Tags identify every run (``bench.*``), so a finished run with the same identity is found and
skipped, and the leaderboard is rebuilt from MLflow alone. Default store: ``sqlite:///mlflow.db``
in the working directory with artifacts under ``./mlruns``; any other store or server via
``--tracking-uri`` / ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from harness.errors import TrackingError
from harness.identity import RunIdentity
from harness.locking import exclusive_lock
from harness.schema import (
    DATASET_CONTEXT,
    EXPERIMENT_KIND,
    KIND_CHILD,
    KIND_LEADERBOARD,
    KIND_PARENT,
    LEGACY_NAMES,
    METRIC_MEAN,
    METRIC_N,
    METRIC_STD,
    METRIC_TEST_ACCURACY,
    TAG_CLAIM,
    TAG_COMMAND,
    TAG_ERROR,
    TAG_EXPERIMENT_KIND,
    TAG_GROUP,
    TAG_HEARTBEAT,
    TAG_IDENTITY,
    TAG_KIND,
    TAG_NOTE,
    TAG_PARENT,
    TAG_PROFILE,
    TAG_SEED,
    TAG_SOURCE_COMMIT,
    TAG_SOURCE_NAME,
    TAG_SOURCE_TYPE,
    TAG_USER,
    metric,
)

EXPERIMENT_DESCRIPTION = (
    "CIFAR-10 CNNs from five reports, each trained with several seeds by cifar10-bench. "
    "Each recipe has one parent run per profile (its params are the recipe; its board/* metrics are its "
    "leaderboard row, accuracies in %) with one child run per seed nested under it (named 'seed N · recipe'). "
    "Sort the run list by board/mean_pct to rank recipes; tick two parents and Compare to see which params "
    "differ and by how much the accuracy does. The 'leaderboard [profile]' run holds the table and plots."
)
DATASET_SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class DataInput:
    """The dataset a run read, as MLflow's Dataset column shows it: one input per split."""

    fingerprint: str  # harness.data.Dataset.fingerprint: the digest
    source: str  # absolute path of the file or folder, or where Keras downloads it from


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


class ExperimentMissing(TrackingError):
    """The store exists but holds no experiment of that name (nothing was trained into it)."""


class StoreMissing(TrackingError):
    """No sqlite store at the path (nothing has been trained there); a reading command creates none."""


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
    with exclusive_lock(database.with_name(database.name + ".lock")):
        yield


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
        raise StoreMissing(f"no MLflow store at {uri} (nothing has been trained here; pass --tracking-uri)")
    try:
        return Tracker(uri, experiment, create=create)
    except TrackingError:
        raise
    except Exception as error:  # noqa: BLE001  any store failure is the same message to a user
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]  # not SQLAlchemy's SQL and links
        raise TrackingError(f"cannot use tracking store {uri}: {first}") from error


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
        # How a person started this (set by the CLI): the command from its name on, for the Source
        # column, and the whole command line, global options included, for the TAG_COMMAND tag.
        self.command: list[str] | None = None
        self.command_line: list[str] | None = None
        with _store_creation_lock(tracking_uri):
            self.client = MlflowClient(tracking_uri=tracking_uri)
            self.experiment_id = self._experiment(experiment, create)
        if create:
            self._describe_experiment()

    def _describe_experiment(self) -> None:
        """Tag the experiment as model training (not GenAI) and say what is inside, once."""
        tags = self.client.get_experiment(self.experiment_id).tags
        wanted = {TAG_EXPERIMENT_KIND: EXPERIMENT_KIND, TAG_NOTE: EXPERIMENT_DESCRIPTION}
        for key, value in wanted.items():
            if tags.get(key) != value:
                self.client.set_experiment_tag(self.experiment_id, key, value)

    def _experiment(self, name: str, create: bool) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        if not create:
            raise ExperimentMissing(
                f"no experiment {name!r} in {self.tracking_uri} (pass --experiment or --tracking-uri)"
            )
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
        """A per-epoch metric's values in epoch order; in an older store, under its old name."""
        for name in (key, *LEGACY_NAMES.get(key, ())):
            points = sorted(self.client.get_metric_history(run_id, name), key=lambda m: (m.step, m.timestamp))
            if points:
                return [m.value for m in points]
        return []

    def download_artifact(self, run_id: str, path: str, destination: Path) -> Path | None:
        """A run's artifact copied under ``destination``; None if the run has no such artifact."""
        destination.mkdir(parents=True, exist_ok=True)
        try:
            return Path(self.client.download_artifacts(run_id, path, str(destination)))
        except Exception:  # noqa: BLE001  missing artifact or unreadable store: no file
            return None

    # Writing ------------------------------------------------------------------------------

    @cached_property
    def _origin_tags(self) -> dict[str, str]:
        """Who created a run, with which command and code: MLflow's Source, Version and Created by
        columns. The command (``self.command`` where the CLI set it, e.g. ``bench all --seeds 3``)
        keeps only the last part of each path (the UI shows what follows the last '/'); the full
        command line is the ``TAG_COMMAND`` tag."""
        import getpass

        from harness.environment import git_commit

        command = self.command or [Path(sys.argv[0]).name, *sys.argv[1:]]
        tags = {
            TAG_SOURCE_TYPE: "LOCAL",
            TAG_SOURCE_NAME: " ".join(Path(a).name if "/" in a else a for a in command)[:500],
            TAG_COMMAND: " ".join(self.command_line or sys.argv)[:5000],
        }
        commit = git_commit(Path(__file__).resolve().parent).removesuffix("+dirty")
        if commit != "unknown":
            tags[TAG_SOURCE_COMMIT] = commit
        try:
            tags[TAG_USER] = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (a container): MLflow shows "-"
            pass
        return tags

    def _create_run(self, run_name: str, tags: dict[str, str], start_time: int | None = None) -> str:
        run = self.client.create_run(
            self.experiment_id, run_name=run_name, tags={**self._origin_tags, **tags}, start_time=start_time
        )
        return run.info.run_id

    def parent_run(
        self,
        identity: RunIdentity,
        *,
        description: str,
        params: dict[str, str] | None = None,
        data: DataInput | None = None,
    ) -> str:
        """The parent run of ``identity``'s group, created if it does not exist yet with the
        recipe's ``params`` and the ``data`` it reads (both the same for every seed)."""
        runs = self.search(f"tags.`{TAG_KIND}` = '{KIND_PARENT}' and tags.`{TAG_GROUP}` = '{identity.group}'")
        if runs:
            return runs[0].info.run_id
        tags = {k: v for k, v in identity.tags().items() if k not in (TAG_SEED, TAG_IDENTITY)}
        tags[TAG_KIND] = KIND_PARENT
        tags[TAG_NOTE] = description
        run_id = self._create_run(f"{identity.recipe} [{identity.profile}]", tags)
        if params:
            self.log_params(run_id, params)
        if data is not None:
            self.log_dataset(run_id, data)
        return run_id

    def child_run(
        self,
        identity: RunIdentity,
        parent_run_id: str,
        *,
        owner: str | None = None,
        description: str = "",
        data: DataInput | None = None,
        start_time: int | None = None,
    ) -> str:
        """A new RUNNING child run for one seed, nested under its parent; the worker process logs
        into it. Named seed first ("seed 2 · r004-step7"): the UI cuts long names at the end.
        ``owner``: the process that claims it (see ``claim``); ``start_time`` (ms): when the run
        began, if not now (a run imported from a record)."""
        tags = {**identity.tags(), TAG_PARENT: parent_run_id}
        if owner is not None:
            tags.update({TAG_CLAIM: owner, TAG_HEARTBEAT: f"{time.time():.0f}"})
        if description:
            tags[TAG_NOTE] = description
        run_id = self._create_run(f"seed {identity.seed} · {identity.recipe}", tags, start_time)
        if data is not None:
            self.log_dataset(run_id, data)
        return run_id

    def parent_runs(self, profile: str) -> dict[str, str]:
        """The parent run of every group of ``profile``, by group."""
        runs = self.search(f"tags.`{TAG_KIND}` = '{KIND_PARENT}' and tags.`{TAG_PROFILE}` = '{profile}'")
        return {run.data.tags[TAG_GROUP]: run.info.run_id for run in runs if TAG_GROUP in run.data.tags}

    def claim(
        self,
        identity: RunIdentity,
        parent_run_id: str,
        owner: str,
        *,
        description: str = "",
        data: DataInput | None = None,
    ) -> tuple[str | None, str]:
        """Claim ``identity`` in the store itself, so that two sweeps (two commands, two machines
        on one server) never train it twice: create a RUNNING child tagged with ``owner``, then
        look at every run of that identity. It is ours if none FINISHED and ours is the earliest
        live claim (start time, then run id: every claimant sees the same order). Stale claims of
        dead processes are marked KILLED on the way. Returns (run id, "") when won, else
        (None, why) after deleting the run this call created."""
        run_id = self.child_run(identity, parent_run_id, owner=owner, description=description, data=data)
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

    def moved_store_note(self) -> str | None:
        """For an sqlite store whose experiment keeps its artifacts in another folder than the
        ``mlruns`` beside it (the store was copied or moved: MLflow records artifact locations
        as absolute paths), a line saying where new artifacts will go; else None."""
        if not self.tracking_uri.startswith("sqlite:///"):
            return None
        location = self.client.get_experiment(self.experiment_id).artifact_location
        expected = (Path(self.tracking_uri.removeprefix("sqlite:///")).parent / DEFAULT_ARTIFACTS).resolve()
        if not location.startswith("file://") or Path(location.removeprefix("file://")).resolve() == expected:
            return None
        where = location.removeprefix("file://")
        return (
            f"note: this store's artifacts (plots, logs) go to {where}, not to {expected}: it was copied or "
            "moved from there. Keep both folders together, or use a new store for new runs."
        )

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
        tags = {
            TAG_KIND: KIND_LEADERBOARD,
            TAG_PROFILE: profile,
            TAG_NOTE: f"The leaderboard of profile '{profile}': its table (sortable), markdown, CSV, JSON and plots.",
        }
        run_id = self._create_run(f"leaderboard [{profile}]", tags)
        self.finish(run_id)
        return run_id

    def log_dataset(self, run_id: str, data: DataInput) -> None:
        """CIFAR-10 as the run's inputs, one per split (train, validation, test), digest = its
        fingerprint: MLflow's Dataset column, and its datasets filter."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        source = json.dumps({"uri": data.source})
        inputs = [
            DatasetInput(
                Dataset(name=f"cifar10-{split}", digest=data.fingerprint, source_type="local", source=source),
                tags=[InputTag(key=DATASET_CONTEXT, value=split)],
            )
            for split in DATASET_SPLITS
        ]
        self.client.log_inputs(run_id, datasets=inputs)

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

    def log_curves(self, run_id: str, curves: dict[str, list[float | None]]) -> None:
        """Per-epoch values (step = epoch, from 1) in as few calls as MLflow allows; a missing
        value (None) is left out."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [
            Metric(key, float(value), now, epoch)
            for key, values in curves.items()
            for epoch, value in enumerate(values, start=1)
            if value is not None
        ]
        for start in range(0, len(batch), 1000):
            self.client.log_batch(run_id, metrics=batch[start : start + 1000])

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.client.set_tag(run_id, key, value)

    def log_artifact(self, run_id: str, path: Path | str, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path=artifact_path)

    def log_artifacts(self, run_id: str, folder: Path | str) -> None:
        self.client.log_artifacts(run_id, str(folder))

    def log_table(self, run_id: str, columns: dict[str, list], artifact_file: str) -> None:
        """A table the MLflow UI shows as one (sortable columns), replacing any earlier version of
        the file: ``MlflowClient.log_table`` would append the new rows to the old ones."""
        import pandas as pd
        from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS

        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / artifact_file
            pd.DataFrame(columns).to_json(path, orient="split", index=False)
            self.client.log_artifact(run_id, str(path))
        logged = json.loads(self.client.get_run(run_id).data.tags.get(MLFLOW_LOGGED_ARTIFACTS, "[]"))
        entry = {"path": artifact_file, "type": "table"}
        if entry not in logged:
            self.client.set_tag(run_id, MLFLOW_LOGGED_ARTIFACTS, json.dumps([*logged, entry]))

    def log_keras_model(self, run_id: str, model) -> None:
        """The trained Keras model as the run's logged model (MLflow's Models column). Uses
        MLflow's fluent API, which needs an active run and a global tracking URI: both are set
        only for this call (in the worker, the last thing before the run ends)."""
        import keras
        import mlflow

        previous = os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(self.tracking_uri)
        try:
            with mlflow.start_run(run_id=run_id, experiment_id=self.experiment_id):
                mlflow.keras.log_model(model, name="model", pip_requirements=[f"keras=={keras.__version__}"])
        finally:
            if previous is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous

    def system_metrics(self, run_id: str):
        """A started monitor logging CPU, memory, disk, network (and GPU where pynvml finds one)
        as ``system/*`` metrics of the run every 10 s; call ``.finish()`` on it at the end."""
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(run_id, tracking_uri=self.tracking_uri)
        monitor.start()
        return monitor

    def finish(self, run_id: str, end_time: int | None = None) -> None:
        """Mark a run FINISHED (at ``end_time`` in ms, if not now)."""
        self.client.set_terminated(run_id, status="FINISHED", end_time=end_time)

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
        accuracies = [a for c in children if (a := metric(c.data.metrics, METRIC_TEST_ACCURACY)) is not None]
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
