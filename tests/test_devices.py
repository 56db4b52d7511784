"""GPU placement, memory and threads for worker processes, with faked device lists (no GPU is
lent to this project): what each worker would get on a machine with GPUs."""

from __future__ import annotations

import os
import stat
from collections import Counter

import pytest

from harness.config import load_config
from harness.errors import HarnessError
from harness.identity import Variant, identify
from harness.run.devices import (
    Gpu,
    GpuSlots,
    check_device,
    threads_per_worker,
    visible_gpus,
    worker_environment,
)
from harness.sweep.plan import SweepSettings, concurrent_jobs, plan, variant_here

SMI = """0, GPU-aaaa, NVIDIA H100 80GB HBM3, 81559
1, GPU-bbbb, NVIDIA H100 80GB HBM3, 81559
2, GPU-cccc, NVIDIA H100 80GB HBM3, 81559
"""
TWO_GPUS = [Gpu("0", "H100"), Gpu("1", "H100")]


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        (None, ["0", "1", "2"]),
        ("2,0", ["2", "0"]),
        ("GPU-bbbb", ["1"]),
        ("", []),
        ("-1", []),
        ("1,7,2", ["1"]),  # CUDA stops at the first invalid entry
    ],
)
def test_visible_gpus_follow_cuda_visible_devices(visible, expected):
    environment = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    gpus = visible_gpus(environment, query=lambda: SMI)
    assert [gpu.id for gpu in gpus] == expected
    assert all(gpu.name == "NVIDIA H100 80GB HBM3" and gpu.memory_mib == 81559 for gpu in gpus)


def test_no_driver_means_no_gpu():
    def missing():
        raise FileNotFoundError("nvidia-smi")

    assert visible_gpus({}, query=missing) == []


def test_slots_round_robin_with_several_runs_per_gpu():
    slots = GpuSlots(["0", "1"], per_gpu=2)
    assert slots.capacity == 4
    taken = [slots.acquire() for _ in range(4)]
    assert taken == ["0", "1", "0", "1"]
    with pytest.raises(RuntimeError, match="all 4 GPU slots are taken"):
        slots.acquire()
    slots.release("1")
    assert slots.acquire() == "1"  # a slot is given back when its run ends
    assert GpuSlots([]).acquire() is None


def test_shares_pack_small_runs_and_give_a_large_one_a_gpu_alone():
    """--jobs-per-gpu auto: four runs of a quarter share one GPU; a run taking 0.9 waits for an
    empty GPU, and a small run asking after it waits behind it (it is never overtaken for ever)."""
    import threading
    import time

    slots = GpuSlots(["0"], per_gpu=4)
    small = [slots.acquire(0.25) for _ in range(3)]
    assert small == ["0", "0", "0"]
    got: list[str] = []
    large = threading.Thread(target=lambda: got.append(("large", slots.acquire(0.9))))
    large.start()
    time.sleep(0.3)
    later = threading.Thread(target=lambda: got.append(("later", slots.acquire(0.25))))
    later.start()
    time.sleep(0.3)
    assert got == []  # 0.75 taken: no room for 0.9; the later small run queues behind it
    for gpu in small:
        slots.release(gpu, 0.25)
    large.join(timeout=5)
    assert got == [("large", "0")]
    slots.release("0", 0.9)
    later.join(timeout=5)
    assert got[-1] == ("later", "0")
    slots.release("0", 0.25)
    stop = threading.Event()
    stop.set()
    slots.acquire(1.0)
    with pytest.raises(InterruptedError):
        slots.acquire(0.5, stop=stop)  # a stopped sweep does not wait for a GPU


@pytest.mark.parametrize(
    ("jobs", "per_gpu", "gpus", "expected", "note"),
    [
        (None, 1, [], 1, None),
        (3, 1, [], 3, None),
        (None, 1, TWO_GPUS, 2, None),
        (None, 4, TWO_GPUS, 8, None),
        (1, 4, TWO_GPUS, 1, None),
        (5, 2, TWO_GPUS, 4, "--jobs 5 capped to 4"),
        (None, "auto", TWO_GPUS, 8, None),
        (9, "auto", TWO_GPUS, 8, "--jobs 9 capped to 8: 2 GPU(s) × --jobs-per-gpu auto (at most 4 runs share a GPU)"),
        (None, "auto", [], 1, None),
    ],
)
def test_concurrent_jobs(jobs, per_gpu, gpus, expected, note):
    big = (16, 64 * 2**30)  # 16 cores, 64 GiB free: no CPU cap in these cases
    found, said = concurrent_jobs(SweepSettings(jobs=jobs, jobs_per_gpu=per_gpu), gpus, capacity=big)
    assert found == expected
    assert (said is None) if note is None else note in said


