"""The reference GPU's cost model: fitted to the committed H200 measurements (results/gpu), it
prices a small CNN by its per-step floor, VGG16 by its FLOPs and DenseNet121 by its bytes, and
packs runs by the share of a GPU each takes."""

from __future__ import annotations

import json

import pytest

from harness.config import load_config
from harness.cost.gpu_model import (
    BYTES_PER_ELEMENT,
    REFERENCE,
    StepFit,
    fit_steps,
    gpu_share,
    load_reference,
    run_seconds,
    train_step_seconds,
)
from harness.cost.run_cost import ModelFlops, run_cost
from tests.conftest import REAL_CONFIG

RESULTS = REFERENCE.parent


def test_the_fit_recovers_a_known_step_model():
    truth = StepFit(floor_seconds=1.5e-3, flops_per_second=300e12, bytes_per_second=2e12)
    points = [(f, b, truth.seconds(f, b)) for f in (1e9, 1e11, 3e12, 5e12) for b in (1e7, 1e9, 2e10)]
    fitted = fit_steps(points)
    assert fitted.floor_seconds == pytest.approx(truth.floor_seconds, rel=1e-6)
    assert fitted.flops_per_second == pytest.approx(truth.flops_per_second, rel=1e-6)
    assert fitted.bytes_per_second == pytest.approx(truth.bytes_per_second, rel=1e-6)


def test_the_reference_is_the_committed_measurements_fitted():
    """results/gpu/h200-step-model.json holds each recipe's step as gpu_check.py measured it
    (never edited), and its fit is the fit of those steps."""
    reference = json.loads(REFERENCE.read_text())
    measured = {}
    for source in reference["sources"]:
        sections = json.loads((RESULTS.parents[1] / source).read_text())["sections"]
        for name in ("throughput_all", "backbones_224"):
            if sections.get(name, {}).get("status") == "ok":
                measured |= {run["recipe"]: run["step_seconds"] for run in sections[name]["result"]["runs"]}
    assert {name: entry["step_seconds"] for name, entry in reference["recipes"].items()} == measured
    assert len(measured) == 50  # the 48 CNNs and the two 224×224 fine-tunes
    points = [
        (
            e["train_gflops"] * 1e9 * e["batch"],
            e["train_activations"] * BYTES_PER_ELEMENT * e["batch"],
            e["step_seconds"],
        )
        for e in reference["recipes"].values()
    ]
    fitted = fit_steps(points)
    for name, value in reference["fit"]["parameters"].items():
        assert getattr(fitted, name) == pytest.approx(value, rel=1e-9)


def _cost(name: str, reference):
    """A recipe's full-profile cost from the FLOPs and activations recorded with its measurement."""
    config = load_config(REAL_CONFIG)
    entry = reference.recipes[name]
    flops = ModelFlops(
        forward=int(entry.train_gflops * 1e9 / 3),
        train=int(entry.train_gflops * 1e9),
        forward_activations=entry.train_activations // 3,
        train_activations=entry.train_activations,
    )
    return run_cost(config, config.recipe(name), "full", flops=flops)


def test_bytes_rank_densenet121_against_vgg16_as_measured():
    """DenseNet121 has a sixth of VGG16's FLOPs per image yet took 90 % of its step (14.1 vs
    15.7 ms): the fit, which prices activations, puts it within the fit's own spread of its
    measured step; FLOPs alone at the fit's rate would call it under half."""
    reference = load_reference()
    fit = reference.fit
    for name in ("r003-vgg16-finetune", "r003-densenet121-finetune"):
        entry = reference.recipes[name]
        flops = entry.train_gflops * 1e9 * entry.batch
        moved = entry.train_activations * BYTES_PER_ELEMENT * entry.batch
        assert 0.8 < fit.seconds(flops, moved) / entry.step_seconds < 1.25, name
        if name == "r003-densenet121-finetune":
            assert (fit.floor_seconds + flops / fit.flops_per_second) / entry.step_seconds < 0.5


def test_small_cnns_cost_their_floor_not_their_flops():
    """r001-proyecto-8 trains at batch 32: 1.8 TFLOP/s achieved, its step (1.6 ms) is the floor. A
    flat 20 TFLOP/s (the old assumption) would have called its step 0.15 ms."""
    reference = load_reference()
    cost = _cost("r001-proyecto-8", reference)
    step, basis = train_step_seconds(reference, cost)
    assert basis == "measured" and step > reference.fit.floor_seconds * 0.9
    assert cost.train_gflops * 1e9 * cost.batch_size / 20e12 < step / 10
    seconds, _ = run_seconds(reference, cost)
    assert seconds.epoch == pytest.approx(1250 * step + 313 * (seconds.test / 313), rel=1e-9)  # 40k / 32, 10k / 32


def test_an_unmeasured_model_is_fitted_and_a_variant_of_a_measured_one_is_not():
    reference = load_reference()
    config = load_config(REAL_CONFIG)
    vgg = reference.recipes["r003-vgg16-finetune"]
    flops = ModelFlops(
        forward=int(vgg.train_gflops * 1e9 * 0.8),
        train=int(vgg.train_gflops * 1e9),
        forward_activations=vgg.train_activations // 2,
        train_activations=vgg.train_activations,
    )
    variant = run_cost(config, config.recipe("r003-vgg16-finetune-imagenet-preprocess"), "full", flops=flops)
    assert train_step_seconds(reference, variant) == (vgg.step_seconds, "measured")
    resnet = run_cost(
        config, config.recipe("ext-resnet50-finetune"), "full", flops=ModelFlops(10**10, 3 * 10**10, 10**7, 3 * 10**7)
    )
    step, basis = train_step_seconds(reference, resnet)
    assert basis == "fit" and step == pytest.approx(reference.fit.seconds(3e10 * 64, 3e7 * 4 * 64))


def test_packing_shares_follow_the_measured_floor():
    """4 × r004-step1 on one H200 gave 2.49× one alone: small CNNs take a quarter of a GPU; a
    224×224 fine-tune, busy 89 % of its step, takes one alone; r002-proyecto-7 goes two to a GPU;
    a GPU too small for a run's memory gives it all of itself."""
    reference = load_reference()
    assert gpu_share(reference, _cost("r004-step1", reference)) == 0.25
    assert gpu_share(reference, _cost("r003-vgg16-finetune", reference)) > 0.8
    assert 1 / 3 < gpu_share(reference, _cost("r002-proyecto-7", reference)) <= 0.5
    assert gpu_share(reference, _cost("r003-vgg16-finetune", reference), gpu_memory_bytes=16e9) == 1.0
