"""What a run costs, before it runs: FLOPs and activations counted from built models against hand
counts, the images a profile plans, seconds from a probe, the epochs finished runs trained, the
reference GPU's measured step model, and `bench list --cost` end to end."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from harness.config import load_config
from harness.cost.run_cost import ModelFlops, Probe, flops_seconds, human_duration, model_flops, probe_seconds, run_cost
from tests.conftest import REAL_CONFIG

# r004_step1: conv 3→32 and 32→32 (3×3, 'same', 32×32 output), Dense 8192→10.
R004_STEP1_FORWARD = 2 * 32 * 32 * 27 * 32 + 2 * 32 * 32 * 288 * 32 + 2 * 8192 * 10
# Its layers' outputs per image: two 32×32×32 convolutions, the 16×16×32 pooling, Flatten, Dense.
R004_STEP1_ACTIVATIONS = 2 * 32 * 32 * 32 + 16 * 16 * 32 + 8192 + 10


def test_flops_of_a_cnn_match_the_hand_count():
    import architectures

    flops = model_flops(architectures.build("r004_step1"))
    assert flops.forward == R004_STEP1_FORWARD == 20_807_680
    assert flops.train == 3 * R004_STEP1_FORWARD  # every layer trains: backward is twice the forward
    assert flops.forward_activations == R004_STEP1_ACTIVATIONS == 81_930
    assert flops.train_activations == 3 * R004_STEP1_ACTIVATIONS


def test_a_frozen_backbone_costs_its_forward_pass_only():
    """Report 003's VGG16 fine-tune: only block5 and the head train, so the backward pass covers
    them alone; VGG16's 13 convolutions at 224×224 are 30.7 GFLOP forward (the published ~15.5 G
    multiply-adds)."""
    import architectures

    flops = model_flops(architectures.build("r003_vgg16_finetune", weights=None))
    assert 30.6e9 < flops.forward < 31.0e9
    assert flops.forward < flops.train < 1.5 * flops.forward


def test_run_cost_counts_the_profiles_images():
    config = load_config(REAL_CONFIG)
    recipe = config.recipe("r004-step1")
    flops = ModelFlops(forward=R004_STEP1_FORWARD, train=3 * R004_STEP1_FORWARD)
    full = run_cost(config, recipe, "full", flops=flops)
    assert (full.epochs, full.train_images, full.validation_images, full.test_images) == (30, 40_000, 10_000, 10_000)
    expected = 40_000 * 30 * flops.train + (10_000 * 30 + 10_000) * flops.forward
    assert full.total_pflop == pytest.approx(expected / 1e15)
    smoke = run_cost(config, recipe, "smoke", flops=flops)
    assert (smoke.epochs, smoke.train_images, smoke.validation_images, smoke.test_images) == (1, 1_000, 500, 1_000)

    probe = Probe(
        train_seconds_per_image=1e-3,
        predict_seconds_per_image=2e-4,
        feature_seconds_per_image=0.0,
        flops_per_second=1e11,
        compile_seconds=3.0,
    )
    seconds = probe_seconds(full, probe)
    assert seconds.total(30) == pytest.approx(13 + 40_000 * 30 * 1e-3 + (10_000 * 30 + 10_000) * 2e-4)
    assert seconds.total(12) == pytest.approx(13 + 40_000 * 12 * 1e-3 + (10_000 * 12 + 10_000) * 2e-4)
    assert seconds.total(30, done=20) == pytest.approx(13 + 40_000 * 10 * 1e-3 + (10_000 * 10 + 10_000) * 2e-4)
    assert flops_seconds(full, 1e11).total(30) == pytest.approx(10 + expected / 1e11)


def test_cached_features_are_counted_once_per_run_not_per_epoch():
    config = load_config(REAL_CONFIG)
    recipe = config.recipe("r003-tl-basic")
    whole, head = ModelFlops(forward=31_000, train=31_300), ModelFlops(forward=100, train=300)
    cost = run_cost(config, recipe, "full", flops=whole, head=head)
    assert cost.feature_images == 60_000 and cost.backbone_gflops == pytest.approx(30_900 / 1e9)
    assert cost.train_gflops == pytest.approx(300 / 1e9)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(42, "42 s"), (17 * 60, "17 min"), (3.2 * 3600, "3.2 h"), (5.1 * 86400, "5.1 days"), (51 * 86400, "7.3 weeks")],
)
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.slow
def test_bench_list_cost_probes_this_machine(tmp_path, monkeypatch):
    """`bench list --cost --measure` builds and probes in a child process, caches the result, and a
    second call answers from the cache."""
    from click.testing import CliRunner

    from harness.cli import main

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    monkeypatch.setattr("harness.cost.estimate.quiet_now", lambda: False)  # a probe slowed by the suite stays
    arguments = ["--config", str(REAL_CONFIG), "list", "--cost", "--json", "--only", "r004-step1"]
    first = CliRunner().invoke(main, [*arguments, "--measure"])
    assert first.exit_code == 0, first.output
    [record] = json.loads(first.stdout)
    assert record["recipe"] == "r004-step1" and record["basis"] == "probe"
    assert record["forward_gflops"] == pytest.approx(R004_STEP1_FORWARD / 1e9)
    assert record["seconds_here"] > 10 and record["gpu_reference_seconds"] > 10
    # Its full runs are in results/runs (30 epochs each, no early stopping; results/ grows with
    # every published run, so at least the first three); its step was timed on the H200.
    assert record["epochs_from_runs"] >= 3 and record["expected_epochs"] == 30
    assert record["gpu_basis"] == "measured" and "H200" in record["gpu_reference"]
    stored = json.loads((tmp_path / "probes.json").read_text())
    assert len(stored) == 1
    again = CliRunner().invoke(main, arguments)
    assert json.loads(again.stdout) == [record]


def test_a_probe_keeps_the_fastest_of_its_timed_calls(monkeypatch):
    """A busy moment only slows a call down: the cached probe is the fastest call, not the first."""
    from harness.cost import probe

    durations = iter([5.0, 0.4, 0.1, 0.3])  # warm-up (compiles), then three timed calls
    clock = {"now": 0.0}
    monkeypatch.setattr(probe.time, "perf_counter", lambda: clock["now"])

    def run():
        clock["now"] += next(durations)

    assert probe._seconds_per_image(run, images=10, repeats=3) == pytest.approx(0.01)


def test_a_steady_probe_runs_enough_steps(monkeypatch):
    """A timed call lasts PROBE_SECONDS (2 s, a user's; the tests' sweeps use 0.2) where it can: a
    1.5 ms GPU step (results/gpu) gets whole calls of 16 steps until the input cap, a minute-long
    CPU step the minimum."""
    from harness.cost import probe
    from harness.cost.probe import PROBE_MAX_BYTES, PROBE_MIN_STEPS, steady_steps

    monkeypatch.setattr(probe, "PROBE_SECONDS", 2.0)

    image = 32 * 32 * 3 * 4
    fast = steady_steps(0.0015, 128, image)
    assert fast % 16 == 0 and fast == 16 * (min(probe.PROBE_SECONDS / 0.0015, PROBE_MAX_BYTES // (128 * image)) // 16)
    assert fast * 0.0015 > 0.4  # a probe once timed 3 steps: 4.5 ms, a call's dispatch and an epoch's set-up
    assert steady_steps(60.0, 128, image) == PROBE_MIN_STEPS
    assert steady_steps(0.2, 64, image) == 10  # 2 s at 0.2 s a step: fewer than one call of 16
    assert steady_steps(0.001, 256, 25_088 * 4) == 16  # VGG16 features: 20 steps fit in memory, one whole call


def _run(
    recipe, profile, config_hash, epochs, train_seconds, *, identity, hardware="CPU only: test", wall=None, others=None
):
    """A finished run as the store or a record gives it to the estimate."""
    from types import SimpleNamespace

    from harness.store.schema import PARAM_HARDWARE, TAG_CONFIG_HASH, TAG_DEVICE, TAG_IDENTITY, TAG_PROFILE, TAG_RECIPE

    tags = {
        TAG_RECIPE: recipe,
        TAG_PROFILE: profile,
        TAG_CONFIG_HASH: config_hash,
        TAG_IDENTITY: identity,
        TAG_DEVICE: "cpu",
    }
    metrics = {"training/epochs_run": epochs, "time/train_seconds": train_seconds}
    if others is not None:
        metrics["time/others_cpu"] = others
    start = 1_000_000
    return SimpleNamespace(
        info=SimpleNamespace(
            run_id=identity, status="FINISHED", start_time=start, end_time=None if wall is None else start + wall * 1000
        ),
        data=SimpleNamespace(tags=tags, metrics=metrics, params={PARAM_HARDWARE: hardware}),
    )


def test_expected_epochs_come_from_finished_runs_of_the_current_training():
    """r003-vgg16-finetune may train 500 epochs; runs that stopped early say how long it really
    trains. Runs of an older configuration, another profile or another recipe do not count; a run
    on a GPU or under JAX does (same training). Without runs: at most the profile's epochs."""
    from harness.cost.estimate import expected_epochs
    from harness.identity import Variant, config_hash

    config = load_config(REAL_CONFIG)
    recipe = config.recipe("r003-vgg16-finetune")
    full = config.profile("full")
    current = config_hash(config, recipe, full)
    on_gpu = config_hash(config, recipe, full, Variant(device="gpu", backend="jax"))
    runs = [
        _run("r003-vgg16-finetune", "full", current, 41, 1.0, identity="a"),
        _run("r003-vgg16-finetune", "full", on_gpu, 29, 1.0, identity="b"),
        _run("r003-vgg16-finetune", "full", current, 41, 1.0, identity="a"),  # the same run again (store and record)
        _run("r003-vgg16-finetune", "full", "an-old-hash", 500, 1.0, identity="c"),
        _run("r003-vgg16-finetune", "quick", current, 3, 1.0, identity="d"),
        _run("r003-densenet121-finetune", "full", current, 7, 1.0, identity="e"),
    ]
    found = expected_epochs(config, [recipe, config.recipe("r004-step1")], "full", runs)
    assert found == {"r003-vgg16-finetune": (35.0, 2)}


