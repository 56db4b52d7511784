"""A run's results are never lost to a store failure: kept on disk, uploaded by the next command.

A worker talks to the store through ``SpoolingTracker``. When a write fails (server down, disk
full, a read-only store), the run goes on; that write and every later one are recorded under
``$BENCH_CACHE/spool/<run id>/`` (the calls, and a copy of every file they upload). The next
sweep on that store replays them (``replay``) before planning, so the run ends FINISHED with
everything it measured, and repairs what the failure left behind (``Tracker.repair``).

A sqlite store that is only busy is not a failure: "database is locked" (another process held
a write transaction past MLflow's 20 s busy timeout: many workers logging at once, a backup, a
reader holding it open) is retried with backoff for up to ``LOCKED_RETRY_SECONDS``
(``retry_while_locked``) before the write is spooled.
"""

from __future__ import annotations

import os
import pickle
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

READS = frozenset({"get_run", "search", "child_runs", "finished_identities", "group_children", "metric_history"})


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


class SpoolingTracker:
    """A Tracker for one run whose writes fall back to the spool once the store refuses one."""

    def __init__(self, tracker, run_id: str) -> None:
        self._tracker = tracker
        self.run_id = run_id
        self.offline: str | None = None  # why the store stopped taking this run's writes
        self._folder = spool_root() / run_id
        self._calls: list[tuple[str, tuple, dict]] = []

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
                    first = (str(error).strip().splitlines() or [""])[0][:200]
                    self.offline = f"{type(error).__name__}: {first}"
            self._record(name, args, kwargs)
            return None

        return guarded

    def _record(self, name: str, args: tuple, kwargs: dict) -> None:
        files = self._folder / "files"
        kept = []
        for value in args:
            if isinstance(value, Path | str) and name.startswith("log_artifact") and Path(value).exists():
                target = files / str(len(self._calls)) / Path(value).name
                target.parent.mkdir(parents=True, exist_ok=True)
                copy = shutil.copytree if Path(value).is_dir() else shutil.copy2
                copy(value, target)
                value = target
            kept.append(value)
        self._calls.append((name, tuple(kept), kwargs))
        self._save()

    def _save(self) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        temporary = self._folder / "calls.pickle.partial"
        temporary.write_bytes(pickle.dumps({"run_id": self.run_id, "calls": self._calls, "why": self.offline}))
        temporary.replace(self._folder / "calls.pickle")


def pending() -> list[Path]:
    """The spooled runs waiting for a store."""
    root = spool_root()
    return sorted(p for p in root.iterdir() if (p / "calls.pickle").is_file()) if root.is_dir() else []


def replay(tracker, note: Callable[[str], None]) -> int:
    """Upload every spooled run whose run exists in ``tracker``'s store, in the order its calls
    were made, then delete its spool folder. Returns how many runs were uploaded; a run of
    another store stays spooled."""
    uploaded = 0
    for folder in pending():
        # Written by SpoolingTracker above, in this user's own cache folder.
        record = pickle.loads((folder / "calls.pickle").read_bytes())  # noqa: S301
        try:
            tracker.get_run(record["run_id"])
        except Exception:  # noqa: BLE001, S112  not in this store: leave it for the store it belongs to
            continue
        for name, args, kwargs in record["calls"]:
            getattr(tracker, name)(*args, **kwargs)
        shutil.rmtree(folder)
        uploaded += 1
        note(f"uploaded run {record['run_id']}, kept locally when the store refused it ({record['why']})")
    return uploaded
