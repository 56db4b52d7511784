"""A run's results are never lost to a store failure: kept on disk, uploaded by the next command.

A worker talks to the store through ``SpoolingTracker``. When a write fails (server down, disk
full, a read-only store), the run goes on; that write and every later one are recorded under
``$BENCH_CACHE/spool/<run id>/calls.json`` (the calls as data, never code, with the store they
were meant for) beside a copy of every file they upload. The next sweep on that store replays
them (``replay``) before planning, so the run ends FINISHED with everything it measured. An
entry that cannot be uploaded (its run or experiment deleted, a corrupt file) is moved to
``spool/kept-aside/`` with one line saying why; it never stops the other entries or the command.

A sqlite store that is only busy is not a failure: "database is locked" (another process held
a write transaction past MLflow's 20 s busy timeout: many workers logging at once, a backup, a
reader holding it open) is retried with backoff for up to ``LOCKED_RETRY_SECONDS``
(``retry_while_locked``) before the write is spooled.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.store.schema import TAG_ERROR

READS = frozenset({"get_run", "search", "child_runs", "finished_identities", "group_children", "metric_history"})
# The writes a spool keeps and replays: a spooled file can name nothing else. (A worker's model
# and its system metrics are not kept: too large, and a monitor belongs to the training process.)
REPLAYED = frozenset({"set_tag", "log_params", "log_metrics", "log_artifact", "log_artifacts", "finish", "fail"})
CALLS_FILE = "calls.json"
LEGACY_FILE = "calls.pickle"  # a spool written before calls.json: read with only data allowed in it
KEPT_ASIDE = "kept-aside"
FORMAT = 1


class SpoolError(HarnessError):
    """The store refused a write and the spool cannot be written either: results are not kept."""


class SpoolUnreadable(Exception):
    """A spooled entry that cannot be read back as the data it should be."""


LOCKED_RETRY_SECONDS = 120.0  # how long a write retries a locked sqlite store before it gives up
LOCKED_BACKOFF_SECONDS = (0.5, 8.0)  # the first wait between tries, doubling up to the second


def is_locked(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it: MLflow wraps SQLAlchemy, which wraps sqlite3) says a
    sqlite database is locked."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if "database is locked" in str(error) or "database table is locked" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def retry_while_locked(call: Callable, *args, **kwargs):
    """``call(*args, **kwargs)``, tried again with backoff while it fails because a sqlite store
    is locked, for up to ``LOCKED_RETRY_SECONDS``; any other error, or a lock that outlasts them,
    is raised as it came."""
    deadline_seconds = LOCKED_RETRY_SECONDS
    started = time.monotonic()
    wait, longest = LOCKED_BACKOFF_SECONDS
    while True:
        try:
            return call(*args, **kwargs)
        except Exception as error:
            if not is_locked(error) or time.monotonic() - started + wait > deadline_seconds:
                raise
        time.sleep(wait)
        wait = min(wait * 2, longest)


def spool_root() -> Path:
    return Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "cifar10-bench")) / "spool"


def _to_json(value: Any) -> Any:
    """Paths as text, NumPy scalars as numbers; anything else is not a spoolable value."""
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    raise TypeError(f"cannot spool a {type(value).__name__}")


class SpoolingTracker:
    """A Tracker for one run whose writes fall back to the spool once the store refuses one."""

    def __init__(self, tracker, run_id: str) -> None:
        self._tracker = tracker
        self.run_id = run_id
        self.offline: str | None = None  # why the store stopped taking this run's writes
        self._folder = spool_root() / run_id
        self._calls: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._tracker, name)
        if name in READS or not callable(attribute):
            return attribute
        return self._guarded(name, attribute)

    def _guarded(self, name: str, call: Callable) -> Callable:
        def guarded(*args, **kwargs):
            if self.offline is None:
                try:
                    return retry_while_locked(call, *args, **kwargs)
                except Exception as error:  # noqa: BLE001  any store failure: keep the results locally
                    from harness.store.connection import store_failure

                    self.offline = store_failure(error)[:300]
            if name in REPLAYED:
                self._record(name, args, kwargs)
            return None

        return guarded

    def _record(self, name: str, args: tuple, kwargs: dict) -> None:
        try:
            kept = []
            for value in args:
                if isinstance(value, Path | str) and name.startswith("log_artifact") and Path(value).exists():
                    target = self._folder / "files" / str(len(self._calls)) / Path(value).name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    copy = shutil.copytree if Path(value).is_dir() else shutil.copy2
                    copy(value, target)
                    value = target
                kept.append(value)
            call = json.loads(json.dumps({"call": name, "args": kept, "kwargs": kwargs}, default=_to_json))
            self._calls.append(call)
            self._save()
        except OSError as error:
            raise SpoolError(
                f"the tracking store refused a write ({self.offline}) and the spool folder {self._folder} cannot "
                f"be written either ({type(error).__name__}: {error.strerror or error}): this run's results are "
                "not kept"
            ) from None

    def _save(self) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        record = {
            "format": FORMAT,
            "run_id": self.run_id,
            "tracking_uri": self._tracker.tracking_uri,
            "experiment": self._tracker.experiment_name,
            "why": self.offline,
            "calls": self._calls,
        }
        temporary = self._folder / f"{CALLS_FILE}.partial"
        temporary.write_text(json.dumps(record))
        temporary.replace(self._folder / CALLS_FILE)


def pending() -> list[Path]:
    """The spooled runs waiting for a store."""
    root = spool_root()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / CALLS_FILE).is_file() or (p / LEGACY_FILE).is_file())


class _DataOnly(pickle.Unpickler):
    """Unpickles plain data and paths only: a pickle naming any other class or function (which
    loading would call) is refused, so a legacy spool file cannot run code."""

    ALLOWED = {("pathlib", "PosixPath"), ("pathlib", "PurePosixPath"), ("pathlib", "Path")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it names {module}.{name}, which a spool file never holds")


def _read(folder: Path) -> dict[str, Any]:
    """A spooled entry as data: calls.json, or a legacy calls.pickle read with only plain data
    and paths allowed (converted to the same form). Raises SpoolUnreadable."""
    try:
        if (folder / CALLS_FILE).is_file():
            record = json.loads((folder / CALLS_FILE).read_text())
        else:
            legacy = _DataOnly(io.BytesIO((folder / LEGACY_FILE).read_bytes())).load()
            calls = [{"call": name, "args": list(args), "kwargs": kwargs} for name, args, kwargs in legacy["calls"]]
            record = json.loads(json.dumps({**legacy, "calls": calls}, default=_to_json))
    except (OSError, ValueError, TypeError, KeyError, pickle.UnpicklingError, EOFError) as error:
        raise SpoolUnreadable(f"it cannot be read ({type(error).__name__}: {error})") from None
    if not isinstance(record, dict) or not isinstance(record.get("run_id"), str):
        raise SpoolUnreadable("it cannot be read (no run id)")
    for call in record.get("calls", []):
        if not isinstance(call, dict) or call.get("call") not in REPLAYED:
            raise SpoolUnreadable(f"it holds a call a spool never makes ({str(call)[:100]})")
        args = call.get("args")
        if (
            not isinstance(args, list)
            or not args
            or args[0] != record["run_id"]
            or not isinstance(call.get("kwargs"), dict)
        ):
            raise SpoolUnreadable(f"a call does not write to its own run ({str(call)[:100]})")
    return record


def _point(key: str, step: int, value: float) -> tuple:
    return key, int(step), "nan" if isinstance(value, float) and math.isnan(value) else float(value)


def _logged_points(tracker, run_id: str) -> set[tuple]:
    """Every metric point the run already has: a write the store took while its answer was lost,
    or a replay cut short, is not logged a second time."""
    run = tracker.get_run(run_id)
    return {
        _point(key, m.step, m.value) for key in run.data.metrics for m in tracker.client.get_metric_history(run_id, key)
    }


def _upload(tracker, record: dict[str, Any]) -> str:
    """Replay the record's calls; returns "" or, where its run was not finished because another
    run of its identity was, why (``Tracker.finish``)."""
    logged: set[tuple] | None = None
    superseded = ""
    for call in record["calls"]:
        name, args, kwargs = call["call"], list(call["args"]), call["kwargs"]
        if name == "log_metrics":
            if logged is None:
                logged = _logged_points(tracker, record["run_id"])
            step = kwargs.get("step", 0)
            args[1] = {k: v for k, v in args[1].items() if _point(k, step, v) not in logged}
            if not args[1]:
                continue
            logged |= {_point(k, step, v) for k, v in args[1].items()}
        if getattr(tracker, name)(*args, **kwargs) is False and name == "finish":
            superseded = tracker.get_run(record["run_id"]).data.tags.get(TAG_ERROR, "superseded")
    return superseded


def _keep_aside(folder: Path, why: str, note: Callable[[str], None]) -> None:
    target = spool_root() / KEPT_ASIDE / folder.name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        folder.rename(target)
    except OSError as error:
        note(f"could not keep aside the spooled results of run {folder.name} ({why}): {error}")
        return
    note(
        f"kept aside the spooled results of run {folder.name} in {target}: {why} (the others go on; move it back "
        f"to {folder.parent} to try again)"
    )


def _store_answers(tracker) -> bool:
    try:
        tracker.client.get_experiment(tracker.experiment_id)
    except Exception:  # noqa: BLE001  the store itself fails, not one entry
        return False
    return True


def replay(tracker, note: Callable[[str], None]) -> int:
    """Upload every spooled run of ``tracker``'s store, in the order its calls were made (metric
    points it already has are not logged again), then delete its spool folder. An entry that
    cannot be read or uploaded is kept aside with one line, and the others go on; a run of
    another store stays spooled. Raises ``StoreError`` only when the store itself fails (the
    command cannot go on either). Returns how many runs were uploaded."""
    from harness.store.connection import StoreError, store_failure

    uploaded = 0
    for folder in pending():
        try:
            record = _read(folder)
        except SpoolUnreadable as error:
            _keep_aside(folder, str(error), note)
            continue
        if record.get("experiment", tracker.experiment_name) != tracker.experiment_name:
            continue  # another experiment's: the command on that experiment uploads it
        ours = record.get("tracking_uri") == tracker.tracking_uri
        try:
            run = tracker.get_run(record["run_id"])
        except StoreError:
            if not _store_answers(tracker):
                raise
            if ours:
                _keep_aside(folder, f"its run {record['run_id']} is not in {tracker.shown_uri} any more", note)
            continue  # not ours to say: the store it was meant for uploads it
        if run.info.lifecycle_stage == "deleted":
            _keep_aside(folder, f"its run {record['run_id']} was deleted", note)
            continue
        try:
            superseded = _upload(tracker, record)
        except StoreError as error:
            if not _store_answers(tracker):
                raise
            _keep_aside(folder, f"the store refused it: {store_failure(error)}", note)
            continue
        shutil.rmtree(folder)
        uploaded += 1
        note(
            f"uploaded run {record['run_id']}, kept locally when the store refused it ({record.get('why')})"
            + (f"; it ended KILLED: {superseded}" if superseded else "")
        )
    return uploaded
