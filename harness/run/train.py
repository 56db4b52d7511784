"""One training run: seed everything, build, compile, fit, recalibrate BatchNorm where the
profile asks, evaluate once on the test set.

Keras APIs only, so it runs under any Keras backend. This module does no tracking and no I/O;
``harness.run.worker`` calls it inside a fresh process and logs what it returns.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.config import Callback, Profile, Recipe
from harness.environment import OthersCpu
from harness.run.batch_norm import all_layers, recalibrate_batch_norm, trainable_batch_norms
from harness.run.checkpoint import TrainingState
from harness.run.data import NUM_CLASSES, Split
from harness.run.features import backbone_features, frozen_parts

STEPS_PER_EXECUTION = 16  # train steps per call into the compiled step: per-step Python dispatch, not
# the math, bounds small CNNs on a GPU. Callbacks here act per epoch, so nothing waits on a step, and
# the numbers are the same as one step per call. (Validation keeps the training batch: a larger one
# changes val_loss in its 7th digit, and val_loss drives EarlyStopping and keep-best.)
EVALUATION_BATCH = 1024  # images per step when predicting the test set (no gradients, so large)...
ACTIVATION_BUDGET = 2**28  # ...unless one layer's output for the batch would pass this many elements
PROBABILITY_FLOOR = 1e-7  # Keras' epsilon: cross-entropy clips probabilities here


def evaluation_batch(model, training_batch: int) -> int:
    """Images per predict step: EVALUATION_BATCH for the 32×32 CNNs, fewer where the largest
    layer output of one batch would pass ACTIVATION_BUDGET elements (1 GiB in float32). A
    224×224 VGG16 at 1,024 images needs 3.3 billion (13 GB; on TF/CPU the worker died from
    SIGSEGV). Never below the training batch, which already fitted with gradients."""
    largest = max((_elements_per_image(layer) for layer in all_layers(model)), default=1)
    return int(min(EVALUATION_BATCH, max(training_batch, ACTIVATION_BUDGET // max(largest, 1))))


def _elements_per_image(layer) -> int:
    try:
        shapes = layer.output.shape
    except (AttributeError, ValueError):  # a layer never called symbolically has no output
        return 1
    shapes = shapes if isinstance(shapes, list | tuple) and shapes and isinstance(shapes[0], tuple) else [shapes]
    return max(int(np.prod([d for d in shape[1:] if d is not None])) for shape in shapes)


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class RunResult:
    """Everything a run measured; plain Python types so it serialises as JSON."""

    history: dict[str, list[float]]
    epoch_seconds: list[float]
    test_loss: float
    test_accuracy: float
    confusion: list[list[int]]
    params: int
    trainable_params: int
    epochs_run: int
    epochs_planned: int
    train_seconds: float
    evaluation_seconds: float
    train_images: int
    images_per_second: float
    model_summary: str
    best_epoch: int | None = None
    resumed_from: int = 0  # the epochs a checkpoint brought (0: trained from the start)
    resumed_train_seconds: float = 0.0  # of train_seconds, the fit time of the processes before this one
    extra: dict[str, Any] = field(default_factory=dict)
    bn_recalibrated_layers: int = 0  # BatchNorm layers whose statistics were recomputed after training
    test_accuracy_before_bn_recalibration: float | None = None  # where any were
    # Other work's share of this machine's CPUs over the training epochs (OthersCpu, weighted by
    # epoch time; None: not measurable here). Above about 0.15 (run_cost.BUSY) its times read slow.
    others_cpu: float | None = None


def planned_epochs(recipe: Recipe, profile: Profile) -> int:
    """The recipe's epochs, cut by the profile's budget: its share of them (``epoch_fraction``,
    rounded up, at least 1), then its cap (``max_epochs``)."""
    epochs = recipe.training.epochs
    if profile.epoch_fraction is not None:
        epochs = max(1, math.ceil(round(epochs * profile.epoch_fraction, 6)))
    return epochs if profile.max_epochs is None else min(epochs, profile.max_epochs)


def make_optimizer(recipe: Recipe):
    import keras

    config = {"learning_rate": recipe.training.learning_rate, **dict(recipe.training.optimizer_options)}
    return keras.optimizers.get({"class_name": recipe.training.optimizer, "config": config})


def _keras_callbacks(callbacks: tuple[Callback, ...]) -> list:
    import keras

    built = []
    for callback in callbacks:
        options = dict(callback.options)
        if callback.kind == "early_stopping":
            built.append(keras.callbacks.EarlyStopping(**options))
        elif callback.kind == "reduce_lr_on_plateau":
            built.append(keras.callbacks.ReduceLROnPlateau(**options))
        elif callback.kind == "keep_best":
            built.append(_keep_best(**options))
        else:  # config validation makes this unreachable; keep the error explicit anyway
            raise ValueError(f"unknown callback kind {callback.kind!r}")
    return built


def _keep_best(monitor: str, mode: str = "auto"):
    """ModelCheckpoint(save_best_only=True) followed by loading the best: kept in memory."""
    import keras

    class KeepBest(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.monitor = monitor
            maximise = mode == "max" or (mode == "auto" and "acc" in monitor)
            self.better = (lambda a, b: a > b) if maximise else (lambda a, b: a < b)
            self.best: float | None = None
            self.best_weights = None
            self.best_epoch: int | None = None

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(self.monitor)
            if value is None or not math.isfinite(value):
                return
            if self.best is None or self.better(value, self.best):
                self.best, self.best_epoch = value, epoch + 1
                self.best_weights = self.model.get_weights()

        def on_train_end(self, logs=None):
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return KeepBest()


SHUFFLE_STREAM = 0x5EED  # keeps the shuffle's random stream apart from any other drawn from the seed
CHECKPOINT_SHARE = 0.05  # at most this share of training time goes to writing checkpoints


def epoch_permutation(seed: int, epoch: int, images: int) -> np.ndarray:
    """The order of the training images in ``epoch`` (from 0) of a run with ``seed``: a uniform
    random permutation that depends on nothing else, so a run resumed at any epoch sees the same
    batches as one that never stopped."""
    return np.random.default_rng([SHUFFLE_STREAM, seed, epoch]).permutation(images)


def epoch_batches(x: np.ndarray, y: np.ndarray, *, batch_size: int, seed: int, epoch: int):
    """One epoch of training batches as a ``keras.utils.PyDataset``: ``x`` and ``y`` in the order
    ``epoch_permutation`` gives, the last batch partial. Batches are gathered as they are asked
    for (no copy of the whole set per epoch)."""
    import keras

    order = epoch_permutation(seed, epoch, len(y))

    class EpochBatches(keras.utils.PyDataset):
        def __len__(self) -> int:
            return -(-len(order) // batch_size)

        def __getitem__(self, index: int):
            if not 0 <= index < len(self):
                raise IndexError(index)
            chosen = order[index * batch_size : (index + 1) * batch_size]
            return x[chosen], y[chosen]

    batches = EpochBatches()
    batches.order = order
    return batches


class RunData:
    """A run's training batches, epoch by epoch in ``epoch_permutation``'s order, and its
    validation batches in order, both of ``batch_size`` with the last one partial.

    One ``fit`` call per epoch must not rebuild what Keras builds once per call: under
    TensorFlow, numpy validation arrays are copied into a new tf.data pipeline at every call,
    a fixed cost per epoch that a fast GPU epoch would feel (``benchmarks/epoch_overhead.py``).
    So under TensorFlow the arrays become tensors once per run and each epoch is a
    tf.data pipeline of index batches gathered from them (as Keras' own array adapter does, with
    the order given); under the other backends, whose Keras adapters slice numpy arrays batch by
    batch anyway, an epoch is an ``epoch_batches`` PyDataset and validation the arrays."""

    def __init__(self, x, y, x_validation, y_validation, *, batch_size: int, seed: int) -> None:
        import keras

        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.tensorflow = keras.backend.backend() == "tensorflow"
        if self.tensorflow:
            import tensorflow as tf

            with tf.device("CPU:0"):  # in host memory, where tf.data gathers the batches (not on a GPU)
                self._train = (tf.constant(x), tf.constant(y))
                held_out = (tf.constant(x_validation), tf.constant(y_validation))
            self.validation = self._batches(np.arange(len(y_validation)), held_out)
        else:
            self.validation = (x_validation, y_validation)

    def _batches(self, order: np.ndarray, tensors):
        import tensorflow as tf

        indices = tf.data.Dataset.from_tensor_slices(order).batch(self.batch_size)
        pairs = tf.data.Dataset.zip((indices, tf.data.Dataset.from_tensors(tensors).repeat()))
        gathered = pairs.map(  # in parallel and in order, as Keras' array adapter gathers
            lambda index, data: (tf.gather(data[0], index), tf.gather(data[1], index)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        # Without tf.data's model-based autotuning: each epoch's iterator is destroyed when its
        # fit call returns, and the destructor joins the autotuning thread, which (TF 2.21) could
        # sleep out its optimisation period first (up to a minute): in the r004-step7 campaign run,
        # 5 of 10 epochs of ~47 s were followed by 29–40 s with the CPU idle, the main thread in
        # ~RootDataset::Iterator (gdb). AUTOTUNE above then means TF's default parallelism and the
        # prefetch buffer's own autotuner, which a gather of one batch needs no more than.
        options = tf.data.Options()
        options.autotune.enabled = False
        return gathered.prefetch(tf.data.AUTOTUNE).with_options(options)

    def epoch(self, epoch: int):
        """The training batches of ``epoch`` (from 0)."""
        if self.tensorflow:
            return self._batches(epoch_permutation(self.seed, epoch, len(self.y)), self._train)
        return epoch_batches(self.x, self.y, batch_size=self.batch_size, seed=self.seed, epoch=epoch)


class Paused(KeyboardInterrupt):
    """Training stopped at an epoch's end because the next epoch would pass the deadline; the
    run's checkpoint holds every finished epoch. A KeyboardInterrupt: the run ends KILLED, not
    FAILED, and its checkpoint is kept for the next command."""

    def __init__(self, epoch: int, epochs: int) -> None:
        super().__init__(f"paused at the time budget after epoch {epoch} of {epochs}")
        self.epoch, self.epochs = epoch, epochs


def _once_per_run(callbacks: list, model):
    """The run's callbacks for one ``fit`` call per epoch: Keras calls ``on_train_begin`` and
    ``on_train_end`` at every call, which would reset EarlyStopping's patience and restore
    keep-best weights each epoch; here the first ``on_train_begin`` goes through and
    ``on_train_end`` only when ``finish()`` is called."""
    import keras

    class OncePerRun(keras.callbacks.CallbackList):
        began = False

        def on_train_begin(self, logs=None):
            if not self.began:
                self.began = True
                super().on_train_begin(logs)

        def on_train_end(self, logs=None):
            pass

        def finish(self, logs=None):
            super().on_train_end(logs)

    return OncePerRun(callbacks, add_history=True, model=model)


# What each epoch's logs hold about the machine rather than the learning: a run repeated with the
# same seed learns the same and differs only in these.
TIMING_LOGS = frozenset({"epoch_seconds", "others_cpu"})


class _Bookkeeping:
    """The end of every epoch, after the recipe's callbacks: epoch time and learning rate into
    the logs, NaN stops training, a checkpoint (``on_checkpoint``), the epoch reported
    (``on_epoch``), and a pause when the next epoch would pass ``deadline``."""

    def __init__(self, *, on_epoch, on_checkpoint, deadline, epochs, logs, train_seconds, callbacks, extra) -> None:
        self.on_epoch, self.on_checkpoint, self.deadline, self.epochs = on_epoch, on_checkpoint, deadline, epochs
        self.logs: list[dict[str, float]] = logs  # every finished epoch's logs, resumed ones first
        self.prior_seconds = train_seconds  # fit time of the processes before this one
        self.callbacks = callbacks
        self.extra = extra
        self.fit_started = self.epoch_started = time.perf_counter()
        self.others = OthersCpu()  # what other work took of the CPUs during each epoch
        self.saved_at: float | None = None  # perf_counter when the last checkpoint was written
        self.save_seconds = 0.0  # how long the last one took
        self.saved_epoch = 0

    def train_seconds(self) -> float:
        return self.prior_seconds + time.perf_counter() - self.fit_started

    def epoch_starts(self) -> None:
        self.epoch_started = time.perf_counter()
        self.others.restart()

    def callback(self):
        import keras

        bookkeeping = self

        class Bookkeeping(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                bookkeeping.epoch_ended(self.model, epoch + 1, logs if logs is not None else {})

        return Bookkeeping()

    def _checkpoint(self, model, epoch: int) -> None:
        from harness.run.checkpoint import capture

        started = time.perf_counter()
        state = capture(
            model,
            self.callbacks,
            epoch=epoch,
            stopped=bool(model.stop_training),
            logs=self.logs,
            train_seconds=self.train_seconds(),
        )
        self.on_checkpoint(state)
        self.saved_at = time.perf_counter()
        self.save_seconds = self.saved_at - started
        self.saved_epoch = epoch
        self.extra["checkpoint_seconds"] = self.extra.get("checkpoint_seconds", 0.0) + self.save_seconds
        self.extra["checkpoints"] = self.extra.get("checkpoints", 0) + 1

    def epoch_ended(self, model, epoch: int, logs: dict) -> None:
        import keras

        seconds = time.perf_counter() - self.epoch_started
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        logs["epoch_seconds"] = seconds
        others = self.others.share()
        if others is not None:
            logs["others_cpu"] = others
        record = {k: float(v) for k, v in logs.items()}
        self.logs.append(record)
        finite = all(math.isfinite(v) for k, v in record.items() if "loss" in k)
        if not finite:
            model.stop_training = True
        elif self.on_checkpoint is not None and (
            self.saved_at is None or (time.perf_counter() - self.saved_at) * CHECKPOINT_SHARE >= self.save_seconds
        ):
            self._checkpoint(model, epoch)
        if self.on_epoch is not None:
            self.on_epoch(epoch, record)
        more = finite and not model.stop_training and epoch < self.epochs
        if more and self.deadline is not None and time.time() + seconds > self.deadline:
            if self.on_checkpoint is not None and self.saved_epoch != epoch:
                self._checkpoint(model, epoch)
            raise Paused(epoch, self.epochs)


def float32_output(model):
    """``model`` with its final softmax computed in float32 when the global dtype policy is mixed
    (Keras' mixed-precision guide): float16 probabilities lose the loss's from-logits shortcut
    and saturate. One place for every builder: the last layer's softmax becomes linear and a
    float32 ``Activation("softmax")`` follows it. Under float32 the model is returned as is."""
    import keras

    if keras.mixed_precision.global_policy().compute_dtype == "float32":
        return model
    last = model.layers[-1]
    if getattr(last, "activation", None) is not keras.activations.softmax:
        raise ValueError(f"{model.name}: the last layer ({last.name}) is not a softmax; cannot run it in float32")
    last.activation = keras.activations.linear
    softmax = keras.layers.Activation("softmax", dtype="float32", name="softmax_float32")
    return keras.Sequential([keras.Input(shape=model.input_shape[1:]), model, softmax], name=model.name)


def _summary_text(model) -> str:
    buffer = io.StringIO()
    model.summary(print_fn=lambda line, **_: buffer.write(line + "\n"), line_length=100)
    return buffer.getvalue()


@dataclass
class Assembled:
    """The model a run trains (augmentation layers in front, when the recipe augments) and what
    it counts; for a frozen backbone without augmentation, ``backbone`` computes the features
    that stand in for the images and ``model`` is only the head."""

    model: Any
    params: int
    trainable_params: int
    summary: str
    backbone: Any = None
    weights_id: str | None = None


def assemble(
    recipe: Recipe,
    *,
    seed: int,
    augmentation: dict[str, Any],
    x_train: np.ndarray,
    xla: bool,
    build_kwargs: dict[str, Any] | None = None,
) -> Assembled:
    """Seed everything and build the model ``train_and_evaluate`` trains, uncompiled: the
    recipe's architecture (its softmax in float32 under a mixed policy), and in front of it the
    augmentation layers, built for XLA when ``xla``."""
    import keras

    import architectures
    from harness.run.augment import build_augmentation

    keras.utils.set_random_seed(seed)
    kwargs = {**dict(recipe.architecture_options), **(build_kwargs or {})}
    parts = None if augmentation else frozen_parts(recipe.architecture, kwargs, seed)
    if parts is not None:
        backbone, model, weights_id = parts
        params = int(backbone.count_params() + model.count_params())
        summary = _summary_text(backbone) + "\n" + _summary_text(model)
    else:
        backbone, weights_id = None, None
        model = architectures.build(recipe.architecture, **kwargs)
        params = int(model.count_params())
        summary = _summary_text(model)
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    model = float32_output(model)
    preprocessing = build_augmentation(augmentation, seed=seed, x_train=x_train, xla=xla)
    if preprocessing:
        model = keras.Sequential(
            [keras.Input(shape=x_train.shape[1:]), *preprocessing, model], name=f"{model.name}_augmented"
        )
    return Assembled(model, params, trainable, summary, backbone, weights_id)


def train_and_evaluate(
    recipe: Recipe,
    profile: Profile,
    split: Split,
    *,
    seed: int,
    augmentation: dict[str, Any],
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    build_kwargs: dict[str, Any] | None = None,
    jit_compile: str = "auto",
    deterministic: bool = False,
    on_trained: Callable[[Any], None] | None = None,
    resume: TrainingState | None = None,
    on_resume: Callable[[TrainingState | None, str], None] | None = None,
    on_checkpoint: Callable[[TrainingState], None] | None = None,
    deadline: float | None = None,
) -> RunResult:
    """Train ``recipe`` on ``split`` with ``seed`` under ``profile``'s budget; evaluate once.

    ``jit_compile`` is "auto" (Keras' rule, ``harness.run.devices.resolve_jit_compile``), "on" or
    "off"; it is resolved before anything is built, so augmentation is built for it. Under a
    mixed dtype policy the output softmax runs in float32 (``float32_output``). ``on_trained``
    receives the trained Keras model after evaluation (to log it, for instance).

    Resume: ``on_checkpoint`` receives the run's state (``harness.run.checkpoint``) at the end of
    epochs (every one, unless writing it would take more than CHECKPOINT_SHARE of the time);
    ``resume``, such a state, is put back into the freshly built model before training, which
    continues at its next epoch, or does not train at all when a callback had stopped it.
    ``on_resume`` hears whether it was (state, "") or not (None, why: it did not fit the model;
    training then starts at epoch 0). ``deadline`` (a ``time.time()``): at an epoch's end, when
    the next epoch would pass it, the state is saved and ``Paused`` is raised.

    Where the profile sets ``bn_recalibration_images`` and the model has trainable BatchNorm
    layers, their statistics are recomputed after training (``recalibrate_batch_norm``): the
    callbacks and the per-epoch validation metrics saw what training left, so training is
    unchanged. The test accuracy before it is kept as ``test_accuracy_before_bn_recalibration``
    (a record of what it changed; nothing is chosen on the test set).
    """
    import keras

    from harness.environment import accelerator_names
    from harness.run.devices import resolve_jit_compile

    backend = keras.backend.backend()
    xla = resolve_jit_compile(
        jit_compile, backend=backend, accelerator=bool(accelerator_names(backend)), deterministic=deterministic
    )
    extra: dict[str, Any] = {}
    built = assemble(
        recipe, seed=seed, augmentation=augmentation, x_train=split.x_train, xla=xla, build_kwargs=build_kwargs
    )
    trained, params, trainable, summary = built.model, built.params, built.trainable_params, built.summary
    x_train, x_validation, x_test = split.x_train, split.x_validation, split.x_test
    if built.backbone is not None:
        # Frozen backbone, no augmentation: its features are the same in every seed. Compute them
        # once (or read them from the cache) and train only the head on them.
        x_train, x_validation, x_test = backbone_features(
            built.backbone, built.weights_id, (x_train, x_validation, x_test), extra
        )

    one_hot = recipe.training.loss == "categorical_crossentropy"

    def labels(y: np.ndarray) -> np.ndarray:
        return keras.utils.to_categorical(y, NUM_CLASSES) if one_hot else y

    trained.compile(
        optimizer=make_optimizer(recipe),
        loss=recipe.training.loss,
        metrics=["accuracy"],
        jit_compile=xla,
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    extra["jit_compile"] = int(bool(trained.jit_compile))  # what "auto" resolved to on this backend
    batch = evaluation_batch(trained, recipe.training.batch_size)
    extra["evaluation_batch"] = batch

    epochs = planned_epochs(recipe, profile)
    callbacks = _keras_callbacks(recipe.callbacks)
    first, prior_logs, prior_seconds = 0, [], 0.0
    if resume is not None:
        from harness.run.checkpoint import CheckpointUnusable, restore

        try:
            restore(trained, callbacks, resume)
        except CheckpointUnusable as problem:
            if on_resume is not None:
                on_resume(None, str(problem))
        else:
            first, prior_logs, prior_seconds = resume.epoch, list(resume.logs), resume.train_seconds
            if on_resume is not None:
                on_resume(resume, "")
    last = first if resume is not None and first and resume.stopped else epochs
    bookkeeping = _Bookkeeping(
        on_epoch=on_epoch,
        on_checkpoint=on_checkpoint,
        deadline=deadline,
        epochs=epochs,
        logs=prior_logs,
        train_seconds=prior_seconds,
        callbacks=callbacks,
        extra=extra,
    )
    run_callbacks = _once_per_run([*callbacks, bookkeeping.callback()], trained)
    if first:
        from harness.run.checkpoint import restore_callbacks

        run_callbacks.on_train_begin()  # resets EarlyStopping & co; their saved state goes back on
        restore_callbacks(callbacks, resume)
    # One fit call per epoch, over that epoch's own permutation (``RunData``): the order of the
    # images depends on (seed, epoch) alone, so a resumed run trains on the same batches.
    data = RunData(
        x_train,
        labels(split.y_train),
        x_validation,
        labels(split.y_validation),
        batch_size=recipe.training.batch_size,
        seed=seed,
    )
    for epoch in range(first, last):
        bookkeeping.epoch_starts()
        trained.fit(
            data.epoch(epoch),
            epochs=epoch + 1,
            initial_epoch=epoch,
            validation_data=data.validation,
            shuffle=False,
            callbacks=run_callbacks,
            verbose=0,
        )
        if trained.stop_training:
            break
    run_callbacks.finish()
    train_seconds = bookkeeping.train_seconds()
    history: dict[str, list[float]] = {}
    for logs in bookkeeping.logs:
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
    epoch_seconds = history.get("epoch_seconds", [])
    shared = [(logs["epoch_seconds"], logs["others_cpu"]) for logs in bookkeeping.logs if "others_cpu" in logs]
    others_cpu = sum(s * share for s, share in shared) / sum(s for s, _ in shared) if shared else None
    for epoch, loss in enumerate(history.get("loss", []), start=1):
        if not math.isfinite(loss):
            raise Diverged(f"diverged at epoch {epoch} (loss={loss})")

    recalibrated, accuracy_before = 0, None
    if profile.bn_recalibration_images and trainable_batch_norms(trained):
        # After training (callbacks saw the moving averages training left), before the one test
        # evaluation; the test accuracy without it is kept, as what the recalibration changed.
        accuracy_before = _test_metrics(trained, x_test, split.y_test, batch)[2]
        started = time.perf_counter()
        recalibrated = recalibrate_batch_norm(
            trained,
            x_train,
            batch_size=recipe.training.batch_size,
            images=profile.bn_recalibration_images,
            seed=seed,
        )
        extra["bn_recalibration_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    predictions, test_loss, test_accuracy = _test_metrics(trained, x_test, split.y_test, batch)
    evaluation_seconds = time.perf_counter() - started

    from sklearn.metrics import confusion_matrix

    confusion = confusion_matrix(split.y_test, predictions, labels=list(range(NUM_CLASSES)))
    if on_trained is not None:
        on_trained(trained)
    epochs_run = len(history.get("loss", []))
    best = next((c.best_epoch for c in callbacks if hasattr(c, "best_epoch")), None)
    return RunResult(
        history=history,
        epoch_seconds=epoch_seconds,
        test_loss=test_loss,
        test_accuracy=test_accuracy,
        confusion=confusion.tolist(),
        params=params,
        trainable_params=trainable,
        epochs_run=epochs_run,
        epochs_planned=epochs,
        train_seconds=train_seconds,
        resumed_from=first,
        resumed_train_seconds=prior_seconds,
        evaluation_seconds=evaluation_seconds,
        train_images=len(split.y_train),
        images_per_second=len(split.y_train) * epochs_run / train_seconds if train_seconds else 0.0,
        model_summary=summary,
        best_epoch=best,
        extra=extra,
        bn_recalibrated_layers=recalibrated,
        test_accuracy_before_bn_recalibration=accuracy_before,
        others_cpu=others_cpu,
    )


def _test_metrics(model, x_test: np.ndarray, y_test: np.ndarray, batch: int) -> tuple[np.ndarray, float, float]:
    """Predicted classes, cross-entropy and accuracy on the test set."""
    probabilities = np.asarray(model.predict(x_test, batch_size=batch, verbose=0))
    predictions = probabilities.argmax(axis=1)
    picked = probabilities[np.arange(len(y_test)), y_test]
    test_loss = float(-np.log(np.clip(picked, PROBABILITY_FLOOR, 1.0)).mean())
    return predictions, test_loss, float((predictions == y_test).mean())