@pytest.mark.parametrize(
    ("jobs", "capacity", "cap", "expected", "note"),
    [
        (64, (2, 24 * 2**30), True, 2, "--jobs 64 capped to 2: 2 cores, 24 GiB free (--no-jobs-cap to insist)"),
        (8, (16, 6 * 2**30), True, 2, "--jobs 8 capped to 2: 16 cores, 6 GiB free"),
        (8, (16, None), True, 8, None),
        (64, (2, 24 * 2**30), False, 64, None),
    ],
)
def test_cpu_jobs_are_capped_by_cores_and_memory(jobs, capacity, cap, expected, note):
    found, said = concurrent_jobs(SweepSettings(jobs=jobs, jobs_cap=cap), [], capacity=capacity)
    assert found == expected
    assert (said is None) if note is None else note in said


def test_worker_environment_carries_memory_policy_pin_and_threads():
    base = {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0,1"}
    environment = worker_environment(base, gpu="1")
    assert environment["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert environment["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert environment["CUDA_VISIBLE_DEVICES"] == "1" and environment["PATH"] == "/bin"
    assert "OMP_NUM_THREADS" not in environment and "TF_DETERMINISTIC_OPS" not in environment
    cpu = worker_environment(base, threads=3, deterministic=True)
    assert cpu["TF_NUM_INTRAOP_THREADS"] == cpu["OMP_NUM_THREADS"] == "3"
    assert cpu["TF_DETERMINISTIC_OPS"] == "1" and cpu["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert threads_per_worker(1, cores=16) is None
    assert threads_per_worker(4, cores=16) == 4 and threads_per_worker(8, cores=2) == 1


def test_every_worker_shares_persistent_compilation_caches(tmp_path):
    """Under $BENCH_CACHE/xla: JAX's compilation cache (every program, however fast it compiled),
    TF's XLA programs and XLA's GPU autotuning, added to the user's own flags, never replacing
    them; --deterministic adds its XLA flag beside them; BENCH_COMPILE_CACHE=off turns it off."""
    base = {"BENCH_CACHE": str(tmp_path), "XLA_FLAGS": "--xla_dump_to=/tmp/dump"}
    environment = worker_environment(base, deterministic=True)
    assert environment["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "xla" / "jax")
    assert environment["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"
    assert environment["XLA_FLAGS"].split() == [
        "--xla_dump_to=/tmp/dump",
        f"--xla_gpu_per_fusion_autotune_cache_dir={tmp_path / 'xla' / 'autotune'}",
        "--xla_gpu_deterministic_ops=true",
    ]
    assert environment["TF_XLA_FLAGS"] == f"--tf_xla_persistent_cache_directory={tmp_path / 'xla' / 'tensorflow'}"
    mine = worker_environment(
        {**base, "JAX_COMPILATION_CACHE_DIR": "/mine", "TF_XLA_FLAGS": "--tf_xla_persistent_cache_directory=/x"}
    )
    assert (
        mine["JAX_COMPILATION_CACHE_DIR"] == "/mine"
        and mine["TF_XLA_FLAGS"] == "--tf_xla_persistent_cache_directory=/x"
    )
    off = worker_environment({**base, "BENCH_COMPILE_CACHE": "off"})
    assert "JAX_COMPILATION_CACHE_DIR" not in off and off["XLA_FLAGS"] == "--xla_dump_to=/tmp/dump"


@pytest.mark.slow
def test_a_second_jax_process_loads_what_the_first_compiled(tmp_path):
    """Two fresh processes with a worker's environment compile the same Keras model under JAX and
    XLA: the first writes the cache, the second finds its programs there (JAX's cache_hits event)
    and compiles none of them again."""
    import subprocess
    import sys

    script = tmp_path / "compile.py"
    script.write_text(
        "import numpy as np\n"
        "from jax import monitoring\n"
        "events = []\n"
        "monitoring.register_event_listener(lambda event, **_: events.append(event))\n"
        "import keras\n"
        "model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),"
        " keras.layers.Dense(10, activation='softmax')])\n"
        "model.compile('adam', 'sparse_categorical_crossentropy', jit_compile=True)\n"
        "model.fit(np.ones((64, 8, 8, 3), 'float32'), np.arange(64) % 10, batch_size=32, verbose=0)\n"
        "print(events.count('/jax/compilation_cache/cache_hits'), events.count('/jax/compilation_cache/cache_misses'))\n"
    )
    environment = worker_environment({**os.environ, "BENCH_CACHE": str(tmp_path), "KERAS_BACKEND": "jax"})
    counts = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, str(script)], env=environment, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        counts.append(tuple(int(n) for n in done.stdout.split()[-2:]))
    (first_hits, first_misses), (second_hits, second_misses) = counts
    assert first_hits == 0 and first_misses > 0
    assert second_hits >= first_misses and second_misses == 0
    assert any((tmp_path / "xla" / "jax").iterdir())


def test_executor_pins_each_concurrent_worker_to_a_gpu(tmp_path, test_config):
    """Four runs, two faked GPUs, two runs per GPU: every worker process starts pinned to one
    GPU, two on each, with the memory policy; the fake worker records its environment."""
    from harness.store.tracking import Tracker
    from harness.sweep.executors import LocalExecutor

    fake_python = tmp_path / "python"
    fake_python.write_text(
        "#!/bin/sh\ncat > /dev/null\n"
        f'env | grep -E "^(CUDA_VISIBLE_DEVICES|TF_FORCE_GPU_ALLOW_GROWTH|XLA_PYTHON_CLIENT_PREALLOCATE|OMP_NUM_THREADS'
        f'|JAX_COMPILATION_CACHE_DIR|XLA_FLAGS|TF_XLA_FLAGS)=" > {tmp_path}/env.$$\n'
        "sleep 1\nexit 3\n"
    )
    fake_python.chmod(fake_python.stat().st_mode | stat.S_IEXEC)
    config = load_config(test_config)
    settings = SweepSettings(profile="smoke", seeds=2, jobs_per_gpu=2)
    specs = plan(config, list(config.recipes.values()), profile="smoke", seeds=[0, 1], data_fingerprint="fp")
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    executor = LocalExecutor(config, tracker, settings, python=str(fake_python), gpus=["0", "1"], jobs=4)
    report = executor.sweep(specs)
    assert [o.status for o in report.outcomes] == ["FAILED"] * 4  # the fake worker exits 3
    environments = [dict(line.split("=", 1) for line in p.read_text().split()) for p in tmp_path.glob("env.*")]
    assert len(environments) == 4
    assert Counter(e["CUDA_VISIBLE_DEVICES"] for e in environments) == {"0": 2, "1": 2}
    assert all(
        e["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" and e["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" for e in environments
    )
    assert all("OMP_NUM_THREADS" not in e for e in environments)  # GPU runs keep the CPU threads
    cache = f"{os.environ['BENCH_CACHE']}/xla"  # every worker shares the compilation caches
    assert all(e["JAX_COMPILATION_CACHE_DIR"] == f"{cache}/jax" for e in environments)
    assert all(f"--xla_gpu_per_fusion_autotune_cache_dir={cache}/autotune" in e["XLA_FLAGS"] for e in environments)
    assert all(e["TF_XLA_FLAGS"] == f"--tf_xla_persistent_cache_directory={cache}/tensorflow" for e in environments)


def test_runs_share_a_gpu_by_their_shares(tmp_path, test_config):
    """One faked GPU, --jobs-per-gpu auto: tiny-a takes the whole GPU (share 1.0) and trains
    alone; the two seeds of tiny-b (0.25 each) train at the same time. The fake worker records when
    it ran."""
    from harness.store.tracking import Tracker
    from harness.sweep.executors import LocalExecutor

    fake_python = tmp_path / "python"
    fake_python.write_text(
        "#!/bin/sh\nread spec\n"
        f'echo "$spec" | grep -o \'"recipe": "[a-z-]*"\' | head -1 > {tmp_path}/run.$$\n'
        f"date +%s.%N >> {tmp_path}/run.$$\nsleep 1.5\ndate +%s.%N >> {tmp_path}/run.$$\nexit 3\n"
    )
    fake_python.chmod(fake_python.stat().st_mode | stat.S_IEXEC)
    config = load_config(test_config)
    settings = SweepSettings(profile="smoke", seeds=2)
    specs = plan(config, list(config.recipes.values()), profile="smoke", seeds=[0, 1], data_fingerprint="fp")
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    shares = {"tiny-a": 1.0, "tiny-b": 0.25}
    executor = LocalExecutor(config, tracker, settings, python=str(fake_python), gpus=["0"], jobs=4, shares=shares)
    report = executor.sweep(specs)
    assert len(report.outcomes) == 4
    spans = {}
    for path in tmp_path.glob("run.*"):
        name, began, ended = path.read_text().split("\n")[:3]
        spans.setdefault(name.split('"')[-2], []).append((float(began), float(ended)))

    def overlap(one, other):
        return one[0] < other[1] and other[0] < one[1]

    assert len(spans["tiny-a"]) == len(spans["tiny-b"]) == 2
    assert not any(overlap(a, b) for a in spans["tiny-a"] for b in spans["tiny-a"] + spans["tiny-b"] if a != b)
    assert overlap(*spans["tiny-b"])


def test_gpu_runs_are_their_own_identity(test_config):
    config = load_config(test_config)
    recipe = config.recipe("tiny-a")
    cpu = identify(config, recipe, "smoke", 0, "fp")
    gpu = identify(config, recipe, "smoke", 0, "fp", Variant(device="gpu"))
    assert cpu.config_hash != gpu.config_hash and gpu.tags()["bench.device"] == "gpu"
    assert identify(config, recipe, "smoke", 0, "fp", Variant(device="cpu")).config_hash == cpu.config_hash


def test_variant_here_follows_the_executor(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", "/nonexistent")
    assert variant_here(SweepSettings(), []).device == "cpu"
    assert variant_here(SweepSettings(), TWO_GPUS).device == "gpu"
    assert variant_here(SweepSettings(executor="ray", gpus_per_run=0.25), []).device == "gpu"
    assert variant_here(SweepSettings(executor="ray"), TWO_GPUS).device == "cpu"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert variant_here(SweepSettings(), []).backend == "jax"


def test_a_worker_that_does_not_see_its_planned_device_fails():
    check_device("gpu", "tensorflow", ["NVIDIA H100"], {})
    check_device("cpu", "tensorflow", [], {})
    with pytest.raises(HarnessError, match="planned for a GPU, but tensorflow sees none"):
        check_device("gpu", "tensorflow", [], {"CUDA_VISIBLE_DEVICES": "0"})
    with pytest.raises(HarnessError, match="planned for the CPU"):
        check_device("cpu", "tensorflow", ["NVIDIA H100"], {})


def test_doctor_on_this_cpu():
    from click.testing import CliRunner

    from harness.cli import main

    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "none: every run trains on the CPU" in result.output
    assert "auto resolves to off here" in result.output and "TF_FORCE_GPU_ALLOW_GROWTH=true" in result.output


def test_doctor_flags_a_gpu_the_backend_cannot_see(monkeypatch):
    """The driver lists a GPU, TensorFlow sees none (a CUDA build mismatch): a problem, exit 1."""
    from click.testing import CliRunner

    import harness.run.devices
    from harness.cli import main

    monkeypatch.setattr(harness.run.devices, "visible_gpus", lambda *a, **k: [Gpu("0", "NVIDIA H100", 81559)])
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 1
    assert "driver lists 1 GPU(s) but tensorflow sees 0" in result.output


@pytest.mark.slow
def test_a_gpu_sweep_packs_by_default_and_says_how(tmp_path, synthetic_npz, test_config, monkeypatch):
    """A faked nvidia-smi lists one H100: the dry run plans GPU runs, packs them by share
    (--jobs-per-gpu auto is the default) and names how many of each recipe share a GPU (the
    backend is made to see it: this machine's TensorFlow sees no GPU and would stop the sweep)."""
    from click.testing import CliRunner

    import harness.sweep.sweep
    from harness.cli import main

    monkeypatch.setattr(harness.sweep.sweep, "backend_gpus", lambda *args, **kwargs: ["NVIDIA H100 80GB HBM3"])

    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text("#!/bin/sh\necho '0, GPU-aaaa, NVIDIA H100 80GB HBM3, 81559'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{smi.parent}:{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    arguments = ["--config", str(test_config), "--data", str(synthetic_npz), "all", "--profile", "smoke"]
    result = CliRunner().invoke(main, [*arguments, "--seeds", "2", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "GPUs 0: NVIDIA H100 80GB HBM3; 4 run(s) at once" in result.output
    assert "4 per GPU: tiny-a, tiny-b" in result.output  # small CNNs: a quarter of a GPU each


def fake_nvidia_smi(folder, listing: str = SMI.splitlines()[0]):
    """An ``nvidia-smi`` on PATH that lists ``listing`` (a GPU the driver sees)."""
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\necho '{listing}'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


@pytest.mark.slow
def test_a_gpu_the_backend_cannot_see_fails_the_sweep_once_before_any_run(tmp_path, synthetic_npz, test_config):
    """The driver lists a GPU (faked nvidia-smi), TensorFlow sees none (this machine, as a GPU
    machine without its CUDA libraries): one line naming the fix, before any worker starts,
    instead of every run failing ("planned for a GPU, but tensorflow sees none") one by one."""
    import os
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    (tmp_path / "bin").mkdir()
    fake = fake_nvidia_smi(tmp_path / "bin")
    command = [sys.executable, "-m", "harness.cli", "--config", str(test_config), "--data", str(synthetic_npz)]
    sweep = subprocess.run(
        [*command, "run", "tiny-a", "--profile", "smoke", "--seeds", "2"],
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "KERAS_BACKEND": "tensorflow"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = sweep.stdout + sweep.stderr
    assert sweep.returncode != 0, output
    fix = [line for line in output.splitlines() if 'pip install -e ".[gpu]"' in line]
    assert len(fix) == 1, output
    assert "nvidia-smi lists 1 GPU(s) (0: NVIDIA H100 80GB HBM3) but tensorflow sees none" in fix[0]
    assert "planned for a GPU" not in output  # no worker ran to find it out
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cifar10-bench")
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    assert [r for r in runs if r.data.tags.get("bench.kind") == "child"] == []


def test_the_gpu_check_reads_what_a_fresh_worker_process_sees(tmp_path):
    """backend_gpus starts a process as a worker would and reads the backend's list back (none
    when it cannot start); the fix named for each backend."""
    import os

    from harness.run.devices import GPU_INSTALL, backend_gpus, check_gpus_usable

    python = tmp_path / "python"
    python.write_text('#!/bin/sh\necho "noise from the backend"\necho \'GPUS ["NVIDIA H200"]\'\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    assert backend_gpus("jax", {}, python=str(python)) == ["NVIDIA H200"]
    assert backend_gpus("jax", dict(os.environ), python=str(tmp_path / "missing")) == []
    check_gpus_usable("jax", [Gpu("0", "NVIDIA H200")], ["NVIDIA H200"])
    check_gpus_usable("jax", [], [])
    with pytest.raises(
        HarnessError, match=r"but jax sees none, so every run would fail: pip install -U \"jax\[cuda13\]\""
    ):
        check_gpus_usable("jax", [Gpu("0", "NVIDIA H200")], [])
    assert set(GPU_INSTALL) == {"tensorflow", "jax", "torch"}


def test_doctor_compiles_a_real_model_with_xla(monkeypatch):
    """bench doctor's XLA check trains a Dense + softmax + cross-entropy step under XLA: it
    passes here, and fails (naming the error) when softmax cannot compile, as on a GPU without
    libdevice, where a bare reduction would still compile."""
    from keras.src import backend

    from harness.cli.doctor import _xla_compiles

    ok, how = _xla_compiles("tensorflow")
    assert ok, how
    assert "softmax" in how

    def no_libdevice(*args, **kwargs):
        raise RuntimeError("libdevice not found at ./libdevice.10.bc")

    monkeypatch.setattr(backend.nn, "softmax", no_libdevice)
    ok, how = _xla_compiles("tensorflow")
    assert not ok and how == "RuntimeError: libdevice not found at ./libdevice.10.bc"
