"""The process one run trains in: ``python -m harness.run.worker`` with a JSON spec on stdin.

The parent (``harness.sweep.executors``) has already created the MLflow child run; this process
loads the data, trains, and logs params, per-epoch metrics, test metrics and artifacts into
that run, then marks it FINISHED. Progress goes to the parent as JSON lines on the original
stdout; everything else written to stdout (Keras, TensorFlow) is sent to stderr, which the
parent keeps as the run's log. Any exception marks the run FAILED with its reason.

Resume: the run checkpoints at the end of its epochs (``harness.run.checkpoint``, under
``$BENCH_CACHE/checkpoints``). A run stopped by a signal (Ctrl-C, SIGTERM, SIGKILL, a lost
machine) or by the time budget keeps its checkpoint, and the next command's run of the same
identity in the same store continues from it: a new child run, tagged with the epoch it resumed
from, whose curves hold every epoch once (the earlier ones are logged again from the
checkpoint). A run that finishes, or fails by an exception of its own, deletes its checkpoint.
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
from typing import TextIO

from harness.run import checkpoint, protocol
from harness.run.protocol import WorkerPayload
from harness.store.schema import (
    ARTIFACT_CONFUSION_CSV,
    EPOCH_METRICS,
    METRIC_BEST_EPOCH,
    METRIC_CHECKPOINT_SECONDS,
    METRIC_CHECKPOINTS,
    METRIC_EPOCHS_RUN,
    METRIC_EVALUATION_SECONDS,
    METRIC_IMAGES_PER_SECOND,
    METRIC_LEARNING_RATE,
    METRIC_OTHERS_CPU,
    METRIC_SECONDS_PER_EPOCH,
    METRIC_TEST_ACCURACY,
    METRIC_TEST_ACCURACY_BEFORE_BN,
    METRIC_TEST_LOSS,
    METRIC_TRAIN_SECONDS,
    OVERHEAD_PREFIX,
    PARAM_BN_RECALIBRATED,
    PARAM_COMMIT,
    PARAM_DETERMINISTIC,
    PARAM_DEVICE,
    PARAM_EVALUATION_BATCH,
    PARAM_JIT_COMPILE,
    PARAM_JIT_RESOLVED,
    PARAM_PARAMS,
    PARAM_PRECISION,
    PARAM_RAY_NODE,
    PARAM_TF32,
    PARAM_TRAINABLE_PARAMS,
    PARAM_WEIGHTS,
    TAG_ERROR,
    TAG_RESUMED_FROM_EPOCH,
    TAG_RESUMED_FROM_RUN,
    TAG_WEIGHTS,
)
from harness.store.spool import SpoolingTracker

# Callbacks that change the learning rate during training: only their runs log it per epoch
# (elsewhere it is the constant training.learning_rate param, and its chart would be a flat line).
LR_CHANGING_CALLBACKS = frozenset({"reduce_lr_on_plateau"})


def backbone_weights(architecture: str, weights_dir: str | None, random_weights: bool) -> tuple[dict, str | None]:
    """Builder keyword arguments and the logged ``weights`` param for a transfer architecture
    (nothing for a CNN). The sweep already fetched the file; here it is only found and verified."""
    import architectures
    from harness.run.weights import BACKBONES, resolve

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

    # Where a run's wall time goes besides fit and evaluate, logged as overhead/* metrics.
    watch = Stopwatch(launched_at=payload.launched_at)
    from harness.run.devices import prepare_compile_cache

    prepare_compile_cache()  # the folders of the compilation caches this process was started with
    import keras  # here, so the backend import counts as import time, not build time

    from harness.config import load_config
    from harness.environment import library_versions
    from harness.identity import config_hash
    from harness.results.plots import confusion_matrix_png
    from harness.run.data import CLASS_NAMES, load_cifar10, prepare_split
    from harness.run.devices import keras_dtype_policy
    from harness.run.train import planned_epochs, train_and_evaluate
    from harness.store.connection import store_failure
    from harness.store.recipe_params import recipe_params, truncated
    from harness.store.tracking import Tracker

    watch.lap("import")
    identity = payload.identity
    tf32 = check_platform(identity.variant)
    config = load_config(payload.config_path)
    recipe = config.recipe(identity.recipe)
    profile = config.profile(identity.profile)
    if config_hash(config, recipe, profile, identity.variant) != identity.config_hash:
        raise RuntimeError(f"{config.path} changed during the sweep: {recipe.name} has a new config hash")
    watch.lap("data")  # so far: the config; the dataset follows
    run_id = payload.run_id
    try:
        store = Tracker(payload.tracking_uri, payload.experiment)
        store.get_run(run_id)  # the store is opened (for sqlite: engine, schema check) on first use
    except Exception as error:  # noqa: BLE001  nothing was trained: the store's failure, not the run's
        raise StoreUnavailable(f"the worker could not open the tracking store: {store_failure(error)}") from error
    # A store that refuses a write from here on costs no result: it is kept on disk (harness.store.spool).
    tracker = SpoolingTracker(store, run_id)
    # The claim lives as long as this process trains (see _keep_claim); ended at the run's end.
    claim_kept = threading.Event()
    threading.Thread(target=_keep_claim, args=(store, run_id, claim_kept), name="claim", daemon=True).start()
    watch.lap("store")

    random_weights = identity.variant.random_weights
    build_kwargs, weights_param = backbone_weights(recipe.architecture, payload.weights_dir, random_weights)

    data = load_cifar10(payload.data_path)
    if data.fingerprint != identity.data_fingerprint:
        raise RuntimeError(f"dataset changed during the sweep (fingerprint {data.fingerprint})")
    split = prepare_split(data, **config.split_options(profile.name))
    watch.lap("data")  # weights check, dataset load, split
    augmentation = config.augmentation(recipe.augmentation)
    params = recipe_params(config, recipe, profile)
    params["seed"] = str(identity.seed)
    params["data.source"] = data.source
    params.update(library_versions())
    params[PARAM_COMMIT] = code_commit(payload.commit)
    if os.environ.get(protocol.NODE_ENVIRONMENT):
        params[PARAM_RAY_NODE] = os.environ[protocol.NODE_ENVIRONMENT]
    params[PARAM_PRECISION] = identity.variant.precision
    params[PARAM_JIT_COMPILE] = payload.jit_compile
    params[PARAM_DEVICE] = identity.variant.device
    params[PARAM_DETERMINISTIC] = str(identity.variant.deterministic)
    params[PARAM_TF32] = tf32
    if weights_param is not None:
        params[PARAM_WEIGHTS] = weights_param
        tracker.set_tag(run_id, TAG_WEIGHTS, "random" if random_weights else "imagenet")
    params["data.train_images"] = str(len(split.y_train))
    params["data.validation_images"] = str(len(split.y_validation))
    params["data.test_images"] = str(len(split.y_test))
    tracker.log_params(run_id, truncated(params))
    policy = keras_dtype_policy(identity.variant.precision)
    if policy != "float32":
        keras.mixed_precision.set_global_policy(policy)  # before the model is built
    watch.lap("logging")
    emit(protocol.Start(epochs=planned_epochs(recipe, profile)))

    logs_learning_rate = any(c.kind in LR_CHANGING_CALLBACKS for c in recipe.callbacks)

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        logged = {EPOCH_METRICS.get(key, key): value for key, value in logs.items()}
        if not logs_learning_rate:
            logged.pop(METRIC_LEARNING_RATE, None)
        tracker.log_metrics(run_id, logged, step=epoch)
        emit(protocol.Epoch(epoch=epoch, logs=logs))

    path = run_checkpoint(payload)
    resume = None
    if path.exists():
        try:
            resume = checkpoint.load(path)
        except checkpoint.CheckpointUnusable as problem:
            note(emit, f"checkpoint {path} ignored ({problem}): training from epoch 0")

    def on_resume(state, problem: str) -> None:
        if state is None:
            note(emit, f"checkpoint {path} ignored ({problem}): training from epoch 0")
            return
        tracker.set_tag(run_id, TAG_RESUMED_FROM_EPOCH, str(state.epoch))
        if state.run_id:
            tracker.set_tag(run_id, TAG_RESUMED_FROM_RUN, state.run_id)
        emit(protocol.Resumed(epoch=state.epoch))
        for epoch, logs in enumerate(state.logs, start=1):  # this run's curves hold every epoch, once
            on_epoch(epoch, logs)

    unwritable: list[str] = []

    def on_checkpoint(state) -> None:
        state.run_id = run_id
        try:
            checkpoint.save(path, state)
        except OSError as error:  # a full or read-only cache costs the resume, never the run
            if not unwritable:
                unwritable.append(str(error))
                note(emit, f"cannot write the checkpoint {path} ({error}): this run cannot resume if stopped")

    trained_models: list = []
    monitor = tracker.system_metrics(run_id) if payload.system_metrics else None
    try:
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
            on_trained=trained_models.append if payload.log_model else None,
            resume=resume,
            on_resume=on_resume,
            on_checkpoint=on_checkpoint,
            deadline=payload.deadline,
        )
    finally:
        if monitor is not None:
            monitor.finish()
    # Inside train_and_evaluate but outside fit and predict: seeding, building, compiling (and
    # for frozen backbones, feature extraction, which is also logged as feature_seconds). A
    # resumed run's train_seconds holds earlier processes' fit time too: only this one's is here.
    fit_here = result.train_seconds - result.resumed_train_seconds
    watch.lap("build", less=fit_here + result.evaluation_seconds)
    extra = dict(result.extra)
    settings = {
        PARAM_PARAMS: str(result.params),
        PARAM_TRAINABLE_PARAMS: str(result.trainable_params),
        PARAM_EVALUATION_BATCH: str(extra.pop("evaluation_batch")),
        PARAM_JIT_RESOLVED: "on" if extra.pop("jit_compile") else "off",
    }
    if profile.bn_recalibration_images:
        settings[PARAM_BN_RECALIBRATED] = str(result.bn_recalibrated_layers)
    tracker.log_params(run_id, settings)
    final = {  # the headline first: the compare view's default chart is the first metric
        METRIC_TEST_ACCURACY: result.test_accuracy,
        METRIC_TEST_LOSS: result.test_loss,
        METRIC_EPOCHS_RUN: result.epochs_run,
        METRIC_TRAIN_SECONDS: result.train_seconds,
        METRIC_EVALUATION_SECONDS: result.evaluation_seconds,
        METRIC_IMAGES_PER_SECOND: result.images_per_second,
        METRIC_SECONDS_PER_EPOCH: result.train_seconds / max(result.epochs_run, 1),
    }
    if result.best_epoch is not None:
        final[METRIC_BEST_EPOCH] = result.best_epoch
    if result.others_cpu is not None:
        final[METRIC_OTHERS_CPU] = result.others_cpu
    if result.test_accuracy_before_bn_recalibration is not None:
        final[METRIC_TEST_ACCURACY_BEFORE_BN] = result.test_accuracy_before_bn_recalibration
    # Checkpoints written and their time; frozen-backbone runs: feature extraction time and cache
    # hits (time/feature_seconds, features/…).
    final[METRIC_CHECKPOINTS] = extra.pop("checkpoints", 0)
    final[METRIC_CHECKPOINT_SECONDS] = extra.pop("checkpoint_seconds", 0.0)
    for key, value in extra.items():
        if isinstance(value, int | float):
            final[f"time/{key}" if key.endswith("_seconds") else f"features/{key.removeprefix('feature_')}"] = value
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
    if trained_models and tracker.offline is None:  # a model is not kept in the spool: too large
        tracker.log_keras_model(run_id, trained_models[0])
    watch.lap("logging")  # per-epoch logging is in train_seconds
    tracker.log_metrics(run_id, watch.seconds)
    finished = tracker.finish(run_id)  # None: kept in the spool; False: another run has this identity
    superseded = tracker.get_run(run_id).data.tags.get(TAG_ERROR, "superseded") if finished is False else ""
    # Finished, its results kept in the spool, or superseded by another run of its identity:
    # nothing is left to resume.
    checkpoint.delete(path)
    emit(
        protocol.Done(
            test_accuracy=result.test_accuracy,
            train_seconds=result.train_seconds,
            epochs_run=result.epochs_run,
            spooled=tracker.offline or "",
            superseded=superseded,
        )
    )
    claim_kept.set()


def _keep_claim(tracker, run_id: str, done: threading.Event) -> None:
    """Refresh the run's claim (its heartbeat) while this process trains, until ``done``. The
    claim lives as long as the worker that trains, not only its bench process: a bench process
    stopped (Ctrl-Z, SIGSTOP) while its worker trains on no longer lets another sweep take the
    seed over and train it twice. A missed beat only ages the claim."""
    from harness.store import claims

    while not done.wait(claims.HEARTBEAT_SECONDS):
        with contextlib.suppress(Exception):
            tracker.heartbeat([run_id])


def run_checkpoint(payload: WorkerPayload) -> Path:
    """Where this run keeps its checkpoint (``harness.run.checkpoint.checkpoint_path``)."""
    identity = payload.identity
    return checkpoint.checkpoint_path(
        identity.recipe, identity.seed, identity.identity, payload.tracking_uri, payload.experiment
    )


def note(emit, message: str) -> None:
    """A line for the person running the sweep, and for this run's log."""
    print(message, file=sys.stderr)
    emit(protocol.Note(message=message))


