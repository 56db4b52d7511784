"""The one gateway to MLflow (``Tracker``): one parent run per (recipe, profile, config, data), one
child run per seed, every value logged and read back.

Tags identify every run (``bench.*``), so a finished run with the same identity is found and
skipped, and the leaderboard is rebuilt from MLflow alone. Which store (default
``sqlite:///mlflow.db`` in the working directory, artifacts under ``./mlruns``) and how its
failures read: ``harness.store.connection``; which process trains which run (claims, the queue,
repair): ``harness.store.claims``, mixed into ``Tracker``.
"""

from __future__ import annotations

import contextlib
import json
import logging
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
from harness.store.claims import (
    Claims,
    choosing,
    claim_is_stale,
    claim_tags,
    one_per_identity,
    queue_position,
    this_owner,
)
from harness.store.connection import (
    DEFAULT_ARTIFACTS,
    ExperimentMissing,
    StoreClient,
    StoreError,
    StoreMissing,
    bound_http_retries,
    check_reachable,
    redacted,
    resolve_tracking_uri,
    store_creation_lock,
    store_failure,
)
from harness.store.schema import (
    DATASET_CONTEXT,
    EXPERIMENT_KIND,
    KIND_CHILD,
    KIND_LEADERBOARD,
    KIND_PARENT,
    LEGACY_NAMES,
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
    "Each recipe has one parent run per profile (its params are the recipe, what_changed says how it differs "
    "from the step it was built from; its board/* metrics are its leaderboard figures) with one child run per "
    "seed nested under it (named 'seed N · recipe'). Every accuracy here is a fraction (0.7151 = 71.51 %). "
    "Sort the run list by board/1_mean to rank recipes; tick two parents and Compare to see which params "
    "differ and by how much the accuracy does. The 'leaderboard [profile]' run holds the table and plots."
)
DATASET_SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class DataInput:
    """The dataset a run read, as MLflow's Dataset column shows it: one input per split."""

    fingerprint: str  # harness.run.data.Dataset.fingerprint: the digest
    source: str  # absolute path of the file or folder, or where Keras downloads it from


EXPERIMENT = "cifar10-bench"


def open_tracker(tracking_uri: str | None, experiment: str = EXPERIMENT, *, create: bool = True) -> Tracker:
    """The tracker for ``--tracking-uri`` (resolved as ``resolve_tracking_uri`` does), checked to
    answer; any failure to open the store is one ``TrackingError`` naming it. With
    ``create=False`` (commands that only read) a missing store or experiment is that error too,
    and nothing is created."""
    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    if not create and uri.startswith("sqlite:///"):
        database = Path(uri.removeprefix("sqlite:///"))
        if not database.is_file() or database.stat().st_size == 0:  # MLflow would write its schema into it
            raise StoreMissing(
                f"no MLflow store at {redacted(uri)} (nothing has been trained here; pass --tracking-uri)"
            )
    try:
        return Tracker(uri, experiment, create=create)
    except StoreError as error:
        raise TrackingError(f"cannot use tracking store {redacted(uri)}: {error.reason}") from error
    except TrackingError:
        raise
    except Exception as error:  # noqa: BLE001  any store failure is the same message to a user
        raise TrackingError(f"cannot use tracking store {redacted(uri)}: {store_failure(error)}") from error


