"""Resume inside a run: the shuffle, the checkpoint file, and a resumed run against one that never stopped.

In-process and fast; the same with real worker processes, ``kill -9`` and a rerun of the
command is in ``tests/test_reliability.py``.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from harness.config import Callback, load_config
from harness.run import checkpoint
from harness.run.data import prepare_split, synthetic_cifar10
from harness.run.train import TIMING_LOGS, Paused, epoch_batches, epoch_permutation, train_and_evaluate


@pytest.fixture(scope="module")
def split():
    return prepare_split(synthetic_cifar10(train=300, test=100, seed=1), validation_size=60, split_seed=0)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    from tests.conftest import TEST_CONFIG

    path = tmp_path_factory.mktemp("config") / "benchmarks.toml"
    path.write_text(TEST_CONFIG)
    return load_config(path)


@pytest.fixture
def every_epoch(monkeypatch):
    """A checkpoint at every epoch's end, however long the last one took (these epochs are tiny)."""
    import harness.run.train

    monkeypatch.setattr(harness.run.train, "CHECKPOINT_SHARE", 1e9)


# The three stateful callbacks at once: EarlyStopping that can never see an improvement (so it
# stops after exactly `patience` epochs past the first), ReduceLROnPlateau that halves the rate
# every epoch, and keep-best, which restores the best weights at the end.
STATEFUL = (
    Callback("early_stopping", (("min_delta", 1000.0), ("monitor", "val_loss"), ("patience", 3))),
    Callback(
        "reduce_lr_on_plateau", (("factor", 0.5), ("min_delta", 1000.0), ("monitor", "val_loss"), ("patience", 1))
    ),
    Callback("keep_best", (("monitor", "val_accuracy"),)),
)


def stateful_recipe(config):
    """tiny-b (augmentation: flips and rotations drawn from SeedGenerators) with STATEFUL."""
    return dataclasses.replace(config.recipes["tiny-b"], callbacks=STATEFUL)


def run(config, split, recipe, epochs: int, **kwargs):
    profile = dataclasses.replace(config.profiles["smoke"], max_epochs=epochs)
    return train_and_evaluate(
        recipe, profile, split, seed=2, augmentation=config.augmentation(recipe.augmentation), **kwargs
    )


def heard_into(heard: list):
    """An ``on_resume`` that notes (epoch resumed from or None, why not)."""
    return lambda state, why: heard.append((None if state is None else state.epoch, why))


def learned(result) -> dict:
    """What a run learned: everything but wall times."""
    history = {k: v for k, v in result.history.items() if k not in TIMING_LOGS}
    return {"history": history, "test": (result.test_accuracy, result.test_loss), "confusion": result.confusion}


def test_each_epoch_is_a_fresh_uniform_shuffle_of_every_image():
    images, batch = 10, 4
    orders = [epoch_permutation(seed=0, epoch=e, images=images) for e in range(3000)]
    for order in orders[:50]:
        assert sorted(order) == list(range(images))  # every image once per epoch
    assert len({tuple(o) for o in orders[:50]}) == 50  # a new order every epoch
    assert not np.array_equal(epoch_permutation(0, 5, images), epoch_permutation(1, 5, images))  # per seed
    assert np.array_equal(epoch_permutation(3, 7, images), epoch_permutation(3, 7, images))  # from (seed, epoch) alone
    # Uniform: where image 0 lands is spread evenly over the 10 positions (300 expected each; a
    # chi-square of 9 degrees of freedom above 27.9 has p < 0.001).
    counts = np.bincount([int(np.flatnonzero(o == 0)[0]) for o in orders], minlength=images)
    assert ((counts - 300) ** 2 / 300).sum() < 27.9, counts
    # The batches follow the order, rows and labels together, the last batch partial.
    x = np.arange(images, dtype="float32").reshape(images, 1) * 10
    y = np.arange(images)
    batches = epoch_batches(x, y, batch_size=batch, seed=0, epoch=4)
    assert len(batches) == 3 and [len(batches[i][1]) for i in range(3)] == [4, 4, 2]
    seen = np.concatenate([batches[i][1] for i in range(3)])
    assert np.array_equal(seen, epoch_permutation(0, 4, images))
    assert all(np.array_equal(batches[i][0][:, 0], batches[i][1] * 10) for i in range(3))
    with pytest.raises(IndexError):
        batches[3]


def test_every_backend_trains_on_the_same_batches():
    """Under TensorFlow an epoch is a tf.data pipeline (RunData), elsewhere a PyDataset: the same
    batches in the same order, and validation in order, the last batch partial."""
    import keras

    from harness.run.train import RunData

    x = np.arange(10, dtype="float32").reshape(10, 1) * 10
    y = np.arange(10)
    data = RunData(x, y, x[:5] + 1, y[:5], batch_size=4, seed=3)
    assert data.tensorflow == (keras.backend.backend() == "tensorflow")
    for epoch in (0, 6):
        portable = epoch_batches(x, y, batch_size=4, seed=3, epoch=epoch)
        batches = [(np.asarray(a), np.asarray(b)) for a, b in data.epoch(epoch)] if data.tensorflow else None
        expected = [portable[i] for i in range(len(portable))]
        if batches is not None:
            assert len(batches) == len(expected) == 3
            for (xa, ya), (xb, yb) in zip(batches, expected, strict=True):
                assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    if data.tensorflow:
        validation = [np.asarray(b) for _, b in data.validation]
        assert [list(v) for v in validation] == [[0, 1, 2, 3], [4]]
        # Without tf.data's autotuning thread, which each epoch's iterator joined at the end of its
        # fit call: up to 40 s idle after an epoch in the campaign (docs/performance.md).
        assert data.epoch(0).options().autotune.enabled is False and data.validation.options().autotune.enabled is False


