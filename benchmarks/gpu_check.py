"""One prepared check for a GPU lent for a few minutes. A benchmark, not a test.

    KERAS_BACKEND=jax python3 benchmarks/gpu_check.py --out gpu_check.json [--budget-seconds 420]

It needs only Keras and its backend (JAX; TensorFlow works too), numpy and scikit-learn: no
MLflow, no dataset (random CIFAR-shaped images), no network (backbones with ``weights=None``).
Sections run most valuable first; each checks the time left and is skipped, with the reason, when
it cannot fit, so the whole run stays within ``--budget-seconds`` including start-up and every
XLA compile. Every measurement is written to the JSON file the moment it is taken (the whole
file, atomically), so a kill leaves a valid file with everything measured so far; an exception
is recorded in its section (type, message, the end of the traceback) and the next section runs.

Sections, in this order (docs/gpu.md says what each number means):

- ``versions``: Python, JAX / jaxlib / Keras / numpy and the CUDA plugin, the devices JAX
  sees, ``nvidia-smi`` (GPU, driver, memory), how long JAX took to start.
- ``xla_auto``: what ``jit_compile="auto"`` resolves to here, by the harness's rule
  (``harness.run.devices.resolve_jit_compile``) and by Keras on the compiled models.
- ``backbones_224``: the 224×224 fine-tunes (VGG16, DenseNet121, random weights) trained as a
  run trains them: XLA compile seconds, seconds per step, images/s, peak GPU memory. Each in
  its own process, with a timeout.
- ``steady_epochs``: steady epoch time of three CNNs of different sizes through the harness
  (``harness.run.train.train_and_evaluate``) against a bare ``model.fit`` of the same model.
- ``tf32``: frozen VGG16 features under the backend's float32 (``highest``), TF32, its default
  precision and mixed_bfloat16, for inputs in [0, 1] and in [0, 1/255]; which one the default is.
- ``packing``: one small CNN alone, then four copies at once on the same GPU (the harness's
  ``--jobs-per-gpu 4``): images/s of each and in total.
- ``compiled_steps``: one compiled train step of every kind of CNN recipe (the
  representatives of ``tests/test_gpu_proxies.py``) in float32 and mixed_bfloat16.
- ``backbones_224_bf16``, ``steady_epochs_bf16``: the same two measurements under mixed_bfloat16.
- ``torch_tf32``: PyTorch's TF32 defaults and their error on a convolution (own process).
- ``throughput_all``: images/s and achieved TFLOP/s of every CNN recipe at its batch size,
  as long as time is left (for the cost model).

``--tiny`` shrinks every size (few steps, small batches, the first recipe of each list, 32×32
backbones) so the whole script, every section's code, runs on a CPU in a test.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import hashlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for folder in (REPO, REPO / "benchmarks"):  # harness, architectures; throughput.py's bare Keras fit
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import numpy as np  # noqa: E402

SCHEMA = 1
FULL_TRAIN_IMAGES = 40_000  # a full-profile epoch (harness.cost.run_cost: 50,000 less 10,000 validation)
# One representative per kind of CNN recipe (same layer types and augmentation values): the
# list tests/test_gpu_proxies.py keeps (tests/test_gpu_check.py checks they are the same), the
# first of them is the one --tiny takes (an affine warp).
CNN_REPRESENTATIVES = [
    "r004-step10",
    "r004-step3",
    "r000-proyecto-1",
    "r000-proyecto-2",
    "r000-proyecto-9",
    "r001-proyecto-11",
    "r002-proyecto-9",
    "r003-arq2",
    "r003-arq2-leaky",
    "r003-arq3-aug-mejor",
    "r003-arq3-aug-peor",
    "r004-step4",
]
STEADY_RECIPES = ["r004-step1", "r004-step7", "r002-proyecto-7"]  # 0.06, 0.23, 3.7 train GFLOP/image (the largest CNN)
BACKBONE_RECIPES = ["r003-vgg16-finetune", "r003-densenet121-finetune"]
PRECISIONS = ["float32", "mixed_bfloat16"]
PACKAGES = [
    "jax",
    "jaxlib",
    "jax-cuda13-plugin",
    "jax-cuda13-pjrt",
    "jax-cuda12-plugin",
    "jax-cuda12-pjrt",
    "keras",
    "numpy",
    "ml-dtypes",
    "scikit-learn",
    "scipy",
    "h5py",
    "optree",
    "namex",
    "rich",
    "absl-py",
    "tensorflow",
    "torch",
    "mlflow",
]
ENVIRONMENT_KEYS = [
    "KERAS_BACKEND",
    "CUDA_VISIBLE_DEVICES",
    "XLA_FLAGS",
    "XLA_PYTHON_CLIENT_PREALLOCATE",
    "XLA_PYTHON_CLIENT_MEM_FRACTION",
    "JAX_PLATFORMS",
    "JAX_DEFAULT_MATMUL_PRECISION",
    "NVIDIA_TF32_OVERRIDE",
    "TF_FORCE_GPU_ALLOW_GROWTH",
    "PYTHONPATH",
]


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Every size the sections use: the real ones, or ``tiny`` ones for a CPU test."""

    recipes_cap: int | None = None  # at most this many recipes per list (tiny: 1)
    batch_cap: int | None = None  # at most this batch size (tiny: small)
    steady_train_images: int = 20_480  # per epoch; validation is a quarter, as in the full profile
    steady_epochs: int = 3  # the first compiles and is reported apart
    backbone_size: int = 224  # the fine-tunes' resize (architectures.transfer.RESIZED)
    backbone_steps: int = 16  # train steps per epoch (one execution of STEPS_PER_EXECUTION)
    backbone_epochs: int = 3
    predict_cap: int = 1024  # images per predict step at most (the harness's EVALUATION_BATCH)
    tf32_images: int = 8
    tf32_size: int = 224
    pack_recipe: str = "r004-step1"
    pack_count: int = 4
    pack_seconds: float = 15.0  # measured wall time, all copies at once
    pack_steps: int = 313  # steps per epoch in a packed run: a full-profile epoch of r004-step1 (40,000 / 128)
    step_repeats: int = 3  # timed train steps after the compiling one
    throughput_steps: int = 64  # timed steps per recipe in throughput_all (after a warm-up epoch)


