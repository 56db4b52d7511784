"""What a run costs, known before it runs: FLOPs and activations counted from the built model,
the images a profile plans, and the seconds each part of a run takes on one device.

- **FLOPs** (``model_flops``): multiply-adds ×2 of every convolution and dense layer per image,
  the usual convention (normalisation, pooling and activations are left out). Training costs
  the forward pass plus twice the forward FLOPs of every layer from the first trainable one on
  (gradients for inputs and weights); a frozen backbone costs its forward pass only.
- **Activations** (``model_flops`` too): the elements every layer writes per image (BatchNorm,
  activations, pooling and concatenations included), counted like FLOPs for training. They stand
  for the bytes a step moves: a memory-bound model (DenseNet121) is slow for its FLOPs.
- **Images** (``run_cost``): train × epochs + validation × epochs + test, at the recipe's
  epochs capped by the profile: every figure of a ``RunCost`` is "at most". A frozen
  backbone's features are extracted once per dataset and reused by every seed
  (``harness.run.features``).
- **Seconds** (``RunSeconds``): a run's start-up and compilation, its features, one epoch
  (training and validation) and the test set, on one device; ``RunSeconds.total`` adds them up
  for any number of epochs. On this machine they come from a probe (``harness.cost.probe``,
  ``probe_seconds``) or from FLOPs at the rate probes reached here (``flops_seconds``); on the
  reference GPU from measurements (``harness.cost.gpu_model``). How many epochs a run is expected to
  train is ``harness.cost.estimate``'s business.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from harness.config import BenchConfig, Recipe

RUN_OVERHEAD_SECONDS = 10.0  # per run: worker start, imports, data, store, logging (docs/performance.md)
FULL_TRAIN_IMAGES = 50_000  # CIFAR-10's training images, before the validation split
FULL_TEST_IMAGES = 10_000


@dataclass(frozen=True)
class ModelFlops:
    """Per image: the forward pass, and one training step (forward + backward); FLOPs, and the
    activation elements the layers write (the backward pass reads and writes twice those of
    every layer from the first trainable one on)."""

    forward: int
    train: int
    forward_activations: int = 0
    train_activations: int = 0


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


def _layer_activations(layer) -> int:
    """Elements of a layer's output per image (every output of a layer with several)."""
    try:
        shapes = layer.output.shape
    except (AttributeError, ValueError):
        return 0
    if not (isinstance(shapes, list | tuple) and shapes and isinstance(shapes[0], list | tuple)):
        shapes = [shapes]
    return sum(math.prod(d for d in shape[1:] if d is not None) for shape in shapes)


def model_flops(model) -> ModelFlops:
    """FLOPs and activation elements per image of a built model (nested models included),
    forward and training."""
    forward = backward = forward_elements = backward_elements = 0
    trainable_seen = False
    for layer in _layers_in_order(model):
        flops, elements = _layer_flops(layer), _layer_activations(layer)
        forward += flops
        forward_elements += elements
        trainable_seen = trainable_seen or bool(layer.trainable_weights)
        if trainable_seen:
            backward += 2 * flops
            backward_elements += 2 * elements
    return ModelFlops(
        forward=int(forward),
        train=int(forward + backward),
        forward_activations=int(forward_elements),
        train_activations=int(forward_elements + backward_elements),
    )