def test_run_seconds_follow_expected_epochs_checkpoints_and_cached_features():
    from harness.cost.estimate import Estimate, run_seconds
    from harness.cost.run_cost import RunSeconds

    config = load_config(REAL_CONFIG)
    flops = ModelFlops(forward=R004_STEP1_FORWARD, train=3 * R004_STEP1_FORWARD)
    cost = run_cost(config, config.recipe("r003-vgg16-finetune"), "full", flops=flops)
    here = RunSeconds(overhead=10.0, features=100.0, epoch=60.0, test=5.0)
    expected = Estimate(cost=cost, here=here, basis="probe", gpu=None, gpu_basis="none", epochs=40.0, epochs_from=3)
    assert expected.seconds == run_seconds(expected) == 10 + 100 + 40 * 60 + 5
    assert expected.max_seconds == 10 + 100 + 500 * 60 + 5 and expected.epochs_words == "40.0 (3 runs)"
    assert run_seconds(expected, done_epochs=30, first_seed=False) == 10 + 10 * 60 + 5
    assert expected.gpu_seconds is None
    at_most = Estimate(cost=cost, here=here, basis="probe", gpu=None, gpu_basis="none", epochs=500.0)
    assert at_most.epochs_words == "at most 500" and at_most.seconds == at_most.max_seconds


