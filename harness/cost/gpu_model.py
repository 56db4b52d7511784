"""What a run costs on a GPU that was measured: every CNN recipe's training step and the 224×224
fine-tunes as ``benchmarks/gpu_check.py`` timed them, and for the other recipes a fit of those
steps: seconds per step = floor + FLOPs / rate + activation bytes / bandwidth.

The reference (``REFERENCE``) is ``results/gpu/h200-step-model.json``, written by ``python
benchmarks/fit_gpu_model.py`` from the committed measurements of one NVIDIA H200 under JAX
0.11.2 and Keras 3.15.1, float32 (TF32, JAX's default precision there). What they showed
(results/gpu/h200-2026-12-04-b.json, section throughput_all):

- **a floor**: no step took less than about 1.3–1.6 ms, whatever the model: small CNNs are bound
  by launching and dispatching a step, not by their FLOPs (1.3 TFLOP/s for batch-32 recipes);
- **FLOPs** dominate the large ones (VGG16 at 224×224: 295 TFLOP/s; r002-proyecto-7: 155);
- **bytes** (activations written and read) dominate DenseNet121, 53 TFLOP/s for a sixth of
  VGG16's FLOPs per image: a FLOP rate alone ranks the two the wrong way round.

One flat rate fits none of this (the estimate this replaces assumed 20 TFLOP/s: too fast for
small CNNs, 15× too slow for VGG16). Unverified: TensorFlow on a GPU (its
``steps_per_execution`` compiles a loop of steps, JAX's is a Python loop over one compiled step,
so its floor may differ), other GPUs, and mixed precision (the model is float32's).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.cost.run_cost import RUN_OVERHEAD_SECONDS, RunCost, RunSeconds
from harness.run.features import FEATURE_BATCH

BYTES_PER_ELEMENT = 4  # float32 activations
MAX_RUNS_PER_GPU = 4  # the packing that was measured: 4 × r004-step1 on one H200 gave 2.49× one alone
MEMORY_BASE_BYTES = 0.3e9  # a run's GPU memory besides its activations (the framework, weights, workspace)
MEMORY_HEADROOM = 0.9  # runs on one GPU may use this share of its memory together
REFERENCE = Path(__file__).resolve().parents[2] / "results" / "gpu" / "h200-step-model.json"


@dataclass(frozen=True)
class StepFit:
    """Seconds of one step = ``floor`` + FLOPs / ``flops_per_second`` + bytes / ``bytes_per_second``."""

    floor_seconds: float
    flops_per_second: float
    bytes_per_second: float

    def seconds(self, flops: float, bytes_moved: float) -> float:
        return self.floor_seconds + self.computing(flops, bytes_moved)

    def computing(self, flops: float, bytes_moved: float) -> float:
        """The part of a step the GPU spends on the step's own work (the rest is the floor)."""
        return flops / self.flops_per_second + bytes_moved / self.bytes_per_second


def fit_steps(points: list[tuple[float, float, float]]) -> StepFit:
    """The ``StepFit`` closest to ``points`` (FLOPs per step, bytes per step, measured seconds) in
    relative error: least squares of predicted / measured − 1, which is linear in the floor and
    the two inverse rates."""
    import numpy as np

    flops, moved, seconds = (np.array(column, dtype=float) for column in zip(*points, strict=True))
    design = np.stack([1 / seconds, flops / seconds, moved / seconds], axis=1)
    (floor, per_flop, per_byte), *_ = np.linalg.lstsq(design, np.ones(len(seconds)), rcond=None)
    if min(floor, per_flop, per_byte) <= 0:
        raise ValueError(f"the step fit is not physical: floor {floor}, s/FLOP {per_flop}, s/byte {per_byte}")
    return StepFit(
        floor_seconds=float(floor), flops_per_second=float(1 / per_flop), bytes_per_second=float(1 / per_byte)
    )


