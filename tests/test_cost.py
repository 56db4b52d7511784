"""What a run costs, before it runs: FLOPs counted from built models against hand counts, the
images a profile plans, seconds from a probe, and `bench list --cost` end to end."""

from __future__ import annotations

import json

import pytest

from harness.config import load_config
from harness.cost import ModelFlops, Probe, estimate_seconds, human_duration, model_flops, run_cost
from tests.conftest import REAL_CONFIG

# r004_step1: conv 3→32 and 32→32 (3×3, 'same', 32×32 output), Dense 8192→10.
R004_STEP1_FORWARD = 2 * 32 * 32 * 27 * 32 + 2 * 32 * 32 * 288 * 32 + 2 * 8192 * 10


def test_flops_of_a_cnn_match_the_hand_count():
    import architectures

    flops = model_flops(architectures.build("r004_step1"))
    assert flops.forward == R004_STEP1_FORWARD == 20_807_680
    assert flops.train == 3 * R004_STEP1_FORWARD  # every layer trains: backward is twice the forward


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
    )
    seconds = estimate_seconds(full, probe, flops_per_second=1e11)
    assert seconds == pytest.approx(10 + 40_000 * 30 * 1e-3 + (10_000 * 30 + 10_000) * 2e-4)
    assert estimate_seconds(full, None, flops_per_second=1e11) == pytest.approx(10 + expected / 1e11)


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
    arguments = ["--config", str(REAL_CONFIG), "list", "--cost", "--json", "--only", "r004-step1"]
    first = CliRunner().invoke(main, [*arguments, "--measure"])
    assert first.exit_code == 0, first.output
    [record] = json.loads(first.stdout)
    assert record["recipe"] == "r004-step1" and record["basis"] == "probe"
    assert record["forward_gflops"] == pytest.approx(R004_STEP1_FORWARD / 1e9)
    assert record["seconds_here"] > 10 and record["gpu_reference_seconds"] > 10
    stored = json.loads((tmp_path / "probes.json").read_text())
    assert len(stored) == 1
    again = CliRunner().invoke(main, arguments)
    assert json.loads(again.stdout) == [record]


def test_a_probe_keeps_the_fastest_of_its_timed_calls(monkeypatch):
    """A busy moment only slows a call down: the cached probe is the fastest call, not the first."""
    from harness import probe

    durations = iter([5.0, 0.4, 0.1, 0.3])  # warm-up (compiles), then three timed calls
    clock = {"now": 0.0}
    monkeypatch.setattr(probe.time, "perf_counter", lambda: clock["now"])

    def run():
        clock["now"] += next(durations)

    assert probe._seconds_per_image(run, images=10, repeats=3) == pytest.approx(0.01)
