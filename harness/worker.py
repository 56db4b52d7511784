"""The process one run trains in: ``python -m harness.worker`` with a JSON spec on stdin.

The parent (``harness.executors``) has already created the MLflow child run; this process
loads the data, trains, and logs params, per-epoch metrics, test metrics and artifacts into
that run, then marks it FINISHED. Progress goes to the parent as JSON lines on the original
stdout; everything else written to stdout (Keras, TensorFlow) is sent to stderr, which the
parent keeps as the run's log. Any exception marks the run FAILED with its reason.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from harness import protocol
from harness.protocol import WorkerPayload
from harness.schema import (
    ARTIFACT_CONFUSION_CSV,
    METRIC_EPOCHS_RUN,
    METRIC_IMAGES_PER_SECOND,
    METRIC_PARAMS,
    METRIC_TEST_ACCURACY,
    METRIC_TEST_LOSS,
    METRIC_TRAIN_SECONDS,
    PARAM_COMMIT,
    PARAM_DETERMINISTIC,
    PARAM_DEVICE,
    PARAM_JIT_COMPILE,
    PARAM_PRECISION,
    PARAM_REPORTED_ACCURACY,
    PARAM_REPORTED_PARAMS,
    PARAM_WEIGHTS,
    TAG_WEIGHTS,
)
from harness.spool import SpoolingTracker


def flatten(prefix: str, value: Any) -> dict[str, str]:
    """Nested dicts/lists → flat ``a.b.c`` params, the form MLflow compares across runs."""
    if isinstance(value, dict):
        flat: dict[str, str] = {}
        for key, inner in value.items():
            flat.update(flatten(f"{prefix}.{key}" if prefix else str(key), inner))
        return flat
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
        flat = {}
        for index, inner in enumerate(value):
            flat.update(flatten(f"{prefix}.{index}", inner))
        return flat
    return {prefix: json.dumps(value) if isinstance(value, (list, tuple)) else str(value)}


def run_params(recipe, profile, seed: int, augmentation: dict, data_config, data_source: str) -> dict[str, str]:
    training = asdict(recipe.training)
    training["optimizer_options"] = dict(recipe.training.optimizer_options)
    params = {
        "recipe": recipe.name,
        "architecture": recipe.architecture,
        "seed": str(seed),
        "augmentation": recipe.augmentation,
        **flatten("training", training),
        **flatten("callbacks", [{"kind": c.kind, **dict(c.options)} for c in recipe.callbacks]),
        **flatten("augmentation_values", augmentation),
        **flatten("profile", asdict(profile)),
        **flatten("data", asdict(data_config)),
        "data.source": data_source,
        "source.report": recipe.source.report,
        "source.section": recipe.source.section,
        PARAM_REPORTED_ACCURACY: str(recipe.reported.test_accuracy),
        PARAM_REPORTED_PARAMS: str(recipe.reported.params),
    }
    return {key: value[:6000] for key, value in params.items()}


def backbone_weights(architecture: str, weights_dir: str | None, random_weights: bool) -> tuple[dict, str | None]:
    """Builder keyword arguments and the logged ``weights`` param for a transfer architecture
    (nothing for a CNN). The sweep already fetched the file; here it is only found and verified."""
    import architectures
    from harness.weights import BACKBONES, resolve

    backbone = architectures.get(architecture).backbone
    if backbone is None:
        return {}, None
    if random_weights:
        return {"weights": None}, "random initialisation (--random-weights, for tests only)"
    path = resolve(backbone, weights_dir, download=False)
    published = BACKBONES[backbone].file_hash or "no published hash"
    return {"weights": str(path)}, f"imagenet: {path.name} ({published})"


def run(payload: WorkerPayload, events: TextIO) -> None:
    def emit(event: protocol.Event) -> None:
        try:
            events.write(protocol.encode(event) + "\n")
            events.flush()
        except BrokenPipeError:
            _orphaned.set()
            raise KeyboardInterrupt(ORPHANED) from None

    # Where a run's wall time goes besides fit and evaluate, logged as overhead.* metrics.
    watch = Stopwatch(launched_at=payload.launched_at)
    import keras  # here, so the backend import counts as import time, not build time

    from harness.config import load_config
    from harness.data import CLASS_NAMES, load_cifar10, prepare_split
    from harness.environment import library_versions
    from harness.identity import config_hash
    from harness.plots import confusion_matrix_png
    from harness.tracking import Tracker
    from harness.train import planned_epochs, train_and_evaluate

    watch.lap("import")
    identity = payload.identity
    check_platform(identity.variant)
    config = load_config(payload.config_path)
    recipe = config.recipe(identity.recipe)
    profile = config.profile(identity.profile)
    if config_hash(config, recipe, profile, identity.variant) != identity.config_hash:
        raise RuntimeError(f"{config.path} changed during the sweep: {recipe.name} has a new config hash")
    watch.lap("data")  # so far: the config; the dataset follows
    run_id = payload.run_id
    # A store that refuses a write from here on costs no result: it is kept on disk (harness.spool).
    tracker = SpoolingTracker(Tracker(payload.tracking_uri, payload.experiment), run_id)
    tracker.get_run(run_id)  # the store is opened (for sqlite: engine, schema check) on first use
    watch.lap("store")

    random_weights = identity.variant.random_weights
    build_kwargs, weights_param = backbone_weights(recipe.architecture, payload.weights_dir, random_weights)

    data = load_cifar10(payload.data_path)
    if data.fingerprint != identity.data_fingerprint:
        raise RuntimeError(f"dataset changed during the sweep (fingerprint {data.fingerprint})")
    split = prepare_split(
        data,
        validation_size=config.data.validation_size,
        split_seed=config.data.split_seed,
        stratified=config.data.stratified,
        train_size=profile.train_size,
        validation_subset=profile.validation_size,
        test_size=profile.test_size,
    )
    watch.lap("data")  # weights check, dataset load, split
    augmentation = config.augmentation(recipe.augmentation)
    params = run_params(recipe, profile, identity.seed, augmentation, config.data, data.source)
    params.update(library_versions())
    params[PARAM_COMMIT] = payload.commit
    params[PARAM_PRECISION] = identity.variant.precision
    params[PARAM_JIT_COMPILE] = payload.jit_compile
    params[PARAM_DEVICE] = identity.variant.device
    params[PARAM_DETERMINISTIC] = str(identity.variant.deterministic)
    if weights_param is not None:
        params[PARAM_WEIGHTS] = weights_param
        tracker.set_tag(run_id, TAG_WEIGHTS, "random" if random_weights else "imagenet")
    params["data.train_images"] = str(len(split.y_train))
    params["data.validation_images"] = str(len(split.y_validation))
    params["data.test_images"] = str(len(split.y_test))
    tracker.log_params(run_id, params)
    if identity.variant.precision != "float32":
        keras.mixed_precision.set_global_policy(identity.variant.precision)  # before the model is built
    watch.lap("logging")
    emit(protocol.Start(epochs=planned_epochs(recipe, profile)))

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        tracker.log_metrics(run_id, logs, step=epoch)
        emit(protocol.Epoch(epoch=epoch, logs=logs))

    result = train_and_evaluate(
        recipe,
        profile,
        split,
        seed=identity.seed,
        augmentation=augmentation,
        on_epoch=on_epoch,
        build_kwargs=build_kwargs,
        jit_compile=payload.jit_compile,
        deterministic=identity.variant.deterministic,
    )
    # Inside train_and_evaluate but outside fit and predict: seeding, building, compiling (and
    # for frozen backbones, feature extraction, which is also logged as feature_seconds).
    watch.lap("build", less=result.train_seconds + result.evaluation_seconds)
    final = {
        METRIC_TEST_ACCURACY: result.test_accuracy,
        METRIC_TEST_LOSS: result.test_loss,
        METRIC_PARAMS: result.params,
        "trainable_params": result.trainable_params,
        METRIC_EPOCHS_RUN: result.epochs_run,
        METRIC_TRAIN_SECONDS: result.train_seconds,
        "evaluation_seconds": result.evaluation_seconds,
        METRIC_IMAGES_PER_SECOND: result.images_per_second,
        "seconds_per_epoch": result.train_seconds / max(result.epochs_run, 1),
    }
    if result.best_epoch is not None:
        final["best_epoch"] = result.best_epoch
    final.update({k: float(v) for k, v in result.extra.items() if isinstance(v, int | float)})  # feature cache
    tracker.log_metrics(run_id, final)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "model_summary.txt").write_text(result.model_summary)
        (folder / "result.json").write_text(json.dumps(asdict(result), indent=1))
        header = "true\\predicted," + ",".join(CLASS_NAMES)
        rows = [f"{name}," + ",".join(map(str, row)) for name, row in zip(CLASS_NAMES, result.confusion, strict=True)]
        (folder / ARTIFACT_CONFUSION_CSV).write_text("\n".join([header, *rows]) + "\n")
        confusion_matrix_png(
            result.confusion,
            CLASS_NAMES,
            folder / "confusion_matrix.png",
            title=f"{recipe.name} seed {identity.seed} [{profile.name}]: test accuracy {result.test_accuracy:.2%}",
        )
        tracker.log_artifacts(run_id, folder)
    watch.lap("logging")  # per-epoch logging is in train_seconds
    tracker.log_metrics(run_id, watch.seconds)
    tracker.finish(run_id)
    emit(
        protocol.Done(
            test_accuracy=result.test_accuracy, train_seconds=result.train_seconds, epochs_run=result.epochs_run
        )
    )


def check_platform(variant) -> None:
    """This process trains on what the run was planned for: the Keras backend and the device
    class are part of its identity. Turns on deterministic kernels when asked."""
    import keras

    from harness.devices import check_device, enable_determinism
    from harness.environment import accelerator_names
    from harness.errors import HarnessError

    backend = keras.backend.backend()
    if backend != variant.backend:
        raise HarnessError(
            f"this run was planned for Keras backend {variant.backend!r} but the worker's Keras uses {backend!r} "
            "(KERAS_BACKEND or keras.json differs between the sweep and its workers)"
        )
    check_device(variant.device, backend, accelerator_names(backend))
    if variant.deterministic:
        enable_determinism(backend)


class Stopwatch:
    """Wall time per phase of a run: each ``lap(phase)`` adds the time since the previous lap to
    ``seconds["overhead.<phase>_seconds"]`` (a phase may come back). Starts with the time from
    the parent's launch to now, as ``startup``."""

    def __init__(self, launched_at: float | None = None) -> None:
        self._mark = time.time()
        start = self._mark if launched_at is None else float(launched_at)
        self.seconds: dict[str, float] = {"overhead.startup_seconds": self._mark - start}

    def lap(self, phase: str, less: float = 0.0) -> None:
        """``less``: seconds of this lap already logged under another name (fit, predict)."""
        now = time.time()
        key = f"overhead.{phase}_seconds"
        self.seconds[key] = self.seconds.get(key, 0.0) + now - self._mark - less
        self._mark = now


