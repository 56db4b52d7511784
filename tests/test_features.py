"""Frozen-backbone recipes: features computed once, cached on disk, reused by every seed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from architectures import registry
from harness.config import load_config
from harness.run.data import prepare_split, synthetic_cifar10
from harness.run.features import cache_root, cached_features
from harness.run.train import train_and_evaluate


def frozen_toy(*, input_shape=(32, 32, 3), num_classes=10, weights=None, part="model"):
    """A small frozen conv 'backbone' and a trainable Dense head, splittable like the transfer builders."""
    import keras
    from keras import layers

    def features():
        backbone = keras.Sequential(
            [keras.Input(shape=input_shape), layers.Conv2D(4, 3, strides=4, activation="relu"), layers.Flatten()],
            name="toy_backbone",
        )
        backbone.trainable = False
        return backbone

    def head(shape):
        return keras.Sequential(
            [keras.Input(shape=shape), layers.Dense(num_classes, activation="softmax")], name="toy_head"
        )

    if part == "features":
        return features()
    if part == "head":
        return head((8 * 8 * 4,))
    backbone = features()
    return keras.Sequential([backbone, head(backbone.output_shape[1:])], name="frozen_toy")


@pytest.fixture
def toy(monkeypatch, tmp_path):
    monkeypatch.setitem(
        registry._REGISTRY,
        "frozen_toy",
        registry.Architecture("frozen_toy", frozen_toy, "toy", __name__, backbone="vgg16"),
    )
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def split():
    return prepare_split(synthetic_cifar10(train=300, test=100, seed=2), validation_size=60, split_seed=0)


def test_first_seed_fills_the_cache_and_later_seeds_reuse_it(toy, split, tmp_path):
    from tests.conftest import TEST_CONFIG

    path = tmp_path / "benchmarks.toml"
    path.write_text(TEST_CONFIG)
    config = load_config(path)
    recipe = dataclasses.replace(config.recipes["tiny-a"], architecture="frozen_toy")
    profile = config.profiles["smoke"]

    first = train_and_evaluate(recipe, profile, split, seed=0, augmentation={})
    assert (first.extra["feature_cache_misses"], first.extra["feature_cache_hits"]) == (3, 0)
    assert len(list(cache_root().glob("*.npy"))) == 3
    again = train_and_evaluate(recipe, profile, split, seed=0, augmentation={})
    assert (again.extra["feature_cache_misses"], again.extra["feature_cache_hits"]) == (0, 3)
    # Same seed from cached features: the identical result.
    assert again.test_accuracy == first.test_accuracy and again.history["loss"] == first.history["loss"]
    assert first.params == frozen_toy().count_params() and first.trainable_params == 256 * 10 + 10

    other = train_and_evaluate(recipe, profile, split, seed=1, augmentation={})
    assert other.extra["feature_cache_hits"] == 3
    assert other.history["loss"] != first.history["loss"]  # the head still depends on the seed


def test_augmented_recipes_never_use_cached_features(toy, split, tmp_path):
    from tests.conftest import TEST_CONFIG

    path = tmp_path / "benchmarks.toml"
    path.write_text(TEST_CONFIG)
    config = load_config(path)
    recipe = dataclasses.replace(config.recipes["tiny-b"], architecture="frozen_toy")
    result = train_and_evaluate(
        recipe, config.profiles["smoke"], split, seed=0, augmentation=config.augmentation("flips")
    )
    assert "feature_cache_hits" not in result.extra
    assert not cache_root().exists() or not list(cache_root().glob("*.npy"))


def test_a_different_array_or_weights_is_a_different_entry(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    calls = []

    def compute(x):
        calls.append(len(x))
        return x.reshape(len(x), -1)[:, :3]

    a = np.zeros((4, 32, 32, 3), np.float32)
    b = np.ones((4, 32, 32, 3), np.float32)
    cached_features("k", "w1", a, compute)
    cached_features("k", "w1", a, compute)
    cached_features("k", "w1", b, compute)
    cached_features("k", "w2", a, compute)
    assert calls == [4, 4, 4]
    assert not list(tmp_path.rglob("*.partial"))  # written atomically


def test_a_cache_that_cannot_be_written_is_a_warning_not_a_failure(monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("BENCH_CACHE", str(blocker))
    x = np.zeros((4, 32, 32, 3), np.float32)
    features, hit = cached_features("k", "w", x, lambda a: a.reshape(len(a), -1)[:, :3] + 1)
    assert not hit and features.shape == (4, 3) and float(features.min()) == 1.0
    assert "could not cache features" in capsys.readouterr().err


def test_bench_cache_lists_and_clears_by_backbone_key(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from harness.cli import main

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    cached_features("vgg16-aaa", "w", np.zeros((5, 32, 32, 3), np.float32), lambda a: a.reshape(len(a), -1)[:, :7])
    cached_features("densenet-bbb", "w", np.ones((3, 32, 32, 3), np.float32), lambda a: a.reshape(len(a), -1)[:, :2])
    (cache_root() / "vgg16-aaa-0123456789abcdef-0123456789abcdef01234567.npy.partial").write_bytes(b"half")

    runner = CliRunner()
    listed = runner.invoke(main, ["cache"])
    assert listed.exit_code == 0, listed.output
    assert "vgg16-aaa" in listed.output and "5 × 7" in listed.output and "interrupted write" in listed.output
    assert "densenet-bbb" in listed.output and "3 × 2" in listed.output and "3 file(s)" in listed.output

    cleared = runner.invoke(main, ["cache", "--clear", "--match", "vgg16*"])
    assert cleared.exit_code == 0 and "deleted 2 file(s)" in cleared.output
    assert sorted(p.name.split("-")[0] for p in cache_root().iterdir()) == ["densenet", "densenet"]  # .npy, .lock
    assert "no cached features" in runner.invoke(main, ["cache", "--match", "vgg16*"]).output


@pytest.mark.slow
def test_concurrent_seeds_extract_the_features_once(tmp_path):
    """Two processes (two seeds under --jobs 2) ask for the same features at once: one extracts
    them, the other waits for the lock and reads the cached file."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import os, sys, time
        import numpy as np
        os.environ["BENCH_CACHE"] = {str(tmp_path / "cache")!r}
        from harness.run.features import cached_features

        def compute(x):
            with open({str(tmp_path / "computed")!r}, "a") as log:
                log.write("x")
            time.sleep(2)  # long enough that the other process asks while this one computes
            return x.reshape(len(x), -1)[:, :3]

        features, hit = cached_features("k", "w", np.zeros((4, 32, 32, 3), np.float32), compute)
        print("hit" if hit else "miss", features.shape)
        """
    )
    processes = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = sorted(p.communicate(timeout=60)[0].strip() for p in processes)
    assert outputs == ["hit (4, 3)", "miss (4, 3)"]
    assert (tmp_path / "computed").read_text() == "x"