class Tracker(Claims):
    """The harness's one gateway to MLflow: every run it creates, every value it logs and every
    value the leaderboard reads back goes through here, under the names in ``harness.store.schema``."""

    def __init__(self, tracking_uri: str, experiment: str = EXPERIMENT, *, create: bool = True) -> None:

        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)

        # No mlflow.set_tracking_uri(): it would leak into os.environ and every child process.
        self.tracking_uri = tracking_uri
        if tracking_uri.startswith(("http://", "https://")):
            bound_http_retries()
        self.experiment_name = experiment
        # How a person started this (set by the CLI): the command from its name on, for the Source
        # column, and the whole command line, global options included, for the TAG_COMMAND tag.
        self.command: list[str] | None = None
        self.command_line: list[str] | None = None
        with store_creation_lock(tracking_uri) if create else contextlib.nullcontext():  # a reader writes no lock
            self.client = StoreClient(MlflowClient(tracking_uri=tracking_uri))
            self.experiment_id = self._experiment(experiment, create)
        if create:
            self._describe_experiment()

    @property
    def shown_uri(self) -> str:
        """The tracking URI as it may be printed or recorded: without credentials."""
        return redacted(self.tracking_uri)

    def _describe_experiment(self) -> None:
        """Tag the experiment as model training (not GenAI) and say what is inside, once."""
        tags = self.client.get_experiment(self.experiment_id).tags
        wanted = {TAG_EXPERIMENT_KIND: EXPERIMENT_KIND, TAG_NOTE: EXPERIMENT_DESCRIPTION}
        for key, value in wanted.items():
            if tags.get(key) != value:
                self.client.set_experiment_tag(self.experiment_id, key, value)

    def _experiment(self, name: str, create: bool) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None and found.lifecycle_stage == "deleted":
            # MLflow keeps a deleted experiment's name: no run can be created in it, nor read.
            raise TrackingError(
                f"experiment {name!r} in {self.shown_uri} was deleted: restore it "
                f"(mlflow experiments restore --experiment-id {found.experiment_id}) or pass --experiment NAME"
            )
        if found is not None:
            return found.experiment_id
        if not create:
            raise ExperimentMissing(f"no experiment {name!r} in {self.shown_uri} (pass --experiment or --tracking-uri)")
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

    def search(self, filter_string: str, *, deleted: bool = False) -> list:
        """All runs of the experiment matching ``filter_string`` (pages through results); with
        ``deleted``, the deleted ones instead."""
        from mlflow.entities import ViewType

        view = ViewType.DELETED_ONLY if deleted else ViewType.ACTIVE_ONLY
        runs, token = [], None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=filter_string,
                run_view_type=view,
                max_results=1000,
                page_token=token,
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

        command = [redacted(a) for a in self.command or [Path(sys.argv[0]).name, *sys.argv[1:]]]
        tags = {
            TAG_SOURCE_TYPE: "LOCAL",
            TAG_SOURCE_NAME: " ".join(Path(a).name if "/" in a else a for a in command)[:500],
            TAG_COMMAND: redacted(" ".join(self.command_line or sys.argv))[:5000],
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
        recipe's ``params`` and the ``data`` it reads (both the same for every seed). Two
        commands creating it at once each make a candidate and elect one (``_queue``), by the
        store's order, not by a clock; the other candidate ends KILLED and deleted."""
        query = f"tags.`{TAG_KIND}` = '{KIND_PARENT}' and tags.`{TAG_GROUP}` = '{identity.group}'"

        def candidates() -> list:
            found = []
            for run in self.search(query):
                if choosing(run) and claim_is_stale(run.data.tags):  # its creator died while electing it
                    self._close_lost(run.info.run_id, "a parent candidate whose command died while it was elected")
                    continue
                found.append(run)
            return found

        existing = self._settled(candidates)
        if existing:
            return min(existing, key=queue_position).info.run_id
        tags = {k: v for k, v in identity.tags().items() if k not in (TAG_SEED, TAG_IDENTITY)}
        tags.update({TAG_KIND: KIND_PARENT, TAG_NOTE: description, **claim_tags(this_owner())})
        run_id = self._create_run(f"{identity.recipe} [{identity.profile}]", tags)
        winner = min(self._queue(run_id, candidates), key=queue_position)
        if winner.info.run_id != run_id:
            self._close_lost(run_id, f"a second parent for its group, made at the same time as {winner.info.run_id}")
            return winner.info.run_id
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
            tags.update(claim_tags(owner))
        if description:
            tags[TAG_NOTE] = description
        run_id = self._create_run(f"seed {identity.seed} · {identity.recipe}", tags, start_time)
        if data is not None:
            self.log_dataset(run_id, data)
        return run_id

    def parent_runs(self, profile: str) -> dict[str, str]:
        """The parent run of every group of ``profile``, by group (the elected one, where a store
        written before elections holds two)."""
        return {group: run.info.run_id for group, run in self.parents(profile).items()}

    def parents(self, profile: str) -> dict[str, Any]:
        """The parent runs of ``profile`` themselves (with their tags and latest metrics), by group:
        the elected one where a group has two."""
        runs = self.search(f"tags.`{TAG_KIND}` = '{KIND_PARENT}' and tags.`{TAG_PROFILE}` = '{profile}'")
        by_group: dict[str, Any] = {}
        for run in sorted((r for r in runs if not choosing(r)), key=queue_position, reverse=True):
            if TAG_GROUP in run.data.tags:
                by_group[run.data.tags[TAG_GROUP]] = run
        return by_group

    @staticmethod
    def latest_metrics(run) -> dict[str, tuple[int, float]]:
        """A run's latest value of each metric, with its step: (step, value) by name."""
        return {m.key: (m.step, m.value) for m in run.data._metric_objs}  # the Metric objects MLflow returned

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

    def finish(self, run_id: str, end_time: int | None = None) -> bool:
        """Mark a run FINISHED (at ``end_time`` in ms, if not now). A child run finishes only while its identity is still its own: if
        another run of the identity FINISHED meanwhile (a spool uploaded after the seed was
        retrained), or this run's claim was taken over and another claim trains it now (its
        process was stopped for minutes, then went on), it ends KILLED, "superseded by …",
        instead. An identity never gets a second FINISHED run. Returns whether it finished."""
        run = self.client.get_run(run_id)
        if run.data.tags.get(TAG_KIND) == KIND_CHILD and TAG_IDENTITY in run.data.tags:
            rival = self._superseding(run)
            if rival is not None:
                how = "finished" if rival.info.status == "FINISHED" else "took over its stale claim and is training"
                self.client.set_tag(run_id, TAG_ERROR, f"superseded by run {rival.info.run_id}, which {how} it")
                self.client.set_terminated(run_id, status="KILLED")
                return False
        self.client.set_terminated(run_id, status="FINISHED", end_time=end_time)
        return True

    def _superseding(self, run):
        """Another run of ``run``'s identity that FINISHED, or, when ``run`` is no longer RUNNING
        (its claim went stale and was taken over), one that holds a live claim now; else None."""
        identity = run.data.tags[TAG_IDENTITY]
        for other in self.search(f"tags.`{TAG_KIND}` = '{KIND_CHILD}' and tags.`{TAG_IDENTITY}` = '{identity}'"):
            if other.info.run_id == run.info.run_id:
                continue
            if other.info.status == "FINISHED":
                return other
            taken_over = run.info.status != "RUNNING" and other.info.status == "RUNNING"
            if taken_over and not claim_is_stale(other.data.tags):
                return other
        return None

    def fail(self, run_id: str, reason: str, *, status: str = "FAILED") -> None:
        """Mark a run FAILED (or KILLED) with its reason, unless it already ended."""
        run = self.client.get_run(run_id)
        if run.info.status in ("FINISHED", "FAILED", "KILLED"):
            return
        self.client.set_tag(run_id, TAG_ERROR, redacted(reason)[:5000])
        self.client.set_terminated(run_id, status=status)

    def update_parent(self, parent_run_id: str, group: str) -> str:
        """End a parent run with the status its seeds give it, and return that status. FINISHED
        when at least one seed finished with a finite accuracy (the parent then holds a result,
        its board/* metrics); otherwise FAILED if a seed failed, else KILLED (its seeds were
        interrupted), with the reason as the parent's bench.error: a parent with no finished seed
        is not shown as a finished recipe with n = 0. A later seed that finishes makes it FINISHED."""
        import math

        children = self.search(f"tags.`{TAG_KIND}` = '{KIND_CHILD}' and tags.`{TAG_GROUP}` = '{group}'")
        statuses = [run.info.status for run in children]
        finished = [
            run
            for run in children
            if run.info.status == "FINISHED"
            and (value := metric(run.data.metrics, METRIC_TEST_ACCURACY)) is not None
            and math.isfinite(value)
        ]
        parent = self.client.get_run(parent_run_id)
        if finished:
            status = "FINISHED"
            if TAG_ERROR in parent.data.tags:
                self.client.delete_tag(parent_run_id, TAG_ERROR)
        else:
            status = "FAILED" if "FAILED" in statuses or "FINISHED" in statuses else "KILLED"
            counts = ", ".join(
                f"{statuses.count(s)} {s.lower()}" for s in ("FINISHED", "FAILED", "KILLED") if s in statuses
            )
            why = f"no seed finished with a test accuracy ({counts or 'no seed ran'})"
            self.client.set_tag(parent_run_id, TAG_ERROR, why)
        if parent.info.status != status:
            self.client.set_terminated(parent_run_id, status=status)
        for key in (TAG_CLAIM, TAG_HEARTBEAT):  # they served its election; it has ended
            if key in parent.data.tags:
                self.client.delete_tag(parent_run_id, key)
        return status
