"""Which MLflow store a command uses, and how its failures read: the tracking URI (the default
sqlite file, ``--tracking-uri``, ``MLFLOW_TRACKING_URI``) with its credentials redacted wherever it
is shown, a server checked to answer and its retries bounded, every failure of a store call as one
``StoreError`` line (MLflow's own error logs folded), and the lock beside a sqlite store while it
is created."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import MutableMapping
from pathlib import Path

from harness.errors import TrackingError
from harness.locking import exclusive_lock

DEFAULT_DB = "mlflow.db"


DEFAULT_ARTIFACTS = "mlruns"


# By default MLflow retries a failing HTTP call 7 times with exponential backoff (sleeps of 0, 4, 8,
# 16, 32, 64 and 120 s: about 4 minutes) and waits up to 120 s for each answer: a killed tracking
# server held a sweep for about 21 minutes (issue 31), call after call, in every worker. Every harness process that talks to a server uses these bounds
# instead (a dead server costs a few seconds per call), unless the user set them.
HTTP_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def bound_http_retries(environment: MutableMapping[str, str] | None = None) -> None:
    """Set ``HTTP_BOUNDS`` in ``environment`` (this process's, by default) where not set already:
    MLflow reads them at every call, and worker processes inherit them."""
    environment = os.environ if environment is None else environment
    for name, value in HTTP_BOUNDS.items():
        environment.setdefault(name, value)


def default_tracking_uri(directory: Path | None = None) -> str:
    directory = (directory or Path.cwd()).resolve()
    return f"sqlite:///{directory / DEFAULT_DB}"


# Credentials a URI may carry: its userinfo (https://user:token@host) and the values of query
# parameters with these names (?token=…, &password=…, a cloud store's presigned signature).
_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#@\s]+@")


HIDDEN_PARAMETERS = (  # the query parameters whose values are hidden
    "token|access_token|refresh_token|id_token|auth|authorization|password|passwd|pwd|secret|client_secret|"
    "key|api_key|apikey|access_key|secret_key|sig|signature|credential|sas|x-amz-[a-z-]+"
)


_SECRET_QUERY = re.compile(rf"([?&;](?:{HIDDEN_PARAMETERS})=)[^&;#\s]*", re.IGNORECASE)


def redacted(text: str) -> str:
    """``text`` (a URI, a command line, a message) with every URI's credentials replaced by
    ``***``: what the harness records (the ``bench.command`` tag, results/ provenance) or
    prints never carries them."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1***@", text))


def resolve_tracking_uri(option: str | None) -> str:
    """``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else the embedded sqlite store."""
    return option or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


class ExperimentMissing(TrackingError):
    """The store exists but holds no experiment of that name (nothing was trained into it)."""


class StoreMissing(TrackingError):
    """No sqlite store at that path, or an empty file (nothing has been trained there); a reading
    command creates none."""


class TrackingUnreachable(TrackingError):
    """The tracking server does not answer; raised before anything is trained."""


class StoreError(TrackingError):
    """A call to the store failed (server down, disk full, read-only, experiment deleted): every
    MLflow client call the Tracker makes raises this, so a caller anywhere can end in one line.
    ``reason`` is the underlying error in one line ("OSError: disk I/O error")."""

    def __init__(self, call: str, error: BaseException) -> None:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]  # not SQL, not links
        self.call = call
        self.reason = redacted(f"{type(error).__name__}: {first}")
        super().__init__(f"the tracking store failed ({call}): {self.reason}")


def store_failure(error: BaseException) -> str:
    """A store failure in one line, without repeating StoreError's own wrapping."""
    if isinstance(error, StoreError):
        return error.reason
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    return redacted(f"{type(error).__name__}: {first}")


class StoreClient:
    """An MlflowClient whose every call raises ``StoreError`` on failure: whatever the store does
    (a refused write, a lost connection, a deleted experiment), the harness sees one error type."""

    def __init__(self, client) -> None:
        self._client = client

    def __getattr__(self, name: str):
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            try:
                return attribute(*args, **kwargs)
            except StoreError:
                raise
            except Exception as error:  # noqa: BLE001  any failure of the store is the same to a caller
                raise StoreError(name, error) from error

        return call


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
                raise TrackingUnreachable(
                    f"tracking server {redacted(tracking_uri)} answered {response.status} on /health"
                )
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingUnreachable(
            f"cannot reach tracking server {redacted(tracking_uri)}: {redacted(str(reason))}"
        ) from None


@contextlib.contextmanager
def store_creation_lock(tracking_uri: str):
    """Hold an exclusive lock beside a sqlite store while it is opened: MLflow creates the schema
    on first use, and two processes creating it at once can leave the file unusable ("table
    _alembic_tmp_experiments already exists"). A server, or a folder without write access: no lock."""
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    with exclusive_lock(database.with_name(database.name + ".lock")):
        yield


MLFLOW_LOGGERS = ("mlflow", "sqlalchemy.engine", "alembic", "huey")  # the loggers MLflow gives its own handler


class _ErrorsTheHarnessReports(logging.Filter):
    """Drops MLflow's own ERROR records (a traceback, SQL and links under each): every store
    failure reaches the harness as an exception, which it reports in one line of its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


def fold_mlflow_errors(fold: bool = True) -> None:
    """Keep MLflow's own ERROR logs off the terminal in this process, or (``fold=False``, the
    CLI's ``--debug``) let them through again; its warnings always show. Imports MLflow, which
    installs its handler first."""
    import mlflow  # noqa: F401  configures MLflow's loggers and their handler

    for name in MLFLOW_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            for old in [f for f in handler.filters if isinstance(f, _ErrorsTheHarnessReports)]:
                handler.removeFilter(old)
            if fold:
                handler.addFilter(_ErrorsTheHarnessReports())
