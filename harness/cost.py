"""What a run costs, known before it runs: FLOPs counted from the built model, the images a
profile plans, and seconds on this machine from a short measured probe.

- **FLOPs** (``model_flops``): multiply-adds ×2 of every convolution and dense layer per image,
  the usual convention (normalisation, pooling and activations are left out). Training costs
  the forward pass plus twice the forward FLOPs of every layer from the first trainable one on
  (gradients for inputs and weights); a frozen backbone costs its forward pass only.
- **Images** (``run_cost``): train × epochs + validation × epochs + test, at the recipe's
  epochs capped by the profile. Early stopping can only end a run sooner, so every figure is
  an upper bound ("at most"). A frozen backbone's features are extracted once per dataset and
  reused by every seed (``harness.features``).
- **Seconds** (``estimate_seconds``): a probe (``harness.probe``) times a few training and
  prediction steps of the recipe's own model at its batch size on this machine; seconds per
  image × images + a fixed per-run overhead (process start, imports, data, logging: measured
  at about 10 s per run here, docs/performance.md). A recipe not probed yet is estimated from
  its FLOPs at the FLOP rate the probed ones reached on this machine.
- **A GPU, as a reference**: FLOPs at an *assumed* achieved rate (``GPU_REFERENCE``), not a
  measurement: no GPU has been available to this project.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from harness.config import BenchConfig, Recipe

RUN_OVERHEAD_SECONDS = 10.0  # per run: worker start, imports, data, store, logging (docs/performance.md)
FULL_TRAIN_IMAGES = 50_000  # CIFAR-10's training images, before the validation split
FULL_TEST_IMAGES = 10_000

# An assumed, not measured, achieved rate for the reference line "on a GPU": small CNNs at batch
# 32-512 keep a data-centre GPU far from its peak (H100 SXM: 67 TFLOP/s FP32, ~495 TF32 dense).
GPU_REFERENCE = ("NVIDIA H100 (assumed 20 TFLOP/s achieved, TF32)", 20e12)


@dataclass(frozen=True)
class ModelFlops:
    """Per image: the forward pass, and one training step (forward + backward)."""

    forward: int
    train: int


def _layers_in_order(container) -> list:
    found = []
    for layer in getattr(container, "layers", []):
        if getattr(layer, "layers", None):
            found.extend(_layers_in_order(layer))
        else:
            found.append(layer)
    return found


def _layer_flops(layer) -> int:
    import keras

    try:
        out = layer.output.shape
    except (AttributeError, ValueError):
        return 0
    spatial = math.prod(d for d in out[1:-1] if d is not None) if len(out) > 2 else 1
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return 2 * kh * kw * int(out[-1]) * spatial
    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        channels_in = int(layer.depthwise_kernel.shape[2])
        depthwise = 2 * kh * kw * channels_in * layer.depth_multiplier * spatial
        return depthwise + 2 * channels_in * layer.depth_multiplier * int(out[-1]) * spatial
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        return 2 * kh * kw * int(layer.kernel.shape[2]) * int(out[-1]) * spatial
    if isinstance(layer, keras.layers.Dense):
        return 2 * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1]) * spatial
    return 0


def model_flops(model) -> ModelFlops:
    """FLOPs per image of a built model (nested models included), forward and training."""
    forward = backward = 0
    trainable_seen = False
    for layer in _layers_in_order(model):
        flops = _layer_flops(layer)
        forward += flops
        trainable_seen = trainable_seen or bool(layer.trainable_weights)
        if trainable_seen:
            backward += 2 * flops
    return ModelFlops(forward=int(forward), train=int(forward + backward))


@dataclass(frozen=True)
class RunCost:
    """One run of a recipe under a profile, counted: every number is at most (early stopping
    may end a run sooner)."""

    recipe: str
    profile: str
    epochs: int
    batch_size: int
    train_images: int
    validation_images: int
    test_images: int
    forward_gflops: float  # per image, the whole model
    train_gflops: float  # per training image (for a frozen backbone: its head only)
    feature_images: int  # images through a frozen backbone, once per dataset (0: none)
    backbone_gflops: float  # per image of those
    total_pflop: float  # one run, the first seed (feature extraction included)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def planned_images(config: BenchConfig, profile_name: str) -> tuple[int, int, int]:
    """(train, validation, test) images of one run under a profile, from the split settings."""
    profile = config.profile(profile_name)
    train = FULL_TRAIN_IMAGES - config.data.validation_size
    validation = config.data.validation_size
    return (
        min(train, profile.train_size or train),
        min(validation, profile.validation_size or validation),
        min(FULL_TEST_IMAGES, profile.test_size or FULL_TEST_IMAGES),
    )


def run_cost(config: BenchConfig, recipe: Recipe, profile_name: str, *, flops: ModelFlops, head=None) -> RunCost:
    """The cost of one run of ``recipe``: ``flops`` of the whole model; for a recipe whose frozen
    backbone's features are cached, ``head`` is the FLOPs of the part that trains on them."""
    from harness.train import planned_epochs

    epochs = planned_epochs(recipe, config.profile(profile_name))
    train, validation, test = planned_images(config, profile_name)
    if head is not None:
        backbone_forward = flops.forward - head.forward
        feature_images = train + validation + test
        per_train, per_eval = head.train, head.forward
    else:
        backbone_forward, feature_images = 0, 0
        per_train, per_eval = flops.train, flops.forward
    total = train * epochs * per_train + (validation * epochs + test) * per_eval + feature_images * backbone_forward
    return RunCost(
        recipe=recipe.name,
        profile=profile_name,
        epochs=epochs,
        batch_size=recipe.training.batch_size,
        train_images=train,
        validation_images=validation,
        test_images=test,
        forward_gflops=flops.forward / 1e9,
        train_gflops=per_train / 1e9,
        feature_images=feature_images,
        backbone_gflops=backbone_forward / 1e9,
        total_pflop=total / 1e15,
    )


@dataclass(frozen=True)
class Probe:
    """Seconds per image of a recipe's model on this machine, measured by ``harness.probe``."""

    train_seconds_per_image: float  # one training step's share per image (forward + backward + update)
    predict_seconds_per_image: float  # inference of what trains (validation, test)
    feature_seconds_per_image: float  # a frozen backbone's forward pass (0: no cached features)
    flops_per_second: float  # the training FLOP rate the probe reached


def estimate_seconds(cost: RunCost, probe: Probe | None, flops_per_second: float) -> float:
    """Wall seconds of one run: probed seconds per image × images when there is a probe, else
    its FLOPs at ``flops_per_second``; plus the fixed per-run overhead."""
    if probe is None:
        return RUN_OVERHEAD_SECONDS + cost.total_pflop * 1e15 / flops_per_second
    inference = (cost.validation_images * cost.epochs + cost.test_images) * probe.predict_seconds_per_image
    features = cost.feature_images * probe.feature_seconds_per_image  # through the backbone, once
    return RUN_OVERHEAD_SECONDS + cost.train_images * cost.epochs * probe.train_seconds_per_image + inference + features


def gpu_reference_seconds(cost: RunCost) -> float:
    """Seconds of one run on the reference GPU at its assumed achieved rate (not measured)."""
    return RUN_OVERHEAD_SECONDS + cost.total_pflop * 1e15 / GPU_REFERENCE[1]


def human_duration(seconds: float) -> str:
    """'42 s', '17 min', '3.2 h', '5.1 days', '7.3 weeks'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds < 14 * 86400:
        return f"{seconds / 86400:.1f} days"
    return f"{seconds / (7 * 86400):.1f} weeks"
