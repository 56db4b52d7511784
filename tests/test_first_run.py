"""A newcomer's first `bench all`, as real processes: it says what it is doing while it measures
this machine, a sweep estimated at over a day asks first (or needs --yes), and a SIGTERM while it
measures leaves no `harness.cost.probe` process behind."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import TEST_CONFIG
from tests.test_ui import alive

pytestmark = pytest.mark.slow  # real bench processes (and a probe that imports TensorFlow)


def bench(tmp_path: Path, data: Path, *arguments: str) -> list[str]:
    config = tmp_path / "benchmarks.toml"
    config.write_text(TEST_CONFIG)
    return [sys.executable, "-m", "harness.cli", "--config", str(config), "--data", str(data), *arguments]


def environment(cache: Path) -> dict[str, str]:
    """A first run's: its own empty cache, and probes as long as a user's (2 s calls)."""
    return {
        **{k: v for k, v in os.environ.items() if k != "BENCH_PROBE_SECONDS"},
        "BENCH_CACHE": str(cache),
        "TERM": "xterm",
    }


def children(parent: int, name: bytes) -> list[int]:
    """The processes ``parent`` started whose command line holds ``name``."""
    pids = []
    for task in Path(f"/proc/{parent}/task").iterdir():
        with contextlib.suppress(OSError):
            pids += [int(pid) for pid in (task / "children").read_text().split()]
    found = []
    for pid in pids:
        with contextlib.suppress(OSError):
            if name in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return found


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs Linux /proc to find the probe")
def test_sigterm_while_measuring_this_machine_ends_the_probe_child(tmp_path, synthetic_npz):
    """First run (empty cache): a status line says it is measuring this machine before anything
    else takes minutes; SIGTERM then stops bench AND its `python -m harness.cost.probe` child (it was
    left running, orphaned), and the exit line does not speak of runs that finished."""
    log_path = tmp_path / "bench.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            bench(tmp_path, synthetic_npz, "all", "--profile", "smoke", "--seeds", "1"),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment(tmp_path / "cache"),
        )
    try:
        deadline = time.monotonic() + 120
        probes: list[int] = []
        while not probes and time.monotonic() < deadline and process.poll() is None:
            probes = children(process.pid, b"harness.cost.probe")
            time.sleep(0.2)
        assert probes, f"no harness.cost.probe child started; bench said:\n{log_path.read_text()}"
        lines = log_path.read_text().splitlines()
        assert lines[0].startswith("Opening the MLflow store sqlite:///"), lines
        assert any(line.startswith("measuring this machine, first run only: ") for line in lines), lines
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 130
        # Ended by bench before it exits, not later by a broken pipe when it next reports a result
        # (a timing probe reports after minutes: until then it trained on, orphaned).
        time.sleep(0.5)
        assert not any(alive(pid) for pid in probes), "the harness.cost.probe child outlived bench"
        said = log_path.read_text()
        assert "Interrupted before any run started: nothing was trained" in said
        assert "every run that finished" not in said
    finally:
        if process.poll() is None:
            process.kill()


def slow_machine_cache(cache: Path, config_path: Path) -> None:
    """A probe cache in which every recipe of ``config_path`` takes 1,000 s per image here, so a
    one-run smoke sweep is estimated at days: what a `full` sweep is on a CPU, without its wait."""
    from harness.config import load_config
    from harness.cost.probe import machine_words, probe_key

    config = load_config(config_path)
    hardware = machine_words()["hardware"]
    entry = {
        "probe": {
            "train_seconds_per_image": 1000.0,
            "predict_seconds_per_image": 0.001,
            "feature_seconds_per_image": 0.0,
            "flops_per_second": 1e6,
        },
        "flops": {"forward": 1e6, "train": 3e6},
        "head": None,
        "hardware": hardware,
    }
    stored = {probe_key(config, recipe): entry for recipe in config.recipes.values()}
    stored.update({f"reference-{index}": entry for index in range(3)})  # enough probes for the rate
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "probes.json").write_text(json.dumps(stored))


def test_a_sweep_estimated_at_days_needs_yes_without_a_terminal(tmp_path, synthetic_npz):
    """No terminal, no --yes: one line naming the command to run, exit 2, nothing trained; with
    --yes it trains."""
    command = bench(tmp_path, synthetic_npz, "run", "tiny-a", "--profile", "smoke", "--seeds", "1")
    slow_machine_cache(tmp_path / "cache", tmp_path / "benchmarks.toml")
    refused = subprocess.run(
        command, cwd=tmp_path, env=environment(tmp_path / "cache"), capture_output=True, text=True, timeout=300
    )
    assert refused.returncode == 2, refused.stderr
    assert (
        "there is no terminal to confirm it on; to start it anyway: bench run tiny-a --profile smoke --seeds 1 --yes"
        in (refused.stderr.replace("\n", " "))
    )
    assert "Traceback" not in refused.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cifar10-bench")
    assert not client.search_runs([experiment.experiment_id])  # not even a parent run
    started = subprocess.run(
        [*command, "--yes"],
        cwd=tmp_path,
        env=environment(tmp_path / "cache"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert started.returncode == 0, started.stderr
    finished = client.search_runs(
        [experiment.experiment_id], "attributes.status = 'FINISHED' and tags.`bench.kind` = 'child'"
    )
    assert len(finished) == 1


def test_a_terminal_is_asked_before_a_sweep_estimated_at_days(tmp_path, synthetic_npz):
    """On a terminal the question is asked once; 'n' trains nothing and exits 1."""
    import pty

    command = bench(tmp_path, synthetic_npz, "run", "tiny-a", "--profile", "smoke", "--seeds", "1")
    slow_machine_cache(tmp_path / "cache", tmp_path / "benchmarks.toml")
    main_end, terminal = pty.openpty()
    process = subprocess.Popen(
        command, cwd=tmp_path, env=environment(tmp_path / "cache"), stdin=terminal, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    said = b""
    try:
        deadline = time.monotonic() + 300
        while b"Start it?" not in said and time.monotonic() < deadline:
            if select.select([main_end], [], [], 1.0)[0]:
                with contextlib.suppress(OSError):
                    said += os.read(main_end, 4096)
        assert b"Start it?" in said, said.decode(errors="replace")
        os.write(main_end, b"n\n")
        assert process.wait(timeout=60) == 1
        with contextlib.suppress(OSError):
            while select.select([main_end], [], [], 5.0)[0] and (chunk := os.read(main_end, 4096)):
                said += chunk
    finally:
        os.close(main_end)
        if process.poll() is None:
            process.kill()
    text = said.decode(errors="replace")
    assert text.count("Start it?") == 1 and "Aborted: nothing was trained." in text
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not client.search_runs([client.get_experiment_by_name("cifar10-bench").experiment_id])