def test_calibration_sets_the_estimate_against_the_runs_it_can_find():
    from harness.cost.estimate import Estimate, calibrate
    from harness.cost.run_cost import RunSeconds
    from harness.identity import config_hash

    config = load_config(REAL_CONFIG)
    recipe = config.recipe("r004-step1")
    current = config_hash(config, recipe, config.profile("full"))
    flops = ModelFlops(forward=R004_STEP1_FORWARD, train=3 * R004_STEP1_FORWARD)
    cost = run_cost(config, recipe, "full", flops=flops)
    here = RunSeconds(overhead=10.0, features=0.0, epoch=40.0, test=2.0)
    estimate = Estimate(cost=cost, here=here, basis="probe", gpu=None, gpu_basis="none", epochs=30.0, epochs_from=2)
    runs = [
        _run("r004-step1", "full", current, 30, 1000.0, identity="a", wall=1020.0, others=0.1),
        _run("r004-step1", "full", current, 30, 1400.0, identity="b", hardware="CPU only: other"),
    ]
    [row] = calibrate(config, [estimate], runs, hardware="CPU only: test")
    assert row.others_cpu == pytest.approx(0.1) and row.others_runs == 1  # the one run that recorded it
    assert (row.recipe, row.runs, row.epochs, row.measured_seconds) == ("r004-step1", 2, 30.0, 1200.0)
    assert row.estimated_seconds == 40 * 30 and row.ratio == pytest.approx(1.0)
    assert row.measured_wall_seconds == 1020.0 and row.estimated_wall_seconds == 10 + 30 * 40 + 2
    assert row.hardware == "CPU only: other; CPU only: test"
    assert calibrate(config, [estimate], runs, device="gpu") == []
    # The quiet ratio counts only runs here that recorded little other work: a run beside a test
    # suite (others 0.4) and one on other hardware say nothing about this machine's estimate.
    busy = _run("r004-step1", "full", current, 20, 1600.0, identity="c", others=0.4)
    [row] = calibrate(config, [estimate], [*runs, busy], hardware="CPU only: test")
    assert (row.quiet_runs, row.quiet_ratio) == (1, pytest.approx(30 * 40 / 1000.0))
    [row] = calibrate(config, [estimate], [*runs, busy], hardware="CPU only: other")
    assert (row.quiet_runs, row.quiet_ratio) == (0, None)
    # The footer names each other machine once, a row of mixed machines included (it printed
    # "CPU only: other; CPU only: test, CPU only: other" for these two rows).
    from harness.cli.catalogue import other_machines

    alone = dataclasses.replace(row, hardware="CPU only: other")
    assert other_machines([row, alone], "CPU only: test") == ["CPU only: other"]