@dataclass(frozen=True)
class MeasuredRecipe:
    """One recipe as measured on the reference GPU, at its own batch size."""

    batch: int
    step_seconds: float  # one training step, steady
    train_compile_seconds: float  # compiling the training step (first epoch less steady steps)
    eval_compile_seconds: float | None = None  # compiling prediction (None: not measured)
    predict_images_per_second: float | None = None  # None: not measured (the fit's evaluation step is used)
    peak_memory_bytes: float | None = None  # None: not measured
    train_gflops: float = 0.0  # per image, as counted when measured (harness.cost.run_cost)
    train_activations: int = 0  # per image, as counted by benchmarks/fit_gpu_model.py


@dataclass(frozen=True)
class GpuReference:
    """A measured GPU: its name, the fit, the recipes measured, and what the numbers rest on."""

    name: str  # e.g. "NVIDIA H200"
    words: str  # how figures on it are labelled, e.g. "an NVIDIA H200, measured under JAX"
    memory_bytes: float
    fit: StepFit
    recipes: dict[str, MeasuredRecipe] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> GpuReference:
        return cls(
            name=fields["name"],
            words=fields["words"],
            memory_bytes=float(fields["memory_bytes"]),
            fit=StepFit(**fields["fit"]["parameters"]),
            recipes={name: MeasuredRecipe(**entry) for name, entry in fields["recipes"].items()},
            notes=fields,
        )

    def measured(self, cost: RunCost) -> MeasuredRecipe | None:
        """This recipe's measurement, or one of the same model and batch (a ``-imagenet-preprocess``
        variant differs from its base only in a rescaling layer)."""
        if cost.recipe in self.recipes:
            return self.recipes[cost.recipe]
        for entry in self.recipes.values():
            if (
                entry.batch == cost.batch_size
                and entry.train_activations
                and math.isclose(entry.train_gflops, cost.train_gflops, rel_tol=1e-3)
                and math.isclose(entry.train_activations, cost.train_activations, rel_tol=1e-3)
            ):
                return entry
        return None

    def largest_compile(self) -> tuple[float, float]:
        """(train, eval) compile seconds assumed for a recipe not measured: the largest measured."""
        train = max((e.train_compile_seconds for e in self.recipes.values()), default=0.0)
        evaluation = max(
            (e.eval_compile_seconds or e.train_compile_seconds for e in self.recipes.values()), default=0.0
        )
        return train, evaluation


@functools.lru_cache(maxsize=4)
def load_reference(path: Path = REFERENCE) -> GpuReference | None:
    """The reference GPU, or None where its file is missing or unreadable (no GPU figures then)."""
    try:
        return GpuReference.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _steps(images: int, batch: int) -> int:
    return math.ceil(images / batch) if images else 0


def train_step_seconds(reference: GpuReference, cost: RunCost) -> tuple[float, str]:
    """One training step of this recipe on the reference GPU, and whether it was measured or fitted."""
    measured = reference.measured(cost)
    if measured is not None:
        return measured.step_seconds, "measured"
    flops = cost.train_gflops * 1e9 * cost.batch_size
    moved = cost.train_activations * BYTES_PER_ELEMENT * cost.batch_size
    return reference.fit.seconds(flops, moved), "fit"