def code_commit(sent: str) -> str:
    """The commit of the code this process runs: its own checkout's, or where it has none (the
    code a Ray task received from the driver, shipped without its history) the driver's, ``sent``."""
    from harness.environment import git_commit

    own = git_commit(Path(__file__).resolve().parent)
    return sent if own == "unknown" else own


def check_platform(variant) -> str:
    """This process trains on what the run was planned for: the Keras backend and the device
    class are part of its identity. Turns on deterministic kernels when asked, and TF32 only
    for ``--precision tf32`` (float32 means float32); returns the TF32 switches as set."""
    import keras

    from harness.environment import accelerator_names
    from harness.errors import HarnessError
    from harness.run.devices import TF32, check_device, enable_determinism, set_tf32, tf32_setting

    backend = keras.backend.backend()
    if backend != variant.backend:
        raise HarnessError(
            f"this run was planned for Keras backend {variant.backend!r} but the worker's Keras uses {backend!r} "
            "(KERAS_BACKEND or keras.json differs between the sweep and its workers)"
        )
    check_device(variant.device, backend, accelerator_names(backend))
    if variant.deterministic:
        enable_determinism(backend)
    set_tf32(backend, variant.precision == TF32)
    return tf32_setting(backend)


class Stopwatch:
    """Wall time per phase of a run: each ``lap(phase)`` adds the time since the previous lap to
    ``seconds["overhead/<phase>_seconds"]`` (a phase may come back). Starts with the time from
    the parent's launch to now, as ``startup``."""

    def __init__(self, launched_at: float | None = None) -> None:
        self._mark = time.time()
        start = self._mark if launched_at is None else float(launched_at)
        self.seconds: dict[str, float] = {f"{OVERHEAD_PREFIX}startup_seconds": self._mark - start}

    def lap(self, phase: str, less: float = 0.0) -> None:
        """``less``: seconds of this lap already logged under another name (fit, predict)."""
        now = time.time()
        key = f"{OVERHEAD_PREFIX}{phase}_seconds"
        self.seconds[key] = self.seconds.get(key, 0.0) + now - self._mark - less
        self._mark = now