@pytest.mark.slow
def test_a_dry_run_says_what_its_estimate_rests_on(tmp_path, synthetic_npz, test_config):
    """The sweep's cost line: images and PFLOP at most, seconds here from probes, the epochs they
    rest on, and the reference GPU named as measured (not an assumed rate)."""
    from harness.store.tracking import Tracker
    from harness.sweep.executors import Progress
    from harness.sweep.plan import SweepSettings
    from harness.sweep.sweep import run_sweep

    class Notes(Progress):
        def __init__(self):
            self.lines = []

        def note(self, message):
            self.lines.append(message)

    config = load_config(test_config)
    notes = Notes()
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    settings = SweepSettings(profile="smoke", seeds=2, data_path=str(synthetic_npz))
    report = run_sweep(config, tracker, list(config.recipes.values()), settings, notes, dry_run=True)
    assert len(report.by_status("PLANNED")) == 4
    [line] = [line for line in notes.lines if "runs to train" in line]
    assert line.startswith("4 runs to train: at most ")
    assert " 0.0 M " not in line and " training images" in line  # a smoke sweep's 4,000 images said as such
    assert "every run at its most epochs" in line and "on an NVIDIA H200, measured under JAX" in line
    assert "assumed" not in line


@pytest.mark.parametrize(("jobs", "first"), [(2, "tiny-b"), (1, "tiny-a")])
def test_several_runs_at_once_start_with_the_longest(tmp_path, synthetic_npz, test_config, monkeypatch, jobs, first):
    """Under --jobs > 1 the recipes expected to take longest start first (a sweep in file order
    ended on its longest runs alone); a recipe's seeds stay together; one at a time keeps file order."""
    import harness.sweep.sweep
    from harness.store.tracking import Tracker
    from harness.sweep.executors import LocalExecutor, Progress, SweepReport
    from harness.sweep.plan import SweepSettings

    def cost(config, todo, *_args, **_kwargs):
        return {spec.identity.identity: 60.0 if spec.recipe.name == "tiny-b" else 5.0 for spec in todo}

    started = []

    def sweep(self, specs, **_kwargs):
        started.extend((spec.recipe.name, spec.identity.seed) for spec in specs)
        return SweepReport()

    monkeypatch.setattr(harness.sweep.sweep, "announce_cost", cost)
    monkeypatch.setattr(LocalExecutor, "sweep", sweep)
    config = load_config(test_config)
    settings = SweepSettings(profile="smoke", seeds=2, data_path=str(synthetic_npz), jobs=jobs, jobs_cap=False)
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    harness.sweep.sweep.run_sweep(config, tracker, list(config.recipes.values()), settings, Progress())
    second = {"tiny-a": "tiny-b", "tiny-b": "tiny-a"}[first]
    assert started == [(first, 0), (first, 1), (second, 0), (second, 1)]