def run_seconds(reference: GpuReference, cost: RunCost) -> tuple[RunSeconds, str]:
    """A run's seconds on the reference GPU, and its basis ("measured": its training step was
    timed there; "fit": from its FLOPs and activations). Each epoch is its training steps and
    its validation steps at the training batch; each run starts (``RUN_OVERHEAD_SECONDS``, measured
    on a CPU: the H200 took 7.5 s to import JAX and Keras and list its GPU) and compiles its
    training and evaluation steps for the full and the last partial batch (2 × each; evaluation
    compile measured for the fine-tunes, assumed equal to training's for the CNNs; recipes not
    measured take the largest measured)."""
    batch = cost.batch_size
    step, basis = train_step_seconds(reference, cost)
    measured = reference.measured(cost)
    if measured is not None and measured.predict_images_per_second:
        evaluation_step = batch / measured.predict_images_per_second
    else:
        evaluation_step = reference.fit.seconds(
            cost.eval_gflops * 1e9 * batch, cost.eval_activations * BYTES_PER_ELEMENT * batch
        )
    if measured is not None:
        train_compile = measured.train_compile_seconds
        eval_compile = measured.eval_compile_seconds if measured.eval_compile_seconds is not None else train_compile
    else:
        train_compile, eval_compile = reference.largest_compile()
    features = 0.0
    if cost.feature_images:
        feature_step = reference.fit.seconds(
            cost.backbone_gflops * 1e9 * FEATURE_BATCH, cost.backbone_activations * BYTES_PER_ELEMENT * FEATURE_BATCH
        )
        features = _steps(cost.feature_images, FEATURE_BATCH) * feature_step + eval_compile
    return (
        RunSeconds(
            overhead=RUN_OVERHEAD_SECONDS + 2 * (train_compile + eval_compile),
            features=features,
            epoch=_steps(cost.train_images, batch) * step + _steps(cost.validation_images, batch) * evaluation_step,
            test=_steps(cost.test_images, batch) * evaluation_step,
        ),
        basis,
    )


def memory_bytes(reference: GpuReference, cost: RunCost) -> float:
    """Peak GPU memory of one run: measured where it was, else ``MEMORY_BASE_BYTES`` and twice the
    activations of a training batch (an estimate: XLA frees and fuses; measured peaks were 0.45 GB
    for r004-step1, 15.0 GB for the VGG16 fine-tune, 7.9 GB for DenseNet121's)."""
    measured = reference.measured(cost)
    if measured is not None and measured.peak_memory_bytes:
        return measured.peak_memory_bytes
    return MEMORY_BASE_BYTES + 2 * cost.train_activations * BYTES_PER_ELEMENT * cost.batch_size


def gpu_share(reference: GpuReference, cost: RunCost, gpu_memory_bytes: float | None = None) -> float:
    """How much of one GPU a run of this recipe takes, for packing runs (``--jobs-per-gpu auto``):
    the part of its training step the GPU computes (the rest, the floor, is launch and dispatch
    that another run's work can fill), its memory against the GPU's, and never less than
    1 / ``MAX_RUNS_PER_GPU`` (4 at once was measured; more was not). Runs share a GPU while their
    shares add up to 1 at most: r004-step1 0.25 (4 at once), r002-proyecto-7 about 0.45 (2),
    the 224×224 fine-tunes about 0.9 (alone)."""
    step, _ = train_step_seconds(reference, cost)
    computing = min(max(step - reference.fit.floor_seconds, 0.0) / step, 1.0) if step > 0 else 1.0
    memory = memory_bytes(reference, cost) / (MEMORY_HEADROOM * (gpu_memory_bytes or reference.memory_bytes))
    return min(1.0, max(1 / MAX_RUNS_PER_GPU, computing, memory))


# Building the reference from gpu_check.py's files (benchmarks/fit_gpu_model.py) ----------------