_orphaned = threading.Event()
ORPHANED = "the bench process that started this run died"


class StoreUnavailable(Exception):
    """The tracking store could not be opened from this process: nothing was trained."""


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
    except StoreUnavailable as error:  # the sweep hears it as a store error; the store cannot be told
        traceback.print_exc()
        with contextlib.suppress(OSError):
            events.write(protocol.encode(protocol.Error(reason=str(error), store=True)) + "\n")
            events.flush()
        return 1
    except BaseException as error:  # noqa: BLE001  every failure must reach MLflow
        # Closing the run must not be cut short by a second SIGTERM (the deadline's stop arriving
        # just after a pause, or the orphan watch): the parent's grace-period SIGKILL still ends a
        # worker that hangs here.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        from harness.run.train import Paused

        if isinstance(error, Paused):
            reason = f"{error}; its checkpoint is kept and the next command continues it"
            event: protocol.Event = protocol.Paused(epoch=error.epoch, epochs=error.epochs)
        else:
            reason = f"{type(error).__name__}: {error}".strip()
            traceback.print_exc()
            event = protocol.Error(reason=reason)
        if not isinstance(error, KeyboardInterrupt):
            # A failure of the run itself (an error, divergence) would come back from its
            # checkpoint: the next command starts it afresh. A stop (signal, deadline) keeps it.
            checkpoint.delete(run_checkpoint(payload))
        with contextlib.suppress(OSError):  # the bench process may be gone: MLflow still hears
            events.write(protocol.encode(event) + "\n")
            events.flush()
        try:
            from harness.store.spool import retry_while_locked
            from harness.store.tracking import Tracker

            status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
            # An orphan is the only process left to close its run now (else the next command
            # does): a sqlite store busy with another writer is waited for, not given up on.
            retry_while_locked(
                Tracker(payload.tracking_uri, payload.experiment).fail, payload.run_id, reason, status=status
            )
        except Exception:  # noqa: BLE001  the parent marks it from the exit code instead (or the next command)
            traceback.print_exc()
        return 130 if isinstance(error, KeyboardInterrupt) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