FULL = Sizes()
TINY = Sizes(
    recipes_cap=1,
    batch_cap=4,  # a CPU's emulated float16 and a 32x32 VGG16 cost per image: the test runs the code, not the load
    steady_train_images=64,
    steady_epochs=2,
    backbone_size=32,
    backbone_steps=2,
    backbone_epochs=2,
    predict_cap=16,
    tf32_images=2,
    tf32_size=32,
    pack_count=2,
    pack_seconds=2.0,
    pack_steps=4,
    step_repeats=1,
    throughput_steps=4,
)


class Skip(Exception):
    """A section that has nothing to measure here (the reason is recorded)."""


class Terminated(BaseException):
    """SIGTERM (a time limit): record where it stopped and leave."""


# ---------------------------------------------------------------------------------------------
# The record: one JSON file, rewritten whole after every measurement
# ---------------------------------------------------------------------------------------------


class Report:
    """The JSON file: metadata, then one entry per section in the order run."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = path
        self.data: dict[str, Any] = {**meta, "sections": {}}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(handle, "w") as stream:
            json.dump(self.data, stream, indent=1, default=_json_default)
            stream.write("\n")
        os.replace(temporary, self.path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def describe_error(error: BaseException) -> dict[str, Any]:
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return {"type": type(error).__name__, "message": str(error)[:2000], "traceback": "".join(lines)[-3000:]}


class Budget:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        return self.seconds - self.elapsed()


def say(budget: Budget, message: str) -> None:
    print(f"[{budget.elapsed():6.1f} s] {message}", flush=True)


class Context:
    """What every section shares: options, sizes, the clock, the record, lazy imports."""

    def __init__(self, args: argparse.Namespace, report: Report, budget: Budget) -> None:
        self.args = args
        self.sizes = TINY if args.tiny else FULL
        self.report = report
        self.budget = budget
        self.children: list[subprocess.Popen] = []
        self.stop_reason: str | None = None  # set when nothing after this is worth measuring

    def save(self) -> None:
        self.report.save()

    def recipes(self, names: list[str]) -> list[str]:
        cap = self.sizes.recipes_cap
        return names[:cap] if cap else names

    def batch(self, batch: int) -> int:
        cap = self.sizes.batch_cap
        return min(batch, cap) if cap else batch

    @functools.cached_property
    def config(self):
        from harness.config import load_config

        return load_config(REPO / "benchmarks.toml")

    def recipe(self, name: str):
        """The recipe, its callbacks dropped (every epoch is timed) and its batch capped."""
        recipe = self.config.recipe(name)
        training = dataclasses.replace(recipe.training, batch_size=self.batch(recipe.training.batch_size))
        return dataclasses.replace(recipe, callbacks=(), training=training)

    def fits(self, need: float, what: str, out: dict[str, Any]) -> bool:
        """Whether ``need`` seconds are left; if not, the section says what it left out."""
        left = self.budget.left() - self.args.reserve_seconds
        if left >= need:
            return True
        out.setdefault("left_out", []).append(f"{what}: {left:.0f} s left, needs about {need:.0f} s")
        self.save()
        return False


def images(count: int, seed: int, size: int = 32) -> np.ndarray:
    """Random CIFAR-like float32 images in [0, 1] (uint8 pixels scaled once, as the harness does)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8).astype(np.float32) / np.float32(255)


def labels(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 10, size=count).astype(np.int32)


def synthetic_split(train: int, validation: int, test: int, seed: int = 0):
    from harness.run.data import Split

    return Split(
        x_train=images(train, seed),
        y_train=labels(train, seed),
        x_validation=images(validation, seed + 1),
        y_validation=labels(validation, seed + 1),
        x_test=images(test, seed + 2),
        y_test=labels(test, seed + 2),
    )


def targets(recipe, y: np.ndarray) -> np.ndarray:
    if recipe.training.loss == "categorical_crossentropy":
        return np.eye(10, dtype=np.float32)[y]
    return y


@contextlib.contextmanager
def dtype_policy(precision: str):
    import keras

    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def harness_xla() -> bool:
    """What the harness compiles a run with here (jit_compile "auto", its own rule)."""
    import keras

    from harness.environment import accelerator_names
    from harness.run.devices import resolve_jit_compile

    backend = keras.backend.backend()
    return resolve_jit_compile("auto", backend=backend, accelerator=bool(accelerator_names(backend)))


def peak_memory_bytes() -> int | None:
    """The backend's peak device memory in this process (JAX and torch; None elsewhere)."""
    try:
        import keras

        if keras.backend.backend() == "jax":
            import jax

            stats = jax.local_devices()[0].memory_stats() or {}
            return stats.get("peak_bytes_in_use")
    except Exception:  # noqa: BLE001  a memory figure must never fail a measurement
        return None
    return None


def steady(seconds: list[float]) -> float:
    """The fastest epoch after the first (which traces and compiles)."""
    return min(seconds[1:]) if len(seconds) > 1 else seconds[0]


@functools.cache
def _cache_standardization() -> None:
    """ZCA whitening fits a 3072×3072 SVD per model built: once per preset in this process."""
    import harness.run.augment

    original = harness.run.augment.fit_standardization
    cache: dict[tuple, Any] = {}

    @functools.wraps(original)
    def cached(preset, x_train):
        key = (json.dumps(preset, sort_keys=True), x_train.shape)
        if key not in cache:
            cache[key] = original(preset, x_train)
        return cache[key]

    harness.run.augment.fit_standardization = cached


# ---------------------------------------------------------------------------------------------
# Worker processes: packed runs, backbones, torch (each prints RESULT lines as it measures)
# ---------------------------------------------------------------------------------------------


def emit(**values: Any) -> None:
    print("RESULT " + json.dumps(values, default=_json_default), flush=True)


