"""The contract between the sweep and ``python -m harness.run.worker``, used by both sides.

The sweep sends one ``WorkerPayload`` as JSON on the worker's stdin; the worker answers with
one JSON event per line on its stdout: ``Start``, then (for a run continued from its checkpoint)
``Resumed``, an ``Epoch`` per epoch, then ``Done``, ``Paused`` (the time budget) or ``Error``;
``Note`` at any time. A field added here reaches both sides at once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.identity import RunIdentity

NODE_ENVIRONMENT = "BENCH_RAY_NODE"  # set for a worker in a Ray task: the node it trains on (host and node id)


@dataclass(frozen=True)
class WorkerPayload:
    """Everything a worker needs to train one run into an existing MLflow child run."""

    config_path: str
    identity: RunIdentity
    tracking_uri: str
    experiment: str
    run_id: str
    data_path: str | None = None
    weights_dir: str | None = None
    jit_compile: str = "auto"  # auto | on | off
    commit: str = "unknown"
    system_metrics: bool = False  # log system/* metrics (CPU, memory, GPU) while training
    log_model: bool = False  # log the trained Keras model as the run's model
    launched_at: float | None = None  # time.time() when the sweep started the process
    deadline: float | None = None  # time.time() of the time budget's end: pause before an epoch would pass it

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "identity": self.identity.to_dict()})

    @classmethod
    def from_json(cls, text: str) -> WorkerPayload:
        fields = json.loads(text)
        return cls(**{**fields, "identity": RunIdentity.from_dict(fields["identity"])})


@dataclass(frozen=True)
class Start:
    """Training begins; ``epochs`` is the most it will run (callbacks may stop it earlier)."""

    epochs: int


@dataclass(frozen=True)
class Epoch:
    """One epoch ended (``epoch`` from 1) with these logs (loss, val_accuracy, …)."""

    epoch: int
    logs: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Resumed:
    """Training continues from a checkpoint after ``epoch`` finished epochs (their logs were
    logged again into this run, and sent as ``Epoch`` events)."""

    epoch: int


@dataclass(frozen=True)
class Note:
    """A line the person running the sweep should read (a checkpoint that was ignored, and why)."""

    message: str


@dataclass(frozen=True)
class Paused:
    """Training stopped at the time budget after ``epoch`` of ``epochs``; the checkpoint is kept
    and the next command continues the run."""

    epoch: int
    epochs: int


@dataclass(frozen=True)
class Done:
    """The run FINISHED and is logged."""

    test_accuracy: float
    train_seconds: float
    epochs_run: int
    spooled: str = ""  # why the results are kept on disk instead of the store (harness.store.spool), if they are
    superseded: str = ""  # why the run ended KILLED instead: another run of its identity finished or took it over


@dataclass(frozen=True)
class Error:
    """The run failed (or was stopped) for ``reason``; with ``store``, the worker could not even
    open the tracking store: a store error (the sweep stops), not a failure of the run."""

    reason: str
    store: bool = False


Event = Start | Epoch | Resumed | Note | Paused | Done | Error
_KINDS: dict[str, type] = {
    "start": Start,
    "epoch": Epoch,
    "resumed": Resumed,
    "note": Note,
    "paused": Paused,
    "done": Done,
    "error": Error,
}
_NAMES = {kind: name for name, kind in _KINDS.items()}


def encode(event: Event) -> str:
    """One line of JSON (no newline)."""
    return json.dumps({"event": _NAMES[type(event)], **asdict(event)})


def decode(line: str) -> Event | None:
    """The event on ``line``, or None for anything that is not one (a stray print)."""
    try:
        fields: dict[str, Any] = json.loads(line)
        kind = _KINDS[fields.pop("event")]
        return kind(**fields)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