def test_image_counts_keep_their_size():
    """A smoke sweep's 30,000 training images were printed as 'at most 0.0 M' (issue 28)."""
    from harness.cost.run_cost import human_count

    assert human_count(30_000) == "30,000" and human_count(999_999) == "999,999"
    assert human_count(21.6e6) == "21.6 M" and human_count(1e6) == "1.0 M"


def test_bench_probe_seconds_sets_how_long_a_timed_call_lasts():
    import subprocess
    import sys

    read = [sys.executable, "-c", "from harness.cost import probe; print(probe.PROBE_SECONDS)"]
    for value, expected in (("0.5", "0.5"), ("", "2.0"), (None, "2.0")):
        environment = {k: v for k, v in os.environ.items() if k != "BENCH_PROBE_SECONDS"}
        if value is not None:
            environment["BENCH_PROBE_SECONDS"] = value
        assert subprocess.run(read, env=environment, capture_output=True, text=True).stdout.strip() == expected


def test_processes_saving_probes_at_once_lose_none(tmp_path):
    """The probe cache is one file that every probing process rewrites: processes adding entries at
    once (xdist workers, two sweeps on one machine) must each find theirs in it afterwards."""
    import subprocess
    import sys

    write = (
        "import sys\n"
        "from harness.cost.probe import save_probe\n"
        "for i in range(40):\n"
        "    save_probe(f'{sys.argv[1]}-{i}', {'probe': None, 'flops': {}, 'head': None, 'hardware': 'x'})\n"
    )
    environment = {**os.environ, "BENCH_CACHE": str(tmp_path)}
    writers = [subprocess.Popen([sys.executable, "-c", write, f"w{n}"], env=environment) for n in range(4)]
    assert [writer.wait(timeout=120) for writer in writers] == [0] * 4
    stored = json.loads((tmp_path / "probes.json").read_text())
    assert sorted(stored) == sorted(f"w{n}-{i}" for n in range(4) for i in range(40))


def test_an_estimate_needs_no_writable_cache(tmp_path, monkeypatch):
    """Where the cache cannot be written (here its folder would sit under a file), the estimate
    uses what the probe child reported instead of failing on the entry the file lacks."""
    from harness.cost.estimate import _counted

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "a-file" / "cache"))
    config = load_config(REAL_CONFIG)
    options = {"precision": "float32", "jit_compile": "auto"}
    counted, _ = _counted(
        config, [config.recipe("r004-step1")], "full", options=options, measure=False, on_done=None, probes=False
    )
    cost, entry = counted["r004-step1"]
    assert entry["flops"]["forward"] == R004_STEP1_FORWARD and cost.epochs == 30


