"""Shared fixtures: small synthetic CIFAR-shaped data and a compact benchmarks file."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
REAL_CONFIG = REPO / "benchmarks.toml"
REAL_DATA = REPO.parent / "shared" / "data" / "cifar10.npz"

SYNTHETIC = {"train": 400, "test": 150, "seed": 3}  # the synthetic_npz fixture's images
ISOLATED = ("MLFLOW_TRACKING_URI", "BENCH_DATA", "BENCH_CONFIG", "COLUMNS", "LINES")  # never read from the user

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


def session_root(tmp_path_factory) -> Path:
    """The temporary folder every process of this test session shares: pytest-xdist's workers
    each have their own base folder inside it; without xdist, the base folder."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """One cache for the whole session, shared by pytest-xdist's processes (probes, features,
    compilation caches): never the user's, and a probe made by one test's sweep serves the next
    test's, in any process (the probe cache is written under a file lock). Probes time calls of
    0.2 s, not 2 s: a test's sweep prints an estimate but no test checks its accuracy
    (tests/test_cost.py tests the probe)."""
    cache = session_root(tmp_path_factory) / "bench-cache"
    cache.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("BENCH_CACHE", str(cache))
        environment.setenv("BENCH_PROBE_SECONDS", "0.2")
        yield


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch):
    """Tests never write to a user's store or read their dataset setting, nor a terminal's size:
    pytest-xdist's workers (pytest -n 4) are given COLUMNS=80, which would wrap the one-line
    messages the tests read (a pipe's width is COLUMNS when set, else the full table)."""
    for name in ISOLATED:
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

    return save_npz(synthetic_cifar10(**SYNTHETIC), tmp_path / "synthetic.npz")


# Sweeps several tests start from, each trained once per session (``shared_sweep``):
# - "smoke": 2 recipes × 2 seeds of TEST_CONFIG, two runs at once, under TensorFlow
#   (the smoke test, the MLflow UI test, the README-block test, the Ray comparison, TF32's float32);
# - "jax": 2 recipes × 1 seed under KERAS_BACKEND=jax (the JAX backend test, TF32's float32 under JAX).
SMOKE_SWEEP = ["all", "--profile", "smoke", "--seeds", "2", "--jobs", "2"]
SHARED_SWEEPS = {"smoke": (SMOKE_SWEEP, "tensorflow"), "jax": (["all", "--profile", "smoke", "--seeds", "1"], "jax")}


@dataclasses.dataclass(frozen=True)
class SharedSweep:
    store: str  # the copy's tracking URI (sqlite:///…/mlflow.db)
    output: str  # what the sweep printed
    exit_code: int


def _train_shared_sweep(folder: Path, arguments: list[str], backend: str) -> tuple[str, int]:
    """Run ``bench <arguments>`` in ``folder`` on TEST_CONFIG and the synthetic images, in this
    process (the sweep never imports a backend) with its workers under ``backend``."""
    from click.testing import CliRunner

    from harness.cli import main
    from harness.cost.probe import machine_words
    from harness.run.data import save_npz, synthetic_cifar10

    (folder / "benchmarks.toml").write_text(TEST_CONFIG)
    data = save_npz(synthetic_cifar10(**SYNTHETIC), folder / "synthetic.npz")
    base = ["--config", str(folder / "benchmarks.toml"), "--data", str(data)]
    with pytest.MonkeyPatch.context() as environment:
        for name in ISOLATED:
            environment.delenv(name, raising=False)
        environment.setenv("KERAS_BACKEND", backend)
        environment.chdir(folder)
        machine_words.cache_clear()  # it names the backend: the test that asked goes on under its own
        try:
            result = CliRunner().invoke(main, [*base, *arguments])
        finally:
            machine_words.cache_clear()
    return result.output, result.exit_code


@pytest.fixture(scope="session")
def _shared_sweeps(tmp_path_factory):
    """``get(name)``: the folder of SHARED_SWEEPS[name], trained once per test session and shared
    by pytest-xdist's processes: the first to need it trains it under a file lock in their common
    temporary folder, the others wait and reuse it. Tests never use it in place: ``shared_sweep``
    gives each its own copy."""
    from harness.locking import exclusive_lock

    root = session_root(tmp_path_factory)

    def get(name: str) -> Path:
        folder = root / f"shared-sweep-{name}"
        with exclusive_lock(root / f"shared-sweep-{name}.lock"):
            if not (folder / "exit_code").exists():
                shutil.rmtree(folder, ignore_errors=True)  # a build cut short
                folder.mkdir()
                output, exit_code = _train_shared_sweep(folder, *SHARED_SWEEPS[name])
                (folder / "output.txt").write_text(output)
                (folder / "exit_code").write_text(str(exit_code))
        return folder

    return get


@pytest.fixture
def shared_sweep(_shared_sweeps, tmp_path):
    """``shared_sweep(name)``: a copy of SHARED_SWEEPS[name]'s store in ``tmp_path`` (mlflow.db and
    mlruns/, the paths in it rewritten to the copy's), as if this test had run the sweep there
    with its own ``test_config`` and ``synthetic_npz`` (the same text and images: the same runs)."""
    import sqlite3

    def copy(name: str) -> SharedSweep:
        source = _shared_sweeps(name)
        shutil.copy2(source / "mlflow.db", tmp_path / "mlflow.db")
        shutil.copytree(source / "mlruns", tmp_path / "mlruns")
        connection = sqlite3.connect(tmp_path / "mlflow.db")
        with connection:  # artifact locations (and any other recorded path) name the folder the sweep ran in
            for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                for _, column, kind, *_ in connection.execute(f'PRAGMA table_info("{table}")').fetchall():
                    if kind.upper().startswith(("VARCHAR", "TEXT")):
                        connection.execute(
                            f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                            f'WHERE instr("{column}", ?) > 0',
                            (str(source), str(tmp_path), str(source)),
                        )
        connection.close()
        return SharedSweep(
            store=f"sqlite:///{tmp_path / 'mlflow.db'}",
            output=(source / "output.txt").read_text(),
            exit_code=int((source / "exit_code").read_text()),
        )

    return copy


@pytest.fixture
def smoke_sweep(shared_sweep) -> SharedSweep:
    """The "smoke" shared sweep, copied into ``tmp_path``."""
    return shared_sweep("smoke")


@pytest.fixture
def test_config(tmp_path: Path) -> Path:
    path = tmp_path / "benchmarks.toml"
    path.write_text(TEST_CONFIG)
    return path


def pytest_collection_modifyitems(config, items):
    """For ``pytest -n 4`` (the README's command: four processes on two cores, because the slow
    tests spend much of their time waiting on servers, signals, budgets and the shared sweeps,
    not computing: at -n 3 the suite kept the two cores 84 % busy):
    the slow tests are handed out first, so the last minutes are not one long test running while
    the others idle; and every Ray test stays in one process (two local Ray clusters at once
    would contend for the same machine's ports and cores). The order changes nothing else: every test sets up its own."""
    for item in items:
        if Path(str(item.fspath)).name.startswith("test_ray_"):
            item.add_marker(pytest.mark.xdist_group("ray"))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
