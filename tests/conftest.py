"""Shared fixtures: small synthetic CIFAR-shaped data and a compact benchmarks file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
REAL_CONFIG = REPO / "benchmarks.toml"
REAL_DATA = REPO.parent / "shared" / "data" / "cifar10.npz"

TEST_CONFIG = """
[data]
validation_size = 100
stratified = true
split_seed = 7

[profiles.smoke]
description = "test budget: 200 train / 50 validation / 100 test images, 1 epoch"
max_epochs = 1
train_size = 200
validation_size = 50
test_size = 100

[suites]
small = ["tiny-*"]

[augmentations.flips]
horizontal_flip = true
rotation_range = 10

[[recipe]]
name = "tiny-a"
architecture = "r004_step1"
summary = "baseline"
source = { report = "004_ad376a161039476f.txt", section = "1)" }
reported = { test_accuracy = 0.6207, params = 92074 }
training = { optimizer = "adam", learning_rate = 0.001, loss = "sparse_categorical_crossentropy", batch_size = 64, epochs = 30 }

[[recipe]]
name = "tiny-b"
base = "tiny-a"
summary = "augmented, one-hot loss, early stopping"
source = { report = "004_ad376a161039476f.txt", section = "10)" }
augmentation = "flips"
training = { loss = "categorical_crossentropy" }
callbacks = [{ kind = "early_stopping", monitor = "val_loss", patience = 2 }]
"""


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """One cache for the whole session (probes, features): never the user's, and a probe made
    by one test's sweep serves the next. Probes time calls of 0.2 s, not 2 s: a test's sweep
    prints an estimate but no test checks its accuracy (tests/test_cost.py tests the probe)."""
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("BENCH_CACHE", str(tmp_path_factory.mktemp("bench-cache")))
        environment.setenv("BENCH_PROBE_SECONDS", "0.2")
        yield


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch):
    """Tests never write to a user's store or read their dataset setting, nor a terminal's size:
    pytest-xdist's workers (pytest -n 3) are given COLUMNS=80, which would wrap the one-line
    messages the tests read (a pipe's width is COLUMNS when set, else the full table)."""
    for name in ("MLFLOW_TRACKING_URI", "BENCH_DATA", "BENCH_CONFIG", "COLUMNS", "LINES"):
        monkeypatch.delenv(name, raising=False)

    def never(url: str) -> bool:  # a test never opens a browser on a developer's desktop
        raise AssertionError(f"a test tried to open {url} in a browser")

    monkeypatch.setattr("harness.cli.ui.open_in_browser", never)
    # This machine in words is cached per process; a test that fakes a GPU (PATH's nvidia-smi, the
    # backend) must not leave the next test's estimates keyed to that GPU.
    from harness.cost.probe import machine_words

    machine_words.cache_clear()
    yield
    machine_words.cache_clear()


@pytest.fixture
def synthetic_npz(tmp_path: Path) -> Path:
    from harness.run.data import save_npz, synthetic_cifar10

    return save_npz(synthetic_cifar10(train=400, test=150, seed=3), tmp_path / "synthetic.npz")


@pytest.fixture
def test_config(tmp_path: Path) -> Path:
    path = tmp_path / "benchmarks.toml"
    path.write_text(TEST_CONFIG)
    return path


def pytest_collection_modifyitems(config, items):
    """For ``pytest -n 3`` (the README's command: three processes on two cores, because the slow
    tests spend a sixth of their time waiting on servers, signals and budgets, not computing):
    the slow tests are handed out first, so the last minutes are not one long test running while
    the others idle; and every Ray test stays in one process (two local Ray clusters at once
    would contend for the same machine's ports and cores). The order changes nothing else: every test sets up its own."""
    for item in items:
        if Path(str(item.fspath)).name.startswith("test_ray_"):
            item.add_marker(pytest.mark.xdist_group("ray"))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
