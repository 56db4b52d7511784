"""A run's state at the end of an epoch, kept on disk so that a stopped run continues from there.

``capture`` takes everything that decides the rest of a run from a Keras model in training:
every model variable (weights, BatchNorm statistics, and the state of each layer's
``SeedGenerator``: Dropout and augmentation draws), the optimizer's variables (step count,
moments, learning rate), the state of EarlyStopping / ReduceLROnPlateau / keep-best (best
value, patience waited, best weights), the epochs finished, and each finished epoch's logs.
``restore`` puts it back into a freshly built and compiled model. The order of the training
images is not state: ``harness.run.train`` draws each epoch's permutation from (seed, epoch).

Files live under ``$BENCH_CACHE/checkpoints`` (default ``~/.cache/cifar10-bench``), one ``.npz``
per run identity and tracking store (``checkpoint_path``), written atomically: a temporary file,
flushed to disk, then renamed over the previous one, so a kill mid-write leaves the previous
checkpoint whole. A file that cannot be read or does not fit the model is ignored
(``CheckpointUnusable``, one line) and the run starts from epoch 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
SUFFIX = ".npz"
# Callback state, by class name: the attributes that carry a run across epochs (Keras resets them
# in on_train_begin, so they are put back after it). Attributes holding lists of arrays (best
# weights) are stored as arrays, the rest as JSON numbers.
CALLBACK_STATE = {
    "EarlyStopping": ("wait", "stopped_epoch", "best", "best_epoch", "best_weights"),
    "ReduceLROnPlateau": ("wait", "cooldown_counter", "best"),
    "KeepBest": ("best", "best_epoch", "best_weights"),
}
WEIGHT_LISTS = frozenset({"best_weights"})
INTEGER_STATE = frozenset({"wait", "stopped_epoch", "best_epoch", "cooldown_counter"})


class CheckpointUnusable(Exception):
    """A checkpoint that cannot be read, or does not belong to the model built for the run."""


@dataclass
class TrainingState:
    """A run after ``epoch`` finished epochs; ``stopped``: a callback ended training there."""

    epoch: int
    stopped: bool
    model: list[np.ndarray]
    optimizer: list[np.ndarray]
    # per callback: {"kind": class name, "values": {attr: number | None}, "weights": {attr: [arrays] | None}}
    callbacks: list[dict[str, Any]]
    logs: list[dict[str, float]]  # what each finished epoch reported (loss, val_accuracy, learning_rate, …)
    train_seconds: float  # time spent in fit so far, across every process that trained it
    run_id: str = ""  # the MLflow run that wrote it
    written_at: float = field(default_factory=time.time)


def checkpoint_root() -> Path:
    return Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "cifar10-bench")) / "checkpoints"


def checkpoint_path(recipe: str, seed: int, identity: str, tracking_uri: str, experiment: str) -> Path:
    """Where the run ``identity`` of this store keeps its checkpoint. The store is part of the key:
    two stores (two test sessions, a scratch store beside the real one) never resume each other's
    runs."""
    digest = hashlib.sha256(f"{tracking_uri}|{experiment}|{identity}".encode()).hexdigest()[:16]
    return checkpoint_root() / f"{recipe}-seed{seed}-{digest}{SUFFIX}"


# Capturing and restoring (Keras objects) ---------------------------------------------------------


def _values(variables) -> list[np.ndarray]:
    import keras

    return [np.array(keras.ops.convert_to_numpy(v.value)) for v in variables]


def capture(model, callbacks: list, *, epoch: int, stopped: bool, logs, train_seconds: float) -> TrainingState:
    """The state of ``model`` (compiled, in training) and of ``callbacks`` after ``epoch`` epochs."""
    states = []
    for callback in callbacks:
        names = CALLBACK_STATE.get(type(callback).__name__)
        if names is None:
            continue
        values, weights = {}, {}
        for name in names:
            value = getattr(callback, name, None)
            if name in WEIGHT_LISTS:  # arrays the callback replaces, never changes: no copy needed
                weights[name] = None if value is None else list(value)
            else:
                values[name] = None if value is None else float(value)
        states.append({"kind": type(callback).__name__, "values": values, "weights": weights})
    return TrainingState(
        epoch=epoch,
        stopped=stopped,
        model=_values(model.variables),
        optimizer=_values(model.optimizer.variables),
        callbacks=states,
        logs=[dict(entry) for entry in logs],
        train_seconds=train_seconds,
    )


def _check_shapes(what: str, variables, arrays: list[np.ndarray]) -> None:
    if len(variables) != len(arrays):
        raise CheckpointUnusable(f"it holds {len(arrays)} {what} variables, the model has {len(variables)}")
    for variable, array in zip(variables, arrays, strict=True):
        if tuple(variable.shape) != tuple(array.shape):
            raise CheckpointUnusable(
                f"{what} variable {variable.path} is {tuple(variable.shape)}, the checkpoint has {tuple(array.shape)}"
            )


def restore(model, callbacks: list, state: TrainingState) -> None:
    """Put ``state`` into ``model`` (built and compiled: its optimizer is built here) and into
    ``callbacks``' attributes. Everything is checked before anything is assigned, so a
    ``CheckpointUnusable`` leaves the model as it was built."""
    model.optimizer.build(model.trainable_variables)
    _check_shapes("model", model.variables, state.model)
    _check_shapes("optimizer", model.optimizer.variables, state.optimizer)
    kinds = [type(c).__name__ for c in callbacks if type(c).__name__ in CALLBACK_STATE]
    if kinds != [s["kind"] for s in state.callbacks]:
        raise CheckpointUnusable(f"it was written with callbacks {[s['kind'] for s in state.callbacks]}, not {kinds}")
    for variable, array in zip(model.variables, state.model, strict=True):
        variable.assign(array)
    for variable, array in zip(model.optimizer.variables, state.optimizer, strict=True):
        variable.assign(array)
    restore_callbacks(callbacks, state)


def restore_callbacks(callbacks: list, state: TrainingState) -> None:
    """Put the saved state of EarlyStopping / ReduceLROnPlateau / keep-best back (after their
    ``on_train_begin``, which resets it)."""
    saved = iter(state.callbacks)
    for callback in callbacks:
        if type(callback).__name__ not in CALLBACK_STATE:
            continue
        entry = next(saved)
        for name, value in entry["values"].items():
            if value is not None and name in INTEGER_STATE:
                value = int(value)
            setattr(callback, name, value)
        for name, arrays in entry["weights"].items():
            setattr(callback, name, arrays)


# On disk ----------------------------------------------------------------------------------------


def save(path: Path, state: TrainingState) -> None:
    """Write ``state`` to ``path`` atomically: a kill at any moment leaves either the previous
    file or this one, never a mixture."""
    arrays: dict[str, np.ndarray] = {}
    for index, array in enumerate(state.model):
        arrays[f"model/{index:05d}"] = array
    for index, array in enumerate(state.optimizer):
        arrays[f"optimizer/{index:05d}"] = array
    callbacks = []
    for number, entry in enumerate(state.callbacks):
        counts = {}
        for name, weights in entry["weights"].items():
            counts[name] = None if weights is None else len(weights)
            for index, array in enumerate(weights or []):
                arrays[f"callback/{number}/{name}/{index:05d}"] = array
        callbacks.append({"kind": entry["kind"], "values": entry["values"], "weights": counts})
    meta = {
        "version": FORMAT_VERSION,
        "epoch": state.epoch,
        "stopped": state.stopped,
        "model": len(state.model),
        "optimizer": len(state.optimizer),
        "callbacks": callbacks,
        "logs": state.logs,
        "train_seconds": state.train_seconds,
        "run_id": state.run_id,
        "written_at": state.written_at,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.partial"):  # left by a writer killed mid-write
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the rename: a lost machine keeps a whole file
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


# What reading a damaged file raises: truncated or zeroed zip, a stray .npy, bad JSON, a missing part.
UNREADABLE = (OSError, EOFError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile)


def _archive(path: Path):
    """``path`` opened as an ``.npz`` archive (never unpickling anything)."""
    archive = np.load(path, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CheckpointUnusable("not an .npz archive")
    return archive


def _meta(archive) -> dict[str, Any]:
    meta = json.loads(str(archive["meta"][()]))
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointUnusable(f"format version {meta.get('version')}, this harness reads {FORMAT_VERSION}")
    return meta


def load(path: Path) -> TrainingState:
    """The state saved at ``path``; ``CheckpointUnusable`` (naming why) for a file that is
    truncated, not an archive, of another format version, or missing a part."""
    try:
        with _archive(path) as archive:
            meta = _meta(archive)
            model = [archive[f"model/{i:05d}"] for i in range(meta["model"])]
            optimizer = [archive[f"optimizer/{i:05d}"] for i in range(meta["optimizer"])]
            callbacks = []
            for number, entry in enumerate(meta["callbacks"]):
                weights = {}
                for name, count in entry["weights"].items():
                    keys = [f"callback/{number}/{name}/{i:05d}" for i in range(count or 0)]
                    weights[name] = None if count is None else [archive[key] for key in keys]
                callbacks.append({"kind": entry["kind"], "values": entry["values"], "weights": weights})
            logs = [{k: float(v) for k, v in entry.items()} for entry in meta["logs"]]
            epoch = int(meta["epoch"])
    except CheckpointUnusable:
        raise
    except UNREADABLE as error:
        first = (str(error).strip().splitlines() or [""])[0][:200]
        raise CheckpointUnusable(f"unreadable: {type(error).__name__}: {first}") from None
    if epoch != len(logs) or epoch < 1:
        raise CheckpointUnusable(f"it says epoch {epoch} but holds the logs of {len(logs)}")
    if not all(math.isfinite(v) for entry in logs for k, v in entry.items() if "loss" in k):
        raise CheckpointUnusable("it holds a non-finite loss")
    return TrainingState(
        epoch=epoch,
        stopped=bool(meta["stopped"]),
        model=model,
        optimizer=optimizer,
        callbacks=callbacks,
        logs=logs,
        train_seconds=float(meta["train_seconds"]),
        run_id=str(meta.get("run_id", "")),
        written_at=float(meta.get("written_at", 0.0)),
    )


def finished_epochs(path: Path) -> int | None:
    """The epochs a run's checkpoint holds (only its small header is read), or None: no usable
    checkpoint. For the sweep's plan, which never imports Keras."""
    try:
        with _archive(path) as archive:
            return int(_meta(archive)["epoch"])
    except (CheckpointUnusable, *UNREADABLE):
        return None


def delete(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