def test_the_probe_child_saves_under_the_callers_keys(tmp_path, monkeypatch):
    """The sweep looks entries up by its own keys: a child that describes the machine otherwise
    (here the caller's view is faked; in CI a test's faked GPU once stayed cached in a process)
    must not leave the caller with a KeyError."""
    from harness.cost import estimate as cost_estimate
    from harness.cost import probe

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    real = probe.machine_words()
    monkeypatch.setattr(probe, "machine_words", lambda: {**real, "hardware": "NVIDIA H100 + a faked view"})
    config = load_config(REAL_CONFIG)
    recipe = config.recipe("r004-step1")
    key = probe.probe_key(config, recipe)
    made = cost_estimate.fill_cache(config, [recipe], timed=False)
    assert list(made) == [key] and made[key]["flops"]["forward"] == R004_STEP1_FORWARD
    assert list(json.loads((tmp_path / "probes.json").read_text())) == [key]


def _stat(*cpus: tuple[int, int]) -> str:
    """/proc/stat with one line per CPU: (busy, idle) ticks, busy as user time."""
    total = [sum(c[0] for c in cpus), sum(c[1] for c in cpus)]
    lines = [f"cpu  {total[0]} 0 0 {total[1]} 0 0 0 0 0 0"]
    lines += [f"cpu{i} {busy} 0 0 {idle} 0 0 0 0 0 0" for i, (busy, idle) in enumerate(cpus)]
    return "\n".join([*lines, "intr 12345", "ctxt 678"]) + "\n"


def test_others_cpu_is_the_busy_share_of_this_process_cpus_less_its_own(monkeypatch):
    """Two CPUs, 2 s of ticks each: 3 s busy, of which 1 s was this process's own, so other work
    held 2 s of the 4: 0.5. A CPU this process may not run on is not counted; no /proc/stat: None."""
    from harness.environment import OthersCpu

    monkeypatch.setattr("os.sysconf", lambda name: 100)
    samples = iter([_stat((100, 100), (100, 100), (0, 0)), _stat((250, 150), (250, 150), (200, 0))])
    own = iter([os.times_result((0.0, 0.0, 0.0, 0.0, 0.0)), os.times_result((0.7, 0.3, 0.0, 0.0, 0.0))])
    others = OthersCpu(read=lambda: next(samples), times=lambda: next(own), cpus={0, 1})
    assert others.share() == pytest.approx(0.5)
    assert OthersCpu(read=lambda: None).share() is None


def test_others_cpu_sees_another_process_keep_a_cpu_busy():
    """Measured on this machine: a child spinning for a second holds one of its CPUs."""
    import subprocess
    import sys
    import time

    from harness.environment import OthersCpu

    cpus = len(os.sched_getaffinity(0))
    others = OthersCpu()
    spinner = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.time() + 1.5\nwhile time.time() < end: pass"]
    )
    time.sleep(1.0)
    share = others.share()
    spinner.wait()
    assert share is not None and share >= 0.6 / cpus  # one CPU of them, less start-up; more if the suite is busy


def _probe_entry(others: float | None, *, rate: float = 1e9, cost_model: int | None = None) -> dict:
    from harness.cost import probe

    timing = Probe(
        train_seconds_per_image=0.001,
        predict_seconds_per_image=0.0005,
        feature_seconds_per_image=0.0,
        flops_per_second=rate,
        others_cpu=others,
    )
    flops = ModelFlops(forward=R004_STEP1_FORWARD, train=3 * R004_STEP1_FORWARD)
    return {**probe.probe_entry(timing, flops, None), "cost_model": cost_model or probe.COST_MODEL}


def test_rates_come_from_quiet_probes_of_the_current_cost_model():
    """A probe other work slowed stands in for other models only where no quiet one was
    measured; a probe of an older cost model never does."""
    from harness.cost.probe import COST_MODEL, machine_rates

    quiet, slowed = _probe_entry(0.01, rate=2e11), _probe_entry(0.6, rate=2e10)
    older = _probe_entry(0.0, rate=5e11, cost_model=COST_MODEL - 1)
    assert [p.flops_per_second for _, p in machine_rates({"a": quiet, "b": slowed, "c": older})] == [2e11]
    assert [p.contended for _, p in machine_rates({"b": slowed, "c": older})] == [True]