@dataclass(frozen=True)
class RunCost:
    """One run of a recipe under a profile, counted at the profile's epochs: every number is at
    most (early stopping may end a run sooner)."""

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
    eval_gflops: float = 0.0  # per validation or test image, of what trains (a frozen backbone's head)
    train_activations: int = 0  # activation elements per training image (forward and backward)
    eval_activations: int = 0  # per validation or test image
    backbone_activations: int = 0  # per image through a frozen backbone

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
    from harness.run.train import planned_epochs

    epochs = planned_epochs(recipe, config.profile(profile_name))
    train, validation, test = planned_images(config, profile_name)
    if head is not None:
        backbone_forward = flops.forward - head.forward
        backbone_activations = flops.forward_activations - head.forward_activations
        feature_images = train + validation + test
        trains = head
    else:
        backbone_forward, backbone_activations, feature_images = 0, 0, 0
        trains = flops
    total = (
        train * epochs * trains.train
        + (validation * epochs + test) * trains.forward
        + feature_images * backbone_forward
    )
    return RunCost(
        recipe=recipe.name,
        profile=profile_name,
        epochs=epochs,
        batch_size=recipe.training.batch_size,
        train_images=train,
        validation_images=validation,
        test_images=test,
        forward_gflops=flops.forward / 1e9,
        train_gflops=trains.train / 1e9,
        feature_images=feature_images,
        backbone_gflops=backbone_forward / 1e9,
        total_pflop=total / 1e15,
        eval_gflops=trains.forward / 1e9,
        train_activations=trains.train_activations,
        eval_activations=trains.forward_activations,
        backbone_activations=max(backbone_activations, 0),
    )


BUSY = 0.15  # other work's share of the CPUs above which a timing is taken as slowed by it


@dataclass(frozen=True)
class Probe:
    """Seconds per image of a recipe's model on this machine, measured by ``harness.cost.probe``."""

    train_seconds_per_image: float  # one training step's share per image (forward + backward + update)
    predict_seconds_per_image: float  # inference of what trains, at the training batch (validation, test)
    feature_seconds_per_image: float  # a frozen backbone's forward pass (0: no cached features)
    flops_per_second: float  # the training FLOP rate the probe reached
    compile_seconds: float = 0.0  # the first training and prediction calls less steady ones: tracing, XLA
    # Other work's share of this machine's CPUs while it was timed (harness.environment.OthersCpu;
    # None: not measurable). Over ``BUSY`` the probe reads slow and is re-timed once the machine is quiet.
    others_cpu: float | None = None

    @property
    def contended(self) -> bool:
        return (self.others_cpu or 0.0) > BUSY


@dataclass(frozen=True)
class RunSeconds:
    """Where one run's seconds go on one device; ``total`` adds them up for any epochs."""

    overhead: float  # once per run: worker start, imports, data, store, compilation, logging
    features: float  # a frozen backbone's features: extracted by a recipe's first run, read by the others
    epoch: float  # one epoch: its training steps and its validation
    test: float  # the test set, once

    def total(self, epochs: float, *, done: float = 0.0, first_seed: bool = True) -> float:
        """Seconds of a run that trains ``epochs`` epochs, ``done`` of them already (a run that
        continues from a checkpoint); ``first_seed=False``: its features are cached already."""
        return self.overhead + (self.features if first_seed else 0.0) + max(epochs - done, 0.0) * self.epoch + self.test


def probe_seconds(cost: RunCost, probe: Probe) -> RunSeconds:
    """A run's seconds on this machine from its probe: seconds per image × images, and the
    per-run overhead with the compilation the probe measured."""
    return RunSeconds(
        overhead=RUN_OVERHEAD_SECONDS + probe.compile_seconds,
        features=cost.feature_images * probe.feature_seconds_per_image,  # through the backbone, once
        epoch=cost.train_images * probe.train_seconds_per_image
        + cost.validation_images * probe.predict_seconds_per_image,
        test=cost.test_images * probe.predict_seconds_per_image,
    )


def flops_seconds(cost: RunCost, flops_per_second: float) -> RunSeconds:
    """A run's seconds from its FLOPs at ``flops_per_second`` (a recipe not probed here)."""
    return RunSeconds(
        overhead=RUN_OVERHEAD_SECONDS,
        features=cost.feature_images * cost.backbone_gflops * 1e9 / flops_per_second,
        epoch=(cost.train_images * cost.train_gflops + cost.validation_images * cost.eval_gflops)
        * 1e9
        / flops_per_second,
        test=cost.test_images * cost.eval_gflops * 1e9 / flops_per_second,
    )


def human_count(count: float) -> str:
    """'4,000', '45,000', '1.2 M', '21.6 M': a count of images in words that keep its size."""
    return f"{count:,.0f}" if count < 1e6 else f"{count / 1e6:,.1f} M"


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