def test_a_resumed_run_ends_exactly_as_one_that_never_stopped(config, split, tmp_path, every_epoch):
    """Resumed after each epoch, through a checkpoint file: the same curves, test accuracy and
    confusion matrix, to the last bit (dropout, augmentation draws, optimizer moments, the
    learning rate ReduceLROnPlateau lowered, keep-best's best weights and EarlyStopping's wait)."""
    recipe = stateful_recipe(config)
    states = []
    whole = run(config, split, recipe, 8, on_checkpoint=states.append)
    assert whole.epochs_run == 4  # EarlyStopping: the first epoch, then patience 3
    assert whole.history["learning_rate"] == pytest.approx([0.001, 0.0005, 0.00025, 0.000125])
    assert [s.epoch for s in states] == [1, 2, 3, 4] and states[-1].stopped
    for state in states:
        path = tmp_path / f"after-{state.epoch}.npz"
        checkpoint.save(path, state)
        heard: list = []
        resumed = run(config, split, recipe, 8, resume=checkpoint.load(path), on_resume=heard_into(heard))
        assert heard == [(state.epoch, "")]
        assert resumed.resumed_from == state.epoch and resumed.epochs_run == 4
        assert learned(resumed) == learned(whole), f"resumed after epoch {state.epoch}"


def test_the_random_state_is_what_makes_a_resumed_run_exact(config, split, every_epoch):
    """The check above can fail: the same checkpoint without the SeedGenerators' state (Dropout
    and augmentation draws restart at their first values) gives another run."""
    recipe = stateful_recipe(config)
    states = []
    whole = run(config, split, recipe, 8, on_checkpoint=states.append)
    state = states[1]
    paths = [v.path for v in _built_variables(config, recipe)]
    seeds = [i for i, path in enumerate(paths) if "seed_generator" in path]
    assert seeds, paths
    forgetful = dataclasses.replace(state, model=[a.copy() for a in state.model])
    for index in seeds:
        forgetful.model[index] = np.array([forgetful.model[index][0], 0], dtype=forgetful.model[index].dtype)
    assert learned(run(config, split, recipe, 8, resume=forgetful)) != learned(whole)


def _built_variables(config, recipe):
    from harness.run.train import assemble

    augmentation = config.augmentation(recipe.augmentation)
    images = np.zeros((2, 32, 32, 3), "float32")
    return assemble(recipe, seed=2, augmentation=augmentation, x_train=images, xla=False).model.variables


def test_a_checkpoint_of_another_model_is_ignored_and_training_starts_at_epoch_0(config, split):
    states = []
    run(config, split, config.recipes["tiny-a"], 2, on_checkpoint=states.append)
    other = dataclasses.replace(config.recipes["tiny-a"], architecture="r004_step2")
    heard: list = []
    result = run(config, split, other, 2, resume=states[0], on_resume=heard_into(heard))
    [(epoch, why)] = heard
    assert epoch is None and "variables" in why
    assert result.resumed_from == 0 and learned(result) == learned(run(config, split, other, 2))


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # a partial file (the old format without atomic writes)
        lambda data: b"\0" * len(data),  # zeroed blocks after a crash
        lambda data: b"not a checkpoint",
    ],
)
def test_a_corrupt_or_partial_checkpoint_is_refused_in_one_line(config, split, tmp_path, damage):
    states = []
    run(config, split, config.recipes["tiny-a"], 1, on_checkpoint=states.append)
    path = tmp_path / "run.npz"
    checkpoint.save(path, states[0])
    assert checkpoint.finished_epochs(path) == 1
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(checkpoint.CheckpointUnusable) as refused:
        checkpoint.load(path)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 300
    assert checkpoint.finished_epochs(path) is None


def test_a_kill_mid_write_leaves_the_previous_checkpoint_whole(config, split, tmp_path, monkeypatch, every_epoch):
    states = []
    run(config, split, config.recipes["tiny-a"], 2, on_checkpoint=states.append)
    path = tmp_path / "run.npz"
    checkpoint.save(path, states[0])

    def dies_half_way(handle, **arrays):
        handle.write(b"PK\3\4 half an archive")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(np, "savez", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, states[1])
    assert checkpoint.load(path).epoch == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]  # no temporary file left behind


def test_the_deadline_pauses_at_an_epoch_end_with_a_checkpoint(config, split):
    """When the next epoch would end past the deadline, training stops after saving this one;
    resuming from it gives the run that never stopped."""
    recipe = config.recipes["tiny-a"]
    saved = []
    with pytest.raises(Paused) as paused:
        run(config, split, recipe, 5, on_checkpoint=saved.append, deadline=time.time() + 0.01)
    assert (paused.value.epoch, paused.value.epochs) == (1, 5) and saved[-1].epoch == 1
    resumed = run(config, split, recipe, 5, resume=saved[-1], deadline=time.time() + 3600)
    assert learned(resumed) == learned(run(config, split, recipe, 5))


def test_checkpoints_take_at_most_a_small_share_of_training_time(config, split):
    """A checkpoint that is slow to write (a large model on a fast GPU) is skipped at the epoch
    ends that would spend more than CHECKPOINT_SHARE of the time on checkpoints."""
    written = []

    def slow(state):
        time.sleep(0.5)
        written.append(state.epoch)

    result = run(config, split, config.recipes["tiny-a"], 4, on_checkpoint=slow)
    assert result.epochs_run == 4 and written == [1]  # the next one is due 10 s (0.5 / 5 %) later