@pytest.mark.parametrize("quiet", [True, False])
def test_a_probe_slowed_by_other_work_is_timed_again_once_the_machine_is_quiet(tmp_path, monkeypatch, quiet):
    """Cached at 3.4× slow under a pip install here, a probe kept misleading every estimate: one
    taken while other work held the CPU is timed again when the machine is quiet, and never while
    it is busy (that would time the contention again at every sweep's start); meanwhile its
    estimate says it is busy."""
    from harness.cost import estimate as cost_estimate
    from harness.cost import probe

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    config = load_config(REAL_CONFIG)
    recipe = config.recipe("r004-step1")
    key = probe.probe_key(config, recipe)
    probe.save_probe(key, _probe_entry(0.6))
    for name, other in (("r004-step2", 0.01), ("r004-step6", 0.02)):  # enough references: no other probe is due
        probe.save_probe(probe.probe_key(config, config.recipe(name)), _probe_entry(other))
    calls = []

    def fill_cache(config, recipes, *, timed: bool, on_done=None, **options):
        if recipes:
            calls.append(([r.name for r in recipes], timed))
        return {probe.probe_key(config, r): _probe_entry(0.02) for r in recipes}

    monkeypatch.setattr(cost_estimate, "fill_cache", fill_cache)
    monkeypatch.setattr(cost_estimate, "quiet_now", lambda: quiet)
    [result] = cost_estimate.estimate(config, [recipe], "full")
    assert calls == ([(["r004-step1"], True)] if quiet else [])
    # Until then its estimate comes from a quiet probe's FLOP rate, not from its own slowed probe.
    assert (result.basis, result.contended) == ("probe" if quiet else "flops", False)
    with monkeypatch.context() as alone:  # no quiet probe at all: the slowed one, said to be
        alone.setattr(cost_estimate, "machine_rates", lambda stored: [(1.0, Probe(**_probe_entry(0.6)["probe"]))])
        [result] = cost_estimate.estimate(config, [recipe], "full")
        assert (result.basis, result.contended) == ("probe", not quiet)


@pytest.mark.parametrize(
    ("load_before", "fresh_others", "retimed"),
    [
        (True, 0.0, True),  # quiet before; our own probing then lifts the load average: still quiet
        (False, 0.0, True),  # a busy load average (e.g. a run just ended), but the probe just made saw no other work
        (True, 0.6, False),  # the probe just made saw other work: busy, whatever the load said before
    ],
)
def test_whether_to_time_a_slowed_probe_again_is_not_judged_by_our_own_probing(
    tmp_path, monkeypatch, load_before, fresh_others, retimed
):
    """`bench list --cost --measure` on a quiet machine left every slowed probe as it was: after a
    minute of its own probing, the load average (which counts our probe children) read busy. The
    machine's quietness is read before any probe of ours, and a probe this call made says best."""
    from harness.cost import estimate as cost_estimate
    from harness.cost import probe

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    config = load_config(REAL_CONFIG)
    slowed, unprobed = config.recipe("r004-step1"), config.recipe("r004-step7")
    probe.save_probe(probe.probe_key(config, slowed), _probe_entry(0.6))
    for name in ("r004-step2", "r004-step6"):
        probe.save_probe(probe.probe_key(config, config.recipe(name)), _probe_entry(0.01))
    calls = []

    def fill_cache(config, recipes, *, timed: bool, on_done=None, **options):
        if recipes:
            calls.append([r.name for r in recipes])
        return {probe.probe_key(config, r): _probe_entry(fresh_others) for r in recipes}

    monkeypatch.setattr(cost_estimate, "fill_cache", fill_cache)
    monkeypatch.setattr(cost_estimate, "quiet_now", lambda: load_before and not calls)  # busy once we probe
    cost_estimate.estimate(config, [slowed, unprobed], "full", measure=True)
    assert calls == ([["r004-step7"], ["r004-step1"]] if retimed else [["r004-step7"]])