def run_workers(ctx: Context, kind: str, specs: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
    """Start one worker process per spec at once; wait at most ``timeout`` s; each one's RESULT
    lines merged into one dict (what a killed worker measured before is kept)."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    processes = []
    for spec in specs:
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--spec", json.dumps(spec)]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment, cwd=REPO
        )
        ctx.children.append(process)
        processes.append(process)
    deadline = time.perf_counter() + timeout
    results = []
    for process in processes:
        try:
            output, _ = process.communicate(timeout=max(1.0, deadline - time.perf_counter()))
            timed_out = False
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            timed_out = True
        ctx.children.remove(process)
        merged: dict[str, Any] = {}
        for line in output.splitlines():
            if line.startswith("RESULT "):
                with contextlib.suppress(ValueError):
                    merged.update(json.loads(line[len("RESULT ") :]))
        merged["exit_code"] = process.returncode
        if timed_out:
            merged["timed_out_after_seconds"] = round(timeout, 1)
        if process.returncode != 0:
            merged["output_tail"] = "\n".join(output.splitlines()[-25:])
        results.append(merged)
    return results


def worker_pack(spec: dict[str, Any]) -> None:
    """One packed run: compile, wait until every copy has compiled, then train for a fixed time."""
    started = time.perf_counter()
    import keras

    from harness.config import load_config
    from harness.run.train import STEPS_PER_EXECUTION, assemble, make_optimizer

    emit(import_seconds=time.perf_counter() - started)
    config = load_config(REPO / "benchmarks.toml")
    recipe = config.recipe(spec["recipe"])
    batch = spec["batch"]
    steps = spec["steps"]
    x, y = images(steps * batch, spec["index"]), labels(steps * batch, spec["index"])
    built = assemble(
        recipe, seed=spec["index"], augmentation=config.augmentation(recipe.augmentation), x_train=x, xla=True
    )
    model = built.model
    model.compile(
        optimizer=make_optimizer(recipe),
        loss=recipe.training.loss,
        jit_compile=True,
        steps_per_execution=min(STEPS_PER_EXECUTION, steps),
    )
    y = targets(recipe, y)
    warm = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    emit(ready_seconds=time.perf_counter() - started, first_epoch_seconds=time.perf_counter() - warm)
    barrier = Path(spec["barrier"])
    (barrier / f"ready-{spec['index']}").touch()
    waited = time.perf_counter()
    while len(list(barrier.glob("ready-*"))) < spec["count"] and time.perf_counter() - waited < spec["wait_seconds"]:
        time.sleep(0.02)
    emit(
        barrier_complete=len(list(barrier.glob("ready-*"))) >= spec["count"],
        waited_seconds=time.perf_counter() - waited,
    )

    class StopAfter(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epochs = 0

        def on_epoch_end(self, epoch, logs=None):
            self.epochs += 1
            if time.perf_counter() - began >= spec["seconds"]:
                self.model.stop_training = True

    stopper = StopAfter()
    began_wall, began = time.time(), time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=10**6, verbose=0, callbacks=[stopper])
    seconds = time.perf_counter() - began
    emit(
        measured_seconds=seconds,
        began_unix=began_wall,
        ended_unix=time.time(),
        images=stopper.epochs * steps * batch,
        images_per_second=stopper.epochs * steps * batch / seconds,
        peak_memory_bytes=peak_memory_bytes(),
    )


def worker_backbone(spec: dict[str, Any]) -> None:
    """One 224×224 fine-tune (random weights) as a run trains it: compile, train steps, evaluate."""
    started = time.perf_counter()
    import keras

    import architectures.transfer
    from harness.config import load_config
    from harness.cost.run_cost import model_flops
    from harness.run.train import STEPS_PER_EXECUTION, assemble, evaluation_batch, make_optimizer

    emit(import_seconds=time.perf_counter() - started, backend=keras.backend.backend())
    architectures.transfer.RESIZED = spec["size"]  # 224: the recipes' own size; smaller only for --tiny
    config = load_config(REPO / "benchmarks.toml")
    recipe = config.recipe(spec["recipe"])
    batch, steps = spec["batch"], spec["steps"]
    x, y = images(steps * batch, 0), targets(recipe, labels(steps * batch, 0))
    keras.mixed_precision.set_global_policy(spec["precision"])
    building = time.perf_counter()
    built = assemble(
        recipe,
        seed=0,
        augmentation=config.augmentation(recipe.augmentation),
        x_train=x,
        xla=True,
        build_kwargs={"weights": None},
    )
    model = built.model
    flops = model_flops(model)
    emit(
        build_seconds=time.perf_counter() - building,
        params=built.params,
        trainable_params=built.trainable_params,
        train_gflops_per_image=flops.train / 1e9,
        forward_gflops_per_image=flops.forward / 1e9,
        batch=batch,
        steps_per_epoch=steps,
    )
    model.compile(
        optimizer=make_optimizer(recipe),
        loss=recipe.training.loss,
        metrics=["accuracy"],
        jit_compile=True,
        steps_per_execution=min(STEPS_PER_EXECUTION, steps),
    )
    epoch_seconds: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.began = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.began)
            emit(epoch_seconds=epoch_seconds, loss=float((logs or {}).get("loss", float("nan"))))

    model.fit(x, y, batch_size=batch, epochs=spec["epochs"], verbose=0, callbacks=[Timer()])
    fastest = steady(epoch_seconds)
    emit(
        first_epoch_seconds=epoch_seconds[0],
        compile_seconds=epoch_seconds[0] - fastest,
        step_seconds=fastest / steps,
        train_images_per_second=steps * batch / fastest,
        train_tflops=flops.train * steps * batch / fastest / 1e12,
        full_epoch_train_seconds=FULL_TRAIN_IMAGES * fastest / (steps * batch),
        peak_memory_bytes=peak_memory_bytes(),
    )
    predict_batch = min(evaluation_batch(model, batch), spec["predict_cap"])  # the harness's test batch
    x_eval = images(2 * predict_batch, 1)
    timed = []
    for _ in range(2):
        began = time.perf_counter()
        model.predict(x_eval, batch_size=predict_batch, verbose=0)
        timed.append(time.perf_counter() - began)
    emit(
        predict_batch=predict_batch,
        predict_first_seconds=timed[0],
        predict_images_per_second=len(x_eval) / timed[1],
        peak_memory_bytes=peak_memory_bytes(),
    )


def worker_torch(spec: dict[str, Any]) -> None:
    """PyTorch's TF32 defaults, and the error of a convolution and a matmul with TF32 on and off."""
    try:
        import torch
    except ImportError as error:
        emit(installed=False, reason=str(error))
        return
    emit(
        installed=True,
        version=torch.__version__,
        cuda_available=torch.cuda.is_available(),
        cuda_version=torch.version.cuda,
        cudnn_version=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        default_matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
        default_cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
        default_float32_matmul_precision=torch.get_float32_matmul_precision(),
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        emit(device_name=torch.cuda.get_device_name(0))
    generator = torch.Generator().manual_seed(0)
    size = spec["size"]
    x = torch.rand((8, 64, size, size), generator=generator, dtype=torch.float64)
    kernel = torch.randn((128, 64, 3, 3), generator=generator, dtype=torch.float64) * 0.05
    a = torch.rand((1024, 1024), generator=generator, dtype=torch.float64)
    reference_conv = torch.nn.functional.conv2d(x, kernel, padding=1)
    reference_matmul = a @ a
    defaults = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    errors = {}
    for setting, flags in (("default", defaults), ("tf32_on", (True, True)), ("tf32_off", (False, False))):
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags
        conv = torch.nn.functional.conv2d(x.float().to(device), kernel.float().to(device), padding=1).double().cpu()
        matmul = (a.float().to(device) @ a.float().to(device)).double().cpu()
        errors[setting] = {
            "conv_relative_error": float((conv - reference_conv).norm() / reference_conv.norm()),
            "matmul_relative_error": float((matmul - reference_matmul).norm() / reference_matmul.norm()),
        }
    emit(errors_against_float64=errors)


WORKERS = {"pack": worker_pack, "backbone": worker_backbone, "torch": worker_torch}


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


def section_versions(ctx: Context, out: dict[str, Any]) -> None:
    from importlib import metadata

    out["python"] = platform.python_version()
    out["platform"] = platform.platform()
    out["packages"] = {}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out["packages"][name] = metadata.version(name)
    out["environment"] = {key: os.environ[key] for key in ENVIRONMENT_KEYS if key in os.environ}
    out["nvidia_smi"] = nvidia_smi()
    ctx.save()
    if os.environ["KERAS_BACKEND"] == "jax":
        began = time.perf_counter()
        import jax

        out["jax_import_seconds"] = time.perf_counter() - began
        began = time.perf_counter()
        devices = jax.devices()
        out["jax_devices_seconds"] = time.perf_counter() - began
        out["jax_default_backend"] = jax.default_backend()
        out["devices"] = []
        for device in devices:
            entry = {"id": device.id, "platform": device.platform, "kind": device.device_kind}
            with contextlib.suppress(Exception):
                entry["bytes_limit"] = (device.memory_stats() or {}).get("bytes_limit")
            out["devices"].append(entry)
        ctx.save()
    began = time.perf_counter()
    import keras

    from harness.environment import accelerator_names, cpu_description
    from harness.run.devices import visible_gpus

    out["keras_import_seconds"] = time.perf_counter() - began
    out["keras_backend"] = keras.backend.backend()
    out["accelerators"] = accelerator_names(out["keras_backend"])
    out["cpu"] = cpu_description()
    out["harness_visible_gpus"] = [dataclasses.asdict(gpu) for gpu in visible_gpus()]
    if not out["accelerators"] and not (ctx.args.tiny or ctx.args.allow_cpu):
        ctx.stop_reason = f"{out['keras_backend']} sees no GPU (see versions); --allow-cpu measures the CPU anyway"
        out["warning"] = ctx.stop_reason


def nvidia_smi() -> dict[str, Any]:
    """The driver's view: each GPU's name, driver, memory (and more where the driver knows the
    field), and the CUDA version its banner names."""

    def query(fields: str) -> list[dict[str, str]]:
        listing = subprocess.run(
            ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        return [
            dict(zip(fields.split(","), (p.strip() for p in line.split(",")), strict=False))
            for line in listing.strip().splitlines()
        ]

    try:
        try:
            gpus = query("name,driver_version,memory.total,compute_cap,clocks.max.sm,power.limit,pci.bus_id")
        except subprocess.CalledProcessError:  # an older driver without one of the fields
            gpus = query("name,driver_version,memory.total")
        banner = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError) as error:
        return {"available": False, "reason": f"{type(error).__name__}: {error}"}
    cuda = next(
        (line.split("CUDA Version:")[1].strip(" |") for line in banner.splitlines() if "CUDA Version:" in line), None
    )
    return {"available": True, "gpus": gpus, "driver_cuda_version": cuda}


def section_xla_auto(ctx: Context, out: dict[str, Any]) -> None:
    import inspect

    import keras

    from harness.environment import accelerator_names
    from harness.run.devices import resolve_jit_compile
    from harness.run.train import assemble, make_optimizer

    backend = keras.backend.backend()
    accelerators = accelerator_names(backend)
    out["backend"] = backend
    out["accelerators"] = accelerators
    out["harness_rule"] = resolve_jit_compile("auto", backend=backend, accelerator=bool(accelerators))
    with contextlib.suppress(Exception):
        from keras.src.trainers.trainer import Trainer

        out["keras_rule_source"] = inspect.getsource(Trainer._resolve_auto_jit_compile)
    x = images(64, 0)
    for name in ("r004-step1", "r004-step10"):  # plain, and with the affine warp (built for XLA or not)
        recipe = ctx.recipe(name)
        for xla in (True, False):
            built = assemble(
                recipe, seed=0, augmentation=ctx.config.augmentation(recipe.augmentation), x_train=x, xla=xla
            )
            built.model.compile(optimizer=make_optimizer(recipe), loss=recipe.training.loss, jit_compile="auto")
            out[f"keras_auto[{name}, augmentation built for xla={xla}]"] = bool(built.model.jit_compile)
    chosen = out[f"keras_auto[r004-step10, augmentation built for xla={out['harness_rule']}]"]
    out["keras_agrees_with_harness"] = chosen == out["harness_rule"]


def section_backbones_224(ctx: Context, out: dict[str, Any], precision: str = "float32") -> None:
    sizes = ctx.sizes
    out.update(size=sizes.backbone_size, precision=precision, runs=[])
    for name in ctx.recipes(BACKBONE_RECIPES):
        what = f"{name} {precision}"
        if not ctx.fits(ctx.args.backbone_min_seconds, what, out):
            continue
        timeout = min(ctx.args.backbone_timeout, ctx.budget.left() - ctx.args.reserve_seconds)
        batch = ctx.batch(ctx.config.recipe(name).training.batch_size)
        spec = {
            "recipe": name,
            "precision": precision,
            "batch": batch,
            "steps": sizes.backbone_steps,
            "epochs": sizes.backbone_epochs,
            "size": sizes.backbone_size,
            "predict_cap": sizes.predict_cap,
        }
        began = time.perf_counter()
        (result,) = run_workers(ctx, "backbone", [spec], timeout)
        out["runs"].append(
            {"recipe": name, "precision": precision, "wall_seconds": time.perf_counter() - began, **result}
        )
        ctx.save()
        say(ctx.budget, f"  {what}: {_brief(result, 'step_seconds', 'compile_seconds', 'train_images_per_second')}")


def _brief(result: dict[str, Any], *keys: str) -> str:
    if result.get("exit_code"):
        return f"exit {result['exit_code']}" + (" (timed out)" if "timed_out_after_seconds" in result else "")
    return ", ".join(f"{key} {result[key]:.4g}" for key in keys if isinstance(result.get(key), int | float))


def section_steady_epochs(ctx: Context, out: dict[str, Any], precision: str = "float32") -> None:
    import keras
    from throughput import compiled_model, epoch_timer

    import architectures
    from harness.config import Profile
    from harness.cost.run_cost import model_flops
    from harness.run.train import STEPS_PER_EXECUTION, train_and_evaluate

    sizes = ctx.sizes
    train = sizes.steady_train_images
    split = synthetic_split(train, train // 4, min(1024, train // 4))
    profile = Profile(name="gpu-check", description="timed epochs", max_epochs=sizes.steady_epochs)
    out.update(
        train_images=train, validation_images=train // 4, steps_per_execution=STEPS_PER_EXECUTION, precision=precision
    )
    out["runs"] = []
    last_seconds = 0.0

    def record(name, recipe, kind, precision, epoch_seconds, flops):
        fastest = steady(epoch_seconds)
        work = flops.train * train + flops.forward * (train // 4)
        run = {
            "recipe": name,
            "kind": kind,
            "precision": precision,
            "batch": recipe.training.batch_size,
            "epoch_seconds": epoch_seconds,
            "steady_epoch_seconds": fastest,
            "train_images_per_second": train
            / fastest,  # an epoch's training images / its seconds (validation included)
            "full_epoch_seconds": fastest * FULL_TRAIN_IMAGES / train,
            "tflops": work / fastest / 1e12,
        }
        out["runs"].append(run)
        ctx.save()
        say(ctx.budget, f"  {name} {kind} {precision}: {fastest:.3f} s/epoch, {train / fastest:,.0f} img/s")
        return run

    for name in ctx.recipes(STEADY_RECIPES):
        if not ctx.fits(max(20.0, 1.5 * last_seconds), f"{name} {precision}", out):
            continue
        began = time.perf_counter()
        recipe = ctx.recipe(name)
        flops = model_flops(architectures.build(recipe.architecture, **dict(recipe.architecture_options)))
        with dtype_policy(precision):
            result = train_and_evaluate(
                recipe, profile, split, seed=0, augmentation=ctx.config.augmentation(recipe.augmentation)
            )
        harness = record(name, recipe, "harness", precision, result.epoch_seconds, flops)
        if precision == "float32":
            model = compiled_model(recipe, 0, STEPS_PER_EXECUTION)
            timer = epoch_timer()
            model.fit(
                split.x_train,
                split.y_train,
                batch_size=recipe.training.batch_size,
                epochs=sizes.steady_epochs,
                validation_data=(split.x_validation, split.y_validation),
                shuffle=True,
                callbacks=[timer],
                verbose=0,
            )
            bare = record(name, recipe, "bare", precision, timer.seconds, flops)
            harness["harness_over_bare"] = harness["steady_epoch_seconds"] / bare["steady_epoch_seconds"]
        keras.backend.clear_session()
        last_seconds = time.perf_counter() - began
        ctx.save()


@contextlib.contextmanager
def precision_context(backend: str, precision: str):
    """float32 convolutions and matmuls at ``precision`` while inside: "default" (the backend's
    own choice), or "highest" / "tensorfloat32" as the harness sets them for a float32 / tf32
    run (``harness.run.devices.set_tf32``), so this measures what a run computes."""
    if precision == "default":
        yield
        return
    from harness.run.devices import set_tf32

    restore = set_tf32(backend, precision == "tensorfloat32")
    try:
        yield
    finally:
        restore()


def section_tf32(ctx: Context, out: dict[str, Any]) -> None:
    import keras

    backend = keras.backend.backend()
    size, count = ctx.sizes.tf32_size, ctx.sizes.tf32_images

    def features_model():
        vgg16 = keras.applications.VGG16(include_top=False, weights=None, input_shape=(size, size, 3))
        layers = [keras.Input((32, 32, 3)), keras.layers.Resizing(size, size), vgg16, keras.layers.Flatten()]
        return keras.Sequential(layers, name="features"), vgg16

    keras.utils.set_random_seed(0)
    model, vgg16 = features_model()
    with dtype_policy("mixed_bfloat16"):  # the harness's --precision mixed_bfloat16: bf16 compute
        bf16_model, _ = features_model()
    x = images(count, 3)
    out.update(backbone="VGG16 (weights=None)", resized_to=size, images=count, backend=backend)
    forward, bf16_forward = Forward(model, backend), Forward(bf16_model, backend)
    out["runs"] = []
    out["hlo_precision"] = {}
    for biases in ("zero", "calibrated"):
        if biases == "calibrated":
            _calibrate_biases(model, vgg16, x)
        bf16_model.set_weights(model.get_weights())
        for scale_name, scale in (("[0, 1]", 1.0), ("[0, 1/255]", 1.0 / 255.0)):
            inputs = x * np.float32(scale)
            features: dict[str, np.ndarray] = {}
            for precision in ("highest", "default", "tensorfloat32"):
                with precision_context(backend, precision):
                    features[precision] = forward(inputs)
                    if precision not in out["hlo_precision"]:
                        out["hlo_precision"][precision] = forward.precision_tags(inputs)
            features["mixed_bfloat16"] = bf16_forward(inputs)
            reference = features["highest"]
            for precision, value in features.items():
                out["runs"].append(
                    {"biases": biases, "inputs": scale_name, "precision": precision, **_errors(value, reference)}
                )
            if biases == "calibrated" and scale == 1.0:
                out.update(_default_equals(features))
            ctx.save()


class Forward:
    """features(x) under the float32 precision in force at the call: on JAX a jitted stateless
    call, whose compilation cache is keyed by that precision (compiled anew for each)."""

    def __init__(self, model, backend: str) -> None:
        self.model, self.backend = model, backend
        if backend == "jax":
            import jax

            self.jitted = jax.jit(
                lambda trainable, non_trainable, x: model.stateless_call(trainable, non_trainable, x, training=False)[0]
            )

    def _variables(self) -> tuple[list, list]:
        return [v.value for v in self.model.trainable_variables], [v.value for v in self.model.non_trainable_variables]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import keras

        if self.backend != "jax":
            return np.asarray(keras.ops.convert_to_numpy(self.model(x, training=False)), dtype=np.float64)
        return np.asarray(self.jitted(*self._variables(), x), dtype=np.float64)

    def precision_tags(self, x: np.ndarray) -> list[str]:
        """The operand precisions the compiled program's convolutions and dots carry (JAX)."""
        import re

        if self.backend != "jax":
            return []
        text = self.jitted.lower(*self._variables(), x).as_text()
        tags = set(re.findall(r"(?:precision = \[|#stablehlo<precision )(\w+)", text))
        return sorted(tags) or ["(none: the compiler's default)"]


def _calibrate_biases(model, vgg16, x: np.ndarray) -> None:
    """Give every convolution a bias as large as its pre-activation's spread on [0, 1] inputs
    (per channel, drawn N(0, std)): a stand-in for ImageNet weights, whose biases are of the
    order of the activations, while ``weights=None`` builds zero biases."""
    import keras

    rng = np.random.default_rng(7)
    h = keras.ops.convert_to_tensor(x)
    for layer in model.layers[:-2]:  # the resize
        h = layer(h)
    for layer in vgg16.layers[1:]:
        if isinstance(layer, keras.layers.Conv2D):
            activation, layer.activation = layer.activation, keras.activations.linear
            layer.bias.assign(np.zeros(layer.bias.shape, np.float32))
            spread = np.asarray(keras.ops.convert_to_numpy(layer(h))).std(axis=(0, 1, 2))
            layer.bias.assign((rng.standard_normal(spread.shape) * spread).astype(np.float32))
            layer.activation = activation
        h = layer(h)


def _errors(value: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Relative error of the features, and of their image-dependent part (each image's features
    less the batch mean: what a head learns to tell images apart by)."""
    signal = reference - reference.mean(axis=0)
    deviation = value - value.mean(axis=0) - signal
    scale = float(np.linalg.norm(reference)) or 1.0
    return {
        "relative_error": float(np.linalg.norm(value - reference)) / scale,
        "signal_relative_error": float(np.linalg.norm(deviation)) / (float(np.linalg.norm(signal)) or 1.0),
        "max_abs_error": float(np.abs(value - reference).max()),
        "signal_over_features": float(np.linalg.norm(signal)) / scale,
    }


def _default_equals(features: dict[str, np.ndarray]) -> dict[str, str]:
    """Which explicit precision the backend's default gave bit for bit ('none' if none did), and
    which it is closest to."""
    default = features["default"]
    others = [p for p in features if p != "default"]
    equal = next((p for p in others if np.array_equal(default, features[p])), "none")
    closest = min(others, key=lambda p: float(np.linalg.norm(default - features[p])))
    return {"default_equals": equal, "default_closest": closest}


def section_packing(ctx: Context, out: dict[str, Any]) -> None:
    sizes = ctx.sizes
    recipe = ctx.config.recipe(sizes.pack_recipe)
    batch = ctx.batch(recipe.training.batch_size)
    out.update(recipe=sizes.pack_recipe, batch=batch, measured_seconds=sizes.pack_seconds)
    for count in (1, sizes.pack_count):
        what = f"{count} at once"
        if not ctx.fits(ctx.args.pack_min_seconds, what, out):
            return
        with tempfile.TemporaryDirectory(prefix="gpu-check-pack-") as barrier:
            specs = [
                {
                    "recipe": sizes.pack_recipe,
                    "batch": batch,
                    "steps": sizes.pack_steps,
                    "seconds": sizes.pack_seconds,
                    "index": index,
                    "count": count,
                    "barrier": barrier,
                    "wait_seconds": ctx.args.pack_timeout / 2,
                }
                for index in range(count)
            ]
            timeout = min(ctx.args.pack_timeout, ctx.budget.left() - ctx.args.reserve_seconds)
            results = run_workers(ctx, "pack", specs, timeout)
        rates = [r.get("images_per_second") for r in results]
        entry = {"count": count, "workers": results}
        if all(isinstance(rate, float) for rate in rates):
            entry["images_per_second_total"] = sum(rates)
            began = max(r["began_unix"] for r in results)
            ended = min(r["ended_unix"] for r in results)
            entry["overlap_seconds"] = max(0.0, ended - began)
        out[f"{count}_at_once"] = entry
        ctx.save()
        say(
            ctx.budget,
            f"  {what}: "
            + ", ".join(f"{rate:,.0f}" if isinstance(rate, float) else "failed" for rate in rates)
            + " img/s",
        )
    alone, packed = out.get("1_at_once", {}), out.get(f"{sizes.pack_count}_at_once", {})
    if "images_per_second_total" in alone and "images_per_second_total" in packed:
        out["total_over_alone"] = packed["images_per_second_total"] / alone["images_per_second_total"]


def section_compiled_steps(ctx: Context, out: dict[str, Any]) -> None:
    import keras

    from harness.run.train import assemble, make_optimizer

    _cache_standardization()
    xla = harness_xla()
    out["jit_compile"] = xla
    out["runs"] = []
    x_fit = images(512, 4)  # what featurewise standardisation / ZCA is fitted on
    last = 0.0
    for precision in PRECISIONS:
        for name in ctx.recipes(CNN_REPRESENTATIVES):
            if not ctx.fits(max(8.0, 1.5 * last), f"{name} {precision}", out):
                continue
            began = time.perf_counter()
            recipe = ctx.recipe(name)
            batch = recipe.training.batch_size
            x, y = images(batch, 5), targets(recipe, labels(batch, 5))
            run: dict[str, Any] = {"recipe": name, "precision": precision, "batch": batch}
            try:
                with dtype_policy(precision):
                    built = assemble(
                        recipe,
                        seed=0,
                        augmentation=ctx.config.augmentation(recipe.augmentation),
                        x_train=x_fit,
                        xla=xla,
                    )
                    model = built.model
                    model.compile(optimizer=make_optimizer(recipe), loss=recipe.training.loss, jit_compile=xla)
                    timed = []
                    for _ in range(1 + ctx.sizes.step_repeats):
                        step = time.perf_counter()
                        loss = float(np.asarray(model.train_on_batch(x, y)).reshape(-1)[0])
                        timed.append(time.perf_counter() - step)
                step_seconds = statistics.median(timed[1:])
                run.update(
                    compile_seconds=timed[0] - step_seconds,
                    step_seconds=step_seconds,
                    loss=loss,
                    finite=bool(np.isfinite(loss)),
                    output_dtype=str(model.outputs[0].dtype),
                    jit_compile=bool(model.jit_compile),
                )
            except Exception as error:  # noqa: BLE001  one recipe's failure is a result, not the end
                run["error"] = describe_error(error)
            keras.backend.clear_session()
            last = time.perf_counter() - began
            run["wall_seconds"] = last
            out["runs"].append(run)
            ctx.save()
    failed = [f"{r['recipe']} {r['precision']}" for r in out["runs"] if "error" in r or not r.get("finite")]
    out["failed"] = failed
    say(ctx.budget, f"  {len(out['runs']) - len(failed)}/{len(out['runs'])} steps compiled with a finite loss")


def section_torch_tf32(ctx: Context, out: dict[str, Any]) -> None:
    from importlib.util import find_spec

    if find_spec("torch") is None:
        raise Skip("torch is not installed")
    (result,) = run_workers(
        ctx, "torch", [{"size": 8 if ctx.args.tiny else 56}], min(90.0, ctx.budget.left() - ctx.args.reserve_seconds)
    )
    out.update(result)


def section_throughput_all(ctx: Context, out: dict[str, Any]) -> None:
    import keras
    from throughput import epoch_timer

    from harness.cost.run_cost import model_flops
    from harness.identity import is_transfer
    from harness.run.train import STEPS_PER_EXECUTION, assemble, make_optimizer

    _cache_standardization()
    xla = harness_xla()
    steps = ctx.sizes.throughput_steps
    names = ctx.recipes([r.name for r in ctx.config.recipes.values() if not is_transfer(r)])
    out.update(steps=steps, jit_compile=xla, precision="float32", runs=[])
    x_fit = images(512, 4)
    largest = max(ctx.batch(ctx.config.recipe(name).training.batch_size) for name in names)
    x_all, y_all = images(steps * largest, 6), labels(steps * largest, 6)
    last = 0.0
    for name in names:
        if not ctx.fits(max(6.0, 1.5 * last), name, out):
            break
        began = time.perf_counter()
        recipe = ctx.recipe(name)
        batch = recipe.training.batch_size
        x, y = x_all[: steps * batch], targets(recipe, y_all[: steps * batch])
        run: dict[str, Any] = {"recipe": name, "batch": batch}
        try:
            built = assemble(
                recipe, seed=0, augmentation=ctx.config.augmentation(recipe.augmentation), x_train=x_fit, xla=xla
            )
            model = built.model
            flops = model_flops(model)
            model.compile(
                optimizer=make_optimizer(recipe),
                loss=recipe.training.loss,
                jit_compile=xla,
                steps_per_execution=min(STEPS_PER_EXECUTION, steps),
            )
            timer = epoch_timer()
            model.fit(x, y, batch_size=batch, epochs=2, verbose=0, callbacks=[timer])
            seconds = timer.seconds[1]
            run.update(
                first_epoch_seconds=timer.seconds[0],
                step_seconds=seconds / steps,
                images_per_second=steps * batch / seconds,
                train_gflops_per_image=flops.train / 1e9,
                tflops=flops.train * steps * batch / seconds / 1e12,
            )
        except Exception as error:  # noqa: BLE001  one recipe's failure is a result, not the end
            run["error"] = describe_error(error)
        keras.backend.clear_session()
        last = time.perf_counter() - began
        run["wall_seconds"] = last
        out["runs"].append(run)
        ctx.save()
    say(ctx.budget, f"  {len(out['runs'])}/{len(names)} recipes timed")


# name -> (function, seconds it needs at the least to start), most valuable first
SECTIONS: dict[str, tuple[Any, float]] = {
    "versions": (section_versions, 5.0),
    "xla_auto": (section_xla_auto, 10.0),
    "backbones_224": (section_backbones_224, 60.0),
    "steady_epochs": (section_steady_epochs, 30.0),
    "tf32": (section_tf32, 20.0),
    "packing": (section_packing, 45.0),
    "compiled_steps": (section_compiled_steps, 15.0),
    "backbones_224_bf16": (functools.partial(section_backbones_224, precision="mixed_bfloat16"), 60.0),
    "steady_epochs_bf16": (functools.partial(section_steady_epochs, precision="mixed_bfloat16"), 30.0),
    "torch_tf32": (section_torch_tf32, 15.0),
    "throughput_all": (section_throughput_all, 10.0),
}


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("gpu_check.json"),
        help="The JSON file to write (rewritten after every measurement).",
    )
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=420.0,
        help="Wall-clock budget for the whole script, start-up included; a section that cannot fit is skipped.",
    )
    parser.add_argument(
        "--reserve-seconds", type=float, default=10.0, help="Seconds kept free at the end of the budget (final write)."
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"Comma-separated sections to run, in this order (default: all, most valuable first: {','.join(SECTIONS)}).",
    )
    parser.add_argument(
        "--tiny", action="store_true", help="Tiny sizes (few steps, small batches, one recipe per list): a CPU test."
    )
    parser.add_argument(
        "--backbone-timeout", type=float, default=150.0, help="Seconds one 224×224 backbone process may take at most."
    )
    parser.add_argument(
        "--backbone-min-seconds",
        type=float,
        default=60.0,
        help="Seconds that must be left to start a backbone process.",
    )
    parser.add_argument(
        "--pack-timeout", type=float, default=120.0, help="Seconds one round of packed processes may take at most."
    )
    parser.add_argument(
        "--pack-min-seconds",
        type=float,
        default=40.0,
        help="Seconds that must be left to start a round of packed processes.",
    )
    parser.add_argument(
        "--allow-cpu",
        action="store_true",
        help="Measure even when the backend sees no GPU (default: stop after versions).",
    )
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [name for name in args.sections.split(",") if name and name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    budget = Budget(args.budget_seconds)
    script = Path(__file__).resolve()
    report = Report(
        args.out,
        {
            "schema": SCHEMA,
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "argv": sys.argv,
            "budget_seconds": args.budget_seconds,
            "tiny": args.tiny,
            "host": platform.node(),
            "script_sha256": hashlib.sha256(script.read_bytes()).hexdigest()[:16],
        },
    )
    ctx = Context(args, report, budget)

    def on_term(signum, frame):
        raise Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    names = [name for name in args.sections.split(",") if name]
    say(budget, f"gpu_check: {len(names)} sections, budget {args.budget_seconds:.0f} s, writing {args.out}")
    report.save()
    try:
        for name in names:
            function, need = SECTIONS[name]
            entry: dict[str, Any] = {"status": "running", "started_at_seconds": round(budget.elapsed(), 1)}
            report.data["sections"][name] = entry
            left = budget.left() - args.reserve_seconds
            if ctx.stop_reason:
                entry.update(status="skipped", reason=ctx.stop_reason)
                report.save()
                say(budget, f"{name}: skipped ({ctx.stop_reason})")
                continue
            if left < need:
                entry.update(status="skipped", reason=f"{left:.0f} s left, needs at least {need:.0f} s")
                report.save()
                say(budget, f"{name}: skipped ({entry['reason']})")
                continue
            say(budget, f"{name}: started")
            report.save()
            result: dict[str, Any] = {}
            entry["result"] = result
            began = time.perf_counter()
            try:
                function(ctx, result)
                entry["status"] = "partial" if result.get("left_out") else "ok"
            except Skip as reason:
                entry.update(status="skipped", reason=str(reason))
            except Exception as error:  # noqa: BLE001  a section's failure is recorded; the next one runs
                entry.update(status="error", error=describe_error(error))
            entry["seconds"] = round(time.perf_counter() - began, 2)
            report.save()
            detail = entry.get("reason") or (entry.get("error") or {}).get("message", "")
            say(
                budget,
                f"{name}: {entry['status']} in {entry['seconds']:.1f} s" + (f" ({detail[:200]})" if detail else ""),
            )
    except (Terminated, KeyboardInterrupt) as stop:
        for process in list(ctx.children):
            with contextlib.suppress(OSError):
                process.kill()
        current = next((e for e in report.data["sections"].values() if e.get("status") == "running"), None)
        if current is not None:
            current.update(status="killed", reason=f"{type(stop).__name__} {stop}")
        report.data["stopped"] = f"{type(stop).__name__} {stop}"
    finally:
        signal.signal(signal.SIGTERM, previous)
        report.data["elapsed_seconds"] = round(budget.elapsed(), 1)
        report.data["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        report.save()
    statuses = {name: entry["status"] for name, entry in report.data["sections"].items()}
    say(budget, "done: " + ", ".join(f"{name} {status}" for name, status in statuses.items()))
    return report.data


def set_environment() -> None:
    """Before any backend is imported: JAX unless told otherwise; GPU memory taken as needed, as
    in every harness worker (harness.run.devices.MEMORY_ENVIRONMENT), which also leaves room for the
    packed and backbone processes this script starts beside itself."""
    from harness.run.devices import MEMORY_ENVIRONMENT

    os.environ.setdefault("KERAS_BACKEND", "jax")
    for key, value in MEMORY_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    set_environment()
    args = parse_arguments(argv)
    if args.worker:
        WORKERS[args.worker](json.loads(args.spec or "{}"))
        return 0
    data = run(args)
    return 0 if "stopped" not in data else 143


if __name__ == "__main__":
    sys.exit(main())