_orphaned = threading.Event()
ORPHANED = "the bench process that started this run died"


def _interrupt(signum, frame):
    """SIGTERM ends a run the way Ctrl-C does: KILLED in MLflow, not a silent disappearance."""
    if _orphaned.is_set():
        raise KeyboardInterrupt(ORPHANED)
    raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")


def _watch_parent(parent_pid: int) -> None:
    """Stop this run when the bench process dies (even by ``kill -9``): an orphan that trained on
    would race the rerun for the same identity. It becomes KILLED, and the rerun trains it."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    _orphaned.set()
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> int:
    # Keep the protocol channel clean: events go to a private copy of stdout, and fd 1 (where
    # Keras and C++ libraries print) is pointed at stderr.
    signal.signal(signal.SIGTERM, _interrupt)
    faulthandler.enable()  # a native crash (SIGSEGV in a kernel) prints the Python stack that led there
    threading.Thread(target=_watch_parent, args=(os.getppid(),), name="watch-parent", daemon=True).start()
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    payload = WorkerPayload.from_json(sys.stdin.read())
    try:
        run(payload, events)
    except BaseException as error:  # noqa: BLE001  every failure must reach MLflow
        reason = f"{type(error).__name__}: {error}".strip()
        traceback.print_exc()
        with contextlib.suppress(OSError):  # the bench process may be gone: MLflow still hears
            events.write(protocol.encode(protocol.Error(reason=reason)) + "\n")
            events.flush()
        try:
            from harness.tracking import Tracker

            status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
            Tracker(payload.tracking_uri, payload.experiment).fail(payload.run_id, reason, status=status)
        except Exception:  # noqa: BLE001  the parent marks it from the exit code instead
            traceback.print_exc()
        return 130 if isinstance(error, KeyboardInterrupt) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