def _sections(files: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each section's result from the latest file where it is ``ok`` (or ``partial``, if no file
    has it whole)."""
    found: dict[str, dict[str, Any]] = {}
    for status in ("partial", "ok"):
        for data in files:
            for name, section in data.get("sections", {}).items():
                if section.get("status") == status and section.get("result"):
                    found[name] = section["result"]
    return found


def build_reference(files: list[dict[str, Any]], counted: dict[str, Any], *, sources: list[str]) -> dict[str, Any]:
    """The reference file's content from gpu_check.py's JSON ``files`` (in the order they were
    made) and ``counted``: each measured recipe's ``harness.cost.run_cost.ModelFlops`` per image."""
    sections = _sections(files)
    versions = sections["versions"]
    gpu = versions["nvidia_smi"]["gpus"][0]
    recipes: dict[str, dict[str, Any]] = {}
    points, labels = [], []
    for run in sections.get("throughput_all", {}).get("runs", []):
        if "step_seconds" not in run:
            continue
        flops = counted[run["recipe"]]
        steps = sections["throughput_all"]["steps"]
        recipes[run["recipe"]] = asdict(
            MeasuredRecipe(
                batch=run["batch"],
                step_seconds=run["step_seconds"],
                train_compile_seconds=max(run["first_epoch_seconds"] - steps * run["step_seconds"], 0.0),
                train_gflops=flops.train / 1e9,
                train_activations=flops.train_activations,
            )
        )
    for run in sections.get("backbones_224", {}).get("runs", []):
        if "step_seconds" not in run:
            continue
        flops = counted[run["recipe"]]
        recipes[run["recipe"]] = asdict(
            MeasuredRecipe(
                batch=run["batch"],
                step_seconds=run["step_seconds"],
                train_compile_seconds=run["compile_seconds"],
                eval_compile_seconds=run["predict_first_seconds"],
                predict_images_per_second=run["predict_images_per_second"],
                peak_memory_bytes=run["peak_memory_bytes"],
                train_gflops=flops.train / 1e9,
                train_activations=flops.train_activations,
            )
        )
    packing = sections.get("packing", {})
    if packing.get("recipe") in recipes:
        alone = packing["1_at_once"]["workers"][0]
        recipes[packing["recipe"]]["peak_memory_bytes"] = alone["peak_memory_bytes"]
    for name, entry in recipes.items():
        flops = counted[name]
        points.append(
            (
                flops.train * entry["batch"],
                flops.train_activations * BYTES_PER_ELEMENT * entry["batch"],
                entry["step_seconds"],
            )
        )
        labels.append(name)
    fit = fit_steps(points)
    ratios = {name: fit.seconds(f, b) / s for name, (f, b, s) in zip(labels, points, strict=True)}
    steady = []
    for run in sections.get("steady_epochs", {}).get("runs", []):
        if run.get("kind") != "harness" or run["recipe"] not in recipes:
            continue
        flops, entry = counted[run["recipe"]], recipes[run["recipe"]]
        batch = entry["batch"]
        train_steps = _steps(sections["steady_epochs"]["train_images"], batch)
        validation_steps = _steps(sections["steady_epochs"]["validation_images"], batch)
        evaluation = fit.seconds(flops.forward * batch, flops.forward_activations * BYTES_PER_ELEMENT * batch)
        modelled = train_steps * entry["step_seconds"] + validation_steps * evaluation
        steady.append(
            {
                "recipe": run["recipe"],
                "modelled_epoch_seconds": modelled,
                "measured_epoch_seconds": run["steady_epoch_seconds"],
                "modelled_over_measured": modelled / run["steady_epoch_seconds"],
            }
        )
    backend = versions.get("keras_backend", "?")
    packages = versions.get("packages", {})
    return {
        "schema": 1,
        "made_by": "python benchmarks/fit_gpu_model.py " + " ".join(sources),
        "sources": sources,
        "name": gpu["name"],
        "words": f"an {gpu['name']}, measured under {backend.upper() if backend == 'jax' else backend}",
        "memory_bytes": float(str(gpu["memory.total"]).split()[0]) * 2**20,
        "versions": {k: packages.get(k) for k in (backend, "keras") if packages.get(k)},
        "precision": "float32 (TF32 on this GPU: JAX's default matmul and convolution precision)",
        "fit": {
            "form": "seconds per training step = floor_seconds + FLOPs / flops_per_second + activation bytes / bytes_per_second",
            "parameters": asdict(fit),
            "points": len(points),
            "fitted_over_measured": {"min": min(ratios.values()), "max": max(ratios.values())},
            "per_recipe": dict(sorted(ratios.items())),
        },
        "steady_epochs_check": steady,
        "packing": {
            "recipe": packing.get("recipe"),
            "total_over_alone": packing.get("total_over_alone"),
            "runs_at_once": packing.get("4_at_once", {}).get("count"),
        },
        "recipes": recipes,
    }
